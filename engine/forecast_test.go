package engine_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/engine/enginetest"
	"leadmaster/kv/kvtest"
)

func TestForecast(t *testing.T) {
	ba, _ := time.LoadLocation("America/Argentina/Buenos_Aires")
	noCaps := engine.Rate{MinDelay: 10 * time.Second, MaxDelay: 50 * time.Second, HourlyCap: 1 << 20, DailyCap: 1 << 20}
	quick := engine.Rate{MinDelay: time.Second, MaxDelay: 3 * time.Second, HourlyCap: 1 << 20, DailyCap: 1 << 20}
	type check func(t *testing.T, in engine.ForecastInput, r engine.ForecastResult)
	span := func(lo, hi time.Duration) check {
		return func(t *testing.T, in engine.ForecastInput, r engine.ForecastResult) {
			if d := r.FinP50.Sub(in.Start); d < lo || d > hi {
				t.Errorf("p50 finish after %v, want %v-%v", d, lo, hi)
			}
		}
	}
	days := func(want ...int) check {
		return func(t *testing.T, _ engine.ForecastInput, r engine.ForecastResult) {
			if len(r.PorDia) != len(want) {
				t.Fatalf("por_dia %+v, want %v", r.PorDia, want)
			}
			for i, w := range want {
				if got := r.PorDia[i].Envios; got != w {
					t.Errorf("day %d (%s): %d sends, want %d", i, r.PorDia[i].Dia, got, w)
				}
			}
		}
	}
	waits := func(why string, until time.Time) check {
		return func(t *testing.T, _ engine.ForecastInput, r engine.ForecastResult) {
			if why == "" {
				if r.Espera != nil {
					t.Errorf("espera %+v, want none", r.Espera)
				}
				return
			}
			if r.Espera == nil || r.Espera.Motivo != why || (!until.IsZero() && !r.Espera.Hasta.Equal(until)) {
				t.Errorf("espera %+v, want %s until %v", r.Espera, why, until)
			}
		}
	}
	cases := []struct {
		name   string
		in     engine.ForecastInput
		checks []check
	}{
		{"only delays: n times the mean delay", engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Rate: noCaps}, Pending: 1000},
			[]check{span(999*30*time.Second*97/100, 999*30*time.Second*103/100), days(1000), waits("", time.Time{})}},
		{"hourly cap: 300 at 60 an hour take about 5 hours", engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Rate: engine.Rate{MinDelay: time.Second, MaxDelay: 3 * time.Second, HourlyCap: 60, DailyCap: 10000}}, Pending: 300},
			[]check{span(4*time.Hour, 4*time.Hour+5*time.Minute), waits(engine.WaitHourlyCap, time.Time{})}},
		{"window 9-18 from 17:30 goes on at 9:00 the next day", engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Rate: noCaps, Schedule: engine.Schedule{StartHour: 9, EndHour: 18, TimeZone: "America/Argentina/Buenos_Aires"}},
			Pending: 100, Start: time.Date(2026, 11, 23, 17, 30, 0, 0, ba)},
			[]check{span(15*time.Hour+30*time.Minute, 16*time.Hour+30*time.Minute), waits(engine.WaitWindow, time.Date(2026, 11, 24, 9, 0, 0, 0, ba)),
				func(t *testing.T, _ engine.ForecastInput, r engine.ForecastResult) {
					if len(r.PorDia) != 2 || r.PorDia[0].Dia != "2026-11-23" || r.PorDia[0].Envios < 50 || r.PorDia[0].Envios > 75 || r.PorDia[0].Envios+r.PorDia[1].Envios != 100 {
						t.Errorf("por_dia %+v", r.PorDia)
					}
					if len(r.PorVentana) != 2 || !r.PorVentana[0].Hasta.Equal(time.Date(2026, 11, 23, 18, 0, 0, 0, ba)) || !r.PorVentana[1].Desde.Equal(time.Date(2026, 11, 24, 9, 0, 0, 0, ba)) {
						t.Errorf("por_ventana %+v", r.PorVentana)
					}
				}}},
		{"daily quota: 100 a local day", engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Rate: quick, Schedule: engine.Schedule{DailyQuota: 100, TimeZone: "America/Argentina/Buenos_Aires"}},
			Pending: 250, Start: time.Date(2026, 11, 23, 10, 0, 0, 0, ba)},
			[]check{days(100, 100, 50), waits(engine.WaitQuota, time.Date(2026, 11, 24, 0, 0, 0, 0, ba))}},
		{"warm-up of a new number: a quarter of the daily cap on day 1", engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Rate: engine.Rate{MinDelay: time.Second, MaxDelay: 3 * time.Second, HourlyCap: 1000, DailyCap: 100, WarmupDays: 4}},
			Pending: 250, ClienteCreated: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Start: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)},
			[]check{days(25, 50, 75, 100), span(3*24*time.Hour, 3*24*time.Hour+time.Hour), waits(engine.WaitDailyCap, time.Time{})}},
		{"two campaigns of one cliente share the hourly cap", engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Rate: engine.Rate{MinDelay: time.Second, MaxDelay: 3 * time.Second, HourlyCap: 60, DailyCap: 10000}}, Pending: 120,
			Others: []engine.ForecastCampaign{{Campaign: engine.Campaign{ID: "b", Rate: engine.Rate{MinDelay: time.Second, MaxDelay: 3 * time.Second, HourlyCap: 60, DailyCap: 10000}}, Pending: 500}}},
			[]check{span(3*time.Hour, 3*time.Hour+5*time.Minute)}}, // alone: about 1 hour
		{"caps used already count", engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Rate: engine.Rate{MinDelay: time.Second, MaxDelay: 3 * time.Second, HourlyCap: 60, DailyCap: 10000}}, Pending: 10,
			Sent: map[string][]time.Time{"otra": func() (ts []time.Time) {
				for i := range 60 {
					ts = append(ts, t0.Add(-30*time.Minute+time.Duration(i)*time.Second))
				}
				return ts
			}()}},
			[]check{span(30*time.Minute, 31*time.Minute), waits(engine.WaitHourlyCap, t0.Add(30*time.Minute))}},
		{"nothing left", engine.ForecastInput{Campaign: engine.Campaign{ID: "k"}}, []check{span(0, 0)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.Start.IsZero() {
				in.Start = t0
			}
			in.Rand = rand.New(rand.NewPCG(7, 11))
			r := engine.Forecast(in)
			if r.Runs != engine.DefaultForecastRuns || r.Incompleto {
				t.Fatalf("runs %d incompleto %v", r.Runs, r.Incompleto)
			}
			if in.Pending > 0 && (r.FinP10.After(r.FinP50) || r.FinP50.After(r.FinP90) || !r.FinP10.Before(r.FinP90)) {
				t.Errorf("p10 %v p50 %v p90 %v: want p10 < p90, p50 between", r.FinP10, r.FinP50, r.FinP90)
			}
			for _, c := range tc.checks {
				c(t, in, r)
			}
			if again := engine.Forecast(engine.ForecastInput{Campaign: in.Campaign, Pending: in.Pending, Others: in.Others, Sent: in.Sent, ClienteCreated: in.ClienteCreated, Start: in.Start, Rand: rand.New(rand.NewPCG(7, 11))}); !again.FinP50.Equal(r.FinP50) {
				t.Errorf("same seed, p50 %v then %v", r.FinP50, again.FinP50)
			}
		})
	}
}

// TestForecast_BadInputsEnd: no window day that exists, zero caps (the
// defaults), a horizon, never an endless forecast.
func TestForecast_BadInputsEnd(t *testing.T) {
	r := engine.Forecast(engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Rate: engine.Rate{}}, Pending: 5, Start: t0, Runs: 3})
	if r.FinP90.Before(t0) || r.FinP90.After(t0.Add(5*time.Minute)) {
		t.Fatalf("zero rate (the defaults): p90 %v", r.FinP90)
	}
	r = engine.Forecast(engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Schedule: engine.Schedule{Days: []time.Weekday{9}}}, Pending: 5, Start: t0, Runs: 2})
	if !r.Incompleto || r.Runs != 1 {
		t.Fatalf("a schedule with no valid day: %+v, want incompleto after one run", r)
	}
	// 2,000,000 at 400 a day: 13 years; the run stops at five.
	r = engine.Forecast(engine.ForecastInput{Campaign: engine.Campaign{ID: "k"}, Pending: 2000000, Start: t0})
	if !r.Incompleto || r.Runs != 1 || r.FinP50.Sub(t0) < 4*365*24*time.Hour {
		t.Fatalf("13 years of sends: incompleto %v after %d runs, p50 %v", r.Incompleto, r.Runs, r.FinP50)
	}
}

// TestForecast_AgainstTheEngine runs the real engine (fake clock, in-memory
// gateway) on small campaigns, each with several seeds of its random
// delays: every finish lies within the forecast's p10-p90 widened by one
// delay, and most within p10-p90 itself.
func TestForecast_AgainstTheEngine(t *testing.T) {
	cases := []struct {
		name  string
		n     int
		rate  engine.Rate
		sched engine.Schedule
		other int // envíos of campaign "b" of the same cliente, active beside "k"
	}{
		{"delays", 40, engine.Rate{MinDelay: 10 * time.Second, MaxDelay: 50 * time.Second, HourlyCap: 1000, DailyCap: 1000}, engine.Schedule{}, 0},
		{"hourly cap", 45, engine.Rate{MinDelay: 10 * time.Second, MaxDelay: 50 * time.Second, HourlyCap: 15, DailyCap: 1000}, engine.Schedule{}, 0},
		{"window and quota", 60, engine.Rate{MinDelay: time.Minute, MaxDelay: 3 * time.Minute, HourlyCap: 1000, DailyCap: 1000}, engine.Schedule{StartHour: 9, EndHour: 11, DailyQuota: 25, TimeZone: "America/Argentina/Buenos_Aires"}, 0},
		{"two campaigns share the hourly cap", 30, engine.Rate{MinDelay: 10 * time.Second, MaxDelay: 50 * time.Second, HourlyCap: 15, DailyCap: 1000}, engine.Schedule{}, 30},
	}
	const seeds = 5
	inside, total := 0, 0
	for i, tc := range cases {
		for seed := uint64(i * seeds); seed < uint64((i+1)*seeds); seed++ { // the same seed would give each case the same delays
			// Forecast with the engine stopped, then run it with this
			// seed's delays on the campaigns as they were forecast.
			h := newHarness(t, tc.n, tc.rate, engine.Config{})
			h.stop()
			ctx := context.Background()
			ids := []string{"k"}
			if tc.other > 0 {
				kvtest.MustCampaign(t, h.db, "b", tc.other)
				ids = append(ids, "b")
			}
			for _, id := range ids {
				if _, err := h.db.UpdateCampaign(ctx, id, func(c *engine.Campaign) error {
					c.Rate, c.Schedule, c.Status = tc.rate, tc.sched, engine.Activa
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			f, err := h.eng.Forecast(ctx, "k", 0)
			if err != nil {
				t.Fatal(err)
			}
			if f.Pending != tc.n || !f.Start.Equal(t0) {
				t.Fatalf("forecast of %d from %v", f.Pending, f.Start)
			}
			h.start(h.db, engine.Config{Clock: h.clock, Logger: slog.New(slog.DiscardHandler), Rand: rand.New(rand.NewPCG(seed, 0x5eed))})
			h.until("k terminada", func(ev engine.Event) bool {
				return ev.Type == "campaign" && ev.Campaign == "k" && ev.Status == string(engine.Terminada)
			})
			h.stop()
			var acks []enginetest.Sent // campaign k's
			for _, a := range h.gw.Acked() {
				if env, err := h.db.EnvioByMsgID(ctx, a.MsgID); err != nil {
					t.Fatal(err)
				} else if env.Ref.Campaign == "k" {
					acks = append(acks, a)
				}
			}
			if len(acks) != tc.n {
				t.Fatalf("%s: %d acks", tc.name, len(acks))
			}
			fin := acks[len(acks)-1].At
			if lo, hi := f.FinP10.Add(-tc.rate.MaxDelay), f.FinP90.Add(tc.rate.MaxDelay); fin.Before(lo) || fin.After(hi) {
				t.Errorf("%s, seed %d: the engine ended at %v, the forecast said %v..%v (p50 %v)", tc.name, seed, fin.Sub(t0), f.FinP10.Sub(t0), f.FinP90.Sub(t0), f.FinP50.Sub(t0))
			}
			total++
			if !fin.Before(f.FinP10) && !fin.After(f.FinP90) {
				inside++
			}
		}
	}
	if inside*10 < total*6 { // 80 % expected
		t.Errorf("%d of %d engine finishes within p10-p90", inside, total)
	}
	t.Logf("%d of %d engine finishes within p10-p90", inside, total)
}

// BenchmarkForecast: 100,000 envíos at the default ritmo (about 250 days
// of sends), 200 runs.
func BenchmarkForecast(b *testing.B) {
	in := engine.ForecastInput{Campaign: engine.Campaign{ID: "k", Schedule: engine.Schedule{StartHour: 9, EndHour: 20, TimeZone: "America/Argentina/Buenos_Aires"}}, Pending: 100000, Start: t0}
	for b.Loop() {
		in.Rand = rand.New(rand.NewPCG(1, 2))
		if r := engine.Forecast(in); r.Incompleto {
			b.Fatal("incompleto")
		}
	}
}

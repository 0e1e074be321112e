package engine

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// refRun is one forecast run written with the worker's own sendLog (add,
// nextAllowedWhy) and the worker's step: the reference the simulator's
// cached rules must match send for send.
func refRun(in ForecastInput, seed [2]uint64) []time.Time {
	l := &sendLog{start: in.ClienteCreated}
	type prior struct {
		c string
		t time.Time
	}
	var ps []prior
	for c, ts := range in.Sent {
		for _, t := range ts {
			if !t.Before(in.Start.Add(-25*time.Hour)) && !t.After(in.Start) {
				ps = append(ps, prior{c, t})
			}
		}
	}
	slices.SortStableFunc(ps, func(a, b prior) int { return a.t.Compare(b.t) })
	for _, p := range ps {
		l.add(p.c, p.t)
	}
	type camp struct {
		c    Campaign
		left int
	}
	cs := []*camp{{in.Campaign, in.Pending}}
	for _, o := range in.Others {
		cs = append(cs, &camp{o.Campaign, o.Pending})
	}
	slices.SortStableFunc(cs, func(a, b *camp) int { return cmp.Compare(a.c.ID, b.c.ID) })
	rng := rand.New(rand.NewPCG(seed[0], seed[1]))
	now, next, rr := in.Start, in.Start, 0
	var out []time.Time
	for left := in.Pending; left > 0; {
		if now.Before(next) {
			now = next
		}
		var wake time.Time
		sent := false
		rr %= len(cs)
		for i := range cs {
			c := cs[(rr+i)%len(cs)]
			if c.left == 0 {
				continue
			}
			if at := l.nextAllowed(c.c, now); at.After(now) {
				if wake.IsZero() || at.Before(wake) {
					wake = at
				}
				continue
			}
			rr += i + 1
			l.add(c.c.ID, now)
			c.left--
			if c.c.ID == in.Campaign.ID {
				out = append(out, now)
				left--
			}
			r := c.c.Rate.WithDefaults()
			next = now.Add(randDelay(rng, r.MinDelay, r.MaxDelay))
			sent = true
			break
		}
		if !sent {
			now = wake
		}
	}
	return out
}

func TestForecastSim_MatchesTheWorkersRules(t *testing.T) {
	ba, _ := time.LoadLocation("America/Argentina/Buenos_Aires")
	start := time.Date(2026, 11, 23, 17, 10, 0, 0, ba)
	fast := Rate{MinDelay: 20 * time.Second, MaxDelay: 3 * time.Minute, HourlyCap: 25, DailyCap: 120}
	win := Schedule{StartHour: 9, EndHour: 18, TimeZone: "America/Argentina/Buenos_Aires", DailyQuota: 70}
	recent := map[string][]time.Time{}
	for i := range 30 {
		recent["k"] = append(recent["k"], start.Add(-time.Duration(i)*7*time.Minute))
		recent["mensajes-c1"] = append(recent["mensajes-c1"], start.Add(-time.Duration(i)*41*time.Minute))
	}
	cases := []ForecastInput{
		{Campaign: Campaign{ID: "k", Rate: fast}, Pending: 400},
		{Campaign: Campaign{ID: "k", Rate: fast, Schedule: win}, Pending: 400, Sent: recent},
		{Campaign: Campaign{ID: "k", Rate: Rate{MinDelay: 5 * time.Second, MaxDelay: 40 * time.Second, DailyCap: 300, WarmupDays: 5}, Schedule: Schedule{Days: []time.Weekday{time.Monday, time.Wednesday, time.Friday}, StartHour: 8, EndHour: 20, TimeZone: "Europe/Madrid"}},
			Pending: 900, ClienteCreated: start.Add(-30 * time.Hour)},
		{Campaign: Campaign{ID: "k", Rate: fast, Schedule: win}, Pending: 300, Sent: recent, Others: []ForecastCampaign{
			{Campaign: Campaign{ID: "a", Rate: Rate{MinDelay: time.Second, MaxDelay: 10 * time.Second, HourlyCap: 40, DailyCap: 200}}, Pending: 150},
			{Campaign: Campaign{ID: "z", Rate: fast, Schedule: Schedule{StartHour: 0, EndHour: 12, DailyQuota: 30}}, Pending: 500},
			{Campaign: Campaign{ID: "p"}, Pending: 0},
		}},
	}
	for i, in := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			in.Start = start
			s := newSim(in)
			for run := range 5 {
				seed := [2]uint64{uint64(i), uint64(run)}
				rec := &simRecord{}
				fin, done := s.run(seed, rec)
				want := refRun(in, seed)
				if !done || len(rec.sends) != len(want) {
					t.Fatalf("run %d: %d sends (done %v), the worker's rules %d", run, len(rec.sends), done, len(want))
				}
				for j, w := range want {
					if rec.sends[j] != w.UnixNano() {
						t.Fatalf("run %d: send %d at %v, the worker's rules at %v", run, j, time.Unix(0, rec.sends[j]).In(ba), w.In(ba))
					}
				}
				if fin != want[len(want)-1].UnixNano() {
					t.Fatalf("run %d: finish %v", run, time.Unix(0, fin))
				}
			}
		})
	}
}

func TestForecastRuns(t *testing.T) {
	for _, tc := range []struct{ asked, work, want int }{
		{0, 100, DefaultForecastRuns}, {50, 100, 50}, {20000, 10, 10000},
		{0, 100000, 200}, {0, 1000000, 40}, {0, 100000000, minForecastRuns}, {5, 100000000, 5},
	} {
		if got := forecastRuns(tc.asked, tc.work); got != tc.want {
			t.Errorf("forecastRuns(%d, %d) = %d, want %d", tc.asked, tc.work, got, tc.want)
		}
	}
}

// At the hourly cap's end the daily cap still holds (it went unchecked:
// the worker sent the 401st of a 400 cap; found by the forecast).
func TestNextAllowed_DailyCapAtTheHourlyCapsEnd(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l := &sendLog{}
	for i := range 400 {
		l.add("k", base.Add(time.Duration(i)*time.Minute)) // 400 in the day, the last 60 in the last hour
	}
	c := Campaign{ID: "k", Rate: Rate{HourlyCap: 60, DailyCap: 400}}
	end := base.Add(340*time.Minute + time.Hour) // the hourly cap's end
	got, why := l.nextAllowedWhy(c, end)
	if want := base.Add(24 * time.Hour); !got.Equal(want) || why != WaitDailyCap {
		t.Fatalf("at the hourly cap's end: %v %s, want %v %s", got, why, want, WaitDailyCap)
	}
	// Below the daily cap, the send goes at the hourly cap's end itself.
	c.Rate.DailyCap = 401
	if got, _ := l.nextAllowedWhy(c, end); !got.Equal(end) {
		t.Fatalf("below the daily cap: %v, want %v", got, end)
	}
}

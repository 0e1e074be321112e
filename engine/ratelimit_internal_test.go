package engine

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestNextAllowed(t *testing.T) {
	ba, _ := time.LoadLocation("America/Argentina/Buenos_Aires")
	// Monday 2026-11-23 10:00 in Buenos Aires (13:00 UTC).
	mon10 := time.Date(2026, 11, 23, 10, 0, 0, 0, ba)
	sends := func(start time.Time, n int, gap time.Duration) *sendLog {
		l := &sendLog{}
		for i := range n {
			l.add("k", start.Add(time.Duration(i)*gap))
		}
		return l
	}
	cases := []struct {
		name string
		log  *sendLog
		c    Campaign
		now  time.Time
		want time.Time
	}{
		{"open window, no sends", &sendLog{}, Campaign{ID: "k", Schedule: Schedule{StartHour: 9, EndHour: 18, TimeZone: "America/Argentina/Buenos_Aires"}}, mon10, mon10},
		{"before the window opens", &sendLog{}, Campaign{ID: "k", Schedule: Schedule{StartHour: 11, EndHour: 18, TimeZone: "America/Argentina/Buenos_Aires"}}, mon10, mon10.Add(time.Hour)},
		{"after the window: tomorrow", &sendLog{}, Campaign{ID: "k", Schedule: Schedule{StartHour: 8, EndHour: 9, TimeZone: "America/Argentina/Buenos_Aires"}}, mon10, mon10.Add(22 * time.Hour)},
		{"weekdays only, on saturday", &sendLog{}, Campaign{ID: "k", Schedule: Schedule{Days: []time.Weekday{time.Monday, time.Tuesday}, StartHour: 9, EndHour: 18, TimeZone: "America/Argentina/Buenos_Aires"}}, mon10.AddDate(0, 0, 5), time.Date(2026, 11, 30, 9, 0, 0, 0, ba)},
		{"time zone matters", &sendLog{}, Campaign{ID: "k", Schedule: Schedule{StartHour: 9, EndHour: 12, TimeZone: "UTC"}}, mon10, time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)},
		{"hourly cap reached", sends(mon10.Add(-30*time.Minute), 3, time.Minute), Campaign{ID: "k", Rate: Rate{HourlyCap: 3, DailyCap: 100}}, mon10, mon10.Add(30 * time.Minute)},
		{"hourly cap not reached", sends(mon10.Add(-30*time.Minute), 2, time.Minute), Campaign{ID: "k", Rate: Rate{HourlyCap: 3, DailyCap: 100}}, mon10, mon10},
		{"daily cap reached", sends(mon10.Add(-20*time.Hour), 5, 2*time.Hour), Campaign{ID: "k", Rate: Rate{HourlyCap: 100, DailyCap: 5}}, mon10, mon10.Add(4 * time.Hour)},
		{"cupo of the local day used", sends(time.Date(2026, 11, 23, 9, 0, 0, 0, ba), 4, time.Minute), Campaign{ID: "k", Rate: Rate{HourlyCap: 100, DailyCap: 100}, Schedule: Schedule{DailyQuota: 4, StartHour: 9, EndHour: 18, TimeZone: "America/Argentina/Buenos_Aires"}}, mon10, time.Date(2026, 11, 24, 9, 0, 0, 0, ba)},
		{"warm-up: day 1 of 4 allows a quarter of the daily cap", func() *sendLog {
			l := sends(mon10.Add(-10*time.Hour), 25, time.Minute)
			l.start = mon10.Add(-12 * time.Hour)
			return l
		}(), Campaign{ID: "k", Rate: Rate{HourlyCap: 1000, DailyCap: 100, WarmupDays: 4}}, mon10, mon10.Add(14 * time.Hour)},
		{"warm-up: day 2 of 4 allows half", func() *sendLog {
			l := sends(mon10.Add(-10*time.Hour), 25, time.Minute)
			l.start = mon10.Add(-36 * time.Hour)
			return l
		}(), Campaign{ID: "k", Rate: Rate{HourlyCap: 1000, DailyCap: 100, WarmupDays: 4}}, mon10, mon10},
		{"warm-up over: the full cap", func() *sendLog {
			l := sends(mon10.Add(-10*time.Hour), 99, time.Second)
			l.start = mon10.AddDate(0, 0, -30)
			return l
		}(), Campaign{ID: "k", Rate: Rate{HourlyCap: 1000, DailyCap: 100, WarmupDays: 4}}, mon10, mon10},
		{"cupo counts only today", sends(time.Date(2026, 11, 22, 17, 0, 0, 0, ba), 4, time.Minute), Campaign{ID: "k", Rate: Rate{HourlyCap: 100, DailyCap: 100}, Schedule: Schedule{DailyQuota: 4, TimeZone: "America/Argentina/Buenos_Aires"}}, mon10, mon10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.log.nextAllowed(tc.c, tc.now); !got.Equal(tc.want) {
				t.Fatalf("nextAllowed = %v, want %v", got.In(ba), tc.want.In(ba))
			}
		})
	}
}

func TestClassifyAndBackoff(t *testing.T) {
	for code, want := range map[int]Outcome{463: ReachLimited, 479: Retry, 500: Retry, 503: Retry, 999: Retry, 403: Permanent, 404: Permanent, 401: SessionLost} {
		if got := ClassifyAck(code); got != want {
			t.Errorf("ClassifyAck(%d) = %v, want %v", code, got, want)
		}
	}
	for attempt := 1; attempt <= 10; attempt++ {
		d := Backoff(attempt, time.Second, time.Minute, randForTest())
		base := min(time.Second<<(attempt-1), time.Minute)
		if d < base*3/4 || d > base*5/4 {
			t.Fatalf("attempt %d backoff %v outside %v±25%%", attempt, d, base)
		}
	}
}

func TestRenderTemplateAndOptOut(t *testing.T) {
	e := Envio{Telefono: "+5491155550001", Nombre: "Ana", Variables: map[string]string{"Producto": "zapatos"}}
	if got, err := RenderTemplate("Hola {{ nombre }}, tus {{producto}} ({{telefono}})", e); err != nil || got != "Hola Ana, tus zapatos (+5491155550001)" {
		t.Fatalf("got %q %v", got, err)
	}
	for _, bad := range []string{"Hola {{apellido}}", "Hola {{nombre", "{{nombre}}"} {
		if _, err := RenderTemplate(bad, Envio{}); err == nil {
			t.Errorf("%q rendered without error", bad)
		}
	}
	for text, want := range map[string]bool{"BAJA": true, " baja. ": true, "Bája!": true, "stop": true, "no más": true, "baja por favor no": false, "hola": false} {
		if got := IsOptOut(text, DefaultOptOutWords); got != want {
			t.Errorf("IsOptOut(%q) = %v", text, got)
		}
	}
}

func randForTest() *rand.Rand { return rand.New(rand.NewPCG(7, 7)) }

package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Default rate settings, used where a campaign leaves a field zero. They
// are human-like on purpose: bulk sending from a fresh number is the
// surest way to get it banned.
var DefaultRate = Rate{
	MinDelay:    20 * time.Second,
	MaxDelay:    60 * time.Second,
	HourlyCap:   60,
	DailyCap:    400,
	MaxAttempts: 5,
}

// WithDefaults fills the zero fields of r from DefaultRate.
func (r Rate) WithDefaults() Rate {
	if r.MinDelay <= 0 && r.MaxDelay <= 0 {
		r.MinDelay, r.MaxDelay = DefaultRate.MinDelay, DefaultRate.MaxDelay
	}
	if r.MaxDelay < r.MinDelay {
		r.MaxDelay = r.MinDelay
	}
	if r.HourlyCap == 0 {
		r.HourlyCap = DefaultRate.HourlyCap
	}
	if r.DailyCap == 0 {
		r.DailyCap = DefaultRate.DailyCap
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultRate.MaxAttempts
	}
	return r
}

// Validate checks a rate for obvious mistakes (negative values).
func (r Rate) Validate() error {
	if r.MinDelay < 0 || r.MaxDelay < 0 || r.HourlyCap < 0 || r.DailyCap < 0 || r.MaxAttempts < 0 || r.WarmupDays < 0 {
		return fmt.Errorf("ritmo: valores negativos: %w", ErrInvalid)
	}
	return nil
}

// Location is the schedule's time zone (UTC if empty or unknown).
func (s Schedule) Location() *time.Location {
	if s.TimeZone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Validate checks a programación.
func (s Schedule) Validate() error {
	if s.TimeZone != "" {
		if _, err := time.LoadLocation(s.TimeZone); err != nil {
			return fmt.Errorf("programación: zona horaria %q desconocida: %w", s.TimeZone, ErrInvalid)
		}
	}
	if s.StartHour < 0 || s.StartHour > 23 || s.EndHour < 0 || s.EndHour > 24 || (s.EndHour != 0 && s.EndHour <= s.StartHour) {
		return fmt.Errorf("programación: horas %d-%d inválidas (desde 0-23, hasta 1-24 y mayor): %w", s.StartHour, s.EndHour, ErrInvalid)
	}
	for _, d := range s.Days {
		if d < time.Sunday || d > time.Saturday {
			return fmt.Errorf("programación: día %d inválido: %w", d, ErrInvalid)
		}
	}
	if s.DailyQuota < 0 {
		return fmt.Errorf("programación: cupo negativo: %w", ErrInvalid)
	}
	return nil
}

// NextOpen returns t if the schedule allows sending at t, else the start of
// the next window.
func (s Schedule) NextOpen(t time.Time) time.Time {
	open, _, _ := s.openWindow(s.Location(), t)
	return open
}

// openWindow is NextOpen's rule in loc (the schedule's Location), with the
// window the answer falls in: every time in [from, until) is open (until
// also stops at the local midnight). until is zero when no day is allowed.
func (s Schedule) openWindow(loc *time.Location, t time.Time) (open, from, until time.Time) {
	end := s.EndHour
	if end == 0 {
		end = 24
	}
	lt := t.In(loc)
	for i := 0; i < 8; i++ {
		day := time.Date(lt.Year(), lt.Month(), lt.Day()+i, 0, 0, 0, 0, loc)
		if len(s.Days) > 0 && !slices.Contains(s.Days, day.Weekday()) {
			continue
		}
		start := day.Add(time.Duration(s.StartHour) * time.Hour)
		stop := day.Add(time.Duration(end) * time.Hour)
		if !lt.Before(stop) {
			continue
		}
		if midnight := time.Date(lt.Year(), lt.Month(), lt.Day()+i+1, 0, 0, 0, 0, loc); midnight.Before(stop) {
			stop = midnight
		}
		if lt.Before(start) {
			return start, start, stop
		}
		return t, start, stop
	}
	return t.Add(24 * time.Hour), time.Time{}, time.Time{} // no day allowed: check again tomorrow
}

// randDelay is the random pause after a send: uniform in [min, max].
func randDelay(rng *rand.Rand, min, max time.Duration) time.Duration {
	if max <= min {
		return min
	}
	return min + time.Duration(rng.Int64N(int64(max-min)+1))
}

// sendLog remembers a cliente's recent sends for its caps and quotas.
type sendLog struct {
	start      time.Time              // when the number started here (the warm-up ramp)
	all        []time.Time            // the cliente's sends, oldest first
	byCampaign map[string][]time.Time // per campaign, for the cupo
}

func (l *sendLog) add(campaign string, t time.Time) {
	l.all = append(l.all, t)
	if l.byCampaign == nil {
		l.byCampaign = map[string][]time.Time{}
	}
	l.byCampaign[campaign] = append(l.byCampaign[campaign], t)
	// forget what no cap looks at any more (more than a day and a bit ago)
	cut := t.Add(-25 * time.Hour)
	l.all = dropBefore(l.all, cut)
	for c, ts := range l.byCampaign {
		l.byCampaign[c] = dropBefore(ts, cut)
	}
}

// dailyCap is the rate's daily cap at t, ramped for a new number.
func (l *sendLog) dailyCap(r Rate, t time.Time) int {
	if r.WarmupDays <= 1 || l.start.IsZero() {
		return r.DailyCap
	}
	day := int(t.Sub(l.start)/(24*time.Hour)) + 1
	if day >= r.WarmupDays {
		return r.DailyCap
	}
	return max(r.DailyCap*day/r.WarmupDays, 1)
}

func dropBefore(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	return ts[i:]
}

func countSince(ts []time.Time, since time.Time) int {
	n := 0
	for i := len(ts) - 1; i >= 0 && !ts[i].Before(since); i-- {
		n++
	}
	return n
}

// nextAllowed is the earliest time at or after now when campaign c of this
// cliente may send under its schedule, quota and caps.
func (l *sendLog) nextAllowed(c Campaign, now time.Time) time.Time {
	t, _ := l.nextAllowedWhy(c, now)
	return t
}

// nextAllowedWhy is nextAllowed with the rule that held the send back
// last (WaitWindow, WaitQuota, WaitHourlyCap, WaitDailyCap; "" if none).
func (l *sendLog) nextAllowedWhy(c Campaign, now time.Time) (time.Time, string) {
	r := c.Rate.WithDefaults()
	t, why := now, ""
	for range 4 { // each rule may push t; a few rounds settle it
		before := t
		if open := c.Schedule.NextOpen(t); open.After(t) {
			t, why = open, WaitWindow
		}
		if q := c.Schedule.DailyQuota; q > 0 {
			loc := c.Schedule.Location()
			lt := t.In(loc)
			midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
			if countSince(l.byCampaign[c.ID], midnight) >= q {
				t, why = midnight.AddDate(0, 0, 1), WaitQuota
				continue
			}
		}
		// A cap's end may be t itself (its oldest send leaves the hour or
		// the day at t): then the next rule is checked at t, not skipped
		// (it was: at the hourly cap's end the daily cap went unchecked).
		if n := countSince(l.all, t.Add(-time.Hour)); n >= r.HourlyCap {
			if end := l.all[len(l.all)-r.HourlyCap].Add(time.Hour); end.After(t) {
				t, why = end, WaitHourlyCap
				continue
			}
		}
		if daily := l.dailyCap(r, t); countSince(l.all, t.Add(-24*time.Hour)) >= daily {
			if end := l.all[len(l.all)-daily].Add(24 * time.Hour); end.After(t) {
				t, why = end, WaitDailyCap
				continue
			}
		}
		if t.Equal(before) {
			break
		}
	}
	return t, why
}

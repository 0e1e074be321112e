package engine

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// DefaultForecastRuns is how many runs a forecast simulates when its input
// names none.
const DefaultForecastRuns = 200

// forecastBudget bounds a forecast's work, in simulated sends over all its
// runs: a very large campaign gets fewer runs (never fewer than
// minForecastRuns), so an answer stays well under a few seconds.
const (
	forecastBudget  = 40_000_000
	minForecastRuns = 10
)

// forecastHorizon bounds a simulated run: a campaign that would not end
// within it is reported Incompleto, never an endless forecast.
const forecastHorizon = 5 * 365 * 24 * time.Hour

// ForecastCampaign is another active campaign of the cliente: it shares
// the number's pace and caps, and the worker takes turns between them.
type ForecastCampaign struct {
	Campaign Campaign
	Pending  int // its envíos left (pendiente + enviando)
}

// ForecastInput is what Forecast simulates.
type ForecastInput struct {
	Campaign Campaign // its Rate and Schedule; its status is ignored (a borrador is forecast as if started)
	Pending  int      // its envíos left
	// ClienteCreated is the cliente's creation: the warm-up ramp's day 1.
	ClienteCreated time.Time
	// Sent is what the cliente sent recently (campaign -> times, any
	// order, as Store.SentSince answers for one cliente): caps already
	// used count.
	Sent map[string][]time.Time
	// Others are the cliente's other active campaigns (the messages
	// campaign is not part of a forecast; its recent sends in Sent are).
	Others []ForecastCampaign
	Start  time.Time
	// Rand seeds the runs (each draws its own stream from it); nil: a
	// fixed seed. Runs defaults to DefaultForecastRuns; a very large
	// campaign gets fewer (forecastBudget), one beyond the horizon one.
	Rand *rand.Rand
	Runs int
}

// ForecastResult is a campaign's forecast: when it ends, as a range (the
// random delays make it a distribution), and how its sends spread over
// the days and windows of its time zone in the median run.
type ForecastResult struct {
	Campaign string    `json:"campana"`
	Pending  int       `json:"pendientes"`
	Runs     int       `json:"corridas"` // simulated: fewer than asked for a very large campaign, or once one is Incompleto
	Start    time.Time `json:"desde"`
	FinP10   time.Time `json:"fin_p10"`
	FinP50   time.Time `json:"fin_p50"`
	FinP90   time.Time `json:"fin_p90"`
	// PorDia and PorVentana are the median run's sends of the campaign per
	// local day (YYYY-MM-DD in its time zone) and per window.
	PorDia     []ForecastDay    `json:"por_dia"`
	PorVentana []ForecastWindow `json:"por_ventana"`
	// Espera is the first rule that will hold the campaign back (window,
	// quota, a cap), from when until when, in the median run; nil if none.
	Espera *ForecastWait `json:"espera,omitempty"`
	// Incompleto: a run did not end within the horizon (five years): the
	// runs stopped there, and its finish counts as the horizon's end.
	Incompleto bool `json:"incompleto,omitempty"`
}

// ForecastDay is the sends of one local day.
type ForecastDay struct {
	Dia    string `json:"dia"`
	Envios int    `json:"envios"`
}

// ForecastWindow is the sends of one window of the programación (a whole
// local day when it has no hours).
type ForecastWindow struct {
	Desde  time.Time `json:"desde"`
	Hasta  time.Time `json:"hasta"`
	Envios int       `json:"envios"`
}

// ForecastWait is a wait of the campaign: Motivo is a Wait* reason.
type ForecastWait struct {
	Motivo string    `json:"motivo"`
	Desde  time.Time `json:"desde"`
	Hasta  time.Time `json:"hasta"`
}

// Forecast simulates the cliente's worker on the campaign and its siblings,
// Runs times with different random delays, and answers the spread of the
// campaign's finish (the time of its last send). It applies the worker's
// rules (sendLog.nextAllowedWhy: the window, the daily quota, the hourly
// and daily caps with the warm-up ramp, then randDelay after each send,
// round-robin between campaigns) to a simulated clock; failures, retries,
// sessions and reach locks are not part of it. It is pure: no store, no
// goroutines.
func Forecast(in ForecastInput) ForecastResult {
	work := max(in.Pending, 0)
	for _, o := range in.Others {
		work += max(o.Pending, 0)
	}
	runs := forecastRuns(in.Runs, work)
	rng := in.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	res := ForecastResult{Campaign: in.Campaign.ID, Pending: max(in.Pending, 0), Runs: runs, Start: in.Start,
		PorDia: []ForecastDay{}, PorVentana: []ForecastWindow{}}
	if in.Pending <= 0 {
		res.FinP10, res.FinP50, res.FinP90 = in.Start, in.Start, in.Start
		return res
	}
	s := newSim(in)
	type run struct {
		seed [2]uint64
		fin  int64
	}
	all := make([]run, 0, runs)
	for range runs {
		r := run{seed: [2]uint64{rng.Uint64(), rng.Uint64()}}
		fin, done := s.run(r.seed, nil)
		r.fin = fin
		all = append(all, r)
		if !done { // beyond the horizon: more runs would only go there too
			res.Incompleto = true
			break
		}
	}
	runs = len(all)
	res.Runs = runs
	slices.SortStableFunc(all, func(a, b run) int { return cmp.Compare(a.fin, b.fin) })
	at := func(q float64) run { return all[int(q*float64(runs-1)+0.5)] }
	loc := in.Campaign.Schedule.Location()
	res.FinP10 = time.Unix(0, at(0.1).fin).In(loc)
	res.FinP50 = time.Unix(0, at(0.5).fin).In(loc)
	res.FinP90 = time.Unix(0, at(0.9).fin).In(loc)
	rec := &simRecord{}
	s.run(at(0.5).seed, rec)
	res.Espera = rec.wait
	var dayEnd, winEnd int64 // of the last entries of PorDia and PorVentana
	for _, t := range rec.sends {
		if len(res.PorDia) == 0 || t >= dayEnd {
			lt := time.Unix(0, t).In(loc)
			midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
			res.PorDia = append(res.PorDia, ForecastDay{Dia: lt.Format(time.DateOnly)})
			dayEnd = midnight.AddDate(0, 0, 1).UnixNano()
		}
		res.PorDia[len(res.PorDia)-1].Envios++
		if len(res.PorVentana) == 0 || t >= winEnd {
			_, from, until := in.Campaign.Schedule.openWindow(loc, time.Unix(0, t))
			res.PorVentana = append(res.PorVentana, ForecastWindow{Desde: from, Hasta: until})
			winEnd = until.UnixNano()
		}
		res.PorVentana[len(res.PorVentana)-1].Envios++
	}
	return res
}

// forecastRuns is how many runs to simulate when asked for asked (<= 0:
// the default) and the runs send work envíos each: at most 10,000, fewer
// past forecastBudget.
func forecastRuns(asked, work int) int {
	runs := asked
	if runs <= 0 {
		runs = DefaultForecastRuns
	}
	runs = min(runs, 10000)
	if work > 0 && runs > minForecastRuns && runs*work > forecastBudget {
		runs = max(forecastBudget/work, minForecastRuns)
	}
	return runs
}

// simCampaign is one campaign in a simulated run; its hot fields first.
type simCampaign struct {
	left                 int
	hourly, daily, quota int   // its caps (WithDefaults) and daily quota
	minDelay, maxDelay   int64 // its random delay
	fullCapFrom          int64 // from then on the warm-up is over
	// Caches of the rules' answers, each exact where it holds: every
	// time in [winFrom, winUntil) is inside a window; [dayFrom, dayTo) is
	// the local day whose quota count starts at sent[dayIdx].
	winFrom, winUntil int64
	dayFrom, dayTo    int64
	dayIdx            int
	sent              []int64 // its sends, oldest first (only with a quota)

	c      Campaign
	rate   Rate // WithDefaults
	loc    *time.Location
	target bool
	total  int // envíos at the start
}

// sim is the cliente's worker on a simulated clock, reused across runs.
type sim struct {
	cs     []*simCampaign // in the store's order (by id): the round-robin's
	warmup sendLog        // only its start: the warm-up ramp (dailyCap)
	start  int64
	prior  []int64 // Sent, sorted
	priorC map[string][]int64
	all    []int64 // the cliente's sends, oldest first
	hp, dp int     // first sends of all within the last hour / day of now
	pcg    *rand.PCG
	rng    *rand.Rand
}

type simRecord struct {
	sends []int64 // the target's
	wait  *ForecastWait
}

func newSim(in ForecastInput) *sim {
	s := &sim{warmup: sendLog{start: in.ClienteCreated}, start: in.Start.UnixNano(), priorC: map[string][]int64{}}
	add := func(c Campaign, pending int, target bool) {
		r := c.Rate.WithDefaults()
		r.HourlyCap, r.DailyCap = max(r.HourlyCap, 1), max(r.DailyCap, 1) // negative caps do not validate; never index with them
		sc := &simCampaign{c: c, rate: r, loc: c.Schedule.Location(), target: target, total: max(pending, 0),
			hourly: r.HourlyCap, daily: r.DailyCap, quota: c.Schedule.DailyQuota,
			minDelay: int64(r.MinDelay), maxDelay: int64(r.MaxDelay), fullCapFrom: math.MinInt64}
		if r.WarmupDays > 1 && !in.ClienteCreated.IsZero() {
			// dailyCap's day >= WarmupDays, as a time
			sc.fullCapFrom = in.ClienteCreated.Add(time.Duration(r.WarmupDays-1) * 24 * time.Hour).UnixNano()
		}
		s.cs = append(s.cs, sc)
	}
	add(in.Campaign, in.Pending, true)
	for _, o := range in.Others {
		if o.Campaign.ID != in.Campaign.ID && !IsMessages(o.Campaign) {
			add(o.Campaign, o.Pending, false)
		}
	}
	slices.SortStableFunc(s.cs, func(a, b *simCampaign) int {
		switch {
		case a.c.ID < b.c.ID:
			return -1
		case a.c.ID > b.c.ID:
			return 1
		}
		return 0
	})
	cut := in.Start.Add(-25 * time.Hour)
	for id, ts := range in.Sent {
		for _, t := range ts {
			if !t.Before(cut) && !t.After(in.Start) {
				s.prior = append(s.prior, t.UnixNano())
				s.priorC[id] = append(s.priorC[id], t.UnixNano())
			}
		}
		slices.Sort(s.priorC[id])
	}
	slices.Sort(s.prior)
	s.pcg = rand.NewPCG(0, 0)
	s.rng = rand.New(s.pcg)
	return s
}

const (
	simHour = int64(time.Hour)
	simDay  = int64(24 * time.Hour)
)

// run simulates one run with its seed until the target campaign has sent
// everything (or the horizon). It returns the time of the target's last
// send and whether it ended.
func (s *sim) run(seed [2]uint64, rec *simRecord) (int64, bool) {
	s.pcg.Seed(seed[0], seed[1])
	s.all = append(s.all[:0], s.prior...)
	s.hp, s.dp = 0, 0
	var target *simCampaign
	for _, c := range s.cs {
		c.left = c.total
		c.sent = append(c.sent[:0], s.priorC[c.c.ID]...)
		c.winFrom, c.winUntil, c.dayFrom, c.dayTo, c.dayIdx = 0, 0, 0, 0, 0
		if c.target {
			target = c
		}
	}
	now, nextSend := s.start, s.start
	horizon := s.start + int64(forecastHorizon)
	last := s.start
	rr := 0
	n := len(s.cs)
	active := 0
	for _, c := range s.cs {
		if c.left > 0 {
			active++
		}
	}
	for target.left > 0 {
		if active == 1 { // the target alone: no turns to take
			return s.runAlone(target, now, nextSend, last, rec)
		}
		if now < nextSend {
			now = nextSend
		}
		if now > horizon {
			return horizon, false
		}
		s.hp = lowerFrom(s.all, s.hp, now-simHour)
		s.dp = lowerFrom(s.all, s.dp, now-simDay)
		if s.dp >= 4096 && s.dp >= len(s.all)/2 {
			s.compact(now)
		}
		wake, sent := int64(0), false
		if rr >= n { // rr < 2n: rr %= n without a division
			rr -= n
		}
		for i := range n {
			j := rr + i
			if j >= n {
				j -= n
			}
			c := s.cs[j]
			if c.left == 0 {
				continue
			}
			at, why := s.nextAllowedWhy(c, now)
			if at > now {
				if wake == 0 || at < wake {
					wake = at
				}
				if c.target && rec != nil && rec.wait == nil {
					rec.wait = &ForecastWait{Motivo: why, Desde: time.Unix(0, now).In(c.loc), Hasta: time.Unix(0, at).In(c.loc)}
				}
				continue
			}
			rr += i + 1 // the next step starts after this campaign
			s.all = append(s.all, now)
			if c.quota > 0 {
				c.sent = append(c.sent, now)
			}
			if c.left--; c.left == 0 {
				active--
			}
			if c.target {
				last = now
				if rec != nil {
					rec.sends = append(rec.sends, now)
				}
			}
			nextSend = now + int64(randDelay(s.rng, time.Duration(c.minDelay), time.Duration(c.maxDelay)))
			sent = true
			break
		}
		if !sent {
			now = wake // > now: some rule holds every campaign with work until then
		}
	}
	return last, true
}

// runAlone is run's loop once only the target has work left: the same
// steps without the round-robin.
func (s *sim) runAlone(c *simCampaign, now, nextSend, last int64, rec *simRecord) (int64, bool) {
	horizon := s.start + int64(forecastHorizon)
	for c.left > 0 {
		if now < nextSend {
			now = nextSend
		}
		if now > horizon {
			return horizon, false
		}
		s.hp = lowerFrom(s.all, s.hp, now-simHour)
		s.dp = lowerFrom(s.all, s.dp, now-simDay)
		if s.dp >= 4096 && s.dp >= len(s.all)/2 {
			s.compact(now)
		}
		free := now >= c.winFrom && now < c.winUntil && c.quota == 0 && len(s.all)-s.hp < c.hourly &&
			now >= c.fullCapFrom && len(s.all)-s.dp < c.daily // nextAllowedWhy's first round, when it holds nothing
		if !free {
			at, why := s.nextAllowedWhy(c, now)
			if at > now {
				if rec != nil && rec.wait == nil {
					rec.wait = &ForecastWait{Motivo: why, Desde: time.Unix(0, now).In(c.loc), Hasta: time.Unix(0, at).In(c.loc)}
				}
				now = at
				continue
			}
		}
		s.all = append(s.all, now)
		if c.quota > 0 {
			c.sent = append(c.sent, now)
		}
		c.left--
		last = now
		if rec != nil {
			rec.sends = append(rec.sends, now)
		}
		nextSend = now + int64(randDelay(s.rng, time.Duration(c.minDelay), time.Duration(c.maxDelay)))
	}
	return last, true
}

// lowerFrom is the first index at or after i of a sorted ts whose time is
// not before since.
func lowerFrom(ts []int64, i int, since int64) int {
	for i < len(ts) && ts[i] < since {
		i++
	}
	return i
}

// nextAllowedWhy is sendLog.nextAllowedWhy on the simulated log, the same
// rules in the same order, with each count kept where the last one left
// it (exact: the simulated clock never goes back). forecast_internal_test
// holds the two to the same answers.
func (s *sim) nextAllowedWhy(c *simCampaign, now int64) (int64, string) {
	t, why := now, ""
	for range 4 {
		before := t
		if t < c.winFrom || t >= c.winUntil {
			if open := s.nextOpen(c, t); open > t {
				t, why = open, WaitWindow
			}
		}
		if c.quota > 0 {
			from, to := s.localDay(c, t)
			for c.dayIdx < len(c.sent) && c.sent[c.dayIdx] < from {
				c.dayIdx++
			}
			if len(c.sent)-c.dayIdx >= c.quota {
				t, why = to, WaitQuota
				continue
			}
		}
		h, d := s.hp, s.dp
		if t != now {
			h, d = lowerFrom(s.all, h, t-simHour), lowerFrom(s.all, d, t-simDay)
		}
		if len(s.all)-h >= c.hourly {
			if end := s.all[len(s.all)-c.hourly] + simHour; end > t {
				t, why = end, WaitHourlyCap
				continue
			}
		}
		daily := c.daily
		if t < c.fullCapFrom {
			daily = s.warmup.dailyCap(c.rate, time.Unix(0, t))
		}
		if len(s.all)-d >= daily {
			if end := s.all[len(s.all)-daily] + simDay; end > t {
				t, why = end, WaitDailyCap
				continue
			}
		}
		if t == before {
			break
		}
	}
	return t, why
}

// compact forgets the sends no rule looks at any more (as sendLog.add
// does): a day and a bit before now.
func (s *sim) compact(now int64) {
	k := s.dp
	s.all = s.all[:copy(s.all, s.all[k:])]
	s.hp -= k
	s.dp = 0
	for _, c := range s.cs {
		cut := lowerFrom(c.sent, 0, now-26*simHour) // every local midnight counted from is later
		if cut > 0 && cut <= c.dayIdx {
			c.sent = c.sent[:copy(c.sent, c.sent[cut:])]
			c.dayIdx -= cut
		}
	}
}

// nextOpen is Schedule.NextOpen, answered from the window of the last
// call while t is inside it.
func (s *sim) nextOpen(c *simCampaign, t int64) int64 {
	if t >= c.winFrom && t < c.winUntil {
		return t
	}
	open, from, until := c.c.Schedule.openWindow(c.loc, time.Unix(0, t))
	if !until.IsZero() {
		c.winFrom, c.winUntil = from.UnixNano(), until.UnixNano()
	}
	return open.UnixNano()
}

// localDay is the local day of t in the campaign's time zone: its
// midnight and the next (as nextAllowedWhy computes them).
func (s *sim) localDay(c *simCampaign, t int64) (int64, int64) {
	if t >= c.dayFrom && t < c.dayTo {
		return c.dayFrom, c.dayTo
	}
	lt := time.Unix(0, t).In(c.loc)
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, c.loc)
	from, to := midnight.UnixNano(), midnight.AddDate(0, 0, 1).UnixNano()
	c.dayFrom, c.dayTo = from, to
	c.dayIdx, _ = slices.BinarySearch(c.sent, from)
	return from, to
}

// Forecast forecasts a campaign from what the store holds now: its envíos
// left, its cliente's creation (the warm-up), what the cliente sent in the
// last day (Store.SentSince) and its other active campaigns. runs <= 0
// takes DefaultForecastRuns. The runs' seed is the campaign's id, so the
// same state gives the same forecast. ErrNotFound if there is no such
// campaign.
func (e *Engine) Forecast(ctx context.Context, id string, runs int) (ForecastResult, error) {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return ForecastResult{}, err
	}
	if IsMessages(c) {
		return ForecastResult{}, fmt.Errorf("campaña %q holds the cliente's transactional messages, which have no end to forecast: %w", id, ErrInvalid)
	}
	cl, err := e.store.Cliente(ctx, c.Cliente)
	if err != nil {
		return ForecastResult{}, err
	}
	pending := func(id string) (int, error) {
		counts, err := e.store.Counts(ctx, id)
		return int(counts.Open()), err
	}
	now := e.cfg.Clock.Now()
	in := ForecastInput{Campaign: c, ClienteCreated: cl.CreatedAt, Start: now, Runs: runs}
	if in.Pending, err = pending(id); err != nil {
		return ForecastResult{}, err
	}
	siblings, err := e.store.Campaigns(ctx, c.Cliente)
	if err != nil {
		return ForecastResult{}, err
	}
	for _, o := range siblings {
		if o.ID == id || IsMessages(o) {
			continue
		}
		fc := ForecastCampaign{Campaign: o}
		if o.Status == Activa {
			if fc.Pending, err = pending(o.ID); err != nil {
				return ForecastResult{}, err
			}
		}
		in.Others = append(in.Others, fc) // inactive ones too: they keep their place in the round-robin
	}
	sent, err := e.store.SentSince(ctx, now.Add(-25*time.Hour))
	if err != nil {
		return ForecastResult{}, err
	}
	in.Sent = sent[c.Cliente]
	h := fnv.New64a()
	h.Write([]byte(id))
	in.Rand = rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
	return Forecast(in), nil
}

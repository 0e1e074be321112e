package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// worker sends one cliente's campaigns, one envío at a time: a WhatsApp
// number sends at human rates, and one sender per number keeps the rate
// limits exact.
type worker struct {
	e       *Engine
	cliente string
	wake    chan struct{}

	// owned by the worker goroutine
	log          sendLog
	nextSend     time.Time // the random delay after the last send
	errorStreak  int
	breakerUntil time.Time
	scriptErrors map[string]int // campaign -> script failures in a row
	rr           int            // round-robin position over campaigns
	lastCheck    time.Time      // last number-check call

	// While the cliente's reach lock holds: where each campaign's scan for
	// warm envíos goes on, the phones found warm, and the earliest retry
	// of a warm envío seen in the scan.
	scriptHold map[string]time.Time // campaign -> its throttle hook holds it until then

	warmFrom map[string]uint64
	warm     map[string]bool
	warmNext map[string]time.Time
	// coldSeen: the pass over a campaign met a cold (or 463-held) pendiente;
	// lastColdSeen is that of the last finished pass (the wait it reports).
	coldSeen, lastColdSeen map[string]bool
	// idlePass: a finished pass found nothing due, at this Engine.warmth,
	// with this earliest warm retry: until either changes, no new pass.
	idlePass   map[string]idlePass
	passWarmth map[string]uint64 // Engine.warmth when the campaign's current pass began
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// wait blocks until poked, until t (if not zero), or until ctx ends.
func (w *worker) wait(ctx context.Context, t time.Time) {
	var timer <-chan time.Time
	if !t.IsZero() {
		d := t.Sub(w.e.cfg.Clock.Now())
		if d <= 0 {
			return
		}
		timer = w.e.cfg.Clock.After(d)
	}
	select {
	case <-ctx.Done():
	case <-w.wake:
	case <-timer:
	}
}

func (w *worker) run(ctx context.Context, sent map[string][]time.Time) {
	e := w.e
	w.scriptErrors = map[string]int{}
	if cl, err := e.store.Cliente(ctx, w.cliente); err == nil {
		w.log.start = cl.CreatedAt
	}
	for c, ts := range sent {
		for i := len(ts) - 1; i >= 0; i-- { // newest first: add oldest first
			w.log.add(c, ts[i])
		}
	}
	for ctx.Err() == nil {
		next, err := w.step(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("send loop", "cliente", w.cliente, "err", err)
			next = e.cfg.Clock.Now().Add(5 * time.Second) // a store error: try again soon, never spin
			e.setSendState(SendState{Cliente: w.cliente, Estado: SendingPaused, Motivo: BlockStore, Hasta: next, Detalle: err.Error()})
		}
		if next.IsZero() || next.After(e.cfg.Clock.Now()) {
			w.wait(ctx, next)
		}
	}
}

// step sends at most one envío. It returns when to look again (zero:
// when poked).
func (w *worker) step(ctx context.Context) (time.Time, error) {
	e := w.e
	now := e.cfg.Clock.Now()
	paused := func(why string, until time.Time, detail string) {
		e.setSendState(SendState{Cliente: w.cliente, Estado: SendingPaused, Motivo: why, Hasta: until, Detalle: detail})
	}
	if !e.gw.Ready(w.cliente) {
		paused(BlockSession, time.Time{}, "")
		return time.Time{}, nil // SessionChanged(READY) pokes us
	}
	if now.Before(w.breakerUntil) {
		paused(BlockBreaker, w.breakerUntil, "")
		return w.breakerUntil, nil
	}
	if now.Before(w.nextSend) {
		e.setSendState(SendState{Cliente: w.cliente, Estado: SendingActive, Hasta: w.nextSend})
		return w.nextSend, nil
	}
	if f := e.cfg.FreeSpace; f != nil {
		if free, err := f(); err == nil && free < e.cfg.MinFreeBytes {
			until := now.Add(5 * time.Second)
			paused(BlockDiskLow, until, fmt.Sprintf("%d bytes free on the data disk, the floor is %d", free, e.cfg.MinFreeBytes))
			return until, nil
		}
	}
	cs, err := e.store.Campaigns(ctx, w.cliente)
	if err != nil {
		return time.Time{}, err
	}
	var wake time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	e.expireReach(ctx, w.cliente)
	lock := e.Reach(w.cliente)
	locked := lock.LockedAt(now)
	if locked {
		earliest(lock.Until) // cold envíos resume then
	} else if w.warm != nil {
		w.warmFrom, w.warm, w.warmNext, w.coldSeen, w.lastColdSeen = nil, nil, nil, nil, nil // the next lock learns afresh
		w.idlePass, w.passWarmth = nil, nil
	}
	ordered, msgs := w.order(cs)
	ids := make([]string, len(ordered))
	waits := map[string]CampaignWait{}
	var held CampaignWait // the earliest wait of a campaign with work held back
	hold := func(c Campaign, why string, until time.Time) {
		waits[c.ID] = CampaignWait{Motivo: why, Hasta: until}
		if held.Motivo == "" || until.Before(held.Hasta) {
			held = CampaignWait{Motivo: why, Hasta: until}
		}
	}
	defer func() { e.setCampaignWaits(ids, waits) }()
	for i, c := range ordered {
		ids[i] = c.ID
		if c.Status != Activa {
			continue
		}
		if at, why := w.log.nextAllowedWhy(c, now); at.After(now) {
			earliest(at)
			hold(c, why, at)
			continue
		}
		if until := w.scriptHold[c.ID]; until.After(now) {
			earliest(until)
			hold(c, WaitScript, until)
			continue
		}
		var due Due
		if locked {
			due, err = w.nextWarm(ctx, c, now)
		} else {
			due, err = e.store.NextDue(ctx, c.ID, now)
		}
		if err != nil {
			return time.Time{}, err
		}
		if !due.Ok {
			earliest(due.Next)
			if locked && w.lastColdSeen[c.ID] {
				hold(c, BlockReach, lock.Until) // cold envíos wait; it says so only if nothing else goes
			}
			if due.Next.IsZero() && !locked && !IsMessages(c) {
				w.finishIfDone(ctx, c)
			}
			continue
		}
		if i >= msgs {
			w.rr += i - msgs + 1 // the next step starts after this campaign
		}
		sent, err := w.process(ctx, c, due.Envio)
		if err != nil {
			return time.Time{}, err
		}
		if sent {
			r := c.Rate.WithDefaults()
			w.nextSend = e.cfg.Clock.Now().Add(e.randDuration(r.MinDelay, r.MaxDelay))
			e.setSendState(SendState{Cliente: w.cliente, Estado: SendingActive, Hasta: w.nextSend})
			return w.nextSend, nil
		}
		return now, nil // nothing went out (skipped, omitted): look again at once
	}
	switch {
	case held.Motivo != "" && (wake.IsZero() || !wake.Before(held.Hasta)):
		paused(held.Motivo, held.Hasta, "")
	case !wake.IsZero():
		e.setSendState(SendState{Cliente: w.cliente, Estado: SendingActive, Hasta: wake}) // retries wait
	default:
		e.setSendState(SendState{Cliente: w.cliente, Estado: SendingIdle})
	}
	return wake, nil
}

// finishIfDone marks an active campaign terminada once every envío is final.
func (w *worker) finishIfDone(ctx context.Context, c Campaign) {
	counts, err := w.e.store.Counts(ctx, c.ID)
	if err != nil || counts.Open() > 0 || counts.Total() == 0 {
		return
	}
	if err := w.e.setStatus(ctx, c.ID, Terminada, "done", Activa); err != nil && !errors.Is(err, ErrConflict) {
		w.e.log.Error("finish campaign", "campaign", c.ID, "err", err)
	}
}

// process takes one due envío to a decision. sent reports whether a
// message went to WhatsApp (the rate delay applies).
func (w *worker) process(ctx context.Context, c Campaign, ref Ref) (sent bool, err error) {
	e := w.e
	env, err := e.store.Envio(ctx, ref)
	if err != nil {
		return false, err
	}
	if env.State != Pendiente {
		return false, nil
	}
	omit := func(reason string) (bool, error) {
		return false, ignoreConflict(e.apply(ctx, Transition{Envio: ref, From: Pendiente, To: Omitido, Reason: reason}))
	}
	if sup, err := e.store.Suppressed(ctx, w.cliente, env.Telefono); err != nil {
		return false, err
	} else if sup {
		return omit(ReasonOptOut)
	}
	if e.cfg.NumberCheck && env.Attempts == 0 {
		ok, known, err := w.checkNumber(ctx, c, env)
		if err != nil {
			return false, err
		}
		if !known {
			return false, nil // the check is rate-limited: try again later
		}
		if !ok {
			return omit(ReasonNotOnWhatsApp)
		}
	}
	hooks, err := e.cfg.HooksFor(c)
	if err != nil {
		return false, w.scriptFailed(ctx, c, env, err)
	}
	text := env.Mensaje // a retry sends the text fixed at its first write-ahead
	if text == "" {
		r, err := hooks.Personalize(ctx, c, env)
		if err != nil && ctx.Err() == nil {
			// Once more: a script's time limit is wall-clock time, and a
			// stalled host can trip it; a real script error fails twice.
			r, err = hooks.Personalize(ctx, c, env)
		}
		if ctx.Err() != nil {
			return false, nil // stopping: the envío stays pendiente
		}
		if err != nil {
			return false, w.scriptFailed(ctx, c, env, err)
		}
		if r.Skip {
			return omit(ReasonSkip + ":" + r.Reason)
		}
		text = r.Text
	}
	delete(w.scriptErrors, c.ID)
	if d, err := hooks.Throttle(ctx, c, w.stats(c)); err != nil {
		e.log.Warn("throttle hook failed; using the campaign's rate", "campaign", c.ID, "err", err)
	} else if w.throttle(c, d) {
		return false, nil // held by the script: the envío stays pendiente
	}
	// Write-ahead: enviando with the message id and the text, fsynced
	// before anything leaves.
	if !e.gw.Ready(w.cliente) {
		return false, nil
	}
	id := env.MsgID // a retry reuses the id of its first write-ahead
	if id == "" {
		id = e.messageID(ref)
	}
	if err := e.apply(ctx, Transition{Envio: ref, From: Pendiente, To: Enviando, Text: text, MsgID: id}); err != nil {
		return false, ignoreConflict(err)
	}
	// What the write-ahead committed, without reading it back.
	env.State, env.MsgID, env.Mensaje, env.Attempts = Enviando, id, text, env.Attempts+1
	return true, w.send(ctx, c, env)
}

// send sends a written-ahead envío and commits its outcome.
func (w *worker) send(ctx context.Context, c Campaign, env Envio) error {
	e := w.e
	back := func(reason string, at time.Time) error {
		return e.apply(context.WithoutCancel(ctx), Transition{Envio: env.Ref, From: Enviando, To: Pendiente, Reason: reason, NextAttempt: at})
	}
	// The live gate, right before the send.
	if !e.gw.Ready(w.cliente) {
		return back(ReasonSessionDown, e.cfg.Clock.Now())
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_ = e.gw.Typing(tctx, w.cliente, env.Telefono) // best effort
	cancel()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.SendTimeout)
	started := e.cfg.Clock.Now()
	ts, err := e.gw.Send(sctx, w.cliente, Outgoing{To: env.Telefono, MsgID: env.MsgID, Text: env.Mensaje})
	cancel()
	done := context.WithoutCancel(ctx) // commit the outcome even while stopping
	if err == nil {
		if ts.IsZero() {
			ts = e.cfg.Clock.Now()
		}
		if err := e.apply(done, Transition{Envio: env.Ref, From: Enviando, To: Enviado, At: ts}); err != nil {
			return fmt.Errorf("commit enviado %s: %w", env.Ref, err)
		}
		w.log.add(c.ID, ts)
		w.errorStreak = 0
		e.flushReceipts(done, env)
		return nil
	}
	outcome, reason := Classify(err)
	e.log.Warn("send failed", "envio", env.Ref, "msg_id", env.MsgID, "attempt", env.Attempts, "reason", reason, "err", err)
	maxAttempts := c.Rate.WithDefaults().MaxAttempts
	switch {
	case outcome == ReachLimited && env.Attempts < 2*maxAttempts:
		// WhatsApp refuses new chats: never retried inside the lock (that
		// makes it worse), not the number's failure (no breaker); the
		// envío waits with its id for the lock's end, however it ends
		// (nextWarm passes over it while the lock holds).
		if err := e.reachLocked(done, w.cliente, started); err != nil {
			// The lock is not stored (the data file refused it): this envío
			// still goes back, held for the default length of a lock, so it
			// is neither stuck enviando nor retried into the lock.
			return errors.Join(err, back(reason, e.cfg.Clock.Now().Add(e.cfg.ReachLockDefault)))
		}
		return back(reason, e.cfg.Clock.Now())
	case outcome == NotSent && env.Attempts <= 1:
		return e.apply(done, Transition{Envio: env.Ref, From: Enviando, To: Omitido, Reason: reason})
	case outcome == NotSent:
		// An earlier attempt's outcome is unknown: it may have arrived.
		return e.apply(done, Transition{Envio: env.Ref, From: Enviando, To: Fallido, Reason: reason})
	case outcome == SessionLost && env.Attempts < 2*maxAttempts:
		// Not the envío's fault: back at once, the cliente waits for READY.
		// Bounded all the same: a message that brings the session down
		// every time it is sent must not loop for ever.
		return back(reason, e.cfg.Clock.Now())
	case outcome == SessionLost:
		w.failed()
		return e.apply(done, Transition{Envio: env.Ref, From: Enviando, To: Fallido, Reason: ReasonMaxAttempts + ":" + reason})
	case outcome == Permanent:
		w.failed()
		return e.apply(done, Transition{Envio: env.Ref, From: Enviando, To: Fallido, Reason: reason})
	case env.Attempts >= maxAttempts:
		w.failed()
		return e.apply(done, Transition{Envio: env.Ref, From: Enviando, To: Fallido, Reason: ReasonMaxAttempts + ":" + reason})
	}
	w.failed()
	return back(reason, e.cfg.Clock.Now().Add(e.backoff(env.Attempts)))
}

// failed counts a failure for the circuit breaker.
func (w *worker) failed() {
	w.errorStreak++
	if w.errorStreak >= w.e.cfg.BreakerThreshold {
		w.breakerUntil = w.e.cfg.Clock.Now().Add(w.e.cfg.BreakerCooldown)
		w.e.log.Warn("circuit breaker: pausing the cliente after consecutive failures", "cliente", w.cliente, "failures", w.errorStreak, "until", w.breakerUntil)
		w.errorStreak = 0
	}
}

// scriptFailed marks the envío fallido (reason script) and pauses the
// campaign when its script keeps failing.
func (w *worker) scriptFailed(ctx context.Context, c Campaign, env Envio, cause error) error {
	e := w.e
	e.log.Warn("script failed", "envio", env.Ref, "err", cause)
	if err := e.apply(ctx, Transition{Envio: env.Ref, From: Pendiente, To: Fallido, Reason: ReasonScript}); err != nil {
		return ignoreConflict(err)
	}
	w.scriptErrors[c.ID]++
	if w.scriptErrors[c.ID] >= e.cfg.ScriptErrorPause {
		delete(w.scriptErrors, c.ID)
		return ignoreConflict(e.setStatus(ctx, c.ID, Pausada, ReasonScript, Activa))
	}
	return nil
}

func (w *worker) stats(c Campaign) ThrottleStats {
	now := w.e.cfg.Clock.Now()
	lt := now.In(c.Schedule.Location())
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, lt.Location())
	return ThrottleStats{
		Cliente: w.cliente, Campaign: c.ID, ErrorStreak: w.errorStreak, LocalTime: lt,
		SentToday: countSince(w.log.all, midnight), SentLastHour: countSince(w.log.all, now.Add(-time.Hour)),
	}
}

// throttle applies a throttle hook's decision (ThrottleDecision's doc is
// the one statement of what each field does) and reports whether it holds
// this turn's envío back.
func (w *worker) throttle(c Campaign, d ThrottleDecision) bool {
	now := w.e.cfg.Clock.Now()
	held := false
	if d.Delay > 0 {
		w.nextSend = maxTime(w.nextSend, now.Add(d.Delay)) // the number waits
		held = true
	}
	until := time.Time{}
	if d.PauseUntil.After(now) {
		until = d.PauseUntil // this campaign waits; the others go on
	}
	if d.Skip {
		r := c.Rate.WithDefaults()
		until = maxTime(until, now.Add(w.e.randDuration(r.MinDelay, r.MaxDelay)))
	}
	if !until.IsZero() {
		if w.scriptHold == nil {
			w.scriptHold = map[string]time.Time{}
		}
		w.scriptHold[c.ID] = until
		held = true
	}
	return held
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// checkNumber answers from the cache, or checks a batch of upcoming phones
// at most once per NumberCheckEvery. known is false when it had to wait.
func (w *worker) checkNumber(ctx context.Context, c Campaign, env Envio) (ok, known bool, err error) {
	e := w.e
	now := e.cfg.Clock.Now()
	cached, err := e.store.KnownNumbers(ctx, w.cliente, []string{env.Telefono}, now.Add(-e.cfg.NumberCheckTTL))
	if err != nil {
		return false, false, err
	}
	if v, hit := cached[env.Telefono]; hit {
		return v, true, nil
	}
	if now.Before(w.lastCheck.Add(e.cfg.NumberCheckEvery)) {
		w.nextSend = w.lastCheck.Add(e.cfg.NumberCheckEvery)
		return false, false, nil
	}
	batch := []string{env.Telefono}
	upcoming, err := e.store.Envios(ctx, c.ID, env.Ref.Seq, e.cfg.NumberCheckBatch-1, Pendiente)
	if err != nil {
		return false, false, err
	}
	for _, u := range upcoming {
		batch = append(batch, u.Telefono)
	}
	w.lastCheck = now
	res, err := e.gw.OnWhatsApp(ctx, w.cliente, batch)
	if err != nil {
		e.log.Warn("number check failed; will retry", "cliente", w.cliente, "err", err)
		return false, false, nil
	}
	if err := e.store.SaveNumbers(ctx, w.cliente, res); err != nil {
		return false, false, err
	}
	v, hit := res[env.Telefono]
	return v, hit, nil
}

func ignoreConflict(err error) error {
	if errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}

// warmScanPage is how many pendiente envíos nextWarm reads at a time.
const warmScanPage = 256

// nextWarm finds a due envío of c to a warm recipient (one with a chat)
// while the cliente's reach lock holds. It scans the campaign's pendientes
// from where the last call stopped, so a lock costs one pass over them,
// not one per send; at the end of a pass it answers the earliest retry of
// a warm envío it saw, and starts over on the next call.
func (w *worker) nextWarm(ctx context.Context, c Campaign, now time.Time) (Due, error) {
	if p, ok := w.idlePass[c.ID]; ok && p.warmth == w.e.warmth.Load() && (p.next.IsZero() || now.Before(p.next)) {
		return Due{Next: p.next}, nil // nothing changed since a pass found nothing due
	}
	if w.warmFrom == nil {
		w.warmFrom, w.warm, w.warmNext = map[string]uint64{}, map[string]bool{}, map[string]time.Time{}
		w.coldSeen, w.lastColdSeen = map[string]bool{}, map[string]bool{}
		w.idlePass, w.passWarmth = map[string]idlePass{}, map[string]uint64{}
	}
	if w.warmFrom[c.ID] == 0 {
		w.passWarmth[c.ID] = w.e.warmth.Load() // a pass starts: what it will have seen
	}
	for {
		page, err := w.e.store.Envios(ctx, c.ID, w.warmFrom[c.ID], warmScanPage, Pendiente)
		if err != nil {
			return Due{}, err
		}
		for _, env := range page {
			w.warmFrom[c.ID] = env.Ref.Seq
			if env.Reason == reasonReachHeld {
				w.coldSeen[c.ID] = true
				continue // refused with 463: held until the lock ends, warm or not
			}
			warm, err := w.isWarm(ctx, env.Telefono)
			if err != nil {
				return Due{}, err
			}
			if !warm {
				w.coldSeen[c.ID] = true
				continue
			}
			if env.NextAttempt.After(now) {
				if next := w.warmNext[c.ID]; next.IsZero() || env.NextAttempt.Before(next) {
					w.warmNext[c.ID] = env.NextAttempt
				}
				continue
			}
			delete(w.idlePass, c.ID)
			// The next call reads this envío again: if it is still
			// pendiente (a retry, a throttle, the number check) its
			// next attempt counts in this pass.
			w.warmFrom[c.ID] = env.Ref.Seq - 1
			return Due{Envio: env.Ref, Ok: true}, nil
		}
		if len(page) < warmScanPage {
			next := w.warmNext[c.ID]
			w.warmFrom[c.ID] = 0
			delete(w.warmNext, c.ID)
			w.lastColdSeen[c.ID] = w.coldSeen[c.ID]
			delete(w.coldSeen, c.ID)
			w.idlePass[c.ID] = idlePass{warmth: w.passWarmth[c.ID], next: next}
			return Due{Next: next}, nil
		}
	}
}

// isWarm says whether the cliente has a chat with phone: the store knows
// a reply from it or a delivered envío to it, or the device holds its
// privacy token. A warm phone stays warm for the rest of the lock.
func (w *worker) isWarm(ctx context.Context, phone string) (bool, error) {
	if w.warm[phone] {
		return true, nil
	}
	ok, err := w.e.store.HasChat(ctx, w.cliente, phone)
	if err != nil {
		return false, err
	}
	if !ok {
		if ok, err = w.e.gw.HasChat(ctx, w.cliente, phone); err != nil {
			w.e.log.Warn("privacy token lookup failed; treating the recipient as cold", "cliente", w.cliente, "err", err)
			ok = false
		}
	}
	if ok {
		w.warm[phone] = true
	}
	return ok, nil
}

// order lists the cliente's campaigns in the order a step tries them: its
// transactional messages first (msgs of them: a person is waiting), then
// the campaigns round-robin from where the last send left off.
func (w *worker) order(cs []Campaign) (out []Campaign, msgs int) {
	out = make([]Campaign, 0, len(cs))
	var rest []Campaign
	for _, c := range cs {
		if IsMessages(c) {
			c.Rate = w.e.messagesRate() // the serve flags', whatever was stored
			out = append(out, c)
		} else {
			rest = append(rest, c)
		}
	}
	msgs = len(out)
	w.rr %= max(len(rest), 1)
	for i := range rest {
		out = append(out, rest[(w.rr+i)%len(rest)])
	}
	return out, msgs
}

// idlePass is a finished warm scan that found nothing due.
type idlePass struct {
	warmth uint64
	next   time.Time
}

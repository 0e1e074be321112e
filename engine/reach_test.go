package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
)

// A reach lock in the middle of a campaign: the third cold send is refused
// with 463 while the server announces a timelock of two hours. During the
// lock only warm recipients (a privacy token on the device, or a reply in
// the store) are sent to; the refused envío and the other cold ones wait
// with their ids and go out after it, each once.
func TestEngine_ReachLockServesWarmAndHoldsCold(t *testing.T) {
	const n = 12
	h := newHarness(t, n, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, MaxAttempts: 3, HourlyCap: 1000, DailyCap: 1000},
		engine.Config{BreakerThreshold: 2})
	ctx := context.Background()
	phone := func(i int) string { return fmt.Sprintf("+54911%08d", i) }
	warm := map[string]bool{}
	for i := 2; i <= n; i += 2 {
		warm[phone(i)] = true
		if i <= 6 {
			h.gw.SetChat(phone(i), true) // the device holds their privacy token
		} else if err := h.db.SaveReply(ctx, engine.Reply{Cliente: "c1", From: phone(i), MsgID: fmt.Sprintf("in%d", i), Text: "hola", At: t0}, nil, false); err != nil {
			t.Fatal(err) // they wrote to the cliente
		}
	}
	var (
		mu             sync.Mutex
		cold           int
		lockStart, end time.Time
		insideLock     []string // cold sends tried while the lock held
		warmInLock     int
		lockedID       string
	)
	h.gw.Fail = func(_ context.Context, _ string, m engine.Outgoing) error {
		mu.Lock()
		defer mu.Unlock()
		now := h.clock.Now()
		inLock := !end.IsZero() && now.Before(end)
		switch {
		case warm[m.To] && inLock:
			warmInLock++
		case warm[m.To]:
		case inLock:
			insideLock = append(insideLock, m.To)
			return &engine.AckError{MsgID: m.MsgID, Code: 463}
		default:
			cold++
			if cold == 3 && end.IsZero() {
				lockStart, end, lockedID = now, now.Add(2*time.Hour), m.MsgID
				h.eng.ReachChanged(engine.ReachNotice{Cliente: "c1", Active: true, Until: end, Enforcement: "REACHOUT_TIMELOCK"})
				return &engine.AckError{MsgID: m.MsgID, Code: 463}
			}
		}
		return nil
	}
	if err := h.eng.StartCampaign(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	h.until("terminada", campaignIs(engine.Terminada))

	mu.Lock()
	defer mu.Unlock()
	if end.IsZero() {
		t.Fatal("the lock never started: fewer than 3 cold sends")
	}
	if len(insideLock) > 0 {
		t.Errorf("cold sends inside the lock: %v", insideLock)
	}
	if warmInLock == 0 {
		t.Error("no warm recipient was served during the lock")
	}
	if c := h.counts(); c[engine.Enviado] != n {
		t.Errorf("counts %v, want %d enviado", c, n)
	}
	all, _ := h.db.Envios(ctx, "k", 0, n, "")
	acked := h.gw.AckedIDs()
	for _, e := range all {
		if acked[e.MsgID] != 1 {
			t.Errorf("envío %s acked %d times", e.Ref, acked[e.MsgID])
		}
		if e.MsgID == lockedID && (e.Attempts != 2 || !e.SentAt.After(end.Add(-time.Second))) {
			t.Errorf("the refused envío %+v: want its second attempt after the lock's end %v", e, end)
		}
	}
	for _, s := range h.gw.Acked() {
		if !warm[s.To] && !s.At.Before(lockStart) && s.At.Before(end) {
			t.Errorf("cold %s acked at %v, inside the lock %v..%v", s.To, s.At, lockStart, end)
		}
	}
	// The lock and its end are journaled (and so reach the webhooks).
	entries, err := h.db.JournalPage(ctx, 0, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, e := range entries {
		if e.Kind == engine.KindReach {
			events = append(events, e.Event+" "+e.Reason)
			if e.Event == engine.EventReachLocked && !e.Until.Equal(end) {
				t.Errorf("journaled lock until %v, want %v", e.Until, end)
			}
		}
	}
	want := []string{engine.EventReachLocked + " timelock:REACHOUT_TIMELOCK", engine.EventReachUnlocked + " timelock:REACHOUT_TIMELOCK"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("reach journal %v, want %v", events, want)
	}
	h.checkNoLie()
}

// A 463 with no timelock notification locks new chats for the default, and
// a restart inside the lock keeps it: the stored lock holds cold envíos.
func TestEngine_ReachLockFrom463SurvivesRestart(t *testing.T) {
	h := newHarness(t, 3, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 1000, DailyCap: 1000},
		engine.Config{ReachLockDefault: time.Hour})
	ctx := context.Background()
	var mu sync.Mutex
	refused := 0
	h.gw.Fail = func(_ context.Context, _ string, m engine.Outgoing) error {
		mu.Lock()
		defer mu.Unlock()
		if refused == 0 {
			refused++
			return &engine.AckError{MsgID: m.MsgID, Code: 463}
		}
		return nil
	}
	if err := h.eng.StartCampaign(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	h.until("the lock", func(ev engine.Event) bool { return ev.Type == "reach" && ev.Reach.Active })
	l := h.eng.Reach("c1")
	if l.Source != engine.ReachAck463 || !l.Until.Equal(l.At.Add(time.Hour)) {
		t.Fatalf("lock %+v, want an hour from the 463", l)
	}
	h.stop()
	h.start(h.db, engine.Config{Clock: h.clock, ReachLockDefault: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	h.until("the end of the stored lock", func(ev engine.Event) bool { return ev.Type == "reach" && !ev.Reach.Active })
	if now := h.clock.Now(); now.Before(l.Until) {
		t.Fatalf("lock ended at %v, before its end %v", now, l.Until)
	}
	for _, s := range h.gw.Acked() {
		if s.At.Before(l.Until) {
			t.Errorf("%s acked at %v, inside the lock that ends %v (all are cold)", s.To, s.At, l.Until)
		}
	}
	h.until("terminada", campaignIs(engine.Terminada))
	if c := h.counts(); c[engine.Enviado] != 3 {
		t.Errorf("counts %v", c)
	}
}

// A 463 of a send that was in flight while the server's timelock started
// and ended belongs to that lock: it opens no new one (which would hold
// cold envíos for ReachLockDefault after the server lifted the lock).
func TestEngine_Late463OfAnEndedLockOpensNone(t *testing.T) {
	h := newHarness(t, 2, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 1000, DailyCap: 1000}, engine.Config{})
	var once sync.Once
	h.gw.Fail = func(_ context.Context, _ string, m engine.Outgoing) error {
		late := false
		once.Do(func() {
			now := h.clock.Now()
			h.eng.ReachChanged(engine.ReachNotice{Cliente: "c1", Active: true, Until: now.Add(time.Hour)})
			h.eng.ReachChanged(engine.ReachNotice{Cliente: "c1", Active: false})
			late = true
		})
		if late {
			return &engine.AckError{MsgID: m.MsgID, Code: 463}
		}
		return nil
	}
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.until("terminada", campaignIs(engine.Terminada))
	entries, err := h.db.JournalPage(context.Background(), 0, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == engine.KindReach && e.Reason == engine.ReachAck463 {
			t.Errorf("the late 463 opened a lock: %+v", e)
		}
	}
	if c := h.counts(); c[engine.Enviado] != 2 {
		t.Errorf("counts %v", c)
	}
}

// failingReachStore cannot save a reach lock.
type failingReachStore struct{ *kv.DB }

func (failingReachStore) SaveReachLock(context.Context, engine.ReachLock) error {
	return errors.New("disk full")
}

// A 463 whose lock cannot be stored still puts its envío back, held for
// the default length of a lock: never stuck enviando, never retried soon.
func TestEngine_463WithUnsavableLockHoldsTheEnvio(t *testing.T) {
	h := newHarnessWrapped(t, 1, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 1000, DailyCap: 1000},
		engine.Config{ReachLockDefault: time.Hour}, func(db *kv.DB) engine.Store { return failingReachStore{db} })
	h.gw.Fail = func(_ context.Context, _ string, m engine.Outgoing) error {
		return &engine.AckError{MsgID: m.MsgID, Code: 463}
	}
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.until("the envío back to pendiente", func(ev engine.Event) bool { return ev.From == engine.Enviando && ev.To == engine.Pendiente })
	e, err := h.db.Envio(context.Background(), engine.Ref{Campaign: "k", Seq: 1})
	if err != nil || e.State != engine.Pendiente || e.Reason != "ack_463" || !e.NextAttempt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("envío %+v (%v), want pendiente ack_463 until %v", e, err, t0.Add(time.Hour))
	}
}

// countingStore counts pendiente scans (Envios calls).
type countingStore struct {
	*kv.DB
	scans atomic.Int64
}

func (s *countingStore) Envios(ctx context.Context, campaign string, after uint64, limit int, state engine.State) ([]engine.Envio, error) {
	s.scans.Add(1)
	return s.DB.Envios(ctx, campaign, after, limit, state)
}

// During a lock with only cold pendientes, waking the worker (here: the
// session reporting READY again) does not rescan them while nothing that
// could make one warm happened; a reply does.
func TestEngine_ReachLockDoesNotRescanWhenNothingChanged(t *testing.T) {
	cs := &countingStore{}
	h := newHarnessWrapped(t, 600, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 1000, DailyCap: 1000},
		engine.Config{ReachLockDefault: time.Hour}, func(db *kv.DB) engine.Store { cs.DB = db; return cs })
	h.gw.Fail = func(_ context.Context, _ string, m engine.Outgoing) error {
		return &engine.AckError{MsgID: m.MsgID, Code: 463}
	}
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.until("the lock", func(ev engine.Event) bool { return ev.Type == "reach" && ev.Reach.Active })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Past the pause after the last send, well inside the lock: the
	// worker's next step scans the pendientes once and finds none warm.
	n := h.clock.Asked()
	h.clock.Advance(2 * time.Second)
	if !h.clock.WaitAsked(ctx, n) {
		t.Fatal("the worker did not wait again after its pause")
	}
	before := cs.scans.Load()
	if before == 0 {
		t.Fatal("no scan inside the lock")
	}
	for range 10 { // each wake-up is a whole step: the worker waits on the clock again after it
		n := h.clock.Asked()
		h.eng.SessionChanged(engine.SessionEvent{Cliente: "c1", State: engine.SessionReady})
		if !h.clock.WaitAsked(ctx, n) {
			t.Fatal("the worker did not wait again after a wake-up")
		}
	}
	if n := cs.scans.Load() - before; n != 0 {
		t.Errorf("%d pendiente scans for 10 wake-ups with nothing changed, want none", n)
	}
	// A reply makes its phone warm: then it is scanned for, and sent.
	h.eng.Reply(engine.Reply{Cliente: "c1", From: "+5491100000300", MsgID: "in1", Text: "hola", At: t0})
	h.until("the warm envío sent", func(ev engine.Event) bool { return ev.To == engine.Enviando && ev.Envio == 300 })
	if n := cs.scans.Load() - before; n == 0 {
		t.Error("the reply did not start a new scan")
	}
}

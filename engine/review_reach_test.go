package engine_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/engine/enginetest"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

// A warm recipient whose send fails transiently during a reach lock is
// retried after its backoff, not held until the lock ends: nextWarm must
// see the retry it scheduled (the scan had already passed the envío when
// it was sent).
func TestReview_WarmRetryInsideTheLockIsNotHeldToItsEnd(t *testing.T) {
	h := newHarness(t, 3, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, MaxAttempts: 3, HourlyCap: 1000, DailyCap: 1000},
		engine.Config{BackoffBase: time.Minute, BackoffMax: time.Minute})
	const warm = "+5491100000001" // envío 1; 2 and 3 are cold
	h.gw.SetChat(warm, true)
	end := t0.Add(10 * time.Hour)
	lockThenStart(t, h, end)
	var (
		mu    sync.Mutex
		tries int
	)
	h.gw.Fail = func(_ context.Context, _ string, m engine.Outgoing) error {
		mu.Lock()
		defer mu.Unlock()
		if m.To == warm {
			if tries++; tries == 1 {
				return &engine.AckError{MsgID: m.MsgID, Code: 500} // transient: retry after the backoff
			}
		}
		return nil
	}
	h.until("the warm envío acked", func(ev engine.Event) bool {
		return ev.Type == "envio" && ev.Envio == 1 && ev.To == engine.Enviado
	})
	for _, s := range h.gw.Acked() {
		if s.To == warm && !s.At.Before(end) {
			t.Errorf("the warm envío's retry went out at %v, at the lock's end %v: held 10h for a 1m backoff", s.At, end)
		}
	}
}

// The same when the send is not attempted at all on its first pick (the
// throttle hook asks for a delay): the scan must come back to it.
func TestReview_WarmEnvioThrottledInsideTheLockIsNotHeldToItsEnd(t *testing.T) {
	hooks := &throttleOnce{}
	h := newHarness(t, 3, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, MaxAttempts: 3, HourlyCap: 1000, DailyCap: 1000},
		engine.Config{HooksFor: func(engine.Campaign) (engine.Hooks, error) { return hooks, nil }})
	const warm = "+5491100000001"
	h.gw.SetChat(warm, true)
	end := t0.Add(10 * time.Hour)
	lockThenStart(t, h, end)
	h.until("the warm envío acked", func(ev engine.Event) bool {
		return ev.Type == "envio" && ev.Envio == 1 && ev.To == engine.Enviado
	})
	for _, s := range h.gw.Acked() {
		if s.To == warm && !s.At.Before(end) {
			t.Errorf("the warm envío went out at %v, at the lock's end %v: held 10h for a 1m throttle", s.At, end)
		}
	}
}

type throttleOnce struct {
	engine.TemplateHooks
	mu   sync.Mutex
	done bool
}

func (h *throttleOnce) Throttle(context.Context, engine.Campaign, engine.ThrottleStats) (engine.ThrottleDecision, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return engine.ThrottleDecision{}, nil
	}
	h.done = true
	return engine.ThrottleDecision{Delay: time.Minute}, nil
}

// lockThenStart opens a reach lock until end and starts campaign k with
// the session down, then brings it up: no step waits on the lock's end
// before the campaign is active (a stale fake timer would jump the clock).
func lockThenStart(t *testing.T, h *harness, end time.Time) {
	t.Helper()
	h.gw.SetReady("c1", false)
	h.eng.ReachChanged(engine.ReachNotice{Cliente: "c1", Active: true, Until: end})
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.gw.SetReady("c1", true)
	h.eng.SessionChanged(engine.SessionEvent{Cliente: "c1", State: engine.SessionReady})
}

// The server's notice that a stored lock ended can come before the
// engine's Run has read the stored locks (app.go starts the sessions and
// Run together): the notice must end the lock, not be ignored as "no lock
// to end" and the stored lock then loaded over it.
func TestReview_ReachEndBeforeRunLoadsTheStoredLock(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	kvtest.MustCampaign(t, db, "k", 1)
	ctx := context.Background()
	clock := enginetest.NewClock(t0)
	stored := engine.ReachLock{Cliente: "c1", Active: true, Until: t0.Add(24 * time.Hour), Source: engine.ReachAck463, At: t0.Add(-time.Hour)}
	if err := db.SaveReachLock(ctx, stored); err != nil {
		t.Fatal(err)
	}
	gw := enginetest.NewGateway(clock)
	eng := engine.New(db, gw, engine.Config{Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	eng.ReachChanged(engine.ReachNotice{Cliente: "c1", Active: false}) // before Run
	events, unsub := eng.Events().Subscribe(64)
	defer unsub()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { eng.Run(rctx); close(done) }()
	defer func() { cancel(); <-done }()
	select { // the worker's first step: Run has read the stored locks
	case <-events:
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the engine")
	}
	if l, holds := eng.ReachHolding("c1"); holds {
		t.Errorf("the server ended the lock, yet it holds: %+v", l)
	}
	locks, err := db.ReachLocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if locks["c1"].Active {
		t.Errorf("stored lock still active: %+v", locks["c1"])
	}
}

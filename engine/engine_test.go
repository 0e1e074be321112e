package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/engine/enginetest"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type harness struct {
	t      *testing.T
	db     *kv.DB
	clock  *enginetest.Clock
	gw     *enginetest.Gateway
	eng    *engine.Engine
	events <-chan engine.Event
	stop   func()
}

// newHarness runs an engine on a real kv file with a fake clock and an
// in-memory gateway; campaign "k" of cliente "c1" has n envíos.
func newHarness(t *testing.T, n int, rate engine.Rate, cfg engine.Config) *harness {
	t.Helper()
	return newHarnessWrapped(t, n, rate, cfg, nil)
}

// newHarnessWrapped is newHarness with the engine's store wrapped.
func newHarnessWrapped(t *testing.T, n int, rate engine.Rate, cfg engine.Config, wrap func(*kv.DB) engine.Store) *harness {
	t.Helper()
	db, _ := kvtest.MustOpen(t, kv.Options{})
	kvtest.MustCampaign(t, db, "k", n)
	ctx := context.Background()
	if _, err := db.UpdateCampaign(ctx, "k", func(c *engine.Campaign) error { c.Rate = rate; return nil }); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, clock: enginetest.NewClock(t0)}
	h.gw = enginetest.NewGateway(h.clock)
	h.gw.SetReady("c1", true)
	cfg.Clock = h.clock
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	var store engine.Store = db
	if wrap != nil {
		store = wrap(db)
	}
	h.start(store, cfg)
	t.Cleanup(func() { h.stop() })
	return h
}

// start runs a new engine on store (the harness's data file).
func (h *harness) start(store engine.Store, cfg engine.Config) {
	h.eng = engine.New(store, h.gw, cfg)
	var unsub func()
	h.events, unsub = h.eng.Events().Subscribe(1 << 16)
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.eng.Run(rctx); close(done) }()
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); <-done; unsub() }) }
}

// until drives the fake clock, timer by timer, until an event matches.
func (h *harness) until(what string, match func(engine.Event) bool) {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-h.events:
			if match(ev) {
				return
			}
			continue
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s", what)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		h.clock.AdvanceToNext(ctx) // no timer pending yet: the engine is busy or waiting on an event
		cancel()
	}
}

func campaignIs(status engine.CampaignStatus) func(engine.Event) bool {
	return func(ev engine.Event) bool { return ev.Type == "campaign" && ev.Status == string(status) }
}

func (h *harness) counts() engine.Counts {
	c, err := h.db.Counts(context.Background(), "k")
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// checkNoLie asserts the rule: every envío counted as sent has an ack of
// its message id, and no message id was acked twice.
func (h *harness) checkNoLie() {
	h.t.Helper()
	acked := h.gw.AckedIDs()
	all, _ := h.db.Envios(context.Background(), "k", 0, 1<<20, "")
	for _, e := range all {
		if e.State.Sent() && acked[e.MsgID] == 0 {
			h.t.Fatalf("envío %s is %s but its message id %s was never acked", e.Ref, e.State, e.MsgID)
		}
	}
	for id, n := range acked {
		if n > 1 {
			h.t.Fatalf("message id %s acked %d times", id, n)
		}
	}
}

func TestEngine_SendsEveryEnvioOnceWithTheRateDelay(t *testing.T) {
	h := newHarness(t, 20, engine.Rate{MinDelay: 10 * time.Second, MaxDelay: 20 * time.Second, HourlyCap: 1000, DailyCap: 1000}, engine.Config{})
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.until("terminada", campaignIs(engine.Terminada))
	if c := h.counts(); c[engine.Enviado] != 20 {
		t.Fatalf("counts %v, want 20 enviado", c)
	}
	h.checkNoLie()
	acks := h.gw.Acked()
	for i := 1; i < len(acks); i++ {
		if gap := acks[i].At.Sub(acks[i-1].At); gap < 10*time.Second || gap > 20*time.Second {
			t.Fatalf("gap between sends %d and %d is %v, want 10s-20s", i-1, i, gap)
		}
	}
	for i, a := range acks {
		if want := fmt.Sprintf("Hola N%d", i+1); a.Text != want {
			t.Fatalf("send %d text %q, want %q (import order, rendered template)", i, a.Text, want)
		}
	}
}

// The seed incident: the session drops in the middle of the batch. Nothing
// is enviado without an ack, the worker stops instead of burning the
// queue, and after reconnection every recipient gets exactly one message.
func TestEngine_SessionDropMidBatchPausesAndCompletes(t *testing.T) {
	h := newHarness(t, 250, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 10000, DailyCap: 10000}, engine.Config{})
	var sends atomic.Int32
	h.gw.Fail = func(ctx context.Context, cliente string, m engine.Outgoing) error {
		if sends.Add(1) == 100 {
			h.gw.SetReady("c1", false) // the socket drops while message 100 is in flight
			return engine.ErrSessionDown
		}
		return nil
	}
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.until("the drop", func(ev engine.Event) bool { return ev.Type == "envio" && ev.Reason == engine.ReasonSessionDown })
	// While the session is down, time passes and nothing more is claimed.
	for range 50 {
		h.clock.Advance(time.Minute)
	}
	c := h.counts()
	if c[engine.Enviado] != 99 || c[engine.Enviando] != 0 || c[engine.Pendiente] != 151 {
		t.Fatalf("while down: %v, want 99 enviado, 151 pendiente, none in flight", c)
	}
	h.checkNoLie()
	h.gw.SetReady("c1", true)
	h.eng.SessionChanged(engine.SessionEvent{Cliente: "c1", State: engine.SessionReady})
	h.until("terminada", campaignIs(engine.Terminada))
	if c := h.counts(); c[engine.Enviado] != 250 {
		t.Fatalf("counts %v", c)
	}
	h.checkNoLie()
	perPhone := map[string]int{}
	for _, a := range h.gw.Acked() {
		perPhone[a.To]++
	}
	for p, n := range perPhone {
		if n != 1 {
			t.Fatalf("%s received %d messages", p, n)
		}
	}
	if len(perPhone) != 250 {
		t.Fatalf("%d recipients, want 250", len(perPhone))
	}
}

func TestEngine_FaultClassesEndInTheirStates(t *testing.T) {
	h := newHarness(t, 6, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, MaxAttempts: 3, HourlyCap: 1000, DailyCap: 1000},
		engine.Config{BackoffBase: time.Minute, BackoffMax: time.Hour, SendTimeout: 50 * time.Millisecond, BreakerThreshold: 100})
	phone := func(i int) string { return fmt.Sprintf("+54911%08d", i) }
	tries := map[string]int{}
	h.gw.NotOnWhatsApp(phone(5))
	h.gw.Fail = func(ctx context.Context, _ string, m engine.Outgoing) error {
		tries[m.To]++
		switch m.To {
		case phone(1): // transient ack error once, then fine
			if tries[m.To] == 1 {
				return &engine.AckError{MsgID: m.MsgID, Code: 463}
			}
		case phone(2): // permanent ack error
			return &engine.AckError{MsgID: m.MsgID, Code: 403}
		case phone(3): // the ack never comes the first time
			if tries[m.To] == 1 {
				<-ctx.Done()
				return ctx.Err()
			}
		case phone(4): // always a server error: attempts run out
			return &engine.AckError{MsgID: m.MsgID, Code: 500}
		}
		return nil
	}
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.until("terminada", campaignIs(engine.Terminada))
	want := map[int]struct {
		state  engine.State
		reason string
	}{
		1: {engine.Enviado, ""}, 2: {engine.Fallido, "ack_403"}, 3: {engine.Enviado, ""},
		4: {engine.Fallido, "max_attempts:ack_500"}, 5: {engine.Fallido, engine.ReasonNotOnWhatsApp}, 6: {engine.Enviado, ""},
	}
	for seq, w := range want {
		e, _ := h.db.Envio(context.Background(), engine.Ref{Campaign: "k", Seq: uint64(seq)})
		if e.State != w.state || e.Reason != w.reason {
			t.Errorf("envío %d: %s (%s), want %s (%s)", seq, e.State, e.Reason, w.state, w.reason)
		}
	}
	if tries[phone(4)] != 3 {
		t.Errorf("phone 4 tried %d times, want 3 (MaxAttempts)", tries[phone(4)])
	}
	h.checkNoLie()
}

func TestEngine_NumberCheckOmitsPhonesNotOnWhatsApp(t *testing.T) {
	h := newHarness(t, 5, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second}, engine.Config{NumberCheck: true})
	h.gw.NotOnWhatsApp("+5491100000002")
	h.eng.StartCampaign(context.Background(), "k")
	h.until("terminada", campaignIs(engine.Terminada))
	e, _ := h.db.Envio(context.Background(), engine.Ref{Campaign: "k", Seq: 2})
	if e.State != engine.Omitido || e.Reason != engine.ReasonNotOnWhatsApp || e.MsgID != "" {
		t.Fatalf("envío 2: %+v, want omitido before any send", e)
	}
	if c := h.counts(); c[engine.Enviado] != 4 {
		t.Fatalf("counts %v", c)
	}
}

func TestEngine_ReceiptsAndOptOut(t *testing.T) {
	h := newHarness(t, 3, engine.Rate{MinDelay: time.Hour, MaxDelay: time.Hour}, engine.Config{})
	ctx := context.Background()
	h.eng.StartCampaign(ctx, "k")
	h.until("first send", func(ev engine.Event) bool { return ev.To == engine.Enviado })
	first, _ := h.db.Envio(ctx, engine.Ref{Campaign: "k", Seq: 1})
	h.eng.Receipt(engine.Receipt{Cliente: "c1", MsgIDs: []string{first.MsgID}, Kind: engine.ReceiptDelivered, At: t0})
	h.eng.Receipt(engine.Receipt{Cliente: "c1", MsgIDs: []string{first.MsgID}, Kind: engine.ReceiptRead, At: t0})
	h.eng.Receipt(engine.Receipt{Cliente: "c1", MsgIDs: []string{first.MsgID}, Kind: engine.ReceiptDelivered, At: t0}) // late: ignored
	if e, _ := h.db.Envio(ctx, first.Ref); e.State != engine.Leido {
		t.Fatalf("after receipts: %s, want leido", e.State)
	}
	// Envío 3's recipient answers "Baja." before its turn.
	h.eng.Reply(engine.Reply{Cliente: "c1", From: "+5491100000003", Text: " Baja. ", At: t0})
	if sup, _ := h.db.Suppressed(ctx, "c1", "+5491100000003"); !sup {
		t.Fatal("phone not suppressed after BAJA")
	}
	if e, _ := h.db.Envio(ctx, engine.Ref{Campaign: "k", Seq: 3}); e.State != engine.Omitido || e.Reason != engine.ReasonOptOut {
		t.Fatalf("envío 3: %s %s, want omitido optout", e.State, e.Reason)
	}
	h.eng.Reply(engine.Reply{Cliente: "c1", From: "+5491100000001", Text: "gracias!", At: t0})
	replies, _ := h.db.Replies(ctx, "c1", 0, 10)
	if len(replies) != 2 || replies[1].Envio != "k/1" || replies[1].OptOut || !replies[0].OptOut {
		t.Fatalf("replies %+v", replies)
	}
	h.until("terminada", campaignIs(engine.Terminada))
}

type failingHooks struct{ engine.TemplateHooks }

func (failingHooks) Personalize(context.Context, engine.Campaign, engine.Envio) (engine.Rendered, error) {
	return engine.Rendered{}, errors.New("attempt to index a nil value")
}

func TestEngine_ScriptErrorsFailEnviosThenPauseTheCampaign(t *testing.T) {
	h := newHarness(t, 12, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second}, engine.Config{
		ScriptErrorPause: 3,
		HooksFor:         func(engine.Campaign) (engine.Hooks, error) { return failingHooks{}, nil },
	})
	h.eng.StartCampaign(context.Background(), "k")
	h.until("pausada", campaignIs(engine.Pausada))
	if c := h.counts(); c[engine.Fallido] != 3 || c[engine.Pendiente] != 9 || len(h.gw.Acked()) != 0 {
		t.Fatalf("counts %v acks %d, want 3 fallido (script), 9 pendiente, nothing sent", c, len(h.gw.Acked()))
	}
	e, _ := h.db.Envio(context.Background(), engine.Ref{Campaign: "k", Seq: 1})
	if e.Reason != engine.ReasonScript {
		t.Fatalf("reason %q", e.Reason)
	}
}

func TestEngine_CancelAndLogout(t *testing.T) {
	h := newHarness(t, 5, engine.Rate{MinDelay: time.Hour, MaxDelay: time.Hour}, engine.Config{})
	ctx := context.Background()
	h.eng.StartCampaign(ctx, "k")
	h.until("first send", func(ev engine.Event) bool { return ev.To == engine.Enviado })
	h.eng.SessionChanged(engine.SessionEvent{Cliente: "c1", State: engine.SessionLoggedOut})
	if c, _ := h.db.Campaign(ctx, "k"); c.Status != engine.Pausada {
		t.Fatalf("after logout the campaign is %s, want pausada", c.Status)
	}
	if err := h.eng.CancelCampaign(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	// The fake clock may have let a second send out before the logout.
	if c := h.counts(); c[engine.Enviado] < 1 || c[engine.Cancelado]+c[engine.Enviado] != 5 {
		t.Fatalf("counts %v", c)
	}
	if err := h.eng.StartCampaign(ctx, "k"); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("start a cancelled campaign: %v", err)
	}

}

// Delivered and read receipts of one envío arriving at once both apply:
// the envío ends leido, whichever commits first.
func TestEngine_ConcurrentReceiptsEndLeido(t *testing.T) {
	h := newHarness(t, 40, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second}, engine.Config{})
	ctx := context.Background()
	h.eng.StartCampaign(ctx, "k")
	h.until("terminada", campaignIs(engine.Terminada))
	all, _ := h.db.Envios(ctx, "k", 0, 100, "")
	var wg sync.WaitGroup
	for _, e := range all {
		for _, kind := range []engine.ReceiptKind{engine.ReceiptDelivered, engine.ReceiptRead} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.eng.Receipt(engine.Receipt{Cliente: "c1", MsgIDs: []string{e.MsgID}, Kind: kind, At: t0})
			}()
		}
	}
	wg.Wait()
	if c := h.counts(); c[engine.Leido] != 40 {
		t.Fatalf("counts %v, want all 40 leido", c)
	}
}

// A receipt for an envío that went back to pendiente with its id (a
// timeout, a crash) while the server had the message waits for the resend's
// enviado instead of being dropped.
func TestEngine_ReceiptWhilePendienteWithItsIDWaitsForTheResend(t *testing.T) {
	h := newHarness(t, 1, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second},
		engine.Config{BackoffBase: time.Minute, BackoffMax: time.Minute, SendTimeout: 50 * time.Millisecond})
	ctx := context.Background()
	var tries atomic.Int32
	h.gw.Fail = func(ctx context.Context, _ string, m engine.Outgoing) error {
		if tries.Add(1) == 1 { // the first ack never comes
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	h.eng.StartCampaign(ctx, "k")
	h.until("the timeout", func(ev engine.Event) bool { return ev.To == engine.Pendiente && ev.Reason == engine.ReasonTimeout })
	e, _ := h.db.Envio(ctx, engine.Ref{Campaign: "k", Seq: 1})
	h.eng.Receipt(engine.Receipt{Cliente: "c1", MsgIDs: []string{e.MsgID}, Kind: engine.ReceiptRead, At: t0})
	if e, _ := h.db.Envio(ctx, e.Ref); e.State != engine.Pendiente {
		t.Fatalf("a receipt moved a pendiente envío: %s", e.State)
	}
	h.until("terminada", campaignIs(engine.Terminada))
	if e, _ := h.db.Envio(ctx, e.Ref); e.State != engine.Leido {
		t.Fatalf("after the resend: %s, want leido (the held receipt applied)", e.State)
	}
	h.checkNoLie()
}

// A message whose send brings the session down every time ends fallido
// after twice MaxAttempts, instead of looping for as long as the session
// comes back.
func TestEngine_SessionLostEveryTimeIsBounded(t *testing.T) {
	h := newHarness(t, 2, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, MaxAttempts: 3}, engine.Config{BreakerThreshold: 100})
	h.gw.Fail = func(_ context.Context, _ string, m engine.Outgoing) error {
		if m.To == "+5491100000001" {
			return engine.ErrSessionDown // the session "drops" on this message, and is back at once
		}
		return nil
	}
	h.eng.StartCampaign(context.Background(), "k")
	h.until("terminada", campaignIs(engine.Terminada))
	e, _ := h.db.Envio(context.Background(), engine.Ref{Campaign: "k", Seq: 1})
	if e.State != engine.Fallido || e.Reason != "max_attempts:session_down" || e.Attempts != 6 {
		t.Fatalf("envío 1: %s %q after %d attempts, want fallido max_attempts:session_down after 6", e.State, e.Reason, e.Attempts)
	}
	if e, _ := h.db.Envio(context.Background(), engine.Ref{Campaign: "k", Seq: 2}); e.State != engine.Enviado {
		t.Fatalf("envío 2: %s", e.State)
	}
	h.checkNoLie()
}

// ackRacingStore delivers a receipt for every envío the moment its enviado
// is committed, before the engine can publish that enviado, and gives the
// receipt up to grace to be applied and published first.
type ackRacingStore struct {
	*kv.DB
	eng   atomic.Pointer[engine.Engine]
	grace time.Duration
}

func (s *ackRacingStore) Apply(ctx context.Context, ts ...engine.Transition) error {
	if err := s.DB.Apply(ctx, ts...); err != nil {
		return err
	}
	for _, t := range ts {
		if t.To != engine.Enviado {
			continue
		}
		e, err := s.DB.Envio(ctx, t.Envio)
		if err != nil {
			return err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.eng.Load().Receipt(engine.Receipt{Cliente: e.Cliente, MsgIDs: []string{e.MsgID}, Kind: engine.ReceiptDelivered, At: t0})
		}()
		select {
		case <-done: // the receipt went all the way through first
		case <-time.After(s.grace): // it waits for this envío's publication
		}
	}
	return nil
}

// Each envío's events are published in the order of its commits: a
// receipt arriving right after the enviado commit cannot publish its
// entregado before the worker publishes the enviado.
func TestEngine_EventsOfAnEnvioFollowItsCommits(t *testing.T) {
	rs := &ackRacingStore{grace: 300 * time.Millisecond}
	h := newHarnessWrapped(t, 3, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second}, engine.Config{},
		func(db *kv.DB) engine.Store { rs.DB = db; return rs })
	rs.eng.Store(h.eng)
	h.eng.StartCampaign(context.Background(), "k")
	last := map[uint64]engine.State{}
	delivered := 0
	h.until("every envío entregado", func(ev engine.Event) bool {
		if ev.Type != "envio" {
			return false
		}
		if was, ok := last[ev.Envio]; ok && ev.From != was {
			t.Fatalf("envío %d: event %s -> %s published after one that left it %s", ev.Envio, ev.From, ev.To, was)
		}
		last[ev.Envio] = ev.To
		if ev.To == engine.Entregado {
			delivered++
		}
		return delivered == 3
	})
}

// The hourly cap counts what was sent before a restart: the new engine
// reads the journal's last day for every cliente.
func TestEngine_CapsHoldAcrossARestart(t *testing.T) {
	cfg := engine.Config{}
	h := newHarness(t, 10, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 3}, cfg)
	ctx := context.Background()
	h.eng.StartCampaign(ctx, "k")
	sent := 0
	var first time.Time
	h.until("three sent", func(ev engine.Event) bool {
		if ev.To == engine.Enviado {
			if sent++; sent == 1 {
				first = ev.At
			}
		}
		return sent == 3
	})
	h.stop()
	cfg.Clock, cfg.Logger, cfg.Rand = h.clock, slog.New(slog.DiscardHandler), rand.New(rand.NewPCG(3, 4))
	h.start(h.db, cfg)
	h.until("the fourth send", func(ev engine.Event) bool {
		if ev.To != engine.Enviado {
			return false
		}
		if ev.At.Before(first.Add(time.Hour)) {
			t.Fatalf("fourth send at %v, %v after the first: the restart forgot the hourly cap of 3", ev.At, ev.At.Sub(first))
		}
		return true
	})
}

// A subscription that does not keep up loses events, counted for it and in
// all; Close closes its channel.
func TestBroker_CountsLostEventsPerSubscription(t *testing.T) {
	var b engine.Broker
	slow, fast := b.Open(1), b.Open(8)
	for range 3 {
		b.Publish(engine.Event{Type: "reply"})
	}
	if slow.Lost() != 2 || fast.Lost() != 0 || b.Dropped() != 2 || len(slow.C) != 1 || len(fast.C) != 3 {
		t.Fatalf("lost %d/%d, dropped %d, queued %d/%d", slow.Lost(), fast.Lost(), b.Dropped(), len(slow.C), len(fast.C))
	}
	slow.Close()
	slow.Close() // twice is fine
	b.Publish(engine.Event{Type: "reply"})
	if _, ok := <-slow.C; !ok {
		t.Fatal("the queued event is gone")
	}
	if _, ok := <-slow.C; ok {
		t.Fatal("a closed subscription received an event")
	}
	fast.Close()
}

package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"leadmaster/engine"
)

// Transactional messages: one per idempotency key (the same key, even after
// a restart of the engine, returns the same envío and sends nothing again),
// sent before the cliente's running campaign, acked on the same path, and
// refused for an opted-out phone with nothing stored.
func TestEngine_MessagesIdempotentFirstAndOptOut(t *testing.T) {
	h := newHarness(t, 5, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 1000, DailyCap: 1000}, engine.Config{})
	ctx := context.Background()
	// Both wait for READY: then the message goes first.
	h.gw.SetReady("c1", false)
	if err := h.eng.StartCampaign(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	m := engine.Message{Cliente: "c1", Key: "pedido-1", Telefono: "+5491100000099", Texto: "Tu pedido 1 salió"}
	env, created, err := h.eng.SendMessage(ctx, m)
	if err != nil || !created || env.State != engine.Pendiente {
		t.Fatalf("SendMessage = %+v, %v, %v", env, created, err)
	}
	again, created, err := h.eng.SendMessage(ctx, m)
	if err != nil || created || again.Ref != env.Ref {
		t.Fatalf("same key: %+v, created %v, %v; want the first envío", again, created, err)
	}
	if _, _, err := h.eng.SendMessage(ctx, engine.Message{Cliente: "c1", Key: "pedido-1", Telefono: "+5491100000098", Texto: "otro"}); !errors.Is(err, engine.ErrKeyReused) {
		t.Fatalf("the key with another phone and text: %v, want ErrKeyReused", err)
	}
	h.gw.SetReady("c1", true)
	h.eng.SessionChanged(engine.SessionEvent{Cliente: "c1", State: engine.SessionReady})
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	done := make(chan engine.Envio, 1)
	go func() {
		e, _ := h.eng.WaitFinal(wctx, env.Ref)
		done <- e
	}()
	h.until("the message enviado", func(ev engine.Event) bool {
		return ev.Campaign == env.Ref.Campaign && ev.Envio == env.Ref.Seq && ev.To == engine.Enviado
	})
	if got := <-done; got.State != engine.Enviado || got.MsgID == "" {
		t.Fatalf("WaitFinal = %+v", got)
	}
	acked := h.gw.Acked()
	if len(acked) == 0 || acked[0].To != m.Telefono || acked[0].Text != m.Texto {
		t.Fatalf("acks %+v, want the message before the campaign's envíos", acked)
	}
	// A restart: the key still names the same envío.
	h.stop()
	h.start(h.db, engine.Config{Clock: h.clock, Logger: slog.New(slog.DiscardHandler)})
	again, created, err = h.eng.SendMessage(ctx, m)
	if err != nil || created || again.Ref != env.Ref || again.State != engine.Enviado {
		t.Fatalf("after a restart: %+v, created %v, %v", again, created, err)
	}
	byID, err := h.eng.Message(ctx, "c1", again.MsgID)
	if err != nil || byID.Ref != env.Ref {
		t.Fatalf("Message by id: %+v, %v", byID, err)
	}
	if err := h.db.Suppress(ctx, "c1", "+5491100000097", engine.ReasonOptOut); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.eng.SendMessage(ctx, engine.Message{Cliente: "c1", Key: "x", Telefono: "+5491100000097", Texto: "hola"}); !errors.Is(err, engine.ErrOptedOut) {
		t.Fatalf("opted-out phone: %v", err)
	}
	if _, err := h.eng.Message(ctx, "c1", "x"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the refused message was stored: %v", err)
	}
	for _, bad := range []engine.Message{
		{Cliente: "c1", Key: "", Telefono: "+5491100000096", Texto: "a"},
		{Cliente: "c1", Key: "b", Telefono: "011 1234", Texto: "a"},
		{Cliente: "c1", Key: "c", Telefono: "+5491100000096", Texto: "   "},
	} {
		if _, _, err := h.eng.SendMessage(ctx, bad); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("SendMessage(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := h.eng.CancelCampaign(ctx, env.Ref.Campaign); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("cancelling the messages campaign: %v, want a conflict (it would take no more messages)", err)
	}
	h.until("terminada", campaignIs(engine.Terminada))
	h.checkNoLie()
}

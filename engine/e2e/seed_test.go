package e2e_test

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/wasim"
)

// The seed incident (shared/seeds/000_9a404302d908d524.md) replayed with
// the real whatsmeow client: cliente c01 is READY and sending a
// 250-envío campaign; 100 in, the connection drops and reconnection is
// refused for a while, so the session stays down.
//
// Without -race the drop happens while a message is at the server but not
// acked yet (DropBeforeAck). Under -race the worker is held between two
// envíos (by its throttle hook) while the connection drops, and let go
// once the session is DISCONNECTED: a drop with a message in flight trips
// a data race inside whatsmeow itself (see race_test.go).
//
// Then: no envío is enviado (or later) without the simulator's ack of its
// own id; a message in flight goes back to pendiente with its id; while
// down the cliente sends nothing and fails nothing (the queue is not
// burnt); after the reconnection the campaign completes, every recipient
// saw exactly one message (a dropped id arrived twice and was seen once)
// and the journal verifies.
func TestSeedIncident_DropMidBatchPausesThenCompletesOnce(t *testing.T) {
	const n = 250 // the seed's batch: keep it, even under -race
	hold := &holdHooks{at: 101, held: make(chan struct{}), release: make(chan struct{})}
	cfg := rigConfig{}
	if raceEnabled {
		cfg.engine.HooksFor = func(engine.Campaign) (engine.Hooks, error) { return hold, nil }
	}
	r := newRig(t, cfg)
	k := r.campaign("seed", 1, n, fast(5))
	sentEvents := func(from int) int {
		c := 0
		for _, ev := range r.hist[from:] {
			if ev.Type == "envio" && ev.Campaign == k && ev.To == engine.Enviado {
				c++
			}
		}
		return c
	}
	var dropped *engine.Envio // the envío in flight at the drop, if any
	if raceEnabled {
		select {
		case <-hold.held: // envío 101 is claimed, not yet written ahead
		case <-time.After(waitTimeout):
			t.Fatal("the worker never reached envío 101")
		}
		mark := r.mark()
		r.sim.RefuseConnections(time.Hour)
		if err := r.sim.Drop(r.deviceJID(1)); err != nil {
			t.Fatal(err)
		}
		r.waitSession("c01", engine.SessionDisconnected, mark)
		close(hold.release) // the live gate before the write-ahead must stop it
	} else {
		r.waitFor("100 envíos acked", func() bool { return sentEvents(0) >= 100 })
		// The next message to arrive closes the socket before its ack,
		// and every reconnection is refused until lifted.
		mark := r.mark()
		r.sim.RefuseConnections(time.Hour)
		r.sim.SetFaults(senderPhone(1), wasim.Faults{DropBeforeAck: 1 << 30})
		r.waitSession("c01", engine.SessionDisconnected, mark)
		dropEv, _ := r.waitEvent("the envío in flight back to pendiente", mark, func(ev engine.Event) bool {
			return ev.Type == "envio" && ev.From == engine.Enviando && ev.To == engine.Pendiente
		})
		r.sim.SetFaults(senderPhone(1), wasim.Faults{}) // nothing can arrive while refused anyway
		if dropEv.Reason != engine.ReasonSessionDown {
			t.Errorf("the envío in flight went back with reason %q, want %q", dropEv.Reason, engine.ReasonSessionDown)
		}
		d := r.envio(k, dropEv.Envio)
		dropped = &d
		le, ok := r.sim.LedgerEntry(sender(1), d.MsgID)
		if !ok || le.Arrivals != 1 || le.Acks != 0 || !slices.Equal(le.Faults, []string{"drop"}) {
			t.Fatalf("ledger of the dropped message %s: %+v (found %v), want one arrival, dropped, never acked", d.MsgID, le, ok)
		}
		if d.State != engine.Pendiente || d.Attempts != 1 {
			t.Fatalf("dropped envío: %+v, want pendiente after 1 attempt", d)
		}
	}

	// While down: nothing enviado without an ack, nothing in flight,
	// nothing failed, every other envío still pendiente.
	down := r.counts(k)
	sent := r.checkNoLie(k, senderPhone(1))
	if down[engine.Enviando] != 0 || down[engine.Fallido] != 0 || down[engine.Omitido] != 0 ||
		uint64(sent) != down[engine.Enviado] || down[engine.Pendiente] != uint64(n-sent) {
		t.Fatalf("while down: %v (%d acked), want only enviado (acked) and pendiente", down, sent)
	}
	t.Logf("dropped after %d acked; %d pendiente while down", sent, down[engine.Pendiente])
	ledgerDown := len(r.ledger(senderPhone(1)))
	if raceEnabled && sent != 100 {
		t.Fatalf("%d acked before the drop, want the 100 before the held envío", sent)
	}
	histDown := r.mark()
	// Time passes while down: the client's reconnection attempts are
	// refused, three times. The worker must not have moved meanwhile.
	after := r.sim.LastEvent()
	for range 3 {
		ev, err := r.sim.WaitEvent(ctxT(t), after, wasim.Is(wasim.EventConnRefused, ""))
		if err != nil {
			t.Fatalf("waiting for a refused reconnection: %v", err)
		}
		after = ev.Seq
	}
	if got := r.counts(k); !maps.Equal(got, down) {
		t.Fatalf("the cliente kept working while down: %v, then %v", down, got)
	}
	if got := len(r.ledger(senderPhone(1))); got != ledgerDown {
		t.Fatalf("%d messages reached WhatsApp while the session was down", got-ledgerDown)
	}
	for len(r.evs) > 0 { // whatever the engine published meanwhile
		r.next("queued events", nil)
	}
	for _, ev := range r.hist[histDown:] {
		if ev.Type == "envio" {
			t.Fatalf("envío transition while the session was down: %+v", ev)
		}
	}
	if r.mgr.Ready("c01") {
		t.Fatal("the live gate is open while every connection is refused")
	}

	// Reconnection: the campaign completes.
	r.sim.RefuseConnections(0)
	r.waitSession("c01", engine.SessionReady, histDown)
	r.waitStatus(k, engine.Terminada)
	final := r.counts(k)
	if final[engine.Enviado] != n || final.Open() != 0 {
		t.Fatalf("final counts %v, want %d enviado", final, n)
	}
	if got := r.checkNoLie(k, senderPhone(1)); got != n {
		t.Fatalf("%d envíos sent, want %d", got, n)
	}
	want := map[string]bool{}
	for i := 1; i <= n; i++ {
		want[r.recipient(i)] = true
	}
	r.checkOncePerRecipient(senderPhone(1), want)
	if got := len(r.ledger(senderPhone(1))); got != n {
		t.Errorf("the simulator saw %d message ids, want %d (one per envío)", got, n)
	}
	if dropped != nil {
		resent := r.envio(k, dropped.Ref.Seq)
		le, _ := r.sim.LedgerEntry(sender(1), resent.MsgID)
		if resent.MsgID != dropped.MsgID || resent.Attempts != 2 || le.Arrivals != 2 || le.Acks != 1 || !le.Decrypted {
			t.Errorf("the dropped envío after reconnection: %+v\nledger %+v\nwant the same id, 2 attempts, 2 arrivals, 1 ack, decrypted once", resent, le)
		}
	}
	rep, err := r.db.Verify(context.Background(), nil)
	if err != nil || !rep.OK {
		t.Fatalf("journal verify: %+v %v", rep, err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// holdHooks holds the worker in its throttle hook at the at-th call (an
// envío claimed, not yet written ahead) until release is closed.
type holdHooks struct {
	engine.TemplateHooks
	calls   atomic.Int64
	at      int64
	held    chan struct{}
	release chan struct{}
}

func (h *holdHooks) Throttle(ctx context.Context, _ engine.Campaign, _ engine.ThrottleStats) (engine.ThrottleDecision, error) {
	if h.calls.Add(1) == h.at {
		close(h.held)
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	}
	return engine.ThrottleDecision{}, nil
}

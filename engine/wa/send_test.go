package wa_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/wasim"
)

// Send returns the server's ack timestamp for the envío's own message id;
// receipts and replies reach the Inbound; failures map to engine errors.
func TestSendReceiptsReplies(t *testing.T) {
	checkLeaks(t)
	sim := startSim(t)
	e := newEnv(t, sim, t.TempDir())
	mustCliente(t, e.db, "c1")
	const me, bob = "15550001111", "15550002222"
	jid := mustJID(t, e.pair("c1", me))
	sim.AddUser(bob, "Bob")
	sim.SetBehavior(bob, wasim.Behavior{Deliver: true, Read: true})
	ctx := ctxT(t)

	const id = "3EB0A1B2C3D4E5F60001"
	ts, err := e.m.Send(ctx, "c1", engine.Outgoing{To: "+" + bob, MsgID: id, Text: "hola Bob"})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	le, ok := sim.LedgerEntry(jid, id)
	if !ok || le.Text != "hola Bob" || !le.Decrypted || le.Arrivals != 1 || le.Timestamp != ts.Unix() {
		t.Errorf("ledger %+v (found %v), Send returned t=%d", le, ok, ts.Unix())
	}

	t.Run("Receipts", func(t *testing.T) {
		e.rec.waitUntil(t, "delivered and read receipts", func() bool {
			kinds := map[engine.ReceiptKind]bool{}
			for _, r := range e.rec.receipts {
				if r.Cliente == "c1" && len(r.MsgIDs) == 1 && r.MsgIDs[0] == id {
					kinds[r.Kind] = true
				}
			}
			return kinds[engine.ReceiptDelivered] && kinds[engine.ReceiptRead]
		})
	})

	t.Run("Reply", func(t *testing.T) {
		rid, err := sim.SendText(ctx, bob, jid.ToNonAD(), "BAJA")
		if err != nil {
			t.Fatal(err)
		}
		e.rec.waitUntil(t, "the reply", func() bool {
			for _, r := range e.rec.replies {
				if r.MsgID == rid {
					if r.From != "+"+bob || r.Text != "BAJA" || r.Cliente != "c1" {
						t.Errorf("reply = %+v", r)
					}
					return true
				}
			}
			return false
		})
	})

	t.Run("OnWhatsApp", func(t *testing.T) {
		sim.SetRegistered("15559999999", false)
		got, err := e.m.OnWhatsApp(ctx, "c1", []string{"+" + bob, "+15559999999"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !got["+"+bob] || got["+15559999999"] {
			t.Errorf("OnWhatsApp = %v", got)
		}
	})

	t.Run("MexicoLooksUpTheJID", func(t *testing.T) {
		const mx = "+525512345678"
		if _, err := e.m.Send(ctx, "c1", engine.Outgoing{To: mx, MsgID: "3EB0A1B2C3D4E5F60002", Text: "hola"}); err != nil {
			t.Fatal(err)
		}
		// The server's answer (521… or 52…) picks the account; the DM goes to its LID.
		var lid string
		for _, a := range sim.Accounts() {
			if a.Phone == "525512345678" {
				lid = a.LID + "@lid"
			}
		}
		if le, ok := sim.LedgerEntry(jid, "3EB0A1B2C3D4E5F60002"); !ok || lid == "" || le.To != lid {
			t.Errorf("ledger %+v, want it addressed to %q", le, lid)
		}
		sim.SetRegistered("525500000000", false)
		_, err := e.m.Send(ctx, "c1", engine.Outgoing{To: "+525500000000", MsgID: "3EB0A1B2C3D4E5F60003", Text: "hola"})
		if !errors.Is(err, engine.ErrNotOnWhatsApp) {
			t.Errorf("Send to an unregistered Mexican number: %v", err)
		}
	})

	t.Run("Typing", func(t *testing.T) {
		if err := e.m.Typing(ctx, "c1", "+"+bob); err != nil {
			t.Error(err)
		}
	})

	t.Run("ErrorAck", func(t *testing.T) {
		sim.SetFaults(me, wasim.Faults{AckError: 479})
		defer sim.SetFaults(me, wasim.Faults{})
		_, err := e.m.Send(ctx, "c1", engine.Outgoing{To: "+" + bob, MsgID: "3EB0A1B2C3D4E5F60004", Text: "x"})
		var ae *engine.AckError
		if !errors.As(err, &ae) || ae.Code != 479 || ae.MsgID != "3EB0A1B2C3D4E5F60004" {
			t.Errorf("Send with an error ack: %v", err)
		}
	})

	t.Run("NoAckHitsTheDeadline", func(t *testing.T) {
		sim.SetFaults(me, wasim.Faults{NoAck: true})
		defer sim.SetFaults(me, wasim.Faults{})
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := e.m.Send(sctx, "c1", engine.Outgoing{To: "+" + bob, MsgID: "3EB0A1B2C3D4E5F60005", Text: "x"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send without an ack: %v, want the context's deadline", err)
		}
		if le, ok := sim.LedgerEntry(jid, "3EB0A1B2C3D4E5F60005"); !ok || le.Arrivals != 1 || le.Acks != 0 {
			t.Errorf("ledger %+v", le)
		}
	})

	t.Run("SessionDown", func(t *testing.T) {
		sim.RefuseConnections(time.Minute)
		if err := sim.Drop(jid); err != nil {
			t.Fatal(err)
		}
		e.ev.until("c1", engine.SessionDisconnected)
		start := time.Now()
		_, err := e.m.Send(ctx, "c1", engine.Outgoing{To: "+" + bob, MsgID: "3EB0A1B2C3D4E5F60006", Text: "x"})
		if !errors.Is(err, engine.ErrSessionDown) || time.Since(start) > 50*time.Millisecond {
			t.Errorf("Send while down: %v after %v, want ErrSessionDown at once", err, time.Since(start))
		}
		if _, ok := sim.LedgerEntry(jid, "3EB0A1B2C3D4E5F60006"); ok {
			t.Error("a message went out while the gate was closed")
		}
		if _, err := e.m.OnWhatsApp(ctx, "c1", []string{"+" + bob}); !errors.Is(err, engine.ErrSessionDown) {
			t.Errorf("OnWhatsApp while down: %v", err)
		}
		sim.RefuseConnections(0)
		e.ev.until("c1", engine.SessionReady)
	})

	t.Run("DropDuringSend", func(t *testing.T) {
		// The server drops the socket when the message arrives, before its
		// ack: the gate closes and the send in flight is abandoned with
		// ErrSessionDown at once (whatsmeow alone would wait for its retry,
		// up to 5 s or forever, §4d). The resend with the same id, once
		// READY, is acked; the recipient has it once.
		if raceEnabled {
			// A drop with a send in flight makes whatsmeow race with itself:
			// retryFrame's WaitForConnection (client.go:436) and autoReconnect
			// (client.go:575) both write exsync.Event.waiting under a read
			// lock (go.mau.fi/util exsync/event.go:39), and a deferred ack's
			// SendFrame reads FrameSocket.closed while the read pump's Close
			// writes it. Not ours to fix; `make test` runs this without -race.
			t.Skip("provokes data races inside whatsmeow (exsync.Event.GetChan, FrameSocket.closed)")
		}
		const id = "3EB0A1B2C3D4E5F60008"
		sim.SetFaults(me, wasim.Faults{DropBeforeAck: 1})
		start := time.Now()
		_, err := e.m.Send(ctx, "c1", engine.Outgoing{To: "+" + bob, MsgID: id, Text: "caída"})
		t.Logf("Send with the socket dropped before the ack: %v after %v", err, time.Since(start))
		if err != nil && !errors.Is(err, engine.ErrSessionDown) {
			t.Errorf("Send: %v, want ErrSessionDown (or success if whatsmeow's retry won the race)", err)
		}
		sim.SetFaults(me, wasim.Faults{})
		// READY after the drop's DISCONNECTED, whatever Send returned: when
		// whatsmeow's retry won, State can still say READY because the
		// Disconnected is not handled yet, and it closes the gate later.
		e.ev.until("c1", engine.SessionDisconnected)
		e.ev.until("c1", engine.SessionReady)
		if _, err := e.m.Send(ctx, "c1", engine.Outgoing{To: "+" + bob, MsgID: id, Text: "caída"}); err != nil {
			t.Fatalf("resend: %v", err)
		}
		le, _ := sim.LedgerEntry(jid, id)
		t.Logf("ledger: arrivals %d, acks %d, faults %v, decrypted %v %s", le.Arrivals, le.Acks, le.Faults, le.Decrypted, le.Error)
		if le.Acks == 0 || le.Arrivals < 2 {
			t.Errorf("ledger %+v", le)
		}
	})

	t.Run("UnknownCliente", func(t *testing.T) {
		_, err := e.m.Send(ctx, "nobody", engine.Outgoing{To: "+" + bob, MsgID: "3EB0A1B2C3D4E5F60007", Text: "x"})
		if !errors.Is(err, engine.ErrSessionDown) || !errors.Is(err, engine.ErrNoSession) {
			t.Errorf("Send for an unknown cliente: %v", err)
		}
	})
}

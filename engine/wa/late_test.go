package wa_test

import (
	"testing"
	"time"

	waevents "go.mau.fi/whatsmeow/types/events"

	"leadmaster/engine"
	"leadmaster/wasim"
)

// whatsmeow dispatches Connected and Disconnected from separate
// goroutines: after a fast reconnect, the old socket's Disconnected can
// come after the new socket's Connected. The session must not stay
// DISCONNECTED while its client is logged in (found by engine/e2e, about 1
// in 30 drop-before-ack runs): the login is confirmed and READY returns,
// with no new connection.
func TestLateDisconnectedDoesNotStrandTheSession(t *testing.T) {
	checkLeaks(t)
	sim := startSim(t)
	e := newEnv(t, sim, t.TempDir())
	mustCliente(t, e.db, "c1")
	e.pair("c1", "15550001111")
	seq := sim.LastEvent()
	e.m.Deliver("c1", &waevents.Disconnected{})
	if e.m.Ready("c1") {
		t.Fatal("gate open right after a Disconnected")
	}
	e.ev.until("c1", engine.SessionDisconnected)
	e.ev.until("c1", engine.SessionReady)
	if !e.m.Ready("c1") {
		t.Fatal("not Ready after the login was confirmed")
	}
	for _, ev := range sim.Events(seq) {
		if ev.Kind == wasim.EventConnOpened {
			t.Fatalf("a new connection was opened: %+v", ev)
		}
	}
}

// confirmLogin's request can be answered before whatsmeow has finished its
// own post-login requests and dispatched the same socket's Connected. That
// Connected finds the gate open and must leave it open: reopening it would
// cut the requests in flight on this live socket with ErrSessionDown
// (TestSendReceiptsReplies/DropDuringSend's resend, about 1 run in 10
// under -race).
func TestConnectedOnOpenGateKeepsSendsInFlight(t *testing.T) {
	checkLeaks(t)
	sim := startSim(t)
	e := newEnv(t, sim, t.TempDir())
	mustCliente(t, e.db, "c1")
	const me, bob = "15550001111", "15550002222"
	jidS := e.pair("c1", me)
	sim.AddUser(bob, "Bob")
	e.m.Deliver("c1", &waevents.Disconnected{})
	e.ev.until("c1", engine.SessionDisconnected)
	e.ev.until("c1", engine.SessionReady) // the login is confirmed; whatsmeow's Connected comes next

	const id = "3EB0C0FFEE0000000001"
	sim.SetFaults(me, wasim.Faults{AckDelay: 500 * time.Millisecond})
	seq := sim.LastEvent()
	sent := make(chan error, 1)
	go func() {
		_, err := e.m.Send(ctxT(t), "c1", engine.Outgoing{To: "+" + bob, MsgID: id, Text: "en vuelo"})
		sent <- err
	}()
	if _, err := sim.WaitEvent(ctxT(t), seq, func(ev wasim.Event) bool {
		return ev.Kind == wasim.EventMessage && ev.JID == jidS && ev.Detail == id
	}); err != nil {
		t.Fatalf("waiting for the message to reach the server: %v", err)
	}
	e.m.Deliver("c1", &waevents.Connected{})
	if err := <-sent; err != nil {
		t.Fatalf("Send in flight when the Connected came: %v, want the ack", err)
	}
	if !e.m.Ready("c1") {
		t.Error("not Ready after the Connected")
	}
}

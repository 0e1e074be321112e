package wa_test

import (
	"testing"

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

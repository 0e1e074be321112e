package wasim_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

func TestRestartLogsInWithoutQR(t *testing.T) {
	checkLeaks(t)
	sim := startSim(t, wasim.Options{})
	db := filepath.Join(t.TempDir(), "client.db")
	tc := newTestClient(t, sim, db)
	jid := pairByQR(t, sim, tc, "15550001111")
	tc.close()

	seq := sim.LastEvent()
	tc2 := newTestClient(t, sim, db) // same store file: a restarted appliance
	if tc2.cli.Store.ID == nil || *tc2.cli.Store.ID != jid {
		t.Fatalf("reopened store has ID %v, want %s", tc2.cli.Store.ID, jid)
	}
	start := time.Now()
	if err := tc2.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](tc2)
	t.Logf("connect + login of a stored device: %v", time.Since(start))
	waitSim(t, sim, seq, wasim.EventLoggedIn, jid.String())
	if n := countOf[*events.QR](tc2); n != 0 {
		t.Errorf("restarted client got %d QR events, want 0", n)
	}
	if hasEvent(sim.Events(seq), wasim.EventPreKeys, "") {
		t.Error("restarted client uploaded prekeys again; the server should still hold them")
	}
	tc2.close()
	tc.assertCleanLog()
	tc2.assertCleanLog()
}

func TestLogout(t *testing.T) {
	checkLeaks(t)
	sim := startSim(t, wasim.Options{})
	db := filepath.Join(t.TempDir(), "client.db")
	tc := newTestClient(t, sim, db)
	jid := pairByQR(t, sim, tc, "15550001111")

	t.Run("WhileConnected", func(t *testing.T) {
		seq := sim.LastEvent()
		if err := sim.Logout(jid); err != nil {
			t.Fatal(err)
		}
		lo := waitFor[*events.LoggedOut](tc)
		if lo.OnConnect || lo.Reason != events.ConnectFailureLoggedOut {
			t.Errorf("LoggedOut = %+v, want OnConnect=false Reason=401", lo)
		}
		// The simulator closes the socket only after the client has handled the stream
		// error, store deletion included.
		waitSim(t, sim, seq, wasim.EventConnClosed, jid.String())
		tc.assertNoDevice()
		if n := countOf[*events.Disconnected](tc); n != 0 {
			t.Errorf("client emitted %d Disconnected events after logout, want 0 (no reconnect)", n)
		}
		tc.abandon()
		tc.assertCleanLog(readErr)
		if n := tc.log.count(readErr); n > 1 {
			t.Errorf("%d read errors, want at most 1", n)
		}
	})

	// A new pairing works on the same store, and a device removed while offline is refused
	// at its next login.
	var jid2 = jid
	tc2 := newTestClient(t, sim, db)
	t.Run("NewPairing", func(t *testing.T) {
		jid2 = pairByQR(t, sim, tc2, "15550001111")
		if jid2 == jid {
			t.Errorf("new pairing reused device %s", jid)
		}
		tc2.close()
		tc2.assertCleanLog()
	})

	t.Run("WhileOffline", func(t *testing.T) {
		if err := sim.Logout(jid2); err != nil {
			t.Fatal(err)
		}
		seq := sim.LastEvent()
		tc3 := newTestClient(t, sim, db)
		if err := tc3.cli.Connect(); err != nil {
			t.Fatal(err)
		}
		lo := waitFor[*events.LoggedOut](tc3)
		if !lo.OnConnect || lo.Reason != events.ConnectFailureLoggedOut {
			t.Errorf("LoggedOut = %+v, want OnConnect=true Reason=401", lo)
		}
		waitSim(t, sim, seq, wasim.EventLoginRefused, jid2.String())
		waitSim(t, sim, seq, wasim.EventConnClosed, jid2.String())
		tc3.assertNoDevice()
		tc3.abandon()
		tc3.assertCleanLog(readErr)
	})
	if accs := sim.Accounts(); len(accs) != 1 || len(accs[0].Devices) != 0 {
		t.Errorf("accounts after logouts = %+v, want the account with no devices", accs)
	}
}

// TestSessionControl drives one paired client through the stream errors and connection faults
// of the control API and checks the client behaviour wasim/README.md documents.
func TestSessionControl(t *testing.T) {
	checkLeaks(t)
	sim, tc, jid := pairedClient(t, wasim.Options{})

	t.Run("515", func(t *testing.T) {
		seq := sim.LastEvent()
		if err := sim.StreamError(jid, "515", ""); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.Connected](tc)
		waitSim(t, sim, seq, wasim.EventLoggedIn, jid.String())
		if n := countOf[*events.Disconnected](tc); n != 0 {
			t.Errorf("515 produced %d Disconnected events, want 0 (the client reconnects by itself)", n)
		}
		tc.assertCleanLog()
	})

	t.Run("503", func(t *testing.T) {
		if err := sim.StreamError(jid, "503", ""); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.Disconnected](tc)
		waitFor[*events.Connected](tc)
		if tc.log.count("Got 503 stream error") != 1 {
			t.Error("client did not log the 503 warning")
		}
		tc.assertCleanLog(readErr, "Got 503 stream error")
	})

	t.Run("Drop", func(t *testing.T) {
		if err := sim.Drop(jid); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.Disconnected](tc)
		waitFor[*events.Connected](tc)
		tc.assertCleanLog(readErr, "Got 503 stream error")
	})

	t.Run("RefusedConnect", func(t *testing.T) {
		tc.cli.Disconnect()
		sim.RefuseConnections(time.Hour)
		err := tc.cli.Connect()
		var se socket.ErrWithStatusCode
		if !errors.As(err, &se) || se.StatusCode != 503 {
			t.Fatalf("Connect while refused: err = %v, want a dial error with status 503", err)
		}
		sim.RefuseConnections(0)
		if err := tc.cli.Connect(); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.Connected](tc)
	})

	t.Run("RefusedReconnect", func(t *testing.T) {
		seq := sim.LastEvent()
		sim.RefuseConnections(time.Hour)
		if err := sim.Drop(jid); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.Disconnected](tc)
		// The first automatic reconnect comes at once and is refused; the next one 2 s later.
		waitSim(t, sim, seq, wasim.EventConnRefused, "")
		start := time.Now()
		sim.RefuseConnections(0)
		waitFor[*events.Connected](tc)
		t.Logf("reconnected %v after the refusal was lifted", time.Since(start))
		if tc.log.count("Error reconnecting after autoreconnect sleep") < 1 {
			t.Error("client did not log the refused reconnect")
		}
		tc.assertCleanLog(readErr, "Got 503 stream error", "Error reconnecting after autoreconnect sleep")
	})

	t.Run("Replaced", func(t *testing.T) {
		seq := sim.LastEvent()
		disc := countOf[*events.Disconnected](tc)
		if err := sim.StreamError(jid, "", "replaced"); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.StreamReplaced](tc)
		waitSim(t, sim, seq, wasim.EventConnClosed, jid.String())
		if n := countOf[*events.Disconnected](tc); n != disc {
			t.Errorf("replaced produced a Disconnected event; the client must not reconnect")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := sim.WaitEvent(ctx, seq, wasim.Is(wasim.EventLoggedIn, jid.String())); err == nil {
			t.Error("client logged in again after replaced")
		}
	})
	tc.abandon()
	tc.assertCleanLog(readErr, "Got 503 stream error", "Error reconnecting after autoreconnect sleep")
}

func TestClientLogout(t *testing.T) {
	checkLeaks(t)
	sim, tc, me := pairedClient(t, wasim.Options{})
	seq := sim.LastEvent()
	if err := tc.cli.Logout(testCtx(t)); err != nil {
		t.Fatalf("Client.Logout: %v", err)
	}
	if e := waitSim(t, sim, seq, wasim.EventLoggedOut, me.String()); e.Detail != "client" {
		t.Errorf("logged_out event %+v, want detail client", e)
	}
	tc.assertNoDevice()
	for _, a := range sim.Accounts() {
		if a.Phone == me.User && len(a.Devices) != 0 {
			t.Errorf("account still lists %+v", a.Devices)
		}
	}
	tc.close()
	tc.assertCleanLog()
}

package wasim_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

// TestFaults asserts what SendMessage returns under each fault, and how long it takes; the
// table in wasim/README.md reports these outcomes.
func TestFaults(t *testing.T) {
	checkLeaks(t)
	sim, tc, me := pairedClient(t, wasim.Options{})
	bob := sim.AddUser("15550002222", "Bob")
	n := 0
	send := func(t *testing.T, extra whatsmeow.SendRequestExtra, ctxTimeout time.Duration) (string, whatsmeow.SendResponse, error, time.Duration) {
		t.Helper()
		n++
		extra.ID = fmt.Sprintf("3EB0FA%016d", n)
		ctx, cancel := context.WithTimeout(context.Background(), ctxTimeout)
		defer cancel()
		start := time.Now()
		resp, err := tc.cli.SendMessage(ctx, bob, text(fmt.Sprintf("mensaje %d", n)), extra)
		took := time.Since(start)
		t.Logf("SendMessage -> err=%v after %v", err, took.Round(time.Millisecond))
		return extra.ID, resp, err, took
	}
	// A first send outside any fault establishes the session and caches the device lists.
	if _, _, err, _ := send(t, whatsmeow.SendRequestExtra{}, waitTimeout); err != nil {
		t.Fatal(err)
	}

	t.Run("AckError", func(t *testing.T) {
		sim.SetFaults(me.User, wasim.Faults{AckError: 479})
		defer sim.SetFaults(me.User, wasim.Faults{})
		id, _, err, took := send(t, whatsmeow.SendRequestExtra{}, waitTimeout)
		if !errors.Is(err, whatsmeow.ErrServerReturnedError) || !strings.HasSuffix(err.Error(), "479") {
			t.Errorf("err = %v, want ErrServerReturnedError 479", err)
		}
		if took > time.Second {
			t.Errorf("took %v, want immediate", took)
		}
		if e, _ := sim.LedgerEntry(me, id); e.AckError != 479 || e.Acks != 0 || !e.Decrypted {
			t.Errorf("ledger = %+v", e)
		}
	})

	t.Run("NoAck", func(t *testing.T) {
		sim.SetFaults(me.User, wasim.Faults{NoAck: true})
		defer sim.SetFaults(me.User, wasim.Faults{})
		id, _, err, took := send(t, whatsmeow.SendRequestExtra{Timeout: 500 * time.Millisecond}, waitTimeout)
		if !errors.Is(err, whatsmeow.ErrMessageTimedOut) {
			t.Errorf("err = %v, want ErrMessageTimedOut", err)
		}
		if took < 500*time.Millisecond {
			t.Errorf("took %v, want the 500ms SendRequestExtra.Timeout", took)
		}
		if e, _ := sim.LedgerEntry(me, id); e.Acks != 0 || e.Arrivals != 1 || !e.Decrypted {
			t.Errorf("ledger = %+v: the recipient got it, nobody acked it", e)
		}
	})

	t.Run("SlowAck", func(t *testing.T) {
		sim.SetFaults(me.User, wasim.Faults{AckDelay: 300 * time.Millisecond})
		defer sim.SetFaults(me.User, wasim.Faults{})
		_, resp, err, took := send(t, whatsmeow.SendRequestExtra{}, waitTimeout)
		if err != nil || resp.Timestamp.IsZero() || took < 300*time.Millisecond {
			t.Errorf("err = %v after %v, want success after ≥300ms", err, took)
		}
	})

	t.Run("DropBeforeAckRetryAcked", func(t *testing.T) {
		sim.SetFaults(me.User, wasim.Faults{DropBeforeAck: 1})
		defer sim.SetFaults(me.User, wasim.Faults{})
		id, resp, err, _ := send(t, whatsmeow.SendRequestExtra{}, waitTimeout)
		if err != nil || resp.ID != id {
			t.Fatalf("err = %v: the automatic retry after the drop should be acked", err)
		}
		e, _ := sim.LedgerEntry(me, id)
		if e.Arrivals != 2 || e.Acks != 1 || !slices.Equal(e.Faults, []string{"drop", ""}) || !e.Decrypted {
			t.Errorf("ledger = %+v, want 2 arrivals (dropped, then acked), decrypted once", e)
		}
		waitFor[*events.Disconnected](tc)
		waitFor[*events.Connected](tc)
	})

	t.Run("Unregistered", func(t *testing.T) {
		// Since whatsmeow 2026-07 every DM goes to the recipient's LID: the client asks usync
		// for it first and, for a number not on WhatsApp, fails locally. Nothing reaches the
		// server.
		sim.SetRegistered("15559999999", false)
		ctx := testCtx(t)
		_, err := tc.cli.SendMessage(ctx, types.NewJID("15559999999", types.DefaultUserServer), text("hola?"), whatsmeow.SendRequestExtra{ID: "3EB0FA00000000000000UN"})
		if err == nil || !strings.Contains(err.Error(), "no LID found for 15559999999@s.whatsapp.net") {
			t.Errorf("err = %v, want \"no LID found\"", err)
		}
		if e, ok := sim.LedgerEntry(me, "3EB0FA00000000000000UN"); ok {
			t.Errorf("ledger = %+v, want no entry", e)
		}
	})

	t.Run("LoggedOut", func(t *testing.T) {
		seq := sim.LastEvent()
		if err := sim.Logout(me); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.LoggedOut](tc)
		// The simulator closes the socket once the client has deleted its store; whatsmeow
		// then refuses to send ("the store doesn't contain a device JID", no network).
		waitSim(t, sim, seq, wasim.EventConnClosed, me.String())
	})
	tc.abandon()
	tc.assertCleanLog(readErr)
}

// faultClient is a fixture client and a send helper for the fault tests that leave the
// connection in a state only closing the client ends.
func faultClient(t *testing.T) (*wasim.Server, *testClient, types.JID, types.JID) {
	sim, tc, me := pairedClient(t, wasim.Options{})
	bob := sim.AddUser("15550002222", "Bob")
	seq := sim.LastEvent()
	if _, err := tc.cli.SendMessage(testCtx(t), bob, text("warm-up")); err != nil {
		t.Fatal(err)
	}
	// The client issues its privacy token to bob right after the first send, in the
	// background: wait until that IQ is answered and read, or a fault would interrupt it.
	waitSim(t, sim, seq, wasim.EventClientToken, me.String())
	tc.sync()
	return sim, tc, me, bob
}

// skipUnderRace skips a test that makes whatsmeow race with itself: a connection dropped
// right after its <success> makes autoReconnect (client.go:572) read AutoReconnectErrors while
// handleConnectSuccess (connectionevents.go:161) writes it, unsynchronised. Not ours to fix;
// the test runs without -race.
func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("provokes whatsmeow's own AutoReconnectErrors data race (client.go:572 vs connectionevents.go:161)")
	}
}

func TestFaultNeverAcked(t *testing.T) {
	skipUnderRace(t)
	checkLeaks(t)
	sim, tc, me, bob := faultClient(t)
	start0 := sim.LastEvent()
	connected0 := countOf[*events.Connected](tc)
	sim.SetFaults(me.User, wasim.Faults{DropBeforeAck: 1 << 30})
	ctx := waitCtx(t, 10*time.Second)
	start := time.Now()
	_, err := tc.cli.SendMessage(ctx, bob, text("nunca"), whatsmeow.SendRequestExtra{ID: "3EB0FA0000000000000NEV"})
	took := time.Since(start)
	var de *whatsmeow.DisconnectedError
	if !errors.As(err, &de) {
		t.Errorf("err = %v (%T), want *whatsmeow.DisconnectedError", err, err)
	}
	e, _ := sim.LedgerEntry(me, "3EB0FA0000000000000NEV")
	if e.Acks != 0 || e.Arrivals < 1 || !e.Decrypted {
		t.Errorf("ledger = %+v", e)
	}
	t.Logf("SendMessage -> %v after %v; %d arrival(s), all dropped", err, took.Round(time.Millisecond), e.Arrivals)
	// Let the client settle before closing it: once the fault is lifted it logs in again, and
	// every <success> it got ends in one events.Connected.
	last, _ := sim.WaitEvent(ctx, start0, func(ev wasim.Event) bool { return ev.Kind == wasim.EventMessage && ev.Phone == me.User })
	for range e.Arrivals - 1 {
		last, _ = sim.WaitEvent(ctx, last.Seq, func(ev wasim.Event) bool { return ev.Kind == wasim.EventMessage && ev.Phone == me.User })
	}
	// A <success> the client had no time to read before its socket was dropped ends in no
	// events.Connected, so the logins the simulator counts do not tell how many to expect:
	// wait for the last login's post-login IQ instead, and for the client to have read its
	// answer (after which it emits events.Connected).
	sim.SetFaults(me.User, wasim.Faults{})
	login := waitSim(t, sim, last.Seq, wasim.EventLoggedIn, me.String())
	waitSim(t, sim, login.Seq, wasim.EventActive, me.String())
	tc.sync()
	waitCount[*events.Connected](tc, connected0+1)
	tc.close()
	// Dropping a connection right after its login interrupts the client's post-login IQs.
	tc.assertCleanLog(readErr, "Error reconnecting after autoreconnect sleep",
		"Failed to get number of prekeys on server", "Failed to send post-connect passive IQ")
}

func TestFaultSilentAfterReconnect(t *testing.T) {
	checkLeaks(t)
	sim, tc, me, bob := faultClient(t)
	seq := sim.LastEvent()
	sim.SetFaults(me.User, wasim.Faults{SilentLogin: true})
	if err := sim.Drop(me); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Disconnected](tc)
	waitSim(t, sim, seq, wasim.EventLoginRefused, me.String()) // detail "silent"
	ctx := waitCtx(t, 2*time.Second)
	start := time.Now()
	_, err := tc.cli.SendMessage(ctx, bob, text("¿hay alguien?"), whatsmeow.SendRequestExtra{ID: "3EB0FA00000000000SILNT", Timeout: 500 * time.Millisecond})
	took := time.Since(start)
	var de *whatsmeow.DisconnectedError
	if !errors.Is(err, whatsmeow.ErrMessageTimedOut) && !errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &de) {
		t.Errorf("err = %v after %v, want a timeout", err, took)
	}
	if _, ok := sim.LedgerEntry(me, "3EB0FA00000000000SILNT"); ok {
		t.Error("a silent server recorded the message")
	}
	t.Logf("SendMessage -> %v after %v", err, took.Round(time.Millisecond))
	tc.close()
	// The client's store calls time out with the caller's context while its IQs hang.
	tc.assertCleanLog(readErr, "context deadline exceeded", "Failed to fetch prekeys", "Failed to encrypt")
}

// TestChaosReproducible checks that a seed fixes the fault of every (message id, arrival).
func TestChaosReproducible(t *testing.T) {
	c := wasim.Chaos{Seed: 42, DropRate: 0.1, ErrorRate: 0.1, NoAckRate: 0.1, SlowRate: 0.1}
	var a, b, other []string
	for i := range 200 {
		id := fmt.Sprintf("3EB0%018d", i)
		a = append(a, c.Fault(id, 1)+"/"+c.Fault(id, 2))
		b = append(b, c.Fault(id, 1)+"/"+c.Fault(id, 2))
		other = append(other, wasim.Chaos{Seed: 43, DropRate: 0.1, ErrorRate: 0.1, NoAckRate: 0.1, SlowRate: 0.1}.Fault(id, 1)+"/")
	}
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different faults")
	}
	counts := map[string]int{}
	for _, f := range a {
		counts[strings.Split(f, "/")[0]]++
	}
	for _, k := range []string{"", "drop", "error:479", "no_ack", "slow"} {
		if counts[k] < 5 {
			t.Errorf("fault %q drawn %d times in 200, rates say ~20-120", k, counts[k])
		}
	}
	if slices.Equal(a, other) {
		t.Error("different seeds gave the same faults")
	}
}

// TestChaosRun sends through a simulator in chaos mode twice (fresh simulators, same seed):
// the ledgers record the same fault sequence, and each SendMessage outcome matches its fault.
func TestChaosRun(t *testing.T) {
	checkLeaks(t)
	chaos := wasim.Chaos{Seed: 7, ErrorRate: 0.2, NoAckRate: 0.1, SlowRate: 0.2, SlowAck: 20 * time.Millisecond}
	run := func() (faults []string) {
		sim, tc, me := pairedClient(t, wasim.Options{})
		bob := sim.AddUser("15550002222", "Bob")
		ctx := testCtx(t)
		if _, err := tc.cli.SendMessage(ctx, bob, text("warm-up")); err != nil {
			t.Fatal(err)
		}
		sim.SetChaos(&chaos)
		for i := range 8 {
			id := fmt.Sprintf("3EB0C4A0%014d", i)
			_, err := tc.cli.SendMessage(ctx, bob, text(id), whatsmeow.SendRequestExtra{ID: id, Timeout: time.Second})
			e, _ := sim.LedgerEntry(me, id)
			f := strings.Join(e.Faults, ",")
			faults = append(faults, f)
			if f != chaos.Fault(id, 1) {
				t.Errorf("%s: ledger fault %q, Chaos.Fault says %q", id, f, chaos.Fault(id, 1))
			}
			switch {
			case f == "error:479" && !errors.Is(err, whatsmeow.ErrServerReturnedError),
				f == "no_ack" && !errors.Is(err, whatsmeow.ErrMessageTimedOut),
				(f == "" || f == "slow") && err != nil:
				t.Errorf("%s: fault %q but SendMessage returned %v", id, f, err)
			}
		}
		tc.close()
		tc.assertCleanLog()
		return
	}
	f1 := run()
	f2 := run()
	if !slices.Equal(f1, f2) {
		t.Errorf("same seed, different fault sequences:\n%q\n%q", f1, f2)
	}
	t.Logf("faults: %q", f1)
}

package wasim_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

// retryClient connects a copy of the first fixture client with UseRetryMessageStore set as
// asked; reopen connects a new whatsmeow.Client on the same store (a restarted process).
func retryClient(t *testing.T, sim *wasim.Server, useStore bool) (tc *testClient, reopen func() *testClient) {
	t.Helper()
	buildFixture(t)
	db := filepath.Join(t.TempDir(), "client0.db")
	copyFile(t, filepath.Join(fixture.dir, "client0.db"), db)
	open := func() *testClient {
		tc := newTestClient(t, sim, db)
		tc.cli.UseRetryMessageStore = useStore
		if err := tc.cli.Connect(); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.Connected](tc)
		return tc
	}
	return open(), open
}

// waitResent waits for the client's answer to a retry receipt for id and returns its entry.
func waitResent(t *testing.T, sim *wasim.Server, me types.JID, after uint64, id string) wasim.LedgerEntry {
	t.Helper()
	ev := waitSim(t, sim, after, wasim.EventRetryResent, me.String())
	if !strings.HasPrefix(ev.Detail, id+" ") {
		t.Fatalf("resent %q, want %s", ev.Detail, id)
	}
	e, _ := sim.LedgerEntry(me, id)
	return e
}

// TestRetryReceipt: a recipient's phone asks for a message again; whatsmeow re-encrypts and
// resends it, from memory, or after a restart from its store with UseRetryMessageStore.
func TestRetryReceipt(t *testing.T) {
	checkLeaks(t)
	sim := fixtureSim(t, wasim.Options{})
	bob := sim.AddUser("15550002222", "Bob")
	ctx := testCtx(t)

	tc, reopen := retryClient(t, sim, true)
	me := *tc.cli.Store.ID
	snd := newSender(t, sim, tc)
	n := 0
	sendOne := func() string {
		t.Helper()
		n++
		id := fmt.Sprintf("3EB0E7E7%014d", n)
		if _, err := snd.send(bob, id); err != nil {
			t.Fatal(err)
		}
		return id
	}

	t.Run("FromMemory", func(t *testing.T) {
		id := sendOne()
		seq := sim.LastEvent()
		if err := sim.RequestRetry(ctx, bob.User, me, id); err != nil {
			t.Fatal(err)
		}
		e := waitResent(t, sim, me, seq, id)
		if e.RetryRequests != 1 || e.Resends != 1 || !e.ResendDecrypted || e.ResendText != "hola "+id || e.Arrivals != 1 {
			t.Errorf("ledger = %+v, want one resend, decrypted", e)
		}
		if got := sim.DeliveredTo()[bob.String()]; got != 1 {
			t.Errorf("bob saw %d messages, want 1 (a resend is the same message)", got)
		}
	})

	t.Run("PhoneLostSession", func(t *testing.T) {
		// A reinstalled phone: its retry receipt carries a prekey bundle, the client starts a
		// new session from it (a pkmsg).
		id := sendOne()
		if err := sim.ForgetSessions(bob.User); err != nil {
			t.Fatal(err)
		}
		seq := sim.LastEvent()
		if err := sim.RequestRetry(ctx, bob.User, me, id); err != nil {
			t.Fatal(err)
		}
		if ev := waitSim(t, sim, seq, wasim.EventRetryRequested, me.String()); !strings.HasSuffix(ev.Detail, " keys") {
			t.Errorf("retry receipt %q, want one with keys", ev.Detail)
		}
		if e := waitResent(t, sim, me, seq, id); !e.ResendDecrypted {
			t.Errorf("ledger = %+v", e)
		}
	})

	t.Run("ClientLostSession", func(t *testing.T) {
		// Without a session with the phone the client fetches its prekeys first.
		id := sendOne()
		lid := lidOf(t, sim, bob.User)
		if err := tc.cli.Store.Sessions.DeleteSession(ctx, lid.SignalAddress().String()); err != nil {
			t.Fatal(err)
		}
		seq := sim.LastEvent()
		if err := sim.RequestRetry(ctx, bob.User, me, id); err != nil {
			t.Fatal(err)
		}
		if e := waitResent(t, sim, me, seq, id); !e.ResendDecrypted {
			t.Errorf("ledger = %+v", e)
		}
	})

	t.Run("AfterRestartWithStore", func(t *testing.T) {
		id := sendOne()
		tc.sync()
		tc.close()
		tc = reopen()
		seq := sim.LastEvent()
		if err := sim.RequestRetry(ctx, bob.User, me, id); err != nil {
			t.Fatal(err)
		}
		e := waitResent(t, sim, me, seq, id)
		if !e.ResendDecrypted || e.ResendText != "hola "+id || e.Resends != 1 {
			t.Errorf("ledger = %+v, want the restarted client's resend, decrypted", e)
		}
	})
	tc.sync()
	tc.close()
	tc.assertCleanLog()
}

// TestRetryReceiptAfterRestartWithoutStore: without UseRetryMessageStore a restarted client
// has nothing to resend; it logs the failure and the ledger shows no resend.
func TestRetryReceiptAfterRestartWithoutStore(t *testing.T) {
	checkLeaks(t)
	sim := fixtureSim(t, wasim.Options{})
	bob := sim.AddUser("15550002222", "Bob")
	ctx := testCtx(t)
	tc, reopen := retryClient(t, sim, false)
	me := *tc.cli.Store.ID
	const id = "3EB0E7E7000000000000NS"
	if _, err := newSender(t, sim, tc).send(bob, id); err != nil {
		t.Fatal(err)
	}
	tc.close()
	tc = reopen()
	seq := sim.LastEvent()
	if err := sim.RequestRetry(ctx, bob.User, me, id); err != nil {
		t.Fatal(err)
	}
	tc.log.waitLine("couldn't find message " + id)
	tc.sync()
	if e, _ := sim.LedgerEntry(me, id); e.RetryRequests != 1 || e.Resends != 0 {
		t.Errorf("ledger = %+v, want a retry request and no resend", e)
	}
	if n := countSim(sim, seq, wasim.EventRetryResent, me.String()); n != 0 {
		t.Errorf("%d resends, want none", n)
	}
	tc.close()
	tc.assertCleanLog("Failed to handle retry receipt")
}

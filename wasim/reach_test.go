package wasim_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

// is463 reports whether err is the server's ack error 463.
func is463(err error) bool {
	return errors.Is(err, whatsmeow.ErrServerReturnedError) && strings.HasSuffix(err.Error(), " 463")
}

// lidOf returns the LID user JID the simulator gave phone.
func lidOf(t *testing.T, sim *wasim.Server, phone string) types.JID {
	t.Helper()
	for _, a := range sim.Accounts() {
		if a.Phone == phone {
			return types.NewJID(a.LID, types.HiddenUserServer)
		}
	}
	t.Fatalf("no account %s", phone)
	return types.EmptyJID
}

// sender sends as one test client and waits, after its first send to each recipient, for the
// privacy-token IQ whatsmeow issues in the background then (one per recipient and process):
// an IQ still in flight when the test disconnects would be logged as an error, and a second
// send before the first IQ's answer would issue another.
type sender struct {
	t    *testing.T
	sim  *wasim.Server
	tc   *testClient
	me   types.JID
	seen map[string]bool
}

func newSender(t *testing.T, sim *wasim.Server, tc *testClient) *sender {
	return &sender{t: t, sim: sim, tc: tc, me: *tc.cli.Store.ID, seen: map[string]bool{}}
}

func (s *sender) send(to types.JID, id string) (wasim.LedgerEntry, error) {
	s.t.Helper()
	seq := s.sim.LastEvent()
	_, err := s.tc.cli.SendMessage(testCtx(s.t), to, text("hola "+id), whatsmeow.SendRequestExtra{ID: types.MessageID(id)})
	if !s.seen[to.User] {
		s.seen[to.User] = true
		waitSim(s.t, s.sim, seq, wasim.EventClientToken, s.me.String())
		s.tc.sync()
	}
	e, _ := s.sim.LedgerEntry(s.me, id)
	return e, err
}

// TestAddressing: whatsmeow addresses every DM to the recipient's LID with the phone number
// in peer_recipient_pn; a bare phone-number JID, or a LID with another account's number, is
// recorded as such and accepted, or answered 479 with Faults.Addressing479.
func TestAddressing(t *testing.T) {
	checkLeaks(t)
	sim, tc, me := pairedClient(t, wasim.Options{})
	bob := sim.AddUser("15550002222", "Bob")
	sim.AddUser("15550003333", "Carol")
	ctx := testCtx(t)
	snd := newSender(t, sim, tc)
	e, err := snd.send(bob, "3EB0AD000000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if e.To != lidOf(t, sim, bob.User).String() || e.PN != bob.String() || e.PeerRecipientPN != bob.String() ||
		e.Addressing != "lid" || e.Token != "" || e.Warm || !e.Decrypted {
		t.Errorf("ledger = %+v, want addressed to bob's LID with peer_recipient_pn, no token, cold, delivered", e)
	}

	// Hand-made stanzas (the client would never address them so): the ledger says how they
	// were addressed. Their <enc> is not a real Signal message.
	raw := func(id string, to types.JID, peer *types.JID) {
		t.Helper()
		attrs := waBinary.Attrs{"id": id, "to": to, "type": "text"}
		if peer != nil {
			attrs["peer_recipient_pn"] = *peer
		}
		node := waBinary.Node{Tag: "message", Attrs: attrs, Content: []waBinary.Node{
			{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": "msg"}, Content: []byte("not a signal message")},
		}}
		if err := tc.cli.DangerousInternals().SendNode(ctx, node); err != nil {
			t.Fatal(err)
		}
	}
	waitAck := func(id string) string {
		t.Helper()
		ev, err := sim.WaitEvent(ctx, 0, func(e wasim.Event) bool { return e.Kind == wasim.EventAck && strings.HasPrefix(e.Detail, id) })
		if err != nil {
			t.Fatalf("no ack for %s: %v", id, err)
		}
		return ev.Detail
	}
	carol := types.NewJID("15550003333", types.DefaultUserServer)
	t.Run("BarePNAccepted", func(t *testing.T) {
		raw("3EB0AD000000000000000002", bob, nil)
		if d := waitAck("3EB0AD000000000000000002"); d != "3EB0AD000000000000000002" {
			t.Errorf("ack %q, want a plain ack", d)
		}
		if e, _ := sim.LedgerEntry(me, "3EB0AD000000000000000002"); e.Addressing != "pn" || e.PN != bob.String() || e.AckError != 0 {
			t.Errorf("ledger = %+v", e)
		}
	})
	t.Run("Addressing479", func(t *testing.T) {
		sim.SetFaults(me.User, wasim.Faults{Addressing479: true})
		defer sim.SetFaults(me.User, wasim.Faults{})
		raw("3EB0AD000000000000000003", bob, nil)
		raw("3EB0AD000000000000000004", lidOf(t, sim, bob.User), &carol)
		for _, id := range []string{"3EB0AD000000000000000003", "3EB0AD000000000000000004"} {
			if d := waitAck(id); d != id+" error:479" {
				t.Errorf("ack %q, want error 479", d)
			}
		}
		if e, _ := sim.LedgerEntry(me, "3EB0AD000000000000000004"); e.Addressing != "lid_pn_mismatch" || e.PeerRecipientPN != carol.String() || e.AckError != 479 {
			t.Errorf("ledger = %+v", e)
		}
		// The proper addressing still passes.
		if _, err := snd.send(bob, "3EB0AD000000000000000005"); err != nil {
			t.Errorf("a LID-addressed send under Addressing479: %v", err)
		}
	})
	tc.sync()
	tc.close()
	tc.assertCleanLog()
}

// TestPrivacyTokens: with Reach.RequireToken a send to a recipient that has no chat with
// the sender needs a valid tctoken (issued by the server once the recipient writes to the
// sender, or SetChat) or cstoken (the sender's NCT salt); else 463, not delivered.
func TestPrivacyTokens(t *testing.T) {
	checkLeaks(t)
	sim, tc, me := pairedClient(t, wasim.Options{})
	bob := sim.AddUser("15550002222", "Bob")
	carol := sim.AddUser("15550003333", "Carol")
	dave := sim.AddUser("15550004444", "Dave")
	sim.SetReach(me.User, wasim.Reach{RequireToken: true})
	ctx := testCtx(t)
	send := newSender(t, sim, tc).send

	t.Run("ColdWithoutToken463", func(t *testing.T) {
		seq := sim.LastEvent()
		e, err := send(bob, "3EB0707000000000000001")
		if !is463(err) {
			t.Fatalf("err = %v, want 463", err)
		}
		if e.Decrypted || e.Acks463 != 1 || e.Refusal != "no_token" || e.Warm || e.Token != "" || e.AckError != 463 {
			t.Errorf("ledger = %+v, want refused, not delivered", e)
		}
		if got := sim.DeliveredTo()[bob.String()]; got != 0 {
			t.Errorf("bob saw %d messages, want 0", got)
		}
		waitSim(t, sim, seq, wasim.EventAck463, me.String())
	})

	t.Run("SetChatIssuesTCToken", func(t *testing.T) {
		seq := sim.LastEvent()
		sim.SetChat(me.User, bob.User, true)
		ev := waitSim(t, sim, seq, wasim.EventNotified, me.String())
		if !strings.HasPrefix(ev.Detail, "privacy_token ") {
			t.Fatalf("notified %q, want the privacy_token notification", ev.Detail)
		}
		e, err := send(bob, "3EB0707000000000000002")
		if err != nil || !e.Decrypted || !e.Warm || e.Token != "tctoken" || !e.TokenValid {
			t.Errorf("err = %v, ledger = %+v, want warm, tctoken, delivered", err, e)
		}
		// The chat ends, the token stays valid: the send is cold but carries a good token.
		sim.SetChat(me.User, bob.User, false)
		e, err = send(bob, "3EB0707000000000000003")
		if err != nil || !e.Decrypted || e.Warm || e.Token != "tctoken" || !e.TokenValid {
			t.Errorf("err = %v, ledger = %+v, want cold with a valid tctoken, delivered", err, e)
		}
	})

	t.Run("ReplyIssuesTCToken", func(t *testing.T) {
		seq := sim.LastEvent()
		if _, err := sim.SendText(ctx, carol.User, me.ToNonAD(), "hola, soy Carol"); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.Message](tc)
		waitSim(t, sim, seq, wasim.EventNotified, me.String())
		e, err := send(carol, "3EB0707000000000000004")
		if err != nil || !e.Warm || e.Token != "tctoken" || !e.TokenValid || !e.Decrypted {
			t.Errorf("err = %v, ledger = %+v", err, e)
		}
	})

	t.Run("CSToken", func(t *testing.T) {
		// wasim does not deliver the NCT salt (app state); the test hands it over.
		if err := tc.cli.DangerousInternals().StoreNCTSalt(ctx, sim.NCTSalt(me.User)); err != nil {
			t.Fatal(err)
		}
		e, err := send(dave, "3EB0707000000000000005")
		if err != nil || e.Warm || e.Token != "cstoken" || !e.TokenValid || !e.Decrypted {
			t.Errorf("err = %v, ledger = %+v, want cold with a valid cstoken, delivered", err, e)
		}
		// A wrong salt makes a cstoken the server rejects.
		if err := tc.cli.DangerousInternals().StoreNCTSalt(ctx, []byte("not the salt")); err != nil {
			t.Fatal(err)
		}
		e, err = send(dave, "3EB0707000000000000006")
		if !is463(err) || e.Token != "cstoken" || e.TokenValid || e.Decrypted {
			t.Errorf("err = %v, ledger = %+v, want 463 for a bad cstoken", err, e)
		}
	})
	tc.sync()
	tc.close()
	tc.assertCleanLog()
}

// TestReachTimelock: cold sends are counted per sending account; past the plan's number the
// account is timelocked (MEX notification → events.NotifyAccountReachoutTimelock), cold sends
// get 463 and are not delivered, warm ones pass; the lock ends by EndTimelock or by time.
func TestReachTimelock(t *testing.T) {
	checkLeaks(t)
	sim, tc, me := pairedClient(t, wasim.Options{})
	warm := sim.AddUser("15550002000", "Warm")
	var cold []types.JID
	for i := range 6 {
		cold = append(cold, sim.AddUser("1555000300"+strconv.Itoa(i), ""))
	}
	sim.SetReach(me.User, wasim.Reach{TimelockAfterColdSends: 3, TimelockFor: time.Hour, EnforcementType: "RESTRICT_ALL_COMPANIONS"})
	seq := sim.LastEvent()
	sim.SetChat(me.User, warm.User, true)
	waitSim(t, sim, seq, wasim.EventNotified, me.String())
	send := newSender(t, sim, tc).send

	for i := range 3 {
		if e, err := send(cold[i], "3EB0713C0000000000000"+strconv.Itoa(i)); err != nil || !e.Decrypted || e.Warm {
			t.Fatalf("cold send %d: err = %v, ledger = %+v", i, err, e)
		}
	}
	if tl := sim.Timelock(me.User); tl.Active || tl.ColdSends != 3 {
		t.Fatalf("after 3 cold sends: %+v", tl)
	}

	seq = sim.LastEvent()
	start := time.Now()
	e, err := send(cold[3], "3EB0713C00000000000003")
	if !is463(err) || e.Decrypted || e.Refusal != "timelock" || e.Acks463 != 1 {
		t.Fatalf("the 4th cold send: err = %v, ledger = %+v, want 463, not delivered", err, e)
	}
	waitSim(t, sim, seq, wasim.EventTimelockStarted, me.User)
	n := waitFor[*events.NotifyAccountReachoutTimelock](tc)
	tl := sim.Timelock(me.User)
	if !n.IsActive || n.EnforcementType != "RESTRICT_ALL_COMPANIONS" || n.TimeEnforcementEnds.Unix() != tl.Ends.Unix() ||
		tl.Ends.Before(start.Add(time.Hour-time.Second)) || !tl.Active || tl.Refused != 1 || tl.Locks != 1 {
		t.Errorf("client got %+v; simulator state %+v", n, tl)
	}
	waitSim(t, sim, seq, wasim.EventNotified, me.String())

	// Inside the lock: cold sends are refused (a retry of the refused id counts as such),
	// warm ones pass.
	if _, err := send(cold[4], "3EB0713C00000000000004"); !is463(err) {
		t.Errorf("a cold send in the lock: %v, want 463", err)
	}
	if e, err := send(cold[3], "3EB0713C00000000000003"); !is463(err) || e.RetriesInLock != 1 || e.Acks463 != 2 {
		t.Errorf("retry of a 463 in the lock: err = %v, ledger = %+v, want 463 and retries_in_lock 1", err, e)
	}
	if e, err := send(warm, "3EB0713C0000000000000W"); err != nil || !e.Decrypted || !e.Warm {
		t.Errorf("a warm send in the lock: err = %v, ledger = %+v", err, e)
	}
	if got := sim.Acks463()[cold[3].String()]; got != 2 {
		t.Errorf("Acks463[%s] = %d, want 2", cold[3], got)
	}

	seq = sim.LastEvent()
	if !sim.EndTimelock(me.User) {
		t.Fatal("EndTimelock: no active lock")
	}
	waitSim(t, sim, seq, wasim.EventTimelockEnded, me.User)
	if n := waitFor[*events.NotifyAccountReachoutTimelock](tc); n.IsActive {
		t.Errorf("client got %+v, want IsActive false", n)
	}
	waitSim(t, sim, seq, wasim.EventNotified, me.String())
	if e, err := send(cold[3], "3EB0713C00000000000003"); err != nil || !e.Decrypted || e.RetriesInLock != 1 {
		t.Errorf("after the lock: err = %v, ledger = %+v, want delivered", err, e)
	}
	if got := sim.DeliveredTo()[cold[3].String()]; got != 1 {
		t.Errorf("%s saw %d messages, want 1", cold[3], got)
	}

	t.Run("Expires", func(t *testing.T) {
		// A lock ends by itself when its time is up. (The send above was cold count 1.)
		sim.SetReach(me.User, wasim.Reach{TimelockAfterColdSends: 1, TimelockFor: 200 * time.Millisecond})
		seq := sim.LastEvent()
		if _, err := send(cold[5], "3EB0713C00000000000005"); !is463(err) {
			t.Fatalf("err = %v, want 463", err)
		}
		if n := waitFor[*events.NotifyAccountReachoutTimelock](tc); !n.IsActive {
			t.Errorf("client got %+v", n)
		}
		ended := waitSim(t, sim, seq, wasim.EventTimelockEnded, me.User)
		if ended.Detail != "expired" {
			t.Errorf("ended %q, want expired", ended.Detail)
		}
		if n := waitFor[*events.NotifyAccountReachoutTimelock](tc); n.IsActive {
			t.Errorf("client got %+v, want IsActive false", n)
		}
		waitSim(t, sim, ended.Seq, wasim.EventNotified, me.String())
		if e, err := send(cold[5], "3EB0713C00000000000005"); err != nil || !e.Decrypted {
			t.Errorf("after expiry: err = %v, ledger = %+v", err, e)
		}
	})
	tc.sync()
	tc.close()
	tc.assertCleanLog()
}

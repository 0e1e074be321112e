package wasim_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

// pairedClient starts a simulator that knows the fixture's accounts and connects the first
// fixture client (15550001111).
func pairedClient(t *testing.T, opts wasim.Options) (*wasim.Server, *testClient, types.JID) {
	t.Helper()
	sim := fixtureSim(t, opts)
	tc := fixtureClient(t, sim, 0)
	return sim, tc, *tc.cli.Store.ID
}

func TestSendMessage(t *testing.T) {
	checkLeaks(t)
	sim, tc, me := pairedClient(t, wasim.Options{})
	bob := sim.AddUser("15550002222", "Bob")
	sim.SetBehavior("15550002222", wasim.Behavior{Deliver: true, Read: true})
	ctx := testCtx(t)

	const id = "3EB0AAAAAAAAAAAAAAAA01"
	start := time.Now()
	resp, err := tc.cli.SendMessage(ctx, bob, text("hola Bob"), whatsmeow.SendRequestExtra{ID: id})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	t.Logf("first send (usync, prekey fetch, pkmsg, ack): %v", time.Since(start))
	e, ok := sim.LedgerEntry(me, id)
	if !ok {
		t.Fatal("message not in the ledger")
	}
	if resp.ID != id || resp.Timestamp.Unix() != e.Timestamp {
		t.Errorf("SendMessage = {ID %s, t %d}, want {%s, %d}", resp.ID, resp.Timestamp.Unix(), id, e.Timestamp)
	}
	if !e.Decrypted || e.Text != "hola Bob" || e.PN != bob.String() || !strings.HasSuffix(e.To, "@lid") || e.Arrivals != 1 || e.Acks != 1 {
		t.Errorf("ledger entry = %+v", e)
	}

	t.Run("Receipts", func(t *testing.T) {
		for _, want := range []types.ReceiptType{types.ReceiptTypeDelivered, types.ReceiptTypeRead} {
			r := waitFor[*events.Receipt](tc)
			if r.Type != want || len(r.MessageIDs) != 1 || r.MessageIDs[0] != id || r.Sender.User != bob.User {
				t.Errorf("receipt = %+v, want %q for %s from %s", r, want, id, bob)
			}
		}
		waitReceiptAcked(t, sim, id, "read")
	})

	t.Run("SecondMessage", func(t *testing.T) {
		if _, err := tc.cli.SendMessage(ctx, bob, text("segundo"), whatsmeow.SendRequestExtra{ID: "3EB0AAAAAAAAAAAAAAAA02"}); err != nil {
			t.Fatal(err)
		}
		if e, _ := sim.LedgerEntry(me, "3EB0AAAAAAAAAAAAAAAA02"); e.Text != "segundo" {
			t.Errorf("ledger = %+v", e)
		}
		waitFor[*events.Receipt](tc)
		waitFor[*events.Receipt](tc)
		waitReceiptAcked(t, sim, "3EB0AAAAAAAAAAAAAAAA02", "read")
	})

	t.Run("Reply", func(t *testing.T) {
		rid, err := sim.SendText(ctx, "15550002222", me.ToNonAD(), "gracias")
		if err != nil {
			t.Fatal(err)
		}
		m := waitFor[*events.Message](tc)
		if m.Info.ID != rid || m.Info.Sender.User != bob.User || m.Message.GetConversation() != "gracias" || m.Info.PushName != "Bob" {
			t.Errorf("got message %s from %s: %q (%s)", m.Info.ID, m.Info.Sender, m.Message.GetConversation(), m.Info.PushName)
		}
	})

	t.Run("AfterReply", func(t *testing.T) {
		// The conversation goes on over the session both sides now hold (type "msg").
		if _, err := tc.cli.SendMessage(ctx, bob, text("tercero"), whatsmeow.SendRequestExtra{ID: "3EB0AAAAAAAAAAAAAAAA03"}); err != nil {
			t.Fatal(err)
		}
		if e, _ := sim.LedgerEntry(me, "3EB0AAAAAAAAAAAAAAAA03"); !e.Decrypted || e.Text != "tercero" {
			t.Errorf("ledger = %+v", e)
		}
		waitFor[*events.Receipt](tc)
		waitFor[*events.Receipt](tc)
		waitReceiptAcked(t, sim, "3EB0AAAAAAAAAAAAAAAA03", "read")
	})

	t.Run("FirstContact", func(t *testing.T) {
		sim.AddUser("15550003333", "Carol")
		if _, err := sim.SendText(ctx, "15550003333", me.ToNonAD(), "hola de Carol"); err != nil {
			t.Fatal(err)
		}
		m := waitFor[*events.Message](tc)
		if m.Info.Sender.User != "15550003333" || m.Message.GetConversation() != "hola de Carol" {
			t.Errorf("got %q from %s", m.Message.GetConversation(), m.Info.Sender)
		}
		// and the answer to a first contact goes over the session Carol started
		if _, err := tc.cli.SendMessage(ctx, types.NewJID("15550003333", types.DefaultUserServer), text("hola Carol")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("IsOnWhatsApp", func(t *testing.T) {
		sim.SetRegistered("15559999999", false)
		res, err := tc.cli.IsOnWhatsApp(ctx, []string{"+15550002222", "+15559999999"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range res {
			got[r.Query] = r.IsIn
		}
		if len(res) != 2 || !got["+15550002222"] || got["+15559999999"] {
			t.Errorf("IsOnWhatsApp = %+v", res)
		}
	})

	t.Run("ResendSameID", func(t *testing.T) {
		resp2, err := tc.cli.SendMessage(ctx, bob, text("hola Bob"), whatsmeow.SendRequestExtra{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := sim.LedgerEntry(me, id)
		if e.Arrivals != 2 || e.Acks != 2 || resp2.Timestamp.Unix() != e.Timestamp {
			t.Errorf("after a resend: ledger %+v, resend t %d", e, resp2.Timestamp.Unix())
		}
		if got := sim.DeliveredTo()[bob.String()]; got != 3 { // "hola Bob" once, "segundo", "tercero"
			t.Errorf("bob saw %d distinct messages, want 3", got)
		}
	})
	tc.close()
	tc.assertCleanLog()
}

func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestSeveralClients has three paired clients (three clientes) send to five simulated
// recipients at the same time; one recipient answers BAJA to the first message of each sender.
func TestSeveralClients(t *testing.T) {
	checkLeaks(t)
	sim := fixtureSim(t, wasim.Options{})
	var tcs []*testClient
	for i := range fixtureClients {
		tcs = append(tcs, fixtureClient(t, sim, i))
	}
	var recipients []types.JID
	for i := range 5 {
		phone := fmt.Sprintf("1555000200%d", i)
		recipients = append(recipients, sim.AddUser(phone, fmt.Sprintf("Contacto %d", i)))
		sim.SetBehavior(phone, wasim.Behavior{Deliver: true})
	}
	sim.SetBehavior("15550002000", wasim.Behavior{Deliver: true, ReplyFirst: "BAJA"})
	const perClient = 10
	ctx := testCtx(t)
	errs := make(chan error, len(tcs)*perClient)
	var wg sync.WaitGroup
	for ci, tc := range tcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range perClient {
				id := fmt.Sprintf("3EB0%02d%016d", ci, m)
				to := recipients[m%len(recipients)]
				if _, err := tc.cli.SendMessage(ctx, to, text(fmt.Sprintf("hola %s de %d", to.User, ci)), whatsmeow.SendRequestExtra{ID: id}); err != nil {
					errs <- fmt.Errorf("client %d message %d: %w", ci, m, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ledger := sim.Ledger()
	if len(ledger) != len(tcs)*perClient {
		t.Fatalf("ledger has %d entries, want %d", len(ledger), len(tcs)*perClient)
	}
	for _, e := range ledger {
		if !e.Decrypted || e.Acks != 1 || e.Arrivals != 1 || !strings.HasPrefix(e.Text, "hola "+strings.TrimSuffix(e.PN, "@s.whatsapp.net")) {
			t.Errorf("ledger entry %+v", e)
		}
	}
	for _, r := range recipients {
		if got := sim.DeliveredTo()[r.String()]; got != len(tcs)*perClient/len(recipients) {
			t.Errorf("%s saw %d messages, want %d", r, got, len(tcs)*perClient/len(recipients))
		}
	}
	for _, e := range ledger {
		waitReceiptAcked(t, sim, e.ID, "delivered")
	}
	for _, tc := range tcs {
		waitCount[*events.Receipt](tc, perClient)
		m := waitFor[*events.Message](tc)
		if m.Message.GetConversation() != "BAJA" || m.Info.Sender.User != "15550002000" {
			t.Errorf("got %q from %s, want BAJA from 15550002000", m.Message.GetConversation(), m.Info.Sender)
		}
	}
	for _, tc := range tcs {
		tc.close()
		tc.assertCleanLog()
		if n := countOf[*events.Message](tc); n != 1 {
			t.Errorf("client got %d replies, want 1 (BAJA answers only the first message)", n)
		}
	}
}

// TestDelayedReceipts: receipts come after the recipient's configured delays, in order.
func TestDelayedReceipts(t *testing.T) {
	checkLeaks(t)
	sim, tc, me := pairedClient(t, wasim.Options{})
	bob := sim.AddUser("15550002222", "Bob")
	sim.SetBehavior("15550002222", wasim.Behavior{Deliver: true, DeliverAfter: 100 * time.Millisecond, Read: true, ReadAfter: 200 * time.Millisecond})
	start := time.Now()
	if _, err := tc.cli.SendMessage(testCtx(t), bob, text("hola"), whatsmeow.SendRequestExtra{ID: "3EB0DE1A7000000000000A"}); err != nil {
		t.Fatal(err)
	}
	d := waitFor[*events.Receipt](tc)
	atDelivered := time.Since(start)
	r := waitFor[*events.Receipt](tc)
	atRead := time.Since(start)
	if d.Type != types.ReceiptTypeDelivered || r.Type != types.ReceiptTypeRead {
		t.Errorf("receipts %q then %q, want delivered then read", d.Type, r.Type)
	}
	if atDelivered < 100*time.Millisecond || atRead < 300*time.Millisecond {
		t.Errorf("delivered after %v (want ≥100ms), read after %v (want ≥300ms)", atDelivered, atRead)
	}
	waitReceiptAcked(t, sim, "3EB0DE1A7000000000000A", "read")
	e, _ := sim.LedgerEntry(me, "3EB0DE1A7000000000000A")
	if e.DeliveredAt == nil || e.ReadAt == nil || !e.ReadAt.After(*e.DeliveredAt) {
		t.Errorf("ledger = %+v", e)
	}
	tc.close()
	tc.assertCleanLog()
}

// TestClientToClient: a message from one cliente's client to another cliente's number
// reaches that number's phone (ledger) and its linked real client (forwarded ciphertext);
// a message to a client that is offline waits for its next login.
func TestClientToClient(t *testing.T) {
	checkLeaks(t)
	sim := fixtureSim(t, wasim.Options{})
	a, b := fixtureClient(t, sim, 0), fixtureClient(t, sim, 1)
	aJID, bJID := *a.cli.Store.ID, *b.cli.Store.ID
	ctx := testCtx(t)
	if _, err := a.cli.SendMessage(ctx, bJID.ToNonAD(), text("hola B"), whatsmeow.SendRequestExtra{ID: "3EB0C2C000000000000001"}); err != nil {
		t.Fatal(err)
	}
	m := waitFor[*events.Message](b)
	if m.Message.GetConversation() != "hola B" || m.Info.Sender.User != aJID.User || m.Info.ID != "3EB0C2C000000000000001" {
		t.Errorf("B got %q from %s (%s)", m.Message.GetConversation(), m.Info.Sender, m.Info.ID)
	}
	if e, _ := sim.LedgerEntry(aJID, "3EB0C2C000000000000001"); !e.Decrypted || e.Text != "hola B" {
		t.Errorf("ledger = %+v", e)
	}

	t.Run("Offline", func(t *testing.T) {
		// B's receipt for A's message is the last thing B sends; disconnecting before it
		// would make B log a failed receipt.
		waitSim(t, sim, 0, wasim.EventClientReceipt, bJID.String())
		// A's client gave B its privacy token (an IQ after the send); the server passed it
		// on to B: B must have handled that notification too.
		waitSim(t, sim, 0, wasim.EventNotified, bJID.String())
		seq := sim.LastEvent()
		b.cli.Disconnect()
		waitSim(t, sim, seq, wasim.EventConnClosed, bJID.String())
		qid, err := sim.SendText(ctx, "15550005555", bJID.ToNonAD(), "¿estás?")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.cli.Connect(); err != nil {
			t.Fatal(err)
		}
		m := waitFor[*events.Message](b)
		if m.Message.GetConversation() != "¿estás?" || m.Info.Sender.User != "15550005555" {
			t.Errorf("B got %q from %s after logging in", m.Message.GetConversation(), m.Info.Sender)
		}
		waitCount[*events.Connected](b, 2) // before or after the queued message: no order between them
		waitCount[*events.PushName](b, 1)  // saved in the background: the store must stay open for it
		waitSim(t, sim, seq, wasim.EventClientReceipt, bJID.String())
		if e := sim.Events(seq); !slices.ContainsFunc(e, func(e wasim.Event) bool { return strings.HasPrefix(e.Detail, qid) }) {
			t.Errorf("no receipt from B for the queued message %s", qid)
		}
	})
	a.sync()
	a.close()
	b.close()
	a.assertCleanLog()
	b.assertCleanLog()
}

package e2e_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"leadmaster/kv/devicestore"
)

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// A client restarted from the bbolt store can still send (the recipient
// decrypts it) and receive (it decrypts the answer), with the Signal sessions
// established before the restart.
func TestWasim_RestartedClientSendsAndReceives(t *testing.T) {
	sim := startSim(t)
	bob := sim.AddUser("15550009999", "Bob")
	path := filepath.Join(t.TempDir(), "leadmaster.db")
	cl := openClient(t, sim, path)
	me := pairByQR(t, sim, cl, "15550001111")
	ctx := sendCtx(t)
	if _, err := cl.cli.SendMessage(ctx, bob, text("before restart"), whatsmeow.SendRequestExtra{ID: "3EB0000000000000000001"}); err != nil {
		t.Fatalf("send before restart: %v", err)
	}
	cl.close()

	cl2 := openClient(t, sim, path)
	if err := cl2.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](cl2)
	if _, err := cl2.cli.SendMessage(ctx, bob, text("after restart"), whatsmeow.SendRequestExtra{ID: "3EB0000000000000000002"}); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	for id, want := range map[string]string{"3EB0000000000000000001": "before restart", "3EB0000000000000000002": "after restart"} {
		e, ok := sim.LedgerEntry(me, id)
		if !ok || !e.Decrypted || e.Text != want {
			t.Errorf("ledger %s = %+v (found %v), want decrypted %q", id, e, ok, want)
		}
	}
	rid, err := sim.SendText(ctx, "15550009999", me.ToNonAD(), "reply after restart")
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	m := waitFor[*events.Message](cl2)
	if m.Info.ID != rid || m.Message.GetConversation() != "reply after restart" {
		t.Errorf("received %s %q, want %s", m.Info.ID, m.Message.GetConversation(), rid)
	}
	// The message went through the decryption transaction: its ciphertext
	// hash is in the device's event buffer (layout: see kv/devicestore/layout.go).
	err = cl2.db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket([]byte("wa.device." + me.String())).Bucket([]byte("eventbuf")).Stats().KeyN; n == 0 {
			t.Error("no buffered event: the decryption transaction was not used")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Ten real clients on one bbolt file (one Container, as the appliance runs
// them) send at once; every store call must succeed, so every message the
// server acked is decrypted by its recipient. Then the ten receive at once.
func TestWasim_TenClientsSendAtOnceEveryAckedMessageDecrypts(t *testing.T) {
	const clients, perClient = 10, 10
	sim := startSim(t)
	recipients := []types.JID{sim.AddUser("15550009001", "R1"), sim.AddUser("15550009002", "R2"), sim.AddUser("15550009003", "R3")}
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "leadmaster.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() }) // registered first: runs after the clients disconnect
	c, err := devicestore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	cls := make([]*client, clients)
	jids := make([]types.JID, clients)
	for i := range cls {
		cls[i] = attach(t, sim, c, c.NewDevice())
		jids[i] = pairByQR(t, sim, cls[i], fmt.Sprintf("1555000%04d", i+1))
	}
	ctx := sendCtx(t)
	var wg sync.WaitGroup
	sendErrs := make(chan error, clients*perClient)
	for i, cl := range cls {
		wg.Go(func() {
			for j := range perClient {
				id := fmt.Sprintf("3EB0%04d%014d", i, j)
				to := recipients[(i+j)%len(recipients)]
				if _, err := cl.cli.SendMessage(ctx, to, text(id), whatsmeow.SendRequestExtra{ID: id}); err != nil {
					sendErrs <- fmt.Errorf("client %d message %d: %w", i, j, err)
				}
			}
		})
	}
	wg.Wait()
	close(sendErrs)
	for err := range sendErrs {
		t.Error(err)
	}
	acked, decrypted := 0, 0
	for i := range cls {
		for j := range perClient {
			id := fmt.Sprintf("3EB0%04d%014d", i, j)
			e, ok := sim.LedgerEntry(jids[i], id)
			if !ok || e.Acks == 0 {
				continue
			}
			acked++
			if e.Decrypted && e.Text == id {
				decrypted++
			} else {
				t.Errorf("acked message %s not decrypted by its recipient: %+v", id, e)
			}
		}
	}
	if acked != clients*perClient || decrypted != acked {
		t.Fatalf("%d sent, %d acked, %d decrypted; want all %d", clients*perClient, acked, decrypted, clients*perClient)
	}
	t.Logf("%d clients x %d messages: %d acked, %d decrypted by the recipient", clients, perClient, acked, decrypted)

	// Receiving at once: each client decrypts a message from each recipient.
	var rw sync.WaitGroup
	for i := range cls {
		for k := range recipients {
			rw.Go(func() {
				if _, err := sim.SendText(ctx, fmt.Sprintf("155500090%02d", k+1), jids[i].ToNonAD(), fmt.Sprintf("to %d from %d", i, k)); err != nil {
					t.Errorf("send to client %d: %v", i, err)
				}
			})
		}
	}
	rw.Wait()
	for i, cl := range cls {
		for range recipients {
			if m := waitFor[*events.Message](cl); m.Message.GetConversation() == "" {
				t.Errorf("client %d: undecrypted message %+v", i, m.Info)
			}
		}
	}
}

package e2e_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

// downgradeToSchema1 rewrites a closed bbolt file of today's device store
// into what the schema-1 store (whatsmeow before 2026) left on disk: records
// without the fields schema 2 appended (the device's companion meta nonce,
// a privacy token's sender timestamp), no retry-buffer buckets, no NCT
// salt, and schema 1 in wa.meta. See kv/devicestore/layout.go and records.go.
func downgradeToSchema1(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket([]byte("wa.meta")).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, 1)); err != nil {
			return err
		}
		return tx.ForEach(func(name []byte, dev *bbolt.Bucket) error {
			if !bytes.HasPrefix(name, []byte("wa.device.")) {
				return nil
			}
			rec := dev.Get([]byte("device"))
			// The nonce is the record's last field, a uvarint-length string;
			// whatsmeow only sets it from a history sync, which wasim does
			// not send, so here it is "" (one 0x00 byte).
			if rec[len(rec)-1] != 0 {
				t.Fatalf("%s: device record does not end in an empty companion meta nonce", name)
			}
			if err := dev.Put([]byte("device"), bytes.Clone(rec[:len(rec)-1])); err != nil {
				return err
			}
			toks := dev.Bucket([]byte("privtokens"))
			var keys, v1 [][]byte
			err := toks.ForEach(func(k, v []byte) error {
				// format | ts i64 | uvarint len | token | [sender ts i64]
				n, w := binary.Uvarint(v[9:])
				end := 9 + w + int(n)
				keys, v1 = append(keys, bytes.Clone(k)), append(v1, bytes.Clone(v[:end]))
				return nil
			})
			if err != nil {
				return err
			}
			for i, k := range keys {
				if err := toks.Put(k, v1[i]); err != nil {
					return err
				}
			}
			for _, b := range []string{"retrybuf", "retrybuf_ts"} {
				if err := dev.DeleteBucket([]byte(b)); err != nil {
					return err
				}
			}
			return dev.Delete([]byte("nctsalt"))
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func schemaOf(t *testing.T, db *bbolt.DB) uint32 {
	t.Helper()
	var v uint32
	if err := db.View(func(tx *bbolt.Tx) error {
		v = binary.BigEndian.Uint32(tx.Bucket([]byte("wa.meta")).Get([]byte("schema")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// A device paired and used by the previous store (schema 1) reconnects
// after the upgrade without a new QR: the new binary migrates the file in
// place, whatsmeow logs in from the stored keys (Connected, no QR, no prekey
// upload), the Signal sessions made before the upgrade still encrypt, and
// sends keep their message for retry receipts in the migrated file.
func TestWasim_Schema1DeviceReconnectsAfterUpgrade(t *testing.T) {
	sim := startSim(t)
	bob := sim.AddUser("15550009999", "Bob")
	path := filepath.Join(t.TempDir(), "leadmaster.db")
	cl := openClient(t, sim, path)
	me := pairByQR(t, sim, cl, "15550001111")
	ctx := sendCtx(t)
	if _, err := cl.cli.SendMessage(ctx, bob, text("before upgrade"), whatsmeow.SendRequestExtra{ID: "3EB0000000000000000A01"}); err != nil {
		t.Fatalf("send before upgrade: %v", err)
	}
	cl.close()
	downgradeToSchema1(t, path)

	seq := sim.LastEvent()
	cl2 := openClient(t, sim, path) // today's binary: New migrates the file
	if got := schemaOf(t, cl2.db); got != 2 {
		t.Fatalf("schema after opening = %d, want 2", got)
	}
	if cl2.cli.Store.ID == nil || *cl2.cli.Store.ID != me {
		t.Fatalf("upgraded store has ID %v, want %s", cl2.cli.Store.ID, me)
	}
	cl2.cli.UseRetryMessageStore = true
	if err := cl2.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](cl2)
	waitSim(t, sim, seq, wasim.EventLoggedIn, me.String())
	if n := countOf[*events.QR](cl2); n != 0 {
		t.Errorf("upgraded client got %d QR events, want 0", n)
	}
	if n := countOf[*events.PairSuccess](cl2); n != 0 {
		t.Errorf("upgraded client paired again (%d PairSuccess)", n)
	}
	for _, e := range sim.Events(seq) {
		if e.Kind == wasim.EventPreKeys {
			t.Error("upgraded client uploaded prekeys again")
		}
	}
	if _, err := cl2.cli.SendMessage(ctx, bob, text("after upgrade"), whatsmeow.SendRequestExtra{ID: "3EB0000000000000000A02"}); err != nil {
		t.Fatalf("send after upgrade: %v", err)
	}
	for id, want := range map[string]string{"3EB0000000000000000A01": "before upgrade", "3EB0000000000000000A02": "after upgrade"} {
		e, ok := sim.LedgerEntry(me, id)
		if !ok || !e.Decrypted || e.Text != want {
			t.Errorf("ledger %s = %+v (found %v), want decrypted %q", id, e, ok, want)
		}
	}
	// The send kept its message in the migrated device's retry buffer.
	err := cl2.db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket([]byte("wa.device." + me.String())).Bucket([]byte("retrybuf")).Stats().KeyN; n != 1 {
			t.Errorf("retry buffer holds %d messages after one send, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// With UseRetryMessageStore, a client restarted from the bbolt store still
// answers a recipient's retry receipt for a message sent before the restart:
// whatsmeow's recent-message cache is gone, GetOutgoingEvent finds it in
// the store, and the recipient decrypts the resend.
func TestWasim_RetryReceiptAfterRestartAnsweredFromBbolt(t *testing.T) {
	sim := startSim(t)
	bob := sim.AddUser("15550009998", "Bob")
	path := filepath.Join(t.TempDir(), "leadmaster.db")
	cl := openClient(t, sim, path)
	cl.cli.UseRetryMessageStore = true
	me := pairByQR(t, sim, cl, "15550001112")
	ctx := sendCtx(t)
	const id = "3EB0000000000000000B01"
	if _, err := cl.cli.SendMessage(ctx, bob, text("asked again"), whatsmeow.SendRequestExtra{ID: id}); err != nil {
		t.Fatalf("send: %v", err)
	}
	cl.close()

	cl2 := openClient(t, sim, path)
	cl2.cli.UseRetryMessageStore = true
	if err := cl2.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](cl2)
	seq := sim.LastEvent()
	rctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := sim.RequestRetry(rctx, bob.User, me, id); err != nil {
		t.Fatalf("RequestRetry: %v", err)
	}
	ev, err := sim.WaitEvent(rctx, seq, wasim.Is(wasim.EventRetryResent, me.String()))
	if err != nil {
		t.Fatalf("waiting for the resend: %v", err)
	}
	if !strings.HasPrefix(ev.Detail, id+" ") {
		t.Fatalf("resent %q, want %s", ev.Detail, id)
	}
	e, _ := sim.LedgerEntry(me, id)
	if e.Resends != 1 || !e.ResendDecrypted || e.ResendText != "asked again" {
		t.Errorf("ledger = %+v, want one decrypted resend of the message", e)
	}
}

package devicestore_test

import (
	"testing"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/types"
)

// txid is the file's last committed write transaction.
func txid(t *testing.T, db *bbolt.DB) int {
	t.Helper()
	var id int
	mustOK(t, db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }))
	return id
}

// libsignal saves the remote identity on every message it encrypts: the
// key already stored costs no commit (an fsync pair each), a new or changed
// key is written.
func TestPutIdentity_UnchangedKeyCommitsNothing(t *testing.T) {
	c, db, _ := newBolt(t)
	d := addDevice(t, c, types.NewADJID("15550001111", 0, 1))
	const addr = "15550002222.0:1"
	k1, k2 := [32]byte{1}, [32]byte{2}
	mustOK(t, d.Identities.PutIdentity(ctx, addr, k1))
	before := txid(t, db)
	mustOK(t, d.Identities.PutIdentity(ctx, addr, k1))
	if got := txid(t, db); got != before {
		t.Fatalf("the same key again committed %d transactions", got-before)
	}
	mustOK(t, d.Identities.PutIdentity(ctx, addr, k2))
	if got := txid(t, db); got != before+1 {
		t.Fatalf("a changed key: %d commits, want 1", got-before)
	}
	if ok, err := d.Identities.IsTrustedIdentity(ctx, addr, k2); err != nil || !ok {
		t.Fatalf("the changed key is not the trusted one: %v %v", ok, err)
	}
}

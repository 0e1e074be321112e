package kv_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

func TestAdminTokenHash(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	if h, err := db.AdminTokenHash(ctx); err != nil || h != nil {
		t.Fatalf("fresh file: %x %v", h, err)
	}
	h := sha256.Sum256([]byte("tok"))
	if err := db.SetAdminTokenHash(ctx, h[:]); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAdminTokenHash(ctx, h[:]); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("second set: %v", err)
	}
	if err := db.SetAdminTokenHash(ctx, []byte("short")); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("bad hash: %v", err)
	}
	if got, _ := db.AdminTokenHash(ctx); !bytes.Equal(got, h[:]) {
		t.Fatalf("got %x", got)
	}
}

func TestAPIKeys(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	h := sha256.Sum256([]byte("key"))
	if _, err := db.APIKeyCliente(ctx, h[:]); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("no keys yet: %v", err)
	}
	if err := db.CreateAPIKey(ctx, "c1", h[:]); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unknown cliente: %v", err)
	}
	if err := db.CreateCliente(ctx, engine.Cliente{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAPIKey(ctx, "c1", h[:]); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAPIKey(ctx, "c1", h[:]); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("same key twice: %v", err)
	}
	if cl, err := db.APIKeyCliente(ctx, h[:]); err != nil || cl != "c1" {
		t.Fatalf("lookup: %q %v", cl, err)
	}
	other := sha256.Sum256([]byte("other"))
	if _, err := db.APIKeyCliente(ctx, other[:]); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
}

// TestOutbox: records of clientes with a webhook are queued once, in
// journal order, with the cursor; acked items leave; other clientes'
// records and records before the webhook are not queued.
func TestOutbox(t *testing.T) {
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	kvtest.MustCampaign(t, db, "k", 2) // cliente c1, journaled before any webhook
	if err := db.CreateCliente(ctx, engine.Cliente{ID: "c2"}); err != nil {
		t.Fatal(err)
	}
	if n, _, err := db.FeedOutbox(ctx, 10); err != nil || n != 0 {
		t.Fatalf("no webhooks: %d %v", n, err)
	}
	if err := db.SetWebhook(ctx, "zz", "http://x", "s"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unknown cliente: %v", err)
	}
	if err := db.SetWebhook(ctx, "c1", "http://x/hook", "secret"); err != nil {
		t.Fatal(err)
	}
	if u, s, err := db.Webhook(ctx, "c1"); u != "http://x/hook" || s != "secret" || err != nil {
		t.Fatalf("webhook: %q %q %v", u, s, err)
	}
	// New records: two transitions of c1, a suppression of c2, a reply of c1.
	for seq := uint64(1); seq <= 2; seq++ {
		if err := db.Apply(ctx, engine.Transition{Envio: engine.Ref{Campaign: "k", Seq: seq}, From: engine.Pendiente, To: engine.Cancelado, Reason: engine.ReasonCancel}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Suppress(ctx, "c2", "+5491123456701", "test"); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveReply(ctx, engine.Reply{Cliente: "c1", From: "+5491123456701", Text: "hola"}, nil, false); err != nil {
		t.Fatal(err)
	}
	n, more, err := db.FeedOutbox(ctx, 1) // one journal record per call
	if err != nil || n < 1 || !more {
		t.Fatalf("feed: %d %v %v", n, more, err)
	}
	for more {
		if _, more, err = db.FeedOutbox(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n, _, _ := db.FeedOutbox(ctx, 10); n != 0 {
		t.Fatalf("fed twice: %d", n)
	}
	ids, es, err := db.OutboxPending(ctx, "c1", 10)
	if err != nil || len(es) != 3 {
		t.Fatalf("pending: %+v %v", es, err)
	}
	kinds := map[engine.EntryKind]int{}
	var last uint64
	for _, e := range es {
		kinds[e.Kind]++
		if e.Kind == engine.KindTransition {
			if e.Seq <= last {
				t.Fatalf("transitions out of order: %+v", es)
			}
			last = e.Seq
		}
	}
	if kinds[engine.KindTransition] != 2 || kinds[engine.KindReply] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
	if _, e2, _ := db.OutboxPending(ctx, "c2", 10); len(e2) != 0 {
		t.Fatalf("c2 has no webhook but %d items", len(e2))
	}
	if err := db.OutboxAck(ctx, "c1", ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxAck(ctx, "c1", ids[0]); err != nil { // idempotent
		t.Fatal(err)
	}
	// The queue survives a reopen.
	db.Close()
	var db2 *kv.DB
	db2, err = kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	ids2, _, err := db2.OutboxPending(ctx, "c1", 10)
	if err != nil || len(ids2) != 2 || ids2[0] != ids[1] {
		t.Fatalf("after reopen: %v %v", ids2, err)
	}
	if rep, err := db2.Verify(ctx, nil); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestRevokeAPIKey(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	for _, c := range []string{"c1", "c2"} {
		if err := db.CreateCliente(ctx, engine.Cliente{ID: c}); err != nil {
			t.Fatal(err)
		}
	}
	h1, h2 := sha256.Sum256([]byte("k1")), sha256.Sum256([]byte("k2"))
	db.CreateAPIKey(ctx, "c1", h1[:])
	db.CreateAPIKey(ctx, "c2", h2[:])
	ids, created, err := db.APIKeys(ctx, "c1")
	if err != nil || len(ids) != 1 || len(created) != 1 || created[0].IsZero() {
		t.Fatalf("keys: %v %v %v", ids, created, err)
	}
	ids2, _, _ := db.APIKeys(ctx, "c2")
	if err := db.RevokeAPIKey(ctx, "c1", ids2[0]); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("revoke another cliente's key: %v", err)
	}
	if err := db.RevokeAPIKey(ctx, "c1", "xyz"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("bad id: %v", err)
	}
	if err := db.RevokeAPIKey(ctx, "c1", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.APIKeyCliente(ctx, h1[:]); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("revoked key still resolves: %v", err)
	}
	if cl, err := db.APIKeyCliente(ctx, h2[:]); err != nil || cl != "c2" {
		t.Fatalf("other key: %q %v", cl, err)
	}
}

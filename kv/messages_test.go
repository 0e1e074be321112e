package kv_test

import (
	"context"
	"errors"
	"testing"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

// AddMessage: one envío per key, atomically with its journal record (the
// journal replays to the stored envíos), several to one phone, none to an
// opted-out phone.
func TestAddMessage(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	kvtest.MustCampaign(t, db, "m", 0)
	idOf := func(r engine.Ref) string { return engine.MessageID(db.Secret(), r) }
	m := engine.Message{Cliente: "c1", Key: "k1", Telefono: "+5491100000001", Texto: "hola {{nombre}}"}
	first, created, err := db.AddMessage(ctx, "m", m, idOf)
	if err != nil || !created || first.Ref.Seq != 1 || first.Variables[engine.MessageTextVar] != m.Texto {
		t.Fatalf("AddMessage = %+v, %v, %v", first, created, err)
	}
	again, created, err := db.AddMessage(ctx, "m", m, idOf)
	if err != nil || created || again.Ref != first.Ref {
		t.Fatalf("same key: %+v, %v, %v", again, created, err)
	}
	second, created, err := db.AddMessage(ctx, "m", engine.Message{Cliente: "c1", Key: "k2", Telefono: m.Telefono, Texto: "otro"}, idOf)
	if err != nil || !created || second.Ref.Seq != 2 {
		t.Fatalf("second message to the same phone: %+v, %v, %v", second, created, err)
	}
	if err := db.Suppress(ctx, "c1", "+5491100000002", engine.ReasonOptOut); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AddMessage(ctx, "m", engine.Message{Cliente: "c1", Key: "k3", Telefono: "+5491100000002", Texto: "x"}, idOf); !errors.Is(err, engine.ErrOptedOut) {
		t.Fatalf("opted out: %v", err)
	}
	if _, _, err := db.AddMessage(ctx, "m", engine.Message{Cliente: "c2", Key: "k4", Telefono: "+5491100000003", Texto: "x"}, idOf); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("another cliente's campaign: %v", err)
	}
	ref, err := db.MessageRef(ctx, "c1", "m", idOf(second.Ref))
	if err != nil || ref != second.Ref {
		t.Fatalf("MessageRef by id = %v, %v", ref, err)
	}
	if ref, err = db.MessageRef(ctx, "c1", "m", "k1"); err != nil || ref != first.Ref {
		t.Fatalf("MessageRef by key = %v, %v", ref, err)
	}
	if _, err := db.MessageRef(ctx, "c1", "m", "k3"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("refused key: %v", err)
	}
	c, err := db.Counts(ctx, "m")
	if err != nil || c[engine.Pendiente] != 2 {
		t.Fatalf("counts %v, %v", c, err)
	}
	if rep, err := db.Verify(ctx, nil); err != nil || !rep.OK {
		t.Fatalf("verify: %v (%+v)", err, rep)
	}
}

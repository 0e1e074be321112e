package kv_test

import (
	"context"
	"testing"

	bolt "go.etcd.io/bbolt"

	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

// A schema-1 file (no per-cliente campaign index) is migrated at open.
func TestOpen_MigratesSchema1(t *testing.T) {
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kvtest.MustCampaign(t, db, "a", 1)
	kvtest.MustCampaign(t, db, "b", 1)
	path := db.Path()
	db.Close()
	// Make it look like schema 1: no index, version 1.
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("app.bycliente")); err != nil {
			return err
		}
		return tx.Bucket([]byte("app.meta")).Put([]byte("schema"), []byte{0, 0, 0, 0, 0, 0, 0, 1})
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err = kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cs, err := db.Campaigns(context.Background(), "c1")
	if err != nil || len(cs) != 2 || cs[0].ID != "a" || cs[1].ID != "b" {
		t.Fatalf("campaigns of c1 after migration: %v %v", cs, err)
	}
	if cs, _ := db.Campaigns(context.Background(), "other"); len(cs) != 0 {
		t.Fatalf("campaigns of another cliente: %v", cs)
	}
}

// A file from a newer leadmaster is refused, not rewritten.
func TestOpen_RefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	db.Close()
	bdb, _ := bolt.Open(path, 0o600, nil)
	bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("app.meta")).Put([]byte("schema"), []byte{0, 0, 0, 0, 0, 0, 0, 99})
	})
	bdb.Close()
	if _, err := kv.Open(dir, kv.Options{}); err == nil {
		t.Fatal("a newer schema was opened")
	}
}

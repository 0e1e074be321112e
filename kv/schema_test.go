package kv_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
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
	db.Close()
	// Make it look like schema 1: no index, version 1.
	db = reopenAsSchema(t, dir, 1, func(tx *bolt.Tx) error {
		return tx.DeleteBucket([]byte("app.bycliente"))
	})
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

// A schema-2 file stores envíos as JSON: they are rewritten in the binary
// form at open, and read back the same; the journal still verifies.
func TestOpen_MigratesSchema2JSONEnvios(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kvtest.MustCampaign(t, db, "a", 50)
	if err := db.Apply(ctx, engine.Transition{Envio: engine.Ref{Campaign: "a", Seq: 3}, From: engine.Pendiente, To: engine.Omitido, Reason: "script"}); err != nil {
		t.Fatal(err)
	}
	before, err := db.Envios(ctx, "a", 0, 100, "")
	if err != nil || len(before) != 50 {
		t.Fatalf("envíos: %d %v", len(before), err)
	}
	path := db.Path()
	db.Close()
	// Make it look like schema 2: JSON envíos, version 2.
	db = reopenAsSchema(t, dir, 2, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("app.envios")).Bucket([]byte("a"))
		for _, e := range before {
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, e.Ref.Seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	after, err := db.Envios(ctx, "a", 0, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("envíos changed by the migration:\n%+v\n%+v", after[:3], before[:3])
	}
	if rep, err := db.Verify(ctx, nil); err != nil || !rep.OK {
		t.Fatalf("verify after migration: %+v %v", rep, err)
	}
	db.Close()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	bdb.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("app.envios")).Bucket([]byte("a")).ForEach(func(k, v []byte) error {
			if bytes.HasPrefix(v, []byte("{")) {
				t.Errorf("envío %x is still JSON", k)
			}
			return nil
		})
	})
}

// reopenAsSchema rewrites the closed data dir's file with edit, marks it as
// schema version, and opens it with kv (which migrates it).
func reopenAsSchema(t *testing.T, dir string, version uint64, edit func(*bolt.Tx) error) *kv.DB {
	t.Helper()
	bdb, err := bolt.Open(filepath.Join(dir, kv.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		if err := edit(tx); err != nil {
			return err
		}
		return tx.Bucket([]byte("app.meta")).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, version))
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

package devicestore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"leadmaster/kv/devicestore"
)

// bbolt-only behaviours: the ctx transaction shared with the app, the
// delete hook, group commit and concurrency.

func newBolt(t *testing.T) (*devicestore.Container, *bbolt.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	db := mustOpenBolt(t, path)
	t.Cleanup(func() { checkBolt(t, db); _ = db.Close() })
	c, err := devicestore.New(db, nil)
	mustOK(t, err)
	return c, db, path
}

func addDevice(t testing.TB, c *devicestore.Container, jid types.JID) *store.Device {
	t.Helper()
	d := c.NewDevice()
	d.ID = &jid
	d.Account = testAccount()
	mustOK(t, c.PutDevice(ctx, d))
	return d
}

var appBucket = []byte("app.queue")

func appValue(t *testing.T, db *bbolt.DB, key string) []byte {
	t.Helper()
	var v []byte
	mustOK(t, db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(appBucket); b != nil {
			v = append([]byte(nil), b.Get([]byte(key))...)
		}
		return nil
	}))
	if len(v) == 0 {
		return nil
	}
	return v
}

func TestDoTxn_StoreCallsAndAppWritesCommitOrRollBackTogether(t *testing.T) {
	c, db, _ := newBolt(t)
	d := addDevice(t, c, dev1)
	for _, fail := range []bool{true, false} {
		err := c.DoTxn(ctx, func(ctx context.Context) error {
			if err := d.Sessions.PutSession(ctx, "1:0", []byte("s")); err != nil {
				return err
			}
			tx := devicestore.TxFromContext(ctx)
			if tx == nil || !tx.Writable() {
				t.Fatal("TxFromContext: want the writable transaction")
			}
			b, err := tx.CreateBucketIfNotExists(appBucket)
			if err != nil {
				return err
			}
			if err := b.Put([]byte("job"), []byte("sent")); err != nil {
				return err
			}
			if fail {
				return errRollback
			}
			return nil
		})
		sess, gerr := d.Sessions.GetSession(ctx, "1:0")
		mustOK(t, gerr)
		if fail {
			if !errors.Is(err, errRollback) || sess != nil || appValue(t, db, "job") != nil {
				t.Fatalf("rollback: err=%v session=%q app=%q, want both rolled back", err, sess, appValue(t, db, "job"))
			}
		} else {
			mustOK(t, err)
			eq(t, "committed together", [2]string{string(sess), string(appValue(t, db, "job"))}, [2]string{"s", "sent"})
		}
	}
}

func TestDoTxn_CtxUsedAfterCommitIsErrTxDone(t *testing.T) {
	c, _, _ := newBolt(t)
	d := addDevice(t, c, dev1)
	var late context.Context
	mustOK(t, c.DoTxn(ctx, func(ctx context.Context) error { late = ctx; return nil }))
	if err := d.Sessions.PutSession(late, "1:0", nil); !errors.Is(err, devicestore.ErrTxDone) {
		t.Fatalf("PutSession with a finished ctx = %v, want ErrTxDone", err)
	}
	if _, err := d.Sessions.GetSession(late, "1:0"); !errors.Is(err, devicestore.ErrTxDone) {
		t.Fatalf("GetSession with a finished ctx = %v, want ErrTxDone", err)
	}
	if devicestore.TxFromContext(late) != nil {
		t.Fatal("TxFromContext after commit: want nil")
	}
	if devicestore.TxFromContext(ctx) != nil {
		t.Fatal("TxFromContext without DoTxn: want nil")
	}
}

// One ctx transaction used from several goroutines at once (whatsmeow's
// *sql.Tx allows it; the bbolt store serialises them). Meaningful under -race.
func TestDoTxn_SharedByGoroutines(t *testing.T) {
	c, _, _ := newBolt(t)
	d := addDevice(t, c, dev1)
	mustOK(t, c.DoTxn(ctx, func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := range 16 {
			wg.Go(func() {
				addr := fmt.Sprintf("%d:0", g)
				if err := d.Sessions.PutSession(ctx, addr, []byte(addr)); err != nil {
					errs <- err
					return
				}
				if _, err := d.Sessions.GetSession(ctx, addr); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			return err
		}
		return nil
	}))
	for g := range 16 {
		addr := fmt.Sprintf("%d:0", g)
		got, err := d.Sessions.GetSession(ctx, addr)
		mustOK(t, err)
		eq(t, addr, string(got), addr)
	}
}

func TestDeleteHook_RunsInTheDeletionTransaction(t *testing.T) {
	c, db, _ := newBolt(t)
	d := addDevice(t, c, dev1)
	mustOK(t, db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(appBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(dev1.String()), []byte("queued"))
	}))
	var calls int
	c.OnDeleteDevice = func(tx *bbolt.Tx, jid types.JID) error {
		calls++
		if tx.Bucket([]byte("wa.device."+jid.String())) != nil {
			t.Error("hook ran before the device bucket was deleted")
		}
		if calls == 1 {
			return errRollback // first attempt fails: the deletion must roll back
		}
		return tx.Bucket(appBucket).Delete([]byte(jid.String()))
	}
	err := d.Delete(ctx)
	if !errors.Is(err, errRollback) {
		t.Fatalf("Delete with failing hook = %v, want errRollback", err)
	}
	if got, _ := c.GetDevice(ctx, dev1); got == nil {
		t.Fatal("a failing hook must roll the deletion back")
	}
	mustOK(t, d.Delete(ctx))
	if got, _ := c.GetDevice(ctx, dev1); got != nil {
		t.Fatal("device still stored")
	}
	eq(t, "app data deleted with the device", appValue(t, db, dev1.String()), []byte(nil))
}

// Group commit: concurrent single writes are coalesced; a failing one (a device deleted meanwhile) is re-run alone and fails alone,
// the others commit, and results computed inside a batched function
// (PutPushName's changed/previous) stay right when it is re-run.
func TestGroupCommit_FailingWriterDoesNotFailOthers(t *testing.T) {
	c, _, _ := newBolt(t)
	live := addDevice(t, c, dev1)
	gone := addDevice(t, c, dev2)
	mustOK(t, c.DeleteDevice(ctx, gone))
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	changed := make([]bool, n)
	for i := range n {
		wg.Go(func() {
			u := types.NewJID(fmt.Sprint(1000+i), types.DefaultUserServer)
			switch i % 4 {
			case 0:
				errs[i] = gone.Sessions.PutSession(ctx, fmt.Sprintf("%d:0", i), []byte("x"))
			case 1:
				changed[i], _, errs[i] = live.Contacts.PutPushName(ctx, u, "name")
			default:
				errs[i] = live.Sessions.PutSession(ctx, fmt.Sprintf("%d:0", i), []byte("x"))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%4 == 0 {
			if !errors.Is(err, devicestore.ErrDeviceNotFound) {
				t.Errorf("write %d to a deleted device = %v, want ErrDeviceNotFound", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("write %d failed: %v", i, err)
		}
		if i%4 == 1 && !changed[i] {
			t.Errorf("PutPushName %d: changed = false, want true", i)
		}
	}
	for i := range n {
		if i%4 < 2 {
			continue
		}
		got, err := live.Sessions.GetSession(ctx, fmt.Sprintf("%d:0", i))
		mustOK(t, err)
		eq(t, "session", string(got), "x")
	}
	if got, _ := c.GetDevice(ctx, dev2); got != nil {
		t.Fatal("a write to a deleted device recreated it")
	}
}

// The store shares the file with the application's "app." buckets and
// refuses a file written by a newer schema.
func TestNew_SharesFileAndChecksSchema(t *testing.T) {
	_, db, _ := newBolt(t)
	mustOK(t, db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"app.clientes", "app.journal"} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}))
	c, err := devicestore.New(db, nil) // second New on the same file: idempotent
	mustOK(t, err)
	addDevice(t, c, dev1)
	all, err := c.GetAllDevices(ctx)
	mustOK(t, err)
	eq(t, "devices next to app buckets", len(all), 1)
	mustOK(t, db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"app.clientes", "app.journal", "wa.meta", "wa.lid2pn", "wa.pn2lid", "wa.device." + dev1.String()} {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %s missing", name)
			}
		}
		return tx.Bucket([]byte("wa.meta")).Put([]byte("schema"), []byte{0, 0, 0, 99})
	}))
	if _, err := devicestore.New(db, nil); !errors.Is(err, devicestore.ErrNewerSchema) {
		t.Fatalf("New on a newer schema = %v, want ErrNewerSchema", err)
	}
}

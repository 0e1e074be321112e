package devicestore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	_ "modernc.org/sqlite" // pure-Go SQLite driver "sqlite", test-only

	"leadmaster/kv/devicestore"
)

// container is what sqlstore.Container and devicestore.Container have in
// common: the container operations the app and whatsmeow use.
type container interface {
	NewDevice() *store.Device
	PutDevice(ctx context.Context, d *store.Device) error
	GetDevice(ctx context.Context, jid types.JID) (*store.Device, error)
	GetAllDevices(ctx context.Context) ([]*store.Device, error)
	GetFirstDevice(ctx context.Context) (*store.Device, error)
	DeleteDevice(ctx context.Context, d *store.Device) error
}

var (
	_ container = (*sqlstore.Container)(nil)
	_ container = (*devicestore.Container)(nil)
)

// backend opens one kind of store in a directory; opening again on the same
// directory is a restart (fresh container, in-memory caches gone).
type backend struct {
	name string
	bolt bool
	open func(tb testing.TB, dir string) *opened
}

type opened struct {
	c     container
	close func()
	// putEventAt stores a buffered event as if inserted at insert.
	putEventAt func(tb testing.TB, d *store.Device, hash [32]byte, pt []byte, insert time.Time)
	// addOutgoingAt keeps an outgoing message as if added at insert
	// (sqlstore stamps time.Now and is rewritten by SQL afterwards; the
	// bbolt store is given insert as its clock).
	addOutgoingAt func(tb testing.TB, d *store.Device, chat types.JID, id types.MessageID, pt []byte, insert time.Time)
	// bolt is set for the bbolt backend.
	bolt *devicestore.Container
	db   *bbolt.DB
	// sql is the sqlstore backend's database handle.
	sql *sql.DB
}

var backends = []backend{
	{name: "sqlstore", open: openSQL},
	{name: "bbolt", bolt: true, open: openBolt},
}

func sqlDB(tb testing.TB, dir string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "wa.db")+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func openSQL(tb testing.TB, dir string) *opened {
	tb.Helper()
	ctx := context.Background()
	db := sqlDB(tb, dir)
	c := sqlstore.NewWithDB(db, "sqlite", nil)
	if err := c.Upgrade(ctx); err != nil {
		tb.Fatalf("sqlstore upgrade: %v", err)
	}
	return &opened{
		c:     c,
		sql:   db,
		close: func() { _ = c.Close() },
		putEventAt: func(tb testing.TB, d *store.Device, hash [32]byte, pt []byte, insert time.Time) {
			tb.Helper()
			mustOK(tb, d.EventBuffer.PutBufferedEvent(ctx, hash, pt, insert))
			_, err := db.Exec(`UPDATE whatsmeow_event_buffer SET insert_timestamp=? WHERE our_jid=? AND ciphertext_hash=?`,
				insert.UnixMilli(), d.ID.String(), hash[:])
			mustOK(tb, err)
		},
		addOutgoingAt: func(tb testing.TB, d *store.Device, chat types.JID, id types.MessageID, pt []byte, insert time.Time) {
			tb.Helper()
			mustOK(tb, d.EventBuffer.AddOutgoingEvent(ctx, chat, id, "wa", pt))
			res, err := db.Exec(`UPDATE whatsmeow_retry_buffer SET timestamp=? WHERE our_jid=? AND chat_jid=? AND message_id=?`,
				insert.UnixMilli(), d.ID.String(), chat.String(), id)
			mustOK(tb, err)
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				tb.Fatalf("retry buffer row for %s %s: %d rows, %v", chat, id, n, err)
			}
		},
	}
}

func openBolt(tb testing.TB, dir string) *opened {
	tb.Helper()
	db := mustOpenBolt(tb, filepath.Join(dir, "app.db"))
	c, err := devicestore.New(db, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &opened{
		c:    c,
		bolt: c,
		db:   db,
		close: func() {
			checkBolt(tb, db)
			_ = db.Close()
		},
		putEventAt: func(tb testing.TB, d *store.Device, hash [32]byte, pt []byte, insert time.Time) {
			tb.Helper()
			c.Now = func() time.Time { return insert }
			defer func() { c.Now = time.Now }()
			mustOK(tb, d.EventBuffer.PutBufferedEvent(context.Background(), hash, pt, insert))
		},
		addOutgoingAt: func(tb testing.TB, d *store.Device, chat types.JID, id types.MessageID, pt []byte, insert time.Time) {
			tb.Helper()
			c.Now = func() time.Time { return insert }
			defer func() { c.Now = time.Now }()
			mustOK(tb, d.EventBuffer.AddOutgoingEvent(context.Background(), chat, id, "wa", pt))
		},
	}
}

func mustOpenBolt(tb testing.TB, path string) *bbolt.DB {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	return db
}

// checkBolt runs bbolt's consistency check, as bbolt's own tests do on teardown.
func checkBolt(tb testing.TB, db *bbolt.DB) {
	tb.Helper()
	err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		tb.Errorf("bbolt check: %v", err)
	}
}

// env is one conformance case's store: reopen restarts it on the same files.
type env struct {
	t   *testing.T
	b   backend
	dir string
	*opened
}

func newEnv(t *testing.T, b backend) *env {
	e := &env{t: t, b: b, dir: t.TempDir()}
	e.opened = b.open(t, e.dir)
	t.Cleanup(func() { e.close() })
	return e
}

func (e *env) reopen() {
	e.t.Helper()
	e.close()
	e.opened = e.b.open(e.t, e.dir)
}

// add stores a new device with jid and returns it as loaded from the store.
func (e *env) add(jid types.JID) *store.Device {
	e.t.Helper()
	d := e.c.NewDevice()
	d.ID = &jid
	d.Account = testAccount()
	mustOK(e.t, e.c.PutDevice(ctx, d))
	return e.get(jid)
}

// get loads a stored device, failing when it is missing.
func (e *env) get(jid types.JID) *store.Device {
	e.t.Helper()
	d, err := e.c.GetDevice(ctx, jid)
	mustOK(e.t, err)
	if d == nil {
		e.t.Fatalf("device %s missing", jid)
	}
	return d
}

var ctx = context.Background()

var (
	dev1 = types.NewADJID("111", 0, 7)
	dev2 = types.NewADJID("112", 0, 3)
)

func testAccount() *waAdv.ADVSignedDeviceIdentity {
	return &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details"),
		AccountSignature:    fill(64, 1),
		AccountSignatureKey: fill(32, 2),
		DeviceSignature:     fill(64, 3),
	}
}

func fill(n int, b byte) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b + byte(i)
	}
	return out
}

func mustOK(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func mustErr(tb testing.TB, err error, what string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("%s: want an error, got nil", what)
	}
}

func eq[T any](tb testing.TB, what string, got, want T) {
	tb.Helper()
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("%s = %#v, want %#v", what, got, want)
	}
}

func jid(s string) types.JID {
	j, err := types.ParseJID(s)
	if err != nil {
		panic(err)
	}
	return j
}

package devicestore

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// txid is the id of the file's last committed write transaction: the
// difference of two is the number of commits in between.
func txid(t *testing.T, db *bbolt.DB) int {
	t.Helper()
	var id int
	if err := db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func newSendDevices(t *testing.T, n int) (*Container, []*store.Device) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "send.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	c, err := New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	devs := make([]*store.Device, n)
	for i := range devs {
		d := seedDevice()
		id := types.NewADJID(fmt.Sprint(200+i), 0, 1)
		d.ID = &id
		if err := c.PutDevice(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		devs[i] = d
	}
	return c, devs
}

// send is what whatsmeow's addRecentMessage does with UseRetryMessageStore
// on every send: keep the message, then purge (its lastRetryStoreClear is
// never set, so the purge runs every time).
func send(d *store.Device, i int) error {
	if err := d.EventBuffer.AddOutgoingEvent(context.Background(), types.NewJID(fmt.Sprint(9000+i), types.HiddenUserServer), types.MessageID(fmt.Sprint("3EB0", i)), "wa", []byte("message")); err != nil {
		return err
	}
	return d.EventBuffer.DeleteOldOutgoingEvents(context.Background())
}

// A purge with nothing older than 7 days writes nothing: it is on every
// send's path.
func TestOutgoing_PurgeWithNothingDueDoesNotCommit(t *testing.T) {
	c, devs := newSendDevices(t, 1)
	if err := send(devs[0], 0); err != nil {
		t.Fatal(err)
	}
	before := txid(t, c.db)
	for range 5 {
		if err := devs[0].EventBuffer.DeleteOldOutgoingEvents(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := txid(t, c.db) - before; got != 0 {
		t.Fatalf("5 purges with nothing due committed %d transactions, want 0", got)
	}
	// Something due: one purge commits once and removes it.
	now := time.Now()
	c.Now = func() time.Time { return now.Add(8 * 24 * time.Hour) }
	before = txid(t, c.db)
	if err := devs[0].EventBuffer.DeleteOldOutgoingEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := txid(t, c.db) - before; got != 1 {
		t.Fatalf("a due purge committed %d transactions, want 1", got)
	}
	if _, _, err := devs[0].EventBuffer.GetOutgoingEvent(context.Background(), types.NewJID("9000", types.HiddenUserServer), types.EmptyJID, "3EB00"); err == nil {
		t.Fatal("the due message was not purged")
	}
}

// Sends of many devices at once (each client's own sends are serialised by
// whatsmeow) share group commits: 32 sends queued behind a commit in flight
// are one transaction.
func TestOutgoing_ConcurrentSendsShareOneCommit(t *testing.T) {
	const n = 32
	c, devs := newSendDevices(t, n)
	// Hold the writer lock so that the first send leads a batch that
	// waits, and the other 31 queue behind it.
	release, holding := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = c.db.Update(func(*bbolt.Tx) error { close(holding); <-release; return nil })
	})
	<-holding
	before := txid(t, c.db)
	errs := make([]error, n)
	wg.Go(func() { errs[0] = send(devs[0], 0) })
	for { // the first send leads, blocked on the writer lock
		c.gc.mu.Lock()
		led := c.gc.busy && len(c.gc.queue) == 0
		c.gc.mu.Unlock()
		if led {
			break
		}
		runtime.Gosched()
	}
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = send(devs[i], i) })
	}
	for {
		c.gc.mu.Lock()
		queued := len(c.gc.queue)
		c.gc.mu.Unlock()
		if queued == n-1 {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	// The holder's, the first send's, one for the 31 queued sends; the
	// purges (nothing due) commit nothing.
	if got := txid(t, c.db) - before; got != 3 {
		t.Fatalf("%d sends committed %d transactions (the lock holder's included), want 3", n, got)
	}
	for i, d := range devs {
		if _, _, err := d.EventBuffer.GetOutgoingEvent(context.Background(), types.NewJID(fmt.Sprint(9000+i), types.HiddenUserServer), types.EmptyJID, types.MessageID(fmt.Sprint("3EB0", i))); err != nil {
			t.Fatalf("send %d not kept: %v", i, err)
		}
	}
}

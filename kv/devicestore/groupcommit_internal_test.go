package devicestore

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
)

func newCommitter(t *testing.T) *committer {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "gc.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	return &committer{db: db, maxBatch: maxBatch}
}

// queueBehindLeader makes one leader whose write blocks until n more calls
// have queued behind it, then lets it commit. It returns every call's error
// (leader first) and the number of transactions that committed.
func queueBehindLeader(t *testing.T, g *committer, fns []func(*bbolt.Tx) error) ([]error, int) {
	t.Helper()
	var mu sync.Mutex
	txs := map[*bbolt.Tx]bool{}
	count := func(tx *bbolt.Tx) {
		mu.Lock()
		defer mu.Unlock()
		if !txs[tx] {
			txs[tx] = true
			committed := tx
			tx.OnCommit(func() { mu.Lock(); txs[committed] = true; mu.Unlock() })
		}
	}
	commits := 0
	release := make(chan struct{})
	errs := make([]error, len(fns)+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		errs[0] = g.do(func(tx *bbolt.Tx) error {
			count(tx)
			<-release
			return tx.Bucket([]byte("b")).Put([]byte("leader"), []byte("x"))
		})
	})
	for { // wait until the leader is inside its transaction
		g.mu.Lock()
		busy := g.busy && len(g.queue) == 0
		g.mu.Unlock()
		if busy {
			break
		}
		runtime.Gosched()
	}
	for i, fn := range fns {
		wg.Go(func() {
			errs[i+1] = g.do(func(tx *bbolt.Tx) error { count(tx); return fn(tx) })
		})
	}
	for {
		g.mu.Lock()
		n := len(g.queue)
		g.mu.Unlock()
		if n == len(fns) {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	mu.Lock()
	commits = len(txs)
	mu.Unlock()
	return errs, commits
}

func put(k string) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(k), []byte("v")) }
}

func get(t *testing.T, g *committer, k string) bool {
	var ok bool
	if err := g.db.View(func(tx *bbolt.Tx) error { ok = tx.Bucket([]byte("b")).Get([]byte(k)) != nil; return nil }); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestGroupCommit_QueuedWritesShareOneTransaction(t *testing.T) {
	g := newCommitter(t)
	fns := make([]func(*bbolt.Tx) error, 99)
	for i := range fns {
		fns[i] = put(fmt.Sprint("k", i))
	}
	errs, txs := queueBehindLeader(t, g, fns)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if txs != 2 {
		t.Fatalf("100 writes used %d transactions, want 2 (the leader's, then one for the 99 queued behind it)", txs)
	}
	for i := range fns {
		if !get(t, g, fmt.Sprint("k", i)) {
			t.Fatalf("k%d not stored", i)
		}
	}
	if g.busy || len(g.queue) != 0 {
		t.Fatal("committer not idle afterwards")
	}
}

func TestGroupCommit_FailingAndPanickingWritesFailAlone(t *testing.T) {
	g := newCommitter(t)
	errBad := errors.New("bad write")
	fns := []func(*bbolt.Tx) error{
		put("a"),
		func(tx *bbolt.Tx) error { _ = put("bad")(tx); return errBad },
		put("b"),
		func(tx *bbolt.Tx) error { panic("boom") },
		put("c"),
	}
	errs, _ := queueBehindLeader(t, g, fns)
	if errs[0] != nil || errs[1] != nil || errs[3] != nil || errs[5] != nil {
		t.Fatalf("good writes failed: %v", errs)
	}
	if !errors.Is(errs[2], errBad) {
		t.Fatalf("failing write = %v, want errBad", errs[2])
	}
	if errs[4] == nil {
		t.Fatal("panicking write returned nil")
	}
	for k, want := range map[string]bool{"leader": true, "a": true, "b": true, "c": true, "bad": false} {
		if get(t, g, k) != want {
			t.Errorf("%s stored = %v, want %v", k, !want, want)
		}
	}
}

func TestGroupCommit_LoneWriterCommitsAtOnce(t *testing.T) {
	g := newCommitter(t)
	for i := range 3 {
		if err := g.do(put(fmt.Sprint("k", i))); err != nil {
			t.Fatal(err)
		}
		if g.busy {
			t.Fatal("a lone write left the committer busy")
		}
	}
}

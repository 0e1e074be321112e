package devicestore

import (
	"fmt"
	"sync"

	"go.etcd.io/bbolt"
)

// committer is group commit without a timer. The first writer to arrive
// commits at once (a lone writer pays no batching delay, unlike DB.Batch's
// MaxBatchDelay); writers that arrive while that commit is being fsync'd
// queue up, and when it finishes the first of them commits the whole queue
// in one transaction, and so on. Every caller returns only after the
// transaction holding its write has committed (or failed), so durability is
// that of a plain Update.
//
// As with DB.Batch, a function may run more than once: when one fails, the
// transaction is rolled back, the failing function is run again alone (its
// error goes to its caller only) and the others are retried together.
type committer struct {
	db       *bbolt.DB
	maxBatch int

	mu    sync.Mutex
	queue []*gcCall
	busy  bool // a leader is committing; the next one is queue[0]
}

type gcCall struct {
	fn   func(*bbolt.Tx) error
	err  error
	done chan bool // true: "you lead the next batch"; false: err is set
}

func (g *committer) do(fn func(*bbolt.Tx) error) error {
	c := &gcCall{fn: fn, done: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.busy {
		g.mu.Unlock()
		if lead := <-c.done; !lead {
			return c.err
		}
		g.mu.Lock()
	} else {
		g.busy = true
	}
	// Leader, holding g.mu; c is queue[0].
	n := min(len(g.queue), g.maxBatch)
	batch := g.queue[:n:n]
	g.queue = append([]*gcCall(nil), g.queue[n:]...)
	g.mu.Unlock()

	g.run(batch)
	for _, o := range batch[1:] {
		o.done <- false
	}

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- true
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return c.err
}

// run commits batch in one transaction and sets every call's err.
func (g *committer) run(batch []*gcCall) {
	failed := -1 // the call that returned an error or panicked
	err := g.update(func(tx *bbolt.Tx) error {
		for i, c := range batch {
			failed = i
			if err := c.fn(tx); err != nil {
				return err
			}
		}
		failed = -1
		return nil
	})
	switch {
	case err == nil:
		for _, c := range batch {
			c.err = nil
		}
	case failed < 0: // the commit itself failed: nothing of the batch is stored
		for _, c := range batch {
			c.err = err
		}
	default:
		bad := batch[failed]
		bad.err = g.update(bad.fn)
		rest := append(append([]*gcCall(nil), batch[:failed]...), batch[failed+1:]...)
		if len(rest) > 0 {
			g.run(rest)
		}
	}
}

// update is db.Update that turns a panic in fn into an error, so a leader
// never leaves the callers it committed for waiting.
func (g *committer) update(fn func(*bbolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("devicestore: panic in write: %v", r)
		}
	}()
	return g.db.Update(fn)
}

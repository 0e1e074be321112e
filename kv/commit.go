package kv

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("kv: database closed")

// writeFunc is one caller's write. It runs inside a transaction shared with
// other callers, so it must validate everything before it writes anything:
// an error returned before the first write refuses this caller only. A
// failure after writes have begun must be wrapped in abortError, which rolls
// back the shared transaction and reruns each caller alone.
type writeFunc func(w *wtx) error

type writeReq struct {
	fn   writeFunc
	done chan error
}

// abortError marks a failure after a writeFunc started writing.
type abortError struct{ err error }

func (e *abortError) Error() string { return e.err.Error() }
func (e *abortError) Unwrap() error { return e.err }

func abort(err error) error {
	if err == nil {
		return nil
	}
	return &abortError{err}
}

// wtx is a write transaction as the writeFuncs see it.
type wtx struct {
	tx   *bolt.Tx
	db   *DB
	now  time.Time
	head [sha256.Size]byte // journal head as of this transaction
}

// write applies fn in a committed, fsynced transaction. With group commit,
// fn shares the transaction with concurrent callers; write returns after
// the fsync. Once enqueued, the write is waited for even if ctx ends, so a
// caller never hears "failed" about a write that was committed.
func (db *DB) write(ctx context.Context, fn writeFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.opts.ReadOnly {
		return ErrReadOnly
	}
	if db.opts.Serial {
		db.serial.Lock()
		defer db.serial.Unlock()
		db.mu.RLock()
		closed := db.closed
		db.mu.RUnlock()
		if closed {
			return ErrClosed
		}
		errs := db.commit([]*writeReq{{fn: fn}})
		return errs[0]
	}
	req := &writeReq{fn: fn, done: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	select {
	case db.reqs <- req:
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	db.mu.RUnlock()
	return <-req.done
}

// runWriter is the group committer: it takes every request waiting, runs
// them in one transaction, and answers each after the commit.
func (db *DB) runWriter() {
	defer close(db.done)
	batch := make([]*writeReq, 0, db.opts.MaxBatch)
	for req := range db.reqs {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < db.opts.MaxBatch {
			select {
			case r, ok := <-db.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		for i, err := range db.commit(batch) {
			batch[i].done <- err
		}
	}
}

// commit runs a batch in one transaction. If a request aborts, the
// transaction is rolled back and every request reruns in its own.
func (db *DB) commit(batch []*writeReq) []error {
	errs := make([]error, len(batch))
	var w *wtx
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		w = &wtx{tx: tx, db: db, now: db.opts.Now().UTC(), head: db.head}
		for i, r := range batch {
			errs[i] = r.fn(w)
			var a *abortError
			if errors.As(errs[i], &a) {
				return a
			}
		}
		return nil
	})
	var a *abortError
	if errors.As(err, &a) && len(batch) > 1 {
		for i, r := range batch {
			errs[i] = db.commit([]*writeReq{r})[0]
		}
		return errs
	}
	if err != nil {
		for i := range errs {
			if errs[i] == nil || errors.As(errs[i], &a) {
				errs[i] = fmt.Errorf("commit: %w", err)
			}
		}
		return errs
	}
	db.head = w.head
	return errs
}

func decodeU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

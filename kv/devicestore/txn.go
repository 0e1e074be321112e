package devicestore

import (
	"context"
	"fmt"
	"sync"

	"go.etcd.io/bbolt"
)

// txnCtxKey is the context key under which DoTxn stores its transaction.
type txnCtxKey struct{}

// txState is one DoTxn transaction shared by every store call made with its
// ctx. mu serialises those calls (a *bbolt.Tx is not goroutine-safe); done is
// set when DoTxn returns, so late users get ErrTxDone instead of touching a
// closed transaction.
type txState struct {
	db   *bbolt.DB
	mu   sync.Mutex
	tx   *bbolt.Tx
	done bool
}

func (st *txState) run(fn func(*bbolt.Tx) error) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return ErrTxDone
	}
	return fn(st.tx)
}

// TxFromContext returns the bbolt write transaction that DoTxn (or
// DoDecryptionTxn) put in ctx, or nil when ctx carries none or it has
// finished. Use it only on the goroutine running DoTxn's fn, and copy any
// value read from it before fn returns.
func TxFromContext(ctx context.Context) *bbolt.Tx {
	st, _ := ctx.Value(txnCtxKey{}).(*txState)
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return nil
	}
	return st.tx
}

// txFrom returns the ctx transaction when it belongs to this container's file.
func (c *Container) txFrom(ctx context.Context) *txState {
	st, _ := ctx.Value(txnCtxKey{}).(*txState)
	if st == nil || st.db != c.db {
		return nil
	}
	return st
}

// DoTxn runs fn in one bbolt write transaction carried by the ctx given to
// fn: store calls made with that ctx, and application writes made through
// TxFromContext, commit together when fn returns nil and roll back together
// when it returns an error. When ctx already carries a transaction of this
// file, fn simply joins it (no savepoint, as in sqlstore).
func (c *Container) DoTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	if st := c.txFrom(ctx); st != nil {
		st.mu.Lock()
		done := st.done
		st.mu.Unlock()
		if done {
			return ErrTxDone
		}
		return fn(ctx)
	}
	return c.db.Update(func(tx *bbolt.Tx) error {
		st := &txState{db: c.db, tx: tx}
		defer func() {
			st.mu.Lock()
			st.done = true
			st.mu.Unlock()
		}()
		return fn(context.WithValue(ctx, txnCtxKey{}, st))
	})
}

// view runs fn read-only, inside the ctx transaction when there is one.
func (c *Container) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if st := c.txFrom(ctx); st != nil {
		return st.run(fn)
	}
	return c.db.View(fn)
}

// update runs fn in the ctx transaction or in its own Update. Use it for
// writes that must not share a rollback with other callers or may not run
// twice.
func (c *Container) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if st := c.txFrom(ctx); st != nil {
		return st.run(fn)
	}
	return c.db.Update(fn)
}

// write is update for idempotent single writes: outside a ctx transaction it
// goes through the group committer. fn may run more than once and must
// compute its results inside itself.
func (c *Container) write(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if st := c.txFrom(ctx); st != nil {
		return st.run(fn)
	}
	if c.NoBatch {
		return c.db.Update(fn)
	}
	return c.gc.do(fn)
}

// sub returns a sub-bucket of the device for reading; nil if the device is absent.
func sub(tx *bbolt.Tx, dev []byte, name []byte) *bbolt.Bucket {
	b := tx.Bucket(dev)
	if b == nil {
		return nil
	}
	return b.Bucket(name)
}

// subW returns a sub-bucket of the device for writing, or ErrDeviceNotFound.
func subW(tx *bbolt.Tx, dev []byte, name []byte) (*bbolt.Bucket, error) {
	b := tx.Bucket(dev)
	if b == nil {
		return nil, fmt.Errorf("%s: %w", dev[len(devicePrefix):], ErrDeviceNotFound)
	}
	s := b.Bucket(name)
	if s == nil {
		return nil, fmt.Errorf("%s: missing bucket %s: %w", dev[len(devicePrefix):], name, ErrCorrupt)
	}
	return s, nil
}

// prefixKeys returns copies of the keys of b that start with prefix.
func prefixKeys(b *bbolt.Bucket, prefix []byte) [][]byte {
	var out [][]byte
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = cur.Next() {
		out = append(out, append([]byte(nil), k...))
	}
	return out
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

func deleteKeys(b *bbolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

package kv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// appendEntry writes one journal record inside w's transaction. The stored
// value is sha256(payload) followed by payload, the JSON of the entry; the
// payload carries the hash of the previous payload, forming the chain.
func (w *wtx) appendEntry(e engine.Entry) error {
	b := w.tx.Bucket(bucketJournal)
	b.FillPercent = 1 // append-only: keep pages full
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("journal sequence: %w", err)
	}
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = w.now
	}
	e.Prev = hex.EncodeToString(w.head[:])
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal encode: %w", err)
	}
	sum := sha256.Sum256(payload)
	v := make([]byte, 0, len(sum)+len(payload))
	v = append(append(v, sum[:]...), payload...)
	if err := b.Put(u64(seq), v); err != nil {
		return fmt.Errorf("journal put: %w", err)
	}
	w.head = sum
	return nil
}

// JournalPage returns up to limit entries with Seq > after, in order.
func (db *DB) JournalPage(ctx context.Context, after uint64, limit int) ([]engine.Entry, error) {
	var out []engine.Entry
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJournal).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("journal %d: %w", decodeU64(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// JournalTail returns the last n entries, oldest first.
func (db *DB) JournalTail(ctx context.Context, n int) ([]engine.Entry, error) {
	var last uint64
	if err := db.view(ctx, func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketJournal).Cursor().Last()
		last = decodeU64(k)
		return nil
	}); err != nil {
		return nil, err
	}
	after := uint64(0)
	if last > uint64(n) {
		after = last - uint64(n)
	}
	return db.JournalPage(ctx, after, n)
}

// rawRecord is a journal value split into its parts, valid only inside the
// read transaction.
type rawRecord struct {
	sum     []byte
	payload []byte
}

func splitRecord(v []byte) (rawRecord, error) {
	if len(v) <= sha256.Size {
		return rawRecord{}, fmt.Errorf("record of %d bytes is too short", len(v))
	}
	return rawRecord{sum: v[:sha256.Size], payload: v[sha256.Size:]}, nil
}

func (r rawRecord) intact() bool {
	sum := sha256.Sum256(r.payload)
	return bytes.Equal(sum[:], r.sum)
}

func decodeEntry(v []byte) (engine.Entry, error) {
	r, err := splitRecord(v)
	if err != nil {
		return engine.Entry{}, err
	}
	var e engine.Entry
	if err := json.Unmarshal(r.payload, &e); err != nil {
		return engine.Entry{}, fmt.Errorf("decode: %w", err)
	}
	return e, nil
}

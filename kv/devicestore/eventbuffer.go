package devicestore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
)

// bufferRetention is how long WhatsApp's servers buffer events, so how long
// a decrypted event's hash must be remembered.
const bufferRetention = 14 * 24 * time.Hour

// GetBufferedEvent returns the buffered event with this ciphertext hash, or
// nil. A nil Plaintext means the event was already handled.
func (s *Store) GetBufferedEvent(ctx context.Context, ciphertextHash [32]byte) (*store.BufferedEvent, error) {
	var ev *store.BufferedEvent
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subEventBuffer)
		if b == nil {
			return nil
		}
		v := b.Get(ciphertextHash[:])
		if v == nil {
			return nil
		}
		r, err := decodeEvent(v)
		if err != nil {
			return err
		}
		ev = &store.BufferedEvent{Plaintext: r.plaintext, InsertTime: time.UnixMilli(r.insertMS), ServerTime: time.Unix(r.serverS, 0)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get buffered event %x: %w", ciphertextHash, err)
	}
	return ev, nil
}

// PutBufferedEvent stores a decrypted event; an existing hash is an error.
func (s *Store) PutBufferedEvent(ctx context.Context, ciphertextHash [32]byte, plaintext []byte, serverTimestamp time.Time) error {
	r := eventRecord{insertMS: s.c.Now().UnixMilli(), serverS: serverTimestamp.Unix(), plaintext: plaintext}
	err := s.c.write(ctx, func(tx *bbolt.Tx) error { return s.putEvent(tx, ciphertextHash[:], r) })
	if err != nil {
		return fmt.Errorf("put buffered event %x: %w", ciphertextHash, err)
	}
	return nil
}

func (s *Store) putEvent(tx *bbolt.Tx, hash []byte, r eventRecord) error {
	b, err := subW(tx, s.dev, subEventBuffer)
	if err != nil {
		return err
	}
	if b.Get(hash) != nil {
		return ErrDuplicate
	}
	if err := b.Put(hash, encodeEvent(r)); err != nil {
		return err
	}
	return tx.Bucket(s.dev).Bucket(subEventByTime).Put(eventTimeKey(r.insertMS, hash), []byte{})
}

// DoDecryptionTxn runs fn in one write transaction carried by its ctx (see
// Container.DoTxn); it is never batched with other callers.
func (s *Store) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	return s.c.DoTxn(ctx, fn)
}

// ClearBufferedEventPlaintext marks a buffered event as handled by dropping
// its plaintext; a missing hash is a no-op.
func (s *Store) ClearBufferedEventPlaintext(ctx context.Context, ciphertextHash [32]byte) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subEventBuffer)
		if err != nil {
			return err
		}
		v := b.Get(ciphertextHash[:])
		if v == nil {
			return nil
		}
		r, err := decodeEvent(v)
		if err != nil {
			return err
		}
		r.plaintext = nil
		return b.Put(ciphertextHash[:], encodeEvent(r))
	})
	if err != nil {
		return fmt.Errorf("clear buffered event %x: %w", ciphertextHash, err)
	}
	return nil
}

// DeleteOldBufferedHashes deletes buffered events inserted more than 14 days
// ago, for every device in the file (as sqlstore's query does).
func (s *Store) DeleteOldBufferedHashes(ctx context.Context) error {
	cutoff := eventTimeKey(s.c.Now().Add(-bufferRetention).UnixMilli(), nil)
	err := s.c.update(ctx, func(tx *bbolt.Tx) error {
		cur := tx.Cursor()
		for k, v := cur.Seek(devicePrefix); k != nil && bytes.HasPrefix(k, devicePrefix); k, v = cur.Next() {
			if v != nil {
				continue
			}
			dev := tx.Bucket(k)
			evs, idx := dev.Bucket(subEventBuffer), dev.Bucket(subEventByTime)
			if evs == nil || idx == nil {
				continue
			}
			var old [][]byte
			ic := idx.Cursor()
			for ik, _ := ic.First(); ik != nil && bytes.Compare(ik[:min(8, len(ik))], cutoff) < 0; ik, _ = ic.Next() {
				old = append(old, append([]byte(nil), ik...))
			}
			for _, ik := range old {
				if len(ik) > 8 {
					if err := evs.Delete(ik[8:]); err != nil {
						return err
					}
				}
				if err := idx.Delete(ik); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete old buffered hashes: %w", err)
	}
	return nil
}

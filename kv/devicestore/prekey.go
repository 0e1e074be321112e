package devicestore

import (
	"context"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/util/keys"
)

const maxPreKeyID = 1<<24 - 1 // sqlstore: CHECK (key_id < 16777216)

// GetOrGenPreKeys returns count prekeys in ascending ID order: the
// not-yet-uploaded ones first, then new ones with IDs from MAX(id)+1, stored
// as not uploaded. Existing and new keys are read and written in one
// transaction (never batched).
func (s *Store) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	s.preKeyLock.Lock()
	defer s.preKeyLock.Unlock()
	var out []*keys.PreKey
	err := s.c.update(ctx, func(tx *bbolt.Tx) error {
		out = make([]*keys.PreKey, 0, count)
		b, err := subW(tx, s.dev, subPreKeys)
		if err != nil {
			return err
		}
		cur := b.Cursor()
		for k, v := cur.First(); k != nil && uint32(len(out)) < count; k, v = cur.Next() {
			r, err := decodePreKey(v)
			if err != nil {
				return err
			}
			if !r.uploaded && len(k) == 4 {
				out = append(out, &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey(r.priv), KeyID: binary.BigEndian.Uint32(k)})
			}
		}
		if uint32(len(out)) == count {
			return nil
		}
		next, err := nextPreKeyID(b)
		if err != nil {
			return err
		}
		for uint32(len(out)) < count {
			key, err := putNewPreKey(b, next, false)
			if err != nil {
				return err
			}
			out = append(out, key)
			next++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get or gen %d prekeys: %w", count, err)
	}
	return out, nil
}

// GenOnePreKey generates and stores one prekey with ID MAX(id)+1, marked as
// uploaded (it is sent in a retry receipt).
func (s *Store) GenOnePreKey(ctx context.Context) (*keys.PreKey, error) {
	s.preKeyLock.Lock()
	defer s.preKeyLock.Unlock()
	var key *keys.PreKey
	err := s.c.update(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subPreKeys)
		if err != nil {
			return err
		}
		next, err := nextPreKeyID(b)
		if err != nil {
			return err
		}
		key, err = putNewPreKey(b, next, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gen one prekey: %w", err)
	}
	return key, nil
}

// nextPreKeyID is MAX(key_id)+1, or 1 when there are none: keys are
// big-endian, so the last key is the maximum.
func nextPreKeyID(b *bbolt.Bucket) (uint32, error) {
	k, _ := b.Cursor().Last()
	if k == nil {
		return 1, nil
	}
	if len(k) != 4 {
		return 0, fmt.Errorf("prekey id: %w", ErrCorrupt)
	}
	return binary.BigEndian.Uint32(k) + 1, nil
}

func putNewPreKey(b *bbolt.Bucket, id uint32, uploaded bool) (*keys.PreKey, error) {
	if id > maxPreKeyID {
		return nil, fmt.Errorf("prekey id %d: %w", id, ErrOutOfRange)
	}
	key := keys.NewPreKey(id)
	return key, b.Put(u32Key(id), encodePreKey(preKeyRecord{uploaded: uploaded, priv: *key.Priv}))
}

// GetPreKey returns the prekey with id, or nil when none is stored.
func (s *Store) GetPreKey(ctx context.Context, id uint32) (*keys.PreKey, error) {
	var key *keys.PreKey
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subPreKeys)
		if b == nil {
			return nil
		}
		v := b.Get(u32Key(id))
		if v == nil {
			return nil
		}
		r, err := decodePreKey(v)
		if err != nil {
			return err
		}
		key = &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey(r.priv), KeyID: id}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get prekey %d: %w", id, err)
	}
	return key, nil
}

// RemovePreKey deletes the prekey with id; a missing one is not an error.
func (s *Store) RemovePreKey(ctx context.Context, id uint32) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subPreKeys)
		if err != nil {
			return err
		}
		return b.Delete(u32Key(id))
	})
	if err != nil {
		return fmt.Errorf("remove prekey %d: %w", id, err)
	}
	return nil
}

// MarkPreKeysAsUploaded marks every prekey with ID <= upToID as uploaded.
func (s *Store) MarkPreKeysAsUploaded(ctx context.Context, upToID uint32) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subPreKeys)
		if err != nil {
			return err
		}
		var todo [][2][]byte
		cur := b.Cursor()
		for k, v := cur.First(); k != nil && len(k) == 4 && binary.BigEndian.Uint32(k) <= upToID; k, v = cur.Next() {
			r, err := decodePreKey(v)
			if err != nil {
				return err
			}
			if !r.uploaded {
				r.uploaded = true
				todo = append(todo, [2][]byte{append([]byte(nil), k...), encodePreKey(r)})
			}
		}
		for _, kv := range todo {
			if err := b.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark prekeys uploaded up to %d: %w", upToID, err)
	}
	return nil
}

// UploadedPreKeyCount counts the prekeys marked as uploaded.
func (s *Store) UploadedPreKeyCount(ctx context.Context) (int, error) {
	n := 0
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subPreKeys)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			if len(v) == 34 && v[1] == 1 {
				n++
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("uploaded prekey count: %w", err)
	}
	return n, nil
}

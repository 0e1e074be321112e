package devicestore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
)

// PutAppStateSyncKey inserts a sync key; an existing one is replaced only by
// a strictly newer timestamp. Data and Fingerprint must not be nil.
func (s *Store) PutAppStateSyncKey(ctx context.Context, id []byte, key store.AppStateSyncKey) error {
	if key.Data == nil || key.Fingerprint == nil {
		return fmt.Errorf("put app state sync key %x: %w", id, ErrNotNull)
	}
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subSyncKeys)
		if err != nil {
			return err
		}
		k := syncKeyKey(id)
		if v := b.Get(k); v != nil {
			old, err := decodeSyncKey(v)
			if err == nil && key.Timestamp <= old.Timestamp {
				return nil
			}
		}
		return b.Put(k, encodeSyncKey(key))
	})
	if err != nil {
		return fmt.Errorf("put app state sync key %x: %w", id, err)
	}
	return nil
}

// GetAppStateSyncKey returns the sync key with id, or nil.
func (s *Store) GetAppStateSyncKey(ctx context.Context, id []byte) (*store.AppStateSyncKey, error) {
	var key *store.AppStateSyncKey
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subSyncKeys)
		if b == nil {
			return nil
		}
		v := b.Get(syncKeyKey(id))
		if v == nil {
			return nil
		}
		k, err := decodeSyncKey(v)
		key = &k
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get app state sync key %x: %w", id, err)
	}
	return key, nil
}

// GetLatestAppStateSyncKeyID returns the ID of the sync key with the highest
// timestamp (the smallest ID among equal timestamps), or nil when there are none.
func (s *Store) GetLatestAppStateSyncKeyID(ctx context.Context) ([]byte, error) {
	var latest []byte
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subSyncKeys)
		if b == nil {
			return nil
		}
		var best int64
		return b.ForEach(func(k, v []byte) error {
			key, err := decodeSyncKey(v)
			if err != nil {
				return err
			}
			if latest == nil || key.Timestamp > best {
				latest, best = append([]byte(nil), k[1:]...), key.Timestamp
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("get latest app state sync key: %w", err)
	}
	return latest, nil
}

// GetAllAppStateSyncKeys returns every sync key, newest timestamp first
// (sqlstore's order; equal timestamps by key ID).
func (s *Store) GetAllAppStateSyncKeys(ctx context.Context) ([]*store.AppStateSyncKey, error) {
	type keyed struct {
		id  []byte
		key store.AppStateSyncKey
	}
	var all []keyed
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		all = nil
		b := sub(tx, s.dev, subSyncKeys)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			key, err := decodeSyncKey(v)
			if err != nil {
				return fmt.Errorf("key %x: %w", k, err)
			}
			all = append(all, keyed{append([]byte(nil), k...), key})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("get all app state sync keys: %w", err)
	}
	slices.SortStableFunc(all, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(b.key.Timestamp, a.key.Timestamp), bytes.Compare(a.id, b.id))
	})
	out := make([]*store.AppStateSyncKey, len(all))
	for i := range all {
		out[i] = &all[i].key
	}
	return out, nil
}

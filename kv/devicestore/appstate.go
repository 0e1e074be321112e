package devicestore

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
)

// PutAppStateVersion stores (upserts) the version and hash of patch name;
// its mutation MACs are kept.
func (s *Store) PutAppStateVersion(ctx context.Context, name string, version uint64, hash [128]byte) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subAppState)
		if err != nil {
			return err
		}
		nb, err := b.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return err
		}
		if _, err := nb.CreateBucketIfNotExists(subAppStateMACs); err != nil {
			return err
		}
		return nb.Put(keyAppStateVersion, encodeAppStateVersion(version, hash))
	})
	if err != nil {
		return fmt.Errorf("put app state version %s: %w", name, err)
	}
	return nil
}

// GetAppStateVersion returns the version and hash of patch name; 0 and a zero
// hash (the initial state) when none is stored.
func (s *Store) GetAppStateVersion(ctx context.Context, name string) (version uint64, hash [128]byte, err error) {
	err = s.c.view(ctx, func(tx *bbolt.Tx) error {
		nb := appStateBucket(tx, s.dev, name)
		if nb == nil {
			return nil
		}
		v := nb.Get(keyAppStateVersion)
		if v == nil {
			return nil
		}
		var derr error
		version, hash, derr = decodeAppStateVersion(v)
		return derr
	})
	if err != nil {
		return 0, [128]byte{}, fmt.Errorf("get app state version %s: %w", name, err)
	}
	return version, hash, nil
}

// DeleteAppStateVersion deletes the version of patch name and all of its
// mutation MACs (sqlstore's cascade).
func (s *Store) DeleteAppStateVersion(ctx context.Context, name string) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subAppState)
		if err != nil {
			return err
		}
		if b.Bucket([]byte(name)) == nil {
			return nil
		}
		return b.DeleteBucket([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("delete app state version %s: %w", name, err)
	}
	return nil
}

// PutAppStateMutationMACs inserts the MACs of one patch version. The version
// must be stored first; an existing (version, index MAC) pair, or one given
// twice, fails the whole call (plain INSERT). Both MACs must be 32 bytes.
func (s *Store) PutAppStateMutationMACs(ctx context.Context, name string, version uint64, mutations []store.AppStateMutationMAC) error {
	if len(mutations) == 0 {
		return nil
	}
	err := s.c.update(ctx, func(tx *bbolt.Tx) error {
		if _, err := subW(tx, s.dev, subAppState); err != nil {
			return err
		}
		nb := appStateBucket(tx, s.dev, name)
		if nb == nil || nb.Get(keyAppStateVersion) == nil {
			return ErrAppStateVersionMissing
		}
		mb := nb.Bucket(subAppStateMACs)
		seen := make(map[string]bool, len(mutations))
		for _, m := range mutations {
			if len(m.IndexMAC) != 32 || len(m.ValueMAC) != 32 {
				return ErrInvalidLength
			}
			k := macKey(m.IndexMAC, version)
			if seen[string(k)] || mb.Get(k) != nil {
				return fmt.Errorf("version %d index %x: %w", version, m.IndexMAC, ErrDuplicate)
			}
			seen[string(k)] = true
		}
		for _, m := range mutations {
			if err := mb.Put(macKey(m.IndexMAC, version), encodeBlob(m.ValueMAC)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put app state mutation MACs %s v%d: %w", name, version, err)
	}
	return nil
}

// DeleteAppStateMutationMACs deletes every version of each index MAC.
func (s *Store) DeleteAppStateMutationMACs(ctx context.Context, name string, indexMACs [][]byte) error {
	if len(indexMACs) == 0 {
		return nil
	}
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		if _, err := subW(tx, s.dev, subAppState); err != nil {
			return err
		}
		nb := appStateBucket(tx, s.dev, name)
		if nb == nil {
			return nil
		}
		mb := nb.Bucket(subAppStateMACs)
		for _, idx := range indexMACs {
			if len(idx) != 32 {
				continue // cannot be stored, so nothing to delete
			}
			if err := deleteKeys(mb, prefixKeys(mb, idx)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete app state mutation MACs %s: %w", name, err)
	}
	return nil
}

// GetAppStateMutationMAC returns the value MAC of the highest version of
// indexMAC, or nil.
func (s *Store) GetAppStateMutationMAC(ctx context.Context, name string, indexMAC []byte) ([]byte, error) {
	var mac []byte
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		nb := appStateBucket(tx, s.dev, name)
		if nb == nil || len(indexMAC) != 32 {
			return nil
		}
		k, v := nb.Bucket(subAppStateMACs).Cursor().Seek(indexMAC)
		if k == nil || !hasPrefix(k, indexMAC) || len(k) != 40 {
			return nil
		}
		var err error
		mac, err = decodeBlob(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get app state mutation MAC %s: %w", name, err)
	}
	return mac, nil
}

func appStateBucket(tx *bbolt.Tx, dev []byte, name string) *bbolt.Bucket {
	b := sub(tx, dev, subAppState)
	if b == nil || name == "" {
		return nil
	}
	return b.Bucket([]byte(name))
}

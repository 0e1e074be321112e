package devicestore

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// PutIdentity stores (upserts) the identity key of a Signal address. The
// key already stored is not written again: libsignal saves the remote
// identity on every message it encrypts (for the recipient's device and
// for our own phone's copy), right after checking it is the trusted one,
// so without the check two of the four fsynced commits of a send to a
// known recipient would rewrite the same 32 bytes.
func (s *Store) PutIdentity(ctx context.Context, address string, key [32]byte) error {
	v := encodeIdentity(key)
	same := false
	if err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		if b := sub(tx, s.dev, subIdentities); b != nil {
			same = bytes.Equal(b.Get([]byte(address)), v)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("put identity %s: %w", address, err)
	}
	if same {
		return nil
	}
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subIdentities)
		if err != nil {
			return err
		}
		return b.Put([]byte(address), v)
	})
	if err != nil {
		return fmt.Errorf("put identity %s: %w", address, err)
	}
	return nil
}

// DeleteAllIdentities deletes the identities of every device of phone
// (addresses "phone:*"; "phone_1:*" LID addresses are not matched, as in sqlstore).
func (s *Store) DeleteAllIdentities(ctx context.Context, phone string) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error { return s.deletePrefix(tx, subIdentities, phone+":") })
	if err != nil {
		return fmt.Errorf("delete all identities %s: %w", phone, err)
	}
	return nil
}

// DeleteIdentity deletes the identity of one address (exact match).
func (s *Store) DeleteIdentity(ctx context.Context, address string) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subIdentities)
		if err != nil {
			return err
		}
		return b.Delete([]byte(address))
	})
	if err != nil {
		return fmt.Errorf("delete identity %s: %w", address, err)
	}
	return nil
}

// IsTrustedIdentity reports whether key is the stored identity of address;
// an unknown address is trusted.
func (s *Store) IsTrustedIdentity(ctx context.Context, address string, key [32]byte) (bool, error) {
	trusted := true
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subIdentities)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(address))
		if v == nil {
			return nil
		}
		stored, err := decodeIdentity(v)
		trusted = err == nil && stored == key
		return err
	})
	if err != nil {
		return false, fmt.Errorf("is trusted identity %s: %w", address, err)
	}
	return trusted, nil
}

// deletePrefix deletes every key of a device sub-bucket starting with prefix.
func (s *Store) deletePrefix(tx *bbolt.Tx, bucket []byte, prefix string) error {
	b, err := subW(tx, s.dev, bucket)
	if err != nil {
		return err
	}
	return deleteKeys(b, prefixKeys(b, []byte(prefix)))
}

package devicestore

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// PutSenderKey stores (upserts) the sender key of user in group; nil is an error.
func (s *Store) PutSenderKey(ctx context.Context, group, user string, session []byte) error {
	if session == nil {
		return fmt.Errorf("put sender key %s/%s: %w", group, user, ErrNotNull)
	}
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subSenderKeys)
		if err != nil {
			return err
		}
		return b.Put(senderKeyKey(group, user), encodeBlob(session))
	})
	if err != nil {
		return fmt.Errorf("put sender key %s/%s: %w", group, user, err)
	}
	return nil
}

// GetSenderKey returns the sender key of user in group, or nil.
func (s *Store) GetSenderKey(ctx context.Context, group, user string) ([]byte, error) {
	var key []byte
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subSenderKeys)
		if b == nil {
			return nil
		}
		v := b.Get(senderKeyKey(group, user))
		if v == nil {
			return nil
		}
		var err error
		key, err = decodeBlob(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get sender key %s/%s: %w", group, user, err)
	}
	return key, nil
}

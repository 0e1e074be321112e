package devicestore

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// PutPrivacyTokens stores privacy tokens keyed by the user without device.
// As in sqlstore (ON CONFLICT ... WHERE excluded.timestamp >= timestamp), a
// token replaces a stored one only if its timestamp is at least as new; a
// zero SenderTimestamp (time.Time{}, SQL NULL) keeps the stored sender
// timestamp (COALESCE), any other value, time.Unix(0, 0) included, replaces
// it. Duplicates in one call apply in order, each against the one before.
// No tokens is a no-op (sqlstore fails with a syntax error there).
func (s *Store) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	if len(tokens) == 0 {
		return nil
	}
	for _, t := range tokens {
		if t.Token == nil {
			return fmt.Errorf("put privacy token %s: %w", t.User, ErrNotNull)
		}
	}
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subPrivTokens)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			k := []byte(t.User.ToNonAD().String())
			r := tokenRecord{ts: t.Timestamp.Unix(), token: t.Token}
			if !t.SenderTimestamp.IsZero() {
				r.senderTS, r.hasSenderTS = t.SenderTimestamp.Unix(), true
			}
			if v := b.Get(k); v != nil {
				old, err := decodeToken(v)
				if err != nil {
					return err
				}
				if r.ts < old.ts {
					continue // sqlstore: only a token at least as new replaces one
				}
				if !r.hasSenderTS {
					r.senderTS, r.hasSenderTS = old.senderTS, old.hasSenderTS
				}
			}
			if err := b.Put(k, encodeToken(r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put privacy tokens: %w", err)
	}
	return nil
}

// GetPrivacyToken returns the newest token stored for user or for its
// counterpart in the LID map, with User set to the queried user without
// device; nil when there is none.
func (s *Store) GetPrivacyToken(ctx context.Context, user types.JID) (*store.PrivacyToken, error) {
	var best *tokenRecord
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subPrivTokens)
		if b == nil {
			return nil
		}
		for _, k := range withAlt(tx, user.ToNonAD().String()) {
			v := b.Get([]byte(k))
			if v == nil {
				continue
			}
			r, err := decodeToken(v)
			if err != nil {
				return err
			}
			if best == nil || r.ts > best.ts {
				best = &r
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get privacy token %s: %w", user, err)
	}
	if best == nil {
		return nil, nil
	}
	t := &store.PrivacyToken{User: user.ToNonAD(), Token: best.token, Timestamp: time.Unix(best.ts, 0)}
	if best.hasSenderTS {
		t.SenderTimestamp = time.Unix(best.senderTS, 0)
	}
	return t, nil
}

// DeleteExpiredPrivacyTokens deletes this device's tokens whose timestamp is
// before cutoff and returns how many it deleted. whatsmeow calls it at most
// daily, so a scan of the device's tokens is enough (no time index).
func (s *Store) DeleteExpiredPrivacyTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.c.update(ctx, func(tx *bbolt.Tx) error {
		n = 0
		b := sub(tx, s.dev, subPrivTokens)
		if b == nil {
			return nil
		}
		var old [][]byte
		err := b.ForEach(func(k, v []byte) error {
			r, err := decodeToken(v)
			if err != nil {
				return fmt.Errorf("token %s: %w", k, err)
			}
			if r.ts < cutoff.Unix() {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = int64(len(old))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired privacy tokens: %w", err)
	}
	return n, nil
}

// PutNCTSalt stores (replaces) the device's NCT salt, from which cstokens
// are derived.
func (s *Store) PutNCTSalt(ctx context.Context, salt []byte) error {
	if salt == nil {
		return fmt.Errorf("put nct salt: %w", ErrNotNull)
	}
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(s.dev)
		if b == nil {
			return fmt.Errorf("%s: %w", s.jid, ErrDeviceNotFound)
		}
		return b.Put(keyNCTSalt, encodeBlob(salt))
	})
	if err != nil {
		return fmt.Errorf("put nct salt: %w", err)
	}
	return nil
}

// GetNCTSalt returns the device's NCT salt, or nil when there is none.
func (s *Store) GetNCTSalt(ctx context.Context) ([]byte, error) {
	var salt []byte
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(s.dev)
		if b == nil {
			return nil
		}
		v := b.Get(keyNCTSalt)
		if v == nil {
			return nil
		}
		var err error
		if salt, err = decodeBlob(v); len(salt) == 0 {
			salt = nil // as sqlstore reads an empty blob
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get nct salt: %w", err)
	}
	return salt, nil
}

// DeleteNCTSalt removes the device's NCT salt; none stored is a no-op.
func (s *Store) DeleteNCTSalt(ctx context.Context) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(s.dev)
		if b == nil {
			return nil
		}
		return b.Delete(keyNCTSalt)
	})
	if err != nil {
		return fmt.Errorf("delete nct salt: %w", err)
	}
	return nil
}

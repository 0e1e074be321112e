package devicestore

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// PutPrivacyTokens stores (upserts) privacy tokens keyed by the user without
// device; of duplicates in one call the last wins. No tokens is a no-op
// (sqlstore fails with a syntax error there).
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
			if err := b.Put([]byte(t.User.ToNonAD().String()), encodeToken(tokenRecord{ts: t.Timestamp.Unix(), token: t.Token})); err != nil {
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
	return &store.PrivacyToken{User: user.ToNonAD(), Token: best.token, Timestamp: time.Unix(best.ts, 0)}, nil
}

package devicestore

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/types"
)

// GetSession returns the Signal session with address, or nil when none is stored.
func (s *Store) GetSession(ctx context.Context, address string) ([]byte, error) {
	var session []byte
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subSessions)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(address))
		if v == nil {
			return nil
		}
		var err error
		session, err = decodeSession(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get session %s: %w", address, err)
	}
	return session, nil
}

// HasSession reports whether a session row exists for address (even a nil one).
func (s *Store) HasSession(ctx context.Context, address string) (bool, error) {
	var has bool
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subSessions)
		has = b != nil && b.Get([]byte(address)) != nil
		return nil
	})
	return has, err
}

// GetManySessions returns a map with every requested address, nil where no
// session is stored; nil, nil for no addresses.
func (s *Store) GetManySessions(ctx context.Context, addresses []string) (map[string][]byte, error) {
	if len(addresses) == 0 {
		return nil, nil
	}
	out := make(map[string][]byte, len(addresses))
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subSessions)
		for _, addr := range addresses {
			out[addr] = nil
			if b == nil {
				continue
			}
			if v := b.Get([]byte(addr)); v != nil {
				session, err := decodeSession(v)
				if err != nil {
					return fmt.Errorf("%s: %w", addr, err)
				}
				out[addr] = session
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get many sessions: %w", err)
	}
	return out, nil
}

// PutSession stores (upserts) a session; nil is stored as a NULL session.
func (s *Store) PutSession(ctx context.Context, address string, session []byte) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subSessions)
		if err != nil {
			return err
		}
		return b.Put([]byte(address), encodeSession(session))
	})
	if err != nil {
		return fmt.Errorf("put session %s: %w", address, err)
	}
	return nil
}

// PutManySessions stores sessions in one transaction.
func (s *Store) PutManySessions(ctx context.Context, sessions map[string][]byte) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subSessions)
		if err != nil {
			return err
		}
		for addr, session := range sessions {
			if err := b.Put([]byte(addr), encodeSession(session)); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put many sessions: %w", err)
	}
	return nil
}

// DeleteAllSessions deletes the sessions with every device of phone ("phone:*").
func (s *Store) DeleteAllSessions(ctx context.Context, phone string) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error { return s.deletePrefix(tx, subSessions, phone+":") })
	if err != nil {
		return fmt.Errorf("delete all sessions %s: %w", phone, err)
	}
	return nil
}

// DeleteSession deletes the session with one address.
func (s *Store) DeleteSession(ctx context.Context, address string) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subSessions)
		if err != nil {
			return err
		}
		return b.Delete([]byte(address))
	})
	if err != nil {
		return fmt.Errorf("delete session %s: %w", address, err)
	}
	return nil
}

// MigratePNToLID moves the sessions, identities and sender keys of the
// phone number pn to its LID (a PN row overwrites an existing LID row) and
// deletes the PN rows, in one transaction. As in sqlstore it runs once per
// PN per process.
func (s *Store) MigratePNToLID(ctx context.Context, pn, lid types.JID) error {
	pnS, lidS := pn.SignalAddressUser(), lid.SignalAddressUser()
	if _, loaded := s.migratedPN.LoadOrStore(pnS, struct{}{}); loaded {
		return nil
	}
	var moved [3]int
	err := s.c.update(ctx, func(tx *bbolt.Tx) error {
		moved = [3]int{}
		for i, bucket := range [][]byte{subSessions, subIdentities, subSenderKeys} {
			b, err := subW(tx, s.dev, bucket)
			if err != nil {
				return err
			}
			prefix := []byte(pnS + ":")
			keys := prefixKeys(b, prefix)
			for _, k := range keys {
				nk := append([]byte(lidS), k[len(pnS):]...)
				if err := b.Put(nk, append([]byte(nil), b.Get(k)...)); err != nil {
					return err
				}
			}
			if err := deleteKeys(b, keys); err != nil {
				return err
			}
			moved[i] = len(keys)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate %s to %s: %w", pnS, lidS, err)
	}
	if moved != [3]int{} {
		s.c.log.Infof("Migrated %d sessions, %d identity keys and %d sender keys from %s to %s", moved[0], moved[1], moved[2], pnS, lidS)
	}
	return nil
}

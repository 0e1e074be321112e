package devicestore

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// PutPushName stores the push name of user when it differs from the stored
// one, returning true and the previous name; otherwise false, "" and no write.
func (s *Store) PutPushName(ctx context.Context, user types.JID, pushName string) (bool, string, error) {
	return s.putContactField(ctx, user, func(ci *types.ContactInfo) *string { return &ci.PushName }, pushName)
}

// PutBusinessName is PutPushName for the business name.
func (s *Store) PutBusinessName(ctx context.Context, user types.JID, businessName string) (bool, string, error) {
	return s.putContactField(ctx, user, func(ci *types.ContactInfo) *string { return &ci.BusinessName }, businessName)
}

func (s *Store) putContactField(ctx context.Context, user types.JID, field func(*types.ContactInfo) *string, value string) (bool, string, error) {
	// Read first: the common case (name unchanged) needs no write transaction.
	cur, err := s.GetContact(ctx, user)
	if err != nil {
		return false, "", err
	}
	if *field(&cur) == value {
		return false, "", nil
	}
	var changed bool
	var prev string
	err = s.c.write(ctx, func(tx *bbolt.Tx) error {
		changed, prev = false, "" // the group committer may run this more than once
		return s.updateContact(tx, user, func(ci *types.ContactInfo) bool {
			if *field(ci) == value {
				return false
			}
			changed, prev = true, *field(ci)
			*field(ci) = value
			return true
		})
	})
	if err != nil {
		return false, "", fmt.Errorf("put contact %s: %w", user, err)
	}
	return changed, prev, nil
}

// PutContactName stores the first and full name of user when either differs.
// The parameter order is sqlstore's (firstName, fullName), which is how
// whatsmeow calls it, although the interface names them the other way round.
func (s *Store) PutContactName(ctx context.Context, user types.JID, firstName, fullName string) error {
	cur, err := s.GetContact(ctx, user)
	if err != nil {
		return err
	}
	if cur.FirstName == firstName && cur.FullName == fullName {
		return nil
	}
	err = s.c.write(ctx, func(tx *bbolt.Tx) error {
		return s.updateContact(tx, user, func(ci *types.ContactInfo) bool {
			ci.FirstName, ci.FullName = firstName, fullName
			return true
		})
	})
	if err != nil {
		return fmt.Errorf("put contact name %s: %w", user, err)
	}
	return nil
}

// PutAllContactNames stores first and full names in one transaction; of
// duplicate JIDs the first entry wins.
func (s *Store) PutAllContactNames(ctx context.Context, contacts []store.ContactEntry) error {
	if len(contacts) == 0 {
		return nil
	}
	err := s.c.update(ctx, func(tx *bbolt.Tx) error {
		seen := make(map[types.JID]bool, len(contacts))
		for _, ce := range contacts {
			if seen[ce.JID] {
				continue
			}
			seen[ce.JID] = true
			err := s.updateContact(tx, ce.JID, func(ci *types.ContactInfo) bool {
				ci.FirstName, ci.FullName = ce.FirstName, ce.FullName
				return true
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put all contact names: %w", err)
	}
	return nil
}

// PutManyRedactedPhones stores redacted phones in one transaction; of
// duplicate JIDs the first entry wins.
func (s *Store) PutManyRedactedPhones(ctx context.Context, entries []store.RedactedPhoneEntry) error {
	if len(entries) == 0 {
		return nil
	}
	err := s.c.update(ctx, func(tx *bbolt.Tx) error {
		seen := make(map[types.JID]bool, len(entries))
		for _, e := range entries {
			if seen[e.JID] {
				continue
			}
			seen[e.JID] = true
			err := s.updateContact(tx, e.JID, func(ci *types.ContactInfo) bool {
				ci.RedactedPhone = e.RedactedPhone
				return true
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put many redacted phones: %w", err)
	}
	return nil
}

// updateContact reads the contact row of user (zero if absent), lets edit
// change it, and writes it back when edit returns true.
func (s *Store) updateContact(tx *bbolt.Tx, user types.JID, edit func(*types.ContactInfo) bool) error {
	b, err := subW(tx, s.dev, subContacts)
	if err != nil {
		return err
	}
	k := []byte(user.String())
	var ci types.ContactInfo
	if v := b.Get(k); v != nil {
		if ci, err = decodeContact(v); err != nil {
			return err
		}
	}
	if !edit(&ci) {
		return nil
	}
	return b.Put(k, encodeContact(ci))
}

// GetContact returns the contact info of user; Found is false when none is stored.
func (s *Store) GetContact(ctx context.Context, user types.JID) (types.ContactInfo, error) {
	var ci types.ContactInfo
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subContacts)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(user.String()))
		if v == nil {
			return nil
		}
		var err error
		ci, err = decodeContact(v)
		return err
	})
	if err != nil {
		return types.ContactInfo{}, fmt.Errorf("get contact %s: %w", user, err)
	}
	return ci, nil
}

// GetAllContacts returns every stored contact (a non-nil map).
func (s *Store) GetAllContacts(ctx context.Context) (map[types.JID]types.ContactInfo, error) {
	out := make(map[types.JID]types.ContactInfo)
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subContacts)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			jid, err := types.ParseJID(string(k))
			if err != nil {
				return fmt.Errorf("contact key %q: %w", k, err)
			}
			ci, err := decodeContact(v)
			if err != nil {
				return err
			}
			out[jid] = ci
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("get all contacts: %w", err)
	}
	return out, nil
}

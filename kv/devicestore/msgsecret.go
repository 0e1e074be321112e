package devicestore

import (
	"context"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// PutMessageSecret stores the secret of a message; the first secret stored
// for (chat, sender, id) wins. Chat and sender are stored without device.
func (s *Store) PutMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID, secret []byte) error {
	return s.PutMessageSecrets(ctx, []store.MessageSecretInsert{{Chat: chat, Sender: sender, ID: id, Secret: secret}})
}

// PutMessageSecrets stores several message secrets in one transaction,
// first wins for each.
func (s *Store) PutMessageSecrets(ctx context.Context, inserts []store.MessageSecretInsert) error {
	if len(inserts) == 0 {
		return nil
	}
	for _, in := range inserts {
		if in.Secret == nil {
			return fmt.Errorf("put message secret %s: %w", in.ID, ErrNotNull)
		}
	}
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subMsgSecrets)
		if err != nil {
			return err
		}
		for _, in := range inserts {
			k := msgSecretKey(in.Chat.ToNonAD(), in.Sender.ToNonAD(), in.ID)
			if b.Get(k) != nil {
				continue // ON CONFLICT DO NOTHING
			}
			if err := b.Put(k, encodeBlob(in.Secret)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put message secrets: %w", err)
	}
	return nil
}

// GetMessageSecret returns the secret of a message and the sender it was
// stored under. Chat and sender also match through the LID map (a message
// stored under a phone number is found by LID and the other way round).
// Missing: nil, EmptyJID, nil.
func (s *Store) GetMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID) ([]byte, types.JID, error) {
	var secret []byte
	var realSender string
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subMsgSecrets)
		if b == nil {
			return nil
		}
		chats := withAlt(tx, chat.ToNonAD().String())
		senders := withAlt(tx, sender.ToNonAD().String())
		for _, c := range chats {
			for _, snd := range senders {
				k := msgSecretKeyStr(c, snd, id)
				if v := b.Get(k); v != nil {
					var err error
					secret, err = decodeBlob(v)
					realSender = snd
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, types.EmptyJID, fmt.Errorf("get message secret %s: %w", id, err)
	}
	if secret == nil {
		return nil, types.EmptyJID, nil
	}
	jid, err := types.ParseJID(realSender)
	if err != nil {
		return nil, types.EmptyJID, fmt.Errorf("get message secret %s: sender %q: %w", id, realSender, err)
	}
	return secret, jid, nil
}

// withAlt returns jid (a JID string) followed by its counterpart through the
// global LID map, the way sqlstore's queries compute it: "<u>@lid" <->
// "<pn>@s.whatsapp.net". JIDs of other servers have no counterpart.
func withAlt(tx *bbolt.Tx, jid string) []string {
	out := []string{jid}
	lidSuffix, pnSuffix := "@"+types.HiddenUserServer, "@"+types.DefaultUserServer
	switch {
	case strings.HasSuffix(jid, lidSuffix):
		if pn := tx.Bucket(bucketLID2PN).Get([]byte(strings.TrimSuffix(jid, lidSuffix))); pn != nil {
			out = append(out, string(pn)+pnSuffix)
		}
	case strings.HasSuffix(jid, pnSuffix):
		if lid := tx.Bucket(bucketPN2LID).Get([]byte(strings.TrimSuffix(jid, pnSuffix))); lid != nil {
			out = append(out, string(lid)+lidSuffix)
		}
	}
	return out
}

package devicestore

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// PutMutedUntil stores when chat stops being muted: store.MutedForever and
// the zero time are kept as such, anything else with second precision.
func (s *Store) PutMutedUntil(ctx context.Context, chat types.JID, mutedUntil time.Time) error {
	var v int64
	if mutedUntil == store.MutedForever {
		v = -1
	} else if !mutedUntil.IsZero() {
		v = mutedUntil.Unix()
	}
	return s.putChat(ctx, chat, func(r *chatRecord) { r.mutedUntil = v })
}

// PutPinned stores whether chat is pinned.
func (s *Store) PutPinned(ctx context.Context, chat types.JID, pinned bool) error {
	return s.putChat(ctx, chat, func(r *chatRecord) { r.pinned = pinned })
}

// PutArchived stores whether chat is archived.
func (s *Store) PutArchived(ctx context.Context, chat types.JID, archived bool) error {
	return s.putChat(ctx, chat, func(r *chatRecord) { r.archived = archived })
}

// putChat upserts one column of a chat's settings.
func (s *Store) putChat(ctx context.Context, chat types.JID, edit func(*chatRecord)) error {
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subChats)
		if err != nil {
			return err
		}
		k := []byte(chat.String())
		var r chatRecord
		if v := b.Get(k); v != nil {
			if r, err = decodeChat(v); err != nil {
				return err
			}
		}
		edit(&r)
		return b.Put(k, encodeChat(r))
	})
	if err != nil {
		return fmt.Errorf("put chat settings %s: %w", chat, err)
	}
	return nil
}

// GetChatSettings returns the settings of chat; Found is false when none are stored.
func (s *Store) GetChatSettings(ctx context.Context, chat types.JID) (types.LocalChatSettings, error) {
	var out types.LocalChatSettings
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subChats)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(chat.String()))
		if v == nil {
			return nil
		}
		r, err := decodeChat(v)
		if err != nil {
			return err
		}
		out.Found, out.Pinned, out.Archived = true, r.pinned, r.archived
		if r.mutedUntil < 0 {
			out.MutedUntil = store.MutedForever
		} else if r.mutedUntil > 0 {
			out.MutedUntil = time.Unix(r.mutedUntil, 0)
		}
		return nil
	})
	if err != nil {
		return types.LocalChatSettings{}, fmt.Errorf("get chat settings %s: %w", chat, err)
	}
	return out, nil
}

package devicestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/types"
)

// retryRetention is how long an outgoing message is kept for retry receipts
// (sqlstore's DeleteOldOutgoingEvents: 7 days).
const retryRetention = 7 * 24 * time.Hour

// AddOutgoingEvent keeps an outgoing message (marshalled, format "wa" or
// "fb") so that a recipient's retry receipt can be answered after a restart
// (whatsmeow's Client.UseRetryMessageStore). The same chat and id replace
// the kept one and its timestamp. A nil plaintext or an empty chat is
// ErrNotNull (sqlstore's NOT NULL columns).
func (s *Store) AddOutgoingEvent(ctx context.Context, chatJID types.JID, id types.MessageID, format string, plaintext []byte) error {
	if plaintext == nil || chatJID.IsEmpty() { // sqlstore: NOT NULL plaintext, chat_jid
		return fmt.Errorf("add outgoing event %s: %w", id, ErrNotNull)
	}
	r := outgoingRecord{insertMS: s.c.Now().UnixMilli(), format: format, plaintext: plaintext}
	k := retryBufKey(chatJID.String(), string(id))
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, err := subW(tx, s.dev, subRetryBuf)
		if err != nil {
			return err
		}
		idx := tx.Bucket(s.dev).Bucket(subRetryByTime)
		if idx == nil {
			return fmt.Errorf("missing bucket %s: %w", subRetryByTime, ErrCorrupt)
		}
		if v := b.Get(k); v != nil {
			if old, err := decodeOutgoing(v); err == nil {
				if err := idx.Delete(eventTimeKey(old.insertMS, k)); err != nil {
					return err
				}
			}
		}
		if err := b.Put(k, encodeOutgoing(r)); err != nil {
			return err
		}
		return idx.Put(eventTimeKey(r.insertMS, k), []byte{})
	})
	if err != nil {
		return fmt.Errorf("add outgoing event %s: %w", id, err)
	}
	return nil
}

// GetOutgoingEvent returns the kept outgoing message with id in chatJID or,
// failing that, in altChatJID (the chat's other address, LID or phone).
// ErrNotFound when neither holds it.
func (s *Store) GetOutgoingEvent(ctx context.Context, chatJID, altChatJID types.JID, id types.MessageID) (string, []byte, error) {
	var r *outgoingRecord
	err := s.c.view(ctx, func(tx *bbolt.Tx) error {
		b := sub(tx, s.dev, subRetryBuf)
		if b == nil {
			return nil
		}
		for _, chat := range []types.JID{chatJID, altChatJID} {
			if chat.IsEmpty() {
				continue
			}
			v := b.Get(retryBufKey(chat.String(), string(id)))
			if v == nil {
				continue
			}
			rec, err := decodeOutgoing(v)
			if err != nil {
				return err
			}
			r = &rec
			return nil
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("get outgoing event %s: %w", id, err)
	}
	if r == nil {
		return "", nil, fmt.Errorf("get outgoing event %s in %s: %w", id, chatJID, ErrNotFound)
	}
	if len(r.plaintext) == 0 {
		return r.format, nil, nil // as sqlstore reads an empty blob
	}
	return r.format, r.plaintext, nil
}

// DeleteOldOutgoingEvents deletes this device's outgoing messages kept for
// more than 7 days (by the container's clock).
//
// whatsmeow calls it right after AddOutgoingEvent on every send (its
// lastRetryStoreClear is never set), so it must cost next to nothing when
// there is nothing to purge: a read transaction looks at the oldest index
// entry first, and only a real purge writes, through the group committer
// like AddOutgoingEvent (the purge is idempotent: a re-run recomputes it).
func (s *Store) DeleteOldOutgoingEvents(ctx context.Context) error {
	cutoff := eventTimeKey(s.c.Now().Add(-retryRetention).UnixMilli(), nil)
	if s.c.txFrom(ctx) == nil {
		var due bool
		err := s.c.view(ctx, func(tx *bbolt.Tx) error {
			if idx := sub(tx, s.dev, subRetryByTime); idx != nil {
				k, _ := idx.Cursor().First()
				due = k != nil && bytes.Compare(k[:min(8, len(k))], cutoff) < 0
			}
			return nil
		})
		if err != nil || !due {
			return wrapErr("delete old outgoing events", err)
		}
	}
	err := s.c.write(ctx, func(tx *bbolt.Tx) error {
		b, idx := sub(tx, s.dev, subRetryBuf), sub(tx, s.dev, subRetryByTime)
		if b == nil || idx == nil {
			return nil
		}
		var old [][]byte
		cur := idx.Cursor()
		for k, _ := cur.First(); k != nil && bytes.Compare(k[:min(8, len(k))], cutoff) < 0; k, _ = cur.Next() {
			old = append(old, append([]byte(nil), k...))
		}
		for _, k := range old {
			if err := idx.Delete(k); err != nil {
				return err
			}
			if len(k) <= 8 {
				continue
			}
			// Delete the message only if this index entry is its own: a
			// stale entry must never take a newer message with it.
			if v := b.Get(k[8:]); v != nil {
				if r, err := decodeOutgoing(v); err == nil && r.insertMS != int64(binary.BigEndian.Uint64(k[:8])) {
					continue
				}
				if err := b.Delete(k[8:]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return wrapErr("delete old outgoing events", err)
}

func wrapErr(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

package kv

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// The webhook outbox. Journal records (and replies) of clientes with a
// webhook are copied into a per-cliente queue in the same transaction that
// advances the feed's cursor, so a record is queued exactly once even
// across crashes; a queued record leaves the queue only when the receiver
// acknowledged it.
var (
	bucketWebhooks = []byte("app.webhooks") // cliente -> JSON webhook
	bucketOutbox   = []byte("app.outbox")   // "\x00journal" -> u64 cursor; "\x00r/"cliente -> u64 reply cursor; cliente/ u64 -> JSON engine.Entry
)

var keyOutboxJournal = []byte("\x00journal")

func replyCursorKey(cliente string) []byte { return []byte("\x00r/" + cliente) }

type webhook struct {
	URL     string    `json:"url"`
	Secret  string    `json:"secret"`
	Created time.Time `json:"creado"`
}

// SetWebhook sets (or, with url "", removes) a cliente's webhook. Records
// journaled from now on are queued for it. engine.ErrNotFound if the
// cliente does not exist.
func (db *DB) SetWebhook(ctx context.Context, cliente, url, secret string) error {
	return db.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bucketClientes).Get([]byte(cliente)) == nil {
			return fmt.Errorf("cliente %q: %w", cliente, engine.ErrNotFound)
		}
		wb, err := w.tx.CreateBucketIfNotExists(bucketWebhooks)
		if err != nil {
			return abort(err)
		}
		ob, err := w.tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return abort(err)
		}
		if url == "" {
			return abort(wb.Delete([]byte(cliente)))
		}
		if ob.Get(keyOutboxJournal) == nil { // the first webhook: start at the journal's end
			if err := ob.Put(keyOutboxJournal, u64(w.tx.Bucket(bucketJournal).Sequence())); err != nil {
				return abort(err)
			}
		}
		if wb.Get([]byte(cliente)) == nil {
			var last uint64
			if rb, _ := sub(w.tx, bucketReplies, cliente, false); rb != nil {
				last = rb.Sequence()
			}
			if err := ob.Put(replyCursorKey(cliente), u64(last)); err != nil {
				return abort(err)
			}
		}
		return abort(putJSON(wb, []byte(cliente), webhook{URL: url, Secret: secret, Created: w.now}))
	})
}

// Webhook returns a cliente's webhook; url is "" when it has none.
func (db *DB) Webhook(ctx context.Context, cliente string) (url, secret string, err error) {
	var h webhook
	err = db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebhooks)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(cliente)); v != nil {
			return json.Unmarshal(v, &h)
		}
		return nil
	})
	return h.URL, h.Secret, err
}

// WebhookClientes lists the clientes that have a webhook.
func (db *DB) WebhookClientes(ctx context.Context) ([]string, error) {
	var out []string
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebhooks)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error { out = append(out, string(k)); return nil })
	})
	return out, err
}

// FeedOutbox queues, for clientes with a webhook, up to limit journal
// records past the feed's cursor and their new replies, and advances the
// cursors in the same transaction. It returns how many items it queued
// and whether more records wait.
func (db *DB) FeedOutbox(ctx context.Context, limit int) (queued int, more bool, err error) {
	if limit <= 0 {
		limit = 1000
	}
	err = db.write(ctx, func(w *wtx) error {
		queued, more = 0, false
		wb, ob := w.tx.Bucket(bucketWebhooks), w.tx.Bucket(bucketOutbox)
		if wb == nil || ob == nil {
			return nil
		}
		// Read everything first (nothing is written before validation).
		type item struct {
			cliente string
			e       engine.Entry
		}
		var items []item
		cursor := decodeU64(ob.Get(keyOutboxJournal))
		c := w.tx.Bucket(bucketJournal).Cursor()
		n := 0
		for k, v := c.Seek(u64(cursor + 1)); k != nil; k, v = c.Next() {
			if n == limit {
				more = true
				break
			}
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("outbox feed: journal %x: %w", k, err)
			}
			n++
			cursor = binary.BigEndian.Uint64(k)
			if e.Cliente != "" && wb.Get([]byte(e.Cliente)) != nil {
				items = append(items, item{e.Cliente, e})
			}
		}
		replyCursors := map[string]uint64{}
		err := wb.ForEach(func(k, _ []byte) error {
			cl := string(k)
			rb, err := sub(w.tx, bucketReplies, cl, false)
			if err != nil || rb == nil {
				return err
			}
			after := decodeU64(ob.Get(replyCursorKey(cl)))
			rc := rb.Cursor()
			for rk, rv := rc.Seek(u64(after + 1)); rk != nil; rk, rv = rc.Next() {
				var r engine.StoredReply
				if err := json.Unmarshal(rv, &r); err != nil {
					return fmt.Errorf("outbox feed: reply %s/%x: %w", cl, rk, err)
				}
				items = append(items, item{cl, engine.Entry{Seq: r.Seq, Time: r.At, Kind: engine.KindReply, Cliente: cl, MsgID: r.MsgID, Phone: r.From, Reason: r.Text}})
				after = r.Seq
			}
			replyCursors[cl] = after
			return nil
		})
		if err != nil {
			return err
		}
		// Write: the queue items and the cursors, or nothing.
		for _, it := range items {
			q, err := ob.CreateBucketIfNotExists([]byte(it.cliente))
			if err != nil {
				return abort(err)
			}
			seq, err := q.NextSequence()
			if err != nil {
				return abort(err)
			}
			if err := putJSON(q, u64(seq), it.e); err != nil {
				return abort(err)
			}
		}
		if err := ob.Put(keyOutboxJournal, u64(cursor)); err != nil {
			return abort(err)
		}
		for cl, after := range replyCursors {
			if err := ob.Put(replyCursorKey(cl), u64(after)); err != nil {
				return abort(err)
			}
		}
		queued = len(items)
		return nil
	})
	return queued, more, err
}

// OutboxPending returns up to limit queued items of a cliente, oldest
// first: their queue ids (for OutboxAck) and the records.
func (db *DB) OutboxPending(ctx context.Context, cliente string, limit int) ([]uint64, []engine.Entry, error) {
	var ids []uint64
	var es []engine.Entry
	err := db.view(ctx, func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		if ob == nil {
			return nil
		}
		q := ob.Bucket([]byte(cliente))
		if q == nil {
			return nil
		}
		c := q.Cursor()
		for k, v := c.First(); k != nil && len(ids) < limit; k, v = c.Next() {
			var e engine.Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("outbox %s/%x: %w", cliente, k, err)
			}
			ids = append(ids, binary.BigEndian.Uint64(k))
			es = append(es, e)
		}
		return nil
	})
	return ids, es, err
}

// OutboxAck removes a delivered item from a cliente's queue (idempotent).
func (db *DB) OutboxAck(ctx context.Context, cliente string, id uint64) error {
	return db.write(ctx, func(w *wtx) error {
		ob := w.tx.Bucket(bucketOutbox)
		if ob == nil {
			return nil
		}
		q := ob.Bucket([]byte(cliente))
		if q == nil || q.Get(u64(id)) == nil {
			return nil
		}
		return abort(q.Delete(u64(id)))
	})
}

package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// reachKeyPrefix keys a cliente's reach lock in the meta bucket.
const reachKeyPrefix = "reach/"

// chatKey keys, in a cliente's numbers bucket, the first reply from phone.
func chatKey(phone string) []byte { return []byte("chat\x00" + phone) }

// SaveReachLock stores a cliente's reach lock and journals the change
// (KindReach: reach_locked with its end, or reach_unlocked) in one
// transaction; the journal record also feeds the webhook outbox.
func (db *DB) SaveReachLock(ctx context.Context, l engine.ReachLock) error {
	if l.Cliente == "" {
		return fmt.Errorf("reach lock without a cliente: %w", engine.ErrInvalid)
	}
	ev := engine.EventReachUnlocked
	if l.Active {
		ev = engine.EventReachLocked
	}
	reason := l.Source
	if l.Enforcement != "" {
		reason += ":" + l.Enforcement
	}
	return db.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bucketClientes).Get([]byte(l.Cliente)) == nil {
			return fmt.Errorf("cliente %q: %w", l.Cliente, engine.ErrNotFound)
		}
		if err := putJSON(w.tx.Bucket(bucketMeta), []byte(reachKeyPrefix+l.Cliente), l); err != nil {
			return abort(err)
		}
		return abort(w.appendEntry(engine.Entry{Time: l.At, Kind: engine.KindReach, Cliente: l.Cliente, Event: ev, Reason: reason, Until: l.Until}))
	})
}

// ReachLocks returns every cliente's stored reach lock.
func (db *DB) ReachLocks(ctx context.Context) (map[string]engine.ReachLock, error) {
	out := map[string]engine.ReachLock{}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		prefix := []byte(reachKeyPrefix)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var l engine.ReachLock
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("reach lock %s: %w", k, err)
			}
			out[l.Cliente] = l
		}
		return nil
	})
	return out, err
}

// HasChat says whether cliente has a chat with phone as far as the store
// knows: the phone replied, or an envío to it was delivered or read.
func (db *DB) HasChat(ctx context.Context, cliente, phone string) (bool, error) {
	var chat bool
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if b, err := sub(tx, bucketNumbers, cliente, false); err != nil {
			return err
		} else if b != nil && b.Get(chatKey(phone)) != nil {
			chat = true
			return nil
		}
		return db.forEnviosOfPhone(tx, cliente, phone, func(e engine.Envio) bool {
			chat = e.State == engine.Entregado || e.State == engine.Leido
			return !chat
		})
	})
	return chat, err
}

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

// EnviosByPhone returns the visible envíos of a cliente to an E.164 phone,
// across its campaigns, oldest campaign first.
func (db *DB) EnviosByPhone(ctx context.Context, cliente, phone string) ([]engine.Envio, error) {
	var out []engine.Envio
	err := db.view(ctx, func(tx *bolt.Tx) error {
		out = nil
		return db.forEnviosOfPhone(tx, cliente, phone, func(e engine.Envio) bool {
			out = append(out, e)
			return true
		})
	})
	return out, err
}

// forEnviosOfPhone calls fn with the visible envíos of a cliente to phone,
// oldest campaign first, until fn returns false.
func (db *DB) forEnviosOfPhone(tx *bolt.Tx, cliente, phone string, fn func(engine.Envio) bool) error {
	b, err := sub(tx, bucketPhones, cliente, false)
	if err != nil || b == nil {
		return err
	}
	prefix := []byte(phone + "\x00")
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && len(k) > len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
		_, campaign, seq, err := parsePhoneKey(k)
		if err != nil {
			return err
		}
		e, err := db.getEnvio(tx, engine.Ref{Campaign: campaign, Seq: seq})
		if err != nil {
			continue // staged by an import in progress: not visible
		}
		if !fn(e) {
			return nil
		}
	}
	return nil
}

// SaveReply stores a reply of a cliente's recipient, with the envío it
// answers (if known) and whether it opted out.
func (db *DB) SaveReply(ctx context.Context, reply engine.Reply, envio *engine.Ref, optOut bool) error {
	r := engine.StoredReply{Reply: reply, OptOut: optOut}
	if envio != nil {
		r.Envio = envio.String()
	}
	return db.write(ctx, func(w *wtx) error {
		b, err := sub(w.tx, bucketReplies, r.Cliente, true)
		if err != nil {
			return abort(err)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return abort(err)
		}
		r.Seq = seq
		if err := putJSON(b, u64(seq), r); err != nil {
			return abort(err)
		}
		// The phone has a chat with the cliente now (HasChat).
		nb, err := sub(w.tx, bucketNumbers, r.Cliente, true)
		if err != nil {
			return abort(err)
		}
		if nb.Get(chatKey(r.From)) == nil {
			return abort(nb.Put(chatKey(r.From), u64(uint64(reply.At.Unix()))))
		}
		return nil
	})
}

// Replies returns up to limit replies of a cliente with Seq > after.
func (db *DB) Replies(ctx context.Context, cliente string, after uint64, limit int) ([]engine.StoredReply, error) {
	var out []engine.StoredReply
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b, err := sub(tx, bucketReplies, cliente, false)
		if err != nil || b == nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var r engine.StoredReply
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("reply %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

type numberCheck struct {
	OnWhatsApp bool      `json:"wa"`
	At         time.Time `json:"at"`
}

// KnownNumbers returns the cached WhatsApp checks of phones checked after
// since: phone -> on WhatsApp. Phones not in the map are unknown.
func (db *DB) KnownNumbers(ctx context.Context, cliente string, phones []string, since time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b, err := sub(tx, bucketNumbers, cliente, false)
		if err != nil || b == nil {
			return err
		}
		for _, p := range phones {
			v := b.Get([]byte(p))
			if v == nil {
				continue
			}
			var n numberCheck
			if err := json.Unmarshal(v, &n); err == nil && !n.At.Before(since) {
				out[p] = n.OnWhatsApp
			}
		}
		return nil
	})
	return out, err
}

// SaveNumbers caches WhatsApp checks of phones.
func (db *DB) SaveNumbers(ctx context.Context, cliente string, checks map[string]bool) error {
	return db.write(ctx, func(w *wtx) error {
		b, err := sub(w.tx, bucketNumbers, cliente, true)
		if err != nil {
			return abort(err)
		}
		for p, ok := range checks {
			if err := putJSON(b, []byte(p), numberCheck{OnWhatsApp: ok, At: w.now}); err != nil {
				return abort(err)
			}
		}
		return nil
	})
}

// SentSince returns the times of the -> enviado transitions after since,
// per cliente and campaign, newest first: the rate limiters' memory across
// restarts. One backward read of the journal's tail serves every cliente.
func (db *DB) SentSince(ctx context.Context, since time.Time) (map[string]map[string][]time.Time, error) {
	out := map[string]map[string][]time.Time{}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJournal).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			e, err := decodeEntry(v)
			if err != nil {
				return err
			}
			if e.Time.Before(since) {
				return nil
			}
			if e.Kind == engine.KindTransition && e.To == engine.Enviado {
				if out[e.Cliente] == nil {
					out[e.Cliente] = map[string][]time.Time{}
				}
				out[e.Cliente][e.Campaign] = append(out[e.Cliente][e.Campaign], e.Time)
			}
		}
		return nil
	})
	return out, err
}

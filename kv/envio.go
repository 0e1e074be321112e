package kv

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// getCampaign reads a campaign inside tx.
func getCampaign(tx *bolt.Tx, id string) (engine.Campaign, error) {
	var c engine.Campaign
	v := tx.Bucket(bucketCampaigns).Get([]byte(id))
	if v == nil {
		return c, fmt.Errorf("campaña %q: %w", id, engine.ErrNotFound)
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("campaña %q: decode: %w", id, err)
	}
	return c, nil
}

// putEnvio stores an envío in its campaign's bucket.
func putEnvio(b *bolt.Bucket, e *engine.Envio) error {
	data, err := appendEnvio(nil, e)
	if err != nil {
		return fmt.Errorf("envío %s: %w", e.Ref, err)
	}
	return b.Put(u64(e.Ref.Seq), data)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return b.Put(key, data)
}

// visibleMark is a campaign's visible mark with the stored campaign it was
// decoded from: every envío read checks the mark, and decoding the
// campaign's JSON each time cost more than the rest of the read.
type visibleMark struct {
	raw     []byte
	visible uint64
}

// visibleOf returns a campaign's visible mark inside tx.
func (db *DB) visibleOf(tx *bolt.Tx, campaign string) (uint64, error) {
	v := tx.Bucket(bucketCampaigns).Get([]byte(campaign))
	if v == nil {
		return 0, fmt.Errorf("campaña %q: %w", campaign, engine.ErrNotFound)
	}
	if m, ok := db.visible.Load(campaign); ok && bytes.Equal(m.(visibleMark).raw, v) {
		return m.(visibleMark).visible, nil
	}
	var c struct {
		Visible uint64 `json:"visible"`
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return 0, fmt.Errorf("campaña %q: decode: %w", campaign, err)
	}
	db.visible.Store(campaign, visibleMark{raw: bytes.Clone(v), visible: c.Visible})
	return c.Visible, nil
}

// getEnvio reads a visible envío inside tx.
func (db *DB) getEnvio(tx *bolt.Tx, r engine.Ref) (engine.Envio, error) {
	var e engine.Envio
	visible, err := db.visibleOf(tx, r.Campaign)
	if err != nil {
		return e, err
	}
	if r.Seq == 0 || r.Seq > visible {
		return e, fmt.Errorf("envío %s: %w", r, engine.ErrNotFound)
	}
	b, err := sub(tx, bucketEnvios, r.Campaign, false)
	if err != nil || b == nil {
		return e, fmt.Errorf("envío %s: %w", r, engine.ErrNotFound)
	}
	v := b.Get(u64(r.Seq))
	if v == nil {
		return e, fmt.Errorf("envío %s: %w", r, engine.ErrNotFound)
	}
	if err := decodeEnvio(v, &e); err != nil {
		return e, fmt.Errorf("envío %s: %w", r, err)
	}
	e.Ref = r
	return e, nil
}

// Envio returns one envío.
func (db *DB) Envio(ctx context.Context, r engine.Ref) (engine.Envio, error) {
	var e engine.Envio
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		e, err = db.getEnvio(tx, r)
		return err
	})
	return e, err
}

// EnvioByMsgID finds the envío sent with a WhatsApp message id (receipts).
func (db *DB) EnvioByMsgID(ctx context.Context, msgID string) (engine.Envio, error) {
	var e engine.Envio
	err := db.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMsgIDs).Get([]byte(msgID))
		if v == nil {
			return fmt.Errorf("message id %q: %w", msgID, engine.ErrNotFound)
		}
		c, seq, err := parseRefKey(v)
		if err != nil {
			return err
		}
		e, err = db.getEnvio(tx, engine.Ref{Campaign: c, Seq: seq})
		return err
	})
	return e, err
}

// Envios lists the visible envíos of a campaign with Seq > after, in import
// order, up to limit, optionally only those in state (empty: all).
func (db *DB) Envios(ctx context.Context, campaign string, after uint64, limit int, state engine.State) ([]engine.Envio, error) {
	var out []engine.Envio
	err := db.view(ctx, func(tx *bolt.Tx) error {
		visible, err := db.visibleOf(tx, campaign)
		if err != nil {
			return err
		}
		b, err := sub(tx, bucketEnvios, campaign, false)
		if err != nil || b == nil {
			return err
		}
		cur := b.Cursor()
		for k, v := cur.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = cur.Next() {
			seq := binary.BigEndian.Uint64(k)
			if seq > visible {
				break
			}
			var e engine.Envio
			if err := decodeEnvio(v, &e); err != nil {
				return fmt.Errorf("envío %s/%d: %w", campaign, seq, err)
			}
			if state != "" && e.State != state {
				continue
			}
			e.Ref = engine.Ref{Campaign: campaign, Seq: seq}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Counts is engine.Counts, kept in the same transaction as every transition.
type Counts = engine.Counts

func readCounts(tx *bolt.Tx, campaign string) Counts {
	v := tx.Bucket(bucketCounters).Get([]byte(campaign))
	c := make(Counts, len(engine.States))
	for i, s := range engine.States {
		if len(v) >= (i+1)*8 {
			c[s] = binary.BigEndian.Uint64(v[i*8:])
		}
	}
	return c
}

func writeCounts(tx *bolt.Tx, campaign string, c Counts) error {
	v := make([]byte, 0, 8*len(engine.States))
	for _, s := range engine.States {
		v = binary.BigEndian.AppendUint64(v, c[s])
	}
	return tx.Bucket(bucketCounters).Put([]byte(campaign), v)
}

// Counts returns the counters of a campaign.
func (db *DB) Counts(ctx context.Context, campaign string) (Counts, error) {
	var c Counts
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if _, err := getCampaign(tx, campaign); err != nil {
			return err
		}
		c = readCounts(tx, campaign)
		return nil
	})
	return c, err
}

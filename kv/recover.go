package kv

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// InFlight lists the envíos in enviando (through the in-flight index):
// after a stop or a crash, the ones whose send's outcome is unknown. The
// engine decides what becomes of them (engine.Engine.Recover).
func (db *DB) InFlight(ctx context.Context) ([]engine.Ref, error) {
	var refs []engine.Ref
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInflight).ForEach(func(k, _ []byte) error {
			c, seq, err := parseRefKey(k)
			if err != nil {
				return err
			}
			refs = append(refs, engine.Ref{Campaign: c, Seq: seq})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("in-flight envíos: %w", err)
	}
	return refs, nil
}

// NextDue finds the campaign's next envío to claim: a retry whose time has
// come first, then the first fresh pendiente in import order.
func (db *DB) NextDue(ctx context.Context, campaign string, now time.Time) (engine.Due, error) {
	var d engine.Due
	err := db.view(ctx, func(tx *bolt.Tx) error {
		visible, err := db.visibleOf(tx, campaign)
		if err != nil {
			return err
		}
		if due, _ := sub(tx, bucketDue, campaign, false); due != nil {
			if k, _ := due.Cursor().First(); k != nil {
				at := time.Unix(0, int64(binary.BigEndian.Uint64(k)))
				if !at.After(now) {
					d = engine.Due{Envio: engine.Ref{Campaign: campaign, Seq: binary.BigEndian.Uint64(k[8:])}, Ok: true}
					return nil
				}
				d.Next = at
			}
		}
		envios, _ := sub(tx, bucketEnvios, campaign, false)
		if envios == nil {
			return nil
		}
		from := max(decodeU64(tx.Bucket(bucketCursors).Get([]byte(campaign))), 1)
		cur := envios.Cursor()
		for k, v := cur.Seek(u64(from)); k != nil; k, v = cur.Next() {
			seq := binary.BigEndian.Uint64(k)
			if seq > visible {
				break
			}
			var e engine.Envio
			if err := decodeEnvioHeader(v, &e); err != nil {
				return fmt.Errorf("envío %s/%d: %w", campaign, seq, err)
			}
			if e.State == engine.Pendiente && e.NextAttempt.IsZero() {
				d = engine.Due{Envio: engine.Ref{Campaign: campaign, Seq: seq}, Ok: true}
				return nil
			}
		}
		return nil
	})
	return d, err
}

package kv

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// bucketMessages maps a cliente's transactional messages to their envíos:
// cliente/ "k\x00"key -> u64 seq, "i\x00"message id -> u64 seq, and back,
// "s\x00"u64 seq -> key. It is made on the first message, so files without
// it still open read-only.
var bucketMessages = []byte("app.mensajes")

func messageKeyKey(key string) []byte { return []byte("k\x00" + key) }
func messageIDKey(id string) []byte   { return []byte("i\x00" + id) }
func messageSeqKey(seq uint64) []byte { return append([]byte("s\x00"), u64(seq)...) }

// AddMessage adds one transactional message to campaign (the cliente's
// messages campaign, created activa by the caller) as a pendiente envío
// whose variable "texto" is the text, in one transaction with its journal
// record (an import of that one envío, its row digest covering the text)
// and its idempotency key. A key already used returns its envío, unchanged,
// and created false: the same key never makes a second message.
func (db *DB) AddMessage(ctx context.Context, campaign string, m engine.Message, idOf func(engine.Ref) string) (engine.Envio, bool, error) {
	if m.Key == "" || m.Telefono == "" || m.Texto == "" {
		return engine.Envio{}, false, fmt.Errorf("message without key, phone or text: %w", engine.ErrInvalid)
	}
	var (
		out     engine.Envio
		created bool
	)
	err := db.write(ctx, func(w *wtx) error {
		created = false
		c, err := getCampaign(w.tx, campaign)
		if err != nil {
			return err
		}
		if c.Cliente != m.Cliente {
			return fmt.Errorf("campaña %q is not cliente %q's: %w", campaign, m.Cliente, engine.ErrConflict)
		}
		root, err := w.tx.CreateBucketIfNotExists(bucketMessages)
		if err != nil {
			return abort(err)
		}
		idx, err := root.CreateBucketIfNotExists([]byte(m.Cliente))
		if err != nil {
			return abort(err)
		}
		if v := idx.Get(messageKeyKey(m.Key)); v != nil {
			out, err = db.getEnvio(w.tx, engine.Ref{Campaign: campaign, Seq: binary.BigEndian.Uint64(v)})
			return err
		}
		if s, err := sub(w.tx, bucketSuppress, m.Cliente, false); err != nil {
			return err
		} else if s != nil && s.Get([]byte(m.Telefono)) != nil {
			return fmt.Errorf("%s: %w", m.Telefono, engine.ErrOptedOut)
		}
		if w.tx.Bucket(bucketImports).Get([]byte(campaign)) != nil {
			return fmt.Errorf("campaña %q has an import in progress: %w", campaign, ErrImportRunning)
		}
		seq := c.Visible + 1
		e := engine.Envio{
			Ref: engine.Ref{Campaign: campaign, Seq: seq}, Cliente: m.Cliente, Telefono: m.Telefono,
			Variables: map[string]string{engine.MessageTextVar: m.Texto},
			State:     engine.Pendiente, CreatedAt: w.now, UpdatedAt: w.now,
		}
		envios, err := sub(w.tx, bucketEnvios, campaign, true)
		if err != nil {
			return abort(err)
		}
		v, err := appendEnvio(nil, &e)
		if err != nil {
			return abort(err)
		}
		if err := envios.Put(u64(seq), v); err != nil {
			return abort(err)
		}
		phones, err := sub(w.tx, bucketPhones, m.Cliente, true)
		if err != nil {
			return abort(err)
		}
		if err := phones.Put(phoneKey(m.Telefono, campaign, seq), nil); err != nil {
			return abort(err)
		}
		if err := idx.Put(messageKeyKey(m.Key), u64(seq)); err != nil {
			return abort(err)
		}
		if err := idx.Put(messageIDKey(idOf(e.Ref)), u64(seq)); err != nil {
			return abort(err)
		}
		if err := idx.Put(messageSeqKey(seq), []byte(m.Key)); err != nil {
			return abort(err)
		}
		c.Visible = seq
		if err := putJSON(w.tx.Bucket(bucketCampaigns), []byte(c.ID), c); err != nil {
			return abort(err)
		}
		counts := readCounts(w.tx, c.ID)
		counts[engine.Pendiente]++
		if err := writeCounts(w.tx, c.ID, counts); err != nil {
			return abort(err)
		}
		digest := sha256.Sum256(appendRowDigest(nil, &e))
		if err := w.appendEntry(engine.Entry{
			Kind: engine.KindImport, Cliente: c.Cliente, Campaign: c.ID,
			FirstSeq: seq, LastSeq: seq, Digest: hex.EncodeToString(digest[:]), Reason: "mensaje",
		}); err != nil {
			return abort(err)
		}
		out, created = e, true
		return nil
	})
	if err != nil {
		return engine.Envio{}, false, fmt.Errorf("add message: %w", err)
	}
	return out, created, nil
}

// MessageRef finds a cliente's transactional message by its idempotency key
// or its message id.
func (db *DB) MessageRef(ctx context.Context, cliente, campaign, keyOrID string) (engine.Ref, error) {
	var ref engine.Ref
	err := db.view(ctx, func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketMessages)
		if root == nil {
			return engine.ErrNotFound
		}
		idx := root.Bucket([]byte(cliente))
		if idx == nil {
			return engine.ErrNotFound
		}
		v := idx.Get(messageIDKey(keyOrID))
		if v == nil {
			v = idx.Get(messageKeyKey(keyOrID))
		}
		if len(v) != 8 {
			return engine.ErrNotFound
		}
		ref = engine.Ref{Campaign: campaign, Seq: binary.BigEndian.Uint64(v)}
		return nil
	})
	if err != nil {
		return engine.Ref{}, fmt.Errorf("message %q: %w", keyOrID, err)
	}
	return ref, nil
}

// MessageKey is the idempotency key of a cliente's message seq ("" when
// none is stored).
func (db *DB) MessageKey(ctx context.Context, cliente string, seq uint64) (string, error) {
	var key string
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if root := tx.Bucket(bucketMessages); root != nil {
			if idx := root.Bucket([]byte(cliente)); idx != nil {
				key = string(idx.Get(messageSeqKey(seq)))
			}
		}
		return nil
	})
	return key, err
}

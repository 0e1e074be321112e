package kv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// The admin API's credentials. Only hashes are stored: a token or key is
// shown once, when it is made, and never again.
var (
	bucketAuth = []byte("app.auth") // "admin" -> sha256 of the admin token; "key/" sha256 -> JSON apiKey
)

var keyAdminHash = []byte("admin")

const apiKeyPrefix = "key/"

// APIKey is a per-cliente API key as stored: the hash of the key, never
// the key itself.
type APIKey struct {
	Cliente string    `json:"cliente"`
	Created time.Time `json:"creada"`
}

// AdminTokenHash returns the stored SHA-256 of the admin token, or nil if
// none was stored yet.
func (db *DB) AdminTokenHash(ctx context.Context) ([]byte, error) {
	var out []byte
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketAuth); b != nil {
			out = bytes.Clone(b.Get(keyAdminHash))
		}
		return nil
	})
	return out, err
}

// SetAdminTokenHash stores the SHA-256 of a generated admin token, once:
// engine.ErrConflict if one is stored already (another start won the race).
func (db *DB) SetAdminTokenHash(ctx context.Context, hash []byte) error {
	if len(hash) != sha256.Size {
		return fmt.Errorf("admin token hash: want %d bytes: %w", sha256.Size, engine.ErrInvalid)
	}
	return db.write(ctx, func(w *wtx) error {
		if b := w.tx.Bucket(bucketAuth); b != nil && b.Get(keyAdminHash) != nil {
			return fmt.Errorf("admin token: %w", engine.ErrConflict)
		}
		b, err := w.tx.CreateBucketIfNotExists(bucketAuth)
		if err != nil {
			return abort(fmt.Errorf("bucket %s: %w", bucketAuth, err))
		}
		return abort(b.Put(keyAdminHash, bytes.Clone(hash)))
	})
}

// CreateAPIKey stores the SHA-256 of a new API key of a cliente.
// engine.ErrNotFound if the cliente does not exist, engine.ErrConflict if
// the hash is already stored.
func (db *DB) CreateAPIKey(ctx context.Context, cliente string, hash []byte) error {
	if len(hash) != sha256.Size {
		return fmt.Errorf("api key hash: want %d bytes: %w", sha256.Size, engine.ErrInvalid)
	}
	k := append([]byte(apiKeyPrefix), hash...)
	return db.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bucketClientes).Get([]byte(cliente)) == nil {
			return fmt.Errorf("cliente %q: %w", cliente, engine.ErrNotFound)
		}
		if b := w.tx.Bucket(bucketAuth); b != nil && b.Get(k) != nil {
			return fmt.Errorf("api key: %w", engine.ErrConflict)
		}
		b, err := w.tx.CreateBucketIfNotExists(bucketAuth)
		if err != nil {
			return abort(fmt.Errorf("bucket %s: %w", bucketAuth, err))
		}
		return abort(putJSON(b, k, APIKey{Cliente: cliente, Created: w.now}))
	})
}

// APIKeyCliente returns the cliente of an API key, given the key's
// SHA-256; engine.ErrNotFound if no key has that hash.
func (db *DB) APIKeyCliente(ctx context.Context, hash []byte) (string, error) {
	var k APIKey
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAuth)
		if b == nil {
			return fmt.Errorf("api key: %w", engine.ErrNotFound)
		}
		v := b.Get(append([]byte(apiKeyPrefix), hash...))
		if v == nil {
			return fmt.Errorf("api key: %w", engine.ErrNotFound)
		}
		return json.Unmarshal(v, &k)
	})
	return k.Cliente, err
}

// ClienteReplies is Replies (the name the admin layer's store contract
// uses).
func (db *DB) ClienteReplies(ctx context.Context, cliente string, after uint64, limit int) ([]engine.StoredReply, error) {
	return db.Replies(ctx, cliente, after, limit)
}

// APIKeys lists a cliente's keys: each key's id (the hex of the first 8
// bytes of its hash, which names it without revealing it) and creation time.
func (db *DB) APIKeys(ctx context.Context, cliente string) (ids []string, created []time.Time, err error) {
	err = db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAuth)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		prefix := []byte(apiKeyPrefix)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var key APIKey
			if err := json.Unmarshal(v, &key); err != nil {
				return fmt.Errorf("api key %x: %w", k, err)
			}
			if key.Cliente == cliente {
				ids = append(ids, hex.EncodeToString(k[len(prefix):len(prefix)+8]))
				created = append(created, key.Created)
			}
		}
		return nil
	})
	return ids, created, err
}

// RevokeAPIKey deletes a cliente's key by its id (see APIKeys);
// engine.ErrNotFound if the cliente has no such key.
func (db *DB) RevokeAPIKey(ctx context.Context, cliente, id string) error {
	want, err := hex.DecodeString(id)
	if err != nil || len(want) != 8 {
		return fmt.Errorf("api key id %q: %w", id, engine.ErrNotFound)
	}
	return db.write(ctx, func(w *wtx) error {
		b := w.tx.Bucket(bucketAuth)
		if b == nil {
			return fmt.Errorf("api key %q: %w", id, engine.ErrNotFound)
		}
		prefix := append([]byte(apiKeyPrefix), want...)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var key APIKey
			if err := json.Unmarshal(v, &key); err != nil {
				return fmt.Errorf("api key %x: %w", k, err)
			}
			if key.Cliente == cliente {
				return abort(b.Delete(bytes.Clone(k)))
			}
		}
		return fmt.Errorf("api key %q: %w", id, engine.ErrNotFound)
	})
}

package kv

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// schemaVersion is the layout this code writes. migrations[v] upgrades a
// file from version v to v+1.
const schemaVersion = 3

var migrations = map[uint64]func(tx *bolt.Tx) error{
	1: indexCampaignsByCliente,
	2: encodeEnviosBinary,
}

// Root buckets. Every key encoding is described next to its bucket.
var (
	bucketMeta      = []byte("app.meta")      // "schema" -> u64; "secret" -> 32 bytes; "reach/"cliente -> JSON engine.ReachLock
	bucketClientes  = []byte("app.clientes")  // id -> JSON engine.Cliente
	bucketCampaigns = []byte("app.campaigns") // id -> JSON engine.Campaign
	bucketEnvios    = []byte("app.envios")    // campaign/ seq -> engine.Envio, binary (enviocodec.go; JSON before schema 3), import order
	bucketDue       = []byte("app.due")       // campaign/ unixnano|seq -> nil: retries waiting
	bucketCursors   = []byte("app.cursors")   // campaign -> u64 lowest possibly-fresh seq
	bucketInflight  = []byte("app.inflight")  // campaign 0 seq -> nil: envíos in enviando
	bucketMsgIDs    = []byte("app.msgids")    // message id -> campaign 0 seq
	bucketPhones    = []byte("app.phones")    // cliente/ phone 0 campaign 0 seq -> nil
	bucketSuppress  = []byte("app.suppress")  // cliente/ phone -> JSON suppression
	bucketCounters  = []byte("app.counters")  // campaign -> u64 per engine.States
	bucketJournal   = []byte("app.journal")   // seq -> sha256(payload) | payload JSON
	bucketImports   = []byte("app.imports")   // campaign -> u64 first staged seq (import in progress)
	bucketReplies   = []byte("app.replies")   // cliente/ seq -> JSON reply
	bucketNumbers   = []byte("app.numbers")   // cliente/ phone -> JSON number check; "chat\x00"phone -> u64 unix time of its first reply
	bucketByCliente = []byte("app.bycliente") // cliente/ campaign id -> nil (schema 2)
)

var rootBuckets = [][]byte{
	bucketMeta, bucketClientes, bucketCampaigns, bucketEnvios, bucketDue, bucketCursors,
	bucketInflight, bucketMsgIDs, bucketPhones, bucketSuppress, bucketCounters, bucketJournal, bucketImports,
	bucketReplies, bucketNumbers, bucketByCliente,
}

var (
	keySchema = []byte("schema")
	keySecret = []byte("secret")
)

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// refKey is the key of an envío in the inflight and msgids buckets.
func refKey(campaign string, seq uint64) []byte {
	k := make([]byte, 0, len(campaign)+9)
	k = append(k, campaign...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func parseRefKey(k []byte) (string, uint64, error) {
	if len(k) < 10 || k[len(k)-9] != 0 {
		return "", 0, fmt.Errorf("malformed envío key %x", k)
	}
	return string(k[:len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), nil
}

// phoneKey indexes an envío under its cliente's phone.
func phoneKey(phone, campaign string, seq uint64) []byte {
	return refKey(phone+"\x00"+campaign, seq)
}

func phonePrefix(phone, campaign string) []byte { return []byte(phone + "\x00" + campaign + "\x00") }

func parsePhoneKey(k []byte) (phone, campaign string, seq uint64, err error) {
	pc, seq, err := parseRefKey(k)
	if err != nil {
		return "", "", 0, err
	}
	phone, campaign, ok := strings.Cut(pc, "\x00")
	if !ok {
		return "", "", 0, fmt.Errorf("malformed phone key %x", k)
	}
	return phone, campaign, seq, nil
}

func dueKey(at int64, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(u64(uint64(at)), seq)
}

// sub returns the nested bucket name under root, creating it when create is set.
func sub(tx *bolt.Tx, root []byte, name string, create bool) (*bolt.Bucket, error) {
	r := tx.Bucket(root)
	if r == nil {
		return nil, fmt.Errorf("bucket %s missing", root)
	}
	if !create {
		return r.Bucket([]byte(name)), nil
	}
	b, err := r.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("bucket %s/%s: %w", root, name, err)
	}
	return b, nil
}

// indexCampaignsByCliente (schema 1 -> 2) builds the per-cliente campaign
// index, so a cliente's send loop reads its own campaigns, not every one.
func indexCampaignsByCliente(tx *bolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists(bucketByCliente)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketCampaigns).ForEach(func(k, v []byte) error {
		var c struct {
			Cliente string `json:"cliente"`
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("campaign %s: %w", k, err)
		}
		b, err := idx.CreateBucketIfNotExists([]byte(c.Cliente))
		if err != nil {
			return err
		}
		return b.Put(k, nil)
	})
}

// encodeEnviosBinary (schema 2 -> 3) rewrites every JSON envío in the
// binary form of enviocodec.go. Values already binary are left as they are.
func encodeEnviosBinary(tx *bolt.Tx) error {
	root := tx.Bucket(bucketEnvios)
	return root.ForEachBucket(func(name []byte) error {
		b := root.Bucket(name)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) == 0 || v[0] != '{' {
				continue
			}
			var e engine.Envio
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("envío %s/%x: %w", name, k, err)
			}
			data, err := appendEnvio(nil, &e)
			if err != nil {
				return fmt.Errorf("envío %s/%x: %w", name, k, err)
			}
			key := bytes.Clone(k)
			if err := b.Put(key, data); err != nil {
				return err
			}
			c.Seek(key) // bbolt: reposition a cursor after a write

		}
		return nil
	})
}

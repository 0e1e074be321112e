package devicestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
)

// ErrDeviceExists is returned by ImportSQLStore when a device of the source
// is already stored here: an import never overwrites a live session.
var ErrDeviceExists = errors.New("devicestore: device already stored")

// ImportStats counts what ImportSQLStore copied.
type ImportStats struct {
	Devices, Identities, Sessions, PreKeys, SenderKeys, SyncKeys int
	AppStateVersions, MutationMACs, Contacts, ChatSettings       int
	MessageSecrets, PrivacyTokens, BufferedEvents, LIDMappings   int
	OrphanPrivacyTokens/* rows of deleted devices, not copied */ int
}

// ImportSQLStore copies every device of a whatsmeow SQL store on SQLite (as
// kept by wuzapi and other whatsmeow-based tools; schema v8 or later), with
// all of its data and the global LID map, into this container in one bbolt
// transaction: either everything is imported or nothing. The tables are read
// in one read transaction (the device list just before it), so src may be a
// live file; stop its owner first all the same, or the two copies of the
// Signal state diverge. Run VerifyImport afterwards.
func (c *Container) ImportSQLStore(ctx context.Context, src *sql.DB) (ImportStats, error) {
	var st ImportStats
	devices, err := sqlstore.NewWithDB(src, "sqlite", c.log).GetAllDevices(ctx)
	if err != nil {
		return st, fmt.Errorf("import: read devices: %w", err)
	}
	rtx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	defer func() { _ = rtx.Rollback() }()
	err = c.db.Update(func(tx *bbolt.Tx) error {
		st = ImportStats{}
		for _, d := range devices {
			if tx.Bucket(deviceBucketName(*d.ID)) != nil {
				return fmt.Errorf("%s: %w", d.ID, ErrDeviceExists)
			}
			if err := putDeviceTx(tx, d); err != nil {
				return fmt.Errorf("device %s: %w", d.ID, err)
			}
			st.Devices++
			if err := importDeviceRows(ctx, rtx, tx, d.ID.String(), &st); err != nil {
				return fmt.Errorf("device %s: %w", d.ID, err)
			}
		}
		if err := importOrphans(ctx, rtx, &st); err != nil {
			return err
		}
		return importLIDMap(ctx, rtx, tx, &st)
	})
	if err != nil {
		return ImportStats{}, fmt.Errorf("import: %w", err)
	}
	return st, nil
}

// rows runs query with the device JID and calls scan for every row.
func rows(ctx context.Context, rtx *sql.Tx, query string, args []any, scan func(r *sql.Rows) error) error {
	rs, err := rtx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		if err := scan(rs); err != nil {
			return err
		}
	}
	return rs.Err()
}

func importDeviceRows(ctx context.Context, rtx *sql.Tx, tx *bbolt.Tx, jid string, st *ImportStats) error {
	dev := tx.Bucket(append(append([]byte(nil), devicePrefix...), jid...))
	b := func(name []byte) *bbolt.Bucket { return dev.Bucket(name) }
	arg := []any{jid}
	steps := []struct {
		table, query string
		scan         func(r *sql.Rows) error
	}{
		{"identity keys", `SELECT their_id, identity FROM whatsmeow_identity_keys WHERE our_jid=?`, func(r *sql.Rows) error {
			var addr string
			var key []byte
			if err := r.Scan(&addr, &key); err != nil {
				return err
			}
			if len(key) != 32 {
				return ErrInvalidLength
			}
			st.Identities++
			return b(subIdentities).Put([]byte(addr), encodeIdentity([32]byte(key)))
		}},
		{"sessions", `SELECT their_id, session FROM whatsmeow_sessions WHERE our_jid=?`, func(r *sql.Rows) error {
			var addr string
			var session []byte
			if err := r.Scan(&addr, &session); err != nil {
				return err
			}
			st.Sessions++
			return b(subSessions).Put([]byte(addr), encodeSession(session))
		}},
		{"prekeys", `SELECT key_id, key, uploaded FROM whatsmeow_pre_keys WHERE jid=?`, func(r *sql.Rows) error {
			var id uint32
			var key []byte
			var uploaded bool
			if err := r.Scan(&id, &key, &uploaded); err != nil {
				return err
			}
			if len(key) != 32 {
				return ErrInvalidLength
			}
			st.PreKeys++
			return b(subPreKeys).Put(u32Key(id), encodePreKey(preKeyRecord{uploaded: uploaded, priv: [32]byte(key)}))
		}},
		{"sender keys", `SELECT chat_id, sender_id, sender_key FROM whatsmeow_sender_keys WHERE our_jid=?`, func(r *sql.Rows) error {
			var group, user string
			var key []byte
			if err := r.Scan(&group, &user, &key); err != nil {
				return err
			}
			st.SenderKeys++
			return b(subSenderKeys).Put(senderKeyKey(group, user), encodeBlob(key))
		}},
		{"app state sync keys", `SELECT key_id, key_data, timestamp, fingerprint FROM whatsmeow_app_state_sync_keys WHERE jid=?`, func(r *sql.Rows) error {
			var id []byte
			var k store.AppStateSyncKey
			if err := r.Scan(&id, &k.Data, &k.Timestamp, &k.Fingerprint); err != nil {
				return err
			}
			st.SyncKeys++
			return b(subSyncKeys).Put(syncKeyKey(id), encodeSyncKey(k))
		}},
		{"app state versions", `SELECT name, version, hash FROM whatsmeow_app_state_version WHERE jid=?`, func(r *sql.Rows) error {
			var name string
			var version uint64
			var hash []byte
			if err := r.Scan(&name, &version, &hash); err != nil {
				return err
			}
			if len(hash) != 128 || name == "" {
				return ErrInvalidLength
			}
			nb, err := b(subAppState).CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			if _, err := nb.CreateBucketIfNotExists(subAppStateMACs); err != nil {
				return err
			}
			st.AppStateVersions++
			return nb.Put(keyAppStateVersion, encodeAppStateVersion(version, [128]byte(hash)))
		}},
		{"mutation MACs", `SELECT name, version, index_mac, value_mac FROM whatsmeow_app_state_mutation_macs WHERE jid=?`, func(r *sql.Rows) error {
			var name string
			var version uint64
			var idx, val []byte
			if err := r.Scan(&name, &version, &idx, &val); err != nil {
				return err
			}
			nb := b(subAppState).Bucket([]byte(name))
			if nb == nil {
				return ErrAppStateVersionMissing
			}
			if len(idx) != 32 || len(val) != 32 {
				return ErrInvalidLength
			}
			st.MutationMACs++
			return nb.Bucket(subAppStateMACs).Put(macKey(idx, version), encodeBlob(val))
		}},
		{"contacts", `SELECT their_jid, first_name, full_name, push_name, business_name, redacted_phone FROM whatsmeow_contacts WHERE our_jid=?`, func(r *sql.Rows) error {
			var their string
			var first, full, push, business, redacted sql.NullString
			if err := r.Scan(&their, &first, &full, &push, &business, &redacted); err != nil {
				return err
			}
			st.Contacts++
			ci := types.ContactInfo{FirstName: first.String, FullName: full.String, PushName: push.String, BusinessName: business.String, RedactedPhone: redacted.String}
			return b(subContacts).Put([]byte(their), encodeContact(ci))
		}},
		{"chat settings", `SELECT chat_jid, muted_until, pinned, archived FROM whatsmeow_chat_settings WHERE our_jid=?`, func(r *sql.Rows) error {
			var chat string
			var rec chatRecord
			if err := r.Scan(&chat, &rec.mutedUntil, &rec.pinned, &rec.archived); err != nil {
				return err
			}
			st.ChatSettings++
			return b(subChats).Put([]byte(chat), encodeChat(rec))
		}},
		{"message secrets", `SELECT chat_jid, sender_jid, message_id, key FROM whatsmeow_message_secrets WHERE our_jid=?`, func(r *sql.Rows) error {
			var chat, sender, id string
			var key []byte
			if err := r.Scan(&chat, &sender, &id, &key); err != nil {
				return err
			}
			st.MessageSecrets++
			return b(subMsgSecrets).Put(msgSecretKeyStr(chat, sender, id), encodeBlob(key))
		}},
		{"privacy tokens", `SELECT their_jid, token, timestamp FROM whatsmeow_privacy_tokens WHERE our_jid=?`, func(r *sql.Rows) error {
			var their string
			var rec tokenRecord
			if err := r.Scan(&their, &rec.token, &rec.ts); err != nil {
				return err
			}
			st.PrivacyTokens++
			return b(subPrivTokens).Put([]byte(their), encodeToken(rec))
		}},
		{"event buffer", `SELECT ciphertext_hash, plaintext, server_timestamp, insert_timestamp FROM whatsmeow_event_buffer WHERE our_jid=?`, func(r *sql.Rows) error {
			var hash []byte
			var rec eventRecord
			if err := r.Scan(&hash, &rec.plaintext, &rec.serverS, &rec.insertMS); err != nil {
				return err
			}
			if len(hash) != 32 {
				return ErrInvalidLength
			}
			st.BufferedEvents++
			if err := b(subEventBuffer).Put(hash, encodeEvent(rec)); err != nil {
				return err
			}
			return b(subEventByTime).Put(eventTimeKey(rec.insertMS, hash), []byte{})
		}},
	}
	for _, s := range steps {
		if err := rows(ctx, rtx, s.query, arg, s.scan); err != nil {
			return fmt.Errorf("%s: %w", s.table, err)
		}
	}
	return nil
}

// importOrphans counts privacy tokens of devices that no longer exist: they
// outlived their device in SQL (no foreign key) and are not copied.
func importOrphans(ctx context.Context, rtx *sql.Tx, st *ImportStats) error {
	err := rtx.QueryRowContext(ctx, `SELECT COUNT(*) FROM whatsmeow_privacy_tokens WHERE our_jid NOT IN (SELECT jid FROM whatsmeow_device)`).Scan(&st.OrphanPrivacyTokens)
	if err != nil {
		return fmt.Errorf("orphan privacy tokens: %w", err)
	}
	return nil
}

// importLIDMap merges the source's LID map into the global one, keeping it 1:1.
func importLIDMap(ctx context.Context, rtx *sql.Tx, tx *bbolt.Tx, st *ImportStats) error {
	err := rows(ctx, rtx, `SELECT lid, pn FROM whatsmeow_lid_map`, nil, func(r *sql.Rows) error {
		var lid, pn string
		if err := r.Scan(&lid, &pn); err != nil {
			return err
		}
		st.LIDMappings++
		return putMappingTx(tx, lid, pn)
	})
	if err != nil {
		return fmt.Errorf("lid map: %w", err)
	}
	return nil
}

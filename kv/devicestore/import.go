package devicestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// ErrDeviceExists is returned by ImportSQLStore when a device of the source
// is already stored here: an import never overwrites a live session.
var ErrDeviceExists = errors.New("devicestore: device already stored")

// ImportStats counts what ImportSQLStore copied.
type ImportStats struct {
	// SourceVersion is the source's sqlstore schema version
	// (whatsmeow_version; 0 if it has none).
	SourceVersion int

	Devices, Identities, Sessions, PreKeys, SenderKeys, SyncKeys int
	AppStateVersions, MutationMACs, Contacts, ChatSettings       int
	MessageSecrets, PrivacyTokens, BufferedEvents, LIDMappings   int
	OutgoingEvents, NCTSalts                                     int
	OrphanPrivacyTokens/* rows of deleted devices, not copied */ int
}

// ErrSourceSchema is returned by ImportSQLStore for a source older than
// sqlstore schema v8 (whatsmeow before the LID map), which it cannot read.
var ErrSourceSchema = errors.New("devicestore: sqlstore schema too old to import (need v8 or later)")

// ImportSQLStore copies every device of a whatsmeow SQL store on SQLite (as
// kept by wuzapi and other whatsmeow-based tools), with all of its data and
// the global LID map, into this container in one bbolt transaction: either
// everything is imported or nothing. The source may be of any sqlstore
// schema from v8 (whatsmeow 2025) to v15 (2026-08): it is read as it is,
// never upgraded or written, and what an older schema lacks (v9 event
// buffer, v10 LID migration timestamp, v11 redacted phones, v12 sender
// timestamps, v13 retry buffer, v14 NCT salt, v15 companion meta nonce) is
// imported as sqlstore's migrations would default it. Everything is read in
// one read transaction, so src may be a live file; stop its owner first all
// the same, or the two copies of the Signal state diverge. Run VerifyImport
// afterwards.
func (c *Container) ImportSQLStore(ctx context.Context, src *sql.DB) (ImportStats, error) {
	var st ImportStats
	rtx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	defer func() { _ = rtx.Rollback() }()
	sch, err := readSQLSchema(ctx, rtx)
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	if !sch.has("whatsmeow_lid_map", "lid") || !sch.has("whatsmeow_device", "lid") {
		return st, fmt.Errorf("import: source schema v%d: %w", sch.version, ErrSourceSchema)
	}
	devices, err := readSQLDevices(ctx, rtx, sch)
	if err != nil {
		return st, fmt.Errorf("import: read devices: %w", err)
	}
	err = c.db.Update(func(tx *bbolt.Tx) error {
		st = ImportStats{SourceVersion: sch.version}
		for _, d := range devices {
			if tx.Bucket(deviceBucketName(*d.ID)) != nil {
				return fmt.Errorf("%s: %w", d.ID, ErrDeviceExists)
			}
			if err := putDeviceTx(tx, d); err != nil {
				return fmt.Errorf("device %s: %w", d.ID, err)
			}
			st.Devices++
			if err := importDeviceRows(ctx, rtx, tx, sch, d.ID.String(), &st); err != nil {
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

func importDeviceRows(ctx context.Context, rtx *sql.Tx, tx *bbolt.Tx, sch sqlSchema, jid string, st *ImportStats) error {
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
		{"contacts", `SELECT their_jid, first_name, full_name, push_name, business_name, ` + sch.col("whatsmeow_contacts", "redacted_phone", "NULL") + ` FROM whatsmeow_contacts WHERE our_jid=?`, func(r *sql.Rows) error {
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
		{"privacy tokens", `SELECT their_jid, token, timestamp, ` + sch.col("whatsmeow_privacy_tokens", "sender_timestamp", "NULL") + ` FROM whatsmeow_privacy_tokens WHERE our_jid=?`, func(r *sql.Rows) error {
			var their string
			var rec tokenRecord
			var senderTS sql.NullInt64
			if err := r.Scan(&their, &rec.token, &rec.ts, &senderTS); err != nil {
				return err
			}
			rec.senderTS, rec.hasSenderTS = senderTS.Int64, senderTS.Valid
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

		{"retry buffer", `SELECT chat_jid, message_id, format, plaintext, timestamp FROM whatsmeow_retry_buffer WHERE our_jid=?`, func(r *sql.Rows) error {
			var chat, id string
			var rec outgoingRecord
			if err := r.Scan(&chat, &id, &rec.format, &rec.plaintext, &rec.insertMS); err != nil {
				return err
			}
			if rec.plaintext == nil {
				rec.plaintext = []byte{}
			}
			k := retryBufKey(chat, id)
			st.OutgoingEvents++
			if err := b(subRetryBuf).Put(k, encodeOutgoing(rec)); err != nil {
				return err
			}
			return b(subRetryByTime).Put(eventTimeKey(rec.insertMS, k), []byte{})
		}},
		{"nct salt", `SELECT salt FROM whatsmeow_nct_salt WHERE our_jid=?`, func(r *sql.Rows) error {
			var salt []byte
			if err := r.Scan(&salt); err != nil {
				return err
			}
			if salt == nil {
				salt = []byte{}
			}
			st.NCTSalts++
			return dev.Put(keyNCTSalt, encodeBlob(salt))
		}},
	}
	tables := map[string]string{"event buffer": "whatsmeow_event_buffer", "retry buffer": "whatsmeow_retry_buffer", "nct salt": "whatsmeow_nct_salt"}
	for _, s := range steps {
		if t, ok := tables[s.table]; ok && !sch.hasTable(t) {
			continue // the source's schema is older than the table
		}
		if err := queryEach(ctx, rtx, s.query, arg, s.scan); err != nil {
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
	err := queryEach(ctx, rtx, `SELECT lid, pn FROM whatsmeow_lid_map`, nil, func(r *sql.Rows) error {
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

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqlSchema is what a source database holds of sqlstore's schema, read from
// SQLite's catalogue (never written): its tables and their columns, and the
// version whatsmeow recorded.
type sqlSchema struct {
	version int
	tables  map[string]map[string]bool
}

func readSQLSchema(ctx context.Context, q querier) (sqlSchema, error) {
	sch := sqlSchema{tables: map[string]map[string]bool{}}
	var names []string
	err := queryEach(ctx, q, `SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'whatsmeow\_%' ESCAPE '\'`, nil, func(r *sql.Rows) error {
		var n string
		if err := r.Scan(&n); err != nil {
			return err
		}
		names = append(names, n)
		return nil
	})
	if err != nil {
		return sch, fmt.Errorf("read source schema: %w", err)
	}
	for _, n := range names {
		cols := map[string]bool{}
		err := queryEach(ctx, q, `SELECT name FROM pragma_table_info(?)`, []any{n}, func(r *sql.Rows) error {
			var c string
			if err := r.Scan(&c); err != nil {
				return err
			}
			cols[c] = true
			return nil
		})
		if err != nil {
			return sch, fmt.Errorf("read source schema of %s: %w", n, err)
		}
		sch.tables[n] = cols
	}
	if sch.has("whatsmeow_version", "version") {
		var v sql.NullInt64
		err := q.QueryRowContext(ctx, `SELECT version FROM whatsmeow_version LIMIT 1`).Scan(&v)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return sch, fmt.Errorf("read source schema version: %w", err)
		}
		sch.version = int(v.Int64)
	}
	return sch, nil
}

func (s sqlSchema) hasTable(table string) bool { return s.tables[table] != nil }
func (s sqlSchema) has(table, col string) bool { return s.tables[table][col] }

// col is col when the source has it, else the SQL default its migration
// would give existing rows.
func (s sqlSchema) col(table, col, def string) string {
	if s.has(table, col) {
		return col
	}
	return def
}

// current says whether the source has everything today's sqlstore reads, so
// that sqlstore's own getters work on it.
func (s sqlSchema) current() bool {
	return s.has("whatsmeow_device", "companion_meta_nonce") && s.has("whatsmeow_device", "lid_migration_ts") &&
		s.has("whatsmeow_contacts", "redacted_phone") && s.has("whatsmeow_privacy_tokens", "sender_timestamp") &&
		s.hasTable("whatsmeow_event_buffer") && s.hasTable("whatsmeow_retry_buffer") && s.hasTable("whatsmeow_nct_salt")
}

func queryEach(ctx context.Context, q querier, query string, args []any, scan func(r *sql.Rows) error) error {
	rs, err := q.QueryContext(ctx, query, args...)
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

// readSQLDevices reads the source's devices as sqlstore's scanDevice does,
// from the columns the source has (sqlstore's GetAllDevices selects every
// column of its latest schema and fails on an older file).
func readSQLDevices(ctx context.Context, q querier, sch sqlSchema) ([]*store.Device, error) {
	query := `SELECT jid, lid, registration_id, noise_key, identity_key,
	       signed_pre_key, signed_pre_key_id, signed_pre_key_sig,
	       adv_key, adv_details, adv_account_sig, adv_account_sig_key, adv_device_sig,
	       platform, business_name, push_name, ` + sch.col("whatsmeow_device", "facebook_uuid", "NULL") + `, ` +
		sch.col("whatsmeow_device", "lid_migration_ts", "0") + `, ` + sch.col("whatsmeow_device", "companion_meta_nonce", "''") + `
	FROM whatsmeow_device ORDER BY jid`
	var out []*store.Device
	err := queryEach(ctx, q, query, nil, func(r *sql.Rows) error {
		var d store.Device
		var jidStr string
		var lid sql.NullString
		var noise, identity, spk, spkSig []byte
		var acc waAdv.ADVSignedDeviceIdentity
		var fb uuid.NullUUID
		d.SignedPreKey = &keys.PreKey{}
		err := r.Scan(&jidStr, &lid, &d.RegistrationID, &noise, &identity, &spk, &d.SignedPreKey.KeyID, &spkSig,
			&d.AdvSecretKey, &acc.Details, &acc.AccountSignature, &acc.AccountSignatureKey, &acc.DeviceSignature,
			&d.Platform, &d.BusinessName, &d.PushName, &fb, &d.LIDMigrationTimestamp, &d.CompanionMetaNonce)
		if err != nil {
			return err
		}
		if len(noise) != 32 || len(identity) != 32 || len(spk) != 32 || len(spkSig) != 64 {
			return fmt.Errorf("device %s: %w", jidStr, ErrInvalidLength)
		}
		id, err := types.ParseJID(jidStr)
		if err != nil {
			return fmt.Errorf("device jid %q: %w", jidStr, err)
		}
		d.ID = &id
		if lid.String != "" {
			if d.LID, err = types.ParseJID(lid.String); err != nil {
				return fmt.Errorf("device %s lid %q: %w", jidStr, lid.String, err)
			}
		}
		d.NoiseKey = keys.NewKeyPairFromPrivateKey([32]byte(noise))
		d.IdentityKey = keys.NewKeyPairFromPrivateKey([32]byte(identity))
		d.SignedPreKey.KeyPair = *keys.NewKeyPairFromPrivateKey([32]byte(spk))
		d.SignedPreKey.Signature = (*[64]byte)(spkSig)
		d.Account = &acc
		d.FacebookUUID = fb.UUID
		out = append(out, &d)
		return nil
	})
	return out, err
}

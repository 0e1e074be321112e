package devicestore

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// ErrVerifyMismatch is returned by VerifyImport when a getter of this store
// answers differently from the SQL store it was imported from.
var ErrVerifyMismatch = errors.New("devicestore: imported data differs from the source")

// VerifyImport checks an ImportSQLStore: for every device of src and every
// row it holds, the getters whatsmeow uses (the ones the conformance suite
// tests) must answer the same on both stores: the device itself, identities,
// sessions, prekeys and the uploaded count, sender keys, sync keys and the
// latest one, app-state versions and mutation MACs, contacts, chat settings,
// message secrets, privacy tokens with their sender timestamps, buffered
// events, kept outgoing messages, the NCT salt and the LID map.
//
// The source is asked through sqlstore's own getters, which read today's
// schema (v15). A source of an older schema is first copied (VACUUM INTO a
// temporary file, through src's own driver) and the copy upgraded by
// sqlstore's own migrations: what the import defaulted is then checked
// against what whatsmeow itself would make of the file. src is never
// written.
func (c *Container) VerifyImport(ctx context.Context, src *sql.DB) error {
	sch, err := readSQLSchema(ctx, src)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if !sch.current() {
		cp, cleanup, err := upgradedCopy(ctx, src, c.log)
		if err != nil {
			return fmt.Errorf("verify: source schema v%d: %w", sch.version, err)
		}
		defer cleanup()
		src = cp
	}
	sc := sqlstore.NewWithDB(src, "sqlite", c.log)
	devices, err := sc.GetAllDevices(ctx)
	if err != nil {
		return fmt.Errorf("verify: read devices: %w", err)
	}
	v := &verifier{}
	for _, want := range devices {
		got, err := c.GetDevice(ctx, *want.ID)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if got == nil {
			v.fail("device %s missing", want.ID)
			continue
		}
		v.device(want, got)
		if err := v.rows(ctx, src, want, got); err != nil {
			return fmt.Errorf("verify %s: %w", want.ID, err)
		}
	}
	if err := v.lidMap(ctx, src, sc.LIDMap, c.LIDMap); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if len(v.diffs) > 0 {
		return fmt.Errorf("%w: %d differences, first: %s", ErrVerifyMismatch, len(v.diffs), v.diffs[0])
	}
	return nil
}

type verifier struct{ diffs []string }

func (v *verifier) fail(format string, args ...any) {
	v.diffs = append(v.diffs, fmt.Sprintf(format, args...))
}

// same compares two getter answers (values and errors).
func (v *verifier) same(what string, want, got any, werr, gerr error) {
	if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(want, got) {
		v.fail("%s: source %v (err %v), imported %v (err %v)", what, want, werr, got, gerr)
	}
}

func (v *verifier) device(want, got *store.Device) {
	pairs := []struct {
		what      string
		want, got any
	}{
		{"LID", want.LID, got.LID},
		{"registration id", want.RegistrationID, got.RegistrationID},
		{"noise key", *want.NoiseKey, *got.NoiseKey},
		{"identity key", *want.IdentityKey, *got.IdentityKey},
		{"signed prekey", [3]any{want.SignedPreKey.KeyPair, want.SignedPreKey.KeyID, *want.SignedPreKey.Signature}, [3]any{got.SignedPreKey.KeyPair, got.SignedPreKey.KeyID, *got.SignedPreKey.Signature}},
		{"adv secret", want.AdvSecretKey, got.AdvSecretKey},
		{"account", [4][]byte{want.Account.Details, want.Account.AccountSignature, want.Account.AccountSignatureKey, want.Account.DeviceSignature},
			[4][]byte{got.Account.Details, got.Account.AccountSignature, got.Account.AccountSignatureKey, got.Account.DeviceSignature}},
		{"names", [3]string{want.Platform, want.BusinessName, want.PushName}, [3]string{got.Platform, got.BusinessName, got.PushName}},
		{"lid migration ts", want.LIDMigrationTimestamp, got.LIDMigrationTimestamp},
		{"facebook uuid", want.FacebookUUID, got.FacebookUUID},
		{"companion meta nonce", want.CompanionMetaNonce, got.CompanionMetaNonce},
	}
	for _, p := range pairs {
		v.same(want.ID.String()+" "+p.what, p.want, p.got, nil, nil)
	}
}

func (v *verifier) rows(ctx context.Context, src *sql.DB, want, got *store.Device) error {
	jid := want.ID.String()
	q := func(query string, scan func(r *sql.Rows) error) error {
		rs, err := src.QueryContext(ctx, query, jid)
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
	checks := []struct {
		query string
		scan  func(r *sql.Rows) error
	}{
		{`SELECT their_id, identity FROM whatsmeow_identity_keys WHERE our_jid=?`, func(r *sql.Rows) error {
			var addr string
			var key []byte
			if err := r.Scan(&addr, &key); err != nil {
				return err
			}
			if len(key) != 32 {
				v.fail("identity %s: source key of %d bytes", addr, len(key))
				return nil
			}
			k := [32]byte(key)
			w, werr := want.Identities.IsTrustedIdentity(ctx, addr, k)
			g, gerr := got.Identities.IsTrustedIdentity(ctx, addr, k)
			v.same("identity "+addr, w, g, werr, gerr)
			k[0] ^= 0xff
			w, werr = want.Identities.IsTrustedIdentity(ctx, addr, k)
			g, gerr = got.Identities.IsTrustedIdentity(ctx, addr, k)
			v.same("identity (other key) "+addr, w, g, werr, gerr)
			return nil
		}},
		{`SELECT their_id FROM whatsmeow_sessions WHERE our_jid=?`, func(r *sql.Rows) error {
			var addr string
			if err := r.Scan(&addr); err != nil {
				return err
			}
			w, werr := want.Sessions.GetSession(ctx, addr)
			g, gerr := got.Sessions.GetSession(ctx, addr)
			v.same("session "+addr, w, g, werr, gerr)
			wh, werr := want.Sessions.HasSession(ctx, addr)
			gh, gerr := got.Sessions.HasSession(ctx, addr)
			v.same("has session "+addr, wh, gh, werr, gerr)
			return nil
		}},
		{`SELECT key_id FROM whatsmeow_pre_keys WHERE jid=?`, func(r *sql.Rows) error {
			var id uint32
			if err := r.Scan(&id); err != nil {
				return err
			}
			w, werr := want.PreKeys.GetPreKey(ctx, id)
			g, gerr := got.PreKeys.GetPreKey(ctx, id)
			v.same(fmt.Sprintf("prekey %d", id), w, g, werr, gerr)
			return nil
		}},
		{`SELECT chat_id, sender_id FROM whatsmeow_sender_keys WHERE our_jid=?`, func(r *sql.Rows) error {
			var group, user string
			if err := r.Scan(&group, &user); err != nil {
				return err
			}
			w, werr := want.SenderKeys.GetSenderKey(ctx, group, user)
			g, gerr := got.SenderKeys.GetSenderKey(ctx, group, user)
			v.same("sender key "+group+" "+user, w, g, werr, gerr)
			return nil
		}},
		{`SELECT key_id FROM whatsmeow_app_state_sync_keys WHERE jid=?`, func(r *sql.Rows) error {
			var id []byte
			if err := r.Scan(&id); err != nil {
				return err
			}
			w, werr := want.AppStateKeys.GetAppStateSyncKey(ctx, id)
			g, gerr := got.AppStateKeys.GetAppStateSyncKey(ctx, id)
			v.same(fmt.Sprintf("sync key %x", id), w, g, werr, gerr)
			return nil
		}},
		{`SELECT name FROM whatsmeow_app_state_version WHERE jid=?`, func(r *sql.Rows) error {
			var name string
			if err := r.Scan(&name); err != nil {
				return err
			}
			wv, wh, werr := want.AppState.GetAppStateVersion(ctx, name)
			gv, gh, gerr := got.AppState.GetAppStateVersion(ctx, name)
			v.same("app state version "+name, [2]any{wv, wh}, [2]any{gv, gh}, werr, gerr)
			return nil
		}},
		{`SELECT DISTINCT name, index_mac FROM whatsmeow_app_state_mutation_macs WHERE jid=?`, func(r *sql.Rows) error {
			var name string
			var idx []byte
			if err := r.Scan(&name, &idx); err != nil {
				return err
			}
			w, werr := want.AppState.GetAppStateMutationMAC(ctx, name, idx)
			g, gerr := got.AppState.GetAppStateMutationMAC(ctx, name, idx)
			v.same(fmt.Sprintf("mutation MAC %s %x", name, idx), w, g, werr, gerr)
			return nil
		}},
		{`SELECT chat_jid FROM whatsmeow_chat_settings WHERE our_jid=?`, func(r *sql.Rows) error {
			var chat types.JID
			if err := r.Scan(&chat); err != nil {
				return err
			}
			w, werr := want.ChatSettings.GetChatSettings(ctx, chat)
			g, gerr := got.ChatSettings.GetChatSettings(ctx, chat)
			v.same("chat settings "+chat.String(), w, g, werr, gerr)
			return nil
		}},
		{`SELECT chat_jid, sender_jid, message_id, key FROM whatsmeow_message_secrets WHERE our_jid=?`, func(r *sql.Rows) error {
			// With rows under both a PN and a LID, sqlstore's answer is
			// unspecified; the imported store must return this very row.
			var chat, sender types.JID
			var id string
			var key []byte
			if err := r.Scan(&chat, &sender, &id, &key); err != nil {
				return err
			}
			g, gs, gerr := got.MsgSecrets.GetMessageSecret(ctx, chat, sender, id)
			v.same("message secret "+id, [2]any{key, sender}, [2]any{g, gs}, nil, gerr)
			return nil
		}},
		{`SELECT their_jid FROM whatsmeow_privacy_tokens WHERE our_jid=?`, func(r *sql.Rows) error {
			var user types.JID
			if err := r.Scan(&user); err != nil {
				return err
			}
			w, werr := want.PrivacyTokens.GetPrivacyToken(ctx, user)
			g, gerr := got.PrivacyTokens.GetPrivacyToken(ctx, user)
			v.same("privacy token "+user.String(), w, g, werr, gerr)
			return nil
		}},
		{`SELECT ciphertext_hash FROM whatsmeow_event_buffer WHERE our_jid=?`, func(r *sql.Rows) error {
			var hash []byte
			if err := r.Scan(&hash); err != nil {
				return err
			}
			if len(hash) != 32 {
				v.fail("buffered event %x: source hash of %d bytes", hash, len(hash))
				return nil
			}
			w, werr := want.EventBuffer.GetBufferedEvent(ctx, [32]byte(hash))
			g, gerr := got.EventBuffer.GetBufferedEvent(ctx, [32]byte(hash))
			v.same(fmt.Sprintf("buffered event %x", hash), w, g, werr, gerr)
			return nil
		}},
		{`SELECT chat_jid, message_id FROM whatsmeow_retry_buffer WHERE our_jid=?`, func(r *sql.Rows) error {
			var chat types.JID
			var id string
			if err := r.Scan(&chat, &id); err != nil {
				return err
			}
			wf, wp, werr := want.EventBuffer.GetOutgoingEvent(ctx, chat, types.EmptyJID, id)
			gf, gp, gerr := got.EventBuffer.GetOutgoingEvent(ctx, chat, types.EmptyJID, id)
			v.same("outgoing event "+chat.String()+" "+id, [2]any{wf, wp}, [2]any{gf, gp}, werr, gerr)
			return nil
		}},
	}
	for _, c := range checks {
		if err := q(c.query, c.scan); err != nil {
			return err
		}
	}
	ws, werr := want.NCTSalt.GetNCTSalt(ctx)
	gs, gerr := got.NCTSalt.GetNCTSalt(ctx)
	v.same("nct salt", ws, gs, werr, gerr)
	wk, werr := allSyncKeys(ctx, want)
	gk, gerr := allSyncKeys(ctx, got)
	v.same("all sync keys", wk, gk, werr, gerr)
	wn, werr := want.PreKeys.UploadedPreKeyCount(ctx)
	gn, gerr := got.PreKeys.UploadedPreKeyCount(ctx)
	v.same("uploaded prekey count", wn, gn, werr, gerr)
	wc, werr := want.Contacts.GetAllContacts(ctx)
	gc, gerr := got.Contacts.GetAllContacts(ctx)
	v.same("all contacts", wc, gc, werr, gerr)
	// Latest sync key: ties on the timestamp are unspecified in SQL, so
	// compare the timestamps of the keys each store picks.
	wl, werr := latestSyncKeyTS(ctx, want)
	gl, gerr := latestSyncKeyTS(ctx, got)
	v.same("latest sync key timestamp", wl, gl, werr, gerr)
	return nil
}

// allSyncKeys is GetAllAppStateSyncKeys with equal timestamps (unspecified
// order in SQL) ordered by data.
func allSyncKeys(ctx context.Context, d *store.Device) ([]store.AppStateSyncKey, error) {
	ks, err := d.AppStateKeys.GetAllAppStateSyncKeys(ctx)
	out := make([]store.AppStateSyncKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, *k)
	}
	slices.SortStableFunc(out, func(a, b store.AppStateSyncKey) int {
		return cmp.Or(cmp.Compare(b.Timestamp, a.Timestamp), bytes.Compare(a.Data, b.Data))
	})
	return out, err
}

// upgradedCopy snapshots src (VACUUM INTO, a read) into a temporary file,
// opens it with src's driver and upgrades it with sqlstore's migrations.
func upgradedCopy(ctx context.Context, src *sql.DB, log waLog.Logger) (*sql.DB, func(), error) {
	dir, err := os.MkdirTemp("", "leadmaster-verify-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	path := filepath.Join(dir, "copy.db")
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("copy source: %w", err)
	}
	db := sql.OpenDB(dsnConnector{dsn: "file:" + path, drv: src.Driver()})
	db.SetMaxOpenConns(1) // the foreign_keys pragma is per connection
	closeAll := func() { _ = db.Close(); cleanup() }
	if _, err := db.ExecContext(ctx, `PRAGMA foreign_keys = ON`); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("open copy: %w", err)
	}
	if err := sqlstore.NewWithDB(db, "sqlite", log).Upgrade(ctx); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("upgrade copy: %w", err)
	}
	db.SetMaxOpenConns(0) // verification reads with a query open while it calls getters
	return db, closeAll, nil
}

// dsnConnector opens dsn with a driver that is already loaded.
type dsnConnector struct {
	dsn string
	drv driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

func latestSyncKeyTS(ctx context.Context, d *store.Device) (int64, error) {
	id, err := d.AppStateKeys.GetLatestAppStateSyncKeyID(ctx)
	if err != nil || id == nil {
		return -1, err
	}
	k, err := d.AppStateKeys.GetAppStateSyncKey(ctx, id)
	if err != nil || k == nil {
		return -1, err
	}
	return k.Timestamp, nil
}

func (v *verifier) lidMap(ctx context.Context, src *sql.DB, want, got store.LIDStore) error {
	rs, err := src.QueryContext(ctx, `SELECT lid, pn FROM whatsmeow_lid_map`)
	if err != nil {
		return fmt.Errorf("lid map: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var lid, pn string
		if err := rs.Scan(&lid, &pn); err != nil {
			return err
		}
		l, p := types.NewJID(lid, types.HiddenUserServer), types.NewJID(pn, types.DefaultUserServer)
		w, werr := want.GetLIDForPN(ctx, p)
		g, gerr := got.GetLIDForPN(ctx, p)
		v.same("LID for "+pn, w, g, werr, gerr)
		w, werr = want.GetPNForLID(ctx, l)
		g, gerr = got.GetPNForLID(ctx, l)
		v.same("PN for "+lid, w, g, werr, gerr)
	}
	return rs.Err()
}

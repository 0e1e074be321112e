package devicestore_test

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"leadmaster/kv/devicestore"
	"leadmaster/kv/devicestore/sqlimport"
)

// fillRich writes through whatsmeow's own API what a used session holds.
func fillRich(t *testing.T, d *store.Device, n int) {
	t.Helper()
	fillDevice(t, d)
	ks, err := d.PreKeys.GetOrGenPreKeys(ctx, 40)
	mustOK(t, err)
	mustOK(t, d.PreKeys.MarkPreKeysAsUploaded(ctx, ks[24].KeyID))
	_, err = d.PreKeys.GenOnePreKey(ctx)
	mustOK(t, err)
	mustOK(t, d.PreKeys.RemovePreKey(ctx, 2))
	sessions := map[string][]byte{}
	for i := range 30 {
		sessions[fmt.Sprintf("%d%d:%d", n, i, i%3)] = fmt.Appendf(nil, "session %d %d", n, i)
		mustOK(t, d.Identities.PutIdentity(ctx, fmt.Sprintf("%d%d:%d", n, i, i%3), [32]byte{byte(i), byte(n)}))
		mustOK(t, d.SenderKeys.PutSenderKey(ctx, fmt.Sprintf("g%d@g.us", i%4), fmt.Sprintf("%d%d:0", n, i), []byte{byte(i)}))
	}
	sessions["nil:0"] = nil
	mustOK(t, d.Sessions.PutManySessions(ctx, sessions))
	for i := range 5 {
		mustOK(t, d.AppStateKeys.PutAppStateSyncKey(ctx, []byte{byte(i), 1}, store.AppStateSyncKey{Data: []byte{byte(i)}, Fingerprint: []byte("fp"), Timestamp: int64(100 + i)}))
	}
	for v := uint64(4); v <= 6; v++ {
		mustOK(t, d.AppState.PutAppStateVersion(ctx, "critical_block", v, [128]byte{byte(v)}))
		mustOK(t, d.AppState.PutAppStateMutationMACs(ctx, "critical_block", v, []store.AppStateMutationMAC{
			{IndexMAC: fill(32, 1), ValueMAC: fill(32, byte(v))}, {IndexMAC: fill(32, byte(10*v)), ValueMAC: fill(32, 7)},
		}))
	}
	mustOK(t, d.Contacts.PutAllContactNames(ctx, []store.ContactEntry{{JID: jid("9@s.whatsapp.net"), FirstName: "N", FullName: "Nine"}}))
	mustOK(t, d.Contacts.PutManyRedactedPhones(ctx, []store.RedactedPhoneEntry{{JID: jid("90@lid"), RedactedPhone: "+9**"}}))
	_, _, err = d.Contacts.PutBusinessName(ctx, jid("9@s.whatsapp.net"), "Nine Ltd")
	mustOK(t, err)
	mustOK(t, d.ChatSettings.PutMutedUntil(ctx, jid("9@s.whatsapp.net"), store.MutedForever))
	mustOK(t, d.ChatSettings.PutArchived(ctx, jid("g1@g.us"), true))
	mustOK(t, d.MsgSecrets.PutMessageSecret(ctx, jid("g1@g.us"), jid("90@lid"), "POLL", []byte("poll secret")))
	mustOK(t, d.PrivacyTokens.PutPrivacyTokens(ctx,
		store.PrivacyToken{User: jid("90@lid"), Token: []byte("lt"), Timestamp: time.Unix(500, 0), SenderTimestamp: time.Unix(450, 0)},
		store.PrivacyToken{User: jid("91@lid"), Token: []byte("history"), Timestamp: time.Unix(501, 0), SenderTimestamp: time.Unix(0, 0)},
		store.PrivacyToken{User: jid("92@lid"), Token: []byte("no sender"), Timestamp: time.Unix(502, 0)}))
	mustOK(t, d.EventBuffer.AddOutgoingEvent(ctx, jid("90@lid"), "OUT1", "wa", []byte("kept for retries")))
	mustOK(t, d.EventBuffer.AddOutgoingEvent(ctx, jid("g1@g.us"), "OUT2", "fb", []byte("group message")))
	mustOK(t, d.NCTSalt.PutNCTSalt(ctx, fmt.Appendf(nil, "salt %d", n)))
	d.CompanionMetaNonce = fmt.Sprint("nonce ", n)
	mustOK(t, d.EventBuffer.PutBufferedEvent(ctx, [32]byte{7, byte(n)}, []byte("handled"), time.Unix(600, 0)))
	mustOK(t, d.EventBuffer.ClearBufferedEventPlaintext(ctx, [32]byte{7, byte(n)}))
	mustOK(t, d.LIDs.PutManyLIDMappings(ctx, []store.LIDMapping{{LID: jid("90@lid"), PN: jid("9@s.whatsapp.net")}, {LID: jid(fmt.Sprintf("%d0@lid", n)), PN: jid(fmt.Sprintf("%d@s.whatsapp.net", n))}}))
	d.PushName, d.Platform = fmt.Sprint("push ", n), "android"
	d.LID = types.NewJID(fmt.Sprintf("%d77", n), types.HiddenUserServer)
	mustOK(t, d.Save(ctx))
}

// The migration: a sqlstore file filled through whatsmeow's API is moved
// into the bbolt file; every getter answers the same afterwards, also after
// a restart, and the moved device goes on where the SQL one left off. The
// source is either a closed file in SQLite's default rollback-journal mode or
// a WAL-mode file still open by its owner (recent commits in its -wal file).
func TestImport_SQLStoreFileMovesEveryDevice(t *testing.T) {
	for _, tc := range []struct {
		name string
		wal  bool
	}{{"ClosedRollbackJournal", false}, {"LiveWAL", true}} {
		t.Run(tc.name, func(t *testing.T) { testImport(t, tc.wal) })
	}
}

func testImport(t *testing.T, wal bool) {
	sqlDir := t.TempDir()
	src := openSQL(t, sqlDir)
	if wal {
		var mode string
		mustOK(t, src.sql.QueryRow(`PRAGMA journal_mode=WAL`).Scan(&mode))
		eq(t, "journal mode", mode, "wal")
	}
	for i, j := range []types.JID{dev1, dev2} {
		d := src.c.NewDevice()
		d.ID, d.Account = &j, testAccount()
		mustOK(t, src.c.PutDevice(ctx, d))
		fillRich(t, d, i+1)
	}
	gone := types.NewADJID("113", 0, 1) // deleted device: its privacy token is an orphan in SQL
	d := src.c.NewDevice()
	d.ID, d.Account = &gone, testAccount()
	mustOK(t, src.c.PutDevice(ctx, d))
	mustOK(t, d.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: jid("1@s.whatsapp.net"), Token: []byte("x"), Timestamp: time.Unix(1, 0)}))
	mustOK(t, d.Delete(ctx))
	if !wal {
		src.close()
	}

	boltDir := t.TempDir()
	db := mustOpenBolt(t, filepath.Join(boltDir, "app.db"))
	dst, err := devicestore.New(db, nil)
	mustOK(t, err)
	st, err := sqlimport.ImportFile(ctx, filepath.Join(sqlDir, "wa.db"), dst)
	mustOK(t, err)
	t.Logf("imported: %+v", st)
	eq(t, "stats", [9]int{st.SourceVersion, st.Devices, st.Sessions, st.PreKeys, st.MutationMACs, st.LIDMappings, st.OrphanPrivacyTokens, st.OutgoingEvents, st.NCTSalts},
		[9]int{15, 2, 2 * 32, 2 * 40, 2 * 7, 4, 1, 2 * 3, 2})

	// Importing again must not overwrite the now-live sessions.
	_, err = sqlimport.ImportFile(ctx, filepath.Join(sqlDir, "wa.db"), dst)
	if !errors.Is(err, devicestore.ErrDeviceExists) {
		t.Fatalf("second import = %v, want ErrDeviceExists", err)
	}
	checkBolt(t, db)
	mustOK(t, db.Close())
	if wal {
		src.close()
	}

	// After a restart of both, every getter still answers the same.
	src = openSQL(t, sqlDir)
	defer src.close()
	db = mustOpenBolt(t, filepath.Join(boltDir, "app.db"))
	defer db.Close()
	dst, err = devicestore.New(db, nil)
	mustOK(t, err)
	srcDB := sqlDB(t, sqlDir)
	mustOK(t, dst.VerifyImport(ctx, srcDB))
	// Verification notices a difference in any of them.
	tampered, err := dst.GetDevice(ctx, dev1)
	mustOK(t, err)
	for _, tc := range []struct {
		name            string
		tamper, restore func() error
	}{
		{"session", func() error { return tampered.Sessions.PutSession(ctx, "10:0", []byte("tampered")) },
			func() error { return tampered.Sessions.PutSession(ctx, "10:0", []byte("session 1 0")) }},
		{"nct salt", func() error { return tampered.NCTSalt.PutNCTSalt(ctx, []byte("tampered")) },
			func() error { return tampered.NCTSalt.PutNCTSalt(ctx, []byte("salt 1")) }},
		{"outgoing event", func() error {
			return tampered.EventBuffer.AddOutgoingEvent(ctx, jid("90@lid"), "OUT1", "fb", []byte("kept for retries"))
		},
			func() error {
				return tampered.EventBuffer.AddOutgoingEvent(ctx, jid("90@lid"), "OUT1", "wa", []byte("kept for retries"))
			}},
		{"companion meta nonce", func() error { tampered.CompanionMetaNonce = "tampered"; return tampered.Save(ctx) },
			func() error { tampered.CompanionMetaNonce = "nonce 1"; return tampered.Save(ctx) }},
		{"sender timestamp", func() error {
			return tampered.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: jid("92@lid"), Token: []byte("no sender"), Timestamp: time.Unix(502, 0), SenderTimestamp: time.Unix(1, 0)})
		}, nil},
	} {
		mustOK(t, tc.tamper())
		if err := dst.VerifyImport(ctx, srcDB); !errors.Is(err, devicestore.ErrVerifyMismatch) {
			t.Fatalf("VerifyImport after tampering with the %s = %v, want ErrVerifyMismatch", tc.name, err)
		}
		if tc.restore == nil {
			break // the last one: a sender timestamp cannot be unset
		}
		mustOK(t, tc.restore())
		mustOK(t, dst.VerifyImport(ctx, srcDB))
	}

	for _, j := range []types.JID{dev1, dev2} {
		want, err := src.c.GetDevice(ctx, j)
		mustOK(t, err)
		got, err := dst.GetDevice(ctx, j)
		mustOK(t, err)
		eq(t, "push name", got.PushName, want.PushName)
		for _, a := range []string{"10:1", "nil:0", "404:0"} {
			ws, err := want.Sessions.GetSession(ctx, a)
			mustOK(t, err)
			gs, err := got.Sessions.GetSession(ctx, a)
			mustOK(t, err)
			eq(t, "session "+a, gs, ws)
		}
		// The moved device continues exactly as the SQL one would.
		wk, err := want.PreKeys.GetOrGenPreKeys(ctx, 20)
		mustOK(t, err)
		gk, err := got.PreKeys.GetOrGenPreKeys(ctx, 20)
		mustOK(t, err)
		eq(t, "next prekey IDs", keyIDs(gk), keyIDs(wk))
		eq(t, "un-uploaded key material", *gk[0].Priv, *wk[0].Priv)
	}

}

// downgradeSQL turns a sqlstore file of today's schema (v15) into one of an
// older schema, as whatsmeow of that time left it: the later migrations'
// tables and columns (with what was stored in them) are dropped, and the
// version is set back.
func downgradeSQL(t *testing.T, db *sql.DB, version int) {
	t.Helper()
	steps := map[int][]string{ // undoes migration n+1
		14: {`ALTER TABLE whatsmeow_device DROP COLUMN companion_meta_nonce`},
		13: {`DROP TABLE whatsmeow_nct_salt`},
		12: {`DROP TABLE whatsmeow_retry_buffer`},
		11: {`DROP INDEX idx_whatsmeow_privacy_tokens_our_jid_timestamp`, `ALTER TABLE whatsmeow_privacy_tokens DROP COLUMN sender_timestamp`},
		10: {`ALTER TABLE whatsmeow_contacts DROP COLUMN redacted_phone`},
		9:  {`ALTER TABLE whatsmeow_device DROP COLUMN lid_migration_ts`},
		8:  {`DROP TABLE whatsmeow_event_buffer`},
	}
	for v := 14; v >= version; v-- {
		for _, q := range steps[v] {
			_, err := db.Exec(q)
			mustOK(t, err)
		}
	}
	_, err := db.Exec(`UPDATE whatsmeow_version SET version=?, compat=8`, version)
	mustOK(t, err)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	mustOK(t, err)
	return sha256.Sum256(b)
}

// A source of an older sqlstore schema (a wuzapi file on an older
// whatsmeow): v14 (2026-05, no companion meta nonce), v11 (2025-12, our
// previous pin: no sender timestamps, retry buffer or NCT salt) and v8 (no
// event buffer, LID migration timestamp or redacted phones). Today's
// sqlstore cannot read its devices (GetAllDevices selects every column);
// the import reads what is there, defaults the rest as whatsmeow's
// migrations do, leaves the source file byte for byte as it was, and
// verification (against an upgraded copy) passes.
func TestImport_OlderSQLStoreSchemas(t *testing.T) {
	for _, version := range []int{14, 11, 8} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			sqlDir := t.TempDir()
			src := openSQL(t, sqlDir)
			d := src.c.NewDevice()
			d.ID, d.Account = new(types.JID), testAccount()
			*d.ID = dev1
			mustOK(t, src.c.PutDevice(ctx, d))
			fillRich(t, d, 1)
			d.LIDMigrationTimestamp = 77
			mustOK(t, d.Save(ctx))
			downgradeSQL(t, src.sql, version)
			if _, err := src.c.GetAllDevices(ctx); err == nil {
				t.Fatal("today's sqlstore read the devices of an old schema: the test source is not old")
			}
			src.close()
			path := filepath.Join(sqlDir, "wa.db")
			before := fileSum(t, path)

			db := mustOpenBolt(t, filepath.Join(t.TempDir(), "app.db"))
			defer db.Close()
			dst, err := devicestore.New(db, nil)
			mustOK(t, err)
			st, err := sqlimport.ImportFile(ctx, path, dst)
			mustOK(t, err)
			t.Logf("imported: %+v", st)
			eq(t, "source untouched", fileSum(t, path), before)
			has := func(since int, n int) int {
				if version >= since {
					return n
				}
				return 0
			}
			eq(t, "stats", [6]int{st.SourceVersion, st.Devices, st.Sessions, st.BufferedEvents, st.OutgoingEvents, st.NCTSalts},
				[6]int{version, 1, 32, has(9, 2), has(13, 3), has(14, 1)})

			got, err := dst.GetDevice(ctx, dev1)
			mustOK(t, err)
			eq(t, "push name", got.PushName, "push 1")
			eq(t, "lid migration ts", got.LIDMigrationTimestamp, int64(has(10, 77)))
			eq(t, "companion meta nonce", got.CompanionMetaNonce, "")
			tok, err := got.PrivacyTokens.GetPrivacyToken(ctx, jid("90@lid"))
			mustOK(t, err)
			wantSender := time.Time{}
			if version >= 12 {
				wantSender = time.Unix(450, 0)
			}
			eq(t, "privacy token", *tok, store.PrivacyToken{User: jid("90@lid"), Token: []byte("lt"), Timestamp: time.Unix(500, 0), SenderTimestamp: wantSender})
			ci, err := got.Contacts.GetContact(ctx, jid("90@lid"))
			mustOK(t, err)
			eq(t, "redacted phone", ci.RedactedPhone, map[bool]string{true: "+9**", false: ""}[version >= 11])
			salt, err := got.NCTSalt.GetNCTSalt(ctx)
			mustOK(t, err)
			eq(t, "nct salt", string(salt), map[bool]string{true: "salt 1", false: ""}[version >= 14])
			_, pt, err := got.EventBuffer.GetOutgoingEvent(ctx, jid("90@lid"), types.EmptyJID, "OUT1")
			if version >= 13 {
				mustOK(t, err)
				eq(t, "outgoing event", string(pt), "kept for retries")
			} else if !errors.Is(err, devicestore.ErrNotFound) {
				t.Fatalf("outgoing event of a v%d source: %v, want ErrNotFound", version, err)
			}
			sess, err := got.Sessions.GetSession(ctx, "10:0")
			mustOK(t, err)
			eq(t, "session", string(sess), "session 1 0")

			// Verification compares with the upgraded copy, so it notices.
			mustOK(t, got.Sessions.PutSession(ctx, "10:0", []byte("tampered")))
			srcDB := sqlDB(t, sqlDir)
			if err := dst.VerifyImport(ctx, srcDB); !errors.Is(err, devicestore.ErrVerifyMismatch) {
				t.Fatalf("VerifyImport after tampering = %v, want ErrVerifyMismatch", err)
			}
			var v int
			mustOK(t, srcDB.QueryRow(`SELECT version FROM whatsmeow_version`).Scan(&v))
			eq(t, "source version after verify", v, version)
		})
	}
}

// A source older than v8 (no LID map) is refused before anything is written.
func TestImport_SourceOlderThanV8IsRefused(t *testing.T) {
	sqlDir := t.TempDir()
	src := openSQL(t, sqlDir)
	d := src.c.NewDevice()
	d.ID, d.Account = new(types.JID), testAccount()
	*d.ID = dev1
	mustOK(t, src.c.PutDevice(ctx, d))
	downgradeSQL(t, src.sql, 8)
	_, err := src.sql.Exec(`DROP TABLE whatsmeow_lid_map`)
	mustOK(t, err)
	_, err = src.sql.Exec(`UPDATE whatsmeow_version SET version=7, compat=6`)
	mustOK(t, err)
	src.close()
	db := mustOpenBolt(t, filepath.Join(t.TempDir(), "app.db"))
	defer db.Close()
	dst, err := devicestore.New(db, nil)
	mustOK(t, err)
	if _, err := sqlimport.ImportFile(ctx, filepath.Join(sqlDir, "wa.db"), dst); !errors.Is(err, devicestore.ErrSourceSchema) {
		t.Fatalf("import of a v7 source = %v, want ErrSourceSchema", err)
	}
	devs, err := dst.GetAllDevices(ctx)
	mustOK(t, err)
	eq(t, "devices after a refused import", len(devs), 0)
}

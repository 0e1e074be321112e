package devicestore_test

import (
	"errors"
	"fmt"
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
	mustOK(t, d.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: jid("90@lid"), Token: []byte("lt"), Timestamp: time.Unix(500, 0)}))
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
	eq(t, "stats", [6]int{st.Devices, st.Sessions, st.PreKeys, st.MutationMACs, st.LIDMappings, st.OrphanPrivacyTokens}, [6]int{2, 2 * 32, 2 * 40, 2 * 7, 4, 1})

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

	// Verification notices a difference.
	got, err := dst.GetDevice(ctx, dev1)
	mustOK(t, err)
	mustOK(t, got.Sessions.PutSession(ctx, "10:1", []byte("tampered")))
	if err := dst.VerifyImport(ctx, srcDB); !errors.Is(err, devicestore.ErrVerifyMismatch) {
		t.Fatalf("VerifyImport after tampering = %v, want ErrVerifyMismatch", err)
	}
}

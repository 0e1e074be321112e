package devicestore_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"

	"leadmaster/kv/devicestore"
)

// openSchema1Fixture copies testdata/schema1/devices.db.gz, a file written by
// the device store at schema 1 (commit 0e28d00 on whatsmeow 2025-12-17;
// schema1gen_test.go made it), into a temporary file and opens it with bbolt.
func openSchema1Fixture(t *testing.T) (*bbolt.DB, string) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "schema1", "devices.db.gz"))
	mustOK(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	mustOK(t, err)
	raw, err := io.ReadAll(zr)
	mustOK(t, err)
	path := filepath.Join(t.TempDir(), "app.db")
	mustOK(t, os.WriteFile(path, raw, 0o600))
	return mustOpenBolt(t, path), path
}

func schemaOf(t *testing.T, db *bbolt.DB) uint32 {
	t.Helper()
	var v uint32
	mustOK(t, db.View(func(tx *bbolt.Tx) error {
		v = binary.BigEndian.Uint32(tx.Bucket([]byte("wa.meta")).Get([]byte("schema")))
		return nil
	}))
	return v
}

// deviceRecords returns a copy of every device bucket's device record.
func deviceRecords(t *testing.T, db *bbolt.DB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	mustOK(t, db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			if bytes.HasPrefix(name, []byte("wa.device.")) {
				out[string(name)] = bytes.Clone(b.Get([]byte("device")))
			}
			return nil
		})
	}))
	return out
}

var (
	fixA = types.NewADJID("111", 0, 7)
	fixB = types.NewADJID("112", 0, 3)
)

// An upgrade: a file written by the schema-1 store opens with today's New,
// is migrated in place (schema 2, no record rewritten), and every getter
// answers what the old code stored, so a paired device keeps its session.
// The 2026 methods then work on the migrated devices, and a second open
// (already schema 2) changes nothing.
func TestUpgrade_Schema1FileKeepsEverySession(t *testing.T) {
	db, path := openSchema1Fixture(t)
	eq(t, "fixture schema", schemaOf(t, db), uint32(1))
	before := deviceRecords(t, db)
	eq(t, "fixture devices", len(before), 2)

	c, err := devicestore.New(db, nil)
	mustOK(t, err)
	eq(t, "schema after New", schemaOf(t, db), uint32(2))
	eq(t, "device records untouched by the migration", deviceRecords(t, db), before)
	checkBolt(t, db)

	checkSchema1Data(t, c)

	// The new methods on a migrated device (its retry-buffer buckets were
	// added by the migration: AddOutgoingEvent fails without them).
	a := mustGet(t, c, fixA)
	mustOK(t, a.EventBuffer.AddOutgoingEvent(ctx, jid("50@lid"), "OUT1", "wa", []byte("sent after upgrade")))
	f, pt, err := a.EventBuffer.GetOutgoingEvent(ctx, jid("5@s.whatsapp.net"), jid("50@lid"), "OUT1")
	mustOK(t, err)
	eq(t, "outgoing event", [2]string{f, string(pt)}, [2]string{"wa", "sent after upgrade"})
	mustOK(t, a.EventBuffer.DeleteOldOutgoingEvents(ctx))
	b := mustGet(t, c, fixB)
	mustOK(t, b.EventBuffer.AddOutgoingEvent(ctx, jid("5@s.whatsapp.net"), "OUT2", "fb", []byte("b")))
	mustOK(t, a.NCTSalt.PutNCTSalt(ctx, []byte("salt")))
	// A v1 token has no sender timestamp; an equally new put sets one.
	mustOK(t, a.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: jid("50@lid"), Token: []byte("tctoken"), Timestamp: time.Unix(1700000100, 0), SenderTimestamp: time.Unix(1700000150, 0)}))
	a.CompanionMetaNonce = "nonce"
	mustOK(t, a.Save(ctx))
	checkBolt(t, db)
	mustOK(t, db.Close())

	db = mustOpenBolt(t, path)
	defer db.Close()
	c, err = devicestore.New(db, nil)
	mustOK(t, err)
	eq(t, "schema after a second open", schemaOf(t, db), uint32(2))
	a = mustGet(t, c, fixA)
	eq(t, "nonce saved on a v1 record", a.CompanionMetaNonce, "nonce")
	salt, err := a.NCTSalt.GetNCTSalt(ctx)
	mustOK(t, err)
	eq(t, "salt", salt, []byte("salt"))
	tok, err := a.PrivacyTokens.GetPrivacyToken(ctx, jid("50@lid"))
	mustOK(t, err)
	eq(t, "token sender timestamp", tok.SenderTimestamp, time.Unix(1700000150, 0))
	_, pt, err = mustGet(t, c, fixB).EventBuffer.GetOutgoingEvent(ctx, jid("5@s.whatsapp.net"), types.EmptyJID, "OUT2")
	mustOK(t, err)
	eq(t, "b's outgoing event", string(pt), "b")
	// The rest of the v1 data is still as the old code left it.
	a.CompanionMetaNonce = ""
	mustOK(t, a.Save(ctx))
	checkSchema1Data(t, c)
	checkBolt(t, db)
}

func mustGet(t *testing.T, c *devicestore.Container, j types.JID) *store.Device {
	t.Helper()
	d, err := c.GetDevice(ctx, j)
	mustOK(t, err)
	if d == nil {
		t.Fatalf("device %s missing", j)
	}
	return d
}

// checkSchema1Data asserts what schema1gen_test.go stored, through every
// getter.
func checkSchema1Data(t *testing.T, c *devicestore.Container) {
	t.Helper()
	all, err := c.GetAllDevices(ctx)
	mustOK(t, err)
	eq(t, "devices", len(all), 2)
	a := mustGet(t, c, fixA)
	const seed = 0xa0
	eq(t, "LID", a.LID, types.JID{User: "999", Device: 7, Server: types.HiddenUserServer})
	eq(t, "noise key", *a.NoiseKey, *keys.NewKeyPairFromPrivateKey([32]byte{seed, 1}))
	eq(t, "identity key", *a.IdentityKey, *keys.NewKeyPairFromPrivateKey([32]byte{seed, 2}))
	eq(t, "signed prekey", [3]any{a.SignedPreKey.KeyPair, a.SignedPreKey.KeyID, *a.SignedPreKey.Signature},
		[3]any{*keys.NewKeyPairFromPrivateKey([32]byte{seed, 4}), uint32(1), [64]byte{seed, 3}})
	eq(t, "registration id", a.RegistrationID, uint32(1000+seed))
	eq(t, "adv key", a.AdvSecretKey, []byte{seed, 5})
	eq(t, "account", [4][]byte{a.Account.Details, a.Account.AccountSignature[:2], a.Account.AccountSignatureKey[:2], a.Account.DeviceSignature[:2]},
		[4][]byte{{seed, 6}, {seed, 7}, {seed, 8}, {seed, 9}})
	eq(t, "names", [3]string{a.Platform, a.BusinessName, a.PushName}, [3]string{"android", "Biz", "Push A"})
	eq(t, "lid migration ts", a.LIDMigrationTimestamp, int64(1700000000))
	eq(t, "companion meta nonce of a v1 record", a.CompanionMetaNonce, "")

	lid, pn := jid("50@lid"), jid("5@s.whatsapp.net")
	ok, err := a.Identities.IsTrustedIdentity(ctx, "50_1:0", [32]byte{0x11})
	mustOK(t, err)
	eq(t, "stored identity trusted", ok, true)
	ok, err = a.Identities.IsTrustedIdentity(ctx, "50_1:0", [32]byte{0x12})
	mustOK(t, err)
	eq(t, "other identity untrusted", ok, false)
	sess, err := a.Sessions.GetManySessions(ctx, []string{"50_1:0", "nil:0"})
	mustOK(t, err)
	eq(t, "sessions", sess, map[string][]byte{"50_1:0": []byte("session 50_1:0"), "nil:0": nil})
	has, err := a.Sessions.HasSession(ctx, "nil:0")
	mustOK(t, err)
	eq(t, "nil session exists", has, true)

	var want struct{ Prekeys map[uint32]string }
	raw, err := os.ReadFile(filepath.Join("testdata", "schema1", "prekeys.json"))
	mustOK(t, err)
	mustOK(t, json.Unmarshal(raw, &want))
	eq(t, "fixture prekeys", len(want.Prekeys), 5)
	for id, h := range want.Prekeys {
		priv, err := hex.DecodeString(h)
		mustOK(t, err)
		pk, err := a.PreKeys.GetPreKey(ctx, id)
		mustOK(t, err)
		if pk == nil {
			t.Fatalf("prekey %d missing", id)
		}
		eq(t, "prekey", *pk.Priv, [32]byte(priv))
	}
	n, err := a.PreKeys.UploadedPreKeyCount(ctx)
	mustOK(t, err)
	eq(t, "uploaded prekeys", n, 3)
	sk, err := a.SenderKeys.GetSenderKey(ctx, "g1@g.us", "50_1:0")
	mustOK(t, err)
	eq(t, "sender key", sk, []byte("sender key"))

	latest, err := a.AppStateKeys.GetLatestAppStateSyncKeyID(ctx)
	mustOK(t, err)
	eq(t, "latest sync key", latest, []byte("key-new"))
	keysAll, err := a.AppStateKeys.GetAllAppStateSyncKeys(ctx)
	mustOK(t, err)
	var datas []string
	for _, k := range keysAll {
		datas = append(datas, string(k.Data))
	}
	eq(t, "all sync keys newest first", datas, []string{"new", "old"})
	v, h, err := a.AppState.GetAppStateVersion(ctx, "regular")
	mustOK(t, err)
	eq(t, "app state version", [2]any{v, h}, [2]any{uint64(3), [128]byte{0x33}})
	mac, err := a.AppState.GetAppStateMutationMAC(ctx, "regular", bytes.Repeat([]byte{0x41}, 32))
	mustOK(t, err)
	eq(t, "mutation MAC", mac, bytes.Repeat([]byte{0x42}, 32))

	ci, err := a.Contacts.GetContact(ctx, lid)
	mustOK(t, err)
	eq(t, "contact", ci, types.ContactInfo{Found: true, FirstName: "First", FullName: "Full Name", PushName: "Fifty", RedactedPhone: "+5***5"})
	cs, err := a.ChatSettings.GetChatSettings(ctx, lid)
	mustOK(t, err)
	eq(t, "chat settings", cs, types.LocalChatSettings{Found: true, MutedUntil: store.MutedForever, Pinned: true})
	sec, sender, err := a.MsgSecrets.GetMessageSecret(ctx, pn, pn, "POLL1") // via the LID map
	mustOK(t, err)
	eq(t, "message secret", [2]any{string(sec), sender}, [2]any{"poll secret", lid})
	ev, err := a.EventBuffer.GetBufferedEvent(ctx, [32]byte{0xe1})
	mustOK(t, err)
	eq(t, "buffered event", [2]any{string(ev.Plaintext), ev.ServerTime}, [2]any{"pending plaintext", time.Unix(1700000200, 0)})
	ev, err = a.EventBuffer.GetBufferedEvent(ctx, [32]byte{0xe2})
	mustOK(t, err)
	eq(t, "handled event", ev.Plaintext, []byte(nil))
	l, err := a.LIDs.GetLIDForPN(ctx, pn)
	mustOK(t, err)
	eq(t, "LID map", l, lid)

	b := mustGet(t, c, fixB)
	s, err := b.Sessions.GetSession(ctx, "5:0")
	mustOK(t, err)
	eq(t, "b's session", s, []byte("session of b"))
	eq(t, "b's LID", b.LID, types.EmptyJID)
}

// The privacy token of the v1 file, read before any new put: its record has
// no sender timestamp, which reads as NULL (the zero time), as sqlstore's
// migration 12 leaves existing rows.
func TestUpgrade_Schema1TokenHasNoSenderTimestamp(t *testing.T) {
	db, _ := openSchema1Fixture(t)
	defer db.Close()
	c, err := devicestore.New(db, nil)
	mustOK(t, err)
	tok, err := mustGet(t, c, fixA).PrivacyTokens.GetPrivacyToken(ctx, jid("5@s.whatsapp.net"))
	mustOK(t, err)
	eq(t, "v1 token", *tok, store.PrivacyToken{User: jid("5@s.whatsapp.net"), Token: []byte("tctoken"), Timestamp: time.Unix(1700000100, 0)})
	// An older put does not replace it; the COALESCE keeps NULL NULL.
	mustOK(t, mustGet(t, c, fixA).PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: jid("50@lid"), Token: []byte("older"), Timestamp: time.Unix(1, 0), SenderTimestamp: time.Unix(2, 0)}))
	tok, err = mustGet(t, c, fixA).PrivacyTokens.GetPrivacyToken(ctx, jid("50@lid"))
	mustOK(t, err)
	eq(t, "after an older put", [2]any{string(tok.Token), tok.SenderTimestamp.IsZero()}, [2]any{"tctoken", true})
	n, err := mustGet(t, c, fixA).PrivacyTokens.DeleteExpiredPrivacyTokens(ctx, time.Unix(1700000101, 0))
	mustOK(t, err)
	eq(t, "v1 token expires", n, int64(1))
}

// A migration that fails leaves the file at schema 1, untouched: the schema
// is stored in the migration's own transaction.
func TestUpgrade_Schema1FileIsNotChangedWhenNewFails(t *testing.T) {
	db, _ := openSchema1Fixture(t)
	defer db.Close()
	// A device bucket whose name is taken by a plain value cannot get its
	// sub-buckets; here: a retry buffer key that is a value, not a bucket.
	mustOK(t, db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("wa.device."+fixB.String())).Put([]byte("retrybuf"), []byte("not a bucket"))
	}))
	before := deviceRecords(t, db)
	_, err := devicestore.New(db, nil)
	if err == nil || !errors.Is(err, bbolt.ErrIncompatibleValue) {
		t.Fatalf("New on a file that cannot migrate = %v, want bbolt.ErrIncompatibleValue", err)
	}
	eq(t, "schema after a failed migration", schemaOf(t, db), uint32(1))
	eq(t, "records after a failed migration", deviceRecords(t, db), before)
	mustOK(t, db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("wa.device."+fixA.String())).Bucket([]byte("retrybuf")) != nil {
			t.Error("the failed migration left a sub-bucket in the first device")
		}
		return nil
	}))
}

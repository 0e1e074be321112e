package devicestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"

	"leadmaster/kv/devicestore"
)

// conformance is the one table of behaviours that runs against whatsmeow's
// sqlstore (on modernc.org/sqlite) and against the bbolt store. Properties
// are asserted after a restart where persistence matters, so sqlstore's
// in-memory caches cannot hide what was stored. Where the bbolt store
// deliberately differs, the case says so and asserts each backend's answer.
var conformance = []struct {
	name string
	run  func(t *testing.T, e *env)
}{
	{"Device/RoundTripEveryField", caseDeviceRoundTrip},
	{"Device/UpsertUpdatesOnlyItsColumns", caseDeviceUpsert},
	{"Device/CompanionMetaNonceUpsert", caseDeviceNonce},
	{"Device/MissingIsNilNil", caseDeviceMissing},
	{"Device/FirstOnEmptyIsUnsavedNew", caseDeviceFirstOnEmpty},
	{"Device/NilIDIsError", caseDeviceNilID},
	{"Device/AllDevices", caseDeviceAll},
	{"Device/PutWiresStores", caseDeviceWiring},
	{"Device/DeleteRemovesAllItsData", caseDeviceDelete},
	{"Device/WriteAfterDeleteFails", caseDeviceWriteAfterDelete},
	{"Identity", caseIdentity},
	{"Session", caseSession},
	{"Session/MigratePNToLID", caseMigratePNToLID},
	{"PreKey/GenerationOrderingUploaded", casePreKeys},
	{"PreKey/MaxPlusOneReuseAndMissing", casePreKeyReuse},
	{"SenderKey", caseSenderKey},
	{"AppStateSyncKey", caseSyncKey},
	{"AppStateSyncKey/AllNewestFirst", caseSyncKeyAll},
	{"AppState/VersionAndMACs", caseAppState},
	{"AppState/DuplicateAndLengthErrors", caseAppStateErrors},
	{"Contact/PushAndBusinessNames", caseContactNames},
	{"Contact/FirstFullBulkRedacted", caseContactBulk},
	{"ChatSettings", caseChatSettings},
	{"MessageSecret", caseMsgSecret},
	{"PrivacyToken", casePrivacyToken},
	{"PrivacyToken/SenderTimestampNewerWins", casePrivacyTokenSenderTS},
	{"PrivacyToken/DeleteExpiredPerDevice", casePrivacyTokenExpire},
	{"NCTSalt", caseNCTSalt},
	{"EventBuffer", caseEventBuffer},
	{"EventBuffer/DeleteOldAcrossDevices", caseEventBufferPurge},
	{"OutgoingEvent/AddReplaceGetByChatOrAlt", caseOutgoing},
	{"OutgoingEvent/DeleteOldPerDevice", caseOutgoingPurge},
	{"Txn/RollbackReadYourWritesNested", caseTxn},
	{"LID/PutGetBothWays", caseLID},
	{"LID/RemapAndBulk", caseLIDRemapBulk},
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) { c.run(t, newEnv(t, b)) })
			}
		})
	}
}

func caseDeviceRoundTrip(t *testing.T, e *env) {
	d := e.c.NewDevice()
	id := dev1
	d.ID = &id
	d.LID = types.NewADJID("999", 0, 7)
	d.LID.Server = types.HiddenUserServer
	d.Account = testAccount()
	d.Platform, d.BusinessName, d.PushName = "android", "Biz", "Push"
	d.LIDMigrationTimestamp = 1234
	d.CompanionMetaNonce = "nonce-1"
	d.FacebookUUID = uuid.MustParse("0b3f2e7c-1a2b-4c5d-8e9f-001122334455")
	d.SignedPreKey.KeyID = 77
	mustOK(t, e.c.PutDevice(ctx, d))
	e.reopen()
	got := e.get(dev1)
	eq(t, "ID", *got.ID, *d.ID)
	eq(t, "LID", got.LID, d.LID)
	eq(t, "RegistrationID", got.RegistrationID, d.RegistrationID)
	eq(t, "NoiseKey", *got.NoiseKey, *d.NoiseKey)
	eq(t, "IdentityKey", *got.IdentityKey, *d.IdentityKey)
	eq(t, "SignedPreKey.KeyPair", got.SignedPreKey.KeyPair, d.SignedPreKey.KeyPair)
	eq(t, "SignedPreKey.KeyID", got.SignedPreKey.KeyID, uint32(77))
	eq(t, "SignedPreKey.Signature", *got.SignedPreKey.Signature, *d.SignedPreKey.Signature)
	eq(t, "AdvSecretKey", got.AdvSecretKey, d.AdvSecretKey)
	eq(t, "Account.Details", got.Account.Details, d.Account.Details)
	eq(t, "Account.AccountSignature", got.Account.AccountSignature, d.Account.AccountSignature)
	eq(t, "Account.AccountSignatureKey", got.Account.AccountSignatureKey, d.Account.AccountSignatureKey)
	eq(t, "Account.DeviceSignature", got.Account.DeviceSignature, d.Account.DeviceSignature)
	eq(t, "names", [3]string{got.Platform, got.BusinessName, got.PushName}, [3]string{"android", "Biz", "Push"})
	eq(t, "LIDMigrationTimestamp", got.LIDMigrationTimestamp, int64(1234))
	eq(t, "CompanionMetaNonce", got.CompanionMetaNonce, "nonce-1")
	eq(t, "FacebookUUID", got.FacebookUUID, d.FacebookUUID)
	eq(t, "Initialized", got.Initialized, true)

	// A device without LID or Facebook UUID reads back empty.
	d2 := e.c.NewDevice()
	id2 := dev2
	d2.ID, d2.Account = &id2, testAccount()
	mustOK(t, e.c.PutDevice(ctx, d2))
	e.reopen()
	got2 := e.get(dev2)
	eq(t, "empty LID", got2.LID, types.EmptyJID)
	eq(t, "nil UUID", got2.FacebookUUID, uuid.Nil)
	eq(t, "no companion meta nonce", got2.CompanionMetaNonce, "")
}

func caseDeviceUpsert(t *testing.T, e *env) {
	orig := e.add(dev1)
	d := e.c.NewDevice() // new keys, registration ID, adv key
	id := dev1
	d.ID = &id
	d.Account = testAccount()
	d.Account.Details = []byte("other details")
	d.FacebookUUID = uuid.New()
	d.LID = types.JID{User: "555", Server: types.HiddenUserServer}
	d.Platform, d.BusinessName, d.PushName, d.LIDMigrationTimestamp = "ios", "B2", "P2", 99
	d.CompanionMetaNonce = "n2"
	mustOK(t, e.c.PutDevice(ctx, d))
	e.reopen()
	got := e.get(dev1)
	eq(t, "NoiseKey kept", *got.NoiseKey.Priv, *orig.NoiseKey.Priv)
	eq(t, "IdentityKey kept", *got.IdentityKey.Priv, *orig.IdentityKey.Priv)
	eq(t, "SignedPreKey kept", *got.SignedPreKey.Priv, *orig.SignedPreKey.Priv)
	eq(t, "RegistrationID kept", got.RegistrationID, orig.RegistrationID)
	eq(t, "AdvSecretKey kept", got.AdvSecretKey, orig.AdvSecretKey)
	eq(t, "Details kept", got.Account.Details, []byte("details"))
	eq(t, "FacebookUUID kept", got.FacebookUUID, uuid.Nil)
	eq(t, "LID updated", got.LID, d.LID)
	eq(t, "names updated", [3]string{got.Platform, got.BusinessName, got.PushName}, [3]string{"ios", "B2", "P2"})
	eq(t, "LIDMigrationTimestamp updated", got.LIDMigrationTimestamp, int64(99))
	eq(t, "CompanionMetaNonce updated", got.CompanionMetaNonce, "n2")
}

// caseDeviceNonce follows whatsmeow's storeCompanionMetaNonce: set the field,
// Save. ON CONFLICT takes the new value, an empty one too.
func caseDeviceNonce(t *testing.T, e *env) {
	d := e.add(dev1)
	eq(t, "new device's nonce", d.CompanionMetaNonce, "")
	d.CompanionMetaNonce = "from history sync"
	mustOK(t, d.Save(ctx))
	e.reopen()
	d = e.get(dev1)
	eq(t, "saved nonce", d.CompanionMetaNonce, "from history sync")
	d.CompanionMetaNonce = ""
	mustOK(t, d.Save(ctx))
	e.reopen()
	eq(t, "emptied nonce", e.get(dev1).CompanionMetaNonce, "")
}

func caseDeviceMissing(t *testing.T, e *env) {
	d, err := e.c.GetDevice(ctx, dev1)
	mustOK(t, err)
	if d != nil {
		t.Fatalf("GetDevice(missing) = %v, want nil", d.ID)
	}
}

func caseDeviceFirstOnEmpty(t *testing.T, e *env) {
	d, err := e.c.GetFirstDevice(ctx)
	mustOK(t, err)
	if d == nil || d.ID != nil || d.NoiseKey == nil || d.Initialized {
		t.Fatalf("GetFirstDevice(empty) = %+v, want a new unsaved device", d)
	}
	all, err := e.c.GetAllDevices(ctx)
	mustOK(t, err)
	eq(t, "devices after GetFirstDevice", len(all), 0)
	e.add(dev1)
	d, err = e.c.GetFirstDevice(ctx)
	mustOK(t, err)
	eq(t, "first device", *d.ID, dev1)
}

func caseDeviceNilID(t *testing.T, e *env) {
	d := e.c.NewDevice()
	d.Account = testAccount()
	mustErr(t, e.c.PutDevice(ctx, d), "PutDevice(nil ID)")
	mustErr(t, e.c.DeleteDevice(ctx, d), "DeleteDevice(nil ID)")
}

func caseDeviceAll(t *testing.T, e *env) {
	e.add(dev2)
	e.add(dev1)
	e.reopen()
	all, err := e.c.GetAllDevices(ctx)
	mustOK(t, err)
	got := map[types.JID]bool{}
	for _, d := range all {
		got[*d.ID] = d.Initialized
	}
	eq(t, "all devices", got, map[types.JID]bool{dev1: true, dev2: true})
}

func caseDeviceWiring(t *testing.T, e *env) {
	d := e.c.NewDevice()
	id := dev1
	d.ID, d.Account = &id, testAccount()
	mustOK(t, e.c.PutDevice(ctx, d))
	if !d.Initialized || d.Sessions == nil || d.PreKeys == nil || d.LIDs == nil || d.EventBuffer == nil || d.Container == nil {
		t.Fatal("PutDevice did not wire the device's stores")
	}
	mustOK(t, d.Sessions.PutSession(ctx, "1:0", []byte("s")))
	got, err := e.get(dev1).Sessions.GetSession(ctx, "1:0")
	mustOK(t, err)
	eq(t, "session through wired store", got, []byte("s"))
}

// fillDevice writes one row into every per-device table of d.
func fillDevice(t *testing.T, d *store.Device) {
	t.Helper()
	mustOK(t, d.Identities.PutIdentity(ctx, "5:0", [32]byte{1}))
	mustOK(t, d.Sessions.PutSession(ctx, "5:0", []byte("sess")))
	_, err := d.PreKeys.GetOrGenPreKeys(ctx, 3)
	mustOK(t, err)
	mustOK(t, d.SenderKeys.PutSenderKey(ctx, "g@g.us", "5:0", []byte("sk")))
	mustOK(t, d.AppStateKeys.PutAppStateSyncKey(ctx, []byte("kid"), store.AppStateSyncKey{Data: []byte("d"), Fingerprint: []byte("f"), Timestamp: 1}))
	mustOK(t, d.AppState.PutAppStateVersion(ctx, "regular", 3, [128]byte{9}))
	mustOK(t, d.AppState.PutAppStateMutationMACs(ctx, "regular", 3, []store.AppStateMutationMAC{{IndexMAC: fill(32, 1), ValueMAC: fill(32, 2)}}))
	_, _, err = d.Contacts.PutPushName(ctx, jid("5@s.whatsapp.net"), "Five")
	mustOK(t, err)
	mustOK(t, d.ChatSettings.PutPinned(ctx, jid("5@s.whatsapp.net"), true))
	mustOK(t, d.MsgSecrets.PutMessageSecret(ctx, jid("5@s.whatsapp.net"), jid("5@s.whatsapp.net"), "M1", []byte("secret")))
	mustOK(t, d.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: jid("5@s.whatsapp.net"), Token: []byte("tok"), Timestamp: time.Unix(100, 0)}))
	mustOK(t, d.EventBuffer.PutBufferedEvent(ctx, [32]byte{5}, []byte("pt"), time.Unix(100, 0)))
	mustOK(t, d.EventBuffer.AddOutgoingEvent(ctx, jid("5@s.whatsapp.net"), "OUT1", "wa", []byte("out")))
	mustOK(t, d.NCTSalt.PutNCTSalt(ctx, []byte("salt")))
	mustOK(t, d.LIDs.PutLIDMapping(ctx, jid("50@lid"), jid("5@s.whatsapp.net")))
}

func caseDeviceDelete(t *testing.T, e *env) {
	d1, d2 := e.add(dev1), e.add(dev2)
	fillDevice(t, d1)
	fillDevice(t, d2)
	mustOK(t, d1.Delete(ctx))
	if d1.ID != nil {
		t.Fatal("Device.Delete did not clear ID")
	}
	e.reopen()
	if d, err := e.c.GetDevice(ctx, dev1); err != nil || d != nil {
		t.Fatalf("deleted device: %v, %v", d, err)
	}
	// Store the same JID again: nothing of the old data may come back.
	d := e.add(dev1)
	trusted, err := d.Identities.IsTrustedIdentity(ctx, "5:0", [32]byte{2})
	mustOK(t, err)
	eq(t, "identity gone (other key trusted)", trusted, true)
	sess, err := d.Sessions.GetSession(ctx, "5:0")
	mustOK(t, err)
	eq(t, "session gone", sess, []byte(nil))
	pk, err := d.PreKeys.GetPreKey(ctx, 1)
	mustOK(t, err)
	eq(t, "prekey gone", pk == nil, true)
	sk, err := d.SenderKeys.GetSenderKey(ctx, "g@g.us", "5:0")
	mustOK(t, err)
	eq(t, "sender key gone", sk, []byte(nil))
	ask, err := d.AppStateKeys.GetAppStateSyncKey(ctx, []byte("kid"))
	mustOK(t, err)
	eq(t, "sync key gone", ask == nil, true)
	v, _, err := d.AppState.GetAppStateVersion(ctx, "regular")
	mustOK(t, err)
	eq(t, "app state version gone", v, uint64(0))
	mac, err := d.AppState.GetAppStateMutationMAC(ctx, "regular", fill(32, 1))
	mustOK(t, err)
	eq(t, "MAC gone", mac, []byte(nil))
	ci, err := d.Contacts.GetContact(ctx, jid("5@s.whatsapp.net"))
	mustOK(t, err)
	eq(t, "contact gone", ci.Found, false)
	cs, err := d.ChatSettings.GetChatSettings(ctx, jid("5@s.whatsapp.net"))
	mustOK(t, err)
	eq(t, "chat settings gone", cs.Found, false)
	sec, _, err := d.MsgSecrets.GetMessageSecret(ctx, jid("5@s.whatsapp.net"), jid("5@s.whatsapp.net"), "M1")
	mustOK(t, err)
	eq(t, "message secret gone", sec, []byte(nil))
	ev, err := d.EventBuffer.GetBufferedEvent(ctx, [32]byte{5})
	mustOK(t, err)
	eq(t, "buffered event gone", ev == nil, true)
	_, _, err = d.EventBuffer.GetOutgoingEvent(ctx, jid("5@s.whatsapp.net"), types.EmptyJID, "OUT1")
	e.wantOutgoingMissing(err, "outgoing event gone")
	salt, err := d.NCTSalt.GetNCTSalt(ctx)
	mustOK(t, err)
	eq(t, "NCT salt gone", salt, []byte(nil))
	tok, err := d.PrivacyTokens.GetPrivacyToken(ctx, jid("5@s.whatsapp.net"))
	mustOK(t, err)
	// Documented divergence: sqlstore's privacy tokens have no foreign key
	// and outlive the device; the bbolt store deletes them with it.
	eq(t, "privacy token survives delete", tok != nil, !e.b.bolt)
	// The global LID map is kept.
	lid, err := d.LIDs.GetLIDForPN(ctx, jid("5@s.whatsapp.net"))
	mustOK(t, err)
	eq(t, "LID map kept", lid, jid("50@lid"))
	// The other device is untouched.
	sess, err = e.get(dev2).Sessions.GetSession(ctx, "5:0")
	mustOK(t, err)
	eq(t, "other device's session", sess, []byte("sess"))
}

func caseDeviceWriteAfterDelete(t *testing.T, e *env) {
	d := e.add(dev1)
	sessions := d.Sessions
	mustOK(t, e.c.DeleteDevice(ctx, d))
	mustErr(t, sessions.PutSession(ctx, "1:0", []byte("late")), "PutSession after DeleteDevice")
	if got, err := e.c.GetDevice(ctx, dev1); err != nil || got != nil {
		t.Fatalf("a late write resurrected the device: %v, %v", got, err)
	}
}

func caseIdentity(t *testing.T, e *env) {
	d := e.add(dev1)
	ids := d.Identities
	k1, k2 := [32]byte{1}, [32]byte{2}
	ok, err := ids.IsTrustedIdentity(ctx, "222:0", k1)
	mustOK(t, err)
	eq(t, "unknown identity trusted", ok, true)
	for _, a := range []string{"222:0", "222:3", "2222:0", "222_1:0"} {
		mustOK(t, ids.PutIdentity(ctx, a, k1))
	}
	mustOK(t, ids.PutIdentity(ctx, "222:0", k2)) // upsert
	e.reopen()
	ids = e.get(dev1).Identities
	trust := func(addr string, k [32]byte) bool {
		ok, err := ids.IsTrustedIdentity(ctx, addr, k)
		mustOK(t, err)
		return ok
	}
	eq(t, "upserted key trusted", trust("222:0", k2), true)
	eq(t, "old key untrusted", trust("222:0", k1), false)
	mustOK(t, ids.DeleteAllIdentities(ctx, "222"))
	eq(t, "222:0 deleted", trust("222:0", k1), true)
	eq(t, "222:3 deleted", trust("222:3", k2), true)
	eq(t, "2222:0 kept", trust("2222:0", k2), false)
	eq(t, "222_1:0 kept", trust("222_1:0", k2), false)
	mustOK(t, ids.DeleteIdentity(ctx, "2222:0"))
	eq(t, "2222:0 deleted exactly", trust("2222:0", k2), true)
	eq(t, "222_1:0 still kept", trust("222_1:0", k2), false)
}

func caseSession(t *testing.T, e *env) {
	s := e.add(dev1).Sessions
	got, err := s.GetSession(ctx, "1:0")
	mustOK(t, err)
	eq(t, "missing session", got, []byte(nil))
	has, err := s.HasSession(ctx, "1:0")
	mustOK(t, err)
	eq(t, "HasSession missing", has, false)
	many, err := s.GetManySessions(ctx, nil)
	mustOK(t, err)
	eq(t, "GetManySessions(nil)", many, map[string][]byte(nil))

	mustOK(t, s.PutSession(ctx, "1:0", []byte("a")))
	mustOK(t, s.PutSession(ctx, "1:0", []byte("b"))) // upsert
	mustOK(t, s.PutSession(ctx, "nil:0", nil))
	mustOK(t, s.PutManySessions(ctx, map[string][]byte{"12:1": []byte("c"), "12:2": []byte("d"), "123:0": []byte("e")}))
	e.reopen()
	s = e.get(dev1).Sessions
	got, err = s.GetSession(ctx, "1:0")
	mustOK(t, err)
	eq(t, "upserted session", got, []byte("b"))
	has, err = s.HasSession(ctx, "nil:0")
	mustOK(t, err)
	eq(t, "HasSession(nil session)", has, true)
	got, err = s.GetSession(ctx, "nil:0")
	mustOK(t, err)
	eq(t, "nil session", got, []byte(nil))
	many, err = s.GetManySessions(ctx, []string{"1:0", "12:1", "404:0"})
	mustOK(t, err)
	eq(t, "GetManySessions", many, map[string][]byte{"1:0": []byte("b"), "12:1": []byte("c"), "404:0": nil})
	mustOK(t, s.DeleteAllSessions(ctx, "12"))
	mustOK(t, s.DeleteSession(ctx, "1:0"))
	many, err = s.GetManySessions(ctx, []string{"1:0", "12:1", "12:2", "123:0"})
	mustOK(t, err)
	eq(t, "after deletes", many, map[string][]byte{"1:0": nil, "12:1": nil, "12:2": nil, "123:0": []byte("e")})
}

func caseMigratePNToLID(t *testing.T, e *env) {
	d := e.add(dev1)
	pn, lid := jid("222@s.whatsapp.net"), jid("333@lid")
	mustOK(t, d.Sessions.PutSession(ctx, "222:0", []byte("pn0")))
	mustOK(t, d.Sessions.PutSession(ctx, "222:5", []byte("pn5")))
	mustOK(t, d.Sessions.PutSession(ctx, "333_1:0", []byte("old lid0"))) // overwritten by the PN row
	mustOK(t, d.Sessions.PutSession(ctx, "2222:0", []byte("other")))
	mustOK(t, d.Identities.PutIdentity(ctx, "222:5", [32]byte{5}))
	mustOK(t, d.SenderKeys.PutSenderKey(ctx, "g@g.us", "222:5", []byte("sk")))
	mustOK(t, d.Sessions.MigratePNToLID(ctx, pn, lid))
	// Once per PN per process: a new PN row is not migrated by a second call.
	mustOK(t, d.Sessions.PutSession(ctx, "222:9", []byte("late")))
	mustOK(t, d.Sessions.MigratePNToLID(ctx, pn, lid))
	e.reopen()
	d = e.get(dev1)
	many, err := d.Sessions.GetManySessions(ctx, []string{"222:0", "222:5", "333_1:0", "333_1:5", "2222:0", "222:9", "333_1:9"})
	mustOK(t, err)
	eq(t, "sessions after migration", many, map[string][]byte{
		"222:0": nil, "222:5": nil, "333_1:0": []byte("pn0"), "333_1:5": []byte("pn5"),
		"2222:0": []byte("other"), "222:9": []byte("late"), "333_1:9": nil,
	})
	ok, err := d.Identities.IsTrustedIdentity(ctx, "333_1:5", [32]byte{6})
	mustOK(t, err)
	eq(t, "identity moved (other key untrusted)", ok, false)
	ok, err = d.Identities.IsTrustedIdentity(ctx, "222:5", [32]byte{6})
	mustOK(t, err)
	eq(t, "PN identity deleted", ok, true)
	sk, err := d.SenderKeys.GetSenderKey(ctx, "g@g.us", "333_1:5")
	mustOK(t, err)
	eq(t, "sender key moved", sk, []byte("sk"))
	sk, err = d.SenderKeys.GetSenderKey(ctx, "g@g.us", "222:5")
	mustOK(t, err)
	eq(t, "PN sender key deleted", sk, []byte(nil))
}

func keyIDs(ks []*keys.PreKey) []uint32 {
	out := make([]uint32, len(ks))
	for i, k := range ks {
		out[i] = k.KeyID
	}
	return out
}

func casePreKeys(t *testing.T, e *env) {
	pk := e.add(dev1).PreKeys
	none, err := pk.GetOrGenPreKeys(ctx, 0)
	mustOK(t, err)
	eq(t, "GetOrGenPreKeys(0)", len(none), 0)
	first, err := pk.GetOrGenPreKeys(ctx, 5)
	mustOK(t, err)
	eq(t, "first IDs", keyIDs(first), []uint32{1, 2, 3, 4, 5})
	e.reopen()
	pk = e.get(dev1).PreKeys
	again, err := pk.GetOrGenPreKeys(ctx, 3)
	mustOK(t, err)
	eq(t, "un-uploaded keys returned again", keyIDs(again), []uint32{1, 2, 3})
	eq(t, "same key material", *again[2].Priv, *first[2].Priv)
	eq(t, "public key re-derived", *again[2].Pub, *first[2].Pub)
	mustOK(t, pk.MarkPreKeysAsUploaded(ctx, 3))
	n, err := pk.UploadedPreKeyCount(ctx)
	mustOK(t, err)
	eq(t, "uploaded count (inclusive)", n, 3)
	next, err := pk.GetOrGenPreKeys(ctx, 4)
	mustOK(t, err)
	eq(t, "existing then new", keyIDs(next), []uint32{4, 5, 6, 7})
	eq(t, "key 4 kept", *next[0].Priv, *first[3].Priv)
	one, err := pk.GenOnePreKey(ctx)
	mustOK(t, err)
	eq(t, "GenOnePreKey ID", one.KeyID, uint32(8))
	e.reopen()
	pk = e.get(dev1).PreKeys
	n, err = pk.UploadedPreKeyCount(ctx)
	mustOK(t, err)
	eq(t, "GenOnePreKey is uploaded", n, 4)
	got, err := pk.GetPreKey(ctx, 8)
	mustOK(t, err)
	eq(t, "GetPreKey", [2]any{got.KeyID, *got.Priv}, [2]any{uint32(8), *one.Priv})
	unup, err := pk.GetOrGenPreKeys(ctx, 4)
	mustOK(t, err)
	eq(t, "un-uploaded skip uploaded 8", keyIDs(unup), []uint32{4, 5, 6, 7})
}

func casePreKeyReuse(t *testing.T, e *env) {
	pk := e.add(dev1).PreKeys
	got, err := pk.GetPreKey(ctx, 1)
	mustOK(t, err)
	eq(t, "missing prekey", got == nil, true)
	mustOK(t, pk.RemovePreKey(ctx, 42)) // missing is fine
	_, err = pk.GetOrGenPreKeys(ctx, 3)
	mustOK(t, err)
	mustOK(t, pk.RemovePreKey(ctx, 3))
	one, err := pk.GenOnePreKey(ctx)
	mustOK(t, err)
	eq(t, "MAX+1 reuses a removed top ID", one.KeyID, uint32(3))
	mustOK(t, pk.RemovePreKey(ctx, 1))
	two, err := pk.GenOnePreKey(ctx)
	mustOK(t, err)
	eq(t, "a removed low ID is not reused", two.KeyID, uint32(4))
	got, err = pk.GetPreKey(ctx, 1)
	mustOK(t, err)
	eq(t, "removed prekey", got == nil, true)
}

func caseSenderKey(t *testing.T, e *env) {
	sk := e.add(dev1).SenderKeys
	got, err := sk.GetSenderKey(ctx, "g@g.us", "1:0")
	mustOK(t, err)
	eq(t, "missing", got, []byte(nil))
	mustOK(t, sk.PutSenderKey(ctx, "g@g.us", "1:0", []byte("a")))
	mustOK(t, sk.PutSenderKey(ctx, "g@g.us", "1:0", []byte("b")))
	mustOK(t, sk.PutSenderKey(ctx, "h@g.us", "1:0", []byte("c")))
	mustErr(t, sk.PutSenderKey(ctx, "g@g.us", "2:0", nil), "nil sender key")
	e.reopen()
	sk = e.get(dev1).SenderKeys
	got, err = sk.GetSenderKey(ctx, "g@g.us", "1:0")
	mustOK(t, err)
	eq(t, "upserted", got, []byte("b"))
	got, err = sk.GetSenderKey(ctx, "h@g.us", "1:0")
	mustOK(t, err)
	eq(t, "per group", got, []byte("c"))
}

func caseSyncKey(t *testing.T, e *env) {
	ks := e.add(dev1).AppStateKeys
	latest, err := ks.GetLatestAppStateSyncKeyID(ctx)
	mustOK(t, err)
	eq(t, "latest of none", latest, []byte(nil))
	got, err := ks.GetAppStateSyncKey(ctx, []byte("a"))
	mustOK(t, err)
	eq(t, "missing", got == nil, true)
	k := func(data string, ts int64) store.AppStateSyncKey {
		return store.AppStateSyncKey{Data: []byte(data), Fingerprint: []byte("fp-" + data), Timestamp: ts}
	}
	mustOK(t, ks.PutAppStateSyncKey(ctx, []byte("a"), k("a1", 10)))
	mustOK(t, ks.PutAppStateSyncKey(ctx, []byte("a"), k("a2", 10))) // equal: ignored
	mustOK(t, ks.PutAppStateSyncKey(ctx, []byte("b"), k("b1", 30)))
	mustOK(t, ks.PutAppStateSyncKey(ctx, []byte("b"), k("b0", 20))) // older: ignored
	mustOK(t, ks.PutAppStateSyncKey(ctx, []byte("c"), k("c1", 20)))
	mustOK(t, ks.PutAppStateSyncKey(ctx, []byte("c"), k("c2", 25))) // newer: replaces
	mustErr(t, ks.PutAppStateSyncKey(ctx, []byte("d"), store.AppStateSyncKey{Data: []byte("x"), Timestamp: 1}), "nil fingerprint")
	e.reopen()
	ks = e.get(dev1).AppStateKeys
	for id, want := range map[string]store.AppStateSyncKey{"a": k("a1", 10), "b": k("b1", 30), "c": k("c2", 25)} {
		got, err := ks.GetAppStateSyncKey(ctx, []byte(id))
		mustOK(t, err)
		eq(t, "sync key "+id, *got, want)
	}
	latest, err = ks.GetLatestAppStateSyncKeyID(ctx)
	mustOK(t, err)
	eq(t, "latest", latest, []byte("b"))
}

func caseAppState(t *testing.T, e *env) {
	as := e.add(dev1).AppState
	v, h, err := as.GetAppStateVersion(ctx, "regular")
	mustOK(t, err)
	eq(t, "missing version", [2]any{v, h}, [2]any{uint64(0), [128]byte{}})
	idxA, idxB := fill(32, 10), fill(32, 20)
	mustErr(t, as.PutAppStateMutationMACs(ctx, "regular", 1, []store.AppStateMutationMAC{{IndexMAC: idxA, ValueMAC: fill(32, 1)}}), "MACs without a version")
	mustOK(t, as.PutAppStateMutationMACs(ctx, "regular", 1, nil))
	mustOK(t, as.PutAppStateVersion(ctx, "regular", 1, [128]byte{1}))
	mustOK(t, as.PutAppStateMutationMACs(ctx, "regular", 1, []store.AppStateMutationMAC{{IndexMAC: idxA, ValueMAC: fill(32, 1)}, {IndexMAC: idxB, ValueMAC: fill(32, 2)}}))
	mustOK(t, as.PutAppStateVersion(ctx, "regular", 2, [128]byte{2})) // upsert keeps MACs
	mustOK(t, as.PutAppStateMutationMACs(ctx, "regular", 2, []store.AppStateMutationMAC{{IndexMAC: idxA, ValueMAC: fill(32, 3)}}))
	mustOK(t, as.PutAppStateVersion(ctx, "other", 7, [128]byte{7}))
	mustOK(t, as.PutAppStateMutationMACs(ctx, "other", 7, []store.AppStateMutationMAC{{IndexMAC: idxA, ValueMAC: fill(32, 7)}}))
	e.reopen()
	as = e.get(dev1).AppState
	mac := func(name string, idx []byte) []byte {
		m, err := as.GetAppStateMutationMAC(ctx, name, idx)
		mustOK(t, err)
		return m
	}
	v, h, err = as.GetAppStateVersion(ctx, "regular")
	mustOK(t, err)
	eq(t, "version", [2]any{v, h}, [2]any{uint64(2), [128]byte{2}})
	eq(t, "highest version wins", mac("regular", idxA), fill(32, 3))
	eq(t, "MAC kept by version upsert", mac("regular", idxB), fill(32, 2))
	eq(t, "missing MAC", mac("regular", fill(32, 99)), []byte(nil))
	mustOK(t, as.DeleteAppStateMutationMACs(ctx, "regular", nil))
	mustOK(t, as.DeleteAppStateMutationMACs(ctx, "regular", [][]byte{idxA}))
	eq(t, "delete removes all versions", mac("regular", idxA), []byte(nil))
	eq(t, "other index kept", mac("regular", idxB), fill(32, 2))
	eq(t, "other name kept", mac("other", idxA), fill(32, 7))
	mustOK(t, as.DeleteAppStateVersion(ctx, "regular"))
	e.reopen()
	as = e.get(dev1).AppState
	v, _, err = as.GetAppStateVersion(ctx, "regular")
	mustOK(t, err)
	eq(t, "deleted version", v, uint64(0))
	eq(t, "delete version cascades to MACs", mac("regular", idxB), []byte(nil))
	eq(t, "other name survives", mac("other", idxA), fill(32, 7))
}

func caseAppStateErrors(t *testing.T, e *env) {
	as := e.add(dev1).AppState
	mustOK(t, as.PutAppStateVersion(ctx, "regular", 1, [128]byte{1}))
	idxA, idxB := fill(32, 10), fill(32, 20)
	mustOK(t, as.PutAppStateMutationMACs(ctx, "regular", 1, []store.AppStateMutationMAC{{IndexMAC: idxA, ValueMAC: fill(32, 1)}}))
	err := as.PutAppStateMutationMACs(ctx, "regular", 1, []store.AppStateMutationMAC{{IndexMAC: idxB, ValueMAC: fill(32, 2)}, {IndexMAC: idxA, ValueMAC: fill(32, 3)}})
	mustErr(t, err, "duplicate (version, index MAC)")
	got, err := as.GetAppStateMutationMAC(ctx, "regular", idxB)
	mustOK(t, err)
	eq(t, "failed call stored nothing", got, []byte(nil))
	mustErr(t, as.PutAppStateMutationMACs(ctx, "regular", 2, []store.AppStateMutationMAC{{IndexMAC: idxB, ValueMAC: fill(31, 2)}}), "31-byte value MAC")
	mustErr(t, as.PutAppStateMutationMACs(ctx, "regular", 2, []store.AppStateMutationMAC{{IndexMAC: fill(31, 2), ValueMAC: fill(32, 2)}}), "31-byte index MAC")
}

func caseContactNames(t *testing.T, e *env) {
	c := e.add(dev1).Contacts
	u := jid("5@s.whatsapp.net")
	put := func(name string) (bool, string) {
		changed, prev, err := c.PutPushName(ctx, u, name)
		mustOK(t, err)
		return changed, prev
	}
	ci, err := c.GetContact(ctx, u)
	mustOK(t, err)
	eq(t, "missing contact", ci, types.ContactInfo{})
	eq(t, "empty push name on unknown contact", fmt2(put("")), fmt2(false, ""))
	eq(t, "first push name", fmt2(put("Ann")), fmt2(true, ""))
	eq(t, "same push name", fmt2(put("Ann")), fmt2(false, ""))
	e.reopen()
	c = e.get(dev1).Contacts
	eq(t, "changed push name", fmt2(put("Anna")), fmt2(true, "Ann"))
	changed, prev, err := c.PutBusinessName(ctx, u, "Shop")
	mustOK(t, err)
	eq(t, "business name", fmt2(changed, prev), fmt2(true, ""))
	changed, prev, err = c.PutBusinessName(ctx, u, "Shop")
	mustOK(t, err)
	eq(t, "same business name", fmt2(changed, prev), fmt2(false, ""))
	// whatsmeow calls PutContactName(ctx, jid, firstName, fullName).
	mustOK(t, c.PutContactName(ctx, u, "First", "Full Name"))
	e.reopen()
	c = e.get(dev1).Contacts
	ci, err = c.GetContact(ctx, u)
	mustOK(t, err)
	eq(t, "contact", ci, types.ContactInfo{Found: true, FirstName: "First", FullName: "Full Name", PushName: "Anna", BusinessName: "Shop"})
}

func fmt2(a bool, b string) [2]any { return [2]any{a, b} }

func caseContactBulk(t *testing.T, e *env) {
	c := e.add(dev1).Contacts
	u1, u2, u3 := jid("1@s.whatsapp.net"), jid("2@s.whatsapp.net"), jid("3@lid")
	_, _, err := c.PutPushName(ctx, u1, "Push1")
	mustOK(t, err)
	mustOK(t, c.PutManyRedactedPhones(ctx, []store.RedactedPhoneEntry{{JID: u1, RedactedPhone: "+1***1"}, {JID: u3, RedactedPhone: "+3***3"}, {JID: u3, RedactedPhone: "dup"}}))
	mustOK(t, c.PutAllContactNames(ctx, nil))
	mustOK(t, c.PutAllContactNames(ctx, []store.ContactEntry{
		{JID: u1, FirstName: "F1", FullName: "Full1"},
		{JID: u2, FirstName: "F2", FullName: "Full2"},
		{JID: u1, FirstName: "dup", FullName: "dup"}, // the first occurrence wins
	}))
	mustOK(t, c.PutManyRedactedPhones(ctx, []store.RedactedPhoneEntry{{JID: u2, RedactedPhone: "+2***2"}}))
	e.reopen()
	c = e.get(dev1).Contacts
	all, err := c.GetAllContacts(ctx)
	mustOK(t, err)
	eq(t, "all contacts", all, map[types.JID]types.ContactInfo{
		u1: {Found: true, FirstName: "F1", FullName: "Full1", PushName: "Push1", RedactedPhone: "+1***1"},
		u2: {Found: true, FirstName: "F2", FullName: "Full2", RedactedPhone: "+2***2"},
		u3: {Found: true, RedactedPhone: "+3***3"},
	})
	empty, err := e.add(dev2).Contacts.GetAllContacts(ctx)
	mustOK(t, err)
	if empty == nil || len(empty) != 0 {
		t.Fatalf("GetAllContacts(none) = %#v, want an empty non-nil map", empty)
	}
}

func caseChatSettings(t *testing.T, e *env) {
	cs := e.add(dev1).ChatSettings
	a, b, c := jid("1@s.whatsapp.net"), jid("2@g.us"), jid("3@s.whatsapp.net")
	got, err := cs.GetChatSettings(ctx, a)
	mustOK(t, err)
	eq(t, "missing", got, types.LocalChatSettings{})
	mustOK(t, cs.PutMutedUntil(ctx, a, store.MutedForever))
	mustOK(t, cs.PutPinned(ctx, a, true))
	mustOK(t, cs.PutMutedUntil(ctx, b, time.Unix(1700000000, 999)))
	mustOK(t, cs.PutArchived(ctx, b, true))
	mustOK(t, cs.PutArchived(ctx, c, true))
	mustOK(t, cs.PutMutedUntil(ctx, c, time.Unix(5, 0)))
	mustOK(t, cs.PutMutedUntil(ctx, c, time.Time{}))
	e.reopen()
	cs = e.get(dev1).ChatSettings
	for chat, want := range map[types.JID]types.LocalChatSettings{
		a: {Found: true, MutedUntil: store.MutedForever, Pinned: true},
		b: {Found: true, MutedUntil: time.Unix(1700000000, 0), Archived: true},
		c: {Found: true, Archived: true},
	} {
		got, err := cs.GetChatSettings(ctx, chat)
		mustOK(t, err)
		eq(t, "chat "+chat.String(), got, want)
	}
}

func caseMsgSecret(t *testing.T, e *env) {
	d := e.add(dev1)
	ms := d.MsgSecrets
	chatPN, chatLID := jid("5@s.whatsapp.net"), jid("50@lid")
	senderPN, senderLID := jid("6:3@s.whatsapp.net"), jid("60@lid")
	sec, snd, err := ms.GetMessageSecret(ctx, chatPN, senderPN, "X")
	mustOK(t, err)
	eq(t, "missing", [2]any{sec, snd}, [2]any{[]byte(nil), types.EmptyJID})
	mustOK(t, ms.PutMessageSecrets(ctx, nil))
	mustOK(t, ms.PutMessageSecret(ctx, chatPN, senderPN, "M1", []byte("first")))
	mustOK(t, ms.PutMessageSecret(ctx, chatPN, senderPN.ToNonAD(), "M1", []byte("second"))) // first wins
	mustOK(t, ms.PutMessageSecrets(ctx, []store.MessageSecretInsert{
		{Chat: chatPN, Sender: senderPN, ID: "M2", Secret: []byte("m2")},
		{Chat: chatPN, Sender: senderPN, ID: "M2", Secret: []byte("m2 again")},
	}))
	mustOK(t, d.LIDs.PutLIDMapping(ctx, chatLID, chatPN))
	mustOK(t, d.LIDs.PutLIDMapping(ctx, senderLID, senderPN.ToNonAD()))
	e.reopen()
	ms = e.get(dev1).MsgSecrets
	for _, q := range []struct {
		name         string
		chat, sender types.JID
		id           string
		want         string
	}{
		{"same JIDs (AD sender normalised)", chatPN, types.NewADJID("6", 0, 9), "M1", "first"},
		{"LID chat and sender via LID map", chatLID, senderLID, "M1", "first"},
		{"bulk first wins", chatPN, senderLID, "M2", "m2"},
	} {
		sec, snd, err := ms.GetMessageSecret(ctx, q.chat, q.sender, q.id)
		mustOK(t, err)
		eq(t, q.name, [2]any{string(sec), snd}, [2]any{q.want, senderPN.ToNonAD()})
	}
}

func casePrivacyToken(t *testing.T, e *env) {
	d := e.add(dev1)
	pt := d.PrivacyTokens
	pn, lid := jid("7@s.whatsapp.net"), jid("70@lid")
	got, err := pt.GetPrivacyToken(ctx, pn)
	mustOK(t, err)
	eq(t, "missing", got == nil, true)
	mustOK(t, pt.PutPrivacyTokens(ctx, store.PrivacyToken{User: types.NewADJID("7", 0, 4), Token: []byte("old"), Timestamp: time.Unix(100, 0)}))
	mustOK(t, pt.PutPrivacyTokens(ctx,
		store.PrivacyToken{User: lid, Token: []byte("new"), Timestamp: time.Unix(200, 0)},
		store.PrivacyToken{User: jid("8@s.whatsapp.net"), Token: []byte("eight"), Timestamp: time.Unix(50, 0)}))
	e.reopen()
	pt = e.get(dev1).PrivacyTokens
	got, err = pt.GetPrivacyToken(ctx, pn)
	mustOK(t, err)
	eq(t, "PN token before mapping", *got, store.PrivacyToken{User: pn, Token: []byte("old"), Timestamp: time.Unix(100, 0)})
	mustOK(t, e.get(dev1).LIDs.PutLIDMapping(ctx, lid, pn))
	got, err = pt.GetPrivacyToken(ctx, types.NewADJID("7", 0, 2))
	mustOK(t, err)
	eq(t, "newest across PN and LID, User = queried non-AD", *got, store.PrivacyToken{User: pn, Token: []byte("new"), Timestamp: time.Unix(200, 0)})
	got, err = pt.GetPrivacyToken(ctx, lid)
	mustOK(t, err)
	eq(t, "by LID", *got, store.PrivacyToken{User: lid, Token: []byte("new"), Timestamp: time.Unix(200, 0)})
	mustOK(t, pt.PutPrivacyTokens(ctx, store.PrivacyToken{User: pn, Token: []byte("newest"), Timestamp: time.Unix(300, 0)}))
	got, err = pt.GetPrivacyToken(ctx, lid)
	mustOK(t, err)
	eq(t, "upsert", string(got.Token), "newest")
}

func caseEventBuffer(t *testing.T, e *env) {
	eb := e.add(dev1).EventBuffer
	h := [32]byte{1}
	got, err := eb.GetBufferedEvent(ctx, h)
	mustOK(t, err)
	eq(t, "missing", got == nil, true)
	before := time.Now().Add(-time.Second)
	mustOK(t, eb.PutBufferedEvent(ctx, h, []byte("plain"), time.Unix(1700000000, 5)))
	mustErr(t, eb.PutBufferedEvent(ctx, h, []byte("again"), time.Unix(1, 0)), "duplicate hash")
	mustOK(t, eb.PutBufferedEvent(ctx, [32]byte{2}, nil, time.Unix(1, 0)))
	mustOK(t, eb.ClearBufferedEventPlaintext(ctx, [32]byte{9})) // missing: no-op
	e.reopen()
	eb = e.get(dev1).EventBuffer
	got, err = eb.GetBufferedEvent(ctx, h)
	mustOK(t, err)
	eq(t, "plaintext", got.Plaintext, []byte("plain"))
	eq(t, "server time (seconds)", got.ServerTime, time.Unix(1700000000, 0))
	if got.InsertTime.Before(before) || got.InsertTime.After(time.Now()) || got.InsertTime.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("insert time %v: want now, millisecond precision", got.InsertTime)
	}
	mustOK(t, eb.ClearBufferedEventPlaintext(ctx, h))
	e.reopen()
	got, err = e.get(dev1).EventBuffer.GetBufferedEvent(ctx, h)
	mustOK(t, err)
	eq(t, "cleared plaintext", got.Plaintext, []byte(nil))
	eq(t, "cleared keeps server time", got.ServerTime, time.Unix(1700000000, 0))
}

func caseEventBufferPurge(t *testing.T, e *env) {
	d1, d2 := e.add(dev1), e.add(dev2)
	now := time.Now()
	e.putEventAt(t, d1, [32]byte{1}, []byte("old1"), now.Add(-15*24*time.Hour))
	e.putEventAt(t, d2, [32]byte{2}, []byte("old2"), now.Add(-14*24*time.Hour-time.Minute))
	e.putEventAt(t, d1, [32]byte{3}, []byte("new1"), now.Add(-13*24*time.Hour))
	e.putEventAt(t, d2, [32]byte{4}, []byte("new2"), now)
	mustOK(t, d1.EventBuffer.DeleteOldBufferedHashes(ctx)) // deletes for every device
	e.reopen()
	for _, c := range []struct {
		dev  types.JID
		h    byte
		kept bool
	}{{dev1, 1, false}, {dev2, 2, false}, {dev1, 3, true}, {dev2, 4, true}} {
		got, err := e.get(c.dev).EventBuffer.GetBufferedEvent(ctx, [32]byte{c.h})
		mustOK(t, err)
		eq(t, "event kept", got != nil, c.kept)
	}
}

var errRollback = errors.New("roll back")

func caseTxn(t *testing.T, e *env) {
	d := e.add(dev1)
	err := d.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
		mustOK(t, d.Sessions.PutSession(ctx, "1:0", []byte("in txn")))
		got, err := d.Sessions.GetSession(ctx, "1:0")
		mustOK(t, err)
		eq(t, "read your writes", got, []byte("in txn"))
		// A nested transaction joins the outer one.
		mustOK(t, d.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			return d.EventBuffer.PutBufferedEvent(ctx, [32]byte{1}, []byte("pt"), time.Unix(1, 0))
		}))
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("DoDecryptionTxn = %v, want errRollback", err)
	}
	e.reopen()
	d = e.get(dev1)
	got, err := d.Sessions.GetSession(ctx, "1:0")
	mustOK(t, err)
	eq(t, "rolled back session", got, []byte(nil))
	ev, err := d.EventBuffer.GetBufferedEvent(ctx, [32]byte{1})
	mustOK(t, err)
	eq(t, "nested write rolled back", ev == nil, true)
	mustOK(t, d.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
		if err := d.Sessions.PutSession(ctx, "1:0", []byte("committed")); err != nil {
			return err
		}
		return d.EventBuffer.PutBufferedEvent(ctx, [32]byte{1}, []byte("pt"), time.Unix(1, 0))
	}))
	e.reopen()
	d = e.get(dev1)
	got, err = d.Sessions.GetSession(ctx, "1:0")
	mustOK(t, err)
	eq(t, "committed session", got, []byte("committed"))
	ev, err = d.EventBuffer.GetBufferedEvent(ctx, [32]byte{1})
	mustOK(t, err)
	eq(t, "committed event", ev.Plaintext, []byte("pt"))
}

func caseLID(t *testing.T, e *env) {
	l := e.add(dev1).LIDs
	pn, lid := jid("222@s.whatsapp.net"), jid("333@lid")
	mustErr(t, l.PutLIDMapping(ctx, pn, lid), "swapped servers")
	_, err := l.GetLIDForPN(ctx, lid)
	mustErr(t, err, "GetLIDForPN(LID)")
	_, err = l.GetPNForLID(ctx, pn)
	mustErr(t, err, "GetPNForLID(PN)")
	got, err := l.GetLIDForPN(ctx, pn)
	mustOK(t, err)
	eq(t, "unknown", got, types.JID{})
	mustOK(t, l.PutLIDMapping(ctx, lid, pn))
	mustOK(t, l.PutLIDMapping(ctx, lid, pn)) // repeat
	e.reopen()
	l = e.get(dev1).LIDs
	many, err := l.GetManyLIDsForPNs(ctx, nil)
	mustOK(t, err)
	eq(t, "GetManyLIDsForPNs(nil)", many, map[types.JID]types.JID(nil))
	many, err = l.GetManyLIDsForPNs(ctx, []types.JID{types.NewADJID("222", 0, 7), jid("404@s.whatsapp.net"), lid})
	mustOK(t, err)
	// Both keep the device, also on sqlstore's cold cache (just restarted):
	// whatsmeow before 2026 dropped it there, the bbolt store never did.
	want := types.JID{User: "333", Device: 7, Server: types.HiddenUserServer}
	eq(t, "GetManyLIDsForPNs", many, map[types.JID]types.JID{types.NewADJID("222", 0, 7): want})
	got, err = l.GetLIDForPN(ctx, types.NewADJID("222", 0, 7))
	mustOK(t, err)
	eq(t, "LID for PN keeps device", got, types.JID{User: "333", Device: 7, Server: types.HiddenUserServer})
	got, err = l.GetPNForLID(ctx, types.JID{User: "333", Device: 2, Server: types.HiddenUserServer})
	mustOK(t, err)
	eq(t, "PN for LID keeps device", got, types.JID{User: "222", Device: 2, Server: types.DefaultUserServer})
}

func caseLIDRemapBulk(t *testing.T, e *env) {
	l := e.add(dev1).LIDs
	pnA, pnB := jid("1@s.whatsapp.net"), jid("2@s.whatsapp.net")
	lidX, lidY := jid("10@lid"), jid("20@lid")
	mustOK(t, l.PutLIDMapping(ctx, lidX, pnA))
	mustOK(t, l.PutLIDMapping(ctx, lidY, pnA)) // pnA remapped: lidX loses its PN
	mustOK(t, l.PutLIDMapping(ctx, lidY, pnB)) // lidY remapped: pnA loses its LID
	e.reopen()
	l = e.get(dev1).LIDs
	pn := func(lid types.JID) types.JID { j, err := l.GetPNForLID(ctx, lid); mustOK(t, err); return j }
	lidOf := func(pn types.JID) types.JID { j, err := l.GetLIDForPN(ctx, pn); mustOK(t, err); return j }
	eq(t, "lidX unmapped", pn(lidX), types.JID{})
	eq(t, "pnA unmapped", lidOf(pnA), types.JID{})
	eq(t, "lidY -> pnB", pn(lidY), pnB)
	eq(t, "pnB -> lidY", lidOf(pnB), lidY)
	mustOK(t, l.PutManyLIDMappings(ctx, []store.LIDMapping{
		{LID: pnA, PN: lidX}, // invalid: skipped
		{LID: jid("30@lid"), PN: jid("3@s.whatsapp.net")},
		{LID: jid("40@lid"), PN: jid("3@s.whatsapp.net")}, // later pair wins
		{LID: jid("50@lid"), PN: jid("5@s.whatsapp.net")},
		{LID: jid("50@lid"), PN: jid("5@s.whatsapp.net")}, // exact duplicate
	}))
	e.reopen()
	l = e.get(dev1).LIDs
	eq(t, "3 -> 40", lidOf(jid("3@s.whatsapp.net")), jid("40@lid"))
	eq(t, "30 unmapped", pn(jid("30@lid")), types.JID{})
	eq(t, "50 -> 5", pn(jid("50@lid")), jid("5@s.whatsapp.net"))
	eq(t, "invalid pair skipped", lidOf(pnA), types.JID{})
}

func caseSyncKeyAll(t *testing.T, e *env) {
	ak := e.add(dev1).AppStateKeys
	all, err := ak.GetAllAppStateSyncKeys(ctx)
	mustOK(t, err)
	eq(t, "no keys", len(all), 0)
	put := func(id string, data string, ts int64) {
		mustOK(t, ak.PutAppStateSyncKey(ctx, []byte(id), store.AppStateSyncKey{Data: []byte(data), Fingerprint: []byte("fp " + data), Timestamp: ts}))
	}
	put("a", "a100", 100)
	put("c", "c300", 300)
	put("b", "b200", 200)
	put("a", "a50", 50)   // older: ignored
	put("b", "b250", 250) // newer: replaces
	mustOK(t, e.add(dev2).AppStateKeys.PutAppStateSyncKey(ctx, []byte("z"), store.AppStateSyncKey{Data: []byte("other device"), Fingerprint: []byte{}, Timestamp: 999}))
	e.reopen()
	all, err = e.get(dev1).AppStateKeys.GetAllAppStateSyncKeys(ctx)
	mustOK(t, err)
	var got []store.AppStateSyncKey
	for _, k := range all {
		got = append(got, *k)
	}
	eq(t, "all keys, newest first, this device only", got, []store.AppStateSyncKey{
		{Data: []byte("c300"), Fingerprint: []byte("fp c300"), Timestamp: 300},
		{Data: []byte("b250"), Fingerprint: []byte("fp b250"), Timestamp: 250},
		{Data: []byte("a100"), Fingerprint: []byte("fp a100"), Timestamp: 100},
	})
}

func casePrivacyTokenSenderTS(t *testing.T, e *env) {
	pt := e.add(dev1).PrivacyTokens
	u, fresh := jid("7@lid"), jid("8@lid")
	tok := func(user types.JID, token string, ts int64, sender time.Time) store.PrivacyToken {
		return store.PrivacyToken{User: user, Token: []byte(token), Timestamp: time.Unix(ts, 0), SenderTimestamp: sender}
	}
	get := func(user types.JID) store.PrivacyToken {
		t.Helper()
		got, err := pt.GetPrivacyToken(ctx, user)
		mustOK(t, err)
		if got == nil {
			t.Fatalf("token for %s missing", user)
		}
		return *got
	}
	mustOK(t, pt.PutPrivacyTokens(ctx, tok(u, "first", 200, time.Unix(150, 0)), tok(fresh, "no sender", 10, time.Time{})))
	e.reopen()
	pt = e.get(dev1).PrivacyTokens
	eq(t, "stored with sender timestamp", get(u), tok(u, "first", 200, time.Unix(150, 0)))
	eq(t, "no sender timestamp reads as zero", get(fresh), tok(fresh, "no sender", 10, time.Time{}))
	mustOK(t, pt.PutPrivacyTokens(ctx, tok(u, "older", 199, time.Unix(999, 0))))
	eq(t, "an older token is ignored, sender timestamp too", get(u), tok(u, "first", 200, time.Unix(150, 0)))
	mustOK(t, pt.PutPrivacyTokens(ctx, tok(u, "equal", 200, time.Time{})))
	eq(t, "an equally new token replaces; a zero sender timestamp keeps the stored one", get(u), tok(u, "equal", 200, time.Unix(150, 0)))
	// whatsmeow's history sync sends time.Unix(0, 0) when a conversation has
	// no sender timestamp: that is a value, not NULL, and replaces.
	mustOK(t, pt.PutPrivacyTokens(ctx, tok(u, "history", 300, time.Unix(0, 0))))
	e.reopen()
	pt = e.get(dev1).PrivacyTokens
	eq(t, "time.Unix(0, 0) replaces the sender timestamp", get(u), tok(u, "history", 300, time.Unix(0, 0)))
	// whatsmeow's issuePrivacyTokenAndSave: get, set SenderTimestamp, put.
	existing := get(u)
	existing.SenderTimestamp = time.Unix(310, 0)
	mustOK(t, pt.PutPrivacyTokens(ctx, existing))
	eq(t, "re-put with a sender timestamp", get(u), tok(u, "history", 300, time.Unix(310, 0)))
	// Duplicates in one call apply in order, each against the previous.
	mustOK(t, pt.PutPrivacyTokens(ctx, tok(u, "a", 400, time.Time{}), tok(u, "b", 350, time.Unix(1, 0))))
	eq(t, "older duplicate in the same call ignored", get(u), tok(u, "a", 400, time.Unix(310, 0)))
	mustOK(t, pt.PutPrivacyTokens(ctx, tok(u, "x", 500, time.Unix(5, 0)), tok(u, "y", 500, time.Time{})))
	e.reopen()
	pt = e.get(dev1).PrivacyTokens
	eq(t, "equal duplicate in the same call replaces, keeping the sender timestamp", get(u), tok(u, "y", 500, time.Unix(5, 0)))
}

func casePrivacyTokenExpire(t *testing.T, e *env) {
	d1, d2 := e.add(dev1), e.add(dev2)
	var toks []store.PrivacyToken
	for i, ts := range []int64{100, 199, 200, 300} {
		toks = append(toks, store.PrivacyToken{User: jid(fmt.Sprintf("%d@lid", i+1)), Token: []byte{byte(i)}, Timestamp: time.Unix(ts, 0)})
	}
	mustOK(t, d1.PrivacyTokens.PutPrivacyTokens(ctx, toks...))
	mustOK(t, d2.PrivacyTokens.PutPrivacyTokens(ctx, toks[0]))
	n, err := d1.PrivacyTokens.DeleteExpiredPrivacyTokens(ctx, time.Unix(200, 0))
	mustOK(t, err)
	eq(t, "deleted (timestamp strictly before the cutoff)", n, int64(2))
	n, err = d1.PrivacyTokens.DeleteExpiredPrivacyTokens(ctx, time.Unix(200, 0))
	mustOK(t, err)
	eq(t, "deleted again", n, int64(0))
	e.reopen()
	for _, c := range []struct {
		dev  types.JID
		user types.JID
		kept bool
	}{{dev1, toks[0].User, false}, {dev1, toks[1].User, false}, {dev1, toks[2].User, true}, {dev1, toks[3].User, true}, {dev2, toks[0].User, true}} {
		got, err := e.get(c.dev).PrivacyTokens.GetPrivacyToken(ctx, c.user)
		mustOK(t, err)
		eq(t, fmt.Sprintf("%s token of %s kept", c.dev, c.user), got != nil, c.kept)
	}
	n, err = e.get(dev2).PrivacyTokens.DeleteExpiredPrivacyTokens(ctx, time.Unix(1000, 0))
	mustOK(t, err)
	eq(t, "the other device's own expiry", n, int64(1))
}

func caseNCTSalt(t *testing.T, e *env) {
	d1, d2 := e.add(dev1), e.add(dev2)
	salt, err := d1.NCTSalt.GetNCTSalt(ctx)
	mustOK(t, err)
	eq(t, "missing salt", salt, []byte(nil))
	mustOK(t, d1.NCTSalt.DeleteNCTSalt(ctx)) // none stored: no-op
	mustErr(t, d1.NCTSalt.PutNCTSalt(ctx, nil), "nil salt (NOT NULL)")
	mustOK(t, d1.NCTSalt.PutNCTSalt(ctx, []byte("salt one")))
	mustOK(t, d2.NCTSalt.PutNCTSalt(ctx, []byte("other device")))
	mustOK(t, d1.NCTSalt.PutNCTSalt(ctx, []byte("salt two"))) // replaces
	e.reopen()
	d1, d2 = e.get(dev1), e.get(dev2)
	salt, err = d1.NCTSalt.GetNCTSalt(ctx)
	mustOK(t, err)
	eq(t, "replaced salt", salt, []byte("salt two"))
	mustOK(t, d1.NCTSalt.DeleteNCTSalt(ctx))
	e.reopen()
	d1, d2 = e.get(dev1), e.get(dev2)
	salt, err = d1.NCTSalt.GetNCTSalt(ctx)
	mustOK(t, err)
	eq(t, "deleted salt", salt, []byte(nil))
	salt, err = d2.NCTSalt.GetNCTSalt(ctx)
	mustOK(t, err)
	eq(t, "other device's salt", salt, []byte("other device"))
	// A deleted device: writes fail (foreign key), reads find nothing.
	nct := d2.NCTSalt
	mustOK(t, e.c.DeleteDevice(ctx, d2))
	mustErr(t, nct.PutNCTSalt(ctx, []byte("late")), "PutNCTSalt after DeleteDevice")
	salt, err = nct.GetNCTSalt(ctx)
	mustOK(t, err)
	eq(t, "salt of a deleted device", salt, []byte(nil))
	mustOK(t, nct.DeleteNCTSalt(ctx))
	if got, err := e.c.GetDevice(ctx, dev2); err != nil || got != nil {
		t.Fatalf("a late salt write resurrected the device: %v, %v", got, err)
	}
}

// wantOutgoingMissing asserts GetOutgoingEvent's answer for a message that is
// not kept. Documented difference: sqlstore returns sql.ErrNoRows, the bbolt
// store devicestore.ErrNotFound (whatsmeow only wraps either).
func (e *env) wantOutgoingMissing(err error, what string) {
	e.t.Helper()
	want := sql.ErrNoRows
	if e.b.bolt {
		want = devicestore.ErrNotFound
	}
	if !errors.Is(err, want) {
		e.t.Fatalf("%s: GetOutgoingEvent = %v, want %v", what, err, want)
	}
}

func caseOutgoing(t *testing.T, e *env) {
	d1, d2 := e.add(dev1), e.add(dev2)
	eb := d1.EventBuffer
	pn, lid, other := jid("5@s.whatsapp.net"), jid("50@lid"), jid("6@s.whatsapp.net")
	_, _, err := eb.GetOutgoingEvent(ctx, pn, lid, "M1")
	e.wantOutgoingMissing(err, "nothing kept")
	mustErr(t, eb.AddOutgoingEvent(ctx, pn, "NIL", "wa", nil), "nil plaintext (NOT NULL)")
	mustErr(t, eb.AddOutgoingEvent(ctx, types.EmptyJID, "NIL", "wa", []byte("x")), "empty chat (NOT NULL)")
	mustOK(t, eb.AddOutgoingEvent(ctx, pn, "M1", "wa", []byte("m1 first")))
	mustOK(t, eb.AddOutgoingEvent(ctx, lid, "M2", "fb", []byte("m2")))
	mustOK(t, eb.AddOutgoingEvent(ctx, pn, "M1", "fb", []byte("m1 again"))) // same chat and id: replaces
	mustOK(t, eb.AddOutgoingEvent(ctx, other, "M1", "wa", []byte("m1 to other")))
	mustOK(t, eb.AddOutgoingEvent(ctx, jid("g1@g.us"), "G1", "wa", []byte{}))
	mustOK(t, d2.EventBuffer.AddOutgoingEvent(ctx, pn, "D2", "wa", []byte("dev2")))
	e.reopen()
	eb = e.get(dev1).EventBuffer
	get := func(chat, alt types.JID, id types.MessageID) [2]string {
		t.Helper()
		f, pt, err := eb.GetOutgoingEvent(ctx, chat, alt, id)
		mustOK(t, err)
		return [2]string{f, string(pt)}
	}
	eq(t, "by chat, no alt", get(pn, types.EmptyJID, "M1"), [2]string{"fb", "m1 again"})
	eq(t, "by chat, with alt", get(pn, lid, "M1"), [2]string{"fb", "m1 again"})
	eq(t, "by alt chat", get(lid, pn, "M1"), [2]string{"fb", "m1 again"})
	eq(t, "LID chat by alt", get(pn, lid, "M2"), [2]string{"fb", "m2"})
	eq(t, "same id, other chat", get(other, types.EmptyJID, "M1"), [2]string{"wa", "m1 to other"})
	eq(t, "empty plaintext", get(jid("g1@g.us"), types.EmptyJID, "G1"), [2]string{"wa", ""})
	_, _, err = eb.GetOutgoingEvent(ctx, types.NewADJID("5", 0, 2), types.EmptyJID, "M1")
	e.wantOutgoingMissing(err, "the chat is matched as stored (an AD JID is another chat)")
	_, _, err = eb.GetOutgoingEvent(ctx, lid, types.EmptyJID, "M1")
	e.wantOutgoingMissing(err, "other chat, no alt")
	_, _, err = eb.GetOutgoingEvent(ctx, pn, lid, "M3")
	e.wantOutgoingMissing(err, "unknown id")
	_, _, err = eb.GetOutgoingEvent(ctx, pn, lid, "D2")
	e.wantOutgoingMissing(err, "another device's message")
	_, _, err = eb.GetOutgoingEvent(ctx, pn, lid, "NIL")
	e.wantOutgoingMissing(err, "failed adds stored nothing")
	_, _, err = eb.GetOutgoingEvent(ctx, types.EmptyJID, types.EmptyJID, "NIL")
	e.wantOutgoingMissing(err, "empty chat and alt chat")
	d2 = e.get(dev2)
	late := d2.EventBuffer
	mustOK(t, e.c.DeleteDevice(ctx, d2))
	mustErr(t, late.AddOutgoingEvent(ctx, pn, "LATE", "wa", []byte("late")), "AddOutgoingEvent after DeleteDevice")
	if got, err := e.c.GetDevice(ctx, dev2); err != nil || got != nil {
		t.Fatalf("a late outgoing event resurrected the device: %v, %v", got, err)
	}
}

// caseOutgoingPurge: both stores purge against the real clock (sqlstore has
// no other), so the entries are backdated: by SQL on sqlstore, by the
// container's clock on the bbolt store (harness addOutgoingAt).
func caseOutgoingPurge(t *testing.T, e *env) {
	d1, d2 := e.add(dev1), e.add(dev2)
	chat := jid("5@s.whatsapp.net")
	now := time.Now()
	e.addOutgoingAt(t, d1, chat, "OLD", []byte("8 days"), now.Add(-8*24*time.Hour))
	e.addOutgoingAt(t, d1, chat, "EDGE", []byte("7 days and a minute"), now.Add(-7*24*time.Hour-time.Minute))
	e.addOutgoingAt(t, d1, chat, "RENEWED", []byte("old"), now.Add(-9*24*time.Hour))
	e.addOutgoingAt(t, d1, chat, "RENEWED", []byte("sent again"), now.Add(-time.Hour)) // replaced: new timestamp
	e.addOutgoingAt(t, d1, chat, "RECENT", []byte("6 days"), now.Add(-6*24*time.Hour))
	e.addOutgoingAt(t, d2, chat, "OTHER", []byte("8 days, other device"), now.Add(-8*24*time.Hour))
	mustOK(t, d1.EventBuffer.DeleteOldOutgoingEvents(ctx))
	mustOK(t, d1.EventBuffer.DeleteOldOutgoingEvents(ctx)) // nothing left to purge
	e.reopen()
	kept := func(dev types.JID, id types.MessageID) bool {
		t.Helper()
		_, pt, err := e.get(dev).EventBuffer.GetOutgoingEvent(ctx, chat, types.EmptyJID, id)
		if err == nil {
			return pt != nil
		}
		e.wantOutgoingMissing(err, string(id))
		return false
	}
	eq(t, "8 days old purged", kept(dev1, "OLD"), false)
	eq(t, "7 days and a minute purged", kept(dev1, "EDGE"), false)
	eq(t, "replaced recently: kept", kept(dev1, "RENEWED"), true)
	eq(t, "6 days old kept", kept(dev1, "RECENT"), true)
	eq(t, "the other device's is not purged by this one", kept(dev2, "OTHER"), true)
	mustOK(t, e.get(dev2).EventBuffer.DeleteOldOutgoingEvents(ctx))
	eq(t, "purged by its own device", kept(dev2, "OTHER"), false)
	_, pt, err := e.get(dev1).EventBuffer.GetOutgoingEvent(ctx, chat, types.EmptyJID, "RENEWED")
	mustOK(t, err)
	eq(t, "renewed payload", string(pt), "sent again")
}

//go:build schema1gen

package devicestore_test

// The generator of testdata/schema1: a bbolt file written by the device
// store at schema 1 (commit 0e28d00, whatsmeow 2025-12-17), which
// TestUpgrade_Schema1FileKeepsEverySession opens with today's code. It uses
// only API both versions have. To make the fixture again:
//
//	git worktree add /tmp/old 0e28d00
//	cp kv/devicestore/schema1gen_test.go /tmp/old/kv/devicestore/
//	(cd /tmp/old && go test -tags schema1gen -run TestGenerateSchema1 ./kv/devicestore/ -args -out "$PWD/kv/devicestore/testdata/schema1")
//	git worktree remove --force /tmp/old

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"

	"leadmaster/kv/devicestore"
)

var schema1Out = flag.String("out", "", "directory to write devices.db.gz and prekeys.json to")

func TestGenerateSchema1(t *testing.T) {
	if *schema1Out == "" {
		t.Skip("-out not set")
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "devices.db")
	db, err := bbolt.Open(path, 0o600, nil)
	must(err)
	c, err := devicestore.New(db, nil)
	must(err)
	c.NoBatch = true
	// All of the device is fixed by its seed byte, but for the random
	// one-time prekeys, which prekeys.json lists.
	newDev := func(id types.JID, seed byte) *store.Device {
		d := c.NewDevice()
		d.ID = &id
		d.NoiseKey = keys.NewKeyPairFromPrivateKey([32]byte{seed, 1})
		d.IdentityKey = keys.NewKeyPairFromPrivateKey([32]byte{seed, 2})
		sig := [64]byte{seed, 3}
		d.SignedPreKey = &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey([32]byte{seed, 4}), KeyID: 1, Signature: &sig}
		d.RegistrationID = 1000 + uint32(seed)
		d.AdvSecretKey = []byte{seed, 5}
		d.Account = &waAdv.ADVSignedDeviceIdentity{
			Details:             []byte{seed, 6},
			AccountSignature:    append([]byte{seed, 7}, make([]byte, 62)...),
			AccountSignatureKey: append([]byte{seed, 8}, make([]byte, 30)...),
			DeviceSignature:     append([]byte{seed, 9}, make([]byte, 62)...),
		}
		return d
	}
	a := newDev(types.NewADJID("111", 0, 7), 0xa0)
	a.LID = types.JID{User: "999", Device: 7, Server: types.HiddenUserServer}
	a.Platform, a.BusinessName, a.PushName, a.LIDMigrationTimestamp = "android", "Biz", "Push A", 1700000000
	must(c.PutDevice(ctx, a))
	b := newDev(types.NewADJID("112", 0, 3), 0xb0)
	must(c.PutDevice(ctx, b))

	pn, lid := types.NewJID("5", types.DefaultUserServer), types.NewJID("50", types.HiddenUserServer)
	must(a.Identities.PutIdentity(ctx, "50_1:0", [32]byte{0x11}))
	must(a.Sessions.PutSession(ctx, "50_1:0", []byte("session 50_1:0")))
	must(a.Sessions.PutSession(ctx, "nil:0", nil))
	pks, err := a.PreKeys.GetOrGenPreKeys(ctx, 5)
	must(err)
	must(a.PreKeys.MarkPreKeysAsUploaded(ctx, 3))
	must(a.SenderKeys.PutSenderKey(ctx, "g1@g.us", "50_1:0", []byte("sender key")))
	must(a.AppStateKeys.PutAppStateSyncKey(ctx, []byte("key-old"), store.AppStateSyncKey{Data: []byte("old"), Fingerprint: []byte("fp old"), Timestamp: 100}))
	must(a.AppStateKeys.PutAppStateSyncKey(ctx, []byte("key-new"), store.AppStateSyncKey{Data: []byte("new"), Fingerprint: []byte("fp new"), Timestamp: 200}))
	must(a.AppState.PutAppStateVersion(ctx, "regular", 3, [128]byte{0x33}))
	must(a.AppState.PutAppStateMutationMACs(ctx, "regular", 3, []store.AppStateMutationMAC{{IndexMAC: make32(0x41), ValueMAC: make32(0x42)}}))
	_, _, err = a.Contacts.PutPushName(ctx, lid, "Fifty")
	must(err)
	must(a.Contacts.PutContactName(ctx, lid, "First", "Full Name"))
	must(a.Contacts.PutManyRedactedPhones(ctx, []store.RedactedPhoneEntry{{JID: lid, RedactedPhone: "+5***5"}}))
	must(a.ChatSettings.PutMutedUntil(ctx, lid, store.MutedForever))
	must(a.ChatSettings.PutPinned(ctx, lid, true))
	must(a.MsgSecrets.PutMessageSecret(ctx, lid, lid, "POLL1", []byte("poll secret")))
	must(a.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: lid, Token: []byte("tctoken"), Timestamp: time.Unix(1700000100, 0)}))
	must(a.EventBuffer.PutBufferedEvent(ctx, [32]byte{0xe1}, []byte("pending plaintext"), time.Unix(1700000200, 0)))
	must(a.EventBuffer.PutBufferedEvent(ctx, [32]byte{0xe2}, []byte("handled"), time.Unix(1700000300, 0)))
	must(a.EventBuffer.ClearBufferedEventPlaintext(ctx, [32]byte{0xe2}))
	must(a.LIDs.PutLIDMapping(ctx, lid, pn))
	must(b.Sessions.PutSession(ctx, "5:0", []byte("session of b")))
	must(db.Close())

	must(os.MkdirAll(*schema1Out, 0o755))
	raw, err := os.ReadFile(path)
	must(err)
	f, err := os.Create(filepath.Join(*schema1Out, "devices.db.gz"))
	must(err)
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	_, err = zw.Write(raw)
	must(err)
	must(zw.Close())
	must(f.Close())
	privs := map[uint32]string{}
	for _, k := range pks {
		privs[k.KeyID] = hex.EncodeToString(k.Priv[:])
	}
	js, err := json.MarshalIndent(map[string]any{"prekeys": privs}, "", "\t")
	must(err)
	must(os.WriteFile(filepath.Join(*schema1Out, "prekeys.json"), append(js, '\n'), 0o644))
}

func make32(b byte) []byte {
	out := make([]byte, 32)
	for i := range out {
		out[i] = b
	}
	return out
}

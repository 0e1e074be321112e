package devicestore

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Codec fuzz targets: corrupt bytes never panic, and whatever decodes
// re-encodes to the same bytes.

func seedDevice() *store.Device {
	id := types.NewADJID("111", 0, 7)
	ik := keys.NewKeyPair()
	return &store.Device{
		ID: &id, LID: types.NewJID("999", types.HiddenUserServer),
		NoiseKey: keys.NewKeyPair(), IdentityKey: ik, SignedPreKey: ik.CreateSignedPreKey(1),
		RegistrationID: 42, AdvSecretKey: []byte("adv"), Platform: "android", PushName: "p",
		Account: &waAdv.ADVSignedDeviceIdentity{
			Details: []byte("d"), AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
		},
	}
}

func FuzzDecodeDevice(f *testing.F) {
	v, err := encodeDevice(seedDevice())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v)
	f.Add(v[:len(v)-1]) // a version-1 record: no companion meta nonce (here "", one 0x00)
	withNonce := seedDevice()
	withNonce.CompanionMetaNonce = "nonce"
	if v, err = encodeDevice(withNonce); err != nil {
		f.Fatal(err)
	}
	f.Add(v)
	f.Add([]byte{formatV1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDevice(b)
		if err != nil {
			return
		}
		again, err := encodeDevice(d)
		if err != nil {
			return // decodable but not storable (e.g. short signatures): sqlstore's CHECKs
		}
		d2, err := decodeDevice(again)
		if err != nil || *d2.ID != *d.ID || *d2.NoiseKey.Priv != *d.NoiseKey.Priv || d2.PushName != d.PushName || d2.CompanionMetaNonce != d.CompanionMetaNonce {
			t.Fatalf("device round trip: %v", err)
		}
	})
}

func FuzzDecodeRecords(f *testing.F) {
	for _, v := range [][]byte{
		encodeSession([]byte("s")), encodeSession(nil), encodeIdentity([32]byte{1}),
		encodePreKey(preKeyRecord{uploaded: true}), encodeBlob([]byte("x")),
		encodeSyncKey(store.AppStateSyncKey{Data: []byte("d"), Fingerprint: []byte("f"), Timestamp: 3}),
		encodeAppStateVersion(7, [128]byte{1}),
		encodeContact(types.ContactInfo{FirstName: "a", PushName: "p"}),
		encodeChat(chatRecord{mutedUntil: -1, pinned: true}), encodeToken(tokenRecord{ts: 5, token: []byte("t")}),
		encodeToken(tokenRecord{ts: 5, token: []byte("t"), senderTS: 0, hasSenderTS: true}),
		encodeOutgoing(outgoingRecord{insertMS: 9, format: "wa", plaintext: []byte("msg")}),
		encodeEvent(eventRecord{insertMS: 1, serverS: 2, plaintext: []byte("pt")}), {}, {formatV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip := func(name string, ok bool, again []byte) {
			if ok && !bytes.Equal(again, b) {
				t.Fatalf("%s: %x re-encodes as %x", name, b, again)
			}
		}
		s, err := decodeSession(b)
		roundTrip("session", err == nil, encodeSession(s))
		id, err := decodeIdentity(b)
		roundTrip("identity", err == nil, encodeIdentity(id))
		pk, err := decodePreKey(b)
		roundTrip("prekey", err == nil, encodePreKey(pk))
		bl, err := decodeBlob(b)
		roundTrip("blob", err == nil, encodeBlob(bl))
		sk, err := decodeSyncKey(b)
		roundTrip("sync key", err == nil, encodeSyncKey(sk))
		ver, hash, err := decodeAppStateVersion(b)
		roundTrip("app state version", err == nil, encodeAppStateVersion(ver, hash))
		ci, err := decodeContact(b)
		roundTrip("contact", err == nil, encodeContact(ci))
		ch, err := decodeChat(b)
		roundTrip("chat", err == nil, encodeChat(ch))
		tok, err := decodeToken(b)
		roundTrip("token", err == nil, encodeToken(tok))
		ev, err := decodeEvent(b)
		roundTrip("event", err == nil, encodeEvent(ev))
		out, err := decodeOutgoing(b)
		roundTrip("outgoing", err == nil, encodeOutgoing(out))
	})
}

// FuzzCorruptStoredValues writes fuzzed bytes in place of every kind of
// stored value and calls the public getters: errors are fine, panics are not.
func FuzzCorruptStoredValues(f *testing.F) {
	f.Add([]byte{formatV1, 0x00})
	f.Add([]byte{0x02})
	f.Add(encodeEvent(eventRecord{plaintext: []byte("x")}))
	f.Add(encodeOutgoing(outgoingRecord{format: "wa", plaintext: []byte("x")}))
	db, err := bbolt.Open(filepath.Join(f.TempDir(), "fuzz.db"), 0o600, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = db.Close() })
	c, err := New(db, nil)
	if err != nil {
		f.Fatal(err)
	}
	c.NoBatch = true
	ctx := context.Background()
	d := seedDevice()
	if err := c.PutDevice(ctx, d); err != nil {
		f.Fatal(err)
	}
	s := d.Sessions.(*Store)
	u := types.NewJID("5", types.DefaultUserServer)
	idx := bytes.Repeat([]byte{1}, 32)
	f.Fuzz(func(t *testing.T, v []byte) {
		err := db.Update(func(tx *bbolt.Tx) error {
			dev := tx.Bucket(s.dev)
			put := func(bucket, key []byte) {
				if err := dev.Bucket(bucket).Put(key, v); err != nil {
					t.Fatal(err)
				}
			}
			put(subSessions, []byte("1:0"))
			put(subIdentities, []byte("1:0"))
			put(subPreKeys, u32Key(1))
			put(subSenderKeys, senderKeyKey("g@g.us", "1:0"))
			put(subSyncKeys, syncKeyKey([]byte("k")))
			put(subContacts, []byte(u.String()))
			put(subChats, []byte(u.String()))
			put(subMsgSecrets, msgSecretKey(u, u, "M"))
			put(subPrivTokens, []byte(u.String()))
			put(subEventBuffer, []byte{31: 1})
			put(subRetryBuf, retryBufKey(u.String(), "M"))
			put(subRetryByTime, eventTimeKey(0, retryBufKey(u.String(), "M")))
			if err := dev.Put(keyNCTSalt, v); err != nil {
				return err
			}
			nb, err := dev.Bucket(subAppState).CreateBucketIfNotExists([]byte("regular"))
			if err != nil {
				return err
			}
			mb, err := nb.CreateBucketIfNotExists(subAppStateMACs)
			if err != nil {
				return err
			}
			if err := nb.Put(keyAppStateVersion, v); err != nil {
				return err
			}
			if err := mb.Put(macKey(idx, 1), v); err != nil {
				return err
			}
			return dev.Put(keyDevice, v)
		})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = s.GetSession(ctx, "1:0")
		_, _ = s.GetManySessions(ctx, []string{"1:0"})
		_, _ = s.IsTrustedIdentity(ctx, "1:0", [32]byte{})
		_, _ = s.GetPreKey(ctx, 1)
		_, _ = s.GetOrGenPreKeys(ctx, 1)
		_ = s.MarkPreKeysAsUploaded(ctx, 5)
		_, _ = s.UploadedPreKeyCount(ctx)
		_, _ = s.GetSenderKey(ctx, "g@g.us", "1:0")
		_, _ = s.GetAppStateSyncKey(ctx, []byte("k"))
		_, _ = s.GetLatestAppStateSyncKeyID(ctx)
		_ = s.PutAppStateSyncKey(ctx, []byte("k"), store.AppStateSyncKey{Data: []byte{}, Fingerprint: []byte{}, Timestamp: 1})
		_, _, _ = s.GetAppStateVersion(ctx, "regular")
		_, _ = s.GetAppStateMutationMAC(ctx, "regular", idx)
		_, _ = s.GetContact(ctx, u)
		_, _ = s.GetAllContacts(ctx)
		_, _, _ = s.PutPushName(ctx, u, "x")
		_, _ = s.GetChatSettings(ctx, u)
		_ = s.PutPinned(ctx, u, true)
		_, _, _ = s.GetMessageSecret(ctx, u, u, "M")
		_, _ = s.GetPrivacyToken(ctx, u)
		_, _ = s.GetBufferedEvent(ctx, [32]byte{31: 1})
		_ = s.ClearBufferedEventPlaintext(ctx, [32]byte{31: 1})
		_, _, _ = s.GetOutgoingEvent(ctx, u, u, "M")
		_ = s.AddOutgoingEvent(ctx, u, "M", "wa", []byte("x"))
		_ = s.DeleteOldOutgoingEvents(ctx)
		_, _ = s.GetNCTSalt(ctx)
		_, _ = s.GetAllAppStateSyncKeys(ctx)
		_, _ = s.DeleteExpiredPrivacyTokens(ctx, time.Unix(1, 0))
		_, _ = c.GetDevice(ctx, *d.ID)
		_, _ = c.GetAllDevices(ctx)
		_ = c.PutDevice(ctx, d)
	})
}

package devicestore

import (
	"fmt"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// One encode/decode pair per table. Decoders copy, validate lengths the way
// sqlstore's CHECKs and getters do, and never panic on corrupt input.

func encodeSession(session []byte) []byte {
	e := newEnc(len(session) + 4)
	e.optBytes(session)
	return e.done()
}

func decodeSession(v []byte) ([]byte, error) {
	d := newDec(v)
	s := d.optBytes()
	return s, d.finish()
}

func encodeIdentity(key [32]byte) []byte {
	e := newEnc(32)
	e.raw(key[:])
	return e.done()
}

func decodeIdentity(v []byte) ([32]byte, error) {
	if len(v) != 33 || v[0] != formatV1 {
		return [32]byte{}, fmt.Errorf("identity: %w", ErrInvalidLength)
	}
	return [32]byte(v[1:]), nil
}

type preKeyRecord struct {
	uploaded bool
	priv     [32]byte
}

func encodePreKey(r preKeyRecord) []byte {
	e := newEnc(33)
	e.bool(r.uploaded)
	e.raw(r.priv[:])
	return e.done()
}

func decodePreKey(v []byte) (preKeyRecord, error) {
	if len(v) != 34 || v[0] != formatV1 || v[1] > 1 {
		return preKeyRecord{}, fmt.Errorf("prekey: %w", ErrInvalidLength)
	}
	return preKeyRecord{uploaded: v[1] != 0, priv: [32]byte(v[2:])}, nil
}

func encodeBlob(b []byte) []byte {
	e := newEnc(len(b) + 4)
	e.bytes(b)
	return e.done()
}

func decodeBlob(v []byte) ([]byte, error) {
	d := newDec(v)
	b := d.bytes()
	return b, d.finish()
}

func encodeSyncKey(k store.AppStateSyncKey) []byte {
	e := newEnc(len(k.Data) + len(k.Fingerprint) + 16)
	e.i64(k.Timestamp)
	e.bytes(k.Data)
	e.bytes(k.Fingerprint)
	return e.done()
}

func decodeSyncKey(v []byte) (store.AppStateSyncKey, error) {
	d := newDec(v)
	k := store.AppStateSyncKey{Timestamp: d.i64(), Data: d.bytes(), Fingerprint: d.bytes()}
	return k, d.finish()
}

func encodeAppStateVersion(version uint64, hash [128]byte) []byte {
	e := newEnc(136)
	e.u64(version)
	e.raw(hash[:])
	return e.done()
}

func decodeAppStateVersion(v []byte) (uint64, [128]byte, error) {
	d := newDec(v)
	version := d.u64()
	h := d.take(128)
	if err := d.finish(); err != nil {
		return 0, [128]byte{}, fmt.Errorf("app state version: %w", ErrInvalidLength)
	}
	return version, [128]byte(h), nil
}

func encodeContact(ci types.ContactInfo) []byte {
	e := newEnc(len(ci.FirstName) + len(ci.FullName) + len(ci.PushName) + len(ci.BusinessName) + len(ci.RedactedPhone) + 5)
	e.str(ci.FirstName)
	e.str(ci.FullName)
	e.str(ci.PushName)
	e.str(ci.BusinessName)
	e.str(ci.RedactedPhone)
	return e.done()
}

func decodeContact(v []byte) (types.ContactInfo, error) {
	d := newDec(v)
	ci := types.ContactInfo{Found: true, FirstName: d.str(), FullName: d.str(), PushName: d.str(), BusinessName: d.str(), RedactedPhone: d.str()}
	if err := d.finish(); err != nil {
		return types.ContactInfo{}, fmt.Errorf("contact: %w", err)
	}
	return ci, nil
}

type chatRecord struct {
	mutedUntil       int64
	pinned, archived bool
}

func encodeChat(r chatRecord) []byte {
	e := newEnc(10)
	e.i64(r.mutedUntil)
	e.bool(r.pinned)
	e.bool(r.archived)
	return e.done()
}

func decodeChat(v []byte) (chatRecord, error) {
	d := newDec(v)
	r := chatRecord{mutedUntil: d.i64(), pinned: d.bool(), archived: d.bool()}
	return r, d.finish()
}

type tokenRecord struct {
	ts    int64
	token []byte
	// senderTS is sqlstore's nullable sender_timestamp (schema 2): a
	// trailing field that is present only when set. A version-1 record
	// ends before it and so reads as NULL, exactly what sqlstore's
	// migration 12 gives existing rows; 0 is a value (whatsmeow stores
	// time.Unix(0, 0) from a history sync without one), not NULL.
	senderTS    int64
	hasSenderTS bool
}

func encodeToken(r tokenRecord) []byte {
	e := newEnc(len(r.token) + 20)
	e.i64(r.ts)
	e.bytes(r.token)
	if r.hasSenderTS {
		e.i64(r.senderTS)
	}
	return e.done()
}

func decodeToken(v []byte) (tokenRecord, error) {
	d := newDec(v)
	r := tokenRecord{ts: d.i64(), token: d.bytes()}
	if d.more() {
		r.senderTS, r.hasSenderTS = d.i64(), true
	}
	return r, d.finish()
}

type outgoingRecord struct {
	insertMS  int64
	format    string
	plaintext []byte
}

func encodeOutgoing(r outgoingRecord) []byte {
	e := newEnc(len(r.format) + len(r.plaintext) + 16)
	e.i64(r.insertMS)
	e.str(r.format)
	e.bytes(r.plaintext)
	return e.done()
}

func decodeOutgoing(v []byte) (outgoingRecord, error) {
	d := newDec(v)
	r := outgoingRecord{insertMS: d.i64(), format: d.str(), plaintext: d.bytes()}
	return r, d.finish()
}

type eventRecord struct {
	insertMS, serverS int64
	plaintext         []byte // nil = processed (SQL NULL)
}

func encodeEvent(r eventRecord) []byte {
	e := newEnc(len(r.plaintext) + 24)
	e.i64(r.insertMS)
	e.i64(r.serverS)
	e.optBytes(r.plaintext)
	return e.done()
}

func decodeEvent(v []byte) (eventRecord, error) {
	d := newDec(v)
	r := eventRecord{insertMS: d.i64(), serverS: d.i64(), plaintext: d.optBytes()}
	return r, d.finish()
}

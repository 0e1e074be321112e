package devicestore

import (
	"fmt"

	"github.com/google/uuid"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// The device record keeps private keys only; public keys are re-derived on
// load, as sqlstore does.

// encodeDevice validates what sqlstore's NOT NULL and CHECK constraints
// validate, then encodes the persisted fields of d.
func encodeDevice(d *store.Device) ([]byte, error) {
	switch {
	case d.ID == nil:
		return nil, ErrDeviceIDMustBeSet
	case d.NoiseKey == nil || d.NoiseKey.Priv == nil, d.IdentityKey == nil || d.IdentityKey.Priv == nil,
		d.SignedPreKey == nil || d.SignedPreKey.Priv == nil || d.SignedPreKey.Signature == nil,
		d.AdvSecretKey == nil, d.Account == nil || d.Account.Details == nil:
		return nil, fmt.Errorf("device %s: %w", d.ID, ErrNotNull)
	case d.SignedPreKey.KeyID >= 1<<24:
		return nil, fmt.Errorf("device %s: signed prekey id: %w", d.ID, ErrOutOfRange)
	case len(d.Account.AccountSignature) != 64 || len(d.Account.AccountSignatureKey) != 32 || len(d.Account.DeviceSignature) != 64:
		return nil, fmt.Errorf("device %s: account signatures: %w", d.ID, ErrInvalidLength)
	}
	e := newEnc(512 + len(d.Account.Details))
	e.str(d.ID.String())
	if d.LID.IsEmpty() {
		e.str("")
	} else {
		e.str(d.LID.String())
	}
	e.u32(d.RegistrationID)
	e.raw(d.NoiseKey.Priv[:])
	e.raw(d.IdentityKey.Priv[:])
	e.raw(d.SignedPreKey.Priv[:])
	e.u32(d.SignedPreKey.KeyID)
	e.raw(d.SignedPreKey.Signature[:])
	e.bytes(d.AdvSecretKey)
	e.bytes(d.Account.Details)
	e.bytes(d.Account.AccountSignature)
	e.bytes(d.Account.AccountSignatureKey)
	e.bytes(d.Account.DeviceSignature)
	e.str(d.Platform)
	e.str(d.BusinessName)
	e.str(d.PushName)
	if d.FacebookUUID == uuid.Nil {
		e.bytes(nil)
	} else {
		e.bytes(d.FacebookUUID[:])
	}
	e.i64(d.LIDMigrationTimestamp)
	e.str(d.CompanionMetaNonce) // appended in schema 2
	return e.done(), nil
}

// decodeDevice returns a device with its persisted fields set; the caller
// wires the stores.
func decodeDevice(v []byte) (*store.Device, error) {
	dec := newDec(v)
	jidStr, lidStr := dec.str(), dec.str()
	var d store.Device
	d.RegistrationID = dec.u32()
	noise, identity, spk := dec.take(32), dec.take(32), dec.take(32)
	spkID := dec.u32()
	sig := dec.take(64)
	d.AdvSecretKey = dec.bytes()
	acc := &waAdv.ADVSignedDeviceIdentity{
		Details: dec.bytes(), AccountSignature: dec.bytes(), AccountSignatureKey: dec.bytes(), DeviceSignature: dec.bytes(),
	}
	d.Platform, d.BusinessName, d.PushName = dec.str(), dec.str(), dec.str()
	fb := dec.bytes()
	d.LIDMigrationTimestamp = dec.i64()
	if dec.more() {
		d.CompanionMetaNonce = dec.str()
	}
	if err := dec.finish(); err != nil {
		return nil, fmt.Errorf("device record: %w", err)
	}
	if len(fb) != 0 && len(fb) != 16 {
		return nil, fmt.Errorf("device facebook uuid: %w", ErrInvalidLength)
	}
	if len(fb) == 16 {
		d.FacebookUUID = uuid.UUID(fb)
	}
	jid, err := types.ParseJID(jidStr)
	if err != nil {
		return nil, fmt.Errorf("device jid %q: %w", jidStr, err)
	}
	d.ID = &jid
	if lidStr != "" {
		if d.LID, err = types.ParseJID(lidStr); err != nil {
			return nil, fmt.Errorf("device lid %q: %w", lidStr, err)
		}
	}
	d.NoiseKey = keys.NewKeyPairFromPrivateKey([32]byte(noise))
	d.IdentityKey = keys.NewKeyPairFromPrivateKey([32]byte(identity))
	d.SignedPreKey = &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey([32]byte(spk)), KeyID: spkID, Signature: (*[64]byte)(append([]byte(nil), sig...))}
	d.Account = acc
	return &d, nil
}

// mergeDevice applies sqlstore's ON CONFLICT rule: an existing device keeps
// its keys, registration ID, adv fields and Facebook UUID; only lid,
// platform, business name, push name, lid_migration_ts and
// companion_meta_nonce are updated.
func mergeDevice(old, d *store.Device) *store.Device {
	m := *old
	m.LID, m.Platform, m.BusinessName, m.PushName = d.LID, d.Platform, d.BusinessName, d.PushName
	m.LIDMigrationTimestamp, m.CompanionMetaNonce = d.LIDMigrationTimestamp, d.CompanionMetaNonce
	return &m
}

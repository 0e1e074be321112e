package wasim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"go.mau.fi/libsignal/ecc"
	groupRecord "go.mau.fi/libsignal/groups/state/record"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/optional"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

var signalSerializer = store.SignalProtobufSerializer

// phoneDevice is the libsignal side of a simulated primary phone (device 0 of an account). Its
// identity is the account's ADV key. Sessions are kept as live record.Session objects, never
// re-serialised (whatsmeow's serializer writes them as JSON, which gets slow as skipped keys
// pile up). One-time prekeys are minted on demand when a bundle is fetched.
type phoneDevice struct {
	mu         sync.Mutex // one encrypt/decrypt at a time: libsignal state is not goroutine-safe
	identity   *identity.KeyPair
	regID      uint32
	signed     *record.SignedPreKey
	preKeys    map[uint32]*record.PreKey
	nextPreKey uint32
	sessions   map[string]*record.Session
	identities map[string]*identity.Key
}

func newPhoneDevice(acc *Account) *phoneDevice {
	pub := identity.NewKey(ecc.NewDjbECPublicKey(*acc.Key.Pub))
	sp := acc.SignedPreKey
	return &phoneDevice{
		identity: identity.NewKeyPair(pub, ecc.NewDjbECPrivateKey(*acc.Key.Priv)),
		regID:    acc.RegistrationID,
		signed: record.NewSignedPreKey(sp.KeyID, 0,
			ecc.NewECKeyPair(ecc.NewDjbECPublicKey(*sp.Pub), ecc.NewDjbECPrivateKey(*sp.Priv)),
			*sp.Signature, signalSerializer.SignedPreKeyRecord),
		preKeys:    map[uint32]*record.PreKey{},
		nextPreKey: 1,
		sessions:   map[string]*record.Session{},
		identities: map[string]*identity.Key{},
	}
}

// bundle mints a one-time prekey (if oneTime) and returns the device's prekey bundle node
// content, as the server hands it out.
func (p *phoneDevice) bundle(oneTime bool) (reg uint32, ident [32]byte, pre *PreKey, signed SignedPreKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if oneTime {
		kp := keys.NewKeyPair()
		id := p.nextPreKey
		p.nextPreKey++
		p.preKeys[id] = record.NewPreKey(id, ecc.NewECKeyPair(ecc.NewDjbECPublicKey(*kp.Pub), ecc.NewDjbECPrivateKey(*kp.Priv)), signalSerializer.PreKeyRecord)
		pre = &PreKey{ID: id, Pub: *kp.Pub}
	}
	sig := p.signed.Signature()
	pub := p.signed.KeyPair().PublicKey().(*ecc.DjbECPublicKey).PublicKey()
	return p.regID, p.identity.PublicKey().PublicKey().(*ecc.DjbECPublicKey).PublicKey(), pre,
		SignedPreKey{ID: p.signed.ID(), Pub: pub, Signature: sig}
}

// decrypt opens one <enc> from the device `from`. typ is "pkmsg" or "msg". It returns the
// unpadded plaintext.
func (p *phoneDevice) decrypt(ctx context.Context, from types.JID, typ string, ct []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := from.SignalAddress()
	cipher := session.NewCipher(session.NewBuilderFromSignal(p, addr, signalSerializer), addr)
	var plain []byte
	switch typ {
	case "pkmsg":
		msg, err := protocol.NewPreKeySignalMessageFromBytes(ct, signalSerializer.PreKeySignalMessage, signalSerializer.SignalMessage)
		if err != nil {
			return nil, fmt.Errorf("parse pkmsg: %w", err)
		}
		if plain, err = cipher.DecryptMessage(ctx, msg); err != nil {
			return nil, fmt.Errorf("decrypt pkmsg: %w", err)
		}
	case "msg":
		msg, err := protocol.NewSignalMessageFromBytes(ct, signalSerializer.SignalMessage)
		if err != nil {
			return nil, fmt.Errorf("parse msg: %w", err)
		}
		if plain, err = cipher.Decrypt(ctx, msg); err != nil {
			return nil, fmt.Errorf("decrypt msg: %w", err)
		}
	default:
		return nil, fmt.Errorf("unsupported enc type %q", typ)
	}
	return unpad(plain)
}

// hasSession reports whether the device can already encrypt to `to` without a bundle.
func (p *phoneDevice) hasSession(to types.JID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	has, _ := p.ContainsSession(context.Background(), to.SignalAddress())
	return has
}

var errNoSession = errors.New("no session and no prekey bundle")

// encrypt seals plaintext (padded here) for the device `to`. Without a session it starts one
// from bundle (a pkmsg results); the caller gets the bundle beforehand (see hasSession), so
// p.mu is never held while Server.mu is taken. It returns the ciphertext and "pkmsg" or "msg".
func (p *phoneDevice) encrypt(ctx context.Context, to types.JID, plaintext []byte, bundle *prekey.Bundle) ([]byte, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := to.SignalAddress()
	builder := session.NewBuilderFromSignal(p, addr, signalSerializer)
	if has, _ := p.ContainsSession(ctx, addr); !has {
		if bundle == nil {
			return nil, "", errNoSession
		}
		if err := builder.ProcessBundle(ctx, bundle); err != nil {
			return nil, "", fmt.Errorf("process bundle: %w", err)
		}
	}
	msg, err := session.NewCipher(builder, addr).Encrypt(ctx, pad(plaintext))
	if err != nil {
		return nil, "", err
	}
	if msg.Type() == protocol.PREKEY_TYPE {
		return msg.Serialize(), "pkmsg", nil
	}
	return msg.Serialize(), "msg", nil
}

// deviceBundleOf turns a registry device (a real client's upload) into a libsignal bundle,
// taking one of its uploaded one-time prekeys if any are left. s.mu must be held.
func deviceBundleOf(jid types.JID, dev *Device) *prekey.Bundle {
	var preID *optional.Uint32
	var prePub ecc.ECPublicKeyable
	if len(dev.PreKeys) > 0 {
		k := dev.PreKeys[0]
		dev.PreKeys = dev.PreKeys[1:]
		preID, prePub = optional.NewOptionalUint32(k.ID), ecc.NewDjbECPublicKey(k.Pub)
	} else {
		preID = optional.NewEmptyUint32()
	}
	return prekey.NewBundle(dev.RegistrationID, uint32(jid.Device), preID, dev.SignedPreKey.ID,
		prePub, ecc.NewDjbECPublicKey(dev.SignedPreKey.Pub), dev.SignedPreKey.Signature,
		identity.NewKey(ecc.NewDjbECPublicKey(dev.Identity)))
}

// pad and unpad are whatsmeow's message padding: N (1..15) bytes of value N.
func pad(b []byte) []byte {
	n := randomBytes(1)[0] & 0xf
	if n == 0 {
		n = 0xf
	}
	return append(append([]byte{}, b...), bytes.Repeat([]byte{n}, int(n))...)
}

func unpad(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("empty plaintext")
	}
	n := int(b[len(b)-1])
	if n == 0 || n > len(b) {
		return nil, errors.New("bad padding")
	}
	return b[:len(b)-n], nil
}

// The libsignal store interfaces, in memory. Called with p.mu held (from encrypt/decrypt).

func (p *phoneDevice) GetIdentityKeyPair() *identity.KeyPair { return p.identity }
func (p *phoneDevice) GetLocalRegistrationID() uint32        { return p.regID }
func (p *phoneDevice) SaveIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) error {
	p.identities[a.String()] = k
	return nil
}
func (p *phoneDevice) IsTrustedIdentity(context.Context, *protocol.SignalAddress, *identity.Key) (bool, error) {
	return true, nil
}
func (p *phoneDevice) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	return p.preKeys[id], nil
}
func (p *phoneDevice) StorePreKey(_ context.Context, id uint32, r *record.PreKey) error {
	p.preKeys[id] = r
	return nil
}
func (p *phoneDevice) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := p.preKeys[id]
	return ok, nil
}
func (p *phoneDevice) RemovePreKey(_ context.Context, id uint32) error {
	delete(p.preKeys, id)
	return nil
}
func (p *phoneDevice) LoadSession(_ context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	if s := p.sessions[a.String()]; s != nil {
		return s, nil
	}
	return record.NewSession(signalSerializer.Session, signalSerializer.State), nil
}
func (p *phoneDevice) GetSubDeviceSessions(context.Context, string) ([]uint32, error) {
	return nil, nil
}
func (p *phoneDevice) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	p.sessions[a.String()] = r
	return nil
}
func (p *phoneDevice) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	// record.Session.IsFresh stays true for a record never serialised, so it cannot tell
	// here: a usable session is one with a sending chain.
	s := p.sessions[a.String()]
	return s != nil && s.SessionState() != nil && s.SessionState().HasSenderChain(), nil
}
func (p *phoneDevice) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	delete(p.sessions, a.String())
	return nil
}
func (p *phoneDevice) DeleteAllSessions(context.Context) error {
	p.sessions = map[string]*record.Session{}
	return nil
}
func (p *phoneDevice) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	if id == p.signed.ID() {
		return p.signed, nil
	}
	return nil, nil
}
func (p *phoneDevice) LoadSignedPreKeys(context.Context) ([]*record.SignedPreKey, error) {
	return []*record.SignedPreKey{p.signed}, nil
}
func (p *phoneDevice) StoreSignedPreKey(context.Context, uint32, *record.SignedPreKey) error {
	return nil
}
func (p *phoneDevice) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	return id == p.signed.ID(), nil
}
func (p *phoneDevice) RemoveSignedPreKey(context.Context, uint32) error { return nil }
func (p *phoneDevice) StoreSenderKey(context.Context, *protocol.SenderKeyName, *groupRecord.SenderKey) error {
	return nil
}
func (p *phoneDevice) LoadSenderKey(context.Context, *protocol.SenderKeyName) (*groupRecord.SenderKey, error) {
	return groupRecord.NewSenderKey(signalSerializer.SenderKeyRecord, signalSerializer.SenderKeyState), nil
}

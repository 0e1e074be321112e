package wasim

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/libsignal/ecc"
	"golang.org/x/crypto/curve25519"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"go.mau.fi/whatsmeow/util/keys"
)

// Errors of the simulated phone.
var (
	ErrUnknownQR      = errors.New("wasim: QR code not shown by any connected client")
	ErrBadQR          = errors.New("wasim: malformed QR code")
	ErrNoCodePairing  = errors.New("wasim: no client is waiting for a pairing code for this phone")
	ErrWrongPairCode  = errors.New("wasim: wrong pairing code")
	ErrPairingRefused = errors.New("wasim: client refused the pairing")
)

// qrRefCount is how many refs one pair-device IQ carries (the client shows them in turn).
const qrRefCount = 6

// ADV signature prefixes (whatsmeow pair.go).
var (
	advAccountSignaturePrefix = []byte{6, 0}
	advDeviceSignaturePrefix  = []byte{6, 1}
)

// startRegistration runs on a fresh connection (a client without a device identity): it gets
// pair-device refs, which the client turns into QR codes.
func (s *Server) startRegistration(c *conn) {
	pd := c.payload.GetDevicePairingData()
	reg := &registration{}
	if len(pd.GetERegid()) == 4 && len(pd.GetEIdent()) == 32 && len(pd.GetESkeyID()) == 3 &&
		len(pd.GetESkeyVal()) == 32 && len(pd.GetESkeySig()) == 64 {
		reg.RegistrationID = binary.BigEndian.Uint32(pd.GetERegid())
		reg.Identity = [32]byte(pd.GetEIdent())
		reg.SignedPreKey = SignedPreKey{ID: uint32FromBE(pd.GetESkeyID()), Pub: [32]byte(pd.GetESkeyVal()), Signature: [64]byte(pd.GetESkeySig())}
	} else {
		s.log.Warn("wasim: registration data incomplete", "conn", c.id)
		c.close(false)
		return
	}
	c.reg = reg
	refs := make([]waBinary.Node, qrRefCount)
	names := make([]string, qrRefCount)
	s.mu.Lock()
	for i := range refs {
		names[i] = "2@" + randomB64(24)
		refs[i] = waBinary.Node{Tag: "ref", Content: []byte(names[i])}
		s.pendingQR[names[i]] = c
	}
	s.mu.Unlock()
	err := c.send(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"from": types.ServerJID, "id": c.newID("pair-device"), "type": "set",
	}, Content: []waBinary.Node{{Tag: "pair-device", Content: refs}}})
	if err != nil {
		return
	}
	s.events.add(Event{Kind: EventQRRefs, Conn: c.id, Detail: strings.Join(names, " ")})
}

// qrURLPrefix starts the QR data of whatsmeow since 2026
// ("https://wa.me/settings/linked_devices#ref,noise,identity,adv,clientType").
const qrURLPrefix = "https://wa.me/settings/linked_devices#"

// ScanQR makes the primary phone of phone scan a QR string as whatsmeow's client shows it
// ("ref,noiseKey,identityKey,advSecret", or the same behind qrURLPrefix and followed by the
// client type), link the client as a new device of that account (created if needed; an empty
// phone picks a fresh number) and tell it to reconnect (515). It returns once the client has
// signed the device identity, with the new device's JID.
func (s *Server) ScanQR(ctx context.Context, qr, phone string) (types.JID, error) {
	qr = strings.TrimSpace(qr)
	wantParts := 4
	if rest, ok := strings.CutPrefix(qr, qrURLPrefix); ok {
		qr, wantParts = rest, 5
	}
	parts := strings.Split(qr, ",")
	if len(parts) != wantParts {
		return types.EmptyJID, ErrBadQR
	}
	noise, err1 := base64.StdEncoding.DecodeString(parts[1])
	ident, err2 := base64.StdEncoding.DecodeString(parts[2])
	adv, err3 := base64.StdEncoding.DecodeString(parts[3])
	if err := errors.Join(err1, err2, err3); err != nil || len(noise) != 32 || len(ident) != 32 || len(adv) != 32 {
		return types.EmptyJID, ErrBadQR
	}
	s.mu.Lock()
	c := s.pendingQR[parts[0]]
	if c == nil || !bytes.Equal(c.noiseKey[:], noise) || !bytes.Equal(c.reg.Identity[:], ident) {
		s.mu.Unlock()
		return types.EmptyJID, ErrUnknownQR
	}
	s.dropPendingLocked(c)
	if phone = digits(phone); phone == "" {
		phone = s.reg.autoPhoneLocked()
	}
	s.mu.Unlock()
	return s.linkDevice(ctx, c, phone, adv, "qr")
}

func (s *Server) dropPendingLocked(c *conn) {
	for ref, rc := range s.pendingQR {
		if rc == c {
			delete(s.pendingQR, ref)
		}
	}
	for p, cp := range s.pendingCode {
		if cp.conn == c {
			delete(s.pendingCode, p)
		}
	}
}

// codePairing is a client waiting for its 8-character code to be typed on the phone.
type codePairing struct {
	conn    *conn
	phone   string
	ref     []byte
	wrapped []byte // companion ephemeral key wrapped with the code: salt(32) iv(16) key(32)
	// set by EnterPairCode before the primary hello goes out
	shared  []byte // X25519(phone ephemeral, companion ephemeral)
	account *keys.KeyPair
	done    chan codeResult // companion_finish outcome, buffered
}

type codeResult struct {
	advSecret []byte
	err       error
}

// iqMultiDevice handles xmlns "md": the link_code_companion_reg stages of pairing by code.
func iqMultiDevice(s *Server, c *conn, iq *waBinary.Node) ([]waBinary.Node, *iqError) {
	if rm, ok := iq.GetOptionalChildByTag("remove-companion-device"); ok {
		return s.removeCompanion(c, &rm)
	}
	reg, ok := iq.GetOptionalChildByTag("link_code_companion_reg")
	if !ok || c.reg == nil {
		return nil, &iqError{400, "bad-request"}
	}
	ag := reg.AttrGetter()
	jid := ag.JID("jid")
	switch ag.String("stage") {
	case "companion_hello":
		wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_companion_ephemeral_pub").Content.([]byte)
		noise, _ := reg.GetChildByTag("companion_server_auth_key_pub").Content.([]byte)
		if len(wrapped) != 80 || !bytes.Equal(noise, c.noiseKey[:]) || jid.User == "" {
			return nil, &iqError{400, "bad-request"}
		}
		p := &codePairing{conn: c, phone: jid.User, ref: []byte(randomB64(24)), wrapped: wrapped, done: make(chan codeResult, 1)}
		s.mu.Lock()
		s.pendingCode[p.phone] = p
		s.mu.Unlock()
		s.events.add(Event{Kind: EventPairCode, Conn: c.id, Phone: p.phone})
		return []waBinary.Node{{Tag: "link_code_companion_reg", Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: p.ref},
		}}}, nil
	case "companion_finish":
		ref, _ := reg.GetChildByTag("link_code_pairing_ref").Content.([]byte)
		bundle, _ := reg.GetChildByTag("link_code_pairing_wrapped_key_bundle").Content.([]byte)
		s.mu.Lock()
		p := s.pendingCode[jid.User]
		s.mu.Unlock()
		if p == nil || p.conn != c || !bytes.Equal(p.ref, ref) || p.shared == nil {
			return nil, &iqError{404, "item-not-found"}
		}
		secret, err := p.openKeyBundle(bundle, c.reg.Identity)
		c.afterReply = func() { p.done <- codeResult{advSecret: secret, err: err} }
		if err != nil {
			return nil, &iqError{400, "bad-request"}
		}
		return nil, nil
	}
	return nil, &iqError{400, "bad-request"}
}

// openKeyBundle decrypts the companion's key bundle and derives the ADV secret exactly as
// whatsmeow's handleCodePairNotification does. A wrong code shows up here: the phone derived
// a different shared secret, so the bundle does not authenticate.
func (p *codePairing) openKeyBundle(bundle []byte, companionIdentity [32]byte) ([]byte, error) {
	if len(bundle) < 32+12+16 {
		return nil, ErrWrongPairCode
	}
	key := hkdfutil.SHA256(p.shared, bundle[:32], []byte("link_code_pairing_key_bundle_encryption_key"), 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, bundle[32:44], bundle[44:], nil)
	if err != nil || len(plain) != 96 {
		return nil, ErrWrongPairCode
	}
	if !bytes.Equal(plain[:32], companionIdentity[:]) || !bytes.Equal(plain[32:64], p.account.Pub[:]) {
		return nil, fmt.Errorf("%w: key bundle names other identities", ErrPairingRefused)
	}
	identityShared, err := curve25519.X25519(p.account.Priv[:], plain[:32])
	if err != nil {
		return nil, err
	}
	input := append(append(append([]byte{}, p.shared...), identityShared...), plain[64:96]...)
	return hkdfutil.SHA256(input, nil, []byte("adv_secret"), 32), nil
}

// EnterPairCode types the code a client got from PairPhone (e.g. "ABCD-EFGH") on the primary
// phone of phone, links the client as a new device of that account and tells it to reconnect.
// It returns once the link is complete, or ErrWrongPairCode.
func (s *Server) EnterPairCode(ctx context.Context, phone, code string) (types.JID, error) {
	code = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(code) != 8 {
		return types.EmptyJID, ErrWrongPairCode
	}
	phone = digits(phone)
	s.mu.Lock()
	p := s.pendingCode[phone]
	if p == nil || p.shared != nil {
		s.mu.Unlock()
		return types.EmptyJID, ErrNoCodePairing
	}
	acc := s.reg.accountLocked(phone, true)
	s.saveLocked()
	accountKey := acc.Key
	s.mu.Unlock()

	companionEph, err := codeCTR(code, p.wrapped[:32], p.wrapped[32:48], p.wrapped[48:80])
	if err != nil {
		return types.EmptyJID, err
	}
	eph := keys.NewKeyPair()
	shared, err := curve25519.X25519(eph.Priv[:], companionEph)
	if err != nil {
		return types.EmptyJID, ErrWrongPairCode // low-order point: a wrong code's garbage key
	}
	salt, iv := randomBytes(32), randomBytes(16)
	encEph, err := codeCTR(code, salt, iv, eph.Pub[:])
	if err != nil {
		return types.EmptyJID, err
	}
	s.mu.Lock()
	p.shared, p.account = shared, accountKey
	s.mu.Unlock()

	c := p.conn
	err = c.send(waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": types.ServerJID, "id": c.newID("link"), "type": "link_code_companion_reg",
		"t": strconv.FormatInt(time.Now().Unix(), 10),
	}, Content: []waBinary.Node{{Tag: "link_code_companion_reg", Attrs: waBinary.Attrs{"stage": "primary_hello"}, Content: []waBinary.Node{
		{Tag: "link_code_pairing_ref", Content: p.ref},
		{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: concat(salt, iv, encEph)},
		{Tag: "primary_identity_pub", Content: accountKey.Pub[:]},
	}}}})
	if err != nil {
		return types.EmptyJID, err
	}
	var res codeResult
	select {
	case res = <-p.done:
	case <-ctx.Done():
		return types.EmptyJID, ctx.Err()
	case <-c.ctx.Done():
		return types.EmptyJID, errConnClosed
	}
	s.mu.Lock()
	s.dropPendingLocked(c)
	s.mu.Unlock()
	if res.err != nil {
		return types.EmptyJID, res.err
	}
	return s.linkDevice(ctx, c, phone, res.advSecret, "code")
}

// codeCTR is the AES-CTR wrapping of an ephemeral key under PBKDF2(code) used by pairing by
// code (131072 iterations of PBKDF2-SHA256, as whatsmeow).
func codeCTR(code string, salt, iv, data []byte) ([]byte, error) {
	key, err := pbkdf2.Key(sha256.New, code, salt, 2<<16, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(data))
	cipher.NewCTR(block, iv).XORKeyStream(out, data)
	return out, nil
}

// linkDevice is the primary phone's half of pairing once it knows the ADV secret: it signs a
// device identity with the account key, sends pair-success, verifies the client's
// pair-device-sign, registers the device and sends stream:error 515.
func (s *Server) linkDevice(ctx context.Context, c *conn, phone string, advSecret []byte, via string) (types.JID, error) {
	s.mu.Lock()
	acc := s.reg.accountLocked(phone, true)
	devID := acc.NextDevice
	acc.NextDevice++
	acc.KeyIndex++
	keyIndex, accKey, rawID, lidUser := acc.KeyIndex, acc.Key, acc.RawID, acc.LID
	s.saveLocked()
	s.mu.Unlock()

	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:       proto.Uint32(rawID),
		Timestamp:   proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:    proto.Uint32(keyIndex),
		AccountType: waAdv.ADVEncryptionType_E2EE.Enum(),
		DeviceType:  waAdv.ADVEncryptionType_E2EE.Enum(),
	})
	if err != nil {
		return types.EmptyJID, err
	}
	accSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*accKey.Priv), concat(advAccountSignaturePrefix, details, c.reg.Identity[:]))
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details: details, AccountSignatureKey: accKey.Pub[:], AccountSignature: accSig[:],
	})
	if err != nil {
		return types.EmptyJID, err
	}
	mac := hmac.New(sha256.New, advSecret)
	mac.Write(signed)
	container, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{
		Details: signed, HMAC: mac.Sum(nil), AccountType: waAdv.ADVEncryptionType_E2EE.Enum(),
	})
	if err != nil {
		return types.EmptyJID, err
	}
	jid := types.JID{User: phone, Server: types.DefaultUserServer, Device: devID}
	lid := types.JID{User: lidUser, Server: types.HiddenUserServer, Device: devID}
	resp, err := c.request(ctx, waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"from": types.ServerJID, "type": "set",
	}, Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
		{Tag: "device-identity", Content: container},
		{Tag: "platform", Attrs: waBinary.Attrs{"name": s.opts.Platform}},
		{Tag: "device", Attrs: waBinary.Attrs{"jid": jid, "lid": lid}},
	}}}})
	if err != nil {
		return types.EmptyJID, err
	}
	if resp.AttrGetter().OptionalString("type") != "result" {
		e := resp.GetChildByTag("error")
		return types.EmptyJID, fmt.Errorf("%w: %v %v", ErrPairingRefused, e.Attrs["code"], e.Attrs["text"])
	}
	devIdent, _ := resp.GetChildByTag("pair-device-sign", "device-identity").Content.([]byte)
	var back waAdv.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(devIdent, &back); err != nil {
		return types.EmptyJID, fmt.Errorf("%w: pair-device-sign: %w", ErrPairingRefused, err)
	}
	if !bytes.Equal(back.Details, details) || len(back.DeviceSignature) != 64 ||
		!ecc.VerifySignature(ecc.NewDjbECPublicKey(c.reg.Identity),
			concat(advDeviceSignaturePrefix, details, c.reg.Identity[:], accKey.Pub[:]), [64]byte(back.DeviceSignature)) {
		return types.EmptyJID, fmt.Errorf("%w: bad device signature", ErrPairingRefused)
	}

	s.mu.Lock()
	acc = s.reg.accountLocked(phone, true)
	acc.Devices[devID] = &Device{
		ID: devID, NoiseKey: c.noiseKey, RegistrationID: c.reg.RegistrationID, Identity: c.reg.Identity,
		SignedPreKey: c.reg.SignedPreKey, Platform: s.opts.Platform, PairedAt: time.Now().UTC(), Via: via,
	}
	s.saveLocked()
	s.mu.Unlock()
	s.events.add(Event{Kind: EventPaired, Conn: c.id, JID: jid.String(), Phone: phone, Detail: via})

	// The client drops this socket itself and logs in on a new one.
	if err := c.send(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "515"}}); err == nil {
		s.events.add(Event{Kind: EventStreamError, Conn: c.id, JID: jid.String(), Phone: phone, Detail: "515"})
	}
	c.closeWhenIdle(10 * time.Second)
	return jid, nil
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randomB64(n int) string { return base64.StdEncoding.EncodeToString(randomBytes(n)) }

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

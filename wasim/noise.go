package wasim

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mau.fi/libsignal/ecc"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/keys"
)

// certChain is the simulator's own root -> intermediate -> leaf chain. The client checks the
// intermediate's signature against whatsmeow.WACertPubKey (set to the simulator's root), the
// issuer serials, that the leaf key equals the server's Noise static key, and that both
// certificates are valid now (NotBefore/NotAfter, checked since whatsmeow 2026).
type certChain struct {
	static *keys.KeyPair // Noise static key of the server, the leaf's key
	raw    []byte        // marshalled waCert.CertChain, sent in ServerHello.Payload
}

const intermediateSerial = 1

func newCertChain(root *keys.KeyPair) (*certChain, error) {
	inter := keys.NewKeyPair()
	static := keys.NewKeyPair()
	// A day of slack either side of now (clocks differ), valid for ten years: a
	// simulator is never up for that long.
	now := time.Now()
	notBefore := proto.Uint64(uint64(now.Add(-24 * time.Hour).Unix()))
	notAfter := proto.Uint64(uint64(now.AddDate(10, 0, 0).Unix()))
	interDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial),
		IssuerSerial: proto.Uint32(0), // must equal whatsmeow.WACertIssuerSerial
		Key:          inter.Pub[:],
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	})
	if err != nil {
		return nil, err
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial + 1),
		IssuerSerial: proto.Uint32(intermediateSerial),
		Key:          static.Pub[:],
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	})
	if err != nil {
		return nil, err
	}
	interSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*root.Priv), interDetails)
	leafSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*inter.Priv), leafDetails)
	raw, err := proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: interDetails, Signature: interSig[:]},
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: leafDetails, Signature: leafSig[:]},
	})
	if err != nil {
		return nil, err
	}
	return &certChain{static: static, raw: raw}, nil
}

// noiseState is the responder side of Noise_XX_25519_AESGCM_SHA256 as whatsmeow's client
// (socket/noisehandshake.go) runs it. whatsmeow's own NoiseHandshake keeps its chaining key
// unexported and only finishes into a client socket, hence this mirror.
type noiseState struct {
	hash    []byte
	salt    []byte // the chaining key
	key     cipher.AEAD
	counter uint32
}

func newNoiseState(header []byte) (*noiseState, error) {
	start := []byte(socket.NoiseStartPattern) // exactly 32 bytes: used raw, not hashed
	ns := &noiseState{hash: start, salt: start}
	var err error
	if ns.key, err = gcmutil.Prepare(start); err != nil {
		return nil, err
	}
	ns.authenticate(header)
	return ns, nil
}

func (ns *noiseState) authenticate(data []byte) {
	h := sha256.New()
	h.Write(ns.hash)
	h.Write(data)
	ns.hash = h.Sum(nil)
}

func (ns *noiseState) mixDH(priv, pub [32]byte) error {
	secret, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return fmt.Errorf("x25519: %w", err)
	}
	ck, k, err := hkdf2(ns.salt, secret)
	if err != nil {
		return err
	}
	ns.salt, ns.counter = ck, 0
	ns.key, err = gcmutil.Prepare(k)
	return err
}

func (ns *noiseState) encrypt(plaintext []byte) []byte {
	ct := ns.key.Seal(nil, noiseIV(ns.counter), plaintext, ns.hash)
	ns.counter++
	ns.authenticate(ct)
	return ct
}

func (ns *noiseState) decrypt(ciphertext []byte) ([]byte, error) {
	pt, err := ns.key.Open(nil, noiseIV(ns.counter), ciphertext, ns.hash)
	ns.counter++
	if err != nil {
		return nil, err
	}
	ns.authenticate(ciphertext)
	return pt, nil
}

// split returns the transport ciphers. The client writes with the first HKDF output, so the
// server reads with it and writes with the second.
func (ns *noiseState) split() (read, write cipher.AEAD, err error) {
	k1, k2, err := hkdf2(ns.salt, nil)
	if err != nil {
		return nil, nil, err
	}
	if read, err = gcmutil.Prepare(k1); err != nil {
		return nil, nil, err
	}
	write, err = gcmutil.Prepare(k2)
	return read, write, err
}

func hkdf2(salt, ikm []byte) (a, b []byte, err error) {
	r := hkdf.New(sha256.New, ikm, salt, nil)
	a, b = make([]byte, 32), make([]byte, 32)
	if _, err = io.ReadFull(r, a); err == nil {
		_, err = io.ReadFull(r, b)
	}
	return a, b, err
}

func noiseIV(n uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], n)
	return iv
}

// handshakeResult is what the responder learns from a completed handshake.
type handshakeResult struct {
	clientStatic [32]byte // the client's Noise key: identifies a device across logins
	payload      *waWa6.ClientPayload
	read, write  cipher.AEAD
}

var errHandshake = errors.New("noise handshake failed")

// serverHandshake runs the responder side over a frame transport. recv returns the next
// complete frame; send writes one.
func serverHandshake(chain *certChain, header []byte, recv func() ([]byte, error), send func([]byte) error) (*handshakeResult, error) {
	ns, err := newNoiseState(header)
	if err != nil {
		return nil, err
	}
	frame, err := recv()
	if err != nil {
		return nil, fmt.Errorf("%w: reading client hello: %w", errHandshake, err)
	}
	var hello waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &hello); err != nil {
		return nil, fmt.Errorf("%w: client hello: %w", errHandshake, err)
	}
	ce := hello.GetClientHello().GetEphemeral()
	if len(ce) != 32 {
		return nil, fmt.Errorf("%w: client ephemeral of %d bytes", errHandshake, len(ce))
	}
	clientEph := [32]byte(ce)
	ns.authenticate(ce)

	eph := keys.NewKeyPair()
	ns.authenticate(eph.Pub[:])
	if err := ns.mixDH(*eph.Priv, clientEph); err != nil {
		return nil, err
	}
	encStatic := ns.encrypt(chain.static.Pub[:])
	if err := ns.mixDH(*chain.static.Priv, clientEph); err != nil {
		return nil, err
	}
	encCert := ns.encrypt(chain.raw)
	out, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: eph.Pub[:], Static: encStatic, Payload: encCert,
	}})
	if err != nil {
		return nil, err
	}
	if err := send(out); err != nil {
		return nil, fmt.Errorf("%w: sending server hello: %w", errHandshake, err)
	}

	if frame, err = recv(); err != nil {
		return nil, fmt.Errorf("%w: reading client finish: %w", errHandshake, err)
	}
	var finish waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &finish); err != nil {
		return nil, fmt.Errorf("%w: client finish: %w", errHandshake, err)
	}
	static, err := ns.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil || len(static) != 32 {
		return nil, fmt.Errorf("%w: client static: %v", errHandshake, err)
	}
	res := &handshakeResult{clientStatic: [32]byte(static)}
	if err := ns.mixDH(*eph.Priv, res.clientStatic); err != nil {
		return nil, err
	}
	rawPayload, err := ns.decrypt(finish.GetClientFinish().GetPayload())
	if err != nil {
		return nil, fmt.Errorf("%w: client payload: %w", errHandshake, err)
	}
	res.payload = &waWa6.ClientPayload{}
	if err := proto.Unmarshal(rawPayload, res.payload); err != nil {
		return nil, fmt.Errorf("%w: client payload: %w", errHandshake, err)
	}
	if res.read, res.write, err = ns.split(); err != nil {
		return nil, err
	}
	return res, nil
}

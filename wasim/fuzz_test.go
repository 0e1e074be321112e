package wasim

import (
	"errors"
	"testing"

	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/keys"
)

// FuzzServerHandshake feeds arbitrary client frames to the Noise responder: it must fail
// cleanly, never panic.
func FuzzServerHandshake(f *testing.F) {
	chain, err := newCertChain(keys.NewKeyPair())
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0x12, 0x22, 0x0a, 0x20}, []byte{})
	f.Add(make([]byte, 40), make([]byte, 100))
	f.Fuzz(func(t *testing.T, hello, finish []byte) {
		frames := [][]byte{hello, finish}
		recv := func() ([]byte, error) {
			if len(frames) == 0 {
				return nil, errors.New("eof")
			}
			f := frames[0]
			frames = frames[1:]
			return f, nil
		}
		if _, err := serverHandshake(chain, socket.WAConnHeader, recv, func([]byte) error { return nil }); err == nil {
			t.Fatal("handshake succeeded on fuzz input")
		}
	})
}

package kv

import (
	"crypto/sha256"
	"testing"
)

// FuzzDecodeEntry feeds arbitrary stored values to the journal decoder and
// the record check: they may refuse, never panic, and a value accepted as
// intact decodes to the payload it hashes.
func FuzzDecodeEntry(f *testing.F) {
	payload := []byte(`{"seq":1,"time":"2026-11-23T10:00:00Z","kind":"transition","campana":"k","envio":1,"from":"pendiente","to":"enviando","prev":"00"}`)
	sum := sha256.Sum256(payload)
	f.Add(append(sum[:], payload...))
	f.Add([]byte{})
	f.Add(make([]byte, sha256.Size))
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := splitRecord(v)
		if err != nil {
			return
		}
		e, derr := decodeEntry(v)
		if r.intact() && derr == nil {
			again := sha256.Sum256(r.payload)
			if string(again[:]) != string(r.sum) {
				t.Fatalf("intact record whose hash differs")
			}
			_ = e
		}
	})
}

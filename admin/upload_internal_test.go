package admin

import (
	"strings"
	"testing"
	"testing/iotest"
)

// TestTextCheck: the spool's UTF-8 check holds when a character is split
// across writes, and refuses a file that ends inside one.
func TestTextCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		ok   bool
	}{
		{"accents", "telefono,nombre\n+5491123456701,Gómez Ñandú 🙂\n", true},
		{"cut at the end", "nombre\nG\xc3", false},
		{"stray continuation", "nombre\n\x80abc\n", false},
		{"latin-1", "nombre\nG\xf3mez\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chk := &textCheck{}
			for i := range len(tc.text) { // one byte per write: every split
				if _, err := chk.Write([]byte{tc.text[i]}); err != nil {
					break
				}
			}
			if got := chk.err() == nil; got != tc.ok {
				t.Fatalf("byte by byte: ok = %v, want %v", got, tc.ok)
			}
			chk = &textCheck{}
			chk.Write([]byte(tc.text))
			if got := chk.err() == nil; got != tc.ok {
				t.Fatalf("whole: ok = %v, want %v", got, tc.ok)
			}
		})
	}
}

// TestSpoolJSONOneByteReads: the JSON check reads the upload as a stream.
func TestSpoolJSONOneByteReads(t *testing.T) {
	dir := t.TempDir()
	body := `[{"telefono":"+5491123456701","nombre":"Gómez"}, {"telefono":"+5491123456702"}]` + "\n"
	f, n, err := spoolUpload(dir, iotest.OneByteReader(strings.NewReader(body)), "json")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if n != int64(len(body)) {
		t.Fatalf("spooled %d bytes, want %d", n, len(body))
	}
	if _, _, err := spoolUpload(dir, iotest.OneByteReader(strings.NewReader(`[1] [2]`)), "json"); err == nil {
		t.Fatal("two arrays accepted")
	}
}

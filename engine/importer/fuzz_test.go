package importer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"leadmaster/engine/phone"
)

// checkParse holds for any input: no panic, only E.164 phones, strictly
// increasing line (or element) numbers over rows and rejections together,
// consistent counts, and only *FileError as an error.
func checkParse(t *testing.T, parse func(context.Context, *bytes.Reader, Options, func(Row) error) (Summary, error), data []byte) {
	last, rows, rejects := 0, 0, 0
	step := func(line int) {
		if line <= last {
			t.Fatalf("line %d after line %d", line, last)
		}
		last = line
	}
	opts := Options{
		DefaultRegion: "AR",
		MaxLineBytes:  512,
		Workers:       1 + len(data)%2, // both the inline and the concurrent path
		Reject: func(r Rejected) {
			rejects++
			step(r.Line)
			if r.Reason == "" {
				t.Fatalf("line %d rejected without a reason", r.Line)
			}
		},
	}
	sum, err := parse(context.Background(), bytes.NewReader(data), opts, func(r Row) error {
		rows++
		step(r.Line)
		if !phone.IsE164(r.Telefono) {
			t.Fatalf("line %d: phone %q is not E.164", r.Line, r.Telefono)
		}
		if again, err := phone.Normalize(r.Telefono, "AR"); err != nil || again != r.Telefono {
			t.Fatalf("line %d: phone %q does not normalize to itself: %q, %v", r.Line, r.Telefono, again, err)
		}
		return nil
	})
	if sum.Accepted != rows || sum.Rejected != rejects {
		t.Fatalf("summary %+v, saw %d rows and %d rejections", sum, rows, rejects)
	}
	if sum.Bytes > int64(len(data)) {
		t.Fatalf("summary reports %d bytes of %d", sum.Bytes, len(data))
	}
	if err != nil {
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T) is not a *FileError", err, err)
		}
		_ = fe.Error()
		return
	}
	if sum.Rows != sum.Accepted+sum.Rejected+sum.Blank {
		t.Fatalf("summary %+v does not add up", sum)
	}
}

// seeds adds the fixtures and a few hand-written inputs to the corpus.
func seeds(f *testing.F, pattern string, extra ...string) {
	files, _ := filepath.Glob(pattern)
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

func FuzzParseCSV(f *testing.F) {
	seeds(f, "testdata/*.csv",
		"telefono,nombre\n+54 9 11 2345-6789,\"Ana\nMaría\"\n",
		"telefono;nombre;x\r\n011 15 2345-6789;\"a\"\"b\";\r\n;;\r\n",
		"telefono,nombre\n+54 9 11 2345-6789,\"Ana\n",
		"telefono,nombre\n+54 9 11 2345-6789,Ana \"x\"\n1123456789,b\n",
		"\uFEFFcelular\n5491123456789\n",
		"telefono\n\xe9\n",
		"",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, func(ctx context.Context, r *bytes.Reader, o Options, fn func(Row) error) (Summary, error) {
			return ParseCSV(ctx, r, o, fn)
		}, data)
	})
}

func FuzzParseJSON(f *testing.F) {
	seeds(f, "testdata/*.json",
		`[{"telefono": "+54 9 11 2345-6789", "nombre": "Ana", "variables": {"a": 1, "b": [1, {"c": null}]}}, 3, [], {}]`,
		`[{"telefono": 5491123456789, "x": true}]`,
		`[`, `[]`, `{}`, ``, `[{"telefono": "1"}`,
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, func(ctx context.Context, r *bytes.Reader, o Options, fn func(Row) error) (Summary, error) {
			return ParseJSON(ctx, r, o, fn)
		}, data)
	})
}

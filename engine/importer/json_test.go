package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func parseJSON(t testing.TB, r io.Reader, opts Options) result {
	t.Helper()
	var res result
	opts.Reject = func(rj Rejected) { res.rejects = append(res.rejects, rj) }
	res.sum, res.err = ParseJSON(context.Background(), r, opts, func(row Row) error {
		res.rows = append(res.rows, row)
		return nil
	})
	return res
}

func TestParseJSON(t *testing.T) {
	const ar = "+5491123456789"
	tests := []struct {
		name    string
		in      string
		rows    []string
		rejects []string // "element:substring"
	}{
		{
			name: "objects with variables and extra fields",
			in: `[
				{"telefono": "+54 9 11 2345-6789", "nombre": " Ana ", "variables": {"producto": "plan A", "cuotas": 3}},
				{"Teléfono": "011 15 2345-6790", "name": "Beto", "Ciudad": "Salta", "vip": true, "nota": null},
				{"phone": 5491123456791}
			]`,
			rows: []string{
				"1:" + ar + ":Ana:map[cuotas:3 producto:plan A]",
				"2:+5491123456790:Beto:map[ciudad:Salta vip:true]",
				"3:+5491123456791:",
			},
		},
		{name: "empty array", in: " [ ] "},
		{name: "BOM", in: "\uFEFF[{\"celular\":\"+54 9 11 2345-6789\"}]", rows: []string{"1:" + ar + ":"}},
		{
			name: "unusable elements are rejected",
			in: `[
				"+54 9 11 2345-6789",
				[{"telefono": "+54 9 11 2345-6789"}],
				{"nombre": "Sin teléfono"},
				{"telefono": "abc"},
				{"telefono": null},
				{"telefono": "+54 9 11 2345-6789", "variables": {"a": {"b": 1}}},
				{"telefono": "+54 9 11 2345-6789", "direccion": {"calle": "x"}},
				{"telefono": "+54 9 11 2345-6789", "ciudad": "a", "variables": {"Ciudad": "b"}},
				{"telefono": "+54 9 11 2345-6789", "telefono": "+54 9 11 2345-6790"},
				42,
				{"telefono": "+54 9 11 2345-6789", "nombre": "Ok"}
			]`,
			rows: []string{"11:" + ar + ":Ok"},
			rejects: []string{
				"1:no es un objeto", "2:no es un objeto", "3:falta el teléfono", "4:contiene letras",
				"5:teléfono vacío", `6:la variable "a" no es texto`, `7:el valor de "direccion" no es texto`,
				`8:la variable "ciudad" está repetida`, "9:dos campos de teléfono", "10:no es un objeto",
			},
		},
	}
	for _, tt := range tests {
		for _, mode := range []struct {
			oneByte bool
			workers int
		}{{false, 1}, {true, 1}, {false, 3}} {
			name := fmt.Sprintf("%s/workers=%d", tt.name, mode.workers)
			if mode.oneByte {
				name += "/one byte reads"
			}
			t.Run(name, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				if mode.oneByte {
					r = iotest.OneByteReader(r)
				}
				res := parseJSON(t, r, Options{DefaultRegion: "AR", Workers: mode.workers})
				if res.err != nil {
					t.Fatalf("err = %v", res.err)
				}
				if got := rowsOf(res.rows); !reflect.DeepEqual(got, tt.rows) {
					t.Errorf("rows:\n got %q\nwant %q", got, tt.rows)
				}
				if len(res.rejects) != len(tt.rejects) {
					t.Fatalf("rejects = %+v, want %q", res.rejects, tt.rejects)
				}
				for i, want := range tt.rejects {
					line, sub, _ := strings.Cut(want, ":")
					if fmt.Sprint(res.rejects[i].Line) != line || !strings.Contains(res.rejects[i].Reason, sub) {
						t.Errorf("reject %d = %+v, want %q", i, res.rejects[i], want)
					}
				}
				s := res.sum
				if s.Rows != len(tt.rows)+len(tt.rejects) || s.Accepted != len(tt.rows) || s.Bytes != int64(len(tt.in)) {
					t.Errorf("summary = %+v (input %d bytes)", s, len(tt.in))
				}
			})
		}
	}
}

func TestParseJSONFileErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts Options
		err  error
		line int
		msg  string
	}{
		{name: "empty", in: "", err: ErrEmpty},
		{name: "blank", in: " \n\t ", err: ErrEmpty},
		{name: "object instead of array", in: `{"telefono": "1"}`, err: ErrSyntax, msg: "se esperaba una lista"},
		{name: "string instead of array", in: `"x"`, err: ErrSyntax},
		{name: "malformed element", in: `[{"telefono": "+54 9 11 2345-6789"}, {"telefono": x}]`, err: ErrSyntax, line: 2, msg: "elemento 2: JSON mal formado"},
		{name: "missing comma", in: `[{"telefono": "1"} {"telefono": "2"}]`, err: ErrSyntax, line: 2},
		{name: "truncated", in: `[{"telefono": "+54 9 11 2345-6789"}, {"telef`, err: ErrSyntax, line: 2},
		{name: "unclosed array", in: `[{"telefono": "+54 9 11 2345-6789"}`, err: ErrSyntax, line: 2, msg: "termina antes de cerrar"},
		{name: "trailing data", in: `[] []`, err: ErrSyntax, msg: "después del cierre"},
		{name: "NUL", in: "[{\"telefono\": \"+54\x00\"}]", err: ErrEncoding, line: 1},
		{name: "Latin-1", in: "[{\"telefono\": \"+54 9 11 2345-6789\"}, {\"nombre\": \"Jos\xe9\"}]", err: ErrEncoding},
		{name: "UTF-16 BOM", in: "\xff\xfe[\x00]\x00", err: ErrEncoding, msg: "UTF-16"},
		{
			name: "element too big",
			in:   `[{"telefono": "+54 9 11 2345-6789"}, {"nombre": "` + strings.Repeat("x", 10000) + `"}]`,
			opts: Options{MaxLineBytes: 100}, err: ErrLineTooLong, line: 2, msg: "elemento 2: línea demasiado larga: el elemento supera",
		},
		{
			name: "too many elements",
			in:   `[{"telefono": "+54 9 11 2345-6789"}, {"telefono": "+54 9 11 2345-6790"}]`,
			opts: Options{MaxRows: 1}, err: ErrTooManyRows, line: 2,
		},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			name := tt.name
			if oneByte {
				name += "/one byte reads"
			}
			t.Run(name, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				opts := tt.opts
				opts.DefaultRegion = "AR"
				res := parseJSON(t, r, opts)
				var fe *FileError
				if !errors.As(res.err, &fe) || !errors.Is(res.err, tt.err) {
					t.Fatalf("err = %v (%T), want *FileError wrapping %v", res.err, res.err, tt.err)
				}
				if tt.line != 0 && fe.Line != tt.line {
					t.Errorf("element = %d, want %d (%v)", fe.Line, tt.line, fe)
				}
				if !strings.Contains(fe.Error(), tt.msg) {
					t.Errorf("message %q, want it to contain %q", fe.Error(), tt.msg)
				}
			})
		}
	}
}

func TestParseJSONHugeElementMemory(t *testing.T) {
	const size = 50 << 20
	in := io.MultiReader(strings.NewReader(`[{"telefono": "+54 9 11 2345-6789"}, {"telefono": "+54 9 11 2345-6790", "nombre": "`), repeat("", 'x', size, `"}]`))
	var before, after runtimeMem
	before.read(true)
	res := parseJSON(t, in, Options{DefaultRegion: "AR"})
	after.read(false)
	var fe *FileError
	if !errors.As(res.err, &fe) || !errors.Is(res.err, ErrLineTooLong) || fe.Line != 2 {
		t.Fatalf("err = %v, want ErrLineTooLong at element 2", res.err)
	}
	if d := after.totalAlloc - before.totalAlloc; d > 16<<20 {
		t.Errorf("allocated %d MB parsing a 50 MB element, want < 16 MB", d>>20)
	}
	t.Logf("allocated %d KB", (after.totalAlloc-before.totalAlloc)>>10)
}

func TestParseJSONCallbackErrorAndCancel(t *testing.T) {
	in := `[{"telefono": "+54 9 11 2345-6789"}, {"telefono": "+54 9 11 2345-6790"}, {"telefono": "+54 9 11 2345-6791"}]`
	stop := errors.New("basta")
	n := 0
	_, err := ParseJSON(context.Background(), strings.NewReader(in), Options{DefaultRegion: "AR"}, func(Row) error {
		if n++; n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "elemento 2") {
		t.Fatalf("err = %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n = 0
	_, err = ParseJSON(ctx, strings.NewReader(in), Options{DefaultRegion: "AR"}, func(Row) error {
		if n++; n == 1 {
			cancel()
		}
		return nil
	})
	if err != context.Canceled || n != 1 {
		t.Fatalf("err = %v after %d rows, want context.Canceled after 1", err, n)
	}
}

func TestJSONFixture(t *testing.T) {
	f, err := os.Open("testdata/ok.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := parseJSON(t, f, Options{DefaultRegion: "MX"})
	if res.err != nil || res.sum.Accepted != 3 || res.sum.Rejected != 1 {
		t.Fatalf("summary = %+v, rejects %+v, err %v", res.sum, res.rejects, res.err)
	}
}

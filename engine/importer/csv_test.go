package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"leadmaster/engine/phone"
)

// result is what a parse produced, in a comparable shape.
type result struct {
	rows    []Row
	rejects []Rejected
	sum     Summary
	err     error
}

func parseCSV(t testing.TB, r io.Reader, opts Options) result {
	t.Helper()
	var res result
	opts.Reject = func(rj Rejected) { res.rejects = append(res.rejects, rj) }
	res.sum, res.err = ParseCSV(context.Background(), r, opts, func(row Row) error {
		res.rows = append(res.rows, row)
		return nil
	})
	return res
}

// rowsOf renders rows as "line:phone:name" plus sorted variables.
func rowsOf(rows []Row) []string {
	var out []string
	for _, r := range rows {
		s := fmt.Sprintf("%d:%s:%s", r.Line, r.Telefono, r.Nombre)
		if r.Variables != nil {
			s += fmt.Sprintf(":%v", r.Variables) // fmt sorts map keys
		}
		out = append(out, s)
	}
	return out
}

func TestParseCSV(t *testing.T) {
	const ar = "+5491123456789"
	tests := []struct {
		name    string
		in      string
		rows    []string // "line:phone:name[:map[...]]"
		rejects []string // "line:substring of reason"
		blank   int
		sep     rune
	}{
		{
			name: "comma LF",
			in:   "telefono,nombre,producto\n+54 9 11 2345-6789,Ana,plan A\n011 15 2345-6790,Beto,plan B\n",
			rows: []string{"2:" + ar + ":Ana:map[producto:plan A]", "3:+5491123456790:Beto:map[producto:plan B]"},
			sep:  ',',
		},
		{
			name: "CRLF and no final newline",
			in:   "telefono,nombre\r\n+54 9 11 2345-6789,Ana\r\n1123456790,Beto",
			rows: []string{"2:" + ar + ":Ana", "3:+541123456790:Beto"},
			sep:  ',',
		},
		{
			name: "semicolon with UTF-8 BOM",
			in:   "\uFEFFTeléfono;Nombre;Ciudad\r\n11 2345 6789;José;Córdoba\r\n+54 9 11 2345 6789;María, la de Ventas;\"Buenos Aires; CABA\"\r\n",
			rows: []string{"2:+541123456789:José:map[ciudad:Córdoba]", "3:" + ar + ":María, la de Ventas:map[ciudad:Buenos Aires; CABA]"},
			sep:  ';',
		},
		{
			name: "accented and aliased headers in any order",
			in:   " Ciudad ,Nombre y Apellido, Número de Teléfono \nRosario,Ana,+54 9 11 2345-6789\n",
			rows: []string{"2:" + ar + ":Ana:map[ciudad:Rosario]"},
			sep:  ',',
		},
		{
			name: "móvil alias, no name column",
			in:   "MÓVIL;producto\n+54 9 11 2345 6789;x\n",
			rows: []string{"2:" + ar + "::map[producto:x]"},
			sep:  ';',
		},
		{
			name: "phone only",
			in:   "whatsapp\n5491123456789\n",
			rows: []string{"2:" + ar + ":"},
			sep:  ',',
		},
		{
			name: "header only",
			in:   "telefono,nombre\n",
			sep:  ',',
		},
		{
			name: "header only without newline",
			in:   "telefono;nombre",
			sep:  ';',
		},
		{
			name: "quoted fields with embedded newlines keep line numbers",
			in: "telefono,nombre,nota\n" +
				"+54 9 11 2345-6789,\"Ana\nMaría\",\"línea 1\r\nlínea 2\nlínea 3\"\n" +
				"+54 9 11 2345-6790,Beto,\"sin saltos\"\n" +
				"\"+54 9 11\n2345-6791\",Carla,x\n" +
				"+54 9 11 2345-6792,\"Dani \"\"el grande\"\"\",x\n",
			rows: []string{
				"2:" + ar + ":Ana\nMaría:map[nota:línea 1\nlínea 2\nlínea 3]",
				"6:+5491123456790:Beto:map[nota:sin saltos]",
				"7:+5491123456791:Carla:map[nota:x]", // a line break is a space to phone.Normalize
				"9:+5491123456792:Dani \"el grande\":map[nota:x]",
			},
			sep: ',',
		},
		{
			name:  "blank lines and blank rows",
			in:    "\n\ntelefono;nombre\n\n+54 9 11 2345-6789;Ana\n;\n  ;  \n\n+54 9 11 2345-6790;Beto\n",
			rows:  []string{"5:" + ar + ":Ana", "9:+5491123456790:Beto"},
			blank: 2,
			sep:   ';',
		},
		{
			name:    "bare quote rejects one row and resumes on the next line",
			in:      "telefono,nombre\n+54 9 11 2345-6789,Ana \"la\" grande\n+54 9 11 2345-6790,Beto\n",
			rows:    []string{"3:+5491123456790:Beto"},
			rejects: []string{"2:comilla \" dentro de un campo sin comillas (línea 2, columna"},
			sep:     ',',
		},
		{
			name:    "text after a closing quote rejects one row",
			in:      "telefono,nombre\n+54 9 11 2345-6789,\"Ana\"x\n+54 9 11 2345-6790,Beto\n",
			rows:    []string{"3:+5491123456790:Beto"},
			rejects: []string{"2:comillas mal cerradas (línea 2, columna"},
			sep:     ',',
		},
		{
			name:    "unclosed quote on the last line rejects that row",
			in:      "telefono,nombre\n+54 9 11 2345-6790,Beto\n+54 9 11 2345-6789,\"Ana",
			rows:    []string{"2:+5491123456790:Beto"},
			rejects: []string{"3:comillas mal cerradas"},
			sep:     ',',
		},
		{
			name: "wrong column counts",
			in: "telefono,nombre,ciudad\n" +
				"+54 9 11 2345-6789,Ana\n" + // one short
				"+54 9 11 2345-6790,Beto,Salta,extra\n" + // one more, not empty
				"+54 9 11 2345-6791,Carla,Jujuy,,\n" + // trailing empty cells: fine
				"+54 9 11 2345-6792\n",
			rows: []string{"4:+5491123456791:Carla:map[ciudad:Jujuy]"},
			rejects: []string{
				"2:faltan columnas: se esperaban 3 y hay 2",
				"3:sobran columnas: se esperaban 3 y hay 4",
				"5:faltan columnas: se esperaban 3 y hay 1",
			},
			sep: ',',
		},
		{
			name: "empty header cells are ignored",
			in:   "telefono;nombre;;\n+54 9 11 2345-6789;Ana;basura;\n",
			rows: []string{"2:" + ar + ":Ana"},
			sep:  ';',
		},
		{
			name: "invalid and malformed phones",
			in: "telefono,nombre\n" +
				",Vacío\n" +
				"abc,Letras\n" +
				"123,Corto\n" +
				"+54 9 11 2345 6789 1234 5678,Largo\n" +
				"+54 9 11 2345#6789,Símbolo\n" +
				"+999 1234 5678,País\n" +
				"+54 9 11 2345-6789,Bien\n",
			rows: []string{"8:" + ar + ":Bien"},
			rejects: []string{
				"2:teléfono vacío",
				"3:número inválido: \"abc\" (contiene letras)",
				"4:número inválido: \"123\" (demasiado corto)",
				"5:demasiado largo",
				"6:contiene caracteres no válidos",
				"7:código de país",
			},
			sep: ',',
		},
		{
			name: "values are trimmed; variable keys are lower case",
			in:   "Telefono , Nombre , Producto Favorito \n  +54 9 11 2345-6789 ,  Ana  ,  Té verde  \n",
			rows: []string{"2:" + ar + ":Ana:map[producto favorito:Té verde]"},
			sep:  ',',
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
				res := parseCSV(t, r, Options{DefaultRegion: "AR", Workers: mode.workers})
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
					got := fmt.Sprintf("%d:%s", res.rejects[i].Line, res.rejects[i].Reason)
					if !strings.HasPrefix(want, fmt.Sprintf("%d:", res.rejects[i].Line)) || !strings.Contains(got, want[strings.IndexByte(want, ':')+1:]) {
						t.Errorf("reject %d = %q, want %q", i, got, want)
					}
				}
				s := res.sum
				if s.Accepted != len(tt.rows) || s.Rejected != len(tt.rejects) || s.Blank != tt.blank || s.Rows != s.Accepted+s.Rejected+s.Blank {
					t.Errorf("summary = %+v, want %d accepted, %d rejected, %d blank", s, len(tt.rows), len(tt.rejects), tt.blank)
				}
				if s.Separator != tt.sep {
					t.Errorf("separator = %q, want %q", s.Separator, tt.sep)
				}
				if s.Bytes != int64(len(tt.in)) {
					t.Errorf("bytes = %d, want %d", s.Bytes, len(tt.in))
				}
			})
		}
	}
}

func TestParseCSVFileErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts Options
		err  error
		line int
		msg  string
	}{
		{name: "empty", in: "", err: ErrEmpty, msg: "archivo vacío"},
		{name: "BOM only", in: "\uFEFF", err: ErrEmpty},
		{name: "blank lines only", in: "\n\r\n\n", err: ErrEmpty},
		{name: "no phone column", in: "nombre,ciudad\nAna,Salta\n", err: ErrHeader, line: 1, msg: "falta la columna del teléfono"},
		{name: "data instead of header", in: "+54 9 11 2345-6789,Ana\n", err: ErrHeader, line: 1, msg: "falta la fila de encabezado"},
		{name: "duplicate header", in: "telefono,Ciudad,nombre,ciudad\n", err: ErrHeader, line: 1, msg: `la columna "ciudad" está repetida (columnas 2 y 4)`},
		{name: "duplicate accented header", in: "\n\nteléfono;TELEFONO\n", err: ErrHeader, line: 3, msg: "repetida"},
		{name: "two phone columns", in: "telefono,celular\n", err: ErrHeader, line: 1, msg: `dos columnas de teléfono: "telefono" y "celular"`},
		{name: "two name columns", in: "telefono,nombre,name\n", err: ErrHeader, line: 1, msg: "dos columnas de nombre"},
		{name: "bad quote in header", in: "telefono,\"nombre\"x\n", err: ErrHeader, line: 1},
		{name: "NUL byte", in: "telefono,nombre\n+54 9 11 2345-6789,Ana\n+54 9 11\x00 2345-6790,Beto\n", err: ErrEncoding, line: 3, msg: "línea 3: codificación no válida"},
		{name: "binary garbage", in: "telefono\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", err: ErrEncoding, line: 2},
		{name: "Latin-1", in: "telefono,nombre\n+54 9 11 2345-6789,Ana\n+54 9 11 2345-6790,Jos\xe9\n", err: ErrEncoding, line: 3, msg: "UTF-8 inválida"},
		{name: "truncated UTF-8 at EOF", in: "telefono,nombre\n+54 9 11 2345-6789,Jos\xc3", err: ErrEncoding, line: 2},
		{name: "UTF-16LE BOM", in: "\xff\xfet\x00e\x00l\x00", err: ErrEncoding, line: 1, msg: "UTF-16"},
		{name: "UTF-16BE BOM", in: "\xfe\xff\x00t\x00e", err: ErrEncoding, line: 1, msg: "UTF-16"},
		{name: "UTF-16 without BOM", in: "t\x00e\x00l\x00\n\x00", err: ErrEncoding, line: 1, msg: "NUL"},
		{name: "classic Mac line endings", in: "telefono,nombre\r+54 9 11 2345-6789,Ana\r", err: ErrEncoding, line: 1, msg: "CR"},
		{
			name: "unclosed quote swallowing lines",
			in:   "telefono,nombre\n+54 9 11 2345-6789,\"Ana\n+54 9 11 2345-6790,Beto\n+54 9 11 2345-6791,Carla\n",
			err:  ErrQuote, line: 2, msg: "línea 2: comillas sin cerrar",
		},
		{
			name: "quoted field over lines then broken",
			in:   "telefono,nombre\n+54 9 11 2345-6789,\"Ana\nMaría\"x\n",
			err:  ErrQuote, line: 2,
		},
		{
			name: "line too long",
			in:   "telefono,nombre\n+54 9 11 2345-6789,Ana\n+54 9 11 2345-6790," + strings.Repeat("x", 200) + "\n",
			opts: Options{MaxLineBytes: 100}, err: ErrLineTooLong, line: 3, msg: "línea 3: línea demasiado larga: supera 100 bytes",
		},
		{
			name: "header too long",
			in:   "telefono," + strings.Repeat("x", 200) + "\n",
			opts: Options{MaxLineBytes: 100}, err: ErrLineTooLong, line: 1,
		},
		{
			name: "record of short lines too long",
			in:   "telefono,nombre\n+54 9 11 2345-6789,\"" + strings.Repeat("x\n", 200<<10) + "\"\n",
			opts: Options{MaxLineBytes: 1000}, err: ErrLineTooLong, line: 2, msg: "supera 1000 bytes (¿comillas sin cerrar?)",
		},
		{
			name: "too many rows",
			in:   "telefono\n+54 9 11 2345-6789\n+54 9 11 2345-6790\n+54 9 11 2345-6791\n",
			opts: Options{MaxRows: 2}, err: ErrTooManyRows, line: 4,
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
				res := parseCSV(t, r, opts)
				var fe *FileError
				if !errors.As(res.err, &fe) || !errors.Is(res.err, tt.err) {
					t.Fatalf("err = %v (%T), want *FileError wrapping %v", res.err, res.err, tt.err)
				}
				if fe.Line != tt.line {
					t.Errorf("line = %d, want %d (%v)", fe.Line, tt.line, fe)
				}
				if !strings.Contains(fe.Error(), tt.msg) {
					t.Errorf("message %q, want it to contain %q", fe.Error(), tt.msg)
				}
			})
		}
	}
}

func TestParseCSVBadRegion(t *testing.T) {
	_, err := ParseCSV(context.Background(), strings.NewReader("telefono\n"), Options{DefaultRegion: "XX"}, func(Row) error { return nil })
	if !errors.Is(err, phone.ErrRegion) {
		t.Fatalf("err = %v, want phone.ErrRegion", err)
	}
}

// A reader that fails mid-file makes a file-level error that keeps the cause.
func TestParseCSVReadError(t *testing.T) {
	boom := errors.New("disco roto")
	r := io.MultiReader(strings.NewReader("telefono\n+54 9 11 2345-6789\n"), iotest.ErrReader(boom))
	res := parseCSV(t, r, Options{DefaultRegion: "AR"})
	var fe *FileError
	if !errors.As(res.err, &fe) || !errors.Is(res.err, ErrRead) || !errors.Is(res.err, boom) {
		t.Fatalf("err = %v, want *FileError wrapping ErrRead and the cause", res.err)
	}
}

func TestParseCSVCallbackError(t *testing.T) {
	stop := errors.New("sin espacio")
	in := "telefono\n+54 9 11 2345-6789\n+54 9 11 2345-6790\n+54 9 11 2345-6791\n"
	n := 0
	sum, err := ParseCSV(context.Background(), strings.NewReader(in), Options{DefaultRegion: "AR"}, func(Row) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "línea 3") {
		t.Fatalf("err = %v, want the callback's error at line 3", err)
	}
	var fe *FileError
	if errors.As(err, &fe) {
		t.Fatalf("callback error reported as a FileError: %v", err)
	}
	if n != 2 || sum.Accepted != 1 {
		t.Fatalf("calls = %d, accepted = %d; want 2 and 1", n, sum.Accepted)
	}
}

func TestParseCSVCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	// An endless file: only cancellation can end it.
	_, err := ParseCSV(ctx, newGenerator(-1), Options{DefaultRegion: "AR"}, func(Row) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n != 10 {
		t.Fatalf("fn called %d times after cancel, want 10", n)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := ParseCSV(ctx, strings.NewReader("telefono\n"), Options{}, func(Row) error { return nil }); err != context.Canceled {
		t.Fatalf("already cancelled: err = %v", err)
	}
}

func TestParseCSVProgress(t *testing.T) {
	type call struct {
		bytes int64
		rows  int
	}
	var calls []call
	g := newGenerator(2500)
	sum, err := ParseCSV(context.Background(), g, Options{
		DefaultRegion: "AR",
		ProgressEvery: 1000,
		Progress:      func(b int64, rows int) { calls = append(calls, call{b, rows}) },
	}, func(Row) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 || calls[0].rows != 1000 || calls[1].rows != 2000 || calls[2].rows != 2500 {
		t.Fatalf("progress calls = %+v", calls)
	}
	if calls[0].bytes <= 0 || calls[0].bytes >= calls[1].bytes || calls[2].bytes != g.n || sum.Bytes != g.n {
		t.Fatalf("progress bytes = %+v, summary %d, generated %d", calls, sum.Bytes, g.n)
	}
	if sum.Accepted != 2500 {
		t.Fatalf("summary = %+v", sum)
	}
}

// A 50 MB line is refused after reading about MaxLineBytes of it, without
// allocating anything near its size.
func TestParseCSVHugeLineMemory(t *testing.T) {
	const size = 50 << 20
	tests := []struct {
		name string
		row  io.Reader
		line int
	}{
		{"one line", repeat("+54 9 11 2345-6789,", 'x', size, "\n"), 3},
		{"one quoted field of short lines", repeat("+54 9 11 2345-6789,\"", '\n', size, "\"\n"), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := io.MultiReader(strings.NewReader("telefono,nombre\n+54 9 11 2345-6790,Ana\n"), tt.row)
			var before, after runtimeMem
			before.read(true)
			res := parseCSV(t, in, Options{DefaultRegion: "AR"})
			after.read(false)
			if !errors.Is(res.err, ErrLineTooLong) {
				t.Fatalf("err = %v, want ErrLineTooLong", res.err)
			}
			var fe *FileError
			if errors.As(res.err, &fe); fe.Line != tt.line {
				t.Errorf("line = %d, want %d", fe.Line, tt.line)
			}
			if res.sum.Bytes > 1<<20 {
				t.Errorf("consumed %d bytes of a %d-byte line", res.sum.Bytes, size)
			}
			if d := after.totalAlloc - before.totalAlloc; d > 16<<20 {
				t.Errorf("allocated %d MB parsing a 50 MB line, want < 16 MB", d>>20)
			}
			if d := int64(after.heapInuse) - int64(before.heapInuse); d > 16<<20 {
				t.Errorf("heap grew %d MB, want < 16 MB", d>>20)
			}
			t.Logf("allocated %d KB, heap in use %+d KB", (after.totalAlloc-before.totalAlloc)>>10, (int64(after.heapInuse)-int64(before.heapInuse))>>10)
		})
	}
}

// TestFixtures parses the files in testdata/ and the demo file in examples/.
func TestFixtures(t *testing.T) {
	tests := []struct {
		file               string
		region             string
		accepted, rejected int
		sep                rune
		err                error
		firstLine          int
	}{
		{file: "testdata/ok.csv", region: "AR", accepted: 5, rejected: 0, sep: ',', firstLine: 2},
		{file: "testdata/semicolon_bom.csv", region: "ES", accepted: 4, rejected: 1, sep: ';', firstLine: 2},
		{file: "testdata/crlf_multiline.csv", region: "MX", accepted: 3, rejected: 1, sep: ',', firstLine: 2},
		{file: "testdata/latin1.csv", region: "AR", err: ErrEncoding},
		{file: "testdata/utf16.csv", region: "AR", err: ErrEncoding},
		{file: "../../examples/contactos.csv", region: "AR", accepted: 18, rejected: 3, sep: ',', firstLine: 2},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			f, err := os.Open(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res := parseCSV(t, f, Options{DefaultRegion: tt.region})
			if tt.err != nil {
				if !errors.Is(res.err, tt.err) {
					t.Fatalf("err = %v, want %v", res.err, tt.err)
				}
				return
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			for _, rj := range res.rejects {
				t.Logf("rejected: line %d: %s", rj.Line, rj.Reason)
			}
			if res.sum.Accepted != tt.accepted || res.sum.Rejected != tt.rejected || res.sum.Separator != tt.sep {
				t.Fatalf("summary = %+v, want %d accepted, %d rejected, separator %q", res.sum, tt.accepted, tt.rejected, tt.sep)
			}
			if res.rows[0].Line != tt.firstLine {
				t.Errorf("first row on line %d, want %d", res.rows[0].Line, tt.firstLine)
			}
			for _, r := range res.rows {
				if !phone.IsE164(r.Telefono) {
					t.Errorf("line %d: phone %q is not E.164", r.Line, r.Telefono)
				}
			}
		})
	}
}

// repeat is a reader of prefix, n copies of c, then suffix, that never holds
// more than a small buffer.
func repeat(prefix string, c byte, n int, suffix string) io.Reader {
	return io.MultiReader(strings.NewReader(prefix), io.LimitReader(byteReader(c), int64(n)), strings.NewReader(suffix))
}

type byteReader byte

func (b byteReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// generator streams a CSV file of n rows (n < 0: endless) with a mix of the
// phone spellings found in real files, without holding the file in memory.
type generator struct {
	e164    bool // only "+5491123456789" spellings
	rows, i int
	n       int64 // bytes produced
	buf     bytes.Buffer
}

func newGenerator(rows int) *generator {
	g := &generator{rows: rows}
	g.buf.WriteString("telefono;nombre;producto;ciudad\r\n")
	return g
}

var cities = [...]string{"Buenos Aires", "Córdoba", "Rosario", "Mendoza", "La Plata"}

func (g *generator) Read(p []byte) (int, error) {
	for g.buf.Len() < len(p) && (g.rows < 0 || g.i < g.rows) {
		a, b := 2000+g.i/10000%8000, g.i%10000
		spelling := g.i % 4
		if g.e164 {
			spelling = 4
		}
		switch spelling {
		case 0:
			fmt.Fprintf(&g.buf, "+54 9 11 %04d-%04d", a, b)
		case 1:
			fmt.Fprintf(&g.buf, "011 15 %04d-%04d", a, b)
		case 2:
			fmt.Fprintf(&g.buf, "54911%04d%04d", a, b)
		case 3:
			fmt.Fprintf(&g.buf, "(11) %04d.%04d", a, b)
		case 4:
			fmt.Fprintf(&g.buf, "+54911%04d%04d", a, b)
		}
		fmt.Fprintf(&g.buf, ";Cliente %d;plan %d;%s\r\n", g.i, g.i%7, cities[g.i%len(cities)])
		g.i++
	}
	n, err := g.buf.Read(p)
	g.n += int64(n)
	return n, err
}

// The number of workers changes nothing: same rows, same rejections, same
// order, and the same rows delivered before fn fails.
func TestParseCSVWorkersSameResult(t *testing.T) {
	var b strings.Builder
	b.WriteString("telefono,nombre\n")
	for i := range 3000 {
		switch {
		case i%7 == 3:
			fmt.Fprintf(&b, "abc%d,Malo %d\n", i, i)
		case i%11 == 5:
			fmt.Fprintf(&b, "+54 9 11 2345-%04d,\"roto\"x\n", i)
		default:
			fmt.Fprintf(&b, "+54 9 11 2345-%04d,Cliente %d\n", i, i)
		}
	}
	in := b.String()
	var want result
	for _, workers := range []int{1, 2, 5} {
		got := parseCSV(t, strings.NewReader(in), Options{DefaultRegion: "AR", Workers: workers})
		if got.err != nil {
			t.Fatal(got.err)
		}
		if workers == 1 {
			want = got
			if got.sum.Accepted+got.sum.Rejected != 3000 || got.sum.Rejected < 600 {
				t.Fatalf("summary %+v", got.sum)
			}
			continue
		}
		if !reflect.DeepEqual(got.rows, want.rows) || !reflect.DeepEqual(got.rejects, want.rejects) || got.sum != want.sum {
			t.Fatalf("workers=%d: result differs from workers=1", workers)
		}
	}
	stop := errors.New("stop")
	for _, workers := range []int{1, 4} {
		n := 0
		_, err := ParseCSV(context.Background(), strings.NewReader(in), Options{DefaultRegion: "AR", Workers: workers}, func(Row) error {
			if n++; n == 1000 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 1000 {
			t.Fatalf("workers=%d: err %v after %d rows", workers, err, n)
		}
	}
}

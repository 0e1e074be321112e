package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// guard sits between the input and the decoders (bufio + encoding/csv, or
// encoding/json). It counts bytes and lines, and fails fast, before the
// decoder buffers anything more, on a NUL byte, invalid UTF-8, a line longer
// than maxLine, or more than maxSpan bytes read since the last mark (one
// record or element plus the decoder's read-ahead). Its first error is
// sticky: a *FileError, or ctx.Err().
type guard struct {
	ctx     context.Context
	r       io.Reader
	element bool  // FileError lines are JSON element numbers
	maxLine int   // longest line in bytes, '\n' excluded; 0: no limit
	maxSpan int64 // most bytes read since mark; 0: no limit

	markOff  int64 // offset of the record being decoded
	markLine int   // its line (or element number), for errors
	offset   int64 // bytes of the input before the guard (BOM)
	n        int64 // bytes delivered
	lines    int   // '\n' delivered
	lineLen  int   // bytes since the last '\n'
	pend     [utf8.UTFMax]byte
	npend    int // bytes of a UTF-8 sequence cut by the end of the last read

	err error
}

// mark records that a record starting at offset off (bytes delivered
// before it), on line line, is being decoded.
func (g *guard) mark(off int64, line int) {
	g.markOff, g.markLine = off, line
}

func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if err := g.ctx.Err(); err != nil {
		g.err = err
		return 0, err
	}
	n, err := g.r.Read(p)
	if n > 0 {
		if ferr := g.check(p[:n]); ferr != nil {
			g.err = ferr
			return 0, ferr
		}
		g.n += int64(n)
	}
	switch {
	case err == io.EOF && g.npend > 0:
		g.err = g.fail(g.lines+1, fmt.Errorf("%w: el archivo termina a mitad de un carácter", ErrEncoding))
		return 0, g.err
	case err != nil && err != io.EOF:
		if cerr := g.ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			g.err = cerr
		} else {
			g.err = g.fail(g.lines+1, fmt.Errorf("%w: %w", ErrRead, err))
		}
		return n, g.err
	}
	return n, err
}

func (g *guard) fail(line int, err error) *FileError {
	return &FileError{Line: line, Err: err, element: g.element}
}

// failAt is fail on the line of p[i], or on the current record for JSON.
func (g *guard) failAt(p []byte, i int, err error) *FileError {
	if g.element {
		return g.fail(g.markLine, err)
	}
	return g.fail(g.lines+1+bytes.Count(p[:i], []byte{'\n'}), err)
}

// check inspects the next chunk p of input and updates the counters.
func (g *guard) check(p []byte) error {
	// Report whichever comes first: a NUL byte or invalid UTF-8.
	nul, bad := bytes.IndexByte(p, 0), g.invalidUTF8(p)
	if nul >= 0 && (bad < 0 || nul < bad) {
		return g.failAt(p, nul, fmt.Errorf("%w: contiene bytes NUL (¿archivo binario, o UTF-16?)", ErrEncoding))
	}
	if bad >= 0 {
		return g.failAt(p, bad, fmt.Errorf("%w: secuencia UTF-8 inválida (¿guardado como Latin-1/ANSI? guárdelo como «CSV UTF-8»)", ErrEncoding))
	}
	if g.maxSpan > 0 && g.n+int64(len(p))-g.markOff > g.maxSpan {
		what := "el registro supera %d bytes (¿comillas sin cerrar?)"
		if g.element {
			what = "el elemento supera %d bytes"
		}
		return g.fail(g.markLine, fmt.Errorf("%w: "+what, ErrLineTooLong, g.maxLine0()))
	}
	if g.maxLine <= 0 {
		g.lines += bytes.Count(p, []byte{'\n'})
		return nil
	}
	for rest := p; ; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			g.lineLen += len(rest)
			if g.lineLen > g.maxLine {
				return g.fail(g.lines+1, fmt.Errorf("%w: supera %d bytes", ErrLineTooLong, g.maxLine))
			}
			return nil
		}
		if g.lineLen+i > g.maxLine {
			return g.fail(g.lines+1, fmt.Errorf("%w: supera %d bytes", ErrLineTooLong, g.maxLine))
		}
		g.lines++
		g.lineLen = 0
		rest = rest[i+1:]
	}
}

// maxLine0 is the user-facing record limit.
func (g *guard) maxLine0() int {
	if g.maxLine > 0 {
		return g.maxLine
	}
	return int(g.maxSpan)
}

// invalidUTF8 returns the index in p of the first byte of an invalid UTF-8
// sequence, or -1. A sequence cut by the end of p is kept for the next call.
func (g *guard) invalidUTF8(p []byte) int {
	i := 0
	if g.npend > 0 {
		orig := g.npend
		for g.npend < len(g.pend) && i < len(p) && !utf8.FullRune(g.pend[:g.npend]) {
			g.pend[g.npend] = p[i]
			g.npend++
			i++
		}
		if !utf8.FullRune(g.pend[:g.npend]) {
			return -1 // still cut: p was tiny
		}
		r, size := utf8.DecodeRune(g.pend[:g.npend])
		if r == utf8.RuneError && size <= 1 {
			return 0
		}
		i = size - orig
		g.npend = 0
	}
	if utf8.Valid(p[i:]) {
		return -1
	}
	for i < len(p) {
		if p[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			if !utf8.FullRune(p[i:]) {
				g.npend = copy(g.pend[:], p[i:])
				return -1
			}
			return i
		}
		i += size
	}
	return -1
}

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
	bomUTF32BE = []byte{0x00, 0x00, 0xFE, 0xFF}
)

// newGuard reads the first bytes of r to skip a UTF-8 byte order mark and
// refuse UTF-16 and UTF-32 ones, and returns the guard over the rest.
func newGuard(ctx context.Context, r io.Reader, element bool) (*guard, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	head := make([]byte, 4)
	n, err := io.ReadFull(r, head)
	head = head[:n]
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, &FileError{Err: fmt.Errorf("%w: %w", ErrRead, err), element: element}
	}
	g := &guard{ctx: ctx, element: element}
	switch {
	case bytes.HasPrefix(head, bomUTF8):
		head = head[len(bomUTF8):]
		g.offset = int64(len(bomUTF8))
	case bytes.HasPrefix(head, bomUTF16LE), bytes.HasPrefix(head, bomUTF16BE), bytes.HasPrefix(head, bomUTF32BE):
		line := 1
		if element {
			line = 0
		}
		return nil, &FileError{Line: line, Err: fmt.Errorf("%w: el archivo está en UTF-16/UTF-32; guárdelo como UTF-8", ErrEncoding), element: element}
	}
	g.r = io.MultiReader(bytes.NewReader(head), r)
	return g, nil
}

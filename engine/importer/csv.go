package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"leadmaster/engine/phone"
)

// bufSize is the bufio buffer between the guard and encoding/csv (which
// reuses a *bufio.Reader of at least 4096 bytes instead of adding its own).
const bufSize = 64 << 10

// column is one header cell.
type column struct {
	role int
	key  string // variable key
}

// ParseCSV reads a CSV file from r and calls fn for every usable row, in file
// order; rejected rows go to opts.Reject. See the package documentation for
// the format and the failure rules.
//
// It returns a *FileError when the file as a whole is unusable, ctx.Err() when
// ctx is cancelled, and fn's error (wrapped, with the line) when fn fails; in
// every case the Summary counts what was seen until then.
func ParseCSV(ctx context.Context, r io.Reader, opts Options, fn func(Row) error) (Summary, error) {
	var sum Summary
	opts, err := checkOptions(opts)
	if err != nil {
		return sum, err
	}
	g, err := newGuard(ctx, r, false)
	if err != nil {
		return sum, err
	}
	g.maxLine = opts.MaxLineBytes
	g.maxSpan = int64(opts.MaxLineBytes) + bufSize
	g.mark(0, 1)
	br := bufio.NewReaderSize(g, bufSize)
	consumed := func() int64 { return g.offset + g.n - int64(br.Buffered()) }

	sep, err := sniffSeparator(br)
	if g.err != nil {
		return sum, g.err
	}
	if err != nil {
		return sum, err
	}
	sum.Separator = sep
	cr := csv.NewReader(br)
	cr.Comma = sep
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true

	// Header.
	rec, err := cr.Read()
	sum.Bytes = consumed()
	if g.err != nil {
		return sum, g.err
	}
	if err == io.EOF {
		return sum, &FileError{Err: ErrEmpty}
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return sum, &FileError{Line: pe.StartLine, Err: fmt.Errorf("%w: %s", ErrHeader, quoteProblem(pe))}
	} else if err != nil {
		return sum, &FileError{Line: 1, Err: fmt.Errorf("%w: %w", ErrRead, err)}
	}
	headerLine, _ := cr.FieldPos(0)
	cols, telCol, nameCol, nvars, err := header(rec, opts.DefaultRegion)
	if err != nil {
		return sum, &FileError{Line: headerLine, Err: err}
	}
	nextLine := endLine(cr, rec) + 1

	reject := func(line int, reason string) {
		sum.Rejected++
		if opts.Reject != nil {
			opts.Reject(Rejected{Line: line, Reason: reason})
		}
	}
	pl := newPipeline(ctx, opts.Workers, opts.DefaultRegion, &sum, fn, reject)
	defer pl.close()
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(sum.Bytes, sum.Rows)
		}
	}

	for {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		g.mark(g.n-int64(br.Buffered()), nextLine)
		rec, err := cr.Read()
		sum.Bytes = consumed()
		if g.err != nil {
			return sum, g.err
		}
		if err == io.EOF {
			break
		}
		sum.Rows++
		if opts.MaxRows > 0 && sum.Rows > opts.MaxRows {
			return sum, &FileError{Line: nextLine, Err: fmt.Errorf("%w: el máximo es %d", ErrTooManyRows, opts.MaxRows)}
		}
		if sum.Rows%opts.ProgressEvery == 0 {
			progress()
		}
		if err != nil {
			if !errors.As(err, &pe) {
				return sum, &FileError{Line: nextLine, Err: fmt.Errorf("%w: %w", ErrRead, err)}
			}
			if pe.Err == csv.ErrQuote && pe.Line > pe.StartLine {
				// A quoted field ran over line breaks and then broke: the
				// lines it swallowed may be rows; the file is unreliable.
				return sum, &FileError{Line: pe.StartLine, Err: fmt.Errorf("%w: el campo que abre comillas en la línea %d sigue abierto en la línea %d", ErrQuote, pe.StartLine, pe.Line)}
			}
			nextLine = pe.Line + 1
			if err := pl.add(item{reason: quoteProblem(pe), row: Row{Line: pe.StartLine}}); err != nil {
				return sum, err
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		nextLine = endLine(cr, rec) + 1

		blank := true
		for _, f := range rec {
			if strings.TrimSpace(f) != "" {
				blank = false
				break
			}
		}
		it := item{row: Row{Line: line}}
		switch {
		case blank:
			sum.Blank++
			continue
		case len(rec) < len(cols):
			it.reason = fmt.Sprintf("faltan columnas: se esperaban %d y hay %d", len(cols), len(rec))
		case len(rec) > len(cols) && !allEmpty(rec[len(cols):]):
			it.reason = fmt.Sprintf("sobran columnas: se esperaban %d y hay %d", len(cols), len(rec))
		default:
			it.raw = rec[telCol]
			if nameCol >= 0 {
				it.row.Nombre = strings.TrimSpace(rec[nameCol])
			}
			if nvars > 0 {
				it.row.Variables = make(map[string]string, nvars)
				for i, c := range cols {
					if c.role == roleVariable {
						it.row.Variables[c.key] = strings.TrimSpace(rec[i])
					}
				}
			}
		}
		if err := pl.add(it); err != nil {
			return sum, err
		}
	}
	if err := pl.flush(); err != nil {
		return sum, err
	}
	progress()
	return sum, nil
}

// header reads the header record: the role of each column, the indexes of
// the phone and name columns (-1 if none), and the number of variables.
func header(rec []string, region string) (cols []column, telCol, nameCol, nvars int, err error) {
	telCol, nameCol = -1, -1
	seen := make(map[string]int, len(rec))
	cols = make([]column, len(rec))
	for i, h := range rec {
		h = strings.TrimPrefix(h, "\uFEFF") // a BOM inside the first (quoted) cell
		f := fold(h)
		c := column{role: role(h), key: variableKey(h)}
		cols[i] = c
		if c.role == roleIgnored {
			continue
		}
		if j, dup := seen[f]; dup {
			return nil, 0, 0, 0, fmt.Errorf("%w: la columna %q está repetida (columnas %d y %d)", ErrHeader, strings.TrimSpace(h), j+1, i+1)
		}
		seen[f] = i
		switch c.role {
		case rolePhone:
			if telCol >= 0 {
				return nil, 0, 0, 0, fmt.Errorf("%w: dos columnas de teléfono: %q y %q", ErrHeader, strings.TrimSpace(rec[telCol]), strings.TrimSpace(h))
			}
			telCol = i
		case roleName:
			if nameCol >= 0 {
				return nil, 0, 0, 0, fmt.Errorf("%w: dos columnas de nombre: %q y %q", ErrHeader, strings.TrimSpace(rec[nameCol]), strings.TrimSpace(h))
			}
			nameCol = i
		case roleVariable:
			nvars++
		}
	}
	if telCol < 0 {
		for _, h := range rec {
			if _, err := phone.Normalize(h, region); err == nil {
				return nil, 0, 0, 0, fmt.Errorf("%w: falta la fila de encabezado (la primera fila parece de datos: %q)", ErrHeader, strings.TrimSpace(h))
			}
		}
		return nil, 0, 0, 0, fmt.Errorf("%w: falta la columna del teléfono (%s)", ErrHeader, phoneNames)
	}
	return cols, telCol, nameCol, nvars, nil
}

// endLine returns the line on which the record just read ends: the line of
// its last field plus the line breaks inside that field (encoding/csv turns
// every line break inside quotes into one '\n').
func endLine(cr *csv.Reader, rec []string) int {
	last := len(rec) - 1
	line, _ := cr.FieldPos(last)
	return line + strings.Count(rec[last], "\n")
}

func allEmpty(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// quoteProblem describes a csv.ParseError for an operator.
func quoteProblem(pe *csv.ParseError) string {
	switch pe.Err {
	case csv.ErrBareQuote:
		return fmt.Sprintf("comilla \" dentro de un campo sin comillas (línea %d, columna %d): encierre el campo entre comillas y duplique la comilla (\"\")", pe.Line, pe.Column)
	case csv.ErrQuote:
		return fmt.Sprintf("comillas mal cerradas (línea %d, columna %d)", pe.Line, pe.Column)
	}
	return fmt.Sprintf("CSV inválido (línea %d, columna %d): %v", pe.Line, pe.Column, pe.Err)
}

// sniffSeparator looks at the first line of the input, without consuming
// it, and returns ';' if it holds more semicolons than commas outside
// quotes, ',' otherwise. It fails on a file whose lines end with a bare CR
// (classic Mac), which encoding/csv would read as one line.
func sniffSeparator(br *bufio.Reader) (rune, error) {
	head, _ := br.Peek(bufSize)
	head = bytes.TrimLeft(head, "\r\n") // encoding/csv skips empty lines
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	head = bytes.TrimSuffix(head, []byte{'\r'})
	if i := bytes.IndexByte(head, '\r'); i >= 0 && i < len(head)-1 {
		return 0, &FileError{Line: 1, Err: fmt.Errorf("%w: los saltos de línea son CR solo (Mac clásico); guárdelo como «CSV UTF-8»", ErrEncoding)}
	}
	commas, semis, quoted := 0, 0, false
	for _, c := range head {
		switch c {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				commas++
			}
		case ';':
			if !quoted {
				semis++
			}
		}
	}
	if semis > commas {
		return ';', nil
	}
	return ',', nil
}

package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ParseJSON reads a JSON array of objects from r and calls fn for every
// usable element, in order; rejected elements go to opts.Reject. Row.Line and
// Rejected.Line are element numbers, from 1. See the package documentation.
//
// It returns a *FileError when the input is not one well-formed JSON array
// (or breaks a limit), ctx.Err() when ctx is cancelled, and fn's error
// (wrapped) when fn fails.
func ParseJSON(ctx context.Context, r io.Reader, opts Options, fn func(Row) error) (Summary, error) {
	var sum Summary
	opts, err := checkOptions(opts)
	if err != nil {
		return sum, err
	}
	g, err := newGuard(ctx, r, true)
	if err != nil {
		return sum, err
	}
	// encoding/json reads ahead up to the capacity of its buffer, which grows
	// to about twice the largest token it held (at most one element): allow
	// for it.
	g.maxSpan = 4*int64(opts.MaxLineBytes) + 4096
	dec := json.NewDecoder(g)
	dec.UseNumber()
	p := &jsonParser{g: g, dec: dec}
	consumed := func() int64 { return g.offset + dec.InputOffset() }

	tok, err := p.token(0)
	if err != nil {
		if errors.Is(err, io.EOF) && g.err == nil {
			return sum, &FileError{Err: ErrEmpty, element: true}
		}
		return sum, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return sum, &FileError{Err: fmt.Errorf("%w: se esperaba una lista [ … ] de objetos", ErrSyntax), element: true}
	}

	reject := func(line int, reason string) {
		sum.Rejected++
		if opts.Reject != nil {
			opts.Reject(Rejected{Line: line, Reason: reason})
		}
	}
	pl := newPipeline(ctx, opts.Workers, opts.DefaultRegion, &sum, fn, reject)
	pl.element = true
	defer pl.close()
	for index := 1; ; index++ {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		g.mark(dec.InputOffset(), index)
		more := dec.More()
		if g.err != nil {
			return sum, g.err
		}
		if !more {
			break
		}
		sum.Rows++
		if opts.MaxRows > 0 && sum.Rows > opts.MaxRows {
			return sum, &FileError{Line: index, Err: fmt.Errorf("%w: el máximo es %d", ErrTooManyRows, opts.MaxRows), element: true}
		}
		el, reason, err := p.element(index)
		sum.Bytes = consumed()
		if err != nil {
			return sum, err
		}
		if sum.Rows%opts.ProgressEvery == 0 && opts.Progress != nil {
			opts.Progress(sum.Bytes, sum.Rows)
		}
		it := item{reason: reason, raw: el.tel, row: Row{Line: index, Nombre: strings.TrimSpace(el.name), Variables: el.vars}}
		if err := pl.add(it); err != nil {
			return sum, err
		}
	}
	if _, err := p.token(sum.Rows + 1); err != nil { // the closing ']'
		return sum, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if g.err != nil {
			return sum, g.err
		}
		return sum, &FileError{Err: fmt.Errorf("%w: hay datos después del cierre de la lista", ErrSyntax), element: true}
	}
	if err := pl.flush(); err != nil {
		return sum, err
	}
	sum.Bytes = g.offset + g.n // all of it, up to EOF
	if opts.Progress != nil {
		opts.Progress(sum.Bytes, sum.Rows)
	}
	return sum, nil
}

type jsonParser struct {
	g   *guard
	dec *json.Decoder
}

// jsonElement is one decoded array element.
type jsonElement struct {
	tel, name string
	vars      map[string]string
}

// token returns the next token, turning failures into file errors for
// element index (0: before the array).
func (p *jsonParser) token(index int) (json.Token, error) {
	tok, err := p.dec.Token()
	if err == nil {
		return tok, nil
	}
	if p.g.err != nil {
		return nil, p.g.err
	}
	if err == io.EOF && index == 0 {
		return nil, err
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		err = fmt.Errorf("%w: %v (byte %d)", ErrSyntax, se, p.g.offset+se.Offset)
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("%w: el archivo termina antes de cerrar la lista", ErrSyntax)
	default:
		err = fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return nil, &FileError{Line: index, Err: err, element: true}
}

// element reads one array element. A usable element gives reason == "";
// an unusable but well-formed one gives the reason; malformed JSON gives err.
func (p *jsonParser) element(index int) (el jsonElement, reason string, err error) {
	tok, err := p.token(index)
	if err != nil {
		return el, "", err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if ok {
			if err := p.skip(index, 1); err != nil {
				return el, "", err
			}
		}
		return el, "el elemento no es un objeto {…}", nil
	}
	seen := make(map[string]bool)
	hasTel := false
	note := func(r string) {
		if reason == "" {
			reason = r
		}
	}
	for p.dec.More() {
		tok, err := p.token(index)
		if err != nil {
			return el, "", err
		}
		key, _ := tok.(string)
		tok, err = p.token(index)
		if err != nil {
			return el, "", err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' && fold(key) == "variables" {
				if err := p.variables(index, &el, seen, note); err != nil {
					return el, "", err
				}
				continue
			}
			if err := p.skip(index, 1); err != nil {
				return el, "", err
			}
			note(fmt.Sprintf("el valor de %q no es texto", key))
			continue
		}
		val, isNull := scalar(tok)
		switch role(key) {
		case rolePhone:
			if hasTel {
				note("dos campos de teléfono")
			}
			hasTel = true
			el.tel = val
		case roleName:
			if seen["\x00name"] {
				note("dos campos de nombre")
			}
			seen["\x00name"] = true
			el.name = val
		default:
			if isNull {
				continue
			}
			setVar(&el, seen, variableKey(key), val, note)
		}
	}
	if _, err := p.token(index); err != nil { // '}'
		return el, "", err
	}
	if reason == "" && !hasTel {
		reason = "falta el teléfono (campo telefono)"
	}
	return el, reason, nil
}

// variables reads the object of the "variables" key (its '{' consumed).
func (p *jsonParser) variables(index int, el *jsonElement, seen map[string]bool, note func(string)) error {
	for p.dec.More() {
		tok, err := p.token(index)
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		tok, err = p.token(index)
		if err != nil {
			return err
		}
		if _, ok := tok.(json.Delim); ok {
			if err := p.skip(index, 1); err != nil {
				return err
			}
			note(fmt.Sprintf("la variable %q no es texto", key))
			continue
		}
		val, isNull := scalar(tok)
		if isNull {
			continue
		}
		setVar(el, seen, variableKey(key), val, note)
	}
	_, err := p.token(index) // '}'
	return err
}

func setVar(el *jsonElement, seen map[string]bool, key, val string, note func(string)) {
	if key == "" {
		note("variable sin nombre")
		return
	}
	if seen[key] {
		note(fmt.Sprintf("la variable %q está repetida", key))
		return
	}
	seen[key] = true
	if el.vars == nil {
		el.vars = make(map[string]string)
	}
	el.vars[key] = strings.TrimSpace(val)
}

// skip consumes tokens until depth open arrays/objects are closed.
func (p *jsonParser) skip(index, depth int) error {
	for depth > 0 {
		tok, err := p.token(index)
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// scalar returns the text of a scalar token.
func scalar(tok json.Token) (s string, isNull bool) {
	switch v := tok.(type) {
	case string:
		return v, false
	case json.Number:
		return v.String(), false
	case bool:
		if v {
			return "true", false
		}
		return "false", false
	}
	return "", true
}

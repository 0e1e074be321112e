package importer

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode"

	"leadmaster/engine/phone"
)

// Row is one usable recipient.
type Row struct {
	Line      int               // CSV: line where the record starts (from 1); JSON: element number (from 1)
	Telefono  string            // E.164, e.g. "+5491123456789"; the de-duplication key
	Nombre    string            // trimmed; may be empty
	Variables map[string]string // free columns by key; nil when the file has none
}

// Rejected is a row that was skipped, with the reason for the operator.
type Rejected struct {
	Line   int // as Row.Line
	Reason string
}

// Options tune a parse. The zero value is usable only with international
// phone numbers (no DefaultRegion).
type Options struct {
	// DefaultRegion is the country of numbers written without a country
	// code, e.g. "AR" (see phone.ValidRegion). An invalid region fails the
	// parse before anything is read.
	DefaultRegion string

	// MaxLineBytes bounds one CSV line, one CSV record, and one JSON element,
	// in bytes. 0 means DefaultMaxLineBytes.
	MaxLineBytes int

	// MaxRows, if positive, fails the file with ErrTooManyRows when it has
	// more data rows (or JSON elements).
	MaxRows int

	// Reject, if set, is called for every rejected row, in file order.
	Reject func(Rejected)

	// Progress, if set, is called every ProgressEvery rows and once at the
	// end, with the bytes read from the input so far and the rows seen
	// (Summary.Rows).
	Progress func(bytesRead int64, rowsSeen int)

	// ProgressEvery is the number of rows between Progress calls; 0 means
	// 1000.
	ProgressEvery int

	// Workers is the number of goroutines normalizing phone numbers, the
	// costly part of a parse; 0 means runtime.GOMAXPROCS(0), 1 means none
	// (everything on the caller's goroutine). fn and Reject are always
	// called on the caller's goroutine, in file order, and the result does
	// not depend on Workers.
	Workers int
}

// DefaultMaxLineBytes is the line (and record) limit when
// Options.MaxLineBytes is 0.
const DefaultMaxLineBytes = 64 << 10

// Summary counts what a parse saw. Rows = Accepted + Rejected + Blank when
// the parse completes.
type Summary struct {
	Rows      int   // data rows read (CSV records after the header, JSON elements)
	Accepted  int   // rows passed to fn without error
	Rejected  int   // rows reported to Options.Reject
	Blank     int   // CSV rows whose cells are all empty, skipped silently
	Bytes     int64 // bytes read from the input (consumed by the parser)
	Separator rune  // CSV separator found, ',' or ';'; 0 for JSON
}

// File-level failures, wrapped by *FileError. Whatever the parser handed to
// fn before one of these must be discarded.
var (
	ErrEmpty       = errors.New("archivo vacío")
	ErrEncoding    = errors.New("codificación no válida (el archivo debe ser texto UTF-8)")
	ErrLineTooLong = errors.New("línea demasiado larga")
	ErrHeader      = errors.New("encabezado inválido")
	ErrQuote       = errors.New("comillas sin cerrar")
	ErrTooManyRows = errors.New("demasiadas filas")
	ErrSyntax      = errors.New("JSON mal formado")
	ErrRead        = errors.New("error de lectura")
)

// FileError is a failure of the whole file: the import must be discarded.
type FileError struct {
	Line int   // CSV: line of the file (from 1); JSON: element number (from 1); 0 if unknown
	Err  error // wraps one of the Err* variables of this package

	element bool // Line counts JSON elements
}

func (e *FileError) Error() string {
	switch {
	case e.Line <= 0:
		return e.Err.Error()
	case e.element:
		return fmt.Sprintf("elemento %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("línea %d: %v", e.Line, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// checkOptions validates o and fills its defaults.
func checkOptions(o Options) (Options, error) {
	if o.DefaultRegion != "" && !phone.ValidRegion(o.DefaultRegion) {
		return o, fmt.Errorf("importer: %w: %q", phone.ErrRegion, o.DefaultRegion)
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 1000
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o, nil
}

// Column roles.
const (
	roleVariable = iota
	rolePhone
	roleName
	roleIgnored
)

// Names of the phone and name columns (and JSON keys), folded.
var roles = map[string]int{
	"telefono": rolePhone, "phone": rolePhone, "telephone": rolePhone, "celular": rolePhone,
	"movil": rolePhone, "whatsapp": rolePhone, "numero": rolePhone, "tel": rolePhone,
	"mobile": rolePhone, "cel": rolePhone, "cell": rolePhone, "phone_number": rolePhone,
	"telefono_movil": rolePhone, "numero_de_telefono": rolePhone, "numero_telefono": rolePhone,
	"nombre": roleName, "name": roleName, "nombre_completo": roleName, "full_name": roleName,
	"nombre_y_apellido": roleName, "apellido_y_nombre": roleName,
}

// role returns the role of a header name or JSON key.
func role(name string) int {
	f := fold(name)
	if f == "" {
		return roleIgnored
	}
	return roles[f] // roleVariable when absent
}

// fold reduces a header name for comparison: trimmed, lower case, without
// accents, with runs of spaces, '-', '_' and '.' as one '_'.
func fold(s string) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	b.Grow(len(s))
	sep := false
	for _, r := range s {
		switch {
		case r == ' ' || r == '-' || r == '_' || r == '.' || unicode.IsSpace(r):
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('_')
		}
		sep = false
		b.WriteRune(unaccent(unicode.ToLower(r)))
	}
	return b.String()
}

// unaccent maps the accented letters of Spanish, Portuguese, French and
// Catalan headers to their base letter.
func unaccent(r rune) rune {
	switch r {
	case 'á', 'à', 'ä', 'â', 'ã', 'å':
		return 'a'
	case 'é', 'è', 'ë', 'ê':
		return 'e'
	case 'í', 'ì', 'ï', 'î':
		return 'i'
	case 'ó', 'ò', 'ö', 'ô', 'õ':
		return 'o'
	case 'ú', 'ù', 'ü', 'û':
		return 'u'
	case 'ñ':
		return 'n'
	case 'ç':
		return 'c'
	}
	return r
}

// variableKey is the key of a variable column or JSON field: the name as the
// operator wrote it, trimmed and lower-cased.
func variableKey(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// phoneNames lists the accepted phone column names, for error messages.
const phoneNames = "telefono, phone, celular, movil, whatsapp o numero"

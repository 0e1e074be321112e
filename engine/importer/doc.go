// Package importer reads the recipient lists operators upload (CSV or JSON)
// and streams them, one Row at a time, to a callback: the caller (kv) stages
// the rows, de-duplicates them, checks the suppression list and commits the
// import. The parsers never hold the whole file in memory and never
// de-duplicate: the E.164 phone of a Row is the key for that.
//
// # Two kinds of failure
//
// A row that cannot be used (invalid phone, wrong number of columns, a quote
// in the wrong place on one line, a JSON element that is not an object…) is
// rejected: it is reported to Options.Reject with its line (the element
// number, from 1, for JSON) and a reason an operator can read, and parsing
// goes on.
//
// A file that cannot be trusted as a whole fails: ParseCSV and ParseJSON
// return a *FileError wrapping one of ErrEmpty, ErrEncoding, ErrLineTooLong,
// ErrHeader, ErrQuote, ErrTooManyRows, ErrSyntax or ErrRead, and the caller
// must discard everything it staged for that import. Rows handed to fn before
// such an error was found are not taken back; that is the caller's job.
// Cancelling ctx returns ctx.Err() (unwrapped) at the next row or read; an
// error returned by fn stops the parse and is returned wrapped with %w.
//
// # CSV
//
// The first non-empty line is the header. It names the columns, in any order:
// the phone (telefono, teléfono, phone, telephone, celular, movil, móvil,
// whatsapp, numero, número, tel, mobile…), the name (nombre, name…), and any
// number of variables, whose keys are the header cells trimmed and
// lower-cased ("Producto" -> "producto"). Header names are compared
// case-, accent- and space-insensitively; two columns with the same name, or
// no phone column, fail the file (ErrHeader). Header cells left empty (the
// trailing ";;" of some spreadsheets) name no column and their cells are
// ignored.
//
// The separator is ',' or ';', whichever appears more often (outside quotes)
// in the header line. A UTF-8 byte order mark is skipped; a UTF-16 or UTF-32
// one, a NUL byte or any invalid UTF-8 fails the file (ErrEncoding) naming the
// line. CRLF and LF line endings are both fine; quoted fields may contain
// separators, doubled quotes and line breaks, and every line number reported
// is the line of the file on which the record starts.
//
// Quoting errors: a stray quote whose damage ends on its own line
// (`ab"c`, `"ab"c`) rejects that row only, because encoding/csv resumes on
// the next line and no other row is lost. A quoted field that is still open
// at a line break and then fails (typically an opening quote never closed)
// fails the file with ErrQuote and the line where the field opened, since the
// following lines were swallowed into it and rows can no longer be told
// apart.
//
// A row with fewer cells than the header is rejected; extra cells are
// tolerated only if they are empty. A row whose cells are all empty is
// skipped silently and counted in Summary.Blank.
//
// # Memory
//
// No line may exceed Options.MaxLineBytes (64 KiB by default), and neither
// may one record spanning several lines: the input is read through a guard
// that fails with ErrLineTooLong as soon as the limit is passed, before
// encoding/csv buffers more, so a 50 MB line costs about MaxLineBytes of heap,
// not 50 MB. For JSON the same limit bounds one array element (the guard
// allows a few times the limit of read-ahead before failing).
//
// # Speed
//
// Normalizing a phone with libphonenumber costs tens of microseconds, far
// more than reading its record, so it runs on Options.Workers goroutines
// (GOMAXPROCS by default) while records are read and rows delivered on the
// caller's goroutine, in order. The result does not depend on the number of
// workers.
//
// # JSON
//
// ParseJSON reads one array of objects:
//
//	[{"telefono": "+54 9 11 2345-6789", "nombre": "Ana", "variables": {"producto": "plan"}}]
//
// The phone and name keys accept the same aliases as the CSV header; other
// top-level keys with a scalar value are variables too. Numbers and booleans
// are taken as their JSON text, null as absent. The array is decoded token by
// token, so its elements are never all in memory. Anything that is not valid
// JSON, or not one array, fails the file with ErrSyntax.
package importer

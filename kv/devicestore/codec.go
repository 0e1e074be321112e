package devicestore

import (
	"encoding/binary"
	"fmt"
)

// formatV1 starts every stored value. It tells "present but empty" from
// missing and leaves room for a later per-record migration.
const formatV1 = 0x01

// enc builds a record: fixed-width integers big-endian, variable fields
// uvarint-length-prefixed.
type enc struct{ b []byte }

func newEnc(size int) *enc { e := &enc{b: make([]byte, 1, size+1)}; e.b[0] = formatV1; return e }

func (e *enc) u8(v uint8) { e.b = append(e.b, v) }
func (e *enc) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}
func (e *enc) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *enc) i64(v int64)  { e.u64(uint64(v)) }
func (e *enc) raw(v []byte) { e.b = append(e.b, v...) }
func (e *enc) str(v string) { e.b = binary.AppendUvarint(e.b, uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) bytes(v []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(v)))
	e.b = append(e.b, v...)
}
func (e *enc) done() []byte { return e.b }
func (e *enc) optBytes(v []byte) { // nil (SQL NULL) and empty are kept apart
	e.bool(v != nil)
	if v != nil {
		e.bytes(v)
	}
}

// dec reads a record made by enc. It never panics: the first short or
// malformed read sets err and every later read returns zero values. Every
// slice it returns is a copy, so records may be decoded from bbolt memory.
type dec struct {
	b   []byte
	err error
}

func newDec(b []byte) *dec {
	d := &dec{b: b}
	if len(b) == 0 || b[0] != formatV1 {
		d.err = fmt.Errorf("unknown record format: %w", ErrCorrupt)
		return d
	}
	d.b = b[1:]
	return d
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = fmt.Errorf("short record: %w", ErrCorrupt)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}
func (d *dec) bool() bool {
	switch v := d.u8(); v {
	case 0, 1:
		return v == 1
	default:
		if d.err == nil {
			d.err = fmt.Errorf("bad bool %d: %w", v, ErrCorrupt)
		}
		return false
	}
}
func (d *dec) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}
func (d *dec) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}
func (d *dec) i64() int64 { return int64(d.u64()) }

func (d *dec) length() int {
	if d.err != nil {
		return 0
	}
	n, w := binary.Uvarint(d.b)
	if w <= 0 || (w > 1 && d.b[w-1] == 0) || n > uint64(len(d.b)-w) { // malformed, non-minimal or too long
		d.err = fmt.Errorf("bad length: %w", ErrCorrupt)
		return 0
	}
	d.b = d.b[w:]
	return int(n)
}

// fixed copies exactly n bytes.
func (d *dec) fixed(n int) []byte {
	v := d.take(n)
	if v == nil {
		return nil
	}
	return append(make([]byte, 0, n), v...)
}

func (d *dec) bytes() []byte {
	n := d.length()
	v := d.take(n)
	if v == nil {
		return nil
	}
	return append(make([]byte, 0, n), v...)
}

func (d *dec) str() string { n := d.length(); return string(d.take(n)) }

func (d *dec) optBytes() []byte {
	if !d.bool() {
		return nil
	}
	return d.bytes()
}

// more says whether fields follow: a record written before a field was
// appended to its format ends early, and its new fields read as zero.
func (d *dec) more() bool { return d.err == nil && len(d.b) > 0 }

// finish reports the first error, or trailing garbage.
func (d *dec) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes: %w", len(d.b), ErrCorrupt)
	}
	return d.err
}

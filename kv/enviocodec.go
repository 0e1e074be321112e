package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"leadmaster/engine"
)

// Envíos are stored in a compact binary form (schema 3): JSON took about a
// quarter of a million-row import's CPU and two thirds of the file. Layout:
//
//	byte     format (envioFormat)
//	byte     state code (stateCodes)
//	byte     which times follow (timeCreated|timeUpdated|timeNext|timeSent)
//	uvarint  attempts
//	times    each present one as varint unix seconds + uvarint nanoseconds, UTC
//	strings  telefono, cliente, nombre, mensaje, msg id, reason: uvarint length + bytes
//	uvarint  number of variables, then key and value strings, keys sorted
//
// The state and the times come first so that scans which need only them
// (the due cursor) stop early; the phone is the first string for the same
// reason (dedup of an import into a campaign that has envíos).
const envioFormat = 1

// Time presence bits.
const (
	timeCreated = 1 << iota
	timeUpdated
	timeNext
	timeSent
)

// stateCodes are stored on disk: never renumber, only append.
var stateCodes = map[engine.State]byte{
	engine.Pendiente: 1, engine.Enviando: 2, engine.Enviado: 3, engine.Entregado: 4,
	engine.Leido: 5, engine.Fallido: 6, engine.Omitido: 7, engine.Cancelado: 8,
}

var codeStates = func() [256]engine.State {
	var s [256]engine.State
	for st, c := range stateCodes {
		s[c] = st
	}
	return s
}()

// errCorruptEnvio is returned for a stored envío that does not decode.
var errCorruptEnvio = errors.New("corrupt envío record")

// appendEnvio appends the binary form of e to dst.
func appendEnvio(dst []byte, e *engine.Envio) ([]byte, error) {
	code, ok := stateCodes[e.State]
	if !ok {
		return dst, fmt.Errorf("encode envío: unknown state %q", e.State)
	}
	if e.Attempts < 0 {
		return dst, fmt.Errorf("encode envío: negative attempts %d", e.Attempts)
	}
	times := [4]time.Time{e.CreatedAt, e.UpdatedAt, e.NextAttempt, e.SentAt}
	var present byte
	for i, t := range times {
		if !t.IsZero() {
			present |= 1 << i
		}
	}
	dst = append(dst, envioFormat, code, present)
	dst = binary.AppendUvarint(dst, uint64(e.Attempts))
	for _, t := range times {
		if !t.IsZero() {
			dst = binary.AppendVarint(dst, t.Unix())
			dst = binary.AppendUvarint(dst, uint64(t.Nanosecond()))
		}
	}
	for _, s := range [...]string{e.Telefono, e.Cliente, e.Nombre, e.Mensaje, e.MsgID, e.Reason} {
		dst = appendString(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Variables)))
	if len(e.Variables) > 0 {
		keys := make([]string, 0, len(e.Variables))
		for k := range e.Variables {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			dst = appendString(appendString(dst, k), e.Variables[k])
		}
	}
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// envioReader decodes one record; the first error sticks.
type envioReader struct {
	b   []byte
	err error
}

func (r *envioReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", errCorruptEnvio, what)
	}
	r.b = nil
}

func (r *envioReader) byte(what string) byte {
	if len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *envioReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *envioReader) time(what string) time.Time {
	sec, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return time.Time{}
	}
	r.b = r.b[n:]
	nsec := r.uvarint(what)
	if nsec >= 1e9 {
		r.fail(what)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (r *envioReader) string(what string) string {
	n := r.uvarint(what)
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// header reads what precedes the strings.
func (r *envioReader) header(e *engine.Envio) {
	if f := r.byte("format"); r.err == nil && f != envioFormat {
		r.fail(fmt.Sprintf("format %d", f))
	}
	code := r.byte("state")
	if e.State = codeStates[code]; e.State == "" {
		r.fail("state")
	}
	present := r.byte("time flags")
	if present&^(timeCreated|timeUpdated|timeNext|timeSent) != 0 {
		r.fail("time flags")
	}
	attempts := r.uvarint("attempts")
	if attempts > math.MaxInt32 {
		r.fail("attempts")
	}
	e.Attempts = int(attempts)
	for i, t := range [...]*time.Time{&e.CreatedAt, &e.UpdatedAt, &e.NextAttempt, &e.SentAt} {
		if present&(1<<i) != 0 {
			*t = r.time("time")
		}
	}
}

// decodeEnvio decodes a stored envío (its Ref is not stored).
func decodeEnvio(v []byte, e *engine.Envio) error {
	*e = engine.Envio{}
	r := envioReader{b: v}
	r.header(e)
	for _, s := range [...]*string{&e.Telefono, &e.Cliente, &e.Nombre, &e.Mensaje, &e.MsgID, &e.Reason} {
		*s = r.string("text")
	}
	n := r.uvarint("variables")
	if n > uint64(len(r.b))/2 { // each variable takes at least two bytes
		r.fail("variables")
	}
	if n > 0 && r.err == nil {
		e.Variables = make(map[string]string, n)
		for range n {
			k := r.string("variable")
			e.Variables[k] = r.string("variable")
		}
		if len(e.Variables) != int(n) {
			r.fail("variables (a key twice)")
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	return r.err
}

// decodeEnvioHeader decodes only the state, attempts and times.
func decodeEnvioHeader(v []byte, e *engine.Envio) error {
	*e = engine.Envio{}
	r := envioReader{b: v}
	r.header(e)
	return r.err
}

// decodeEnvioPhone decodes only the phone.
func decodeEnvioPhone(v []byte) (string, error) {
	var e engine.Envio
	r := envioReader{b: v}
	r.header(&e)
	phone := r.string("telefono")
	return phone, r.err
}

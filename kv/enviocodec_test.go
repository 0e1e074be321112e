package kv

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"leadmaster/engine"
)

func sampleEnvios() []engine.Envio {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	return []engine.Envio{
		{Cliente: "c1", Telefono: "+5491155550001", State: engine.Pendiente, CreatedAt: t0, UpdatedAt: t0},
		{
			Cliente: "c1", Telefono: "+5491155550002", Nombre: "Ana ñandú", Variables: map[string]string{"producto": "zapatos", "": "vacío", "z": ""},
			Mensaje: "Hola Ana\n🎉", State: engine.Enviado, MsgID: "3EB0ABCDEF", Attempts: 3, Reason: "ack",
			CreatedAt: t0, UpdatedAt: t0.Add(time.Hour), SentAt: t0.Add(time.Minute),
		},
		{Telefono: "+1", State: engine.Pendiente, Attempts: 1, NextAttempt: t0.Add(-time.Hour * 24 * 365 * 100)},
		{Telefono: "+5491155550003", State: engine.Cancelado, UpdatedAt: time.Date(9999, 1, 1, 0, 0, 0, 1, time.UTC)},
	}
}

func TestEnvioCodec_RoundTrip(t *testing.T) {
	for _, s := range engine.States {
		if stateCodes[s] == 0 {
			t.Fatalf("state %s has no code", s)
		}
	}
	for _, e := range sampleEnvios() {
		v, err := appendEnvio(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		var got engine.Envio
		if err := decodeEnvio(v, &got); err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, e)
		}
		var h engine.Envio
		if err := decodeEnvioHeader(v, &h); err != nil || h.State != e.State || !h.NextAttempt.Equal(e.NextAttempt) || h.Attempts != e.Attempts {
			t.Fatalf("header %+v %v", h, err)
		}
		if p, err := decodeEnvioPhone(v); err != nil || p != e.Telefono {
			t.Fatalf("phone %q %v", p, err)
		}
		// Every strict prefix is refused, never half-decoded.
		for i := range len(v) {
			if err := decodeEnvio(v[:i], &got); err == nil {
				t.Fatalf("prefix of %d bytes of %d decoded", i, len(v))
			}
		}
		if err := decodeEnvio(append(v, 0), &got); err == nil {
			t.Fatal("trailing byte accepted")
		}
	}
	if _, err := appendEnvio(nil, &engine.Envio{State: "raro"}); err == nil {
		t.Fatal("unknown state encoded")
	}
}

// The binary form is much smaller than the JSON it replaces.
func TestEnvioCodec_SmallerThanJSON(t *testing.T) {
	e := sampleEnvios()[0]
	e.Nombre, e.Variables = "Nombre 123456", map[string]string{"producto": "producto 3"}
	v, _ := appendEnvio(nil, &e)
	j, _ := json.Marshal(e)
	if 2*len(v) > len(j) {
		t.Fatalf("binary %d bytes, JSON %d", len(v), len(j))
	}
}

// FuzzDecodeEnvio: arbitrary stored bytes decode or are refused, never
// panic; what decodes encodes back to a value that decodes the same.
func FuzzDecodeEnvio(f *testing.F) {
	for _, e := range sampleEnvios() {
		v, _ := appendEnvio(nil, &e)
		f.Add(v)
	}
	f.Add([]byte{})
	f.Add([]byte(`{"estado":"pendiente"}`))
	f.Add([]byte{envioFormat, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, v []byte) {
		var e engine.Envio
		if err := decodeEnvio(v, &e); err != nil {
			return
		}
		again, err := appendEnvio(nil, &e)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", e, err)
		}
		var e2 engine.Envio
		if err := decodeEnvio(again, &e2); err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("re-encoded envío differs: %+v vs %+v (%v)", e, e2, err)
		}
	})
}

// State codes are stored: one each, never shared.
func TestEnvioCodec_StateCodesAreDistinct(t *testing.T) {
	seen := map[byte]engine.State{}
	for s, c := range stateCodes {
		if other, dup := seen[c]; dup || c == 0 {
			t.Fatalf("code %d of %s is 0 or also %s's", c, s, other)
		}
		seen[c] = s
	}
	if len(stateCodes) != len(engine.States) {
		t.Fatalf("%d codes for %d states", len(stateCodes), len(engine.States))
	}
}

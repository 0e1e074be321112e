package scripting_test

import (
	"context"
	"testing"
	"time"

	"leadmaster/scripting"
)

// Tests that expect a call to succeed use a long time limit: this machine is
// shared and a process can be descheduled for a second (measured), which a
// 100ms wall-clock limit would report as a timeout. Tests that expect a
// limit to fire set a short one.
var relaxed = scripting.Limits{Timeout: 30 * time.Second}

// mustCompile compiles src with lim or fails the test.
func mustCompile(tb testing.TB, src string, lim scripting.Limits) *scripting.Script {
	tb.Helper()
	s, err := scripting.CompileWith("test.lua", src, lim)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

var testNow = time.Date(2026, 11, 23, 16, 30, 0, 0, time.UTC) // a Monday; 10:30 in Mexico City

func envio(id string) scripting.Envio {
	return scripting.Envio{
		ID:        id,
		Telefono:  "+525512345678",
		Nombre:    "maría josé pérez",
		Campana:   "campana-1",
		Variables: map[string]string{"ciudad": "Puebla"},
		Attempt:   1,
		Now:       testNow,
		TimeZone:  "America/Mexico_City",
	}
}

func personalize(tb testing.TB, s *scripting.Script, e scripting.Envio) (scripting.Result, error) {
	tb.Helper()
	return s.Personalize(context.Background(), e)
}

func mustText(tb testing.TB, s *scripting.Script, e scripting.Envio) string {
	tb.Helper()
	r, err := s.Personalize(context.Background(), e)
	if err != nil {
		tb.Fatalf("personalize: %v", err)
	}
	return r.Text
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCLI_Forecast(t *testing.T) {
	// An import file: the window closes at 18:00, 40 an hour at 30-90 s.
	code, out, errOut := run(t, "forecast", "--ritmo", `{"min_delay":"30s","max_delay":90,"por_hora":40}`,
		"--programacion", `{"desde":9,"hasta":18,"zona":"America/Argentina/Buenos_Aires"}`,
		"--desde", "2026-11-23T17:50:00-03:00", "--json", "examples/contactos.csv")
	if code != 0 || !strings.Contains(errOut, "18 aceptadas") {
		t.Fatalf("forecast FILE: %d %s %s", code, out, errOut)
	}
	var f struct {
		Pendientes int       `json:"pendientes"`
		FinP10     time.Time `json:"fin_p10"`
		FinP90     time.Time `json:"fin_p90"`
		PorDia     []struct {
			Dia    string `json:"dia"`
			Envios int    `json:"envios"`
		} `json:"por_dia"`
		Espera struct{ Motivo string } `json:"espera"`
	}
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	ba, _ := time.LoadLocation("America/Argentina/Buenos_Aires")
	if next9 := time.Date(2026, 11, 24, 9, 0, 0, 0, ba); f.Pendientes != 18 || f.FinP10.Before(next9) || f.FinP90.After(next9.Add(time.Hour)) {
		t.Fatalf("forecast %+v, want 18 ending on the 24th after 9:00", f)
	}
	if len(f.PorDia) != 2 || f.PorDia[0].Dia != "2026-11-23" || f.PorDia[0].Envios+f.PorDia[1].Envios != 18 || f.Espera.Motivo != "ventana" {
		t.Fatalf("por_dia %+v espera %+v", f.PorDia, f.Espera)
	}

	// A stored campaign (the engine's default ritmo).
	data := t.TempDir()
	if code, out, errOut := run(t, "import", "--data", data, "--create", "--cliente", "demo", "--campaign", "k", "examples/contactos.csv"); code != 0 {
		t.Fatal(out, errOut)
	}
	code, out, errOut = run(t, "forecast", "--data", data, "--cliente", "demo", "--campaign", "k", "--desde", "2026-11-23T10:00:00Z", "--corridas", "50")
	if code != 0 || !strings.Contains(out, "campaña k: 18 envíos pendientes, 50 corridas desde 2026-11-23 10:00 UTC") ||
		!strings.Contains(out, "fin: p10 2026-11-23 10:1") || !strings.Contains(out, "  2026-11-23  18\n") {
		t.Fatalf("forecast stored: %d\n%s\n%s", code, out, errOut)
	}

	// Clear answers to bad input.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"forecast", "--data", data}, "want --cliente C --campaign K"},
		{[]string{"forecast", "--data", data, "--cliente", "otro", "--campaign", "k"}, `belongs to cliente "demo"`},
		{[]string{"forecast", "--data", data, "--cliente", "demo", "--campaign", "nada"}, "not found"},
		{[]string{"forecast", "--programacion", `{"desde":18,"hasta":9}`, "examples/contactos.csv"}, "programación: horas 18-9"},
		{[]string{"forecast", "--ritmo", `{"min_delay":"abc"}`, "examples/contactos.csv"}, "--ritmo"},
		{[]string{"forecast", "--corridas", "0", "examples/contactos.csv"}, "--corridas 0"},
	} {
		if code, _, errOut := run(t, tc.args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %d %s, want %q", tc.args, code, errOut, tc.want)
		}
	}
}

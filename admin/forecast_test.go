package admin_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestForecastRoute(t *testing.T) {
	h := newHarness(t, nil)
	key1, key2 := h.setup()
	h.must(201, h.do("POST", "/api/clientes/c1/campaigns", key1, map[string]any{"id": "grande", "plantilla": "Hola",
		"programacion": map[string]any{"desde": 9, "hasta": 18, "zona": "America/Argentina/Buenos_Aires"},
		"ritmo":        map[string]any{"min_delay": "10s", "max_delay": "50s", "por_hora": 60, "por_dia": 1000}}))
	var csv strings.Builder
	csv.WriteString("telefono\n")
	for i := range 300 {
		fmt.Fprintf(&csv, "+54911234%05d\n", i)
	}
	h.upload("c1", "grande", key1, csv.String())

	var f struct {
		Campana    string    `json:"campana"`
		Pendientes int       `json:"pendientes"`
		Corridas   int       `json:"corridas"`
		Desde      time.Time `json:"desde"`
		FinP10     time.Time `json:"fin_p10"`
		FinP50     time.Time `json:"fin_p50"`
		FinP90     time.Time `json:"fin_p90"`
		PorDia     []struct {
			Dia    string `json:"dia"`
			Envios int    `json:"envios"`
		} `json:"por_dia"`
		PorVentana []struct {
			Desde, Hasta time.Time
			Envios       int `json:"envios"`
		} `json:"por_ventana"`
		Espera *struct {
			Motivo       string `json:"motivo"`
			Desde, Hasta time.Time
		} `json:"espera"`
	}
	// t0 is 7:00 in Buenos Aires: the window opens at 9; 60 an hour, the
	// last 60 at the delays' pace (about 30 minutes): 4½ hours.
	h.must(200, h.do("GET", "/api/clientes/c1/campaigns/grande/pronostico", key1, nil)).json(t, &f)
	if f.Campana != "grande" || f.Pendientes != 300 || f.Corridas != 200 || !f.Desde.Equal(t0) {
		t.Fatalf("forecast %+v", f)
	}
	open := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	if f.FinP10.Before(open.Add(4*time.Hour+15*time.Minute)) || f.FinP90.After(open.Add(4*time.Hour+45*time.Minute)) || !f.FinP10.Before(f.FinP90) {
		t.Fatalf("finish %v .. %v .. %v", f.FinP10, f.FinP50, f.FinP90)
	}
	if len(f.PorDia) != 1 || f.PorDia[0].Dia != "2026-11-23" || f.PorDia[0].Envios != 300 || len(f.PorVentana) != 1 || f.PorVentana[0].Envios != 300 {
		t.Fatalf("por_dia %+v por_ventana %+v", f.PorDia, f.PorVentana)
	}
	if f.Espera == nil || f.Espera.Motivo != "ventana" || !f.Espera.Hasta.Equal(open) {
		t.Fatalf("espera %+v", f.Espera)
	}
	// A small one, with fewer runs.
	var small struct {
		Pendientes int       `json:"pendientes"`
		FinP90     time.Time `json:"fin_p90"`
		Corridas   int       `json:"corridas"`
	}
	h.must(200, h.do("GET", "/api/clientes/c1/campaigns/k1/pronostico?corridas=10", adminTok, nil)).json(t, &small)
	if small.Pendientes != 3 || small.Corridas != 10 || !small.FinP90.After(t0) {
		t.Fatalf("k1: %+v", small)
	}
	// Bad runs, another cliente's campaign, an unknown one.
	for _, q := range []string{"0", "x", "2001"} {
		if r := h.do("GET", "/api/clientes/c1/campaigns/k1/pronostico?corridas="+q, key1, nil); r.Status != 400 || !strings.Contains(string(r.Body), "corridas") {
			t.Fatalf("corridas=%s: %d %s", q, r.Status, r.Body)
		}
	}
	if r := h.do("GET", "/api/clientes/c1/campaigns/k1/pronostico", key2, nil); r.Status != 403 {
		t.Fatalf("another cliente's key: %d", r.Status)
	}
	h.must(404, h.do("GET", "/api/clientes/c1/campaigns/nada/pronostico", key1, nil))
}

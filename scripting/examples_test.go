package scripting_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"leadmaster/scripting"
)

// TestExamples compiles every examples/*.lua and runs each hook it defines
// on a range of inputs: every call must succeed, and personalize must be
// deterministic and leave no {{placeholder}} or {spin|tax} behind.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(src), "--[[") {
				t.Errorf("%s: want a comment block explaining it at the top", f)
			}
			s := mustCompile(t, string(src), relaxed)
			ctx := context.Background()
			if s.HasHook(scripting.HookPersonalize) {
				for i, e := range exampleEnvios() {
					r1, err := s.Personalize(ctx, e)
					if err != nil {
						t.Fatalf("envío %d: %v", i, err)
					}
					r2, _ := s.Personalize(ctx, e)
					if r1 != r2 {
						t.Errorf("envío %d: not deterministic: %q then %q", i, r1.Text, r2.Text)
					}
					if !r1.Skip && strings.ContainsAny(r1.Text, "{}") {
						t.Errorf("envío %d: leftover braces in %q", i, r1.Text)
					}
					t.Logf("envío %d: %+v", i, r1)
				}
			}
			if s.HasHook(scripting.HookThrottle) {
				for _, st := range exampleStats() {
					if _, err := s.Throttle(ctx, st); err != nil {
						t.Fatalf("throttle(%+v): %v", st, err)
					}
				}
			}
			if s.HasHook(scripting.HookOnReply) {
				for _, text := range []string{"BAJA", "hola", "", "Sí, me interesa", "🙂"} {
					if _, err := s.OnReply(ctx, scripting.Reply{Texto: text, Telefono: "+34600111222"}); err != nil {
						t.Fatalf("on_reply(%q): %v", text, err)
					}
				}
			}
		})
	}
}

func exampleEnvios() []scripting.Envio {
	base := envio("e1")
	full := base
	full.Variables = map[string]string{"ciudad": "guadalajara", "cita": "2026-12-01", "vip": "si", "negocio": "Óptica Sol"}
	noName := base
	noName.ID, noName.Nombre, noName.Variables = "e2", "  ", map[string]string{"cita": "2026-12-05"}
	optedOut := base
	optedOut.ID, optedOut.Variables = "e3", map[string]string{"no_contactar": "si"}
	withTemplate := base
	withTemplate.ID, withTemplate.Plantilla = "e4", "{Hola|Qué tal} {{nombre}}, {{ciudad|tu ciudad}} te espera."
	night := base
	night.ID, night.Now = "e5", time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	madrid := base
	madrid.ID, madrid.Telefono, madrid.TimeZone = "e6", "+34600111222", "Europe/Madrid"
	empty := scripting.Envio{}
	return []scripting.Envio{base, full, noName, optedOut, withTemplate, night, madrid, empty}
}

func exampleStats() []scripting.Stats {
	var out []scripting.Stats
	for day := 0; day < 7; day++ {
		for _, hour := range []int{3, 9, 14, 19, 23} {
			out = append(out, scripting.Stats{
				Campana: "c", SentToday: 120, SentLastHour: 70, ErrorStreak: day % 7,
				Now:      time.Date(2026, 11, 23+day, hour, 0, 0, 0, time.UTC),
				TimeZone: "Europe/Madrid",
			})
		}
	}
	return append(out, scripting.Stats{})
}

func mustExampleScript(t *testing.T, name string) *scripting.Script {
	t.Helper()
	src, err := os.ReadFile("../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return mustCompile(t, string(src), relaxed)
}

func TestExamplePersonalize(t *testing.T) {
	s := mustExampleScript(t, "personalize.lua")
	// 16:30 UTC is 10:30 in Mexico City
	text := mustText(t, s, envio("e1"))
	if !strings.HasPrefix(text, "Buenos días, María. ") || !strings.Contains(text, "Puebla") {
		t.Errorf("text = %q; want a morning greeting, the first name and the city", text)
	}
	e := envio("e2")
	e.Nombre = ""
	e.Now = time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC) // 20:00 the day before, local
	if text := mustText(t, s, e); !strings.HasPrefix(text, "Buenas noches, amigo/a. ") {
		t.Errorf("text = %q; want the night greeting and the fallback name", text)
	}
	e = envio("e3")
	e.Variables = map[string]string{"no_contactar": "si"}
	if r, err := personalize(t, s, e); err != nil || !r.Skip || r.Reason == "" {
		t.Errorf("no_contactar: %+v, %v; want a skip with a reason", r, err)
	}
}

func TestExampleThrottle(t *testing.T) {
	s := mustExampleScript(t, "throttle.lua")
	madrid, _ := time.LoadLocation("Europe/Madrid")
	at := func(y, m, d, h, min int) time.Time { return time.Date(y, time.Month(m), d, h, min, 0, 0, madrid) }
	for _, tc := range []struct {
		name      string
		now       time.Time
		streak    int
		wantPause time.Time // zero: no pause
	}{
		{"WeekdayMorning", at(2026, 11, 24, 10, 0), 0, time.Time{}},
		{"Saturday", at(2026, 11, 28, 11, 0), 0, at(2026, 11, 30, 9, 0)},
		{"Sunday", at(2026, 11, 29, 23, 0), 0, at(2026, 11, 30, 9, 0)},
		{"FridayEvening", at(2026, 11, 27, 19, 30), 0, at(2026, 11, 30, 9, 0)},
		{"TuesdayEarly", at(2026, 11, 24, 7, 0), 0, at(2026, 11, 24, 9, 0)},
		{"TuesdayNight", at(2026, 11, 24, 22, 0), 0, at(2026, 11, 25, 9, 0)},
		{"ErrorStreak", at(2026, 11, 24, 10, 0), 6, at(2026, 11, 24, 10, 30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := s.Throttle(context.Background(), scripting.Stats{Campana: "c", ErrorStreak: tc.streak, Now: tc.now, TimeZone: "Europe/Madrid"})
			if err != nil {
				t.Fatal(err)
			}
			if !d.PauseUntil.Equal(tc.wantPause) {
				t.Errorf("PauseUntil = %v, want %v (%+v)", d.PauseUntil.In(madrid), tc.wantPause, d)
			}
		})
	}
	slow, _ := s.Throttle(context.Background(), scripting.Stats{ErrorStreak: 3, Now: at(2026, 11, 24, 10, 0), TimeZone: "Europe/Madrid"})
	fast, _ := s.Throttle(context.Background(), scripting.Stats{ErrorStreak: 0, Now: at(2026, 11, 24, 10, 0), TimeZone: "Europe/Madrid"})
	if slow.Delay < 60*time.Second || fast.Delay > 5*time.Second {
		t.Errorf("delay after 3 errors %v, without errors %v; want the first ≥ 60s and the second ≤ 5s", slow.Delay, fast.Delay)
	}
}

func TestExampleOptout(t *testing.T) {
	s := mustExampleScript(t, "optout.lua")
	for text, want := range map[string]bool{
		"BAJA": true, "baja": true, "  Baja. ": true, "¡Bája!": true, "STOP": true, "stop": true,
		"Dar de baja por favor": true, "no me escriban más": true, "Quiero darme de baja": true,
		"ALTO": true, "basta ya": true,
		"hola": false, "Sí, me interesa": false, "¿Cuál es el precio?": false,
		"Oye, la aplicación no me baja las fotos y ya reinicié el teléfono dos veces": false,
		"": false,
	} {
		a, err := s.OnReply(context.Background(), scripting.Reply{Texto: text, Telefono: "+525512345678"})
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if a.OptOut != want {
			t.Errorf("on_reply(%q).OptOut = %v, want %v (%+v)", text, a.OptOut, want, a)
		}
	}
}

func TestExampleCampaign(t *testing.T) {
	s := mustExampleScript(t, "campaign.lua")
	e := envio("c1")
	e.Variables = map[string]string{"ciudad": "guadalajara", "cita": "2026-12-01"}
	text := mustText(t, s, e)
	for _, want := range []string{"Buenos días. ", "María", "martes 1 de diciembre", "55 1234 5678"} {
		if !strings.Contains(text, want) {
			t.Errorf("text %q lacks %q", text, want)
		}
	}
	a, err := s.OnReply(context.Background(), scripting.Reply{Texto: "Sí, confirmo"})
	if err != nil || len(a.Tags) != 1 || a.Tags[0] != "confirmada" {
		t.Errorf("on_reply(Sí, confirmo) = %+v, %v", a, err)
	}
}

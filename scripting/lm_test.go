package scripting_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"leadmaster/scripting"
)

// eval returns tostring(expr) evaluated inside personalize(e).
func eval(t *testing.T, expr string, e scripting.Envio) string {
	t.Helper()
	s := mustCompile(t, "function personalize(e) return '=' .. tostring("+expr+") end", relaxed)
	return strings.TrimPrefix(mustText(t, s, e), "=")
}

func TestLM(t *testing.T) {
	e := envio("e1") // 2026-11-23 16:30 UTC, a Monday; America/Mexico_City is UTC-6
	for _, tc := range []struct{ expr, want string }{
		{`lm.template("Hola {{nombre}} de {{ciudad}}", e)`, "Hola maría josé pérez de Puebla"},
		{`lm.template("{{ nombre }}|{{falta}}|{{falta|amigo}}|{{CIUDAD}}", e)`, "maría josé pérez||amigo|Puebla"},
		{`lm.template("{{n}} {{x}}", {n = 3, x = {}})`, "3 "},
		{`lm.template("{{a", {a = 1})`, "{{a"},
		{`lm.spintax("sin grupos")`, "sin grupos"},
		{`lm.spintax("{solo}")`, "solo"},
		{`lm.spintax("{{nombre}} queda")`, "{{nombre}} queda"},
		{`lm.spintax("abierto {a|b")`, "abierto {a|b"},
		{`lm.render("{Hola|Hola} {{nombre|x}}", {nombre = "{a|b}"})`, "Hola {a|b}"},
		{`lm.hour()`, "10"},
		{`lm.now().weekday .. lm.now().date .. lm.now().time .. tostring(lm.now().weekend)`, "12026-11-2310:30false"},
		{`lm.date("%A %e de %B de %Y, %H:%M")`, "lunes 23 de noviembre de 2026, 10:30"},
		{`lm.date("%a %d/%m/%y %j %%")`, "lun 23/11/26 327 %"},
		{`lm.date("%Y-%m-%d %H:%M", 0)`, "1969-12-31 18:00"},
		{`lm.at("11:00") - lm.now().unix`, "1800"},
		{`lm.at("10:00") - lm.now().unix`, "84600"},
		{`lm.at("09:00", 7) - lm.now().unix`, fmt.Sprint(6*86400 - 5400)},
		{`lm.phone("+525512345678")`, "+525512345678"},
		{`lm.phone("+525512345678", "national")`, "55 1234 5678"},
		{`lm.phone("+525512345678", "international")`, "+52 55 1234 5678"},
		{`lm.phone("+525512345678", "digits")`, "525512345678"},
		{`lm.phone("600 11 12 22", "e164", "es")`, "+34600111222"},
		{`select(2, lm.phone("12"))`, "invalid phone number"},
		{`lm.hash("abc")`, "ba7816bf8f01cfea"},
		{`lm.hash("abc", 64)`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{`lm.bucket("+525512345678", 2) == lm.bucket("+525512345678", 2)`, "true"},
		{`lm.title("maría JOSÉ de la o-ñandú")`, "María José De La O-Ñandú"},
		{`lm.first_name("  josé  luis ")`, "José"},
		{`lm.first_name("")`, ""},
		{`lm.normalize("  ¡Bája, por FAVOR!! ")`, "BAJA POR FAVOR"},
		{`table.concat(lm.words("No   más, gracias."), "+")`, "NO+MAS+GRACIAS"},
		{`lm.trim("  x \n")`, "x"},
		{`table.concat(lm.split("a,b,,c"), "|")`, "a|b||c"},
		{`#lm.split("a b c", " ")`, "3"},
		{`lm.pick({})`, "nil"},
	} {
		if got := eval(t, tc.expr, e); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestLM_TimeZones(t *testing.T) {
	e := envio("e1")
	for zone, want := range map[string]string{
		"America/Mexico_City": "10:30", "Europe/Madrid": "17:30", "Asia/Tokyo": "01:30",
		"": "16:30", "Not/AZone": "16:30",
	} {
		e.TimeZone = zone
		if got := eval(t, `lm.date("%H:%M")`, e); got != want {
			t.Errorf("zone %q: %s, want %s", zone, got, want)
		}
	}
	if !scripting.ValidZone("Europe/Madrid") || scripting.ValidZone("Not/AZone") {
		t.Error("ValidZone")
	}
}

func TestLM_Errors(t *testing.T) {
	for _, expr := range []string{
		`lm.date("%Q")`, `lm.at("25:00")`, `lm.at("09:00", 8)`, `lm.phone("+525512345678", "weird")`,
		`lm.hash("x", 0)`, `lm.bucket("x", 0)`, `lm.split("x", "")`, `lm.template()`,
		`lm.spintax(string.rep("{ ", 30) .. "a" .. string.rep(" }", 30))`,
	} {
		s := mustCompile(t, "function personalize(e) return tostring("+expr+") end", relaxed)
		if _, err := personalize(t, s, envio("1")); err == nil {
			t.Errorf("%s: want an error", expr)
		}
	}
}

// TestSeededRandom: lm.random, math.random, lm.pick and spintax draw from a
// generator seeded by the envío (campaign, id, phone): the same envío gets
// the same draws on every call and retry, other envíos get others.
func TestSeededRandom(t *testing.T) {
	s := mustCompile(t, `function personalize(e)
  local t = {}
  for i = 1, 8 do t[#t + 1] = lm.random(1, 1000) end
  t[#t + 1] = math.random(1000)
  t[#t + 1] = lm.pick({"a", "b", "c", "d"})
  t[#t + 1] = lm.spintax("{1|2|3|4|5|6|7|8}{1|2|3|4|5|6|7|8}")
  t[#t + 1] = math.floor(math.random() * 1e6)
  return table.concat(t, ",")
end`, relaxed)
	first := mustText(t, s, envio("e1"))
	retry := envio("e1")
	retry.Attempt = 3
	retry.Now = testNow.Add(time.Hour)
	if got := mustText(t, s, retry); got != first {
		t.Errorf("retry drew %q, first attempt %q", got, first)
	}
	seen := map[string]bool{first: true}
	for i := 2; i < 50; i++ {
		seen[mustText(t, s, envio(fmt.Sprint("e", i)))] = true
	}
	if len(seen) < 45 {
		t.Errorf("50 envíos drew only %d distinct sequences", len(seen))
	}
	// randomseed re-seeds the call's generator deterministically
	s2 := mustCompile(t, `function personalize(e) math.randomseed(42) return tostring(math.random(1e9)) end`, relaxed)
	if a, b := mustText(t, s2, envio("a")), mustText(t, s2, envio("b")); a != b {
		t.Errorf("randomseed(42) gave %s and %s", a, b)
	}
}

func TestSpintaxCoversAllOptions(t *testing.T) {
	s := mustCompile(t, `function personalize(e) return lm.spintax("{a|b|c}{x|{y|z}}") end`, relaxed)
	seen := map[string]bool{}
	for i := 0; i < 300; i++ {
		seen[mustText(t, s, envio(fmt.Sprint(i)))] = true
	}
	for _, want := range []string{"ax", "ay", "az", "bx", "by", "bz", "cx", "cy", "cz"} {
		if !seen[want] {
			t.Errorf("never rendered %q in 300 envíos: %v", want, seen)
		}
	}
}

func TestOutputs_WrongShapes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		hook, ret, field, msg string
	}{
		{"personalize", `{text = 5}`, "text", "must be a string, got number"},
		{"personalize", `{skip = "yes"}`, "skip", "must be a boolean"},
		{"personalize", `{skip = true, reason = {}}`, "reason", "must be a string"},
		{"personalize", `{texto = "hola"}`, "texto", "unknown field"},
		{"personalize", `{[1] = "hola"}`, "", "number key"},
		{"personalize", `"   "`, "", "empty"},
		{"personalize", `42`, "", "returned a number"},
		{"throttle", `{delay = "10"}`, "delay", "must be a number, got string"},
		{"throttle", `{delay = -1}`, "delay", "between 0"},
		{"throttle", `{delay = 0/0}`, "delay", "between 0"},
		{"throttle", `{delay = 1e7}`, "delay", "more than a week"},
		{"throttle", `{pause = 10, pause_until = 20}`, "pause", "not both"},
		{"throttle", `{dealy = 10}`, "dealy", "unknown field"},
		{"throttle", `"pausa"`, "", "returned a string"},
		{"on_reply", `{optout = "si"}`, "optout", "must be a boolean"},
		{"on_reply", `{tags = "a"}`, "tags", "list of strings"},
		{"on_reply", `{tags = {"a", 2}}`, "tags", "tags[2] must be a string"},
		{"on_reply", `{tag = string.rep("x", 100)}`, "tags", "1 to 64 bytes"},
		{"on_reply", `true`, "", "returned a boolean"},
	} {
		t.Run(tc.hook+"/"+tc.ret, func(t *testing.T) {
			s := mustCompile(t, fmt.Sprintf("function %s(x) return %s end", tc.hook, tc.ret), relaxed)
			var err error
			switch tc.hook {
			case "personalize":
				_, err = s.Personalize(ctx, envio("1"))
			case "throttle":
				_, err = s.Throttle(ctx, scripting.Stats{})
			case "on_reply":
				_, err = s.OnReply(ctx, scripting.Reply{})
			}
			var re *scripting.RuntimeError
			if !errors.As(err, &re) || !errors.Is(err, scripting.ErrOutput) {
				t.Fatalf("err = %v, want ErrOutput", err)
			}
			if re.Hook != tc.hook || re.Field != tc.field || !strings.Contains(re.Msg, tc.msg) {
				t.Errorf("got hook %q field %q msg %q; want %q %q %q", re.Hook, re.Field, re.Msg, tc.hook, tc.field, tc.msg)
			}
			if !strings.Contains(err.Error(), tc.hook) {
				t.Errorf("error %q does not name the hook", err)
			}
		})
	}
}

func TestOutputs_Good(t *testing.T) {
	ctx := context.Background()
	s := mustCompile(t, `
function personalize(e) return {skip = true, reason = "no"} end
function throttle(s) return {delay = 1.5, pause = 60, skip = true, reason = "r"} end
function on_reply(m) return {optout = true, tag = "a", tags = {"b", "c"}, reason = "r"} end`, relaxed)
	r, err := s.Personalize(ctx, envio("1"))
	if err != nil || r != (scripting.Result{Skip: true, Reason: "no"}) {
		t.Errorf("personalize: %+v %v", r, err)
	}
	now := testNow
	d, err := s.Throttle(ctx, scripting.Stats{Now: now})
	if err != nil || d.Delay != 1500*time.Millisecond || !d.PauseUntil.Equal(now.Add(time.Minute)) || !d.Skip || d.Reason != "r" {
		t.Errorf("throttle: %+v %v", d, err)
	}
	a, err := s.OnReply(ctx, scripting.Reply{})
	if err != nil || !a.OptOut || strings.Join(a.Tags, ",") != "a,b,c" || a.Reason != "r" {
		t.Errorf("on_reply: %+v %v", a, err)
	}
	s2 := mustCompile(t, `function throttle(s) return nil end function on_reply(m) end`, relaxed)
	if d, err := s2.Throttle(ctx, scripting.Stats{}); err != nil || d != (scripting.ThrottleDecision{}) {
		t.Errorf("nil throttle: %+v %v", d, err)
	}
	if a, err := s2.OnReply(ctx, scripting.Reply{}); err != nil || a.OptOut || a.Tags != nil {
		t.Errorf("nil on_reply: %+v %v", a, err)
	}
}

func TestInputs(t *testing.T) {
	ctx := context.Background()
	s := mustCompile(t, `
function personalize(e)
  return table.concat({e.id, e.telefono, e.nombre, e.variables.ciudad, e.campana, e.plantilla, e.attempt, e.zona}, "|")
end
function throttle(s)
  return {reason = table.concat({s.campana, s.sent_today, s.sent_last_hour, s.error_streak, s.cupo, s.disponible,
    s.hour, s.minute, s.weekday, tostring(s.weekend), s.date, s.time, s.zona}, "|")}
end
function on_reply(m)
  return {reason = table.concat({m.telefono, m.nombre, m.texto, m.campana, m.envio, m.zona}, "|")}
end`, relaxed)
	e := envio("e1")
	e.Plantilla, e.Attempt = "P", 2
	if got, want := mustText(t, s, e), "e1|+525512345678|maría josé pérez|Puebla|campana-1|P|2|America/Mexico_City"; got != want {
		t.Errorf("envio: %q, want %q", got, want)
	}
	d, err := s.Throttle(ctx, scripting.Stats{Campana: "c", SentToday: 1, SentLastHour: 2, ErrorStreak: 3, Cupo: 4, Disponible: 5,
		Now: time.Date(2026, 11, 28, 23, 15, 0, 0, time.UTC), TimeZone: "Europe/Madrid"})
	if want := "c|1|2|3|4|5|0|15|7|true|2026-11-29|00:15|Europe/Madrid"; err != nil || d.Reason != want {
		t.Errorf("stats: %q %v, want %q", d.Reason, err, want)
	}
	a, err := s.OnReply(ctx, scripting.Reply{Telefono: "t", Nombre: "n", Texto: "x", Campana: "c", EnvioID: "e", TimeZone: "z"})
	if want := "t|n|x|c|e|z"; err != nil || a.Reason != want {
		t.Errorf("reply: %q %v, want %q", a.Reason, err, want)
	}
}

// TestSpintaxLinear: spintax and templates on pathological inputs of a
// megabyte finish quickly (a quadratic scan here would not be interruptible).
func TestSpintaxLinear(t *testing.T) {
	for _, expr := range []string{
		`lm.spintax(string.rep("{{", 4e5))`,
		`lm.spintax(string.rep("{", 9e5))`,
		`lm.spintax(string.rep("{{a}", 2e5))`,
		`lm.spintax(string.rep("{a|", 3e5))`,
		`lm.spintax(string.rep("{a|b}", 2e5))`,
		`lm.render(string.rep("{{x}", 2e5), {x = "y"})`,
		`lm.template(string.rep("{{", 4e5) .. "}}", {})`,
		`#lm.split(string.rep(",", 1e5))`,
	} {
		s := mustCompile(t, "function personalize(e) local r = "+expr+" return 'len ' .. #tostring(r) end", relaxed)
		start := time.Now()
		_, err := personalize(t, s, envio("1"))
		if took := time.Since(start); took > failFast {
			t.Errorf("%s took %v", expr, took)
		}
		if err != nil && !errors.Is(err, scripting.ErrLimit) {
			t.Errorf("%s: %v", expr, err)
		}
	}
}

package scripting_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"leadmaster/scripting"
)

// fuzzScript returns, depending on e.variables.shape, one of many output
// shapes built from the fuzzed payload, and feeds the payload to the
// builtins as a pattern, a format, a template, spintax and a phone number.
const fuzzScript = `
function personalize(e)
  local shape = tonumber(e.variables.shape) or 0
  local p = e.variables.payload or ""
  if shape == 0 then return p end
  if shape == 1 then return {text = p} end
  if shape == 2 then return {skip = true, reason = p} end
  if shape == 3 then return tonumber(p) end
  if shape == 4 then return {text = p, reason = p} end
  if shape == 5 then return lm.render(p, e) end
  if shape == 6 then return lm.template(p, e) .. e.nombre .. e.telefono .. e.id .. e.campana .. e.attempt end
  if shape == 7 then error(p) end
  if shape == 8 then return {[p] = p} end
  if shape == 9 then return string.rep(p, 70000) end
  if shape == 10 then return (string.gsub(p, p, p)) end
  if shape == 11 then return string.format(p, 1, 2, 3) end
  if shape == 12 then return {text = {p}} end
  if shape == 13 then return lm.phone(p, "national") or "invalid" end
  if shape == 14 then return lm.spintax(p) end
  if shape == 15 then return string.find(p, p) and p or "nf" end
  if shape == 16 then return p:upper() .. p:lower() .. lm.normalize(p) .. lm.title(p) .. lm.first_name(p) end
  if shape == 17 then for w in string.gmatch(e.nombre, p) do p = p .. "." end return p end
  if shape == 18 then return {skip = p ~= "", reason = #p} end
  if shape == 19 then return setmetatable({}, {__index = function() return p end}) end
  return nil
end
`

var (
	fuzzOnce   sync.Once
	fuzzScr    *scripting.Script
	fuzzScrErr error
)

func FuzzPersonalize(f *testing.F) {
	f.Add("e1", "+525512345678", "María", "c1", "Puebla", 1, uint8(0), "Hola {{nombre}}")
	f.Add("", "", "", "", "", 0, uint8(5), "{a|b} {{ciudad|x}} {")
	f.Add("x", "y", "z", "w", "v", -1, uint8(10), "(.-)%1")
	f.Add("x", "y", "z", "w", "v", 7, uint8(11), "%5.2f %d %s %q")
	f.Add("\xff", "\x00", "ñ", "c", "\xfe", 1<<30, uint8(9), "xxxx")
	f.Add("a", "b", "c", "d", "e", 3, uint8(17), "%a+")
	f.Fuzz(func(t *testing.T, id, tel, nombre, campana, ciudad string, attempt int, shape uint8, payload string) {
		fuzzOnce.Do(func() {
			fuzzScr, fuzzScrErr = scripting.CompileWith("fuzz.lua", fuzzScript, scripting.Limits{Timeout: 5 * time.Second})
		})
		if fuzzScrErr != nil {
			t.Fatal(fuzzScrErr)
		}
		e := scripting.Envio{
			ID: id, Telefono: tel, Nombre: nombre, Campana: campana, Attempt: attempt,
			Variables: map[string]string{"ciudad": ciudad, "shape": string(rune('0'+shape%20/10)) + string(rune('0'+shape%10)), "payload": payload},
			Now:       time.Unix(int64(attempt)*3600, 0), TimeZone: "Europe/Madrid",
		}
		r1, err1 := fuzzScr.Personalize(context.Background(), e)
		check(t, fuzzScr, r1, err1)
		r2, err2 := fuzzScr.Personalize(context.Background(), e)
		if errors.Is(err1, scripting.ErrTimeout) || errors.Is(err2, scripting.ErrTimeout) {
			return // a stall of this shared machine, not the script
		}
		if r1 != r2 || (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
			t.Fatalf("not deterministic: %+v %v / %+v %v", r1, err1, r2, err2)
		}
	})
}

func check(t *testing.T, s *scripting.Script, r scripting.Result, err error) {
	t.Helper()
	if err != nil {
		var re *scripting.RuntimeError
		if !errors.As(err, &re) {
			t.Fatalf("err %v is %T, want *RuntimeError", err, err)
		}
		if !utf8.ValidString(re.Msg) || len(re.Msg) > 1024 || re.Hook != "personalize" || re.Kind() == "canceled" {
			t.Fatalf("bad error: %#v", re)
		}
		return
	}
	if r.Skip {
		if r.Text != "" {
			t.Fatalf("skip with text: %+v", r)
		}
		return
	}
	if r.Text == "" || len(r.Text) > s.Limits().MaxText || !utf8.ValidString(r.Text) {
		t.Fatalf("bad text accepted: %q", r.Text)
	}
}

// FuzzCompile: any source either fails to compile with a typed error or
// runs (each hook it defines) within its limits, without taking the
// process down.
func FuzzCompile(f *testing.F) {
	for _, src := range []string{
		"function personalize(e) return 'x' end",
		"function personalize(e) return e.nombre .. 1 .. 2.5 end",
		"function throttle(s) return {delay = s.hour} end",
		"function on_reply(m) return {optout = m.texto == 'BAJA'} end",
		"x = 1 function personalize(e) while x do end end",
		"function personalize(e) local s = 'a' for i = 1, 40 do s = s .. s end return s end",
		"function personalize(e) return ('x'):rep(1e9) end",
		"function personalize(e) return {skip = true} end",
		"local t = {} function personalize(e) t[#t+1] = e return #t end",
		"function personalize(e) goto x ::x:: return 'y' end",
		"--[[ unclosed",
		"function personalize(e) return ... end",
	} {
		f.Add(src)
	}
	lim := scripting.Limits{Timeout: 20 * time.Millisecond, MaxMemory: 16 << 20}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := scripting.CompileWith("f.lua", src, lim)
		if err != nil {
			var se *scripting.SyntaxError
			var re *scripting.RuntimeError
			if !errors.As(err, &se) && !errors.As(err, &re) {
				t.Fatalf("compile error %v is %T", err, err)
			}
			return
		}
		defer s.Close()
		ctx := context.Background()
		if s.HasHook(scripting.HookPersonalize) {
			r, err := s.Personalize(ctx, scripting.Envio{ID: "1", Nombre: "n", Variables: map[string]string{"a": "b"}})
			check(t, s, r, err)
		}
		if s.HasHook(scripting.HookThrottle) {
			if _, err := s.Throttle(ctx, scripting.Stats{SentToday: 3}); err != nil {
				var re *scripting.RuntimeError
				if !errors.As(err, &re) {
					t.Fatalf("throttle error %T", err)
				}
			}
		}
		if s.HasHook(scripting.HookOnReply) {
			if _, err := s.OnReply(ctx, scripting.Reply{Texto: "BAJA"}); err != nil {
				var re *scripting.RuntimeError
				if !errors.As(err, &re) {
					t.Fatalf("on_reply error %T", err)
				}
			}
		}
	})
}

// observer reports what a call can see of the world: globals, the envío,
// the libraries and the string metatable.
const observer = `
  local seen = {}
  for k, v in pairs(_G) do seen[#seen + 1] = "G." .. tostring(k) .. "=" .. type(v) end
  for k, v in pairs(e) do seen[#seen + 1] = "e." .. tostring(k) .. "=" .. (type(v) == "table" and "T" or tostring(v)) end
  for k, v in pairs(e.variables) do seen[#seen + 1] = "v." .. tostring(k) .. "=" .. tostring(v) end
  table.sort(seen)
  seen[#seen + 1] = tostring(getmetatable(e)) .. tostring(getmetatable(e.variables)) .. tostring(getmetatable(""))
  seen[#seen + 1] = string.upper("a") .. ("b"):upper() .. lm.template("{{x}}", {x = 1}) .. type(math.floor) .. tostring(#e)
  return table.concat(seen, ",")
`

// FuzzIsolation runs a fuzzed top level and personalize body on a one-state
// pool, then an observer call on the same pool: it must see exactly what it
// sees on a fresh Script, whatever the fuzzed code did (and whether it
// failed). Top levels that qualify as constant exercise the kept
// environment; others the re-run path.
func FuzzIsolation(f *testing.F) {
	tops := []string{"", "local G = _G", "local r, S = lm.render, string", "local T = {}", "x = 1", "local n = 0 local function f() n = n + 1 end"}
	for i, body := range []string{
		`x = 1`, `_G.y = {}`, `e.nombre = "z"`, `e.variables.k = "w"`, `e.extra = 1`, `e[1] = 2`,
		`setmetatable(e, {})`, `setmetatable(e.variables, {__index = e})`, `personalize = nil`,
		`_G = nil`, `e.variables = {}`, `string.upper = nil`, `for i = 1, 100 do _G["k" .. i] = i end`,
		`error("x")`, `while true do end`, `e.variables.k = nil`, `rawset(e, "q", 1)`, `e.nombre = nil e.nombre = "ana"`,
	} {
		f.Add(tops[i%len(tops)], body)
	}
	lim := scripting.Limits{Timeout: 50 * time.Millisecond, PoolSize: 1}
	f.Fuzz(func(t *testing.T, top, body string) {
		src := top + "\nfunction personalize(e)\n if e.variables.probe == '1' then " + observer + " end\n" + body + "\nend"
		s, err := scripting.CompileWith("iso.lua", src, lim)
		if err != nil {
			return
		}
		defer s.Close()
		fresh, err := scripting.CompileWith("iso.lua", src, scripting.Limits{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		e := scripting.Envio{ID: "1", Nombre: "ana", Campana: "c", Variables: map[string]string{"k": "v", "probe": "0"}}
		_, _ = s.Personalize(context.Background(), e)
		e.Variables = map[string]string{"k": "v", "probe": "1"}
		want, err := fresh.Personalize(context.Background(), e)
		if err != nil {
			t.Fatalf("observer on a fresh script: %v", err)
		}
		for i := 0; i < 3; i++ {
			got, err := s.Personalize(context.Background(), e)
			if errors.Is(err, scripting.ErrTimeout) {
				continue // this machine stalled
			}
			if err != nil || got != want {
				t.Fatalf("after %q / %q the next call saw\n%q (%v)\nwant\n%q", top, body, got.Text, err, want.Text)
			}
			break
		}
	})
}

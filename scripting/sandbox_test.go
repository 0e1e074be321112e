package scripting_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"leadmaster/scripting"
)

// hostileLimits keep hostile tests fast: a 50ms time limit.
var hostileLimits = scripting.Limits{Timeout: 50 * time.Millisecond}

// failFast is how long a hostile call may take before the test calls it
// slow: the limit plus room for this shared machine's scheduling stalls.
const failFast = 3 * time.Second

// hostile is a personalize body that must fail, and how.
type hostile struct {
	name string
	body string
	want []error // one of these causes; nil entries mean "a plain Lua error" (Cause nil)
	msg  string  // substring of the message, if any
}

var plainErr error // Cause == nil

var hostiles = []hostile{
	{"InfiniteLoop", `while true do end`, []error{scripting.ErrTimeout}, "time limit"},
	{"InfiniteLoopInPcall", `while true do pcall(function() while true do end end) end`, []error{scripting.ErrTimeout}, ""},
	{"TailCallLoop", `local function f() return f() end return f()`, []error{scripting.ErrTimeout}, ""},
	{"DeepRecursion", `local function f(n) return 1 + f(n + 1) end return f(1)`, []error{scripting.ErrLimit}, "stack overflow"},
	{"MetamethodRecursion", `local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end return t.x`, []error{scripting.ErrLimit}, "stack overflow"},
	{"VarargGrowth", `local function f(...) return f(1, 2, 3, 4, 5, 6, 7, 8, ...) end return f()`, []error{scripting.ErrLimit, scripting.ErrTimeout}, ""},
	{"StringRep1e9", `return string.rep("x", 1e9)`, []error{scripting.ErrLimit}, "string.rep"},
	{"StringRepMethod", `return ("x"):rep(1e9)`, []error{scripting.ErrLimit}, "string.rep"},
	{"ConcatDoubling", `local s = "x" while true do s = s .. s end`, []error{scripting.ErrLimit}, "'..'"},
	{"ConcatWide", `local s = ("x"):rep(1000) while true do s = s..s..s..s..s..s..s..s..s..s..s..s..s..s..s..s end`, []error{scripting.ErrLimit}, "'..'"},
	{"GsubBomb", `local s = string.rep("x", 1e5) return (s:gsub("x", s))`, []error{scripting.ErrLimit}, "gsub"},
	{"TableConcatBomb", `local t = {} for i = 1, 100 do t[i] = string.rep("x", 1e5) end return table.concat(t)`, []error{scripting.ErrLimit}, "table.concat"},
	{"FormatBomb", `local s = string.rep("x", 9e5) return string.format("%s%s", s, s)`, []error{scripting.ErrLimit}, "format"},
	{"FormatWidth", `return string.format("%0999999d", 1)`, []error{plainErr}, "invalid format"},
	{"PatternBacktracking", `return string.find(string.rep("a", 3e5), string.rep("a*", 20) .. "b")`, []error{scripting.ErrTimeout, scripting.ErrLimit}, ""},
	{"PatternGsubBacktracking", `local s = string.rep("a", 2e5) return (s:gsub("(.-)(.-)(.-)(.-)b", "x"))`, []error{scripting.ErrTimeout, scripting.ErrLimit}, ""},
	{"UnpackHuge", `return unpack({}, 1, 1e8)`, []error{scripting.ErrLimit}, "unpack"},
	{"ByteHuge", `return string.byte(string.rep("x", 1e6), 1, -1)`, []error{scripting.ErrLimit}, "slice"},
	{"TableGrowth", `local t = {} while true do t[#t + 1] = {i = #t} end`, []error{scripting.ErrMemory, scripting.ErrTimeout}, ""},
	{"StringTableGrowth", `local t, i = {}, 0 while true do i = i + 1 t[i] = ("y"):rep(1000) .. i end`, []error{scripting.ErrMemory, scripting.ErrTimeout}, ""},
	{"OsExecute", `os.execute("touch /tmp/pwned") return "x"`, []error{plainErr}, "nil"},
	{"IoOpen", `return io.open("/etc/passwd"):read("*a")`, []error{plainErr}, "nil"},
	{"Require", `local os = require("os") return "x"`, []error{plainErr}, ""},
	{"Load", `return load("return 1")()`, []error{plainErr}, ""},
	{"Loadstring", `return loadstring("return 1")()`, []error{plainErr}, ""},
	{"Dofile", `return dofile("/etc/passwd")`, []error{plainErr}, ""},
	{"Loadfile", `return loadfile("/etc/passwd")`, []error{plainErr}, ""},
	{"Debug", `return debug.getregistry()`, []error{plainErr}, ""},
	{"Getfenv", `return getfenv(0).os`, []error{plainErr}, ""},
	{"Coroutine", `return coroutine.wrap(function() end)`, []error{plainErr}, ""},
	{"Collectgarbage", `collectgarbage() return "x"`, []error{plainErr}, ""},
	{"StringDump", `return string.dump(print)`, []error{plainErr}, ""},
	{"SetmetatableG", `setmetatable(_G, {__index = function() return "pwned" end}) return "x"`, []error{plainErr}, "protected metatable"},
	{"SetmetatableString", `setmetatable("", {}) return "x"`, []error{plainErr}, "table expected"},
	{"SetmetatableNumber", `setmetatable(1, {__index = function() return "pwned" end}) return "x"`, []error{plainErr}, "table expected"},
	{"StringMetatable", `getmetatable("").__index.upper = function() return "pwned" end return "x"`, []error{plainErr}, ""},
	{"WriteStringLib", `string.upper = function() return "pwned" end return "x"`, []error{plainErr}, "read-only"},
	{"WriteLM", `lm.template = nil return "x"`, []error{plainErr}, "read-only"},
	{"Rawset", `rawset(string, "upper", 1) return "x"`, []error{plainErr}, ""},
	{"ErrorTable", `error({})`, []error{plainErr}, "error object is a table value"},
	{"ErrorTostringLoop", `error(setmetatable({}, {__tostring = function() while true do end end}))`, []error{plainErr}, "table value"},
	{"ErrorHugeString", `error(string.rep("e", 1e6))`, []error{plainErr}, "…"},
	{"ReturnFunction", `return function() end`, []error{scripting.ErrOutput}, "function"},
	{"ReturnHugeString", `return string.rep("x", 1e6)`, []error{scripting.ErrOutput}, "limit"},
	{"ReturnTableWithTrapMetatable", `return setmetatable({}, {__index = function() while true do end end})`, []error{scripting.ErrOutput}, "without text"},
	{"ReturnNil", `return nil`, []error{scripting.ErrOutput}, "nil"},
	{"ReturnInvalidUTF8", `return "\255\254"`, []error{scripting.ErrOutput}, "UTF-8"},
}

const hostileTemplate = `
function personalize(e)
  if e.variables.mode == "good" then
    return "hola " .. e.nombre .. " " .. tostring(leak) .. " " .. string.upper("x") .. " " .. type(os)
  end
  leak = "leaked"
  %s
end
`

func goodEnvio() scripting.Envio {
	e := envio("good")
	e.Variables = map[string]string{"mode": "good"}
	e.Nombre = "Ana"
	return e
}

const goodText = "hola Ana nil X nil"

func checkHostile(t *testing.T, h hostile, err error, took time.Duration) {
	t.Helper()
	var re *scripting.RuntimeError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v (%T), want *RuntimeError", err, err)
	}
	ok := false
	for _, w := range h.want {
		if w == nil && re.Cause == nil || w != nil && errors.Is(err, w) {
			ok = true
		}
	}
	if !ok {
		t.Errorf("cause = %v (%s), want one of %v; err: %v", re.Cause, re.Kind(), h.want, err)
	}
	if !strings.Contains(re.Msg, h.msg) {
		t.Errorf("message %q does not mention %q", re.Msg, h.msg)
	}
	if len(re.Msg) > 1024 {
		t.Errorf("message is %d bytes; want it bounded", len(re.Msg))
	}
	if took > failFast {
		t.Errorf("took %v, want well under %v", took, failFast)
	}
}

// TestHostile_FailCleanlyAndPoolStaysHealthy runs each hostile script, then
// a normal call on the same Script: it must succeed and see nothing the
// hostile call left behind.
func TestHostile_FailCleanlyAndPoolStaysHealthy(t *testing.T) {
	for _, h := range hostiles {
		t.Run(h.name, func(t *testing.T) {
			lim := hostileLimits
			if !slices.Contains(h.want, scripting.ErrTimeout) {
				// this one must hit its own limit, not the clock (-race is slow)
				lim.Timeout = 10 * time.Second
			}
			s := mustCompile(t, fmt.Sprintf(hostileTemplate, h.body), lim)
			start := time.Now()
			_, err := personalize(t, s, envio("bad"))
			took := time.Since(start)
			checkHostile(t, h, err, took)
			t.Logf("%s: %v in %v", h.name, err, took.Round(time.Microsecond))

			// the pool: the next calls work, with a clean environment
			for i := 0; i < 3; i++ {
				res, err := s.Personalize(context.Background(), goodEnvio())
				if errors.Is(err, scripting.ErrTimeout) {
					continue // the machine stalled past 50ms; try again
				}
				if err != nil || res.Text != goodText {
					t.Fatalf("next call: %q, %v; want %q", res.Text, err, goodText)
				}
				break
			}
			m := s.Metrics()
			if m.Hooks["personalize"].Errors < 1 {
				t.Errorf("metrics did not count the error: %+v", m)
			}
		})
	}
}

func TestHostile_TopLevel(t *testing.T) {
	for _, src := range []string{
		"while true do end\nfunction personalize(e) return 'x' end",
		"local s = 'x' while true do s = s .. s end\nfunction personalize(e) return 'x' end",
		"os.exit(1)\nfunction personalize(e) return 'x' end",
	} {
		_, err := scripting.CompileWith("top.lua", src, hostileLimits)
		var re *scripting.RuntimeError
		if !errors.As(err, &re) || re.Hook != "main" || re.Line != 1 {
			t.Errorf("Compile(%.30q): err = %v, want a RuntimeError in main at line 1", src, err)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	s := mustCompile(t, `function personalize(e)
  local t = {}
  while true do t[#t + 1] = {1, 2, 3, 4, 5, 6, 7, 8} end
end`, scripting.Limits{Timeout: time.Minute, MaxMemory: 16 << 20})
	start := time.Now()
	_, err := personalize(t, s, envio("x"))
	if !errors.Is(err, scripting.ErrMemory) {
		t.Fatalf("err = %v, want ErrMemory", err)
	}
	t.Logf("%v after %v", err, time.Since(start))
}

// TestIsolation_NoStateAcrossCalls: globals, upvalues, the string metatable
// and the shared modules are the same on every call of every script.
func TestIsolation_NoStateAcrossCalls(t *testing.T) {
	poison := mustCompile(t, `
counter = (counter or 0) + 1
local calls = 0
function personalize(e)
  calls = calls + 1
  hits = (hits or 0) + 1
  pcall(function() string.upper = function() return "pwned" end end)
  pcall(function() string.foo = 1 end)
  pcall(function() lm.template = function() return "pwned" end end)
  pcall(function() math.floor = nil end)
  pcall(function() getmetatable("").__index.upper = function() return "pwned" end end)
  pcall(setmetatable, _G, {__index = function() return "pwned" end})
  pcall(setmetatable, 1, {__index = function() return "pwned" end})
  pcall(setmetatable, string, {})
  pcall(function() _G.string = {upper = function() return "pwned" end} end)
  return table.concat({counter, calls, hits, string.upper("a")}, "/")
end`, relaxed)
	reader := mustCompile(t, `
function personalize(e)
  local n = pcall(function() return (1).x end)
  return table.concat({tostring(counter), tostring(hits), string.upper("a"), ("b"):upper(),
    tostring(string.foo), type(math.floor), tostring(n), lm.template("{{x}}", {x = "ok"})}, "/")
end`, relaxed)
	for i := 0; i < 20; i++ {
		if got, want := mustText(t, poison, envio(fmt.Sprint(i))), "1/1/1/A"; got != want {
			// _G.string = ... only replaces string in this call's environment
			if got != "1/1/1/pwned" {
				t.Fatalf("call %d: %q, want %q: state leaked across calls", i, got, want)
			}
		}
		if got, want := mustText(t, reader, envio(fmt.Sprint(i))), "nil/nil/A/B/nil/function/false/ok"; got != want {
			t.Fatalf("other campaign sees %q, want %q", got, want)
		}
	}
}

func TestIsolation_GlobalsAbsent(t *testing.T) {
	s := mustCompile(t, `
function personalize(e)
  local out = {}
  for _, name in ipairs({"os", "io", "debug", "package", "require", "module", "load", "loadstring",
      "dofile", "loadfile", "collectgarbage", "getfenv", "setfenv", "rawset", "rawget", "newproxy",
      "print", "_printregs", "coroutine", "channel", "_GOPHER_LUA_VERSION"}) do
    if _G[name] ~= nil then out[#out + 1] = name end
  end
  if string.dump ~= nil then out[#out + 1] = "string.dump" end
  if getmetatable("") ~= false then out[#out + 1] = "string metatable visible" end
  if getmetatable(_G) ~= false then out[#out + 1] = "_G metatable visible" end
  return "present:" .. table.concat(out, ",")
end`, relaxed)
	if got := mustText(t, s, envio("1")); got != "present:" {
		t.Fatalf("sandbox exposes: %s", got)
	}
}

func TestContext_CallerCancellation(t *testing.T) {
	s := mustCompile(t, "function personalize(e) while true do end end", scripting.Limits{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Personalize(ctx, envio("1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before the call: err = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Personalize(ctx, envio("1"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: err = %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > failFast {
		t.Errorf("took %v", time.Since(start))
	}
	var re *scripting.RuntimeError
	if errors.As(err, &re); re.Kind() != "canceled" {
		t.Errorf("kind = %q, want canceled", re.Kind())
	}
}

// TestIsolation_EnvioTableReuse: the envío table is refilled in place for
// the next call on the same state only when the script left it untouched.
// Whatever a script does to it, the next call sees a pristine envío.
func TestIsolation_EnvioTableReuse(t *testing.T) {
	src := `function personalize(e)
  local seen = {}
  for k, v in pairs(e) do seen[#seen + 1] = tostring(k) .. "=" .. (type(v) == "table" and "T" or tostring(v)) end
  for k, v in pairs(e.variables) do seen[#seen + 1] = "v." .. tostring(k) .. "=" .. tostring(v) end
  table.sort(seen)
  local mode = e.variables.mode
  if mode == "add" then e.extra = 1 end
  if mode == "arr" then e[1] = 1 e.variables[1] = 2 end
  if mode == "meta" then setmetatable(e, {__index = function() return "x" end}) end
  if mode == "varmeta" then setmetatable(e.variables, {__index = function() return "x" end}) end
  if mode == "del" then e.nombre = nil end
  if mode == "var" then e.variables.mode = "changed" e.variables.nuevo = "n" end
  if mode == "swap" then e.variables = {mode = "swap"} end
  if mode == "delvar" then e.variables.mode = nil end
  if mode == "float" then e[1.5] = true end
  return table.concat(seen, ",") .. "|" .. tostring(e.missing) .. tostring(e.variables.missing)
end`
	lim := scripting.Limits{Timeout: 30 * time.Second, PoolSize: 1}
	s := mustCompile(t, src, lim)
	pristine := func(mode string) string {
		fresh := mustCompile(t, src, lim)
		e := envio("x")
		e.Variables = map[string]string{"mode": mode}
		return mustText(t, fresh, e)
	}
	want := pristine("none")
	for _, mode := range []string{"add", "arr", "meta", "varmeta", "del", "var", "swap", "delvar", "float", "none"} {
		e := envio("x")
		e.Variables = map[string]string{"mode": mode}
		if got, w := mustText(t, s, e), pristine(mode); got != w {
			t.Fatalf("mode %s: got %q, want %q", mode, got, w)
		}
		e.Variables = map[string]string{"mode": "none"}
		if got := mustText(t, s, e); got != want {
			t.Fatalf("after mode %s the next call saw %q, want %q", mode, got, want)
		}
	}
}

// TestIsolation_EnvReuse: a pooled state reuses an emptied global
// environment; whatever the previous call put in it, the next call starts
// with only _G (and the script's own definitions).
func TestIsolation_EnvReuse(t *testing.T) {
	src := `
local before = {}
for k in pairs(_G) do before[#before + 1] = tostring(k) end
table.sort(before)
function personalize(e)
  local mode = e.variables.mode
  if mode == "many" then for i = 1, 100 do _G["g" .. e.id .. i] = i end end
  if mode == "one" then _G["g" .. e.id] = true end
  if mode == "nilG" then _G = nil end
  if mode == "numG" then _G = 5 end
  if mode == "arr" then _G[1] = 1 end
  if mode == "bool" then _G[true] = 1 end
  if mode == "del" then personalize = nil end
  return table.concat(before, ",") .. "|" .. type(_G)
end`
	s := mustCompile(t, src, scripting.Limits{Timeout: 30 * time.Second, PoolSize: 1})
	// the top level runs before personalize is defined: it sees only _G
	if got := mustText(t, s, envio("first")); got != "_G|table" {
		t.Fatalf("first call: %q", got)
	}
	for i, mode := range []string{"one", "many", "nilG", "numG", "arr", "bool", "del", "one", "none"} {
		e := envio(fmt.Sprint("e", i))
		e.Variables = map[string]string{"mode": mode}
		mustText(t, s, e)
		e.Variables = map[string]string{"mode": "none"}
		if got := mustText(t, s, e); got != "_G|table" {
			t.Fatalf("after mode %s the next call's top level saw globals %q", mode, got)
		}
	}
}

func TestInputTooLarge(t *testing.T) {
	s := mustCompile(t, "function personalize(e) return e.nombre:upper() end function on_reply(m) end", scripting.Limits{MaxString: 1 << 10})
	e := envio("1")
	e.Variables = map[string]string{"big": strings.Repeat("x", 2000)}
	if _, err := s.Personalize(context.Background(), e); !errors.Is(err, scripting.ErrLimit) {
		t.Errorf("personalize: err = %v, want ErrLimit", err)
	}
	if _, err := s.OnReply(context.Background(), scripting.Reply{Texto: strings.Repeat("x", 2000)}); !errors.Is(err, scripting.ErrLimit) {
		t.Errorf("on_reply: err = %v, want ErrLimit", err)
	}
	if m := s.Metrics().Hooks["personalize"]; m.Calls != 1 || m.Limit != 1 {
		t.Errorf("metrics %+v", m)
	}
}

func TestSortBound(t *testing.T) {
	s := mustCompile(t, `function personalize(e)
  local n = tonumber(e.variables.n)
  local t = {}
  for i = 1, n do t[i] = tostring(n - i) end
  table.sort(t)
  return t[1]
end`, relaxed)
	e := envio("1")
	e.Variables = map[string]string{"n": "16384"}
	if r, err := personalize(t, s, e); err != nil || r.Text != "0" {
		t.Errorf("sorting 16384: %+v %v", r, err)
	}
	e.Variables = map[string]string{"n": "16385"}
	if _, err := personalize(t, s, e); !errors.Is(err, scripting.ErrLimit) {
		t.Errorf("sorting 16385: err = %v, want ErrLimit", err)
	}
}

// TestIsolation_ConstantTopLevelKept: a script whose top level only defines
// functions and constants runs it once per state; after every call the
// environment is put back exactly. Whatever a call does to its globals, the
// next one sees the pristine set.
func TestIsolation_ConstantTopLevelKept(t *testing.T) {
	src := `
local PREFIX = "p"
local function helper() return PREFIX end
function shared() return "s" end
function personalize(e)
  local names = {}
  for k, v in pairs(_G) do names[#names + 1] = tostring(k) .. ":" .. type(v) end
  table.sort(names)
  local result = table.concat(names, ",") .. "|" .. helper() .. shared()
  local mode = e.variables.mode
  if mode == "add" then newglobal = {1} end
  if mode == "many" then for i = 1, 200 do _G["g" .. e.id .. i] = i end end
  if mode == "self" then personalize = function() return "hijacked" end end
  if mode == "helper" then shared = function() return "hijacked" end end
  if mode == "G" then _G = nil end
  if mode == "delete" then shared = nil end
  if mode == "arr" then _G[1] = true end
  if mode == "fail" then error("boom") end
  return result
end`
	s := mustCompile(t, src, scripting.Limits{Timeout: 30 * time.Second, PoolSize: 1})
	want := "_G:table,personalize:function,shared:function|ps"
	for i, mode := range []string{"none", "add", "many", "self", "helper", "G", "delete", "arr", "fail", "many", "none"} {
		e := envio(fmt.Sprint("e", i))
		e.Variables = map[string]string{"mode": mode}
		r, err := s.Personalize(context.Background(), e)
		if mode == "fail" {
			if err == nil {
				t.Fatal("mode fail: no error")
			}
		} else if err != nil || r.Text != want {
			t.Fatalf("mode %s: %q %v, want %q", mode, r.Text, err, want)
		}
		e.Variables = map[string]string{"mode": "none"}
		if got := mustText(t, s, e); got != want {
			t.Fatalf("after mode %s the next call saw %q, want %q", mode, got, want)
		}
	}
	if m := s.Metrics(); m.StatesCreated > 3 {
		t.Errorf("states created %d: the kept environment should survive most calls", m.StatesCreated)
	}
}

func TestBuiltinEdgeCases(t *testing.T) {
	for expr, want := range map[string]string{
		`string.rep("x", 0/0)`:                   "",
		`string.rep("x", -5)`:                    "",
		`select("#", unpack({1, 2, 3}))`:         "3",
		`#string.format("%5.2s|%-3d", "abc", 7)`: "9",
	} {
		if got := eval(t, expr, envio("1")); got != want {
			t.Errorf("%s = %q, want %q", expr, got, want)
		}
	}
	for _, expr := range []string{`unpack({}, -2^62, 2^62)`, `unpack({}, 1, 1e9)`} {
		s := mustCompile(t, "function personalize(e) return tostring(select('#', "+expr+")) end", relaxed)
		if _, err := personalize(t, s, envio("1")); !errors.Is(err, scripting.ErrLimit) {
			t.Errorf("%s: err = %v, want ErrLimit", expr, err)
		}
	}
}

// TestIsolation_KeptTopLevelCapturingG: a constant top level may capture _G
// and library values in locals; writes through the captured _G are undone
// after each call like any other global.
func TestIsolation_KeptTopLevelCapturingG(t *testing.T) {
	s := mustCompile(t, `
local G, upper, render = _G, string.upper, lm.render
function personalize(e)
  local before = tostring(G.mark) .. tostring(rawequal(G, _G))
  G.mark = e.id
  G.personalize = nil
  return before .. upper(render("{{x}}", {x = "a"}))
end`, scripting.Limits{Timeout: 30 * time.Second, PoolSize: 1})
	for i := 0; i < 5; i++ {
		if got := mustText(t, s, envio(fmt.Sprint(i))); got != "niltrueA" {
			t.Fatalf("call %d saw %q, want niltrueA", i, got)
		}
	}
	if m := s.Metrics(); m.StatesCreated != 1 {
		t.Errorf("states created: %d, want 1 (the kept environment restored each time)", m.StatesCreated)
	}
}

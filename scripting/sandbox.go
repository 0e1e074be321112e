package scripting

import (
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// library is the read-only world every call sees: the safe globals, the
// string/table/math/lm modules behind read-only proxies, and the locked
// metatable of strings. It is built once per process and shared by every
// state of every Script: nothing in it can be written by a script (proxies
// refuse writes, metatables are protected, rawset/setfenv/debug do not
// exist), so sharing it leaks nothing between calls or campaigns.
type library struct {
	globals    *lua.LTable    // __index of every call's environment
	envMeta    *lua.LTable    // metatable of every call's environment
	stringMeta *lua.LTable    // metatable of the string type
	cat        *lua.LFunction // the bounded '..' (see rewrite.go)
	runHook    *lua.LFunction // runHook, as a Lua value
	plain      []string       // names the plain (benchmark) sandbox removes from the stock globals
}

var (
	libOnce sync.Once
	lib     *library
)

// sharedLibrary returns the process-wide library.
func sharedLibrary() *library {
	libOnce.Do(func() { lib = buildLibrary() })
	return lib
}

// Globals a script can use, taken from gopher-lua's base library as is.
// Left out on purpose: collectgarbage, dofile, getfenv, setfenv, load,
// loadfile, loadstring, module, require, newproxy, print, _printregs,
// rawget, rawset (they would bypass the read-only proxies), _G (each call
// gets its own), coroutine, debug, io, os, package, channel.
var safeBase = []string{
	"assert", "error", "ipairs", "next", "pairs", "pcall", "select",
	"tonumber", "tostring", "type", "xpcall", "rawequal", "getmetatable", "_VERSION",
}

var safeString = []string{"char", "len", "lower", "upper", "reverse", "sub"}
var safeTable = []string{"insert", "remove", "getn", "maxn"}

func openStock(L *lua.LState) {
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
}

func buildLibrary() *library {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	openStock(L)
	stock := L.G.Global
	stockString := stock.RawGetString("string").(*lua.LTable)
	stockTable := stock.RawGetString("table").(*lua.LTable)
	stockMath := stock.RawGetString("math").(*lua.LTable)
	gfn := func(t *lua.LTable, name string) lua.LGFunction {
		return t.RawGetString(name).(*lua.LFunction).GFunction
	}

	globals := L.NewTable()
	for _, name := range safeBase {
		globals.RawSetString(name, stock.RawGetString(name))
	}
	origSetmetatable := gfn(stock, "setmetatable")
	globals.RawSetString("setmetatable", L.NewFunction(func(L *lua.LState) int {
		L.CheckTable(1) // Lua 5.1: tables only; gopher-lua would set the shared metatable of numbers, functions...
		return origSetmetatable(L)
	}))
	origUnpack := gfn(stock, "unpack")
	globals.RawSetString("unpack", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		i, j := L.OptInt(2, 1), L.OptInt(3, t.Len())
		if j >= i && (j-i >= maxResults || j-i < 0) { // j-i < 0: overflow
			raiseLimit(L, "too many results to unpack (%d, limit %d)", j-i+1, maxResults)
		}
		return origUnpack(L)
	}))

	str := L.NewTable()
	for _, name := range safeString {
		str.RawSetString(name, stock.RawGetString("string").(*lua.LTable).RawGetString(name))
	}
	origByte := gfn(stockString, "byte")
	str.RawSetString("byte", L.NewFunction(func(L *lua.LState) int {
		s := L.CheckString(1)
		i, j := posrelat(L.OptInt(2, 1), len(s)), posrelat(L.OptInt(3, L.OptInt(2, 1)), len(s))
		if j-i >= maxResults {
			raiseLimit(L, "string slice too long (%d, limit %d)", j-i+1, maxResults)
		}
		return origByte(L)
	}))
	for name, fn := range map[string]lua.LGFunction{
		"rep": strRep, "format": strFormat, "find": strFind, "match": strMatch,
		"gmatch": strGmatch, "gsub": strGsub,
	} {
		str.RawSetString(name, L.NewFunction(fn))
	}

	tbl := L.NewTable()
	for _, name := range safeTable {
		tbl.RawSetString(name, stockTable.RawGetString(name))
	}
	tbl.RawSetString("concat", L.NewFunction(tableConcat))
	origSort := gfn(stockTable, "sort")
	tbl.RawSetString("sort", L.NewFunction(func(L *lua.LState) int {
		if n := L.CheckTable(1).Len(); n > maxSort {
			raiseLimit(L, "table too large to sort (%d elements, limit %d)", n, maxSort)
		}
		return origSort(L)
	}))

	mth := L.NewTable()
	stockMath.ForEach(func(k, v lua.LValue) { mth.RawSet(k, v) })
	mth.RawSetString("random", L.NewFunction(mathRandom))
	mth.RawSetString("randomseed", L.NewFunction(mathRandomseed))

	globals.RawSetString("string", readOnly(L, "string", str))
	globals.RawSetString("table", readOnly(L, "table", tbl))
	globals.RawSetString("math", readOnly(L, "math", mth))
	globals.RawSetString("lm", readOnly(L, "lm", newLM(L)))

	stringMeta := L.NewTable()
	stringMeta.RawSetString("__index", str)
	stringMeta.RawSetString("__metatable", lua.LFalse)

	envMeta := L.NewTable()
	envMeta.RawSetString("__index", globals)
	envMeta.RawSetString("__metatable", lua.LFalse)

	return &library{
		globals:    globals,
		envMeta:    envMeta,
		stringMeta: stringMeta,
		cat:        L.NewFunction(luaConcat),
		runHook:    L.NewFunction(runHook),
		plain: []string{"collectgarbage", "dofile", "getfenv", "setfenv", "load", "loadfile",
			"loadstring", "module", "require", "newproxy", "print", "_printregs", "rawget", "rawset"},
	}
}

// runHook(chunk, env, cat, hook, arg) runs the script's top level (unless
// chunk is nil: see state.kept), then the global function named hook with
// arg, and returns its result: one protected call per hook call instead of
// two. A missing hook is reported through the state (noHook), not as a Lua
// error.
func runHook(L *lua.LState) int {
	env := L.Get(2).(*lua.LTable)
	if chunk, ok := L.Get(1).(*lua.LFunction); ok {
		L.Push(chunk)
		L.Push(L.Get(3))
		L.Call(1, 0)
		if st := stateOf(L); st.keepable {
			st.keep(env)
		}
	}
	name := string(L.Get(4).(lua.LString))
	if name == hookMain {
		return 0
	}
	h, ok := env.RawGetString(name).(*lua.LFunction)
	if !ok {
		stateOf(L).noHook = true
		return 0
	}
	L.Push(h)
	L.Push(L.Get(5))
	L.Call(1, 1)
	return 1
}

// readOnly returns an empty table whose reads go to t and whose writes fail.
func readOnly(L *lua.LState, name string, t *lua.LTable) *lua.LTable {
	mt := L.NewTable()
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("%s is read-only", name)
		return 0
	}))
	mt.RawSetString("__metatable", lua.LFalse)
	p := L.CreateTable(0, 0)
	p.Metatable = mt
	return p
}

// newEnv returns a fresh global environment for one call: writes stay in it,
// reads fall through to the shared library.
func (lib *library) newEnv(L *lua.LState) *lua.LTable {
	env := L.CreateTable(0, 4)
	env.Metatable = lib.envMeta
	env.RawSetString("_G", env)
	return env
}

// newPlainState is the baseline the benchmarks compare against: the stock
// gopher-lua libraries (unbounded builtins, writable modules, shared string
// metatable) minus the obviously dangerous globals, one global table for the
// life of the state, the chunk run once. It is not used to run scripts.
func newPlainState(lim *Limits) *state {
	st := newState(lim, sharedLibrary())
	L := st.L
	openStock(L)
	for _, name := range sharedLibrary().plain {
		L.SetGlobal(name, lua.LNil)
	}
	L.SetGlobal("lm", newLM(L))
	return st
}

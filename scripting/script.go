package scripting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

const hookMain = "main"

// Script is a compiled operator script. It is safe for concurrent use: each
// call takes a Lua state from the Script's pool, gives it a fresh global
// environment, runs the script's top level and then the hook.
type Script struct {
	name    string
	version string
	proto   *lua.FunctionProto
	hooks   map[string]bool
	lim     Limits
	lib     *library
	pool    *pool
	fresh   bool // tests and benchmarks: a new state per call, no pool
	// constTop: the top level only defines functions and constants (see
	// constantTopLevel), so a state runs it once and keeps the result.
	constTop bool

	stats   map[string]*hookCounters
	created atomic.Int64
	dropped atomic.Int64
	stuck   atomic.Int64
}

type hookCounters struct {
	calls, errors, timeout, memory, limit, output, canceled atomic.Int64
}

// HookMetrics counts the calls of one hook. Errors counts every failed call;
// the other fields break it down (a plain Lua error is in Errors only).
type HookMetrics struct {
	Calls, Errors                            int64
	Timeout, Memory, Limit, Output, Canceled int64
}

// Metrics is a snapshot of a Script's counters: the engine exports them per
// campaign (one Script per campaign), e.g. script error rate =
// Hooks["personalize"].Errors / Hooks["personalize"].Calls.
type Metrics struct {
	Hooks           map[string]HookMetrics
	StatesCreated   int64 // Lua states made (pool misses)
	StatesDiscarded int64 // states thrown away after a failed call
	// Stuck counts calls still running a second after their limit stopped
	// them: it should stay 0 (every builtin checks for cancellation); if it
	// grows, a script found a path that does not, and holds a goroutine.
	Stuck int64
}

// Compile parses and compiles source with DefaultLimits. See CompileWith.
func Compile(name, source string) (*Script, error) {
	return CompileWith(name, source, Limits{})
}

// CompileWith parses and compiles source once; the compiled prototype is
// shared by every call. It then runs the top level once, in the sandbox, to
// find the hooks the script defines.
//
// It returns a *SyntaxError (with the line) when the source does not parse,
// and a *RuntimeError with Hook "main" when the top level fails, a hook name
// is bound to something that is not a function, or no hook is defined
// (errors.Is(err, ErrNoHook)).
func CompileWith(name, source string, lim Limits) (s *Script, err error) {
	lim = lim.withDefaults()
	if len(source) > lim.MaxSource {
		return nil, &SyntaxError{Script: name, Msg: fmt.Sprintf("script is %d bytes, limit %d", len(source), lim.MaxSource)}
	}
	if !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\n") {
		return nil, fmt.Errorf("scripting: invalid script name %q", name)
	}
	proto, err := compileProto(name, source, lim.MaxString, true)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(source))
	s = &Script{
		name:    name,
		version: hex.EncodeToString(sum[:]),
		proto:   proto,
		hooks:   map[string]bool{},
		lim:     lim,
		lib:     sharedLibrary(),
		stats:   map[string]*hookCounters{},
	}
	for _, h := range append([]string{hookMain}, Hooks...) {
		s.stats[h] = &hookCounters{}
	}
	s.pool = newPool(&s.lim, s.lib, &s.stuck)
	s.constTop = constantTopLevel(proto)

	err = s.run(context.Background(), hookMain, callInput{now: time.Now()}, nil, func(env *lua.LTable) error {
		// runs before the environment is recycled
		for _, h := range Hooks {
			switch v := env.RawGetString(h).(type) {
			case *lua.LFunction:
				s.hooks[h] = true
			case *lua.LNilType:
			default:
				return &RuntimeError{Script: name, Hook: hookMain, Cause: ErrOutput, Field: h,
					Msg: fmt.Sprintf("%s must be a function, got %s", h, v.Type().String())}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(s.hooks) == 0 {
		return nil, &RuntimeError{Script: name, Hook: hookMain, Cause: ErrNoHook,
			Msg: "the script defines no hook: want a global function personalize, throttle or on_reply"}
	}
	return s, nil
}

// compileProto parses source and compiles it, rewriting '..' when sandboxed.
func compileProto(name, source string, maxString int, sandboxed bool) (proto *lua.FunctionProto, err error) {
	defer func() {
		if r := recover(); r != nil { // gopher-lua's parser and compiler panic on some inputs
			proto, err = nil, &SyntaxError{Script: name, Msg: fmt.Sprint(r)}
		}
	}()
	chunk, err := parse.Parse(strings.NewReader(source), name)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			line := pe.Pos.Line
			msg := pe.Message
			atEOF := line == parse.EOF
			if atEOF {
				line = strings.Count(source, "\n") + 1
				msg += " at end of file"
			} else if pe.Pos.Column == 0 && line > 1 && strings.HasPrefix(msg, "unterminated") {
				line-- // the scanner has already read the newline that ends the string
			}
			if !atEOF && pe.Token != "" {
				msg = fmt.Sprintf("%s near '%s'", msg, pe.Token)
			}
			return nil, &SyntaxError{Script: name, Line: line, Msg: msg}
		}
		return nil, &SyntaxError{Script: name, Msg: err.Error()}
	}
	if sandboxed {
		chunk, err = rewriteChunk(chunk, maxString)
		if err != nil {
			var de *depthError
			errors.As(err, &de)
			return nil, &SyntaxError{Script: name, Line: de.line, Msg: err.Error()}
		}
	}
	proto, err = lua.Compile(chunk, name)
	if err != nil {
		var ce *lua.CompileError
		if errors.As(err, &ce) {
			line := ce.Line
			// "no visible label 'x' for <goto> at line 2": the goto's line is the useful one
			if _, after, ok := strings.Cut(ce.Message, " at line "); ok {
				if n, err := strconv.Atoi(after); err == nil {
					line = n
				}
			}
			return nil, &SyntaxError{Script: name, Line: line, Msg: ce.Message}
		}
		return nil, &SyntaxError{Script: name, Msg: err.Error()}
	}
	return proto, nil
}

// Name returns the name given to Compile.
func (s *Script) Name() string { return s.name }

// Version identifies the source: the hex SHA-256 of it. Record it with each
// envío the script rendered.
func (s *Script) Version() string { return s.version }

// HasHook reports whether the script defines the hook ("personalize",
// "throttle", "on_reply").
func (s *Script) HasHook(name string) bool { return s.hooks[name] }

// Limits returns the limits the script runs under.
func (s *Script) Limits() Limits { return s.lim }

// Metrics returns a snapshot of the script's counters.
func (s *Script) Metrics() Metrics {
	m := Metrics{Hooks: map[string]HookMetrics{}, StatesCreated: s.created.Load(), StatesDiscarded: s.dropped.Load(), Stuck: s.stuck.Load()}
	for _, h := range Hooks {
		c := s.stats[h]
		m.Hooks[h] = HookMetrics{
			Calls: c.calls.Load(), Errors: c.errors.Load(), Timeout: c.timeout.Load(), Memory: c.memory.Load(),
			Limit: c.limit.Load(), Output: c.output.Load(), Canceled: c.canceled.Load(),
		}
	}
	return m
}

// Close releases the idle Lua states. Calls made afterwards still work (they
// make new states).
func (s *Script) Close() { s.pool.close() }

// callInput is what the helpers need to know about one call.
type callInput struct {
	seed1, seed2 uint64
	now          time.Time
	zone         string
	check        func(*state) // after a successful call, before the state goes back to the pool
}

// seedOf derives the two PCG seeds of a call from its identifying parts with
// FNV-1a (64 bit), written out to avoid allocating; the second hash starts
// from a different prefix.
func seedOf(parts ...string) (uint64, uint64) {
	const offset, prime = 14695981039346656037, 1099511628211
	h1, h2 := uint64(offset), uint64(offset)
	for i := 0; i < len("lm-seed-2"); i++ {
		h2 = (h2 ^ uint64("lm-seed-2"[i])) * prime
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h1 = (h1 ^ uint64(p[i])) * prime
			h2 = (h2 ^ uint64(p[i])) * prime
		}
		h1 *= prime // a 0 byte between parts
		h2 *= prime
	}
	return h1, h2
}

func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// Personalize runs personalize(envio) and returns the text to send, or a
// skip. The same Envio (ID, Telefono, Campana, Now and the rest; Attempt is
// not part of the random seed) gives the same Result in any process.
//
// Errors are *RuntimeError: ErrNoHook, ErrTimeout, ErrMemory, ErrLimit,
// ErrOutput (wrong return shape, empty or invalid UTF-8 text, text longer
// than MaxText), a plain Lua error (Cause nil), or ctx's error.
func (s *Script) Personalize(ctx context.Context, e Envio) (Result, error) {
	var res Result
	size := len(e.ID) + len(e.Telefono) + len(e.Nombre) + len(e.Campana) + len(e.Plantilla) + len(e.TimeZone)
	for k, v := range e.Variables {
		size += len(k) + len(v)
	}
	if err := s.checkInput(HookPersonalize, size); err != nil {
		return res, err
	}
	in := callInput{now: nowOr(e.Now), zone: e.TimeZone}
	in.seed1, in.seed2 = seedOf("envio", e.Campana, e.ID, e.Telefono)
	in.check = func(st *state) { st.checkEnvio(e) }
	err := s.run(ctx, HookPersonalize, in, func(L *lua.LState) lua.LValue {
		return stateOf(L).envioTable(e)
	}, func(ret lua.LValue) error {
		var err error
		res, err = s.readResult(ret)
		return err
	})
	return res, err
}

// Throttle runs throttle(stats). A script returning nil leaves the rate as it
// is (the zero ThrottleDecision). Errors are as for Personalize.
func (s *Script) Throttle(ctx context.Context, st Stats) (ThrottleDecision, error) {
	var dec ThrottleDecision
	in := callInput{now: nowOr(st.Now), zone: st.TimeZone}
	in.seed1, in.seed2 = seedOf("throttle", st.Campana, strconv.FormatInt(in.now.Unix(), 10))
	err := s.run(ctx, HookThrottle, in, func(L *lua.LState) lua.LValue {
		t := L.CreateTable(0, 20)
		t.RawSetString("campana", lua.LString(st.Campana))
		t.RawSetString("sent_today", lua.LNumber(st.SentToday))
		t.RawSetString("sent_last_hour", lua.LNumber(st.SentLastHour))
		t.RawSetString("error_streak", lua.LNumber(st.ErrorStreak))
		t.RawSetString("cupo", lua.LNumber(st.Cupo))
		t.RawSetString("disponible", lua.LNumber(st.Disponible))
		t.RawSetString("zona", lua.LString(st.TimeZone))
		setTimeFields(t, stateOf(L).clock())
		return t
	}, func(ret lua.LValue) error {
		var err error
		dec, err = s.readThrottle(ret, in.now)
		return err
	})
	return dec, err
}

// OnReply runs on_reply(msg) for a message received from a recipient. A
// script returning nil does nothing (the zero ReplyAction). Errors are as for
// Personalize.
func (s *Script) OnReply(ctx context.Context, r Reply) (ReplyAction, error) {
	var act ReplyAction
	size := len(r.Telefono) + len(r.Nombre) + len(r.Texto) + len(r.Campana) + len(r.EnvioID) + len(r.TimeZone)
	if err := s.checkInput(HookOnReply, size); err != nil {
		return act, err
	}
	in := callInput{now: nowOr(r.Now), zone: r.TimeZone}
	in.seed1, in.seed2 = seedOf("reply", r.Campana, r.Telefono, r.Texto)
	err := s.run(ctx, HookOnReply, in, func(L *lua.LState) lua.LValue {
		t := L.CreateTable(0, 6)
		t.RawSetString("telefono", lua.LString(r.Telefono))
		t.RawSetString("nombre", lua.LString(r.Nombre))
		t.RawSetString("texto", lua.LString(r.Texto))
		t.RawSetString("campana", lua.LString(r.Campana))
		t.RawSetString("envio", lua.LString(r.EnvioID))
		t.RawSetString("zona", lua.LString(r.TimeZone))
		return t
	}, func(ret lua.LValue) error {
		var err error
		act, err = s.readReply(ret)
		return err
	})
	return act, err
}

// checkInput refuses inputs larger than MaxString: builtins such as
// string.upper work on a whole string at once, uninterruptibly, so no string
// a script sees may be larger than what it could build itself.
func (s *Script) checkInput(hook string, size int) error {
	if size <= s.lim.MaxString {
		return nil
	}
	c := s.stats[hook]
	c.calls.Add(1)
	err := &RuntimeError{Script: s.name, Hook: hook, Cause: ErrLimit,
		Msg: fmt.Sprintf("input of %d bytes, limit %d", size, s.lim.MaxString)}
	s.count(c, err)
	return err
}

// run is the one call path. push builds the hook's argument; read validates
// what the hook returned (after the state is disarmed: read only uses raw
// access, so no script code runs outside the limits). For hookMain, onEnv
// receives the environment after the top level ran.
func (s *Script) run(ctx context.Context, hook string, in callInput, push func(*lua.LState) lua.LValue,
	read any) (err error) {
	c := s.stats[hook]
	c.calls.Add(1)
	defer func() {
		if err != nil {
			s.count(c, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return &RuntimeError{Script: s.name, Hook: hook, Msg: err.Error(), Cause: context.Cause(ctx)}
	}

	var st *state
	fresh := true
	if s.fresh {
		st = newState(&s.lim, s.lib)
		st.stuck = &s.stuck
	} else {
		st, fresh = s.pool.get()
	}
	if fresh {
		s.created.Add(1)
	}
	st.pcg.Seed(in.seed1, in.seed2)
	st.now, st.zone, st.loc = in.now, in.zone, nil

	L := st.L
	st.begin(ctx, s.lim.Timeout)
	var env *lua.LTable
	var chunk lua.LValue = lua.LNil
	if st.kept != nil {
		env = st.kept // a constant top level already ran on this state
	} else {
		env = st.takeEnv(s.lib)
		fn := L.NewFunctionFromProto(s.proto)
		fn.Env = env
		chunk = fn
		st.keepable = s.constTop
	}
	var arg lua.LValue = lua.LNil
	if push != nil {
		arg = push(L)
	}
	st.noHook = false
	var lerr error
	if chunk == lua.LNil && hook != hookMain {
		// the top level already ran: call the hook directly
		if h, ok := env.RawGetString(hook).(*lua.LFunction); ok {
			L.Push(h)
			L.Push(arg)
			lerr = L.PCall(1, 1, nil)
		} else {
			st.noHook = true
			L.Push(lua.LNil)
		}
	} else {
		// one protected call runs the top level and then the hook (see runHook)
		L.Push(s.lib.runHook)
		L.Push(chunk)
		L.Push(env)
		L.Push(s.lib.cat)
		L.Push(lua.LString(hook))
		L.Push(arg)
		lerr = L.PCall(5, 1, nil)
	}
	var ret lua.LValue = lua.LNil
	if lerr == nil {
		ret = L.Get(-1)
	}
	noHook := st.noHook && hook != hookMain
	cause := st.end()
	L.SetTop(0)

	if cause != nil || lerr != nil {
		rerr := s.luaError(hook, st, lerr, cause)
		s.dropped.Add(1)
		st.close()
		return rerr
	}
	// Read the output before the state can serve another call: ret may be
	// one of the state's reused tables.
	var outErr error
	switch r := read.(type) {
	case func(lua.LValue) error:
		if noHook {
			outErr = &RuntimeError{Script: s.name, Hook: hook, Cause: ErrNoHook, Msg: "the script does not define " + hook}
		} else {
			outErr = r(ret)
		}
	case func(*lua.LTable) error:
		outErr = r(env)
	}
	if s.fresh {
		st.close()
		return outErr
	}
	if in.check != nil {
		in.check(st)
	}
	if st.kept != nil {
		st.restoreKept()
	} else {
		st.recycleEnv(env)
	}
	s.pool.put(st)
	return outErr
}

func (s *Script) count(c *hookCounters, err error) {
	c.errors.Add(1)
	switch {
	case errors.Is(err, ErrTimeout):
		c.timeout.Add(1)
	case errors.Is(err, ErrMemory):
		c.memory.Add(1)
	case errors.Is(err, ErrLimit):
		c.limit.Add(1)
	case errors.Is(err, ErrOutput):
		c.output.Add(1)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		c.canceled.Add(1)
	}
}

const maxErrMsg = 512

// luaError turns a failed call into a *RuntimeError without evaluating any
// script value: only strings and numbers are formatted.
func (s *Script) luaError(hook string, st *state, lerr error, cause error) *RuntimeError {
	re := &RuntimeError{Script: s.name, Hook: hook, Cause: cause}
	var msg, trace string
	if ae, ok := lerr.(*lua.ApiError); ok {
		trace = ae.StackTrace
		switch obj := ae.Object.(type) {
		case lua.LString:
			msg = string(obj)
		case lua.LNumber:
			msg = obj.String()
		case nil:
			msg = "error"
		default:
			msg = fmt.Sprintf("error object is a %s value", obj.Type().String())
		}
	} else if lerr != nil {
		msg = lerr.Error()
	}
	re.Line, msg = s.splitWhere(msg)
	if re.Line == 0 {
		re.Line = s.lineFromTrace(trace)
	}
	if cause != nil {
		msg = cause.Error()
		switch {
		case errors.Is(cause, ErrTimeout):
			msg = fmt.Sprintf("%s (%v)", msg, s.lim.Timeout)
		case errors.Is(cause, ErrMemory):
			msg = fmt.Sprintf("%s (heap grew more than %d MiB during the call)", msg, s.lim.MaxMemory>>20)
		}
	} else if st.limitMsg != "" && strings.Contains(msg, st.limitMsg) ||
		strings.HasSuffix(msg, "stack overflow") || strings.Contains(msg, "registry overflow") {
		re.Cause = ErrLimit
	}
	if len(msg) > maxErrMsg {
		msg = msg[:maxErrMsg] + "…"
	}
	re.Msg = strings.ToValidUTF8(msg, "\uFFFD")
	return re
}

// splitWhere removes a "name:line: " prefix and returns the line.
func (s *Script) splitWhere(msg string) (int, string) {
	rest, ok := strings.CutPrefix(msg, s.name+":")
	if !ok {
		return 0, msg
	}
	num, after, ok := strings.Cut(rest, ":")
	line, err := strconv.Atoi(num)
	if !ok || err != nil {
		return 0, msg
	}
	return line, strings.TrimPrefix(after, " ")
}

// lineFromTrace finds the innermost script line in a gopher-lua traceback.
func (s *Script) lineFromTrace(trace string) int {
	for _, l := range strings.Split(trace, "\n") {
		if line, _ := s.splitWhere(strings.TrimSpace(l)); line > 0 {
			return line
		}
	}
	return 0
}

func (s *Script) outputErr(hook, field, format string, args ...any) error {
	return &RuntimeError{Script: s.name, Hook: hook, Field: field, Cause: ErrOutput, Msg: fmt.Sprintf(format, args...)}
}

func typeName(v lua.LValue) string { return v.Type().String() }

// fields checks that t has only string keys from allowed (and few of them).
func (s *Script) fields(hook string, t *lua.LTable, allowed ...string) error {
	n := 0
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		n++
		ks, ok := k.(lua.LString)
		if !ok {
			return s.outputErr(hook, "", "returned table has a %s key; want only the fields %s", typeName(k), strings.Join(allowed, ", "))
		}
		known := false
		for _, a := range allowed {
			known = known || string(ks) == a
		}
		if !known {
			name := string(ks)
			if len(name) > 40 || !utf8.ValidString(name) {
				name = strconv.Quote(name[:min(len(name), 40)])
			}
			return s.outputErr(hook, name, "unknown field %q in returned table; want only %s", name, strings.Join(allowed, ", "))
		}
		if n > len(allowed) {
			break
		}
	}
	return nil
}

func (s *Script) optString(hook string, t *lua.LTable, field string) (string, error) {
	switch v := t.RawGetString(field).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(v), nil
	default:
		return "", s.outputErr(hook, field, "field %s must be a string, got %s", field, typeName(v))
	}
}

func (s *Script) optBool(hook string, t *lua.LTable, field string) (bool, error) {
	switch v := t.RawGetString(field).(type) {
	case *lua.LNilType:
		return false, nil
	case lua.LBool:
		return bool(v), nil
	default:
		return false, s.outputErr(hook, field, "field %s must be a boolean, got %s", field, typeName(v))
	}
}

func (s *Script) optNumber(hook string, t *lua.LTable, field string) (float64, bool, error) {
	switch v := t.RawGetString(field).(type) {
	case *lua.LNilType:
		return 0, false, nil
	case lua.LNumber:
		f := float64(v)
		if f != f || f < 0 || f > 1e12 {
			return 0, false, s.outputErr(hook, field, "field %s must be a number between 0 and 1e12, got %v", field, f)
		}
		return f, true, nil
	default:
		return 0, false, s.outputErr(hook, field, "field %s must be a number, got %s", field, typeName(v))
	}
}

func (s *Script) checkText(hook, field, text string) error {
	switch {
	case strings.TrimSpace(text) == "":
		return s.outputErr(hook, field, "returned an empty text")
	case len(text) > s.lim.MaxText:
		return s.outputErr(hook, field, "returned a text of %d bytes, limit %d", len(text), s.lim.MaxText)
	case !utf8.ValidString(text):
		return s.outputErr(hook, field, "returned a text that is not valid UTF-8")
	}
	return nil
}

func (s *Script) readResult(ret lua.LValue) (Result, error) {
	const h = HookPersonalize
	switch v := ret.(type) {
	case lua.LString:
		if err := s.checkText(h, "", string(v)); err != nil {
			return Result{}, err
		}
		return Result{Text: string(v)}, nil
	case *lua.LTable:
		if err := s.fields(h, v, "text", "skip", "reason"); err != nil {
			return Result{}, err
		}
		skip, err := s.optBool(h, v, "skip")
		if err != nil {
			return Result{}, err
		}
		reason, err := s.optString(h, v, "reason")
		if err != nil {
			return Result{}, err
		}
		if len(reason) > 200 || !utf8.ValidString(reason) {
			return Result{}, s.outputErr(h, "reason", "field reason must be valid UTF-8 of at most 200 bytes")
		}
		text, err := s.optString(h, v, "text")
		if err != nil {
			return Result{}, err
		}
		if skip {
			return Result{Skip: true, Reason: reason}, nil
		}
		if v.RawGetString("text") == lua.LNil {
			return Result{}, s.outputErr(h, "text", "returned a table without text; want {text=...} or {skip=true, reason=...}")
		}
		if err := s.checkText(h, "text", text); err != nil {
			return Result{}, err
		}
		return Result{Text: text, Reason: reason}, nil
	default:
		return Result{}, s.outputErr(h, "", "returned a %s; want a string, {text=...} or {skip=true, reason=...}", typeName(ret))
	}
}

func (s *Script) readThrottle(ret lua.LValue, now time.Time) (ThrottleDecision, error) {
	const h = HookThrottle
	var d ThrottleDecision
	switch v := ret.(type) {
	case *lua.LNilType:
		return d, nil
	case *lua.LTable:
		if err := s.fields(h, v, "delay", "pause", "pause_until", "skip", "reason"); err != nil {
			return d, err
		}
		delay, _, err := s.optNumber(h, v, "delay")
		if err != nil {
			return d, err
		}
		if delay > 7*24*3600 {
			return d, s.outputErr(h, "delay", "field delay is %v seconds, more than a week", delay)
		}
		d.Delay = time.Duration(delay * float64(time.Second))
		pause, hasPause, err := s.optNumber(h, v, "pause")
		if err != nil {
			return d, err
		}
		until, hasUntil, err := s.optNumber(h, v, "pause_until")
		if err != nil {
			return d, err
		}
		switch {
		case hasPause && hasUntil:
			return d, s.outputErr(h, "pause", "set pause (seconds) or pause_until (Unix time), not both")
		case hasPause:
			d.PauseUntil = now.Add(time.Duration(pause * float64(time.Second)))
		case hasUntil:
			d.PauseUntil = time.Unix(int64(until), 0)
		}
		if d.Skip, err = s.optBool(h, v, "skip"); err != nil {
			return d, err
		}
		if d.Reason, err = s.optString(h, v, "reason"); err != nil {
			return d, err
		}
		if len(d.Reason) > 200 || !utf8.ValidString(d.Reason) {
			return ThrottleDecision{}, s.outputErr(h, "reason", "field reason must be valid UTF-8 of at most 200 bytes")
		}
		return d, nil
	default:
		return d, s.outputErr(h, "", "returned a %s; want nil or {delay=, pause=, pause_until=, skip=, reason=}", typeName(ret))
	}
}

func (s *Script) readReply(ret lua.LValue) (ReplyAction, error) {
	const h = HookOnReply
	var a ReplyAction
	switch v := ret.(type) {
	case *lua.LNilType:
		return a, nil
	case *lua.LTable:
		if err := s.fields(h, v, "optout", "tag", "tags", "reason"); err != nil {
			return a, err
		}
		var err error
		if a.OptOut, err = s.optBool(h, v, "optout"); err != nil {
			return a, err
		}
		if a.Reason, err = s.optString(h, v, "reason"); err != nil {
			return a, err
		}
		tag, err := s.optString(h, v, "tag")
		if err != nil {
			return a, err
		}
		if tag != "" {
			a.Tags = append(a.Tags, tag)
		}
		switch tags := v.RawGetString("tags").(type) {
		case *lua.LNilType:
		case *lua.LTable:
			n := tags.Len()
			if n > 32 {
				return ReplyAction{}, s.outputErr(h, "tags", "field tags has %d entries, limit 32", n)
			}
			for i := 1; i <= n; i++ {
				t, ok := tags.RawGetInt(i).(lua.LString)
				if !ok {
					return ReplyAction{}, s.outputErr(h, "tags", "tags[%d] must be a string, got %s", i, typeName(tags.RawGetInt(i)))
				}
				a.Tags = append(a.Tags, string(t))
			}
		default:
			return ReplyAction{}, s.outputErr(h, "tags", "field tags must be a list of strings, got %s", typeName(tags))
		}
		for _, t := range a.Tags {
			if t == "" || len(t) > 64 || !utf8.ValidString(t) {
				return ReplyAction{}, s.outputErr(h, "tags", "a tag must be valid UTF-8 of 1 to 64 bytes")
			}
		}
		if len(a.Reason) > 200 || !utf8.ValidString(a.Reason) {
			return ReplyAction{}, s.outputErr(h, "reason", "field reason must be valid UTF-8 of at most 200 bytes")
		}
		return a, nil
	default:
		return a, s.outputErr(h, "", "returned a %s; want nil or {optout=, tag=, tags=, reason=}", typeName(ret))
	}
}

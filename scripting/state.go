package scripting

import (
	"context"
	"math/rand/v2"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// tick is how often a running call is checked against its deadline, its
// caller's context and the memory bound. Calls shorter than one tick are
// never looked at: their only cost is arming and stopping a timer.
const tick = time.Millisecond

const heapMetric = "/memory/classes/heap/objects:bytes"

// state is one pooled Lua state. It is its own context.Context: gopher-lua
// checks Done() between VM instructions and the bounded builtins check it in
// their loops. Done is closed at most once, when a call breaks a limit or its
// caller's context ends; the state is then discarded, never reused.
//
// A state is used by one goroutine at a time; mu guards the fields the timer
// callback shares with that goroutine.
type state struct {
	L    *lua.LState
	lim  *Limits
	done chan struct{}

	mu       sync.Mutex
	stuck    *atomic.Int64 // the Script's counter of calls that ignored cancellation
	grace    time.Duration // stuckGrace, but for tests
	active   bool
	cause    error
	parent   context.Context
	deadline time.Time
	heapBase uint64
	timer    *time.Timer
	sample   []metrics.Sample

	// Per-call inputs of the helper module; touched only by the goroutine
	// that runs the call.
	pcg      *rand.PCG
	rng      *rand.Rand
	now      time.Time
	zone     string
	loc      *time.Location
	limitMsg string // message of the last limit error raised by a builtin
	// scratch space of lm.spintax, reused between calls
	spinMark, spinStack []int32
	noHook              bool // runHook found no such hook

	// The envío table and its variables, reused by the next call on this
	// state when checkEnvio finds them exactly as envioTable built them.
	envioT, varsT *lua.LTable
	varsN         int    // keys of varsT
	varsLast      string // the key inserted last into varsT

	env      *lua.LTable // an emptied global environment for the next call
	envDirty int         // names cleared from env (or kept) since it was made

	// A constant top level (Script.constTop) runs once per state: kept is
	// the environment it produced and keptVals what it held right after the
	// top level ran; restoreKept puts it back after every call.
	keepable bool
	kept     *lua.LTable
	keptVals []keptGlobal
}

type keptGlobal struct {
	name  string
	value lua.LValue
}

// keep records env right after a constant top level ran in it.
func (st *state) keep(env *lua.LTable) {
	st.keepable = false
	if env.Len() != 0 {
		return
	}
	var vals []keptGlobal
	for k, v := env.Next(lua.LNil); k != lua.LNil; k, v = env.Next(k) {
		ks, ok := k.(lua.LString)
		if !ok || len(vals) == maxEnvKeys {
			return
		}
		vals = append(vals, keptGlobal{string(ks), v})
	}
	st.kept, st.keptVals, st.envDirty = env, vals, 0
}

// restoreKept puts the kept environment back as the top level left it:
// globals the call added are removed, changed ones restored. If that cannot
// be done exactly, the state forgets it and the next call runs the top
// level again in a new environment.
func (st *state) restoreKept() {
	env := st.kept
	st.kept = nil
	if env.Len() != 0 {
		return
	}
	var extra [maxEnvKeys]string
	n, seen, same := 0, 0, 0
	for k, v := env.Next(lua.LNil); k != lua.LNil; k, v = env.Next(k) {
		ks, ok := k.(lua.LString)
		if !ok {
			return
		}
		i := slices.IndexFunc(st.keptVals, func(g keptGlobal) bool { return g.name == string(ks) })
		switch {
		case i < 0:
			if n == maxEnvKeys {
				return
			}
			extra[n] = string(ks)
			n++
		case st.keptVals[i].value == v:
			same++
		}
		if seen++; seen > 2*maxEnvKeys {
			return
		}
	}
	if n == 0 && same == len(st.keptVals) {
		st.kept = env // untouched: the usual case
		return
	}
	if st.envDirty += n; st.envDirty > 4*maxEnvKeys {
		st.envDirty = 0
		return
	}
	for _, name := range extra[:n] {
		env.RawSetString(name, lua.LNil)
	}
	for _, g := range st.keptVals {
		if env.RawGetString(g.name) != g.value {
			env.RawSetString(g.name, g.value)
		}
	}
	count := 0
	for k, _ := env.Next(lua.LNil); k != lua.LNil; k, _ = env.Next(k) {
		count++
	}
	if count != len(st.keptVals) {
		return
	}
	st.kept = env
}

// maxEnvKeys bounds the keys an environment may have had to be reused:
// gopher-lua never forgets a key once set, so a script inventing new global
// names on every call would otherwise grow it forever.
const maxEnvKeys = 64

// takeEnv returns an empty environment for a call: the previous call's,
// emptied by recycleEnv, or a new one.
func (st *state) takeEnv(lib *library) *lua.LTable {
	env := st.env
	st.env = nil
	if env == nil {
		st.envDirty = 0
		return lib.newEnv(st.L)
	}
	return env
}

// recycleEnv empties the environment of a call that is over, for the next
// call on this state, or drops it. Nothing of the call can run again: its
// closures are unreachable once the call returned (the stack is reset and
// the output was converted to Go values).
func (st *state) recycleEnv(env *lua.LTable) {
	if env.Len() != 0 {
		return
	}
	var names [maxEnvKeys]string
	n := 0
	for k, _ := env.Next(lua.LNil); k != lua.LNil; k, _ = env.Next(k) {
		ks, ok := k.(lua.LString)
		if !ok || n == maxEnvKeys {
			return
		}
		names[n] = string(ks)
		n++
	}
	// gopher-lua never forgets a key, even set to nil: bound what the
	// reused environment accumulates over calls.
	if st.envDirty += n; st.envDirty > 4*maxEnvKeys {
		st.envDirty = 0
		return
	}
	for _, name := range names[:n] {
		env.RawSetString(name, lua.LNil)
	}
	if k, _ := env.Next(lua.LNil); k != lua.LNil {
		return // not empty after all: do not reuse
	}
	env.RawSetString("_G", env)
	st.env = env
}

const envioFieldCount = 8

func newState(lim *Limits, lib *library) *state {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:    true,
		CallStackSize:   lim.CallStack,
		RegistrySize:    1024,
		RegistryMaxSize: lim.Registry,
	})
	L.SetMetatable(lua.LString(""), lib.stringMeta)
	st := &state{
		L:      L,
		lim:    lim,
		done:   make(chan struct{}),
		sample: []metrics.Sample{{Name: heapMetric}},
		grace:  stuckGrace,
		pcg:    rand.NewPCG(1, 2),
	}
	st.rng = rand.New(st.pcg)
	st.timer = time.AfterFunc(time.Hour, st.tick)
	st.timer.Stop()
	L.SetContext(st)
	return st
}

// close releases the state. It must not be running a call.
func (st *state) close() {
	st.timer.Stop()
	st.L.Close()
}

// begin arms the limits for one call.
func (st *state) begin(parent context.Context, timeout time.Duration) {
	st.mu.Lock()
	st.active = true
	st.parent = parent
	st.deadline = time.Now().Add(timeout)
	st.heapBase = 0
	st.timer.Reset(min(tick, timeout))
	st.mu.Unlock()
	st.limitMsg = ""
}

// end disarms the limits and reports why the call was cancelled, if it was.
func (st *state) end() error {
	st.mu.Lock()
	st.active = false
	st.timer.Stop()
	st.parent = nil
	cause := st.cause
	st.mu.Unlock()
	return cause
}

// tick runs on the timer's goroutine while a call lasts longer than a tick.
func (st *state) tick() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.active {
		return
	}
	if st.cause != nil {
		// Still running a grace period after it was stopped: something
		// did not check for cancellation. Count it, so it shows.
		if st.stuck != nil {
			st.stuck.Add(1)
		}
		return
	}
	if err := st.parent.Err(); err != nil {
		st.cancelLocked(context.Cause(st.parent))
		return
	}
	now := time.Now()
	if !now.Before(st.deadline) {
		st.cancelLocked(ErrTimeout)
		return
	}
	metrics.Read(st.sample)
	if st.sample[0].Value.Kind() == metrics.KindUint64 {
		heap := st.sample[0].Value.Uint64()
		switch {
		case st.heapBase == 0:
			st.heapBase = heap
		case heap > st.heapBase && heap-st.heapBase > uint64(st.lim.MaxMemory):
			st.cancelLocked(ErrMemory)
			return
		}
	}
	st.timer.Reset(min(tick, st.deadline.Sub(now)))
}

func (st *state) cancelLocked(cause error) {
	st.cause = cause
	close(st.done)
	st.timer.Reset(st.grace)
}

// stuckGrace is how long a stopped call may take to notice; a call still
// running after it is counted in Metrics.Stuck.
const stuckGrace = time.Second

// interrupted returns the cancellation cause once the call has been stopped.
// Long-running builtins call it in their loops.
func (st *state) interrupted() error {
	select {
	case <-st.done:
		return st.Err()
	default:
		return nil
	}
}

// Deadline implements context.Context.
func (st *state) Deadline() (time.Time, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.deadline, st.active
}

// Done implements context.Context.
func (st *state) Done() <-chan struct{} { return st.done }

// Err implements context.Context: the cause once Done is closed.
func (st *state) Err() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.cause
}

// Value implements context.Context; a state carries no values.
func (st *state) Value(any) any { return nil }

// stateOf returns the pooled state running L.
func stateOf(L *lua.LState) *state { return L.Context().(*state) }

// clock returns the call's time in the call's time zone.
func (st *state) clock() time.Time {
	if st.now.IsZero() {
		st.now = time.Now()
	}
	if st.loc == nil {
		st.loc = loadZone(st.zone)
	}
	return st.now.In(st.loc)
}

// envioTable returns the table personalize receives. Building a table costs
// gopher-lua three allocations per key, so the previous call's table is
// refilled in place when it has the same keys. A script cannot keep a
// reference to it across calls (each call has a fresh environment), and
// checkEnvio drops it if the script changed it in any way.
func (st *state) envioTable(e Envio) *lua.LTable {
	L := st.L
	vars := st.varsT
	if vars != nil && len(e.Variables) == st.varsN {
		for k := range e.Variables {
			if vars.RawGetString(k) == lua.LNil {
				vars = nil
				break
			}
		}
	} else {
		vars = nil
	}
	if vars == nil {
		vars = L.CreateTable(0, len(e.Variables))
		st.varsLast = ""
		for k := range e.Variables {
			st.varsLast = k // gopher-lua keeps keys in insertion order
			vars.RawSetString(k, lua.LString(e.Variables[k]))
		}
		st.varsN = len(e.Variables)
	} else {
		for k, v := range e.Variables {
			setString(vars, k, v)
		}
	}
	t := st.envioT
	if t == nil {
		t = L.CreateTable(0, envioFieldCount)
	}
	setString(t, "id", e.ID)
	setString(t, "telefono", e.Telefono)
	setString(t, "nombre", e.Nombre)
	if t.RawGetString("variables") != vars {
		t.RawSetString("variables", vars)
	}
	setString(t, "campana", e.Campana)
	setString(t, "plantilla", e.Plantilla)
	if t.RawGetString("attempt") != lua.LNumber(e.Attempt) {
		t.RawSetString("attempt", lua.LNumber(e.Attempt))
	}
	setString(t, "zona", e.TimeZone) // last: see checkEnvio
	st.envioT, st.varsT = t, vars
	return t
}

// setString sets t[k] = v unless it already holds v (a set costs gopher-lua
// an allocation and two map operations; most fields repeat between envíos).
func setString(t *lua.LTable, k, v string) {
	if cur, ok := t.RawGetString(k).(lua.LString); ok && string(cur) == v {
		return
	}
	t.RawSetString(k, lua.LString(v))
}

// checkEnvio keeps the envío tables for the next call only if they hold
// exactly what envioTable put in them: no metatable, no array part, the
// same values under the same keys, and no key after the last one inserted
// (gopher-lua appends new keys to an ordered list that Next walks).
func (st *state) checkEnvio(e Envio) {
	t, vars := st.envioT, st.varsT
	st.envioT, st.varsT = nil, nil
	if t == nil || vars == nil || t.Metatable != lua.LNil || vars.Metatable != lua.LNil || t.Len() != 0 || vars.Len() != 0 {
		return
	}
	if t.RawGetString("id") != lua.LString(e.ID) ||
		t.RawGetString("telefono") != lua.LString(e.Telefono) ||
		t.RawGetString("nombre") != lua.LString(e.Nombre) ||
		t.RawGetString("variables") != vars ||
		t.RawGetString("campana") != lua.LString(e.Campana) ||
		t.RawGetString("plantilla") != lua.LString(e.Plantilla) ||
		t.RawGetString("attempt") != lua.LNumber(e.Attempt) ||
		t.RawGetString("zona") != lua.LString(e.TimeZone) {
		return
	}
	if k, _ := t.Next(lua.LString("zona")); k != lua.LNil {
		return
	}
	if len(e.Variables) != st.varsN {
		return
	}
	for k, v := range e.Variables {
		if vars.RawGetString(k) != lua.LString(v) {
			return
		}
	}
	if len(e.Variables) == 0 {
		if k, _ := vars.Next(lua.LNil); k != lua.LNil {
			return
		}
	} else if k, _ := vars.Next(lua.LString(st.varsLast)); k != lua.LNil {
		return
	}
	st.envioT, st.varsT = t, vars
}

// pool keeps idle states of one Script. Get never blocks: when the pool is
// empty a new state is made.
type pool struct {
	lim   *Limits
	lib   *library
	idle  chan *state
	stuck *atomic.Int64
}

func newPool(lim *Limits, lib *library, stuck *atomic.Int64) *pool {
	return &pool{lim: lim, lib: lib, idle: make(chan *state, lim.PoolSize), stuck: stuck}
}

func (p *pool) get() (st *state, fresh bool) {
	select {
	case st = <-p.idle:
		return st, false
	default:
		st = newState(p.lim, p.lib)
		st.stuck = p.stuck
		return st, true
	}
}

func (p *pool) put(st *state) {
	select {
	case p.idle <- st:
	default:
		st.close()
	}
}

func (p *pool) close() {
	for {
		select {
		case st := <-p.idle:
			st.close()
		default:
			return
		}
	}
}

var zones sync.Map // name -> *time.Location

// loadZone returns the named IANA zone, UTC for "" or an unknown name
// (Compile-time validation is the engine's job: see ValidZone).
func loadZone(name string) *time.Location {
	if name == "" || name == "UTC" {
		return time.UTC
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC // not cached: names come from operators' input
	}
	zones.Store(name, l)
	return l
}

// ValidZone reports whether name is a time zone the helpers understand.
func ValidZone(name string) bool {
	if name == "" {
		return true
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

package scripting

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Bounds of builtins that gopher-lua leaves unbounded. Each replacement below
// either checks its output size before allocating or checks the call's
// cancellation in its loop, so no single builtin call can allocate more than
// Limits.MaxString or run past the deadline by more than a few microseconds.
const (
	maxResults    = 8000     // values unpack/string.byte may push (Lua 5.1's LUAI_MAXCSTACK)
	maxSort       = 1 << 14  // elements table.sort accepts (with the default comparison it is not interruptible)
	patternBudget = 50 << 20 // matcher steps per builtin call, a backstop behind the deadline
)

// raiseLimit fails the call with a limit error (classified as ErrLimit).
func raiseLimit(L *lua.LState, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	stateOf(L).limitMsg = msg
	L.RaiseError("%s", msg)
}

func maxString(L *lua.LState) int { return stateOf(L).lim.MaxString }

// builder accumulates a string and fails the call past MaxString.
type builder struct {
	L   *lua.LState
	max int
	who string
	b   strings.Builder
}

func newBuilder(L *lua.LState, who string) builder {
	return builder{L: L, max: maxString(L), who: who}
}

func (b *builder) grow(n int) {
	if b.b.Len()+n > b.max {
		raiseLimit(b.L, "%s: result too long (more than %d bytes)", b.who, b.max)
	}
}

func (b *builder) WriteString(s string) { b.grow(len(s)); b.b.WriteString(s) }
func (b *builder) AddByte(c byte)       { b.grow(1); b.b.WriteByte(c) }
func (b *builder) String() string       { return b.b.String() }

// posrelat converts a relative string position (negative means from the end).
func posrelat(pos, n int) int {
	if pos < 0 {
		pos += n + 1
	}
	if pos < 0 {
		return 0
	}
	return pos
}

// toStr returns the string value of a string or number, as Lua coerces them.
func toStr(v lua.LValue) (string, bool) {
	switch v := v.(type) {
	case lua.LString:
		return string(v), true
	case lua.LNumber:
		return v.String(), true
	}
	return "", false
}

// luaConcat implements the '..' operator (see rewrite.go): all operands at
// once, right to left for metamethods as Lua does, and never longer than
// MaxString.
func luaConcat(L *lua.LState) int {
	n := L.GetTop()
	total, simple := 0, true
	for i := 1; i <= n; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			total += len(v)
		case lua.LNumber:
			total += 24
		default:
			simple = false
		}
	}
	max := maxString(L)
	if simple {
		if total > max {
			// numbers were estimated; measure exactly before failing
			total = 0
			for i := 1; i <= n; i++ {
				s, _ := toStr(L.Get(i))
				total += len(s)
			}
			if total > max {
				raiseLimit(L, "string too long for '..' (%d bytes, limit %d)", total, max)
			}
		}
		var b strings.Builder
		b.Grow(total)
		for i := 1; i <= n; i++ {
			s, _ := toStr(L.Get(i))
			b.WriteString(s)
		}
		L.Push(lua.LString(b.String()))
		return 1
	}
	acc := L.Get(n)
	for i := n - 1; i >= 1; i-- {
		a := L.Get(i)
		as, aok := toStr(a)
		bs, bok := toStr(acc)
		if aok && bok {
			if len(as)+len(bs) > max {
				raiseLimit(L, "string too long for '..' (%d bytes, limit %d)", len(as)+len(bs), max)
			}
			acc = lua.LString(as + bs)
			continue
		}
		mm := L.GetMetaField(a, "__concat")
		if mm == lua.LNil {
			mm = L.GetMetaField(acc, "__concat")
		}
		if mm == lua.LNil {
			bad := a
			if aok {
				bad = acc
			}
			L.RaiseError("attempt to concatenate a %s value", bad.Type().String())
		}
		L.Push(mm)
		L.Push(a)
		L.Push(acc)
		L.Call(2, 1)
		acc = L.Get(-1)
		L.Pop(1)
	}
	L.Push(acc)
	return 1
}

func strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := float64(L.CheckNumber(2))
	if !(n >= 1) || len(s) == 0 { // also NaN

		L.Push(lua.LString(""))
		return 1
	}
	if max := maxString(L); n*float64(len(s)) > float64(max) {
		raiseLimit(L, "string.rep: result too long (%.0f bytes, limit %d)", n*float64(len(s)), max)
	}
	L.Push(lua.LString(strings.Repeat(s, int(n))))
	return 1
}

func tableConcat(L *lua.LState) int {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	i := L.OptInt(3, 1)
	j := L.OptInt(4, t.Len())
	b := newBuilder(L, "table.concat")
	for k := i; k <= j; k++ {
		s, ok := toStr(t.RawGetInt(k))
		if !ok {
			L.RaiseError("invalid value (at index %d) in table for 'concat'", k)
		}
		b.WriteString(s)
		if k < j {
			b.WriteString(sep)
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// strFormat is Lua 5.1's string.format: widths and precisions of at most two
// digits, and an output no longer than MaxString.
func strFormat(L *lua.LState) int {
	f := L.CheckString(1)
	b := newBuilder(L, "string.format")
	arg := 1
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			b.AddByte(c)
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			b.AddByte('%')
			continue
		}
		// scan the spec: flags, width (2 digits), precision (2 digits)
		start := i
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		if i-start > 5 {
			L.RaiseError("invalid format (repeated flags)")
		}
		for k := 0; k < 2 && i < len(f) && isdigit(f[i]); k++ {
			i++
		}
		hasPrec := false
		if i < len(f) && f[i] == '.' {
			hasPrec = true
			i++
			for k := 0; k < 2 && i < len(f) && isdigit(f[i]); k++ {
				i++
			}
		}
		if i < len(f) && isdigit(f[i]) {
			L.RaiseError("invalid format (width or precision too long)")
		}
		if i >= len(f) {
			L.RaiseError("invalid option '%%' to 'format'")
		}
		spec := f[start:i]
		arg++
		switch conv := f[i]; conv {
		case 'c':
			b.AddByte(byte(int(L.CheckNumber(arg))))
		case 'd', 'i':
			b.WriteString(fmt.Sprintf("%"+spec+"d", int64(L.CheckNumber(arg))))
		case 'o', 'u', 'x', 'X':
			v := uint64(int64(L.CheckNumber(arg)))
			verb := string(conv)
			if conv == 'u' {
				verb = "d"
			}
			b.WriteString(fmt.Sprintf("%"+spec+verb, v))
		case 'e', 'E', 'f', 'g', 'G':
			if (conv == 'g' || conv == 'G') && !hasPrec {
				spec += ".6" // C's default; Go's %g would print the shortest form
			}
			b.WriteString(fmt.Sprintf("%"+spec+string(conv), float64(L.CheckNumber(arg))))
		case 'q':
			writeQuoted(&b, L.CheckString(arg))
		case 's':
			var s string
			if v, ok := toStr(L.Get(arg)); ok {
				s = v
			} else {
				L.CheckAny(arg)
				s = L.ToStringMeta(L.Get(arg)).String()
			}
			b.WriteString(padString(s, spec))
		default:
			L.RaiseError("invalid option '%%%c' to 'format'", conv)
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// padString applies a %s spec ("-10.3") byte-wise, as C does.
func padString(s, spec string) string {
	left := strings.Contains(spec, "-")
	spec = strings.TrimLeft(spec, "-+ #0")
	width, prec := spec, ""
	if k := strings.IndexByte(spec, '.'); k >= 0 {
		width, prec = spec[:k], spec[k+1:]
		p, _ := strconv.Atoi(prec)
		if p < len(s) {
			s = s[:p]
		}
	}
	w, _ := strconv.Atoi(width)
	if pad := w - len(s); pad > 0 {
		if left {
			return s + strings.Repeat(" ", pad)
		}
		return strings.Repeat(" ", pad) + s
	}
	return s
}

func writeQuoted(b *builder, s string) {
	b.AddByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '\n':
			b.AddByte('\\')
			b.AddByte(c)
		case '\r':
			b.WriteString("\\r")
		case 0:
			b.WriteString("\\000")
		default:
			b.AddByte(c)
		}
	}
	b.AddByte('"')
}

func newMatcher(L *lua.LState, src, pat string) *matcher {
	st := stateOf(L)
	return &matcher{src: src, pat: pat, budget: patternBudget, check: st.interrupted}
}

// raisePattern turns a matcher failure into a Lua error.
func raisePattern(L *lua.LState, err error) {
	if pe, ok := err.(*patternError); ok && pe.cause == nil && strings.HasPrefix(pe.msg, "pattern too complex") {
		raiseLimit(L, "%s", pe.msg)
	}
	L.RaiseError("%s", err.Error())
}

func pushCaptures(L *lua.LState, caps []captureValue) int {
	for _, c := range caps {
		if c.isPos {
			L.Push(lua.LNumber(c.pos))
		} else {
			L.Push(lua.LString(c.s))
		}
	}
	return len(caps)
}

func strFindAux(L *lua.LState, find bool) int {
	s := L.CheckString(1)
	p := L.CheckString(2)
	init := posrelat(L.OptInt(3, 1), len(s)) - 1
	if init < 0 {
		init = 0
	} else if init > len(s) {
		init = len(s)
	}
	if find && (L.ToBool(4) || !strings.ContainsAny(p, patSpecials)) {
		if k := strings.Index(s[init:], p); k >= 0 {
			L.Push(lua.LNumber(init + k + 1))
			L.Push(lua.LNumber(init + k + len(p)))
			return 2
		}
		L.Push(lua.LNil)
		return 1
	}
	m := newMatcher(L, s, p)
	start, end := -1, -1
	var caps []captureValue
	if err := m.run(func() {
		start, end = m.find(init)
		if start >= 0 {
			caps = m.captures(start, end, !find)
		}
	}); err != nil {
		raisePattern(L, err)
	}
	if start < 0 {
		L.Push(lua.LNil)
		return 1
	}
	if find {
		L.Push(lua.LNumber(start + 1))
		L.Push(lua.LNumber(end))
		return 2 + pushCaptures(L, caps)
	}
	return pushCaptures(L, caps)
}

func strFind(L *lua.LState) int  { return strFindAux(L, true) }
func strMatch(L *lua.LState) int { return strFindAux(L, false) }

func strGmatch(L *lua.LState) int {
	s := L.CheckString(1)
	p := L.CheckString(2)
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		m := newMatcher(L, s, p)
		var caps []captureValue
		found := false
		if err := m.run(func() {
			for src := pos; src <= len(s); src++ {
				m.level = 0
				if e := m.match(src, 0); e != -1 {
					pos = e
					if e == src {
						pos++ // empty match: advance at least one position
					}
					caps = m.captures(src, e, true)
					found = true
					return
				}
			}
			pos = len(s) + 1
		}); err != nil {
			raisePattern(L, err)
		}
		if !found {
			return 0
		}
		return pushCaptures(L, caps)
	}))
	return 1
}

// strGsub is Lua 5.1's string.gsub: linear (the output is built once), bounded
// by MaxString, interruptible.
func strGsub(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	repl := L.Get(3)
	switch repl.Type() {
	case lua.LTNumber, lua.LTString, lua.LTFunction, lua.LTTable:
	default:
		L.ArgError(3, "string/function/table expected")
	}
	maxN := L.OptInt(4, len(src)+1)
	p := 0
	anchor := len(pat) > 0 && pat[0] == '^'
	if anchor {
		p = 1
	}
	m := newMatcher(L, src, pat)
	b := newBuilder(L, "string.gsub")
	n, s := 0, 0
	if err := m.run(func() {
		for n < maxN {
			m.level = 0
			e := m.match(s, p)
			if e != -1 {
				n++
				gsubAdd(L, m, &b, repl, s, e)
			}
			if e != -1 && e > s {
				s = e
			} else if s < len(src) {
				b.AddByte(src[s])
				s++
			} else {
				break
			}
			if anchor {
				break
			}
		}
	}); err != nil {
		raisePattern(L, err)
	}
	if s < len(src) {
		b.WriteString(src[s:])
	}
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(n))
	return 2
}

func gsubAdd(L *lua.LState, m *matcher, b *builder, repl lua.LValue, s, e int) {
	var v lua.LValue
	switch r := repl.(type) {
	case lua.LString, lua.LNumber:
		news, _ := toStr(r)
		for i := 0; i < len(news); i++ {
			c := news[i]
			if c != patEsc {
				b.AddByte(c)
				continue
			}
			i++
			if i >= len(news) {
				L.RaiseError("invalid use of '%%' in replacement string")
			}
			switch d := news[i]; {
			case !isdigit(d):
				b.AddByte(d)
			case d == '0':
				b.WriteString(m.src[s:e])
			default:
				c := m.getCapture(int(d-'1'), s, e)
				if c.isPos {
					b.WriteString(strconv.Itoa(c.pos))
				} else {
					b.WriteString(c.s)
				}
			}
		}
		return
	case *lua.LFunction:
		L.Push(r)
		n := pushCaptures(L, m.captures(s, e, true))
		L.Call(n, 1)
		v = L.Get(-1)
		L.Pop(1)
	case *lua.LTable:
		c := m.getCapture(0, s, e)
		var key lua.LValue = lua.LString(c.s)
		if c.isPos {
			key = lua.LNumber(c.pos)
		}
		v = L.GetTable(r, key)
	}
	if !lua.LVAsBool(v) {
		b.WriteString(m.src[s:e]) // nil or false: keep the original text
		return
	}
	str, ok := toStr(v)
	if !ok {
		L.RaiseError("invalid replacement value (a %s)", v.Type().String())
	}
	b.WriteString(str)
}

// math.random and math.randomseed use the call's own generator, seeded by the
// host from the envío: the same envío draws the same numbers in any process.
func mathRandom(L *lua.LState) int {
	r := stateOf(L).rng
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(r.Float64()))
	case 1:
		m := int64(L.CheckNumber(1))
		if m < 1 {
			L.ArgError(1, "interval is empty")
		}
		L.Push(lua.LNumber(r.Int64N(m) + 1))
	default:
		lo, hi := int64(L.CheckNumber(1)), int64(L.CheckNumber(2))
		if lo > hi {
			L.ArgError(2, "interval is empty")
		}
		span := hi - lo + 1
		if span <= 0 {
			L.ArgError(2, "interval is too large")
		}
		L.Push(lua.LNumber(lo + r.Int64N(span)))
	}
	return 1
}

func mathRandomseed(L *lua.LState) int {
	x := float64(L.CheckNumber(1))
	stateOf(L).pcg.Seed(math.Float64bits(x), 0x9e3779b97f4a7c15)
	return 0
}

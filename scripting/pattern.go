package scripting

// A Lua 5.1 pattern matcher (a port of lstrlib.c's match) with a work budget.
//
// gopher-lua's own matcher (package pm) never checks a context and its only
// limit is a depth limit, so a backtracking pattern such as "(.-)(.-)(.-)b" on
// a long subject spins for seconds. This one counts steps, calls check every
// checkEvery steps (the caller raises the call's cancellation there) and stops
// at a hard step budget and at a recursion depth of maxMatchDepth, as Lua 5.2+
// does ("pattern too complex").

const (
	maxCaptures   = 32
	capUnfinished = -1
	capPosition   = -2
	maxMatchDepth = 200
	checkEvery    = 1 << 12
	patEsc        = '%'
	patSpecials   = "^$*+?.([%-"
)

// patternError is raised (as a panic) by the matcher and turned into a Lua
// error by the builtin that called it.
type patternError struct {
	msg   string
	cause error // the check's error, if that is what stopped the matcher
}

func (e *patternError) Error() string { return e.msg }

type capture struct{ init, len int }

type matcher struct {
	src     string
	pat     string
	level   int
	capture [maxCaptures]capture
	steps   int
	budget  int          // 0: unlimited
	depth   int          // current recursion depth of match
	check   func() error // called every checkEvery steps; an error stops matching
}

func (m *matcher) fail(msg string) { panic(&patternError{msg: msg}) }

func (m *matcher) step() {
	m.steps++
	if m.steps&(checkEvery-1) == 0 {
		if m.budget > 0 && m.steps > m.budget {
			m.fail("pattern too complex (step budget exhausted)")
		}
		if m.check != nil {
			if err := m.check(); err != nil {
				panic(&patternError{msg: err.Error(), cause: err})
			}
		}
	}
}

// pc returns the pattern byte at i, or 0 past the end (C's terminating NUL).
func (m *matcher) pc(i int) byte {
	if i < len(m.pat) {
		return m.pat[i]
	}
	return 0
}

func (m *matcher) sc(i int) byte {
	if i < len(m.src) {
		return m.src[i]
	}
	return 0
}

func (m *matcher) checkCapture(l byte) int {
	i := int(l) - '1'
	if i < 0 || i >= m.level || m.capture[i].len == capUnfinished {
		m.fail("invalid capture index")
	}
	return i
}

func (m *matcher) captureToClose() int {
	for level := m.level - 1; level >= 0; level-- {
		if m.capture[level].len == capUnfinished {
			return level
		}
	}
	m.fail("invalid pattern capture")
	return 0
}

func (m *matcher) classEnd(p int) int {
	c := m.pc(p)
	p++
	switch c {
	case patEsc:
		if p >= len(m.pat) {
			m.fail("malformed pattern (ends with '%')")
		}
		return p + 1
	case '[':
		if m.pc(p) == '^' {
			p++
		}
		for { // look for a ']'
			if p >= len(m.pat) {
				m.fail("malformed pattern (missing ']')")
			}
			c := m.pat[p]
			p++
			if c == patEsc && p < len(m.pat) {
				p++ // skip escapes (e.g. '%]')
			}
			if m.pc(p) == ']' {
				break
			}
		}
		return p + 1
	default:
		return p
	}
}

func isalpha(c byte) bool  { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isdigit(c byte) bool  { return c >= '0' && c <= '9' }
func islower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isupper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isspace(c byte) bool  { return c == ' ' || c >= '\t' && c <= '\r' }
func iscntrl(c byte) bool  { return c < 32 || c == 127 }
func ispunct(c byte) bool  { return c > 32 && c < 127 && !isalpha(c) && !isdigit(c) }
func isxdigit(c byte) bool { return isdigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func matchClass(c, cl byte) bool {
	var res bool
	switch cl | 0x20 { // tolower for letters
	case 'a':
		res = isalpha(c)
	case 'c':
		res = iscntrl(c)
	case 'd':
		res = isdigit(c)
	case 'l':
		res = islower(c)
	case 'p':
		res = ispunct(c)
	case 's':
		res = isspace(c)
	case 'u':
		res = isupper(c)
	case 'w':
		res = isalpha(c) || isdigit(c)
	case 'x':
		res = isxdigit(c)
	case 'z':
		res = c == 0
	default:
		return cl == c
	}
	if !isalpha(cl) {
		return cl == c
	}
	if islower(cl) {
		return res
	}
	return !res
}

// matchBracketClass reports whether c matches the set that starts at p ('[')
// and whose closing ']' is at ec.
func (m *matcher) matchBracketClass(c byte, p, ec int) bool {
	sig := true
	if m.pc(p+1) == '^' {
		sig = false
		p++
	}
	for p++; p < ec; p++ {
		if m.pat[p] == patEsc {
			p++
			if matchClass(c, m.pc(p)) {
				return sig
			}
		} else if m.pc(p+1) == '-' && p+2 < ec {
			p += 2
			if m.pat[p-2] <= c && c <= m.pat[p] {
				return sig
			}
		} else if m.pat[p] == c {
			return sig
		}
	}
	return !sig
}

func (m *matcher) singleMatch(s, p, ep int) bool {
	if s >= len(m.src) {
		return false
	}
	c := m.src[s]
	switch m.pat[p] {
	case '.':
		return true
	case patEsc:
		return matchClass(c, m.pc(p+1))
	case '[':
		return m.matchBracketClass(c, p, ep-1)
	default:
		return m.pat[p] == c
	}
}

func (m *matcher) matchBalance(s, p int) int {
	if p+1 >= len(m.pat) {
		m.fail("unbalanced pattern")
	}
	if s >= len(m.src) || m.src[s] != m.pat[p] {
		return -1
	}
	b, e := m.pat[p], m.pat[p+1]
	cont := 1
	for s++; s < len(m.src); s++ {
		m.step()
		if m.src[s] == e {
			cont--
			if cont == 0 {
				return s + 1
			}
		} else if m.src[s] == b {
			cont++
		}
	}
	return -1
}

func (m *matcher) maxExpand(s, p, ep int) int {
	i := 0
	for m.singleMatch(s+i, p, ep) {
		m.step()
		i++
	}
	for i >= 0 { // try with the maximum repetitions first
		if res := m.match(s+i, ep+1); res != -1 {
			return res
		}
		i--
	}
	return -1
}

func (m *matcher) minExpand(s, p, ep int) int {
	for {
		if res := m.match(s, ep+1); res != -1 {
			return res
		}
		if m.singleMatch(s, p, ep) {
			s++
		} else {
			return -1
		}
	}
}

func (m *matcher) startCapture(s, p, what int) int {
	if m.level >= maxCaptures {
		m.fail("too many captures")
	}
	m.capture[m.level] = capture{init: s, len: what}
	m.level++
	res := m.match(s, p)
	if res == -1 {
		m.level--
	}
	return res
}

func (m *matcher) endCapture(s, p int) int {
	l := m.captureToClose()
	m.capture[l].len = s - m.capture[l].init
	res := m.match(s, p)
	if res == -1 {
		m.capture[l].len = capUnfinished
	}
	return res
}

func (m *matcher) matchCapture(s int, l byte) int {
	i := m.checkCapture(l)
	c := m.capture[i]
	if len(m.src)-s >= c.len && m.src[c.init:c.init+c.len] == m.src[s:s+c.len] {
		return s + c.len
	}
	return -1
}

// match returns the end of the match of pat[p:] at src[s:], or -1.
func (m *matcher) match(s, p int) int {
	m.depth++
	if m.depth > maxMatchDepth {
		m.fail("pattern too complex (nesting)")
	}
	r := m.doMatch(s, p)
	m.depth-- // not on panic: a matcher that failed is not reused
	return r
}

func (m *matcher) doMatch(s, p int) int {
	for {
		m.step()
		if p >= len(m.pat) { // end of pattern
			return s
		}
		switch m.pat[p] {
		case '(':
			if m.pc(p+1) == ')' {
				return m.startCapture(s, p+2, capPosition)
			}
			return m.startCapture(s, p+1, capUnfinished)
		case ')':
			return m.endCapture(s, p+1)
		case '$':
			if p+1 == len(m.pat) {
				if s == len(m.src) {
					return s
				}
				return -1
			}
		case patEsc:
			switch m.pc(p + 1) {
			case 'b':
				s = m.matchBalance(s, p+2)
				if s == -1 {
					return -1
				}
				p += 4
				continue
			case 'f':
				p += 2
				if m.pc(p) != '[' {
					m.fail("missing '[' after '%f' in pattern")
				}
				ep := m.classEnd(p)
				var prev byte
				if s > 0 {
					prev = m.src[s-1]
				}
				if m.matchBracketClass(prev, p, ep-1) || !m.matchBracketClass(m.sc(s), p, ep-1) {
					return -1
				}
				p = ep
				continue
			default:
				if isdigit(m.pc(p + 1)) {
					s = m.matchCapture(s, m.pc(p+1))
					if s == -1 {
						return -1
					}
					p += 2
					continue
				}
			}
		}
		// default: a single pattern item
		ep := m.classEnd(p)
		ok := m.singleMatch(s, p, ep)
		switch m.pc(ep) {
		case '?':
			if ok {
				if res := m.match(s+1, ep+1); res != -1 {
					return res
				}
			}
			p = ep + 1
			continue
		case '*':
			return m.maxExpand(s, p, ep)
		case '+':
			if !ok {
				return -1
			}
			return m.maxExpand(s+1, p, ep)
		case '-':
			return m.minExpand(s, p, ep)
		default:
			if !ok {
				return -1
			}
			s++
			p = ep
		}
	}
}

// captureValue is one capture: a substring or, for "()", a 1-based position.
type captureValue struct {
	s     string
	pos   int
	isPos bool
}

// getCapture returns capture i of the match src[s:e].
func (m *matcher) getCapture(i, s, e int) captureValue {
	if i >= m.level {
		if i == 0 {
			return captureValue{s: m.src[s:e]}
		}
		m.fail("invalid capture index")
	}
	c := m.capture[i]
	switch c.len {
	case capUnfinished:
		m.fail("unfinished capture")
	case capPosition:
		return captureValue{pos: c.init + 1, isPos: true}
	}
	return captureValue{s: m.src[c.init : c.init+c.len]}
}

// captures returns the captures of a match (the whole match when the pattern
// has none and wholeIfNone is set).
func (m *matcher) captures(s, e int, wholeIfNone bool) []captureValue {
	n := m.level
	if n == 0 && wholeIfNone {
		n = 1
	}
	out := make([]captureValue, n)
	for i := range out {
		out[i] = m.getCapture(i, s, e)
	}
	return out
}

// find looks for pat in src from init (0-based). It returns the start and end
// of the first match, or -1, -1. Captures are left in m.
func (m *matcher) find(init int) (start, end int) {
	p := 0
	anchor := m.pc(0) == '^'
	if anchor {
		p = 1
	}
	for s1 := init; ; s1++ {
		m.level = 0
		if e := m.match(s1, p); e != -1 {
			return s1, e
		}
		if s1 >= len(m.src) || anchor {
			return -1, -1
		}
	}
}

// run calls f and turns matcher failures into an error.
func (m *matcher) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*patternError)
			if !ok {
				panic(r) // a Lua error raised by a replacement function: let it unwind
			}
			err = pe
		}
	}()
	f()
	return nil
}

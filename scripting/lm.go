package scripting

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // campaign time zones work on hosts without /usr/share/zoneinfo
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	lua "github.com/yuin/gopher-lua"
)

const (
	maxSpinDepth   = 20
	maxSpinScratch = 64 << 10 // longest text whose spintax scratch space a state keeps
)

// newLM builds the helper module `lm`. Every function reads the call's inputs
// (seeded generator, clock, time zone) from the state running it, so the same
// module table serves every state.
func newLM(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	for name, fn := range map[string]lua.LGFunction{
		"template":   lmTemplate,
		"spintax":    lmSpintax,
		"render":     lmRender,
		"random":     mathRandom,
		"pick":       lmPick,
		"now":        lmNow,
		"hour":       lmHour,
		"date":       lmDate,
		"at":         lmAt,
		"phone":      lmPhone,
		"hash":       lmHash,
		"bucket":     lmBucket,
		"title":      lmTitle,
		"first_name": lmFirstName,
		"normalize":  lmNormalize,
		"words":      lmWords,
		"trim":       lmTrim,
		"split":      lmSplit,
	} {
		t.RawSetString(name, L.NewFunction(fn))
	}
	return t
}

// lookup finds key in vars, then in vars.variables (so an envío table works),
// then the same with the key in lower case. Raw access: no script code runs.
func lookup(vars *lua.LTable, key string) string {
	if vars == nil {
		return ""
	}
	inner, _ := vars.RawGetString("variables").(*lua.LTable)
	get := func(k string) string {
		if s, ok := toStr(vars.RawGetString(k)); ok && s != "" {
			return s
		}
		if inner != nil {
			if s, ok := toStr(inner.RawGetString(k)); ok && s != "" {
				return s
			}
		}
		return ""
	}
	if v := get(key); v != "" {
		return v
	}
	if lower := strings.ToLower(key); lower != key {
		return get(lower)
	}
	return ""
}

// template replaces {{key}} and {{key|default}} with values from vars.
func template(b *builder, s string, vars *lua.LTable) {
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		key, def, _ := strings.Cut(s[i+2:i+2+j], "|")
		v := lookup(vars, strings.TrimSpace(key))
		if v == "" {
			v = strings.TrimSpace(def)
		}
		b.WriteString(v)
		s = s[i+2+j+2:]
	}
	b.WriteString(s)
}

// spinner expands spintax in one string. A linear pre-pass pairs every
// '{' with its '}' (mark), treating {{placeholders}} as opaque, so
// expansion never rescans: the work is linear in the input for each of the
// at most maxSpinDepth nesting levels.
type spinner struct {
	st   *state
	b    *builder
	s    string
	mark []int32 // at a '{': >0 the index of its '}' + 1; <0 a placeholder ending (exclusive) at -mark; 0 unmatched
}

func newSpinner(st *state, b *builder, s string) *spinner {
	sp := &spinner{st: st, b: b, s: s}
	if strings.IndexByte(s, '{') < 0 {
		return sp
	}
	// scratch space kept by the state between calls (not for huge inputs)
	if cap(st.spinMark) >= len(s) {
		sp.mark = st.spinMark[:len(s)]
		clear(sp.mark)
	} else {
		sp.mark = make([]int32, len(s))
		if len(s) <= maxSpinScratch {
			st.spinMark = sp.mark
		}
	}
	stack := st.spinStack[:0]
	defer func() {
		if cap(stack) <= maxSpinScratch {
			st.spinStack = stack[:0]
		}
	}()
	closeAt := -2 // next "}}" at or after the current position; -1: none left
	for k := 0; k < len(s); k++ {
		switch s[k] {
		case '{':
			if k+1 < len(s) && s[k+1] == '{' && closeAt != -1 {
				if closeAt < k+2 {
					if e := strings.Index(s[k+2:], "}}"); e >= 0 {
						closeAt = k + 2 + e
					} else {
						closeAt = -1
					}
				}
				if closeAt >= 0 {
					sp.mark[k] = -int32(closeAt + 2)
					k = closeAt + 1
					continue
				}
			}
			stack = append(stack, int32(k))
		case '}':
			if n := len(stack); n > 0 {
				sp.mark[stack[n-1]] = int32(k + 1)
				stack = stack[:n-1]
			}
		}
	}
	return sp
}

// options calls f with the bounds of each top-level option of the group
// whose braces are at open and close, until f returns false.
func (sp *spinner) options(open, close int, f func(from, to int) bool) int {
	n, from := 0, open+1
	for k := open + 1; k < close; k++ {
		switch sp.s[k] {
		case '{':
			if m := sp.mark[k]; m > 0 {
				k = int(m) - 1
			} else if m < 0 {
				k = int(-m) - 1
			}
		case '|':
			n++
			if !f(from, k) {
				return n
			}
			from = k + 1
		}
	}
	n++
	f(from, close)
	return n
}

// run writes s[from:to] with its groups expanded.
func (sp *spinner) run(from, to, depth int) {
	if depth > maxSpinDepth {
		raiseLimit(sp.st.L, "lm.spintax: groups nested deeper than %d", maxSpinDepth)
	}
	for k := from; k < to; {
		j := strings.IndexByte(sp.s[k:to], '{')
		if j < 0 {
			sp.b.WriteString(sp.s[k:to])
			return
		}
		sp.b.WriteString(sp.s[k : k+j])
		k += j
		m := sp.mark[k]
		switch {
		case m < 0: // {{placeholder}}: left for template
			sp.b.WriteString(sp.s[k:int(-m)])
			k = int(-m)
		case m == 0: // unmatched '{': literal
			sp.b.AddByte('{')
			k++
		default:
			close := int(m) - 1
			count := sp.options(k, close, func(int, int) bool { return true })
			pick, i := sp.st.rng.IntN(count), 0
			sp.options(k, close, func(a, z int) bool {
				if i == pick {
					sp.run(a, z, depth+1)
					return false
				}
				i++
				return true
			})
			k = close + 1
		}
	}
}

// spin expands {a|b|c} groups, choosing with the call's generator. {{...}}
// placeholders are copied untouched for template to fill afterwards, so the
// values of variables are never read as spintax.
func spin(st *state, b *builder, s string) {
	newSpinner(st, b, s).run(0, len(s), 0)
}

func lmTemplate(L *lua.LState) int {
	s := L.CheckString(1)
	vars, _ := L.Get(2).(*lua.LTable)
	b := newBuilder(L, "lm.template")
	template(&b, s, vars)
	L.Push(lua.LString(b.String()))
	return 1
}

func lmSpintax(L *lua.LState) int {
	s := L.CheckString(1)
	b := newBuilder(L, "lm.spintax")
	spin(stateOf(L), &b, s)
	L.Push(lua.LString(b.String()))
	return 1
}

// lmRender is spintax, then template: lm.render(envio.plantilla, envio).
func lmRender(L *lua.LState) int {
	s := L.CheckString(1)
	vars, _ := L.Get(2).(*lua.LTable)
	b := newBuilder(L, "lm.render")
	spin(stateOf(L), &b, s)
	out := newBuilder(L, "lm.render")
	template(&out, b.String(), vars)
	L.Push(lua.LString(out.String()))
	return 1
}

func lmPick(L *lua.LState) int {
	t := L.CheckTable(1)
	n := t.Len()
	if n == 0 {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(t.RawGetInt(1 + stateOf(L).rng.IntN(n)))
	return 1
}

// isoWeekday is 1 for Monday ... 7 for Sunday.
func isoWeekday(t time.Time) int {
	if t.Weekday() == time.Sunday {
		return 7
	}
	return int(t.Weekday())
}

// timeTable is the table lm.now returns and throttle's stats embed.
func setTimeFields(t *lua.LTable, now time.Time) {
	t.RawSetString("year", lua.LNumber(now.Year()))
	t.RawSetString("month", lua.LNumber(now.Month()))
	t.RawSetString("day", lua.LNumber(now.Day()))
	t.RawSetString("hour", lua.LNumber(now.Hour()))
	t.RawSetString("min", lua.LNumber(now.Minute()))
	t.RawSetString("minute", lua.LNumber(now.Minute()))
	t.RawSetString("sec", lua.LNumber(now.Second()))
	t.RawSetString("weekday", lua.LNumber(isoWeekday(now)))
	t.RawSetString("weekend", lua.LBool(isoWeekday(now) >= 6))
	t.RawSetString("yday", lua.LNumber(now.YearDay()))
	t.RawSetString("unix", lua.LNumber(now.Unix()))
	t.RawSetString("date", lua.LString(now.Format("2006-01-02")))
	t.RawSetString("time", lua.LString(now.Format("15:04")))
}

// lmHour returns the hour (0-23) in the campaign's time zone.
func lmHour(L *lua.LState) int {
	L.Push(lua.LNumber(stateOf(L).clock().Hour()))
	return 1
}

func lmNow(L *lua.LState) int {
	t := L.CreateTable(0, 13)
	setTimeFields(t, stateOf(L).clock())
	L.Push(t)
	return 1
}

var (
	diasLargos = []string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}
	diasCortos = []string{"dom", "lun", "mar", "mié", "jue", "vie", "sáb"}
	meses      = []string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio",
		"agosto", "septiembre", "octubre", "noviembre", "diciembre"}
)

// lmDate formats a time (default: now) in the campaign's zone with strftime
// codes: %Y %y %m %d %e %H %I %M %S %p %j %A %a %B %b %%. Names are Spanish.
func lmDate(L *lua.LState) int {
	f := L.OptString(1, "%Y-%m-%d %H:%M")
	st := stateOf(L)
	t := st.clock()
	if L.GetTop() >= 2 {
		t = time.Unix(int64(L.CheckNumber(2)), 0).In(t.Location())
	}
	b := newBuilder(L, "lm.date")
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.AddByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			b.WriteString(strconv.Itoa(t.Year()))
		case 'y':
			b.WriteString(t.Format("06"))
		case 'm':
			b.WriteString(t.Format("01"))
		case 'd':
			b.WriteString(t.Format("02"))
		case 'e':
			b.WriteString(strconv.Itoa(t.Day()))
		case 'H':
			b.WriteString(t.Format("15"))
		case 'I':
			b.WriteString(t.Format("03"))
		case 'M':
			b.WriteString(t.Format("04"))
		case 'S':
			b.WriteString(t.Format("05"))
		case 'p':
			b.WriteString(t.Format("PM"))
		case 'j':
			b.WriteString(t.Format("002"))
		case 'A':
			b.WriteString(diasLargos[t.Weekday()])
		case 'a':
			b.WriteString(diasCortos[t.Weekday()])
		case 'B':
			b.WriteString(meses[t.Month()-1])
		case 'b':
			b.WriteString(meses[t.Month()-1][:3])
		case '%':
			b.AddByte('%')
		default:
			L.ArgError(1, "unknown date code %"+string(f[i]))
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// lmAt returns the Unix time of the next "HH:MM" (strictly after now) in the
// campaign's zone, optionally on a given ISO weekday (1 Monday .. 7 Sunday).
func lmAt(L *lua.LState) int {
	hh, mm, ok := strings.Cut(L.CheckString(1), ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		L.ArgError(1, "want \"HH:MM\"")
	}
	wd := L.OptInt(2, 0)
	if wd < 0 || wd > 7 {
		L.ArgError(2, "weekday must be 1 (Monday) .. 7 (Sunday)")
	}
	now := stateOf(L).clock()
	t := time.Date(now.Year(), now.Month(), now.Day(), h, m, 0, 0, now.Location())
	for i := 0; i < 15 && (!t.After(now) || (wd != 0 && isoWeekday(t) != wd)); i++ {
		t = time.Date(t.Year(), t.Month(), t.Day()+1, h, m, 0, 0, now.Location())
	}
	L.Push(lua.LNumber(t.Unix()))
	return 1
}

// lmPhone formats a phone number: "e164" (default), "international",
// "national", "digits" (E.164 without '+', as wa.me wants). A number without
// '+' needs a region ("MX", "ES" ...). Returns nil and a message when invalid.
func lmPhone(L *lua.LState) int {
	s := L.CheckString(1)
	format := L.OptString(2, "e164")
	region := strings.ToUpper(L.OptString(3, ""))
	if len(s) > 64 {
		L.Push(lua.LNil)
		L.Push(lua.LString("phone number too long"))
		return 2
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		L.Push(lua.LNil)
		L.Push(lua.LString("invalid phone number"))
		return 2
	}
	var out string
	switch format {
	case "e164":
		out = phonenumbers.Format(num, phonenumbers.E164)
	case "international":
		out = phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
	case "national":
		out = phonenumbers.Format(num, phonenumbers.NATIONAL)
	case "digits":
		out = strings.TrimPrefix(phonenumbers.Format(num, phonenumbers.E164), "+")
	default:
		L.ArgError(2, "format must be e164, international, national or digits")
	}
	L.Push(lua.LString(out))
	return 1
}

// lmHash returns the first n (default 16, at most 64) hex digits of SHA-256.
func lmHash(L *lua.LState) int {
	sum := sha256.Sum256([]byte(L.CheckString(1)))
	n := L.OptInt(2, 16)
	if n < 1 || n > 64 {
		L.ArgError(2, "length must be 1..64")
	}
	L.Push(lua.LString(hex.EncodeToString(sum[:])[:n]))
	return 1
}

// lmBucket maps a key to 1..n, stably (A/B splits by phone, for instance).
func lmBucket(L *lua.LState) int {
	sum := sha256.Sum256([]byte(L.CheckString(1)))
	n := L.CheckInt(2)
	if n < 1 {
		L.ArgError(2, "bucket count must be positive")
	}
	L.Push(lua.LNumber(binary.BigEndian.Uint64(sum[:8])%uint64(n) + 1))
	return 1
}

// title capitalizes each word: "maría JOSÉ" -> "María José".
func title(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	start := true
	for _, r := range s {
		if unicode.IsLetter(r) {
			if start {
				b.WriteRune(unicode.ToUpper(r))
			} else {
				b.WriteRune(unicode.ToLower(r))
			}
			start = false
			continue
		}
		start = unicode.IsSpace(r) || r == '-'
		b.WriteRune(r)
	}
	return b.String()
}

func lmTitle(L *lua.LState) int {
	L.Push(lua.LString(title(L.CheckString(1))))
	return 1
}

func lmFirstName(L *lua.LState) int {
	s := strings.TrimLeftFunc(L.CheckString(1), unicode.IsSpace)
	if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		s = s[:i]
	}
	L.Push(lua.LString(title(s)))
	return 1
}

var unaccent = map[rune]rune{
	'á': 'a', 'à': 'a', 'ä': 'a', 'â': 'a', 'ã': 'a', 'å': 'a',
	'é': 'e', 'è': 'e', 'ë': 'e', 'ê': 'e',
	'í': 'i', 'ì': 'i', 'ï': 'i', 'î': 'i',
	'ó': 'o', 'ò': 'o', 'ö': 'o', 'ô': 'o', 'õ': 'o',
	'ú': 'u', 'ù': 'u', 'ü': 'u', 'û': 'u',
	'ñ': 'n', 'ç': 'c',
}

// normalize upper-cases, strips accents, turns everything that is not a
// letter or digit into a single space, and trims: "¡Bája, por favor!" ->
// "BAJA POR FAVOR".
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if r == utf8.RuneError {
			continue
		}
		r = unicode.ToLower(r)
		if u, ok := unaccent[r]; ok {
			r = u
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(unicode.ToUpper(r))
		} else {
			space = true
		}
	}
	return b.String()
}

func lmNormalize(L *lua.LState) int {
	L.Push(lua.LString(normalize(L.CheckString(1))))
	return 1
}

func lmWords(L *lua.LState) int {
	f := strings.Fields(normalize(L.CheckString(1)))
	t := L.CreateTable(len(f), 0)
	for _, w := range f {
		t.Append(lua.LString(w))
	}
	L.Push(t)
	return 1
}

func lmTrim(L *lua.LState) int {
	L.Push(lua.LString(strings.TrimSpace(L.CheckString(1))))
	return 1
}

// lmSplit splits on a plain separator (default ",").
func lmSplit(L *lua.LState) int {
	s := L.CheckString(1)
	sep := L.OptString(2, ",")
	if sep == "" {
		L.ArgError(2, "empty separator")
	}
	if n := strings.Count(s, sep); n >= maxResults*16 {
		raiseLimit(L, "lm.split: too many pieces (%d)", n+1)
	}
	parts := strings.Split(s, sep)
	t := L.CreateTable(len(parts), 0)
	for _, p := range parts {
		t.Append(lua.LString(p))
	}
	L.Push(t)
	return 1
}

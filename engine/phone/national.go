package phone

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// This file answers phonenumbers.ParseToNumber(digits, region) for a string
// of ASCII digits (what scan leaves of a national number) without the
// library's per-call cost.
//
// For such input, most of parseHelper has nothing to do: no RFC 3966 parts,
// no leading or trailing junk, no letters to convert, no plus sign, and no
// extension (every form of extension the library recognizes needs a
// character that is not a digit), yet it runs a large case-insensitive
// regular expression over the string for each of those, builds the
// "^(?:" + pattern + ")" strings of the region's metadata on every call and
// looks them up in a locked cache. The parser below compiles, once, the very
// same expressions from the metadata the library loaded, and evaluates what
// parseHelper does with a string of digits:
//
//  1. Empty input is ErrNotANumber; over 250 characters, ErrNumTooLong; a
//     single digit is not viable (isViablePhoneNumber wants two), so
//     ErrNotANumber. A region the library does not support (or "") is
//     ErrInvalidCountryCode, since there is no plus sign to go by.
//  2. maybeExtractCountryCode, in the default region's metadata:
//     - if the region's international prefix (a pattern, searched in the
//     whole string) matches at its start and the next digit is not a 0
//     (or there is none), the prefix is removed: two digits or fewer left
//     is ErrTooShortAfterIDD; then the first one to three digits must be a
//     calling code the library knows (the shortest that is), else
//     ErrInvalidCountryCode; the rest is the national number;
//     - otherwise, if the digits start with the region's own calling code,
//     the national prefix is stripped (as in 4) from what follows it, and
//     that is the national number, with the region's calling code, when
//     the general pattern of the region rejects the whole string but
//     accepts the stripped one, or when the whole string is too long for
//     the region's possible lengths;
//     - otherwise the calling code is the region's and the national number
//     is the whole string.
//  3. When a calling code was found in the string, the metadata used from
//     here on is that of the calling code's main region (or of its
//     non-geographic entity) unless that main region is the default region.
//     A region that shares a calling code without being its main region
//     ("CA", "AG" for +1, "GG" for +44) so switches to the main region's
//     ("US", "GB") metadata for "1 …" or "011 1 …".
//  4. A national number shorter than 2 is ErrTooShortNSN. Then the national
//     prefix is stripped (maybeStripNationalPrefixAndCarrierCode): when
//     "^(?:" + national prefix for parsing + ")" matches the start, and
//     either there is no transform rule or the last capturing group of the
//     pattern (not the first: the Go port counts the groups and looks at
//     the last one) did not take part in the match, the match is removed;
//     otherwise the match is replaced by the transform rule expanded with
//     the groups (a Go template: "9$1", "$2"). In both cases the result is
//     refused when the number matched the general pattern before and no
//     longer does. The stripped number is kept only when testNumberLength
//     says it is not TOO_SHORT, IS_POSSIBLE_LOCAL_ONLY or INVALID_LENGTH
//     for the general description.
//  5. A national number shorter than 2 is ErrTooShortNSN, longer than 17
//     ErrNumTooLong. Leading zeros become ItalianLeadingZero and, when
//     there is more than one (a national number of zeros only keeps its
//     last one out of the count), NumberOfLeadingZeros.
//
// The parser always answers what the library answers, or leaves the input to
// the library: input with anything but ASCII digits, a region or calling code
// whose metadata is missing something the library would read (it would
// panic) or whose patterns do not compile. The embedded metadata has none.

// parseMeta is what parseHelper reads of one PhoneMetadata.
type parseMeta struct {
	id    string
	cc    int
	ccStr string // strconv.Itoa(cc)
	// idd is the international prefix as the library compiles it (searched
	// anywhere); iddAtStart is "^(?:" + it + ")", which matches exactly when
	// idd's leftmost match starts at 0, and costs nothing when it does not.
	idd, iddAtStart *regexp.Regexp
	// npp is "^(?:" + national prefix for parsing + ")", nil without one.
	npp       *regexp.Regexp
	transform string
	general   *regexp.Regexp // "^(?:" + general pattern + ")$"
	// The general description's possible lengths (in the metadata's order:
	// increasing) and local-only lengths, as testNumberLength reads them.
	possible, localOnly []int32
}

// callingCodeParse is an entry of the library's map from calling codes to
// regions, as parseHelper uses it once a calling code is found.
type callingCodeParse struct {
	main string     // GetRegionCodeForCountryCode
	meta *parseMeta // getMetadataForRegionOrCallingCode(cc, main); may be nil
	// library: meta is not modelled; numbers that reach it are left to
	// phonenumbers.ParseToNumber.
	library bool
}

// nationalParser is the compiled metadata of every supported region and
// calling code. It is read-only once built, and so safe for concurrent use.
type nationalParser struct {
	// regions has every region the library supports; a nil entry is left to
	// the library.
	regions map[string]*parseMeta
	// codes has every calling code of the library's map, including those
	// of non-geographic entities.
	codes map[int]*callingCodeParse
}

var theNationalParser = sync.OnceValue(func() *nationalParser {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		// Not reached: the library panics at init without its metadata.
		return &nationalParser{}
	}
	codeToRegions := make(map[int][]string)
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		codeToRegions[cc] = phonenumbers.GetRegionCodesForCountryCode(cc)
	}
	return buildNationalParser(coll.GetMetadata(), codeToRegions, phonenumbers.GetSupportedRegions())
})

// buildNationalParser compiles the metadata list as the library's container
// holds it (newMetadataContainer: the last entry for an id wins, "001"
// entries are indexed by calling code), with codeToRegions the library's
// map from calling codes to regions and supported its supported regions.
func buildNationalParser(list []*phonenumbers.PhoneMetadata, codeToRegions map[int][]string, supported map[string]bool) *nationalParser {
	byRegion := make(map[string]*phonenumbers.PhoneMetadata)
	nonGeo := make(map[int]*phonenumbers.PhoneMetadata)
	for _, m := range list {
		if m.GetId() == "001" {
			nonGeo[int(m.GetCountryCode())] = m
		} else {
			byRegion[m.GetId()] = m
		}
	}
	p := &nationalParser{
		regions: make(map[string]*parseMeta),
		codes:   make(map[int]*callingCodeParse),
	}
	comp := make(compiler)
	compiled := make(map[*phonenumbers.PhoneMetadata]*parseMeta)
	get := func(m *phonenumbers.PhoneMetadata) *parseMeta {
		if pm, ok := compiled[m]; ok {
			return pm
		}
		pm := comp.parseMeta(m)
		compiled[m] = pm
		return pm
	}
	for id, ok := range supported {
		if !ok || id == "" {
			continue // isValidRegionCode is false: not a region for parsing
		}
		var pm *parseMeta
		if m := byRegion[id]; m != nil {
			pm = get(m)
		}
		p.regions[id] = pm
	}
	for cc, ids := range codeToRegions {
		c := &callingCodeParse{main: "ZZ"}
		if len(ids) > 0 {
			c.main = ids[0]
		}
		var m *phonenumbers.PhoneMetadata
		switch {
		case c.main == "001":
			m = nonGeo[cc]
		case c.main != "" && supported[c.main]:
			m = byRegion[c.main]
		}
		if m != nil {
			c.meta = get(m)
			c.library = c.meta == nil
		}
		p.codes[cc] = c
	}
	return p
}

// parseMeta compiles what parseHelper reads of m; nil when some of it is
// missing (the library would panic) or does not compile.
func (c compiler) parseMeta(m *phonenumbers.PhoneMetadata) *parseMeta {
	g := m.GetGeneralDesc()
	if g == nil || len(g.PossibleLength) == 0 {
		return nil // testNumberLength would index an empty list
	}
	pm := &parseMeta{
		id:        m.GetId(),
		cc:        int(m.GetCountryCode()),
		ccStr:     strconv.Itoa(int(m.GetCountryCode())),
		transform: m.GetNationalPrefixTransformRule(),
		possible:  g.PossibleLength,
		localOnly: g.PossibleLengthLocalOnly,
	}
	ok := true
	compile := func(expr string) *regexp.Regexp {
		re, good := c.compile(expr)
		ok = ok && good
		return re
	}
	idd := m.GetInternationalPrefix()
	pm.idd = compile(idd)
	pm.iddAtStart = compile("^(?:" + idd + ")")
	if npp := m.GetNationalPrefixForParsing(); npp != "" {
		pm.npp = compile("^(?:" + npp + ")")
	}
	pm.general = compile("^(?:" + g.GetNationalNumberPattern() + ")$")
	if !ok {
		return nil
	}
	return pm
}

// lengthResult is testNumberLength(number, metadata, UNKNOWN) for a number
// of l digits: the general description's lengths.
func (m *parseMeta) lengthResult(l int) phonenumbers.ValidationResult {
	if m.possible[0] == -1 {
		return phonenumbers.INVALID_LENGTH
	}
	for _, x := range m.localOnly {
		if int(x) == l {
			return phonenumbers.IS_POSSIBLE_LOCAL_ONLY
		}
	}
	switch first := int(m.possible[0]); {
	case first == l:
		return phonenumbers.IS_POSSIBLE
	case first > l:
		return phonenumbers.TOO_SHORT
	case int(m.possible[len(m.possible)-1]) < l:
		return phonenumbers.TOO_LONG
	}
	for _, x := range m.possible[1:] {
		if int(x) == l {
			return phonenumbers.IS_POSSIBLE
		}
	}
	return phonenumbers.INVALID_LENGTH
}

// iddEnd reports where the international prefix that starts s ends, as
// parsePrefixAsIdd finds it (before its check of the digit that follows).
func (m *parseMeta) iddEnd(s string) (int, bool) {
	if !m.iddAtStart.MatchString(s) {
		return 0, false
	}
	// A match at 0 exists, so the leftmost one starts there; take its end
	// from the very expression the library searches with.
	loc := m.idd.FindStringIndex(s)
	if loc == nil || loc[0] != 0 {
		return 0, false // not reached: see above
	}
	return loc[1], true
}

// stripNationalPrefix is maybeStripNationalPrefixAndCarrierCode: num with
// its national prefix removed or transformed, or num itself. The carrier
// code is not kept: ParseToNumber drops it.
func (m *parseMeta) stripNationalPrefix(num string) string {
	if num == "" || m.npp == nil || !m.npp.MatchString(num) {
		return num
	}
	viable := m.general.MatchString(num)
	g := m.npp.FindStringSubmatchIndex(num)
	last := len(g)/2 - 1 // the Go port's number of groups: the last group
	if m.transform == "" || g[2*last] < 0 {
		if viable && !m.general.MatchString(num[g[1]:]) {
			return num
		}
		return num[g[1]:]
	}
	// ReplaceAllString(num, transform): the expression is anchored at the
	// start, so its only match is g; the rest of num follows the expansion.
	var buf [32]byte
	b := m.npp.ExpandString(buf[:0], m.transform, num, g)
	b = append(b, num[g[1]:]...)
	if viable && !m.general.Match(b) {
		return num
	}
	return string(b)
}

// errLibrary means: not modelled, ask phonenumbers.ParseToNumber.
type errLibrary struct{}

func (errLibrary) Error() string { return "left to the library" }

// parse is ParseToNumber(s, region) for s of ASCII digits: the calling code
// and the normalized national number (leading zeros kept), or the library's
// error. errLibrary{} when it is left to the library.
func (p *nationalParser) parse(s, region string) (cc int, national string, err error) {
	switch {
	case s == "":
		return 0, "", phonenumbers.ErrNotANumber
	case len(s) > 250: // MAX_INPUT_STRING_LENGTH
		return 0, "", phonenumbers.ErrNumTooLong
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, "", errLibrary{}
		}
	}
	if len(s) < 2 { // isViablePhoneNumber
		return 0, "", phonenumbers.ErrNotANumber
	}
	m, supported := p.regions[region]
	switch {
	case !supported: // checkRegionForParsing: no region, no plus sign
		return 0, "", phonenumbers.ErrInvalidCountryCode
	case m == nil:
		return 0, "", errLibrary{}
	}
	// maybeExtractCountryCode.
	found := false
	if end, ok := m.iddEnd(s); ok && (end == len(s) || s[end] != '0') {
		rest := s[end:]
		if len(rest) <= 2 {
			return 0, "", phonenumbers.ErrTooShortAfterIDD
		}
		// extractCountryCode: rest does not start with 0.
		for l := 1; l <= 3 && l <= len(rest); l++ {
			c, _ := strconv.Atoi(rest[:l])
			if _, ok := p.codes[c]; ok {
				cc, national, found = c, rest[l:], true
				break
			}
		}
		if !found {
			return 0, "", phonenumbers.ErrInvalidCountryCode
		}
	} else if strings.HasPrefix(s, m.ccStr) {
		stripped := m.stripNationalPrefix(s[len(m.ccStr):])
		if (!m.general.MatchString(s) && m.general.MatchString(stripped)) || m.lengthResult(len(s)) == phonenumbers.TOO_LONG {
			cc, national, found = m.cc, stripped, true
		}
	}
	meta := m
	if found {
		switch c := p.codes[cc]; {
		case c == nil:
			// Only the region's own calling code can be missing from the
			// map: GetRegionCodeForCountryCode gives "ZZ", no metadata.
			meta = nil
		case c.main == region:
		case c.library:
			return 0, "", errLibrary{}
		default:
			meta = c.meta
		}
	} else {
		cc, national = m.cc, s
	}
	if len(national) < 2 { // MIN_LENGTH_FOR_NSN
		return 0, "", phonenumbers.ErrTooShortNSN
	}
	if meta != nil {
		stripped := meta.stripNationalPrefix(national)
		switch meta.lengthResult(len(stripped)) {
		case phonenumbers.TOO_SHORT, phonenumbers.IS_POSSIBLE_LOCAL_ONLY, phonenumbers.INVALID_LENGTH:
		default:
			national = stripped
		}
	}
	switch {
	case len(national) < 2:
		return 0, "", phonenumbers.ErrTooShortNSN
	case len(national) > 17: // MAX_LENGTH_FOR_NSN
		return 0, "", phonenumbers.ErrNumTooLong
	}
	return cc, national, nil
}

// numberFields holds the values a parsed PhoneNumber points to, so that
// filling one costs a single allocation.
type numberFields struct {
	cc      int32
	nn      uint64
	italian bool
	zeros   int32
}

// fill sets n as parseHelper sets a fresh PhoneNumber for calling code cc and
// normalized national number national (2 to 17 digits).
func fill(n *phonenumbers.PhoneNumber, cc int, national string) {
	f := &numberFields{cc: int32(cc)}
	for i := 0; i < len(national); i++ {
		f.nn = f.nn*10 + uint64(national[i]-'0')
	}
	n.CountryCode = &f.cc
	n.NationalNumber = &f.nn
	// setItalianLeadingZerosForPhoneNumber.
	if len(national) >= 2 && national[0] == '0' {
		f.italian = true
		n.ItalianLeadingZero = &f.italian
		zeros := 1
		for zeros < len(national)-1 && national[zeros] == '0' {
			zeros++
		}
		if zeros != 1 {
			f.zeros = int32(zeros)
			n.NumberOfLeadingZeros = &f.zeros
		}
	}
}

// parseNational is phonenumbers.ParseToNumber(s, region, n) for a fresh n:
// the same error, or n set to the same number (on error n is left as it
// is, where the library may have set some fields). It is fast for s of ASCII
// digits; anything else is the library's.
func parseNational(s, region string, n *phonenumbers.PhoneNumber) error {
	cc, national, err := theNationalParser().parse(s, region)
	if err != nil {
		if _, ok := err.(errLibrary); ok {
			return phonenumbers.ParseToNumber(s, region, n)
		}
		return err
	}
	fill(n, cc, national)
	return nil
}

package phone

import (
	"regexp"
	"strconv"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// This file answers phonenumbers.IsValidNumber without its per-call cost.
//
// The library evaluates a number against the metadata of its region by
// building the string "^(?:" + pattern + ")$" for every pattern it tries,
// looking the compiled expression up in a cache behind a lock, and matching
// each pattern twice; those string concatenations are most of its CPU time
// and nearly all of its allocations. The validator below compiles the very
// same expressions from the very same metadata (the collection the library
// itself loaded) once, and then evaluates the library's decision procedure on
// them:
//
//   - IsValidNumber is IsValidNumberForRegion(GetRegionCodeForNumber(n)).
//   - GetRegionCodeForNumber: no region for the calling code gives "" (never
//     valid); a single region is taken as is; for a calling code shared by
//     several regions (+1, +7, +44, ...) the regions are tried in the
//     library's order: one with a leading-digits pattern is chosen when that
//     pattern matches the start of the national significant number (and then
//     no other region is tried, even if the number is invalid there); one
//     without is chosen when the number has a known type there.
//   - IsValidNumberForRegion: the region needs metadata whose calling code is
//     the number's (not checked for the non-geographic region "001"), and
//     getNumberTypeHelper must not answer UNKNOWN.
//   - getNumberTypeHelper answers UNKNOWN unless the general description
//     matches; then it answers a type when any of premium rate, toll free,
//     shared cost, VoIP, personal number, pager, UAN, voicemail or fixed line
//     matches, and mobile only when the metadata does not say that mobile and
//     fixed line share their pattern (with that flag, a number that is not a
//     fixed line is UNKNOWN whatever the mobile pattern says). Only whether
//     the answer is UNKNOWN matters here, so the order in which the
//     descriptions are tried does not, and the common ones go first.
//   - A description matches (isNumberMatchingDesc) when its list of possible
//     lengths, if not empty, holds the length of the national significant
//     number, and its pattern matches the whole number.
//   - The national significant number is GetNationalSignificantNumber's: the
//     national number in decimal, behind the "Italian" leading zeros when the
//     number has them.
//
// Whatever the table does not model (a region listed without metadata
// alongside others, a pattern that does not compile, a missing description:
// cases on which the library itself would panic) is left to the library, for
// the whole calling code. The embedded metadata has none of them.

// numberDesc is a PhoneNumberDesc ready to match.
type numberDesc struct {
	re *regexp.Regexp // "^(?:" + national number pattern + ")$"
	// lengths has bit l set when l is one of the possible lengths; anyLength
	// means the description lists none, and only the pattern decides.
	lengths   uint64
	anyLength bool
}

func (d *numberDesc) matches(nsn string) bool {
	if !d.anyLength {
		// Lengths of 64 and more are not possible lengths of any description
		// (the longest national significant number has 17 digits), and never
		// reach here from a PhoneNumber: 20 digits and 17 zeros at most.
		if l := len(nsn); l >= 64 || d.lengths&(1<<l) == 0 {
			return false
		}
	}
	return d.re.MatchString(nsn)
}

// regionDesc is the part of a region's PhoneMetadata validation looks at.
type regionDesc struct {
	id        string
	ccMatches bool           // IsValidNumberForRegion's calling code check passes
	leading   *regexp.Regexp // "^(?:" + leading digits + ")", nil without them
	general   numberDesc
	// fixedLine and mobile, then the other types in the library's order.
	fixedLine, mobile  numberDesc
	sameMobileAndFixed bool
	others             []numberDesc
}

// knownType reports whether getNumberTypeHelper(nsn, metadata) != UNKNOWN.
func (r *regionDesc) knownType(nsn string) bool {
	if !r.general.matches(nsn) {
		return false
	}
	if r.fixedLine.matches(nsn) {
		return true
	}
	if !r.sameMobileAndFixed && r.mobile.matches(nsn) {
		return true
	}
	for i := range r.others {
		if r.others[i].matches(nsn) {
			return true
		}
	}
	return false
}

// callingCode holds the regions of one country calling code, in the order of
// GetRegionCodesForCountryCode. A nil entry is a region without metadata
// (only possible when it is the only one: see buildValidator).
type callingCode struct {
	regions []*regionDesc
	library bool // not modelled: ask phonenumbers.IsValidNumber
}

func (c *callingCode) valid(nsn string) bool {
	if len(c.regions) == 1 {
		r := c.regions[0]
		return r != nil && r.ccMatches && r.knownType(nsn)
	}
	for _, r := range c.regions {
		if r.leading != nil {
			if r.leading.MatchString(nsn) {
				return r.ccMatches && r.knownType(nsn)
			}
		} else if r.knownType(nsn) {
			return r.ccMatches
		}
	}
	return false
}

// validator is the compiled metadata of every calling code with regions.
// It is read-only once built, and so safe for concurrent use.
type validator struct {
	codes map[int]*callingCode
}

var theValidator = sync.OnceValue(buildValidator)

// validNumber reports exactly what phonenumbers.IsValidNumber(n) reports.
func validNumber(n *phonenumbers.PhoneNumber) bool {
	c := theValidator().codes[int(n.GetCountryCode())]
	switch {
	case c == nil:
		return false // no region: GetRegionCodeForNumber gives "", never valid
	case c.library:
		return phonenumbers.IsValidNumber(n)
	}
	var nsn string
	if n.GetItalianLeadingZero() && n.GetNumberOfLeadingZeros() > 0 {
		nsn = phonenumbers.GetNationalSignificantNumber(n)
	} else {
		nsn = strconv.FormatUint(n.GetNationalNumber(), 10)
	}
	return c.valid(nsn)
}

// validNational reports whether the number with country calling code cc and
// national significant number nsn is valid: what phonenumbers.IsValidNumber
// reports for PhoneNumber{CountryCode: cc, NationalNumber: nsn}. nsn must be
// that number's national significant number: ASCII digits without a leading
// zero (numbers with Italian leading zeros go through validNumber).
func validNational(cc int, nsn string) bool {
	c := theValidator().codes[cc]
	switch {
	case c == nil:
		return false
	case c.library:
		v, err := strconv.ParseUint(nsn, 10, 64)
		if err != nil {
			return false
		}
		cc32 := int32(cc)
		return phonenumbers.IsValidNumber(&phonenumbers.PhoneNumber{CountryCode: &cc32, NationalNumber: &v})
	}
	return c.valid(nsn)
}

// buildValidator compiles the metadata the library loaded at init.
func buildValidator() *validator {
	v := &validator{codes: make(map[int]*callingCode)}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		// The library panics at init when its metadata does not load, so
		// this is not reached; asking it is still the right answer.
		for cc := range phonenumbers.GetSupportedCallingCodes() {
			v.codes[cc] = &callingCode{library: true}
		}
		return v
	}
	// The library's own maps, built the same way (newMetadataContainer):
	// the last entry for an id wins.
	byRegion := make(map[string]*phonenumbers.PhoneMetadata)
	nonGeo := make(map[int]*phonenumbers.PhoneMetadata)
	for _, m := range coll.GetMetadata() {
		if m.GetId() == "001" {
			nonGeo[int(m.GetCountryCode())] = m
		} else {
			byRegion[m.GetId()] = m
		}
	}
	supported := phonenumbers.GetSupportedRegions()
	// getMetadataForRegion.
	regionMetadata := func(region string) *phonenumbers.PhoneMetadata {
		if region == "" || !supported[region] {
			return nil
		}
		return byRegion[region]
	}
	comp := make(compiler)
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		ids := phonenumbers.GetRegionCodesForCountryCode(cc)
		if len(ids) == 0 {
			continue // never valid: no entry
		}
		c := &callingCode{}
		v.codes[cc] = c
		if len(ids) == 1 {
			var m *phonenumbers.PhoneMetadata
			nonGeographic := ids[0] == "001"
			if nonGeographic {
				m = nonGeo[cc]
			} else {
				m = regionMetadata(ids[0])
			}
			if m == nil {
				c.regions = []*regionDesc{nil} // IsValidNumberForRegion: false
				continue
			}
			r, ok := comp.region(m, cc, nonGeographic)
			c.regions = []*regionDesc{r}
			c.library = !ok
			continue
		}
		for _, id := range ids {
			m := regionMetadata(id)
			if m == nil {
				c.library = true
				break
			}
			r, ok := comp.region(m, cc, false)
			if !ok {
				c.library = true
				break
			}
			c.regions = append(c.regions, r)
		}
		if c.library {
			c.regions = nil
		}
	}
	return v
}

// compiler compiles the expressions of the metadata, each one once.
type compiler map[string]*regexp.Regexp

func (c compiler) compile(expr string) (*regexp.Regexp, bool) {
	if re, ok := c[expr]; ok {
		return re, true
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, false
	}
	c[expr] = re
	return re, true
}

// desc compiles d as isNumberMatchingDesc uses it; false when the library
// would panic on it (nil) or its pattern does not compile.
func (c compiler) desc(d *phonenumbers.PhoneNumberDesc) (numberDesc, bool) {
	if d == nil {
		return numberDesc{}, false
	}
	re, ok := c.compile("^(?:" + d.GetNationalNumberPattern() + ")$")
	nd := numberDesc{re: re, anyLength: len(d.PossibleLength) == 0}
	for _, l := range d.PossibleLength {
		if l >= 0 && l < 64 {
			nd.lengths |= 1 << l
		}
	}
	return nd, ok
}

// region compiles the metadata m of a region of calling code cc (of the
// non-geographic entity for cc when nonGeographic); false when some part of
// it is not modelled.
func (c compiler) region(m *phonenumbers.PhoneMetadata, cc int, nonGeographic bool) (*regionDesc, bool) {
	r := &regionDesc{
		id:                 m.GetId(),
		ccMatches:          nonGeographic || int(m.GetCountryCode()) == cc,
		sameMobileAndFixed: m.GetSameMobileAndFixedLinePattern(),
	}
	ok := true
	if ld := m.GetLeadingDigits(); len(ld) > 0 {
		var good bool
		r.leading, good = c.compile("^(?:" + ld + ")")
		ok = ok && good
	}
	for _, d := range []struct {
		dst *numberDesc
		src *phonenumbers.PhoneNumberDesc
	}{
		{&r.general, m.GetGeneralDesc()},
		{&r.fixedLine, m.GetFixedLine()},
		{&r.mobile, m.GetMobile()},
	} {
		var good bool
		*d.dst, good = c.desc(d.src)
		ok = ok && good
	}
	for _, src := range []*phonenumbers.PhoneNumberDesc{
		m.GetPremiumRate(), m.GetTollFree(), m.GetSharedCost(), m.GetVoip(),
		m.GetPersonalNumber(), m.GetPager(), m.GetUan(), m.GetVoicemail(),
	} {
		d, good := c.desc(src)
		r.others = append(r.others, d)
		ok = ok && good
	}
	return r, ok
}

package phone

import (
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// describeNumber prints every field ParseToNumber may set, nil or not.
func describeNumber(n *phonenumbers.PhoneNumber) string {
	var b strings.Builder
	field := func(name string, set bool, v any) {
		if set {
			fmt.Fprintf(&b, "%s=%v ", name, v)
		} else {
			fmt.Fprintf(&b, "%s=nil ", name)
		}
	}
	field("cc", n.CountryCode != nil, n.GetCountryCode())
	field("nn", n.NationalNumber != nil, n.GetNationalNumber())
	field("ext", n.Extension != nil, n.GetExtension())
	field("italian", n.ItalianLeadingZero != nil, n.GetItalianLeadingZero())
	field("zeros", n.NumberOfLeadingZeros != nil, n.GetNumberOfLeadingZeros())
	field("raw", n.RawInput != nil, n.GetRawInput())
	field("source", n.CountryCodeSource != nil, n.GetCountryCodeSource())
	field("carrier", n.PreferredDomesticCarrierCode != nil, n.GetPreferredDomesticCarrierCode())
	return b.String()
}

// compareParse fails t unless the national parser gives for digits and
// region what phonenumbers.ParseToNumber gives on a fresh PhoneNumber: the
// same error, or the same fields (calling code, national number, Italian
// leading zero, number of leading zeros, and nothing else set). The parser
// must answer itself, not leave the input to the library. It returns
// whether the library accepted the input.
func compareParse(t testing.TB, digits, region string) bool {
	t.Helper()
	var want phonenumbers.PhoneNumber
	werr := phonenumbers.ParseToNumber(digits, region, &want)
	cc, national, gerr := theNationalParser().parse(digits, region)
	if _, ok := gerr.(errLibrary); ok {
		t.Errorf("parse(%q, %q) left to the library", digits, region)
		return werr == nil
	}
	if werr != nil || gerr != nil {
		if werr != gerr {
			t.Errorf("parse(%q, %q): error %v; library: %v (%s)", digits, region, gerr, werr, describeNumber(&want))
		}
		return werr == nil
	}
	var got phonenumbers.PhoneNumber
	fill(&got, cc, national)
	if g, w := describeNumber(&got), describeNumber(&want); g != w {
		t.Errorf("parse(%q, %q) = %s; library: %s", digits, region, g, w)
	}
	return true
}

// dialledIDD returns the international prefix dialled in m's region: the
// preferred one without its "wait for the tone" tilde ("0~0" is "00"), or
// the international prefix when it is a plain number, or "".
func dialledIDD(m *phonenumbers.PhoneMetadata) string {
	if p := m.GetPreferredInternationalPrefix(); p != "" {
		return digitsOf(p)
	}
	if p := m.GetInternationalPrefix(); strings.Trim(p, "0123456789") == "" {
		return p
	}
	return ""
}

// parseCase is a region's metadata and its example numbers, as the tests
// of the national parser write them.
type parseCase struct {
	region string
	meta   *phonenumbers.PhoneMetadata
	// own are the region's example numbers written as in that region, each
	// mutated; foreign are other calling codes' example numbers dialled
	// from the region (its international prefix first), as they are.
	own, foreign []string
}

// parseCases returns, for every supported region in order, the inputs of
// TestNationalMatchesLibrary but the random ones: for every example number
// of the region's metadata, its national format (phonenumbers.Format
// NATIONAL, digits only: AR "0111523456789", GB "07400123456", IT
// "0212345678"), the national significant number alone, both behind the
// calling code without a plus ("54" + national: maybeExtractCountryCode's
// special case), behind the international prefix and the calling code, and
// its last digits of each local-only length (NANP "4601234"); and the first
// example number of every calling code dialled from the region
// (FormatOutOfCountryCallingNumber, digits only).
func parseCases(t testing.TB) []parseCase {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		t.Fatal(err)
	}
	byRegion := make(map[string]*phonenumbers.PhoneMetadata)
	var firstExamples []*phonenumbers.PhoneNumber
	seenCode := make(map[int]bool)
	for _, m := range coll.GetMetadata() {
		if m.GetId() != "001" {
			byRegion[m.GetId()] = m
		}
		cc := int(m.GetCountryCode())
		if seenCode[cc] {
			continue
		}
		for _, d := range descsOf(m)[1:] {
			if n, ok := numberOf(cc, d.GetExampleNumber()); ok && d.GetExampleNumber() != "" {
				firstExamples = append(firstExamples, n)
				seenCode[cc] = true
				break
			}
		}
	}
	var regions []string
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	var out []parseCase
	for _, region := range regions {
		m := byRegion[region]
		if m == nil {
			t.Fatalf("region %s has no metadata", region)
		}
		c := parseCase{region: region, meta: m}
		cc := strconv.Itoa(int(m.GetCountryCode()))
		idd := dialledIDD(m)
		add := func(list *[]string, s string) {
			if s != "" && !slices.Contains(*list, s) {
				*list = append(*list, s)
			}
		}
		for _, d := range descsOf(m) {
			e := d.GetExampleNumber()
			n, ok := numberOf(int(m.GetCountryCode()), e)
			if e == "" || !ok {
				continue
			}
			national := digitsOf(phonenumbers.Format(n, phonenumbers.NATIONAL))
			for _, s := range []string{national, e, cc + national, cc + e} {
				add(&c.own, s)
			}
			if idd != "" {
				add(&c.own, idd+cc+e)
			}
			for _, l := range m.GetGeneralDesc().GetPossibleLengthLocalOnly() {
				if int(l) < len(e) {
					add(&c.own, e[len(e)-int(l):])
				}
			}
		}
		for _, n := range firstExamples {
			add(&c.foreign, digitsOf(phonenumbers.FormatOutOfCountryCallingNumber(n, region)))
		}
		out = append(out, c)
	}
	return out
}

// TestNationalMatchesLibrary is the proof that the national parser answers
// what phonenumbers.ParseToNumber answers for a string of digits and a
// region: for every supported region, the inputs of parseCases, every
// single-digit change of the region's own ones, each with a digit added
// anywhere and with any one digit removed, then random digit strings of
// every length from 1 to 19 (fixed seed), alone and behind the region's
// national prefix, calling code and international prefix. The region's own
// inputs are all compared, and so are the foreign and random ones but under
// the race detector (one in twelve) or with -short (one in ten); of the
// mutations, one in six (one in 48 under the race detector, one in forty
// with -short).
func TestNationalMatchesLibrary(t *testing.T) {
	cases := parseCases(t)
	// One mutation in mutStride is compared, and one foreign or random
	// input in otherStride.
	mutStride, otherStride, randomPerLength, minCompared := 6, 1, 6, int64(300000)
	switch {
	case testing.Short():
		mutStride, otherStride, randomPerLength, minCompared = 40, 10, 1, 0
	case raceEnabled:
		mutStride, otherStride, randomPerLength, minCompared = 48, 12, 2, 20000
	}
	var compared, accepted, examples atomic.Int64
	t.Run("regions", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.region, func(t *testing.T) {
				t.Parallel()
				seen := make(map[string]bool)
				i := 0
				check := func(s string, stride int) {
					if seen[s] {
						return
					}
					seen[s] = true
					if i++; i%stride != 0 {
						return
					}
					compared.Add(1)
					if compareParse(t, s, c.region) {
						accepted.Add(1)
					}
				}
				for _, s := range c.own {
					examples.Add(1)
					check(s, 1)
				}
				for _, s := range c.foreign {
					check(s, otherStride)
				}
				for _, s := range c.own {
					mutations(s, func(m string) { check(m, mutStride) })
				}
				r := rand.New(rand.NewSource(int64(len(c.region)) + int64(c.region[0])<<8 + int64(c.region[1])))
				prefixes := []string{"", c.meta.GetNationalPrefix(), strconv.Itoa(int(c.meta.GetCountryCode())), dialledIDD(c.meta)}
				for _, p := range prefixes {
					for l := 1; l <= 19; l++ {
						for range randomPerLength {
							check(p+randomDigits(r, l), otherStride)
						}
					}
				}
			})
		}
	})
	t.Logf("%d regions, %d inputs from example numbers: %d inputs compared, %d accepted by the library",
		len(cases), examples.Load(), compared.Load(), accepted.Load())
	if compared.Load() < minCompared {
		t.Errorf("only %d inputs compared, want %d", compared.Load(), minCompared)
	}
}

// TestNationalOddInputs compares the parser with the library on input it
// does not see from Normalize: regions the library does not support, empty,
// short and over-long strings, and strings with other characters (left to
// the library).
func TestNationalOddInputs(t *testing.T) {
	for _, region := range []string{"", "ZZ", "XX", "001", "ar", "AR", "US", "IT", "BR", "JP"} {
		for _, s := range []string{
			"", "0", "1", "00", "01", "12", "000", "0000000000", "00000000000000000000",
			"011", "0011", "00541", "005411", "0054111", "00549", "011549", "0119",
			strings.Repeat("1", 17), strings.Repeat("1", 18), strings.Repeat("5", 250), strings.Repeat("5", 251),
			"541123456789", "5401123456789", "5491123456789", "0111523456789", "1523456789",
		} {
			compareParse(t, s, region)
		}
		for _, s := range []string{"+5491123456789", "011 15 2345 6789", "12ab", "٠١١٢٣٤٥٦٧٨٩", "tel:+541123456789"} {
			var want, got phonenumbers.PhoneNumber
			werr := phonenumbers.ParseToNumber(s, region, &want)
			gerr := parseNational(s, region, &got)
			if werr != gerr || (werr == nil && describeNumber(&got) != describeNumber(&want)) {
				t.Errorf("parseNational(%q, %q) = %s, %v; library %s, %v", s, region, describeNumber(&got), gerr, describeNumber(&want), werr)
			}
		}
	}
}

// TestNationalTable checks that every supported region and calling code is
// in the parser's table and none is left to the library, so that the tests
// above exercise the parser rather than the fallback.
func TestNationalTable(t *testing.T) {
	p := theNationalParser()
	for r := range phonenumbers.GetSupportedRegions() {
		if m, ok := p.regions[r]; !ok || m == nil {
			t.Errorf("region %s: in the table %v, left to the library %v", r, ok, m == nil)
		} else if m.id != r {
			t.Errorf("region %s: metadata of %s", r, m.id)
		}
	}
	if len(p.regions) != len(phonenumbers.GetSupportedRegions()) {
		t.Errorf("%d regions, library %d", len(p.regions), len(phonenumbers.GetSupportedRegions()))
	}
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		c := p.codes[cc]
		switch {
		case c == nil:
			t.Errorf("calling code %d is not in the table", cc)
		case c.library || c.meta == nil:
			t.Errorf("calling code %d: left to the library %v, no metadata %v", cc, c.library, c.meta == nil)
		case c.main != phonenumbers.GetRegionCodeForCountryCode(cc) || c.meta.cc != cc:
			t.Errorf("calling code %d: main region %s (library %s), metadata of +%d", cc, c.main, phonenumbers.GetRegionCodeForCountryCode(cc), c.meta.cc)
		}
	}
	if len(p.codes) != len(phonenumbers.GetSupportedCallingCodes()) {
		t.Errorf("%d calling codes, library %d", len(p.codes), len(phonenumbers.GetSupportedCallingCodes()))
	}
}

// nationalRegions is the fuzz target's list of regions: every supported one
// in order, then "" (no default region).
var nationalRegions = func() []string {
	var rs []string
	for r := range phonenumbers.GetSupportedRegions() {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	return append(rs, "")
}()

func FuzzNationalMatchesLibrary(f *testing.F) {
	index := func(region string) uint8 { return uint8(slices.Index(nationalRegions, region)) }
	for _, s := range []struct{ digits, region string }{
		{"0111523456789", "AR"}, {"1523456789", "AR"}, {"541123456789", "AR"}, {"5401115234567", "AR"},
		{"00541123456789", "AR"}, {"0351155123456", "AR"}, {"0445512345678", "MX"}, {"015512345678", "MX"},
		{"5215512345678", "MX"}, {"07400123456", "GB"}, {"447400123456", "GB"}, {"0212345678", "IT"},
		{"390212345678", "IT"}, {"011390212345678", "US"}, {"4601234", "AG"}, {"12684601234", "AG"},
		{"01141123456789", "CA"}, {"0211961234567", "BR"}, {"09012345678", "JP"}, {"0012345", "JP"},
		{"06111234", "GA"}, {"12345", "NF"}, {"812345", "SM"}, {"0041446681800", "CH"}, {"5", "ES"},
		{"00", "ES"}, {"0034", "ES"}, {"99912345678", "ES"}, {"1123456789", ""},
	} {
		f.Add(s.digits, index(s.region))
	}
	f.Fuzz(func(t *testing.T, digits string, regionIndex uint8) {
		region := nationalRegions[int(regionIndex)%len(nationalRegions)]
		// Bytes that are not digits become digits: the parser's input is
		// what scan leaves.
		b := []byte(digits)
		for i, c := range b {
			if c < '0' || c > '9' {
				b[i] = '0' + c%10
			}
		}
		compareParse(t, string(b), region)
	})
}

// TestNationalRules pins, on made-up metadata, the parts of parseHelper that
// the embedded metadata never decides: there, a general description always
// has possible lengths, local-only lengths are all shorter than the shortest
// possible one, no transform rule turns a number the general pattern accepts
// into one it rejects, every transform rule uses a capturing group, every
// region has an international prefix and a calling code of the library's
// map, and no national prefix leaves fewer than two digits behind. The
// expected answers are worked out by hand from the library's code, step by
// step.
func TestNationalRules(t *testing.T) {
	type meta struct {
		id                  string
		cc                  int32
		idd, npp, transform string
		general             string
		possible, local     []int32
	}
	build := func(codes map[int][]string, ms ...meta) *nationalParser {
		var list []*phonenumbers.PhoneMetadata
		supported := make(map[string]bool)
		for _, m := range ms {
			m := m
			md := &phonenumbers.PhoneMetadata{
				Id: &m.id, CountryCode: &m.cc, InternationalPrefix: &m.idd,
				GeneralDesc: &phonenumbers.PhoneNumberDesc{NationalNumberPattern: &m.general, PossibleLength: m.possible, PossibleLengthLocalOnly: m.local},
			}
			if m.npp != "" {
				md.NationalPrefixForParsing = &m.npp
			}
			if m.transform != "" {
				md.NationalPrefixTransformRule = &m.transform
			}
			list = append(list, md)
			supported[m.id] = true
		}
		return buildNationalParser(list, codes, supported)
	}
	type want struct {
		cc       int
		national string
		err      error
	}
	check := func(name string, p *nationalParser, s, region string, w want) {
		t.Helper()
		cc, national, err := p.parse(s, region)
		if cc != w.cc || national != w.national || err != w.err {
			t.Errorf("%s: parse(%q, %q) = %d, %q, %v; want %d, %q, %v", name, s, region, cc, national, err, w.cc, w.national, w.err)
		}
	}

	// testNumberLength, general description.
	lengths := &parseMeta{possible: []int32{8, 10}, localOnly: []int32{12}}
	for l, w := range map[int]phonenumbers.ValidationResult{
		7: phonenumbers.TOO_SHORT, 8: phonenumbers.IS_POSSIBLE, 9: phonenumbers.INVALID_LENGTH,
		10: phonenumbers.IS_POSSIBLE, 11: phonenumbers.TOO_LONG, 12: phonenumbers.IS_POSSIBLE_LOCAL_ONLY, 13: phonenumbers.TOO_LONG,
	} {
		if got := lengths.lengthResult(l); got != w {
			t.Errorf("lengthResult(%d) = %v, want %v", l, got, w)
		}
	}
	if got := (&parseMeta{possible: []int32{-1}}).lengthResult(8); got != phonenumbers.INVALID_LENGTH {
		t.Errorf("lengthResult with lengths [-1] = %v, want INVALID_LENGTH", got)
	}

	// A transform that makes a viable number unviable is not applied; one
	// that makes an unviable number viable is.
	p := build(map[int][]string{990: {"XA"}, 991: {"XB"}},
		meta{id: "XA", cc: 990, idd: "00", npp: `0(\d)`, transform: "7$1", general: `0\d{5}|8\d{5}`, possible: []int32{6}},
		meta{id: "XB", cc: 991, idd: "00", npp: `0(\d)`, transform: "7$1", general: `7\d{5}`, possible: []int32{6}})
	check("transform breaks a viable number", p, "012345", "XA", want{990, "012345", nil})
	check("transform makes a number viable", p, "012345", "XB", want{991, "712345", nil})

	// A transform rule with no capturing group in the national prefix is
	// applied (the Go port looks at group 0, the whole match, which is set).
	p = build(map[int][]string{992: {"XC"}},
		meta{id: "XC", cc: 992, idd: "00", npp: "0", transform: "5", general: `5\d{5}`, possible: []int32{6}})
	check("transform without groups", p, "012345", "XC", want{992, "512345", nil})

	// With two capturing groups, the transform rule applies when the last
	// one took part in the match, whatever the first did.
	p = build(map[int][]string{989: {"XK"}},
		meta{id: "XK", cc: 989, idd: "00", npp: `(0)(9)?`, transform: "7$2", general: `\d{6}`, possible: []int32{6, 7}})
	check("last group unmatched", p, "0123456", "XK", want{989, "123456", nil})
	check("last group matched", p, "0912345", "XK", want{989, "7912345", nil})

	// The region's calling code is not in the map: after it is found in the
	// number, there is no metadata (region "ZZ"), so no second stripping.
	p = build(map[int][]string{},
		meta{id: "XD", cc: 996, idd: "00", npp: "0", general: `[1-9]\d{5}`, possible: []int32{6}})
	check("calling code without regions", p, "99600123456", "XD", want{996, "0123456", nil})
	check("calling code without regions, national", p, "0123456", "XD", want{996, "123456", nil})

	// An empty international prefix matches every number; a calling code
	// must follow unless the next digit is a 0.
	p = build(map[int][]string{998: {"XF"}},
		meta{id: "XF", cc: 998, idd: "", general: `\d{6}`, possible: []int32{6}})
	check("empty international prefix", p, "123456", "XF", want{0, "", phonenumbers.ErrInvalidCountryCode})
	check("empty international prefix, calling code", p, "998123456", "XF", want{998, "123456", nil})
	check("empty international prefix, 0", p, "012345", "XF", want{998, "012345", nil})

	// A local-only length longer than the possible ones is not TOO_LONG: the
	// calling code is not stripped.
	p = build(map[int][]string{995: {"XG"}},
		meta{id: "XG", cc: 995, idd: "00", general: `[1-9]\d{3}`, possible: []int32{4}, local: []int32{7}})
	check("local-only length", p, "9950123", "XG", want{995, "9950123", nil})
	check("too long", p, "99501234", "XG", want{995, "01234", nil})

	// Stripping down to one digit of a possible length is ErrTooShortNSN.
	p = build(map[int][]string{994: {"XH"}},
		meta{id: "XH", cc: 994, idd: "00", npp: "0", general: `\d`, possible: []int32{1}})
	check("one digit left", p, "05", "XH", want{0, "", phonenumbers.ErrTooShortNSN})

	// Metadata that does not compile is left to the library: a region, or
	// the main region of a calling code found in the number.
	p = build(map[int][]string{993: {"XI"}, 997: {"XJ"}},
		meta{id: "XI", cc: 993, idd: "00", general: `(`, possible: []int32{6}},
		meta{id: "XJ", cc: 997, idd: "00", general: `\d{6}`, possible: []int32{6}})
	if c := p.codes[993]; !c.library {
		t.Errorf("calling code 993 (region XI, which does not compile) not left to the library")
	}
	if _, _, err := p.parse("123456", "XI"); err != (errLibrary{}) {
		t.Errorf("region that does not compile: %v, want errLibrary", err)
	}
	if _, _, err := p.parse("00993123456", "XJ"); err != (errLibrary{}) {
		t.Errorf("calling code that does not compile: %v, want errLibrary", err)
	}
	check("region that compiles", p, "123456", "XJ", want{997, "123456", nil})
}

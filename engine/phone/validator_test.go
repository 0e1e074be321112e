package phone

import (
	"errors"
	"math/rand"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// numberOf returns the PhoneNumber that phonenumbers.Parse builds for the
// national significant number digits with calling code cc: leading zeros
// become ItalianLeadingZero and NumberOfLeadingZeros as in
// setItalianLeadingZerosForPhoneNumber. ok is false when digits does not fit.
func numberOf(cc int, digits string) (*phonenumbers.PhoneNumber, bool) {
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return nil, false
	}
	n := &phonenumbers.PhoneNumber{}
	cc32 := int32(cc)
	n.CountryCode = &cc32
	n.NationalNumber = &v
	if len(digits) >= 2 && digits[0] == '0' {
		t := true
		n.ItalianLeadingZero = &t
		zeros := 1
		for zeros < len(digits)-1 && digits[zeros] == '0' {
			zeros++
		}
		if zeros != 1 {
			z := int32(zeros)
			n.NumberOfLeadingZeros = &z
		}
	}
	return n, true
}

// compare fails t unless validNumber and, when it applies, validNational
// agree with phonenumbers.IsValidNumber on cc and digits. It returns the
// number of comparisons made: one per function, 0 when digits does not fit
// in a PhoneNumber.
func compare(t testing.TB, cc int, digits string) int {
	n, ok := numberOf(cc, digits)
	if !ok {
		return 0
	}
	want := phonenumbers.IsValidNumber(n)
	if got := validNumber(n); got != want {
		t.Errorf("+%d %s (%v): validNumber = %v, phonenumbers.IsValidNumber = %v", cc, digits, n, got, want)
	}
	if digits == "" || digits[0] == '0' {
		return 1
	}
	if got := validNational(cc, digits); got != want {
		t.Errorf("+%d %s: validNational = %v, phonenumbers.IsValidNumber = %v", cc, digits, got, want)
	}
	return 2
}

// descsOf returns every number description of m, general one first.
func descsOf(m *phonenumbers.PhoneMetadata) []*phonenumbers.PhoneNumberDesc {
	return []*phonenumbers.PhoneNumberDesc{
		m.GetGeneralDesc(), m.GetFixedLine(), m.GetMobile(), m.GetTollFree(),
		m.GetPremiumRate(), m.GetSharedCost(), m.GetPersonalNumber(), m.GetVoip(),
		m.GetPager(), m.GetUan(), m.GetVoicemail(),
	}
}

// examplesByCode returns, for every supported calling code, the example
// numbers of every number description of its regions (or of its
// non-geographic entity), as the library's metadata gives them.
func examplesByCode(t testing.TB) map[int][]string {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int][]string)
	for _, m := range coll.GetMetadata() {
		cc := int(m.GetCountryCode())
		for _, d := range descsOf(m) {
			if e := d.GetExampleNumber(); e != "" && !slices.Contains(out[cc], e) {
				out[cc] = append(out[cc], e)
			}
		}
	}
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		if _, ok := out[cc]; !ok {
			out[cc] = nil
		}
	}
	return out
}

// mutations calls f with e, every single-digit change of e, e with a digit
// added anywhere and e with any one digit removed.
func mutations(e string, f func(string)) {
	f(e)
	b := []byte(e)
	for i := range b {
		old := b[i]
		for d := byte('0'); d <= '9'; d++ {
			if d != old {
				b[i] = d
				f(string(b))
			}
		}
		b[i] = old
		f(e[:i] + e[i+1:])
	}
	for i := 0; i <= len(e); i++ {
		for d := byte('0'); d <= '9'; d++ {
			f(e[:i] + string(d) + e[i:])
		}
	}
}

// randomDigits returns a string of n random digits.
func randomDigits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.Intn(10))
	}
	return string(b)
}

// TestValidatorMatchesLibrary is the proof that the validator answers what
// phonenumbers.IsValidNumber answers: for every supported calling code
// (every region and non-geographic entity), the example number of every
// number type of the library's metadata and every mutation of it (each
// single-digit change, a digit added anywhere, any one digit removed), and
// random digit strings of every length from 4 to 17, with a fixed seed.
// Under the race detector, one number in two;
// with -short, one in seven and fewer random strings.
func TestValidatorMatchesLibrary(t *testing.T) {
	examples := examplesByCode(t)
	codes := make([]int, 0, len(examples))
	for cc := range examples {
		codes = append(codes, cc)
	}
	sort.Ints(codes)
	randomPerLength, stride, minNumbers := 10, 1, int64(200000)
	switch {
	case testing.Short():
		randomPerLength, stride, minNumbers = 2, 7, 0
	case raceEnabled:
		stride, minNumbers = 2, 100000
	}
	var numbers, comparisons, exampleCount atomic.Int64
	t.Run("codes", func(t *testing.T) {
		for _, cc := range codes {
			t.Run(strconv.Itoa(cc), func(t *testing.T) {
				t.Parallel()
				seen := make(map[string]bool)
				i := 0
				check := func(s string) {
					if seen[s] {
						return
					}
					seen[s] = true
					if i++; i%stride != 0 {
						return
					}
					if c := compare(t, cc, s); c > 0 {
						numbers.Add(1)
						comparisons.Add(int64(c))
					}
				}
				for _, e := range examples[cc] {
					exampleCount.Add(1)
					mutations(e, check)
				}
				r := rand.New(rand.NewSource(int64(cc)))
				for l := 4; l <= 17; l++ {
					for range randomPerLength {
						check(randomDigits(r, l))
					}
				}
			})
		}
	})
	t.Logf("%d calling codes, %d example numbers: %d numbers, %d comparisons (validNumber on each, validNational on those without a leading zero)",
		len(codes), exampleCount.Load(), numbers.Load(), comparisons.Load())
	if numbers.Load() < minNumbers {
		t.Errorf("only %d numbers compared, want %d", numbers.Load(), minNumbers)
	}
}

// raceEnabled is set under the race detector (race_test.go).
var raceEnabled bool

// TestValidatorOddNumbers compares PhoneNumbers Parse would not build: no or
// unknown calling codes, huge national numbers, odd leading-zero fields.
func TestValidatorOddNumbers(t *testing.T) {
	var nums []*phonenumbers.PhoneNumber
	add := func(cc int32, nn uint64, italian *bool, zeros *int32) {
		nums = append(nums, &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &nn, ItalianLeadingZero: italian, NumberOfLeadingZeros: zeros})
	}
	yes, no := true, false
	r := rand.New(rand.NewSource(1))
	ccs := []int32{0, -1, 1, 7, 39, 44, 52, 54, 800, 870, 882, 883, 888, 979, 999, 1000, -54}
	for _, z := range []int32{-3, 0, 1, 2, 5, 17, 18, 40} {
		for _, cc := range ccs {
			for range 20 {
				nn := uint64(r.Int63n(1e12))
				zz := z
				add(cc, nn, &yes, &zz)
				add(cc, nn, &no, &zz)
				add(cc, nn, &yes, nil)
				add(cc, nn, nil, &zz)
			}
		}
	}
	for _, cc := range ccs {
		for _, nn := range []uint64{0, 1, 9, 1<<64 - 1, 1e18, 612345678, 91123456789} {
			add(cc, nn, nil, nil)
			add(cc, nn, &yes, nil)
		}
	}
	nums = append(nums, nil, &phonenumbers.PhoneNumber{})
	for _, n := range nums {
		if got, want := validNumber(n), phonenumbers.IsValidNumber(n); got != want {
			t.Errorf("%v: validNumber = %v, phonenumbers.IsValidNumber = %v", n, got, want)
		}
	}
}

// TestValidatorTable checks that the table covers the library's calling
// codes and regions in the library's order, and that none of them is left to
// the library (so the tests above exercise the validator, not the fallback).
func TestValidatorTable(t *testing.T) {
	v := theValidator()
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		c := v.codes[cc]
		ids := phonenumbers.GetRegionCodesForCountryCode(cc)
		if c == nil {
			t.Errorf("calling code %d (%v) is not in the table", cc, ids)
			continue
		}
		if c.library {
			t.Errorf("calling code %d (%v) is left to the library", cc, ids)
			continue
		}
		var got []string
		for _, r := range c.regions {
			if r == nil {
				t.Errorf("calling code %d (%v): a region without metadata", cc, ids)
				continue
			}
			if !r.ccMatches {
				t.Errorf("calling code %d: region %s has another calling code", cc, r.id)
			}
			got = append(got, r.id)
		}
		if !slices.Equal(got, ids) {
			t.Errorf("calling code %d: regions %v, library %v", cc, got, ids)
		}
	}
	if len(v.codes) != len(phonenumbers.GetSupportedCallingCodes()) {
		t.Errorf("table has %d calling codes, library %d", len(v.codes), len(phonenumbers.GetSupportedCallingCodes()))
	}
}

func FuzzValidatorMatchesLibrary(f *testing.F) {
	for _, s := range []string{
		"5491123456789", "541123456789", "525512345678", "5215512345678", "34612345678",
		"14155552671", "16135550123", "12685551234", "74951234567", "77012345678",
		"390612345678", "3903123456", "393123456789", "379066982", "447400123456",
		"441624123456", "80012345678", "8823421234", "8838123456789", "979123456789",
		"2125288123456", "0", "1", "100", "99912345678", "4400000000000000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, digits string) {
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return
			}
		}
		// Every split into a calling code of one to three digits and the
		// national significant number after it.
		for l := 1; l <= 3 && l <= len(digits); l++ {
			cc, err := strconv.Atoi(digits[:l])
			if err != nil {
				continue
			}
			compare(t, cc, digits[l:])
		}
	})
}

// BenchmarkIsValidNumber compares phonenumbers.IsValidNumber with the
// validator on the same numbers: valid and invalid, geographic and
// non-geographic, calling codes of one region and shared ones.
func BenchmarkIsValidNumber(b *testing.B) {
	var nums []*phonenumbers.PhoneNumber
	for _, s := range []struct {
		cc     int
		digits string
	}{
		{54, "91123456789"}, // AR mobile
		{54, "1123456789"},  // AR fixed line
		{54, "91103456789"}, // AR invalid
		{52, "5512345678"},  // MX
		{34, "612345678"},   // ES mobile
		{1, "4155552671"},   // US
		{1, "6135550123"},   // CA: after US fails
		{1, "2685551234"},   // AG: leading digits
		{44, "7400123456"},  // GB
		{44, "7624123456"},  // IM
		{39, "0612345678"},  // IT, leading zero
		{7, "9123456789"},   // RU
		{800, "12345678"},   // non-geographic
		{49, "15123456789"}, // DE
		{55, "11961234567"}, // BR
		{57, "3211234567"},  // CO
		{86, "13123456789"}, // CN
		{91, "9123456789"},  // IN
		{234, "8021234567"}, // NG
		{999, "1234567890"}, // no such calling code
	} {
		n, ok := numberOf(s.cc, s.digits)
		if !ok {
			b.Fatal(s)
		}
		nums = append(nums, n)
	}
	valid := 0
	for _, n := range nums {
		if validNumber(n) != phonenumbers.IsValidNumber(n) {
			b.Fatalf("%v: validator and library disagree", n)
		}
		if validNumber(n) {
			valid++
		}
	}
	b.Logf("%d numbers, %d valid", len(nums), valid)
	for _, bm := range []struct {
		name string
		f    func(*phonenumbers.PhoneNumber) bool
	}{
		{"library", phonenumbers.IsValidNumber},
		{"validator", validNumber},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				boolSink = bm.f(nums[i%len(nums)])
			}
		})
	}
}

var boolSink bool

// TestNormalizeFastMatchesSlow compares Normalize with its slow path
// (phonenumbers.ParseToNumber and phonenumbers.IsValidNumber for every
// number, as before the validator) on the example numbers of every region
// and non-geographic entity and on mutations of them, written in one of the
// ways operators write them (chosen at random with a fixed seed) and read
// with one of several default regions: same number or same error. Under the
// race detector or with -short, one input in five.
func TestNormalizeFastMatchesSlow(t *testing.T) {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		t.Fatal(err)
	}
	stride := 1
	if testing.Short() || raceEnabled {
		stride = 5
	}
	r := rand.New(rand.NewSource(7))
	var inputs [][2]string
	for _, m := range coll.GetMetadata() {
		cc := strconv.Itoa(int(m.GetCountryCode()))
		regions := []string{"", "AR", "MX", "US"}
		if ValidRegion(m.GetId()) {
			regions = append(regions, m.GetId(), m.GetId())
		}
		for _, d := range descsOf(m)[1:] {
			e := d.GetExampleNumber()
			if e == "" {
				continue
			}
			b := []byte(e)
			b[r.Intn(len(b))] = byte('0' + r.Intn(10))
			for _, nsn := range []string{e, string(b), e[:len(e)-1], e + "5"} {
				formats := []string{"+" + cc + " " + nsn, cc + nsn, "00" + cc + "-" + nsn, nsn, "0" + nsn, "(" + nsn[:1] + ") " + nsn[1:]}
				for range 2 {
					inputs = append(inputs, [2]string{formats[r.Intn(len(formats))], regions[r.Intn(len(regions))]})
				}
			}
		}
	}
	n, ok := 0, 0
	for i, in := range inputs {
		if i%stride != 0 {
			continue
		}
		n++
		fast, ferr := normalize(in[0], in[1], true)
		slow, serr := normalize(in[0], in[1], false)
		if fast != slow || (ferr == nil) != (serr == nil) || (ferr != nil && (ferr.Error() != serr.Error() || !errors.Is(ferr, errors.Unwrap(serr)))) {
			t.Errorf("normalize(%q, %q): fast %q, %v; slow %q, %v", in[0], in[1], fast, ferr, slow, serr)
		}
		if ferr == nil {
			ok++
		}
	}
	t.Logf("%d inputs, %d valid", n, ok)
}

// TestValidatorRules pins the parts of IsValidNumber's procedure that the
// embedded metadata cannot tell apart, on synthetic metadata: there, the
// general description is the union of the types, mobile and fixed line
// patterns are equal wherever the flag says so, the possible lengths agree
// with the patterns, and every number valid in a region with leading digits
// matches them, so the differential test would pass without these rules.
func TestValidatorRules(t *testing.T) {
	desc := func(pattern string, lengths ...int32) *phonenumbers.PhoneNumberDesc {
		return &phonenumbers.PhoneNumberDesc{NationalNumberPattern: &pattern, PossibleLength: lengths}
	}
	na := desc("NA", -1)
	type meta struct {
		id                     string
		cc                     int32
		leading                string
		same                   bool
		general, fixed, mobile *phonenumbers.PhoneNumberDesc
		tollFree               *phonenumbers.PhoneNumberDesc
	}
	region := func(m meta) *regionDesc {
		t.Helper()
		md := &phonenumbers.PhoneMetadata{
			Id: &m.id, CountryCode: &m.cc, SameMobileAndFixedLinePattern: &m.same,
			GeneralDesc: m.general, FixedLine: m.fixed, Mobile: m.mobile, TollFree: m.tollFree,
			PremiumRate: na, SharedCost: na, PersonalNumber: na, Voip: na, Pager: na, Uan: na, Voicemail: na,
		}
		if md.TollFree == nil {
			md.TollFree = na
		}
		if m.leading != "" {
			md.LeadingDigits = &m.leading
		}
		r, ok := make(compiler).region(md, 9, false)
		if !ok {
			t.Fatalf("region %+v not compiled", m)
		}
		return r
	}
	check := func(name string, c *callingCode, nsn string, want bool) {
		t.Helper()
		if got := c.valid(nsn); got != want {
			t.Errorf("%s: valid(%q) = %v, want %v", name, nsn, got, want)
		}
	}
	one := func(m meta) *callingCode { return &callingCode{regions: []*regionDesc{region(m)}} }
	all := desc(`\d{4,6}`)

	// Mobile is not tried when the flag says it shares the fixed line's pattern.
	split := meta{id: "XA", cc: 9, general: all, fixed: desc(`1\d{3}`), mobile: desc(`2\d{3}`)}
	check("fixed line", one(split), "1000", true)
	check("mobile", one(split), "2000", true)
	split.same = true
	check("fixed line, same flag", one(split), "1000", true)
	check("mobile, same flag", one(split), "2000", false)

	// The general description gates every type.
	check("outside the general description", one(meta{id: "XA", cc: 9, general: desc(`1\d{3}`), fixed: all, mobile: na}), "2000", false)
	// Possible lengths, when listed, must hold the length; [-1] holds none.
	check("length listed", one(meta{id: "XA", cc: 9, general: all, fixed: desc(`\d+`, 4, 6), mobile: na}), "123456", true)
	check("length not listed", one(meta{id: "XA", cc: 9, general: all, fixed: desc(`\d+`, 4, 6), mobile: na}), "12345", false)
	check("no lengths listed", one(meta{id: "XA", cc: 9, general: all, fixed: desc(`\d+`), mobile: na}), "12345", true)
	check("length -1", one(meta{id: "XA", cc: 9, general: all, fixed: desc(`\d+`, -1), mobile: na}), "12345", false)
	// Other types count; the whole number must match.
	check("toll free", one(meta{id: "XA", cc: 9, general: all, fixed: na, mobile: na, tollFree: desc(`800\d`)}), "8001", true)
	check("partial match", one(meta{id: "XA", cc: 9, general: all, fixed: desc(`800`), mobile: na}), "8001", false)
	// A region whose metadata has another calling code never validates.
	check("other calling code", one(meta{id: "XA", cc: 8, general: all, fixed: all, mobile: na}), "1000", false)

	// Shared calling code: a region whose leading digits match the start of
	// the number is chosen, valid or not; one without leading digits is
	// chosen when the number is valid there; otherwise nothing is valid.
	shared := &callingCode{regions: []*regionDesc{
		region(meta{id: "XA", cc: 9, general: all, fixed: desc(`1\d{3}`), mobile: na}),
		region(meta{id: "XB", cc: 9, leading: "5|6[01]", general: all, fixed: desc(`5\d{3}`), mobile: na}),
		region(meta{id: "XC", cc: 9, general: all, fixed: desc(`[56]\d{3}`), mobile: na}),
	}}
	check("first region, no leading digits", shared, "1000", true)
	check("leading digits, valid", shared, "5000", true)
	check("leading digits, invalid there, valid in a later region", shared, "6000", false)
	check("leading digits do not match, valid in a later region", shared, "6200", true)
	check("valid nowhere", shared, "7000", false)
	otherCode := &callingCode{regions: []*regionDesc{
		region(meta{id: "XD", cc: 8, general: all, fixed: desc(`1\d{3}`), mobile: na}),
		region(meta{id: "XA", cc: 9, general: all, fixed: desc(`1\d{3}`), mobile: na}),
	}}
	check("chosen region has another calling code", otherCode, "1000", false)
}

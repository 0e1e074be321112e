package phone

import (
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// nationalInputs returns the inputs of BenchmarkNormalizeNational: Argentine
// mobiles as exported from phones ("011 15-xxxx-xxxx"), and the national
// form (phonenumbers.Format NATIONAL) of the mobile and fixed-line example
// numbers of a mix of regions.
func nationalInputs(tb testing.TB) (ar, mix [][2]string) {
	for _, s := range []string{
		"011 15-2345-6789", "011 15-4123-4567", "(011) 15-6789-0123", "011 15 3456-7890",
		"0351 15-512-3456", "0221 15-412-3456", "0261 15-423-4567", "011 15-5555-1234",
	} {
		ar = append(ar, [2]string{s, "AR"})
	}
	for _, region := range []string{"AR", "MX", "ES", "US", "GB", "DE", "IT", "BR", "CO", "FR", "IN", "CL", "PE", "UY", "CA", "JP"} {
		for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE} {
			n := phonenumbers.GetExampleNumberForType(region, typ)
			if n == nil {
				tb.Fatalf("no example number for %s", region)
			}
			in := [2]string{phonenumbers.Format(n, phonenumbers.NATIONAL), region}
			if _, err := Normalize(in[0], in[1]); err != nil {
				// The library's national format does not always parse
				// back: AR mobiles come out as "09 15-2345-6789".
				continue
			}
			mix = append(mix, in)
		}
	}
	for _, set := range [][][2]string{ar, mix} {
		for _, in := range set {
			if _, err := Normalize(in[0], in[1]); err != nil {
				tb.Fatalf("Normalize(%q, %q): %v", in[0], in[1], err)
			}
		}
	}
	return ar, mix
}

// BenchmarkNormalizeNational measures Normalize on numbers written in the
// national format of their default region.
func BenchmarkNormalizeNational(b *testing.B) {
	ar, mix := nationalInputs(b)
	for _, set := range []struct {
		name   string
		inputs [][2]string
	}{{"AR", ar}, {"mix", mix}} {
		b.Run(set.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				in := set.inputs[i%len(set.inputs)]
				s, err := Normalize(in[0], in[1])
				if err != nil {
					b.Fatal(err)
				}
				sink = s
			}
		})
	}
}

// digitsOf returns the ASCII digits of s.
func digitsOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// BenchmarkParseNational compares phonenumbers.ParseToNumber with
// parseNational on the digits of BenchmarkNormalizeNational's inputs.
func BenchmarkParseNational(b *testing.B) {
	ar, mix := nationalInputs(b)
	for _, set := range []struct {
		name   string
		inputs [][2]string
	}{{"AR", ar}, {"mix", mix}} {
		var digits [][2]string
		for _, in := range set.inputs {
			digits = append(digits, [2]string{digitsOf(in[0]), in[1]})
		}
		for _, bm := range []struct {
			name  string
			parse func(string, string, *phonenumbers.PhoneNumber) error
		}{
			{"library", phonenumbers.ParseToNumber},
			{"fast", parseNational},
		} {
			b.Run(set.name+"/"+bm.name, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					in := digits[i%len(digits)]
					var n phonenumbers.PhoneNumber
					if err := bm.parse(in[0], in[1], &n); err != nil {
						b.Fatal(err)
					}
					uint64Sink = n.GetNationalNumber()
				}
			})
		}
	}
}

var uint64Sink uint64

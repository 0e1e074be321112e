package phone

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		raw, region, want string
	}{
		// Argentina: mobiles with 9, with the local 15, with trunk 0, as written in exports.
		{"+54 9 11 2345-6789", "AR", "+5491123456789"},
		{"011 15 2345-6789", "AR", "+5491123456789"},
		{"(011) 15-2345-6789", "AR", "+5491123456789"},
		{"11 15 2345 6789", "AR", "+5491123456789"},
		{"9 11 2345 6789", "AR", "+5491123456789"},
		{"5491123456789", "AR", "+5491123456789"},
		{"+5491123456789", "AR", "+5491123456789"},
		{"005491123456789", "AR", "+5491123456789"},
		{"+54.9.11.2345.6789", "AR", "+5491123456789"},
		{"  +54 9 11 2345 6789\t", "AR", "+5491123456789"},
		{"+54 11 2345-6789", "AR", "+541123456789"}, // a landline: valid, no 9
		// Mexico, including the pre-2019 "1" after the country code.
		{"55 1234 5678", "MX", "+525512345678"},
		{"+52 55 1234 5678", "MX", "+525512345678"},
		{"+52 1 55 1234 5678", "MX", "+525512345678"},
		{"5215512345678", "MX", "+525512345678"},
		{"+5215512345678", "AR", "+525512345678"},
		// Spain.
		{"612 34 56 78", "ES", "+34612345678"},
		{"612-34-56-78", "ES", "+34612345678"},
		{"+34 612.34.56.78", "ES", "+34612345678"},
		{"0034 612 345 678", "ES", "+34612345678"},
		{"34612345678", "ES", "+34612345678"},
		// United States.
		{"(415) 555-2671", "US", "+14155552671"},
		{"415.555.2671", "US", "+14155552671"},
		{"1 415 555 2671", "US", "+14155552671"},
		// International numbers with a different default region, with or without '+' or 00.
		{"5491123456789", "US", "+5491123456789"},
		{"005491123456789", "US", "+5491123456789"},
		{"34612345678", "AR", "+34612345678"},
		{"+34 612 34 56 78", "MX", "+34612345678"},
		// Default region is case-insensitive; empty means international only.
		{"11 15 2345 6789", "ar", "+5491123456789"},
		{"+5491123456789", "", "+5491123456789"},
		{"5491123456789", "", "+5491123456789"},
		// Other dashes and spaces pasted from word processors.
		{"+54 9 11 2345–6789", "AR", "+5491123456789"},
		{"+54\u00a09\u00a011\u00a02345\u00a06789", "AR", "+5491123456789"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.raw, tt.region)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q, %q) = %q, %v; want %q", tt.raw, tt.region, got, err, tt.want)
			continue
		}
		again, err := Normalize(got, tt.region)
		if err != nil || again != got {
			t.Errorf("Normalize(%q, %q) = %q, %v; not idempotent", got, tt.region, again, err)
		}
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		raw, region string
		reason      error
		msg         string // substring of the message
	}{
		{"", "AR", ErrEmpty, "teléfono vacío"},
		{"   ", "AR", ErrEmpty, "teléfono vacío"},
		{"abc", "AR", ErrLetters, `número inválido: "abc" (contiene letras)`},
		{"1-800-FLOWERS", "US", ErrLetters, "contiene letras"},
		{"415 555 2671 ext 12", "US", ErrLetters, "contiene letras"},
		{"tel:+5491123456789", "AR", ErrLetters, "contiene letras"},
		{"+54 9 11 2345#6789", "AR", ErrCharacters, "caracteres no válidos"},
		{"+54 9 11 2345 6789+", "AR", ErrCharacters, "caracteres no válidos"},
		{"54\x009112345678", "AR", ErrCharacters, "caracteres no válidos"},
		{"\xff\xfe12345678", "AR", ErrCharacters, "caracteres no válidos"},
		{"١١ ٢٣٤٥ ٦٧٨٩", "AR", ErrCharacters, "caracteres no válidos"},
		{"123", "AR", ErrTooShort, "demasiado corto"},
		{"1", "AR", ErrTooShort, "demasiado corto"},
		{"+54", "AR", ErrTooShort, ""},
		{"+1234567890123456789", "US", ErrTooLong, "demasiado largo"},
		{"+549112345678901234", "AR", ErrTooLong, "demasiado largo"},
		{strings.Repeat("9", 100), "AR", ErrTooLong, `"99999999999999999999999999999999…"`},
		{"1123456789", "", ErrCountry, "código de país"},
		{"+999 1234 5678", "AR", ErrCountry, "código de país"},
		{"+54 11 1", "AR", ErrTooShort, ""},
		{"---", "AR", ErrInvalid, `número inválido: "---"`},
		{"+54 9 11 0345 6789", "AR", ErrInvalid, ""},
		{"044 55 1234 5678", "MX", ErrInvalid, ""},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.raw, tt.region)
		if err == nil {
			t.Errorf("Normalize(%q, %q) = %q, want error %v", tt.raw, tt.region, got, tt.reason)
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Normalize(%q): error %T is not *Error", tt.raw, err)
		}
		if !errors.Is(err, tt.reason) {
			t.Errorf("Normalize(%q, %q) error = %v, want reason %v", tt.raw, tt.region, err, tt.reason)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%q): errors.Is(err, ErrInvalid) = false", tt.raw)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Normalize(%q) message %q, want it to contain %q", tt.raw, err.Error(), tt.msg)
		}
		if got != "" {
			t.Errorf("Normalize(%q) returned %q with an error", tt.raw, got)
		}
	}
}

func TestNormalizeBadRegion(t *testing.T) {
	for _, region := range []string{"XX", "ZZ", "001", "ARG", "A", "é"} {
		_, err := Normalize("+5491123456789", region)
		if !errors.Is(err, ErrRegion) || errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(region %q) error = %v, want ErrRegion only", region, err)
		}
	}
}

func TestValidRegion(t *testing.T) {
	for _, code := range []string{"AR", "MX", "ES", "US", "ar", " es "} {
		if !ValidRegion(code) {
			t.Errorf("ValidRegion(%q) = false", code)
		}
	}
	for _, code := range []string{"", "ZZ", "XX", "001", "ARG", "A", "U S"} {
		if ValidRegion(code) {
			t.Errorf("ValidRegion(%q) = true", code)
		}
	}
}

func TestIsE164(t *testing.T) {
	for _, s := range []string{"+5491123456789", "+12", "+123456789012345"} {
		if !IsE164(s) {
			t.Errorf("IsE164(%q) = false", s)
		}
	}
	for _, s := range []string{"", "+", "+0123", "5491123456789", "+1234567890123456", "+54 9", "+54a"} {
		if IsE164(s) {
			t.Errorf("IsE164(%q) = true", s)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"+54 9 11 2345-6789", "011 15 2345-6789", "5215512345678", "0034612345678",
		"(415) 555-2671", "1-800-FLOWERS", "", "+", "00", "+52 1 55 1234 5678", "٠١١٢٣٤٥٦٧٨٩",
		"+800 1234 5678", "+882 1234 5678", "+54 11 2345 6789", "123", "١٢٣٤٥٦٧٨٩٠",
	} {
		for _, region := range []string{"AR", "MX", "ES", "US", ""} {
			f.Add(s, region)
		}
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := Normalize(raw, region)
		if slow, serr := normalize(raw, region, false); (serr == nil) != (err == nil) {
			t.Fatalf("Normalize(%q, %q) = %q, %v; slow path %q, %v", raw, region, got, err, slow, serr)
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || got != "" {
				t.Fatalf("Normalize(%q, %q) = %q, %v (%T)", raw, region, got, err, err)
			}
			_ = err.Error()
			return
		}
		if !IsE164(got) {
			t.Fatalf("Normalize(%q, %q) = %q, not E.164", raw, region, got)
		}
		if slow, err := normalize(raw, region, false); err != nil || slow != got {
			t.Fatalf("Normalize(%q, %q) = %q, but the slow path gives %q, %v", raw, region, got, slow, err)
		}
		for _, r := range []string{region, "", "US"} {
			again, err := Normalize(got, r)
			if r == region || ValidRegion(r) || r == "" {
				if err != nil || again != got {
					t.Fatalf("Normalize(%q, %q) = %q, %v; want %q (from %q)", got, r, again, err, got, raw)
				}
			}
		}
	})
}

var sink string

// BenchmarkNormalize measures a mix of the spellings found in real files.
func BenchmarkNormalize(b *testing.B) {
	inputs := []struct{ raw, region string }{
		{"+54 9 11 2345-6789", "AR"},
		{"011 15 2345-6789", "AR"},
		{"55 1234 5678", "MX"},
		{"+34 612.34.56.78", "ES"},
		{"(415) 555-2671", "US"},
		{"5491123456789", "US"},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := inputs[i%len(inputs)]
		s, err := Normalize(in.raw, in.region)
		if err != nil {
			b.Fatal(err)
		}
		sink = s
	}
}

// BenchmarkNormalizeE164 measures input that is already canonical.
func BenchmarkNormalizeE164(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s, err := Normalize("+5491123456789", "AR")
		if err != nil {
			b.Fatal(err)
		}
		sink = s
	}
}

// Package phone turns the phone numbers operators type into spreadsheets into
// E.164 strings ("+5491123456789"), the only form LeadMaster stores.
//
// Parsing and validation are delegated to github.com/nyaruka/phonenumbers (a
// port of Google's libphonenumber); this package only decides what to accept
// around it:
//
//   - separators: spaces, dashes, dots, slashes and parentheses are ignored;
//   - a leading "+" or "00" marks an international number; without either,
//     the number is read in the default region, and if that gives no valid
//     number it is read once more as international without the "+"
//     ("5491123456789" with default region "US" is +54 9 11 2345-6789);
//   - Mexican mobiles written with the old "1" after the country code
//     ("+52 1 55 1234 5678") are accepted as their current form
//     (+525512345678), since the numbering plan dropped that digit in 2019;
//   - letters (vanity numbers, "ext."), extensions and other symbols are
//     rejected rather than guessed at, and so is any number that
//     libphonenumber does not consider valid.
//
// Validation gives exactly phonenumbers.IsValidNumber's answer, but without
// its per-call cost: validator.go compiles, once, the library's own metadata
// (the patterns and possible lengths of every region's number types and
// leading digits, taken from the collection the library loaded) and evaluates
// IsValidNumber's own procedure on them. Likewise, numbers written without
// "+" or "00" are parsed by national.go, which evaluates ParseToNumber's
// steps for a string of digits (international prefix, calling code, national
// prefix and its transform rule, possible lengths) on the library's metadata
// compiled once. The rules are the library's metadata, not rules written
// here; differential tests and fuzz targets compare both answers.
//
// The result is canonical: two spellings of the same number normalize to the
// same string, so the E.164 string itself is the key for de-duplication and
// suppression lists, and Normalize(Normalize(x)) == Normalize(x).
//
// Every rejection is a *Error whose message an operator can read
// (`número inválido: "12ab" (contiene letras)`); errors.Is(err, ErrInvalid)
// holds for every rejected number, and the more precise reason is one of the
// sentinels below.
package phone

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Reasons for rejecting a number. A *Error returned by Normalize wraps exactly
// one of them; errors.Is(err, ErrInvalid) is true for all but ErrRegion.
var (
	ErrEmpty      = errors.New("teléfono vacío")
	ErrInvalid    = errors.New("número inválido")
	ErrLetters    = errors.New("contiene letras")
	ErrCharacters = errors.New("contiene caracteres no válidos")
	ErrTooShort   = errors.New("demasiado corto")
	ErrTooLong    = errors.New("demasiado largo")
	ErrCountry    = errors.New("código de país desconocido o ausente")
	ErrExtension  = errors.New("tiene extensión")
	// ErrRegion reports a bad default region: a configuration error, not a
	// problem of the number.
	ErrRegion = errors.New("país por defecto inválido")
)

// maxInput bounds the raw input looked at. The longest E.164 number has 15
// digits; 64 bytes leaves room for generous formatting.
const maxInput = 64

// Error is a rejected phone number (or default region).
type Error struct {
	Input  string // the raw input, trimmed and shortened for display
	Reason error  // one of the sentinels of this package
}

func (e *Error) Error() string {
	switch e.Reason {
	case ErrEmpty:
		return ErrEmpty.Error()
	case ErrRegion:
		return ErrRegion.Error() + ": " + quote(e.Input)
	case ErrInvalid:
		return ErrInvalid.Error() + ": " + quote(e.Input)
	}
	return ErrInvalid.Error() + ": " + quote(e.Input) + " (" + e.Reason.Error() + ")"
}

// Unwrap returns the precise reason.
func (e *Error) Unwrap() error { return e.Reason }

// Is makes every rejected number match ErrInvalid.
func (e *Error) Is(target error) bool {
	return target == ErrInvalid && e.Reason != ErrRegion
}

// ValidRegion reports whether code is a region (ISO 3166-1 alpha-2 country,
// such as "AR", "MX", "ES", "US") that Normalize can use as default region.
// It is case-insensitive and ignores surrounding spaces; store the result of
// strings.ToUpper(strings.TrimSpace(code)).
func ValidRegion(code string) bool {
	code = strings.ToUpper(strings.TrimSpace(code))
	return len(code) == 2 && phonenumbers.GetSupportedRegions()[code]
}

// Normalize returns raw as an E.164 string ("+5491123456789").
//
// defaultRegion is the country assumed for numbers written without a country
// code, e.g. "AR" (see ValidRegion). With an empty defaultRegion only
// international numbers are accepted ("+54…", "0054…", "54…"). An unknown
// non-empty region is rejected with ErrRegion whatever the number.
//
// The error is a *Error wrapping one of ErrEmpty, ErrLetters, ErrCharacters,
// ErrTooShort, ErrTooLong, ErrCountry, ErrExtension, ErrInvalid or ErrRegion.
// Normalize is safe for concurrent use.
func Normalize(raw, defaultRegion string) (string, error) {
	return normalize(raw, defaultRegion, true)
}

// normalize is Normalize; fast enables the shortcut for international
// numbers, the parser of national.go for the others and the validator of
// validator.go. Without it, every number goes through
// phonenumbers.ParseToNumber and phonenumbers.IsValidNumber: the tests
// compare both.
func normalize(raw, defaultRegion string, fast bool) (string, error) {
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))
	if region != "" && !ValidRegion(region) {
		return "", &Error{Input: display(defaultRegion), Reason: ErrRegion}
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", &Error{Reason: ErrEmpty}
	}
	if len(s) > maxInput {
		return "", &Error{Input: display(s), Reason: ErrTooLong}
	}
	clean, digits, plus, err := scan(s)
	if err != nil {
		return "", &Error{Input: display(s), Reason: err}
	}
	switch {
	case digits == 0:
		return "", &Error{Input: display(s), Reason: ErrInvalid}
	case digits < 3: // shorter than any number libphonenumber knows
		return "", &Error{Input: display(s), Reason: ErrTooShort}
	}
	if digits > 17 { // beyond anything libphonenumber accepts
		return "", &Error{Input: display(s), Reason: ErrTooLong}
	}
	// libphonenumber is given only the digits, behind a '+' when there was
	// one: formatting carries no meaning once letters and extensions are
	// refused, and its regular expressions run faster on short input.
	international := plus || strings.HasPrefix(clean, "00")
	switch {
	case plus:
		clean = "+" + clean
	case international:
		// "00" is the international prefix of nearly every country but the
		// NANP (011), and no national number starts with it: read it as "+"
		// whatever the default region.
		clean = "+" + clean[2:]
	}
	if fast && international {
		if e164, ok := fastInternational(clean[1:]); ok {
			return e164, nil
		}
	}
	e164, reason := parse(clean, region, fast)
	if reason == nil {
		return e164, nil
	}
	if !international {
		// Maybe an international number written without its "+".
		if fast {
			if alt, ok := fastInternational(clean); ok {
				return alt, nil
			}
		}
		if alt, err := parse("+"+clean, "", fast); err == nil {
			return alt, nil
		}
	}
	return "", &Error{Input: display(strings.TrimSpace(raw)), Reason: reason}
}

// scan checks the characters of s and returns its digits (ASCII only: other
// scripts' digits are refused as ErrCharacters). It reports
// whether the first non-separator character is a '+'.
func scan(s string) (clean string, digits int, plus bool, err error) {
	var buf [maxInput]byte
	seen := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			buf[digits] = byte(r)
			digits++
			seen = true
		case r == '+':
			if seen {
				return "", 0, false, ErrCharacters
			}
			plus = true
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/' || r == '\t':
		case r == utf8.RuneError:
			return "", 0, false, ErrCharacters
		case unicode.IsLetter(r):
			return "", 0, false, ErrLetters
		case unicode.Is(unicode.Pd, r) || unicode.IsSpace(r): // en dash, no-break space…
		default:
			return "", 0, false, ErrCharacters
		}
	}
	return string(buf[:digits]), digits, plus, nil
}

// parse runs libphonenumber on s and returns the E.164 form of a valid number
// or the reason it is not one. With fast, s without a '+' is parsed by
// parseNational and validity is validNumber's answer, otherwise
// phonenumbers.ParseToNumber's and phonenumbers.IsValidNumber's (the same,
// but slower).
func parse(s, region string, fast bool) (string, error) {
	valid := phonenumbers.IsValidNumber
	if fast {
		valid = validNumber
	}
	var n phonenumbers.PhoneNumber
	parseToNumber := phonenumbers.ParseToNumber
	if fast && !strings.HasPrefix(s, "+") {
		parseToNumber = parseNational // same result: national.go
	}
	if err := parseToNumber(s, region, &n); err != nil {
		switch {
		case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
			return "", ErrCountry
		case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
			return "", ErrTooShort
		case errors.Is(err, phonenumbers.ErrNumTooLong):
			return "", ErrTooLong
		}
		return "", ErrInvalid
	}
	if n.GetExtension() != "" {
		return "", ErrExtension
	}
	if !valid(&n) {
		if n.GetCountryCode() == 52 {
			if e, ok := mexicanMobile(&n, valid); ok {
				return e, nil
			}
		}
		switch phonenumbers.IsPossibleNumberWithReason(&n) {
		case phonenumbers.TOO_SHORT:
			return "", ErrTooShort
		case phonenumbers.TOO_LONG:
			return "", ErrTooLong
		case phonenumbers.INVALID_COUNTRY_CODE:
			return "", ErrCountry
		}
		return "", ErrInvalid
	}
	e := phonenumbers.Format(&n, phonenumbers.E164)
	if !IsE164(e) {
		return "", ErrInvalid
	}
	return e, nil
}

// fastInternational returns "+"+digits when digits, split into a country
// calling code and the national number that follows, is a valid number as
// written. This skips phonenumbers.Parse, whose regular expressions cost
// about two thirds of the time, and asks validNational rather than
// phonenumbers.IsValidNumber, and gives the same result: parsing the E.164
// string of a valid number yields that number (libphonenumber's round-trip
// invariant; the tests compare both paths). National numbers with a leading
// zero (Italy) are left to the slow path.
func fastInternational(digits string) (string, bool) {
	if digits == "" || digits[0] == '0' {
		return "", false
	}
	codes := phonenumbers.GetSupportedCallingCodes()
	for l := 1; l <= 3 && l < len(digits); l++ {
		cc, err := strconv.Atoi(digits[:l])
		if err != nil || !codes[cc] {
			continue
		}
		// Calling codes are prefix-free: this is the only candidate.
		nsn := digits[l:]
		if nsn[0] == '0' || len(digits) > 15 {
			return "", false
		}
		// The number {cc, nsn} has nsn as its national significant number
		// (digits, no leading zero, at most 14 of them), so validNational
		// answers what phonenumbers.IsValidNumber would.
		if _, err := strconv.ParseUint(nsn, 10, 64); err != nil {
			return "", false
		}
		if !validNational(cc, nsn) {
			return "", false
		}
		return "+" + digits, true
	}
	return "", false
}

// mexicanMobile accepts the pre-2019 spelling of Mexican mobiles, "+52 1"
// followed by ten digits, when the ten digits alone are a valid number.
func mexicanMobile(n *phonenumbers.PhoneNumber, valid func(*phonenumbers.PhoneNumber) bool) (string, bool) {
	nsn := phonenumbers.GetNationalSignificantNumber(n)
	if len(nsn) != 11 || nsn[0] != '1' {
		return "", false
	}
	var m phonenumbers.PhoneNumber
	if err := phonenumbers.ParseToNumber("+52"+nsn[1:], "", &m); err != nil || !valid(&m) {
		return "", false
	}
	e := phonenumbers.Format(&m, phonenumbers.E164)
	return e, IsE164(e)
}

// IsE164 reports whether s has the shape of an E.164 number: '+', a non-zero
// digit, and at most 15 digits in all. It does not check the numbering plan.
func IsE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// display shortens s for an error message.
func display(s string) string {
	const max = 32
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "…"
}

func quote(s string) string { return strconv.Quote(s) }

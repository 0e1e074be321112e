package kv

// phoneNum is an E.164 number packed in 64 bits so that an import's
// in-memory dedup set and its pending index entries cost 8 bytes a phone:
// each digit d is stored as d+1 in four bits, left-aligned, zeros after the
// last digit. Numbers compare as their digit strings do, byte by byte with
// a shorter prefix first, which is the order of the phone index keys.
type phoneNum uint64

const maxPhoneDigits = 15 // E.164

// parsePhoneNum packs "+" and 1 to 15 digits, the first not zero.
func parsePhoneNum(s string) (phoneNum, bool) {
	if len(s) < 2 || len(s) > maxPhoneDigits+1 || s[0] != '+' || s[1] == '0' {
		return 0, false
	}
	var n phoneNum
	for i := 1; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return 0, false
		}
		n |= phoneNum(d+1) << (4 * (maxPhoneDigits - i))
	}
	return n, true
}

// appendTo appends the E.164 string of n.
func (n phoneNum) appendTo(dst []byte) []byte {
	dst = append(dst, '+')
	for i := 1; i <= maxPhoneDigits; i++ {
		d := byte(n>>(4*(maxPhoneDigits-i))) & 0xf
		if d == 0 {
			break
		}
		dst = append(dst, '0'+d-1)
	}
	return dst
}

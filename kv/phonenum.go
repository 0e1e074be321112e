package kv

import (
	"cmp"
	"slices"
)

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

// phoneTable is a set of phone index entries keyed by phone: an
// open-addressing hash table with linear probing, 16 bytes a slot, half the
// memory of a Go map plus a slice for the same job. Phone 0 marks a free
// slot (parsePhoneNum never returns it).
type phoneTable struct {
	slots []phoneEntry
	n     int
}

// phoneEntry is one phone index entry waiting to be written.
type phoneEntry struct {
	phone phoneNum
	seq   uint64
}

func (t *phoneTable) len() int { return t.n }

func (t *phoneTable) slot(p phoneNum) int {
	mask := len(t.slots) - 1
	i := int(uint64(p)*0x9E3779B97F4A7C15>>32) & mask // Fibonacci hashing
	for t.slots[i].phone != 0 && t.slots[i].phone != p {
		i = (i + 1) & mask
	}
	return i
}

// has reports whether p is in the table.
func (t *phoneTable) has(p phoneNum) bool {
	return t.n > 0 && t.slots[t.slot(p)].phone == p
}

// add puts e in the table unless its phone is there already.
func (t *phoneTable) add(e phoneEntry) {
	if 4*(t.n+1) > 3*len(t.slots) { // keep the load under 3/4
		old := t.slots
		t.slots, t.n = make([]phoneEntry, max(1024, 2*len(old))), 0
		for _, o := range old {
			if o.phone != 0 {
				t.add(o)
			}
		}
	}
	if i := t.slot(e.phone); t.slots[i].phone == 0 {
		t.slots[i] = e
		t.n++
	}
}

// drain returns the entries sorted by phone (the order of the index keys)
// and empties the table, reusing its memory for the result.
func (t *phoneTable) drain() []phoneEntry {
	out := t.slots[:0]
	for _, e := range t.slots {
		if e.phone != 0 {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b phoneEntry) int { return cmp.Compare(a.phone, b.phone) })
	t.slots, t.n = nil, 0
	return out
}

package iq

import "strconv"

// AppendFixed appends v / 10^places as a decimal number with exactly places
// fraction digits, computed exactly (no floating point): a fixed-point
// integer, such as hundredths of a degree, as its JSON number.
// AppendFixed(dst, 2137, 2) appends 21.37, (-5, 2) -0.05, (451, 1) 45.1 and
// (7, 0) 7; a negative places counts as 0.
func AppendFixed(dst []byte, v int64, places int) []byte {
	mag := uint64(v)
	if v < 0 {
		dst = append(dst, '-')
		mag = -mag // two's complement: right for math.MinInt64 too
	}
	if places <= 0 {
		return strconv.AppendUint(dst, mag, 10)
	}
	whole, frac := uint64(0), mag
	if places < 20 { // 10^19 is the largest power of ten a uint64 holds
		p := uint64(1)
		for range places {
			p *= 10
		}
		whole, frac = mag/p, mag%p
	}
	dst = strconv.AppendUint(dst, whole, 10)
	dst = append(dst, '.')
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], frac, 10)
	for range places - len(d) {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

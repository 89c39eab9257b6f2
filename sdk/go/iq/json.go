package iq

// AppendJSONString appends s to dst as a JSON string: " and \ escaped, \b \f
// \n \r \t in their short forms, the other bytes below 0x20 as \u00xx, and
// every other byte as it is. s should be valid UTF-8 (check it with
// utf8.Valid and Reject input that is not): the host refuses a result that is
// not UTF-8 JSON.
func AppendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	run := 0 // start of the bytes not yet copied
	for i, c := range s {
		var short byte
		switch c {
		case '"', '\\':
			short = c
		case '\b':
			short = 'b'
		case '\f':
			short = 'f'
		case '\n':
			short = 'n'
		case '\r':
			short = 'r'
		case '\t':
			short = 't'
		default:
			if c >= 0x20 {
				continue
			}
		}
		dst = append(dst, s[run:i]...)
		run = i + 1
		if short != 0 {
			dst = append(dst, '\\', short)
		} else {
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
	}
	dst = append(dst, s[run:]...)
	return append(dst, '"')
}

package serde

import "unicode/utf8"

// escapes maps every ASCII byte that may not appear raw inside a JSON string
// to its escape; zero means the byte is copied as is. Bytes >= 0x80 are
// never escaped: the input is checked to be UTF-8 up front, and JSON allows
// any Unicode character raw. <, > and & are left alone because answers are
// served as application/json, not embedded in HTML.
var escapes = func() (t [utf8.RuneSelf]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = 'u'
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = 'b', 'f', 'n', 'r', 't'
	t['"'], t['\\'] = '"', '\\'
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, as the built-in serdes
// write text: for serdes outside this package that render strings.
func AppendJSONString(dst, s []byte) ([]byte, error) { return appendJSONString(dst, s) }

// appendJSONString appends s as a JSON string. It exists because
// encoding/json would allocate (and silently replace invalid UTF-8 with
// U+FFFD, which would show a client text the producer never wrote). On error
// dst is returned unchanged, so a caller can reuse its buffer.
func appendJSONString(dst, s []byte) ([]byte, error) {
	if !utf8.Valid(s) {
		return dst, invalidf("not valid UTF-8 at byte %d", firstInvalidUTF8(s))
	}
	dst = append(dst, '"')
	run := 0 // start of the bytes not yet copied
	for i, c := range s {
		if c >= utf8.RuneSelf || escapes[c] == 0 {
			continue
		}
		dst = append(dst, s[run:i]...)
		run = i + 1
		if e := escapes[c]; e == 'u' {
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		} else {
			dst = append(dst, '\\', e)
		}
	}
	dst = append(dst, s[run:]...)
	return append(dst, '"'), nil
}

// firstInvalidUTF8 finds where s stops being UTF-8, so an error can point
// at the offending byte. Only called once utf8.Valid has said no.
func firstInvalidUTF8(s []byte) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(s)
}

package transform

import (
	"unicode/utf16"
	"unicode/utf8"

	"github.com/iqengine/iqengine/sdk/go/iq"
)

// ParseParams decodes a batch's parameters: a JSON object whose values are
// strings. Empty input is an empty object. A repeated name keeps its last
// value. Anything else is a rejection.
func ParseParams(b []byte) (map[string]string, error) {
	params := map[string]string{}
	if len(b) == 0 {
		return params, nil
	}
	var obj iq.JSONObject
	if err := obj.Open(b); err != nil {
		return nil, err
	}
	for obj.Next() {
		name, value := unquote(obj.Name()), obj.Value()
		if value[0] != '"' {
			return nil, iq.Reject("parameter %q is not a string", name)
		}
		params[name] = unquote(value[1 : len(value)-1])
	}
	return params, obj.Err()
}

// unquote decodes the text between the quotes of a JSON string that
// JSONObject has checked is well-formed. A lone surrogate escape becomes
// U+FFFD.
func unquote(b []byte) string {
	i := 0
	for i < len(b) && b[i] != '\\' {
		i++
	}
	if i == len(b) {
		return string(b) // no escapes
	}
	s := append([]byte(nil), b[:i]...)
	for i < len(b) {
		c := b[i]
		if c != '\\' {
			s = append(s, c)
			i++
			continue
		}
		switch e := b[i+1]; e {
		case 'b':
			s = append(s, '\b')
		case 'f':
			s = append(s, '\f')
		case 'n':
			s = append(s, '\n')
		case 'r':
			s = append(s, '\r')
		case 't':
			s = append(s, '\t')
		case 'u':
			r := hex4(b[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if d := utf16.DecodeRune(r, hex4(b[i+2:])); d != utf8.RuneError {
						s = utf8.AppendRune(s, d)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			s = utf8.AppendRune(s, r)
			continue
		default: // " \ /
			s = append(s, e)
		}
		i += 2
	}
	return string(s)
}

// hex4 is the value of the 4 hex digits b starts with.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

package transform

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseParams decodes a batch's parameters: a JSON object whose values are
// strings. Empty input is an empty object. A repeated name keeps its last
// value.
func ParseParams(b []byte) (map[string]string, error) {
	params := map[string]string{}
	i := skipSpace(b, 0)
	if i == len(b) {
		return params, nil
	}
	if b[i] != '{' {
		return nil, errors.New("params are not a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return params, checkEnd(b, i+1)
	}
	for {
		name, j, err := parseString(b, i)
		if err != nil {
			return nil, err
		}
		i = skipSpace(b, j)
		if i == len(b) || b[i] != ':' {
			return nil, errors.New("params: expected ':' after a name")
		}
		i = skipSpace(b, i+1)
		if i == len(b) || b[i] != '"' {
			return nil, errors.New("params: parameter " + quote(name) + " is not a string")
		}
		value, j, err := parseString(b, i)
		if err != nil {
			return nil, err
		}
		params[name] = value
		i = skipSpace(b, j)
		if i == len(b) {
			return nil, errors.New("params: unexpected end")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return params, checkEnd(b, i+1)
		default:
			return nil, errors.New("params: expected ',' or '}'")
		}
	}
}

func checkEnd(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return errors.New("params: data after the object")
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func quote(s string) string { return `"` + s + `"` }

// parseString decodes the JSON string starting at b[i] (a '"') and returns it
// with the index after its closing quote. A lone surrogate escape becomes
// U+FFFD.
func parseString(b []byte, i int) (string, int, error) {
	if i >= len(b) || b[i] != '"' {
		return "", i, errors.New("params: expected a string")
	}
	i++
	start := i
	for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
		i++
	}
	if i < len(b) && b[i] == '"' {
		return string(b[start:i]), i + 1, nil // no escapes
	}
	s := append([]byte(nil), b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return string(s), i + 1, nil
		case c < 0x20:
			return "", i, errors.New("params: control character in a string")
		case c != '\\':
			s = append(s, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			s = append(s, e)
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
			r, ok := hex4(b, i+2)
			if !ok {
				return "", i, errors.New("params: bad \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(b, i+2); ok && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						s = utf8.AppendRune(s, d)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			s = utf8.AppendRune(s, r)
			continue
		default:
			return "", i, errors.New("params: bad escape")
		}
		i += 2
	}
	return "", i, errors.New("params: unterminated string")
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

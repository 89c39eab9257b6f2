package abi

import (
	"strconv"
	"unicode/utf8"
)

// Stringer is fmt.Stringer, without importing fmt.
type Stringer interface{ String() string }

// Sprintf formats like fmt.Sprintf for a subset of it, without importing fmt
// (fmt links os and syscall, whose initialisation imports WASI functions the
// host refuses). It returns the formatted text and the first argument given
// to a %w verb that is an error.
//
// Verbs: %v %s %q %d %x %X %c %t %f %e %g %w %%, with the flags '-', '+',
// ' ' and '0', a width and a precision (all given as digits, not '*').
// Arguments: nil, error, Stringer, string, []byte, bool, the integer and
// floating-point types. Anything else, or a verb that does not fit its
// argument, is written as %!verb(?) (fmt would name the type).
func Sprintf(format string, args ...any) (string, error) {
	var (
		b       = make([]byte, 0, len(format)+16*len(args))
		argi    int
		wrapped error
	)
	for i := 0; i < len(format); {
		c := format[i]
		if c != '%' {
			j := i + 1
			for j < len(format) && format[j] != '%' {
				j++
			}
			b = append(b, format[i:j]...)
			i = j
			continue
		}
		i++
		var s spec
	flags:
		for ; i < len(format); i++ {
			switch format[i] {
			case '-':
				s.minus = true
			case '+':
				s.plus = true
			case ' ':
				s.space = true
			case '0':
				s.zero = true
			case '#':
				// accepted, ignored
			default:
				break flags
			}
		}
		for ; i < len(format) && isDigit(format[i]); i++ {
			s.width = s.width*10 + int(format[i]-'0')
		}
		s.prec = -1
		if i < len(format) && format[i] == '.' {
			i++
			s.prec = 0
			for ; i < len(format) && isDigit(format[i]); i++ {
				s.prec = s.prec*10 + int(format[i]-'0')
			}
		}
		if i >= len(format) {
			b = append(b, "%!(NOVERB)"...)
			break
		}
		verb, size := utf8.DecodeRuneInString(format[i:])
		i += size
		if verb == '%' {
			b = append(b, '%')
			continue
		}
		if argi >= len(args) {
			b = append(b, "%!"...)
			b = utf8.AppendRune(b, verb)
			b = append(b, "(MISSING)"...)
			continue
		}
		arg := args[argi]
		argi++
		if verb == 'w' {
			if err, ok := arg.(error); ok && wrapped == nil {
				wrapped = err
			}
			verb = 'v'
		}
		b = s.format(b, verb, arg)
	}
	if argi < len(args) {
		b = append(b, "%!(EXTRA "...)
		for k, a := range args[argi:] {
			if k > 0 {
				b = append(b, ", "...)
			}
			b = (&spec{prec: -1}).format(b, 'v', a)
		}
		b = append(b, ')')
	}
	return string(b), wrapped
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

type spec struct {
	minus, plus, space, zero bool
	width, prec              int
}

func (s *spec) format(b []byte, verb rune, arg any) []byte {
	switch a := arg.(type) {
	case nil:
		if verb == 'v' {
			return s.pad(b, "<nil>", false)
		}
	case error:
		return s.text(b, verb, a.Error())
	case Stringer:
		return s.text(b, verb, a.String())
	case string:
		return s.text(b, verb, a)
	case []byte:
		if verb == 'v' {
			t := make([]byte, 0, 2+4*len(a))
			t = append(t, '[')
			for k, c := range a {
				if k > 0 {
					t = append(t, ' ')
				}
				t = strconv.AppendUint(t, uint64(c), 10)
			}
			return s.pad(b, string(append(t, ']')), false)
		}
		return s.text(b, verb, string(a))
	case bool:
		if verb == 'v' || verb == 't' {
			return s.pad(b, strconv.FormatBool(a), false)
		}
	case int:
		return s.signed(b, verb, int64(a))
	case int8:
		return s.signed(b, verb, int64(a))
	case int16:
		return s.signed(b, verb, int64(a))
	case int32:
		return s.signed(b, verb, int64(a))
	case int64:
		return s.signed(b, verb, a)
	case uint:
		return s.unsigned(b, verb, uint64(a))
	case uint8:
		return s.unsigned(b, verb, uint64(a))
	case uint16:
		return s.unsigned(b, verb, uint64(a))
	case uint32:
		return s.unsigned(b, verb, uint64(a))
	case uint64:
		return s.unsigned(b, verb, a)
	case uintptr:
		return s.unsigned(b, verb, uint64(a))
	case float32:
		return s.float(b, verb, float64(a), 32)
	case float64:
		return s.float(b, verb, a, 64)
	}
	return s.bad(b, verb)
}

func (s *spec) bad(b []byte, verb rune) []byte {
	b = append(b, "%!"...)
	b = utf8.AppendRune(b, verb)
	return append(b, "(?)"...)
}

func (s *spec) text(b []byte, verb rune, t string) []byte {
	switch verb {
	case 'v', 's':
		if s.prec >= 0 {
			n := 0
			for k := range t {
				if n == s.prec {
					t = t[:k]
					break
				}
				n++
			}
		}
		return s.pad(b, t, false)
	case 'q':
		return s.pad(b, strconv.Quote(t), false)
	case 'x', 'X':
		const lower, upper = "0123456789abcdef", "0123456789ABCDEF"
		digits := lower
		if verb == 'X' {
			digits = upper
		}
		h := make([]byte, 0, 2*len(t))
		for k := 0; k < len(t); k++ {
			h = append(h, digits[t[k]>>4], digits[t[k]&15])
		}
		return s.pad(b, string(h), false)
	}
	return s.bad(b, verb)
}

func (s *spec) signed(b []byte, verb rune, v int64) []byte {
	if v >= 0 {
		return s.integer(b, verb, uint64(v), false)
	}
	return s.integer(b, verb, uint64(-v), true) // -MinInt64 wraps to its magnitude
}

func (s *spec) unsigned(b []byte, verb rune, v uint64) []byte {
	return s.integer(b, verb, v, false)
}

func (s *spec) integer(b []byte, verb rune, mag uint64, neg bool) []byte {
	var t string
	switch verb {
	case 'v', 'd':
		t = strconv.FormatUint(mag, 10)
	case 'x':
		t = strconv.FormatUint(mag, 16)
	case 'X':
		t = strconv.FormatUint(mag, 16)
		for k := 0; k < len(t); k++ {
			if 'a' <= t[k] && t[k] <= 'f' {
				t = upperHex(t)
				break
			}
		}
	case 'c':
		if neg || mag > utf8.MaxRune {
			return s.pad(b, string(utf8.RuneError), false)
		}
		return s.pad(b, string(rune(mag)), false)
	case 'q':
		if neg || mag > utf8.MaxRune {
			return s.pad(b, strconv.QuoteRune(utf8.RuneError), false)
		}
		return s.pad(b, strconv.QuoteRune(rune(mag)), false)
	default:
		return s.bad(b, verb)
	}
	switch {
	case neg:
		t = "-" + t
	case s.plus:
		t = "+" + t
	case s.space:
		t = " " + t
	}
	return s.pad(b, t, true)
}

func upperHex(t string) string {
	u := []byte(t)
	for k, c := range u {
		if 'a' <= c && c <= 'f' {
			u[k] = c - 'a' + 'A'
		}
	}
	return string(u)
}

func (s *spec) float(b []byte, verb rune, v float64, bits int) []byte {
	var t string
	switch verb {
	case 'v', 'g':
		t = strconv.FormatFloat(v, 'g', s.prec, bits)
	case 'f', 'e':
		prec := s.prec
		if prec < 0 {
			prec = 6
		}
		t = strconv.FormatFloat(v, byte(verb), prec, bits)
	default:
		return s.bad(b, verb)
	}
	if t[0] != '-' && t[0] != '+' {
		switch {
		case s.plus:
			t = "+" + t
		case s.space:
			t = " " + t
		}
	}
	return s.pad(b, t, true)
}

// pad writes t padded to the width. Numbers padded with zeros keep their sign
// first.
func (s *spec) pad(b []byte, t string, number bool) []byte {
	n := utf8.RuneCountInString(t)
	if n >= s.width {
		return append(b, t...)
	}
	fill := s.width - n
	if s.minus {
		b = append(b, t...)
		for ; fill > 0; fill-- {
			b = append(b, ' ')
		}
		return b
	}
	if s.zero {
		if number && len(t) > 0 && (t[0] == '-' || t[0] == '+' || t[0] == ' ') {
			b = append(b, t[0])
			t = t[1:]
		}
		for ; fill > 0; fill-- {
			b = append(b, '0')
		}
		return append(b, t...)
	}
	for ; fill > 0; fill-- {
		b = append(b, ' ')
	}
	return append(b, t...)
}

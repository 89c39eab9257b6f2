package main

// decimal is an exact decimal number: (-1 if neg) × 0.DIGITS × 10^exp, with
// no leading or trailing zeros in digits; zero has no digits. Comparing JSON
// numbers this way is exact, whatever their size or precision (a float64
// would round 99.99999999999999999 up to 100).
type decimal struct {
	neg    bool
	digits string
	exp    int64
}

// expLimit bounds exponents: past it a number's order of magnitude already
// exceeds anything its digits (at most 2^31 of them) can change.
const expLimit = 1 << 50

// newDecimal builds a decimal from the digits of the integer and fraction
// parts and a power-of-ten exponent.
func newDecimal(neg bool, intPart, fracPart string, exp int64) decimal {
	digits := intPart + fracPart
	exp += int64(len(intPart))
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
		exp--
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	if digits == "" {
		return decimal{}
	}
	return decimal{neg: neg, digits: digits, exp: exp}
}

// parseMantissa reads [-]digits[.digits] from the start of s and returns
// where it stopped; ok is false if the integer or fraction part is empty.
func parseMantissa(s string) (neg bool, intPart, fracPart string, i int, ok bool) {
	if i < len(s) && s[i] == '-' {
		neg, i = true, i+1
	}
	start := i
	i = skipDigits(s, i)
	intPart = s[start:i]
	if intPart == "" {
		return false, "", "", i, false
	}
	if i < len(s) && s[i] == '.' {
		start = i + 1
		i = skipDigits(s, start)
		fracPart = s[start:i]
		if fracPart == "" {
			return false, "", "", i, false
		}
	}
	return neg, intPart, fracPart, i, true
}

// parseParamDecimal parses a min_ parameter: [-]digits[.digits].
func parseParamDecimal(s string) (decimal, bool) {
	neg, intPart, fracPart, i, ok := parseMantissa(s)
	if !ok || i != len(s) {
		return decimal{}, false
	}
	return newDecimal(neg, intPart, fracPart, 0), true
}

// parseJSONNumber parses a JSON number token,
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; anything else (a string,
// an object, nothing) is not a number.
func parseJSONNumber(b []byte) (decimal, bool) {
	s := string(b)
	neg, intPart, fracPart, i, ok := parseMantissa(s)
	if !ok || (len(intPart) > 1 && intPart[0] == '0') {
		return decimal{}, false
	}
	var exp int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg, i = s[i] == '-', i+1
		}
		start := i
		i = skipDigits(s, i)
		if i == start {
			return decimal{}, false
		}
		for _, c := range s[start:i] {
			if exp < expLimit {
				exp = exp*10 + int64(c-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return decimal{}, false
	}
	return newDecimal(neg, intPart, fracPart, exp), true
}

func skipDigits(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// compare returns -1, 0 or +1 as a is less than, equal to or greater than b.
func compare(a, b decimal) int {
	sa, sb := a.sign(), b.sign()
	if sa != sb {
		if sa < sb {
			return -1
		}
		return 1
	}
	if sa == 0 {
		return 0
	}
	var mag int // |a| against |b|
	switch {
	case a.exp != b.exp:
		mag = -1
		if a.exp > b.exp {
			mag = 1
		}
	case a.digits < b.digits:
		mag = -1
	case a.digits > b.digits:
		mag = 1
	}
	return sa * mag
}

func (d decimal) sign() int {
	switch {
	case d.digits == "":
		return 0
	case d.neg:
		return -1
	}
	return 1
}

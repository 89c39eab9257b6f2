package iq

// The SDK helpers every language's SDK has under the same names
// (sdk/ABI.md, "SDK helpers"): a JSON object walker, a JSON string writer and
// a fixed-point number writer. Integers are strconv.AppendInt and AppendUint.

// AppendJSONString appends s to dst as a JSON string: " and \ escaped, \b \f
// \n \r \t in their short forms, the other bytes below 0x20 as \u00xx, and
// every other byte as it is. s should be valid UTF-8 (check it with
// utf8.Valid and Reject input that is not): the host refuses a result that is
// not UTF-8 JSON.
func AppendJSONString[S string | []byte](dst []byte, s S) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	run := 0 // start of the bytes not yet copied
	for i := 0; i < len(s); i++ {
		c := s[i]
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

// JSONMaxDepth is the deepest nesting of arrays and objects JSONObject
// accepts in a member's value.
const JSONMaxDepth = 10000

// JSONObject walks the members of a JSON object without copying anything:
// each member's name is the raw text between its quotes (escapes are not
// resolved) and its value the raw JSON text, both viewing the input. The
// walk is strict: it stops with an error at the first byte that is not
// well-formed JSON, including anything but whitespace after the object.
//
//	var obj iq.JSONObject
//	if err := obj.Open(value); err != nil {
//		return nil, false, err // not an object: a rejection
//	}
//	for obj.Next() {
//		use(obj.Name(), obj.Value())
//	}
//	if err := obj.Err(); err != nil {
//		return nil, false, err // malformed: a rejection
//	}
//
// A JSONObject may be reused for another input by calling Open again.
type JSONObject struct {
	b           []byte
	i           int
	started     bool // a member has been read
	name, value []byte
	err         error
	stack       []byte // the open '{' and '[' of the value being skipped
}

// Open starts a walk over b, which must be a JSON object after optional
// whitespace; otherwise it returns a rejection (and Next returns false).
func (o *JSONObject) Open(b []byte) error {
	o.b, o.started, o.name, o.value, o.err = b, false, nil, nil, nil
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		o.i, o.err = len(b), Reject("not a JSON object")
		return o.err
	}
	o.i = i + 1
	return nil
}

// Next reads the next member. It returns false at the end of the object or
// at the first malformed byte (then Err says so).
func (o *JSONObject) Next() bool {
	if o.err != nil || o.b == nil {
		return false
	}
	b := o.b
	i := skipSpace(b, o.i)
	if i < len(b) && b[i] == '}' {
		if skipSpace(b, i+1) != len(b) {
			return o.malformed(i + 1)
		}
		o.b = nil // done
		return false
	}
	if o.started {
		if i == len(b) || b[i] != ',' {
			return o.malformed(i)
		}
		i = skipSpace(b, i+1)
	}
	if i == len(b) || b[i] != '"' {
		return o.malformed(i)
	}
	end, ok := skipString(b, i)
	if !ok {
		return o.malformed(i)
	}
	name := b[i+1 : end-1]
	i = skipSpace(b, end)
	if i == len(b) || b[i] != ':' {
		return o.malformed(i)
	}
	i = skipSpace(b, i+1)
	if end, ok = o.skipValue(b, i); !ok {
		return o.malformed(i)
	}
	o.name, o.value, o.i, o.started = name, b[i:end], end, true
	return true
}

// Name is the current member's name: the raw text between its quotes.
func (o *JSONObject) Name() []byte { return o.name }

// Value is the current member's value: its raw JSON text.
func (o *JSONObject) Value() []byte { return o.value }

// Err is the rejection that stopped the walk: the input is not an object,
// or not well-formed JSON; nil after a complete walk.
func (o *JSONObject) Err() error { return o.err }

func (o *JSONObject) malformed(at int) bool {
	o.err = Reject("not well-formed JSON (at byte %d)", at)
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string opening at b[i] (a '"').
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c != '\\':
			i++
		case i+1 == len(b):
			return i, false
		case b[i+1] == 'u':
			if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
				return i, false
			}
			i += 6
		default:
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			default:
				return i, false
			}
		}
	}
	return i, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// skipNumber returns the index after the JSON number starting at b[i].
func skipNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	ok := len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
	return i + len(lit), ok
}

// skipKey skips `"name" :` and the whitespace after the colon, from b[i].
func skipKey(b []byte, i int) (int, bool) {
	if i == len(b) || b[i] != '"' {
		return i, false
	}
	i, ok := skipString(b, i)
	if !ok {
		return i, false
	}
	i = skipSpace(b, i)
	if i == len(b) || b[i] != ':' {
		return i, false
	}
	return skipSpace(b, i+1), true
}

// skipValue returns the index after the JSON value starting at b[i],
// checking it is well-formed, nested at most JSONMaxDepth deep.
func (o *JSONObject) skipValue(b []byte, i int) (int, bool) {
	stack := o.stack[:0]
	defer func() { o.stack = stack }()
	for {
		// A value starts at b[i].
		if i == len(b) {
			return i, false
		}
		ok := true
		switch c := b[i]; c {
		case '{', '[':
			if len(stack) == JSONMaxDepth {
				return i, false
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if i, ok = skipKey(b, i); !ok {
					return i, false
				}
			}
			continue
		case '"':
			i, ok = skipString(b, i)
		case 't':
			i, ok = skipLiteral(b, i, "true")
		case 'f':
			i, ok = skipLiteral(b, i, "false")
		case 'n':
			i, ok = skipLiteral(b, i, "null")
		default:
			i, ok = skipNumber(b, i)
		}
		if !ok {
			return i, false
		}
		// After a value: close containers until a comma or the end.
		for {
			if len(stack) == 0 {
				return i, true
			}
			i = skipSpace(b, i)
			if i == len(b) {
				return i, false
			}
			top := stack[len(stack)-1]
			if b[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return i, false
			}
			i = skipSpace(b, i+1)
			if top == '{' {
				if i, ok = skipKey(b, i); !ok {
					return i, false
				}
			}
			break
		}
	}
}

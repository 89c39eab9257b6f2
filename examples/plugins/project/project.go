package main

import (
	"maps"
	"slices"
	"strings"

	"github.com/iqengine/iqengine/sdk/go/iq"
)

// projection is one batch's parameters, checked once at its start.
type projection struct {
	all    bool     // no fields parameter: keep every member
	fields []string // else the names to keep (raw text between the quotes)
	mins   []minimum
	// members is reused from record to record.
	members []member
}

// minimum is a min_FIELD parameter: keep only records whose top-level FIELD
// is a JSON number >= min.
type minimum struct {
	field string
	min   decimal
}

// member is one top-level member of the value object: its name (the raw
// text between the quotes) and its value's bytes.
type member struct {
	name, value []byte
}

// newProjection checks a batch's parameters: fields (comma-separated names)
// and any number of min_FIELD (a decimal number, [-]digits[.digits]);
// anything else is rejected.
func newProjection(params map[string]string) (*projection, error) {
	p := &projection{all: true}
	for _, name := range slices.Sorted(maps.Keys(params)) { // sorted: the first error is always the same
		value := params[name]
		switch {
		case name == "fields":
			p.all = false
			p.fields = strings.Split(value, ",")
		case strings.HasPrefix(name, "min_"):
			d, ok := parseParamDecimal(value)
			if !ok {
				return nil, iq.Reject("parameter %s=%q: want a decimal number ([-]digits[.digits])", name, value)
			}
			p.mins = append(p.mins, minimum{field: name[len("min_"):], min: d})
		default:
			return nil, iq.Reject("unknown parameter %q (want fields or min_FIELD)", name)
		}
	}
	return p, nil
}

// apply projects and filters one value: it appends the kept members to dst
// as an object, or returns keep=false when a min_ filter leaves the record
// out.
func (p *projection) apply(dst, value []byte) (out []byte, keep bool, err error) {
	p.members, err = parseObject(p.members[:0], value)
	if err != nil {
		return dst, false, err
	}
	for _, m := range p.mins {
		var v []byte // the last member of that name, as JSON parsers do
		for _, mem := range p.members {
			if string(mem.name) == m.field {
				v = mem.value
			}
		}
		n, ok := parseJSONNumber(v)
		if !ok || compare(n, m.min) < 0 {
			return dst, false, nil
		}
	}
	dst = append(dst, '{')
	first := true
	for _, mem := range p.members {
		if !p.all && !slices.Contains(p.fields, string(mem.name)) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, mem.name...)
		dst = append(dst, '"', ':')
		dst = append(dst, mem.value...)
	}
	return append(dst, '}'), true, nil
}

// parseObject splits a JSON object into its top-level members, appended to
// members. Whitespace between tokens is skipped; each value's bytes are kept
// as they are. The input is assumed well-formed (the store's value
// serializer produced it): nested values are delimited, not validated.
func parseObject(members []member, b []byte) ([]member, error) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return members, iq.Reject("the value is not a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return members, checkEnd(b, i+1)
	}
	for {
		if i == len(b) || b[i] != '"' {
			return members, malformed()
		}
		end, ok := skipString(b, i)
		if !ok {
			return members, malformed()
		}
		name := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i == len(b) || b[i] != ':' {
			return members, malformed()
		}
		i = skipSpace(b, i+1)
		end, ok = skipValue(b, i)
		if !ok {
			return members, malformed()
		}
		members = append(members, member{name: name, value: b[i:end]})
		i = skipSpace(b, end)
		if i == len(b) {
			return members, malformed()
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return members, checkEnd(b, i+1)
		default:
			return members, malformed()
		}
	}
}

func malformed() error { return iq.Reject("the value is not a well-formed JSON object") }

func checkEnd(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return malformed()
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] (a '"').
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return i, false
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return end, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return i, false
	case c == '-' || ('0' <= c && c <= '9'):
		j := i + 1
		for j < len(b) && strings.IndexByte("0123456789+-.eE", b[j]) >= 0 {
			j++
		}
		return j, true
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(string(b[i:min(i+len(lit), len(b))]), lit) {
				return i + len(lit), true
			}
		}
		return i, false
	}
}

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
	// obj and members are reused from record to record.
	obj     iq.JSONObject
	members []member
}

// minimum is a min_FIELD parameter: keep only records whose top-level FIELD
// is a JSON number >= min.
type minimum struct {
	field string
	min   decimal
}

// member is one top-level member of the value object, as iq.JSONObject
// gives it: its name (the raw text between the quotes) and its value's JSON.
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
	p.members = p.members[:0]
	if err = p.obj.Open(value); err != nil {
		return dst, false, err
	}
	for p.obj.Next() {
		p.members = append(p.members, member{name: p.obj.Name(), value: p.obj.Value()})
	}
	if err = p.obj.Err(); err != nil {
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

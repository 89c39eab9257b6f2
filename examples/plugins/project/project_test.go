package main

import (
	"testing"

	"github.com/iqengine/iqengine/sdk/go/iq"
	"github.com/iqengine/iqengine/sdk/go/iq/iqtest"
)

// TestVectors runs the shared conformance vectors (vectors.jsonl links to
// sdk/conformance/project.jsonl) through the registered handler.
func TestVectors(t *testing.T) {
	iqtest.Run(t, "vectors.jsonl")
}

func TestProjection(t *testing.T) {
	p, err := newProjection(map[string]string{"fields": "b,a", "min_n": "-1.5"})
	if err != nil {
		t.Fatal(err)
	}
	out, keep, err := p.apply(nil, []byte(` { "a" : [1, {"x":"}"}] , "n":-1.5, "b":"s" } `))
	if err != nil || !keep || string(out) != `{"a":[1, {"x":"}"}],"b":"s"}` {
		t.Fatalf("apply = %s, %v, %v", out, keep, err)
	}
	// the members buffer is reused: a second record must not see the first
	out, keep, err = p.apply(out[:0], []byte(`{"n":0,"a":1}`))
	if err != nil || !keep || string(out) != `{"a":1}` {
		t.Fatalf("apply = %s, %v, %v", out, keep, err)
	}
	if _, keep, err := p.apply(nil, []byte(`{"n":-2}`)); err != nil || keep {
		t.Fatalf("below the minimum: keep=%v, %v", keep, err)
	}
	for _, bad := range []string{``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1} x`, `{"a":1 "b":2}`, `{"a":tru}`, `{"a":"x}`} {
		if _, _, err := p.apply(nil, []byte(bad)); !iq.IsReject(err) {
			t.Errorf("apply(%q): err = %v, want a rejection", bad, err)
		}
	}
}

func TestNewProjectionRejects(t *testing.T) {
	for _, params := range []map[string]string{
		{"x": "1"}, {"min_a": "1e2"}, {"min_a": ""}, {"min_a": "1."}, {"min_a": "+1"}, {"fields": "a", "FIELDS": "b"},
	} {
		if _, err := newProjection(params); !iq.IsReject(err) {
			t.Errorf("newProjection(%v): err = %v, want a rejection", params, err)
		}
	}
}

func TestCompare(t *testing.T) {
	num := func(s string) decimal {
		d, ok := parseJSONNumber([]byte(s))
		if !ok {
			t.Fatalf("parseJSONNumber(%q) failed", s)
		}
		return d
	}
	cases := []struct {
		a, b string
		want int
	}{
		{"1", "2", -1}, {"2", "1", 1}, {"1", "1.0", 0}, {"-0", "0", 0}, {"0.0e5", "-0", 0},
		{"-1", "1", -1}, {"-2", "-1", -1}, {"-0.05", "-0.050", 0}, {"25e-3", "0.025", 0},
		{"2.5E+1", "25", 0}, {"1e400", "1e399", 1}, {"1e-400", "0", 1}, {"-1e-400", "0", -1},
		{"99.99999999999999999", "100", -1}, {"100.00000000000000001", "100", 1},
		{"123456789012345678901234567890", "123456789012345678901234567889", 1},
		{"10", "9", 1}, {"0.1", "0.09", 1}, {"12", "123", -1}, {"13", "123", -1}, {"1e999999999999999999999", "1e999999999999999999998", 0},
	}
	for _, c := range cases {
		if got := compare(num(c.a), num(c.b)); got != c.want {
			t.Errorf("compare(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	for _, s := range []string{"", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x1", "1 ", `"1"`, "true", "--1", "1.2.3"} {
		if _, ok := parseJSONNumber([]byte(s)); ok {
			t.Errorf("parseJSONNumber(%q) accepted", s)
		}
	}
	for _, s := range []string{"0", "-0", "007", "1.5", "-21.37"} {
		if _, ok := parseParamDecimal(s); !ok {
			t.Errorf("parseParamDecimal(%q) rejected", s)
		}
	}
	for _, s := range []string{"", "-", "1e3", "+1", ".5", "5.", "1.2.3", " 1", "1 "} {
		if _, ok := parseParamDecimal(s); ok {
			t.Errorf("parseParamDecimal(%q) accepted", s)
		}
	}
}

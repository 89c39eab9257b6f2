package iq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestAppendJSONString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`say "hi" \ bye`, `"say \"hi\" \\ bye"`},
		{"a\nb\rc\td\be\ff", `"a\nb\rc\td\be\ff"`},
		{"\x00\x01\x1f ", `"\u0000\u0001\u001f "`},
		{"Kühlraum <&> \u2028", "\"Kühlraum <&> \u2028\""},
		{"hall", `"hall"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1b\x1f", `"\u0000\u0001\u001b\u001f"`},
		{"\x7f é日本😀 <>&/\u2028", "\"\x7f é日本😀 <>&/\u2028\""},
	} {
		if got := AppendJSONString(nil, c.in); string(got) != c.want {
			t.Errorf("AppendJSONString(string %q) = %s, want %s", c.in, got, c.want)
		}
		got := AppendJSONString([]byte("x"), []byte(c.in))
		if string(got) != "x"+c.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", c.in, got[1:], c.want)
		}
		var back string
		if err := json.Unmarshal(got[1:], &back); err != nil || back != c.in {
			t.Errorf("%s decodes to %q, %v; want %q", got[1:], back, err, c.in)
		}
	}
	// Every byte below 0x80 round-trips.
	all := make([]byte, 0x80)
	for i := range all {
		all[i] = byte(i)
	}
	var back string
	if err := json.Unmarshal(AppendJSONString(nil, all), &back); err != nil || back != string(all) {
		t.Fatalf("ASCII round trip: %q, %v", back, err)
	}
}

// walk is every member of a JSONObject walk, as name=value lines, and the
// error that ended it.
func walk(in string) (string, error) {
	var obj JSONObject
	if err := obj.Open([]byte(in)); err != nil {
		return "", err
	}
	var b strings.Builder
	for obj.Next() {
		fmt.Fprintf(&b, "%s=%s\n", obj.Name(), obj.Value())
	}
	return b.String(), obj.Err()
}

func TestJSONObject(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{}`, ``},
		{" \t\r\n{ } \n", ``},
		{`{"a":1}`, "a=1\n"},
		{` { "a" : [1, {"x":"}"}] , "n":-1.5e+3, "b":"s" } `, "a=[1, {\"x\":\"}\"}]\nn=-1.5e+3\nb=\"s\"\n"},
		{`{"a\"b":{"c":[[],{}]},"e\u00e9":true,"f":false,"n":null,"a\"b":0}`, "a\\\"b={\"c\":[[],{}]}\ne\\u00e9=true\nf=false\nn=null\na\\\"b=0\n"},
		{`{"s":"\"\\\/\b\f\n\r\t\u12aF","x":0.5,"y":-0,"z":1E-2}`, "s=\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u12aF\"\nx=0.5\ny=-0\nz=1E-2\n"},
	} {
		got, err := walk(c.in)
		if err != nil || got != c.want {
			t.Errorf("walk(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{``, ` `, `[]`, `"x"`, `1`, `null`, `x{}`} {
		if _, err := walk(in); !IsReject(err) || !strings.Contains(err.Error(), "not a JSON object") {
			t.Errorf("walk(%q): %v, want a rejection: not a JSON object", in, err)
		}
	}
}

// The walk accepts exactly the objects encoding/json accepts.
func TestJSONObjectIsStrict(t *testing.T) {
	pieces := []string{`{`, `}`, `[`, `]`, `"a"`, `"\u00e9"`, `"\x"`, `"\u12"`, "\"\x01\"", `:`, `,`, ` `, `1`, `-`, `-0`, `01`, `1.`, `.5`, `1e`, `1e+2`,
		`true`, `tru`, `false`, `null`, `nul`, `x`, `"`, `\`}
	var obj JSONObject
	n := 0
	for a := range pieces {
		for b := range pieces {
			for c := range pieces {
				for _, in := range []string{`{"k":` + pieces[a] + pieces[b] + pieces[c] + `}`, `{` + pieces[a] + pieces[b] + pieces[c]} {
					if obj.Open([]byte(in)) != nil {
						continue
					}
					for obj.Next() {
					}
					if ok := obj.Err() == nil; ok != json.Valid([]byte(in)) {
						t.Errorf("walk(%s): ok=%v, encoding/json says %v (%v)", in, ok, !ok, obj.Err())
					}
					n++
				}
			}
		}
	}
	deep := `{"d":` + strings.Repeat("[", JSONMaxDepth) + strings.Repeat("]", JSONMaxDepth) + `}`
	if _, err := walk(deep); err != nil {
		t.Errorf("nesting %d deep: %v", JSONMaxDepth, err)
	}
	if _, err := walk(`{"d":[` + deep[len(`{"d":`):len(deep)-1] + `]}`); !IsReject(err) {
		t.Errorf("nesting %d deep: %v, want a rejection", JSONMaxDepth+1, err)
	}
	if got, err := walk(`{"a":1} x`); got != "a=1\n" || !IsReject(err) {
		t.Errorf("trailing bytes: %q, %v; want the member, then a rejection", got, err)
	}
	if testing.Verbose() {
		t.Logf("%d objects compared with encoding/json", n)
	}
}

func TestJSONObjectReuseAndAllocations(t *testing.T) {
	var obj JSONObject
	in := []byte(`{"a":[1,{"b":[2]}],"c":"d"}`)
	allocs := testing.AllocsPerRun(100, func() {
		if obj.Open(in) != nil {
			t.Fatal("open")
		}
		for obj.Next() {
		}
		if obj.Err() != nil {
			t.Fatal(obj.Err())
		}
	})
	if allocs != 0 {
		t.Errorf("a walk allocates %v times, want 0 once warm", allocs)
	}
	if obj.Next() {
		t.Error("Next after the end")
	}
	if !bytes.Equal(obj.Value(), []byte(`"d"`)) {
		t.Errorf("Value after the end = %s, want the last member's", obj.Value())
	}
}

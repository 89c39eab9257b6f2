package iq

import (
	"encoding/json"
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

package serde_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/iqengine/iqengine/serde"
)

func lookup(t testing.TB, name string) serde.Serde {
	t.Helper()
	s, err := serde.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuiltinNames(t *testing.T) {
	want := []string{"bytes", "float64", "int32", "int64", "json", "string", "uuid"}
	if got := serde.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	for _, n := range want {
		if got := lookup(t, n).Name(); got != n {
			t.Errorf("Lookup(%q).Name() = %q", n, got)
		}
	}
	if _, err := serde.Lookup("avro"); err == nil || !strings.Contains(err.Error(), "int64") {
		t.Errorf("Lookup(avro) error = %v, want one listing the built-ins", err)
	}
}

// One row per text key: the Kafka bytes a Java producer would have written
// for it, and the JSON an answer shows for those bytes.
func TestFromTextThenAppendJSON(t *testing.T) {
	for _, c := range []struct {
		serde, text string
		kafka       string // hex
		json        string
	}{
		{"string", "hello", "68656c6c6f", `"hello"`},
		{"string", "", "", `""`},
		{"string", "zoë 日本", "7a6fc3ab20e697a5e69cac", `"zoë 日本"`},
		{"string", "say \"hi\"\\", "7361792022686922 5c", `"say \"hi\"\\"`},
		{"string", "a\nb\tc\rd\be\ff", "610a6209630d6408650c66", `"a\nb\tc\rd\be\ff"`},
		{"string", "\x00\x1f\x7f", "001f7f", `"\u0000\u001f` + "\x7f" + `"`},
		{"string", "<a&b>", "3c6126623e", `"<a&b>"`},

		{"json", `{"a":[1,2]}`, "7b2261223a5b312c325d7d", `{"a":[1,2]}`},
		{"json", ` "x" `, "2022782220", ` "x" `}, // kept as given
		{"json", `null`, "6e756c6c", `null`},

		{"bytes", "AAEC/w==", "000102ff", `"AAEC/w=="`},
		{"bytes", "AAEC/w", "000102ff", `"AAEC/w=="`},
		{"bytes", "AAEC_w==", "000102ff", `"AAEC/w=="`},
		{"bytes", "AAEC_w", "000102ff", `"AAEC/w=="`},
		{"bytes", "+/+/", "fbffbf", `"+/+/"`},
		{"bytes", "", "", `""`},

		{"int32", "0", "00000000", `0`},
		{"int32", "1", "00000001", `1`},
		{"int32", "-1", "ffffffff", `-1`},
		{"int32", "+7", "00000007", `7`},
		{"int32", "2147483647", "7fffffff", `2147483647`},
		{"int32", "-2147483648", "80000000", `-2147483648`},

		{"int64", "42", "000000000000002a", `42`},
		{"int64", "-2", "fffffffffffffffe", `-2`},
		{"int64", "9223372036854775807", "7fffffffffffffff", `9223372036854775807`},
		{"int64", "-9223372036854775808", "8000000000000000", `-9223372036854775808`},

		{"float64", "1.5", "3ff8000000000000", `1.5`},
		{"float64", "-0", "8000000000000000", `-0`},
		{"float64", "0.1", "3fb999999999999a", `0.1`},
		{"float64", "1e21", "444b1ae4d6e2ef50", `1e+21`},
		{"float64", "1e-7", "3e7ad7f29abcaf48", `1e-7`},
		{"float64", "123456789", "419d6f3454000000", `123456789`},
		{"float64", "NaN", "7ff8000000000000", `"NaN"`}, // Java's canonical NaN
		{"float64", "+Inf", "7ff0000000000000", `"+Inf"`},
		{"float64", "-Inf", "fff0000000000000", `"-Inf"`},

		{"uuid", "123e4567-e89b-12d3-a456-426614174000",
			hex.EncodeToString([]byte("123e4567-e89b-12d3-a456-426614174000")),
			`"123e4567-e89b-12d3-a456-426614174000"`},
		{"uuid", "123E4567-E89B-12D3-A456-426614174000", // lower-cased, as Java writes
			hex.EncodeToString([]byte("123e4567-e89b-12d3-a456-426614174000")),
			`"123e4567-e89b-12d3-a456-426614174000"`},
	} {
		s := lookup(t, c.serde)
		kafka, err := s.FromText(c.text)
		if err != nil {
			t.Errorf("%s.FromText(%q): %v", c.serde, c.text, err)
			continue
		}
		if want := unhex(t, c.kafka); !bytes.Equal(kafka, want) {
			t.Errorf("%s.FromText(%q) = %x, want %x", c.serde, c.text, kafka, want)
		}
		got, err := s.AppendJSON([]byte("prefix:"), kafka)
		if err != nil {
			t.Errorf("%s.AppendJSON(%x): %v", c.serde, kafka, err)
			continue
		}
		if want := "prefix:" + c.json; string(got) != want {
			t.Errorf("%s.AppendJSON(%x) = %s, want %s", c.serde, kafka, got, want)
		}
		if !json.Valid(got[len("prefix:"):]) {
			t.Errorf("%s.AppendJSON(%x) = %s, not valid JSON", c.serde, kafka, got)
		}
	}
}

// The answer for a record must be something the same serde takes back as a
// key, so a client can look up what it was shown.
func TestAnswerIsUsableAsKey(t *testing.T) {
	for _, c := range []struct{ serde, kafka string }{
		{"int32", "fffffff6"},
		{"int64", "0000011f71fb04cb"},
		{"float64", "7ff8000000000000"},
		{"float64", "fff0000000000000"},
		{"float64", "0000000000000001"}, // smallest subnormal
		{"float64", "7fefffffffffffff"}, // largest finite
		{"bytes", "00ff10"},
	} {
		s := lookup(t, c.serde)
		kafka := unhex(t, c.kafka)
		out, err := s.AppendJSON(nil, kafka)
		if err != nil {
			t.Fatalf("%s.AppendJSON(%x): %v", c.serde, kafka, err)
		}
		text := string(out)
		if unq, err := strconvUnquote(text); err == nil {
			text = unq
		}
		back, err := s.FromText(text)
		if err != nil || !bytes.Equal(back, kafka) {
			t.Errorf("%s: %x → %s → %x, %v", c.serde, kafka, out, back, err)
		}
	}
}

func strconvUnquote(s string) (string, error) {
	var v string
	err := json.Unmarshal([]byte(s), &v)
	return v, err
}

func TestFromTextRejects(t *testing.T) {
	for _, c := range []struct {
		serde, text string
		msg         string // part of the error message
	}{
		{"int64", "abc", `"abc" is not an int64`},
		{"int64", "", `"" is not an int64`},
		{"int64", "1.0", `"1.0" is not an int64`},
		{"int64", "0x10", `"0x10" is not an int64`},
		{"int64", " 1", `" 1" is not an int64`},
		{"int64", "9223372036854775808", `"9223372036854775808" is out of range for int64`},
		{"int32", "abc", `"abc" is not an int32`},
		{"int32", "2147483648", `"2147483648" is out of range for int32`},
		{"int32", "-2147483649", `"-2147483649" is out of range for int32`},
		{"float64", "abc", `"abc" is not a float64`},
		{"float64", "", `"" is not a float64`},
		{"float64", "1e400", `"1e400" is out of range for float64`},
		{"json", `{"a":`, `is not a JSON document`},
		{"json", ``, `is not a JSON document`},
		{"json", "\"\xff\"", `not valid UTF-8`},
		{"bytes", "!!!!", `is not base64`},
		{"bytes", "A", `is not base64`},
		{"bytes", "AA=", `is not base64`},
		{"bytes", "QR==", `is not base64`}, // non-zero trailing bits
		{"bytes", "a+b_", `mixes the standard and URL-safe alphabets`},
		{"bytes", "AAEC\n/w==", `line break`},
		{"uuid", "123e4567e89b12d3a456426614174000", `is not a UUID`},
		{"uuid", "123e4567-e89b-12d3-a456-42661417400g", `is not a UUID`},
		{"uuid", "{123e4567-e89b-12d3-a456-426614174000}", `is not a UUID`},
		{"uuid", "1-2-3-4-5", `is not a UUID`},
	} {
		_, err := lookup(t, c.serde).FromText(c.text)
		if !errors.Is(err, serde.ErrInvalid) {
			t.Errorf("%s.FromText(%q) error = %v, want one wrapping ErrInvalid", c.serde, c.text, err)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s.FromText(%q) error = %q, want it to say %q", c.serde, c.text, err, c.msg)
		}
	}
}

func TestAppendJSONRejects(t *testing.T) {
	for _, c := range []struct {
		serde string
		kafka []byte
		msg   string
	}{
		{"string", []byte("ok\xffno"), "not valid UTF-8 at byte 2"},
		{"string", []byte("\xed\xa0\x80"), "not valid UTF-8"}, // a lone surrogate
		{"string", []byte("\xc3"), "not valid UTF-8"},         // truncated sequence
		{"json", []byte(`{"a":1`), "not a JSON document"},
		{"json", []byte{}, "not a JSON document"},
		{"json", []byte("\"\xff\""), "not valid UTF-8"},
		{"int32", []byte{0, 0, 1}, "int32 needs 4 bytes, got 3"},
		{"int32", make([]byte, 8), "int32 needs 4 bytes, got 8"},
		{"int64", []byte{0, 0, 0, 1}, "int64 needs 8 bytes, got 4"},
		{"int64", nil, "int64 needs 8 bytes, got 0"},
		{"float64", make([]byte, 9), "float64 needs 8 bytes, got 9"},
		{"uuid", make([]byte, 16), "not a UUID"}, // raw bytes are not Kafka's UUID format
		{"uuid", []byte("123e4567_e89b_12d3_a456_426614174000"), "not a UUID"},
	} {
		dst := []byte("keep")
		got, err := lookup(t, c.serde).AppendJSON(dst, c.kafka)
		if !errors.Is(err, serde.ErrInvalid) {
			t.Errorf("%s.AppendJSON(%x) error = %v, want one wrapping ErrInvalid", c.serde, c.kafka, err)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s.AppendJSON(%x) error = %q, want it to say %q", c.serde, c.kafka, err, c.msg)
		}
		if string(got) != "keep" {
			t.Errorf("%s.AppendJSON(%x) left dst = %q, want it unchanged", c.serde, c.kafka, got)
		}
	}
}

// Non-Java producers may write upper-case UUIDs; the answer shows the bytes
// as they are.
func TestUUIDAppendJSONKeepsCase(t *testing.T) {
	in := []byte("123E4567-E89B-12D3-A456-426614174000")
	got, err := lookup(t, "uuid").AppendJSON(nil, in)
	if err != nil || string(got) != `"123E4567-E89B-12D3-A456-426614174000"` {
		t.Fatalf("AppendJSON(%s) = %s, %v", in, got, err)
	}
}

// Every control character must be escaped, or the answer is not JSON.
func TestStringEscapesAllControlCharacters(t *testing.T) {
	s := lookup(t, "string")
	for c := range 0x20 {
		in := []byte{'x', byte(c), 'y'}
		out, err := s.AppendJSON(nil, in)
		if err != nil {
			t.Fatalf("AppendJSON(%q): %v", in, err)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil || back != string(in) {
			t.Errorf("AppendJSON(%q) = %s, reads back as %q, %v", in, out, back, err)
		}
	}
}

func FuzzStringJSON(f *testing.F) {
	for _, seed := range []string{"", "plain", "\"quoted\"", "back\\slash", "\x00\x1f\n\t", "zoë 日本 😀", "\u2028\u2029", "\xff"} {
		f.Add([]byte(seed))
	}
	s := lookup(f, "string")
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := s.AppendJSON(nil, in)
		if !utf8.Valid(in) {
			if !errors.Is(err, serde.ErrInvalid) {
				t.Fatalf("AppendJSON(%q) error = %v, want ErrInvalid for invalid UTF-8", in, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendJSON(%q): %v", in, err)
		}
		if !json.Valid(out) {
			t.Fatalf("AppendJSON(%q) = %s, not valid JSON", in, out)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("AppendJSON(%q) = %s: %v", in, out, err)
		}
		if back != string(in) {
			t.Fatalf("AppendJSON(%q) = %s, reads back as %q", in, out, back)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	for _, c := range []struct {
		serde string
		kafka []byte
	}{
		{"string", []byte(`customer "Zoë" <zoe@example.com>, joined 2024-01-02 with plan=gold`)},
		{"json", []byte(`{"id":12345,"name":"Zoë","tags":["a","b"],"active":true,"score":9.5}`)},
		{"int64", []byte{0, 0, 1, 0x1f, 0x71, 0xfb, 0x04, 0xcb}},
	} {
		b.Run(c.serde, func(b *testing.B) {
			s := lookup(b, c.serde)
			dst := make([]byte, 0, 256)
			b.ReportAllocs()
			b.SetBytes(int64(len(c.kafka)))
			for b.Loop() {
				var err error
				if dst, err = s.AppendJSON(dst[:0], c.kafka); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

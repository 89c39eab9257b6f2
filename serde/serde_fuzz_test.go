package serde_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
)

// The fuzz targets' seed corpora are in testdata/fuzz/<target>; scripts/fuzz.sh
// runs the targets. Each picks a built-in serde by index into serde.Names(),
// so one target covers them all.

func pick(t testing.TB, i uint8) serde.Serde {
	names := serde.Names()
	return lookup(t, names[int(i)%len(names)])
}

// allocBound is the most a parse of n input bytes may allocate: a few
// copies of the input, and slack for what other goroutines allocate
// meanwhile. A parse that trusted a length or count in its input would go
// far past it.
func allocBound(n int) uint64 { return 256<<10 + 16*uint64(n) }

// keyText is the text of an answer as a client would put it in a URL: a
// JSON string unquoted, anything else (a number, the json serde's
// document) as it is.
func keyText(s serde.Serde, answer []byte) (string, error) {
	if s.Name() == "json" || len(answer) == 0 || answer[0] != '"' {
		return string(answer), nil
	}
	var text string
	err := json.Unmarshal(answer, &text)
	return text, err
}

// checkInvalid fails unless err is a format error with a one-line message,
// as a problem+json detail shows it.
func checkInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, serde.ErrInvalid) {
		t.Fatalf("%s: error %v does not wrap ErrInvalid", what, err)
	}
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n") || !utf8.ValidString(msg) {
		t.Fatalf("%s: error message %q is not one line of UTF-8", what, msg)
	}
}

// FuzzFromText: a serde's FromText never panics and allocates in
// proportion to the text; text it refuses gives a one-line ErrInvalid; and
// the key it makes renders as an answer whose text (the answer as a
// client would use it) is the same key again (the string serde only for
// UTF-8 text: it keeps any bytes, but answers only with UTF-8).
func FuzzFromText(f *testing.F) {
	f.Fuzz(func(t *testing.T, which uint8, text string) {
		s := pick(t, which)
		var key []byte
		var err error
		if n := testutil.Allocated(func() { key, err = s.FromText(text) }); n > allocBound(len(text)) {
			t.Fatalf("%s.FromText(%d bytes) allocated %d bytes", s.Name(), len(text), n)
		}
		if err != nil {
			checkInvalid(t, s.Name()+".FromText", err)
			return
		}
		if s.Name() == "string" && !utf8.ValidString(text) {
			return
		}
		answer, err := s.AppendJSON([]byte("dst:"), key)
		if err != nil {
			t.Fatalf("%s.FromText(%q) = %x, which AppendJSON refuses: %v", s.Name(), text, key, err)
		}
		answer = answer[len("dst:"):]
		if !json.Valid(answer) || !utf8.Valid(answer) {
			t.Fatalf("%s: key %x renders as %q, not UTF-8 JSON", s.Name(), key, answer)
		}
		again, err := keyText(s, answer)
		if err != nil {
			t.Fatalf("%s: answer %s: %v", s.Name(), answer, err)
		}
		back, err := s.FromText(again)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("%s: %q → key %x → answer %s → %q → key %x, %v", s.Name(), text, key, answer, again, back, err)
		}
	})
}

// FuzzAppendJSON: a serde's AppendJSON never panics on record bytes; bytes
// it refuses give a one-line ErrInvalid and leave dst as it was; what it
// accepts is UTF-8 JSON whose text FromText turns back into the same
// bytes (a UUID in lower case, as Java writes it; every NaN as Java's
// one NaN), so a client can look up what it was shown.
func FuzzAppendJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, which uint8, record []byte) {
		s := pick(t, which)
		var answer []byte
		var err error
		if n := testutil.Allocated(func() { answer, err = s.AppendJSON([]byte("dst:"), record) }); n > allocBound(len(record)) {
			t.Fatalf("%s.AppendJSON(%d bytes) allocated %d bytes", s.Name(), len(record), n)
		}
		if err != nil {
			checkInvalid(t, s.Name()+".AppendJSON", err)
			if string(answer) != "dst:" {
				t.Fatalf("%s.AppendJSON(%x) refused with %v, but left dst %q", s.Name(), record, err, answer)
			}
			return
		}
		if !bytes.HasPrefix(answer, []byte("dst:")) {
			t.Fatalf("%s.AppendJSON(%x) = %q, lost dst", s.Name(), record, answer)
		}
		answer = answer[len("dst:"):]
		if !json.Valid(answer) || !utf8.Valid(answer) {
			t.Fatalf("%s.AppendJSON(%x) = %q, not UTF-8 JSON", s.Name(), record, answer)
		}
		text, err := keyText(s, answer)
		if err != nil {
			t.Fatalf("%s: answer %s: %v", s.Name(), answer, err)
		}
		want := record
		switch s.Name() {
		case "uuid":
			want = bytes.ToLower(record)
		case "float64":
			if string(answer) == `"NaN"` {
				want = []byte{0x7f, 0xf8, 0, 0, 0, 0, 0, 0}
			}
		}
		back, err := s.FromText(text)
		if err != nil || !bytes.Equal(back, want) {
			t.Fatalf("%s: record %x → answer %s → %q → key %x (want %x), %v", s.Name(), record, answer, text, back, want, err)
		}
	})
}

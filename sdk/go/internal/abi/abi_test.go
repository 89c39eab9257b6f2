package abi

import (
	"errors"
	"fmt"
	"io"
	"math"
	"testing"
)

type stringer struct{}

func (stringer) String() string { return "str" }

func TestSprintfMatchesFmt(t *testing.T) {
	cases := []struct {
		format string
		args   []any
	}{
		{"plain", nil},
		{"%d%%", []any{50}},
		{"version %d, want 1", []any{uint8(3)}},
		{"%s and %v", []any{"a", "b"}},
		{"%q", []any{"a\"b\n\x00é"}},
		{"%x %X", []any{[]byte{0xab, 0x01}, "\xff"}},
		{"%x %X %x", []any{255, 255, -255}},
		{"%5d|%-5d|%05d|%+d|% d", []any{42, 42, -42, 42, 42}},
		{"%08.3f %e %g %v", []any{-3.14159, 1234.5678, 1e21, 0.1}},
		{"%v %v", []any{float32(0.1), math.Inf(-1)}},
		{"%c%c %q", []any{'é', 0x65e5, 'x'}},
		{"%t %v", []any{true, false}},
		{"%v %s", []any{io.EOF, stringer{}}},
		{"%v", []any{nil}},
		{"%v", []any{[]byte{1, 2, 3}}},
		{"%s", []any{[]byte("bytes")}},
		{"%.2s|%6s|%-6s|", []any{"日本語", "ab", "ab"}},
		{"%d %d", []any{int64(math.MinInt64), uint64(math.MaxUint64)}},
		{"%d %d %d %d", []any{int8(-8), int16(-16), int32(-32), uintptr(7)}},
	}
	for _, c := range cases {
		got, _ := Sprintf(c.format, c.args...)
		want := fmt.Sprintf(c.format, c.args...)
		if got != want {
			t.Errorf("Sprintf(%q, %v) = %q, fmt says %q", c.format, c.args, got, want)
		}
	}
}

func TestSprintfBadUse(t *testing.T) {
	cases := []struct {
		format string
		args   []any
		want   string
	}{
		{"%d", nil, "%!d(MISSING)"},
		{"a", []any{1, "x"}, "a%!(EXTRA 1, x)"},
		{"%d", []any{"x"}, "%!d(?)"},
		{"%v", []any{struct{}{}}, "%!v(?)"},
		{"100%", nil, "100%!(NOVERB)"},
	}
	for _, c := range cases {
		if got, _ := Sprintf(c.format, c.args...); got != c.want {
			t.Errorf("Sprintf(%q, %v) = %q, want %q", c.format, c.args, got, c.want)
		}
	}
}

func TestRejectWraps(t *testing.T) {
	err := Reject("bad key %q: %w", "k", io.ErrUnexpectedEOF)
	if err.Error() != `bad key "k": unexpected EOF` {
		t.Fatalf("message %q", err.Error())
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal("Reject does not wrap its %w argument")
	}
	if StatusOf(err) != StatusReject {
		t.Fatal("a rejection is not StatusReject")
	}
	if StatusOf(fmt.Errorf("context: %w", err)) != StatusReject {
		t.Fatal("a wrapped rejection is not StatusReject")
	}
	if StatusOf(errors.New("x")) != StatusFail {
		t.Fatal("a plain error is not StatusFail")
	}
}

func TestResultAndStatus(t *testing.T) {
	if got := Pack(0x7fffffff, 0xffffffff); got != 0x7fffffff_ffffffff {
		t.Fatalf("Pack = %#x", got)
	}
	if got := Pack(16, 3); got != 16<<32|3 {
		t.Fatalf("Pack = %#x", got)
	}
	if got := Result(nil, Reject("no")); got != -1 || string(LastError()) != "no" {
		t.Fatalf("Result(reject) = %d, last error %q", got, LastError())
	}
	if got := Result(nil, errors.New("broken")); got != -2 || string(LastError()) != "broken" {
		t.Fatalf("Result(fail) = %d, last error %q", got, LastError())
	}
	if got := Result(nil, nil); got != 0 {
		t.Fatalf("Result(empty) = %d", got)
	}
	out := []byte("abc")
	if got := Result(out, nil); got&0xffffffff != 3 || &lastOut[0] != &out[0] {
		t.Fatalf("Result(abc) = %#x; output not retained", got)
	}
	if Status(nil) != 0 || Status(Reject("r")) != StatusReject || Status(errors.New("f")) != StatusFail {
		t.Fatal("Status")
	}
}

func TestBytes(t *testing.T) {
	if Bytes(nil, 5) != nil {
		t.Fatal("nil pointer")
	}
	buf := []byte("hello")
	if b := Bytes(Ptr(buf), 0); b != nil {
		t.Fatal("zero length")
	}
	if b := Bytes(Ptr(buf), 4); string(b) != "hell" || &b[0] != &buf[0] {
		t.Fatalf("Bytes = %q (copied?)", b)
	}
}

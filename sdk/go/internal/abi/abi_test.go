package abi

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

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

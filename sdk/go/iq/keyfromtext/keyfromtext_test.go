package keyfromtext

import (
	"errors"
	"testing"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
	"github.com/iqengine/iqengine/sdk/go/iq"
)

func TestCall(t *testing.T) {
	handler = nil
	if _, err := call([]byte("x")); abi.StatusOf(err) != abi.StatusFail {
		t.Fatalf("without a handler: %v, want a failure", err)
	}
	var kept string
	Handle(func(text string) ([]byte, error) {
		switch text {
		case "bad":
			return nil, iq.Reject("bad key %q", text)
		case "broken":
			return nil, errors.New("broken")
		}
		kept = text
		return []byte("k:" + text), nil
	})
	in := []byte("12-4711")
	if out, err := call(in); err != nil || string(out) != "k:12-4711" {
		t.Fatalf("call = %q, %v", out, err)
	}
	in[0] = 'X'
	if kept != "12-4711" {
		t.Fatalf("the text is not a copy: %q", kept)
	}
	if _, err := call([]byte("bad")); abi.StatusOf(err) != abi.StatusReject {
		t.Fatalf("call(bad): %v", err)
	}
	if _, err := call([]byte("broken")); abi.StatusOf(err) != abi.StatusFail {
		t.Fatalf("call(broken): %v", err)
	}
}

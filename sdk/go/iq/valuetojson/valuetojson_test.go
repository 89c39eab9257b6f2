package valuetojson

import (
	"errors"
	"testing"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
	"github.com/iqengine/iqengine/sdk/go/iq"
)

func TestCall(t *testing.T) {
	handler = nil
	if _, err := call([]byte("x")); err == nil || abi.StatusOf(err) != abi.StatusFail {
		t.Fatalf("without a handler: %v, want a failure", err)
	}
	Handle(func(in []byte) ([]byte, error) {
		switch string(in) {
		case "bad":
			return nil, iq.Reject("bad input %q", in)
		case "broken":
			return nil, errors.New("broken")
		}
		return append([]byte("<"), append(in, '>')...), nil
	})
	if out, err := call([]byte("ab")); err != nil || string(out) != "<ab>" {
		t.Fatalf("call(ab) = %q, %v", out, err)
	}
	if _, err := call([]byte("bad")); abi.StatusOf(err) != abi.StatusReject || err.Error() != `bad input "bad"` {
		t.Fatalf("call(bad): %v", err)
	}
	if _, err := call([]byte("broken")); abi.StatusOf(err) != abi.StatusFail {
		t.Fatalf("call(broken): %v", err)
	}
}

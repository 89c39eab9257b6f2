package partition

import (
	"testing"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
	"github.com/iqengine/iqengine/sdk/go/iq"
)

func TestCall(t *testing.T) {
	handler = nil
	if _, err := call([]byte("x"), 3); abi.StatusOf(err) != abi.StatusFail {
		t.Fatalf("without a handler: %v, want a failure", err)
	}
	Handle(func(key []byte, partitions int32) (int32, error) {
		if len(key) == 0 {
			return 0, iq.Reject("empty key")
		}
		return int32(key[0]) % partitions, nil
	})
	if p, err := call([]byte{7}, 3); err != nil || p != 1 {
		t.Fatalf("call = %d, %v", p, err)
	}
	if _, err := call(nil, 3); abi.StatusOf(err) != abi.StatusReject {
		t.Fatalf("call(empty): %v", err)
	}
	if _, err := call([]byte{7}, 0); abi.StatusOf(err) != abi.StatusFail {
		t.Fatalf("call(partitions=0): %v", err)
	}
	Handle(func(key []byte, partitions int32) (int32, error) { return partitions, nil })
	if _, err := call([]byte{7}, 3); abi.StatusOf(err) != abi.StatusFail || err.Error() != "iq_partition: the handler returned partition 3, outside [0, 3)" {
		t.Fatalf("out of range: %v", err)
	}
}

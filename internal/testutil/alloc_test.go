package testutil

import "testing"

var sink []byte

func TestAllocated(t *testing.T) {
	for _, n := range []int{0, 100, 1 << 20} {
		if got := Allocated(func() { sink = make([]byte, n) }); got < uint64(n) || got > uint64(n)+64<<10 {
			t.Errorf("an allocation of %d bytes counts %d", n, got)
		}
	}
}

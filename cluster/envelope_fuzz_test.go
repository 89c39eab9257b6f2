package cluster

import (
	"testing"

	"github.com/iqengine/iqengine/internal/testutil"
)

// FuzzEnvelopeAllocation: what decoding another member's envelope
// allocates is bounded by its size, whatever its counts and lengths claim
// (FuzzDecodeJoin and FuzzDecodeAssignment check the rest). Each input is
// decoded as both envelopes; the seeds are both.
func FuzzEnvelopeAllocation(f *testing.F) {
	f.Add(encodeJoin(Member{"n1", "http://n1"}, samplePositions))
	f.Add(encodeTable(sampleTable()))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A count may claim every byte left, and an element (a map entry
		// of positions, a route) takes a byte or more of the envelope and
		// 40 to 50 in memory; reading one boxes its error's arguments. The
		// worst seen is 80 bytes a byte (a table whose partition count
		// claims the rest).
		bound := 256<<10 + 128*uint64(len(data))
		if n := testutil.Allocated(func() { _, _, _ = decodeJoin(data) }); n > bound {
			t.Fatalf("decodeJoin(%d bytes) allocated %d bytes", len(data), n)
		}
		if n := testutil.Allocated(func() { _, _ = decodeAssignment(data) }); n > bound {
			t.Fatalf("decodeAssignment(%d bytes) allocated %d bytes", len(data), n)
		}
	})
}

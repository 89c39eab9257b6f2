package router

import (
	"bytes"
	"testing"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/state"
)

// FuzzDecodeRecords: decoding a peer's page never panics and allocates in
// proportion to the page; a page that decodes encodes back to the same
// bytes (the decoder takes exactly what writeRecords writes).
func FuzzDecodeRecords(f *testing.F) {
	f.Fuzz(func(t *testing.T, page []byte) {
		var recs []state.Record
		var more bool
		var err error
		// A record takes 4 bytes or more of a page and 64 in memory, and
		// the slice of them grows by doubling: 128 bytes a byte.
		if n := testutil.Allocated(func() { recs, more, err = decodeRecords(page) }); n > 256<<10+128*uint64(len(page)) {
			t.Fatalf("decodeRecords(%d bytes) allocated %d bytes", len(page), n)
		}
		if err != nil {
			if err != errCorrupt {
				t.Fatalf("decodeRecords(%x): error %v, want errCorrupt", page, err)
			}
			return
		}
		again := []byte{0}
		if more {
			again[0] = 1
		}
		for _, r := range recs {
			again = appendRecord(again, r)
		}
		if !bytes.Equal(again, page) {
			t.Fatalf("decodeRecords(%x) = %d records, more %v, which encode to %x", page, len(recs), more, again)
		}
	})
}

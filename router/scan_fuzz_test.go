package router

import (
	"bytes"
	"testing"
)

// FuzzDecodeCursor: decoding a cursor (a client's text) never panics; a
// cursor that decodes encodes back to the same text, so each position of
// a scan has exactly one cursor; and every position's cursor decodes to
// it for its own scan and for no other.
func FuzzDecodeCursor(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, query uint64) {
		if c, err := decodeCursor(s, query); err == nil {
			if again := c.encode(query); again != s {
				t.Fatalf("decodeCursor(%q) = partition %d key %q, which encodes to %q", s, c.Partition, c.Key, again)
			}
		} else if err != errBadCursor {
			t.Fatalf("decodeCursor(%q): error %v, want errBadCursor", s, err)
		}

		// The same bytes as a position of the scan.
		at := cursor{Partition: int32(query), Key: []byte(s)}
		enc := at.encode(query)
		c, err := decodeCursor(enc, query)
		if err != nil || c.Partition != at.Partition || !bytes.Equal(c.Key, at.Key) {
			t.Fatalf("partition %d key %q → %q → %+v, %v", at.Partition, at.Key, enc, c, err)
		}
		if _, err := decodeCursor(enc, query+1); err == nil {
			t.Fatalf("the cursor %q of scan %d decodes for scan %d", enc, query, query+1)
		}
	})
}

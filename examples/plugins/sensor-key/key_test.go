package main

import (
	"encoding/hex"
	"testing"

	"github.com/iqengine/iqengine/sdk/go/iq"
	"github.com/iqengine/iqengine/sdk/go/iq/iqtest"
)

// TestVectors runs the shared conformance vectors (vectors.jsonl links to
// sdk/conformance/sensor-key.jsonl) through the registered handlers.
func TestVectors(t *testing.T) {
	iqtest.Run(t, "vectors.jsonl")
}

func TestAppendKeyJSON(t *testing.T) {
	key, _ := hex.DecodeString("000c00001267")
	if got, err := appendKeyJSON(nil, key); err != nil || string(got) != `{"site":12,"sensor":4711}` {
		t.Fatalf("appendKeyJSON = %s, %v", got, err)
	}
	for _, n := range []int{0, 2, 5, 7} {
		if _, err := appendKeyJSON(nil, make([]byte, n)); !iq.IsReject(err) {
			t.Errorf("%d bytes: err = %v, want a rejection", n, err)
		}
	}
}

func TestAppendKey(t *testing.T) {
	good := map[string]string{
		"12-4711":          "000c00001267",
		"12":               "000c",
		"0-0":              "000000000000",
		"65535-4294967295": "ffffffffffff",
		"007-042":          "00070000002a",
	}
	for in, want := range good {
		if got, err := appendKey(nil, in); err != nil || hex.EncodeToString(got) != want {
			t.Errorf("appendKey(%q) = %x, %v, want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "12-", "-4711", "12-x", "70000-1", "65536", "12-4294967296", "+1", "1-2-3", " 1", "١"} {
		if got, err := appendKey(nil, in); !iq.IsReject(err) {
			t.Errorf("appendKey(%q) = %x, %v, want a rejection", in, got, err)
		}
	}
}

func TestPartitionOf(t *testing.T) {
	for _, c := range []struct {
		key        string
		partitions int32
		want       int32
	}{
		{"000c00001267", 4, 0}, {"000c00001267", 5, 2}, {"000c", 5, 2}, {"0100", 256, 0}, {"ffff", 7, 1},
	} {
		key, _ := hex.DecodeString(c.key)
		if got, err := partitionOf(key, c.partitions); err != nil || got != c.want {
			t.Errorf("partitionOf(%s, %d) = %d, %v, want %d", c.key, c.partitions, got, err, c.want)
		}
	}
	if _, err := partitionOf([]byte{1}, 4); !iq.IsReject(err) {
		t.Errorf("1-byte key: err = %v, want a rejection", err)
	}
}

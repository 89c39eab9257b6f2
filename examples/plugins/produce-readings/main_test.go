package main

import (
	"encoding/hex"
	"testing"
	"time"
)

// The producer writes the formats the example plugins decode: the README
// example record of sdk/conformance/sensor-value.jsonl and the key
// 12-4711 of sensor-key.jsonl.
func TestRecordFormats(t *testing.T) {
	key, value := record(reading{12, 4711, 0, 2137, 451, "hall"}, time.UnixMilli(1700000000000))
	if got, want := hex.EncodeToString(key), "000c00001267"; got != want {
		t.Errorf("key %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(value), "01000c00671200000068e5cf8b01000059080000c301000068616c6c"; got != want {
		t.Errorf("value %s, want %s", got, want)
	}
}

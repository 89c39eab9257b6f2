package main

import (
	"encoding/binary"
	"testing"

	"github.com/iqengine/iqengine/sdk/go/iq"
	"github.com/iqengine/iqengine/sdk/go/iq/iqtest"
)

// TestVectors runs the shared conformance vectors (vectors.jsonl links to
// sdk/conformance/sensor-value.jsonl) through the registered handler.
func TestVectors(t *testing.T) {
	iqtest.Run(t, "vectors.jsonl")
}

func record(status byte, temp int32, hum uint32, label string) []byte {
	b := []byte{1, status}
	b = binary.LittleEndian.AppendUint16(b, 12)
	b = binary.LittleEndian.AppendUint32(b, 4711)
	b = binary.LittleEndian.AppendUint64(b, 1700000000000)
	b = binary.LittleEndian.AppendUint32(b, uint32(temp))
	b = binary.LittleEndian.AppendUint32(b, hum)
	return append(b, label...)
}

func TestAppendJSON(t *testing.T) {
	got, err := appendJSON(nil, record(0, 2137, 451, "hall"))
	want := `{"sensor":4711,"site":12,"time":1700000000000,"status":"ok","temp_c":21.37,"humidity":45.1,"label":"hall"}`
	if err != nil || string(got) != want {
		t.Fatalf("appendJSON = %s, %v\nwant %s", got, err, want)
	}
	// dst is appended to, not overwritten
	got, _ = appendJSON([]byte("x"), record(2, 0, 0, ""))
	if want := `x{"sensor":4711,"site":12,"time":1700000000000,"status":"offline","temp_c":0.00,"humidity":0.0,"label":""}`; string(got) != want {
		t.Fatalf("appendJSON = %s, want %s", got, want)
	}
}

func TestAppendJSONRejects(t *testing.T) {
	long := make([]byte, 65)
	for i := range long {
		long[i] = 'a'
	}
	bad := map[string][]byte{
		"short":       record(0, 0, 0, "")[:23],
		"version":     append([]byte{2}, record(0, 0, 0, "")[1:]...),
		"status":      record(3, 0, 0, ""),
		"long label":  record(0, 0, 0, string(long)),
		"invalid utf": record(0, 0, 0, "\xff"),
	}
	for name, rec := range bad {
		if _, err := appendJSON(nil, rec); !iq.IsReject(err) {
			t.Errorf("%s: err = %v, want a rejection", name, err)
		}
	}
}

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/iqengine/iqengine/sdk/go/iq"
	"github.com/iqengine/iqengine/sdk/go/iq/registry"
)

const order = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"note","type":["null","string"],"default":null}]}`

// schemas stands in for the host natively: schema 7 is order, 8 a
// Protobuf schema, 9 what a registry that is down cannot give.
func schemas(id int32) (string, string, error) {
	switch id {
	case 7:
		return registry.Avro, order, nil
	case 8:
		return registry.Protobuf, `syntax = "proto3"; message M {}`, nil
	case 9:
		return "", "", fmt.Errorf("schema id 9: %w", registry.ErrUnavailable)
	}
	return "", "", fmt.Errorf("schema id %d: %w", id, registry.ErrUnknownSchema)
}

func framed(t *testing.T, id int32, native map[string]any) []byte {
	t.Helper()
	c, err := goavro.NewCodec(order)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), b...)
}

func TestAppendJSON(t *testing.T) {
	registry.Fake(schemas)
	defer registry.Fake(nil)
	clear(codecs)
	got, err := appendJSON([]byte("x"), framed(t, 7, map[string]any{"id": "o-1", "note": goavro.Union("string", "gift")}))
	if want1, want2 := `x{"id":"o-1","note":{"string":"gift"}}`, `x{"note":{"string":"gift"},"id":"o-1"}`; err != nil || string(got) != want1 && string(got) != want2 {
		t.Fatalf("appendJSON = %s, %v, want %s", got, err, want1)
	}

	for _, tc := range []struct {
		name   string
		value  []byte
		reject bool
	}{
		{"no header", []byte("{}"), true},
		{"unknown id", framed(t, 42, map[string]any{"id": "o-1", "note": nil}), true},
		{"not avro", framed(t, 8, map[string]any{"id": "o-1", "note": nil}), true},
		{"truncated", framed(t, 7, map[string]any{"id": "o-1", "note": nil})[:7], true},
		{"trailing bytes", append(framed(t, 7, map[string]any{"id": "o-1", "note": nil}), 0), true},
		{"registry down", framed(t, 9, map[string]any{"id": "o-1", "note": nil}), false},
	} {
		_, err := appendJSON(nil, tc.value)
		if err == nil || iq.IsReject(err) != tc.reject {
			t.Errorf("%s: %v, want reject %v", tc.name, err, tc.reject)
		}
		if tc.name == "registry down" && !errors.Is(err, registry.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", tc.name, err)
		}
	}
}

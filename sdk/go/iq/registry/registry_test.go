package registry

import (
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		r    int64
		typ  string
		n    int
		want error
	}{
		{1<<32 | 17, Avro, 17, nil},
		{2 << 32, Protobuf, 0, nil}, // an empty schema
		{3<<32 | 1<<20, JSON, 1 << 20, nil},
		{-1, "", 0, ErrUnknownSchema},
		{-2, "", 0, ErrUnavailable},
	} {
		typ, n, err := decode(7, tc.r)
		if typ != tc.typ || n != tc.n || !errors.Is(err, tc.want) {
			t.Errorf("decode(%#x) = %q, %d, %v", tc.r, typ, n, err)
		}
	}
	for _, r := range []int64{-3, 0, 4 << 32} {
		if _, _, err := decode(7, r); err == nil {
			t.Errorf("decode(%#x): no error", r)
		}
	}
}

func TestSchemaKeepsWhatItWasGiven(t *testing.T) {
	asked := 0
	Fake(func(id int32) (string, string, error) {
		asked++
		if id == 7 {
			return Avro, `"string"`, nil
		}
		return "", "", ErrUnknownSchema
	})
	defer Fake(nil)
	for range 3 {
		if typ, text, err := Schema(7); typ != Avro || text != `"string"` || err != nil {
			t.Fatalf("Schema(7) = %q, %q, %v", typ, text, err)
		}
	}
	if _, _, err := Schema(8); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("Schema(8): %v", err)
	}
	if _, _, err := Schema(8); !errors.Is(err, ErrUnknownSchema) || asked != 3 {
		t.Fatalf("Schema(8) again: %v after %d questions; errors are not kept, schemas are", err, asked)
	}
	Fake(nil)
	if _, _, err := Schema(7); err == nil {
		t.Fatal("Schema without a host or a fake: no error")
	}
}

package registry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/serde/registry"
)

// fuzzKeyRecord is an Avro key schema with a field of each kind key text
// can spell.
const fuzzKeyRecord = `{"type":"record","name":"K","fields":[
  {"name":"region","type":"string"},
  {"name":"n","type":"int"},
  {"name":"at","type":["null",{"type":"long","logicalType":"timestamp-millis"}]},
  {"name":"due","type":{"type":"int","logicalType":"date"}},
  {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
  {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
  {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"attrs","type":{"type":"map","values":"double"}},
  {"name":"ok","type":"boolean"}
]}`

// The key serdes FuzzRegistryFromText picks from: a format, a schema, and
// whether an answer's text is the answer unquoted (a key written as plain
// text) or the answer itself (JSON).
var fuzzKeySerdes = []struct {
	format, typ, schema string
	plain               bool
}{
	{registry.Avro, "AVRO", fuzzKeyRecord, false},
	{registry.Avro, "AVRO", `"string"`, true},
	{registry.Avro, "AVRO", `"long"`, true},
	{registry.Avro, "AVRO", `"double"`, true},
	{registry.Avro, "AVRO", `{"type":"enum","name":"E","symbols":["A","B"]}`, true},
	{registry.Protobuf, "PROTOBUF", shopProto, false},
	{registry.JSONSchema, "JSON", `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},"required":["id"],"additionalProperties":false}`, false},
}

// FuzzRegistryFromText: a registry key serde's FromText (key text from a
// URL, encoded with the key's schema) never panics and allocates in
// proportion to the text; text it refuses gives a one-line ErrInvalid; and
// the key it makes renders as an answer whose text is the same key again,
// so an answer's key can be looked up (plain text keys only when UTF-8:
// like the string serde, an Avro string key keeps any bytes, but answers
// only with UTF-8).
func FuzzRegistryFromText(f *testing.F) {
	fk := newFake(f)
	c := client(f, fk)
	var serdes []*registry.Serde
	for i, k := range fuzzKeySerdes {
		topic := string(rune('a' + i))
		fk.register(f, topic+"-key", k.typ, k.schema)
		serdes = append(serdes, newSerde(f, c, registry.Config{Format: k.format, Topic: topic, Key: true}))
	}
	f.Fuzz(func(t *testing.T, which uint8, text string) {
		i := int(which) % len(serdes)
		s, k := serdes[i], fuzzKeySerdes[i]
		var key []byte
		var err error
		if n := testutil.Allocated(func() { key, err = s.FromText(text) }); n > 1<<20+64*uint64(len(text)) {
			t.Fatalf("%s %s: FromText(%d bytes) allocated %d bytes", k.format, k.schema, len(text), n)
		}
		if err != nil {
			if !errors.Is(err, serde.ErrInvalid) {
				t.Fatalf("%s %s: FromText(%q): error %v does not wrap ErrInvalid", k.format, k.schema, text, err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || !utf8.ValidString(msg) {
				t.Fatalf("%s %s: FromText(%q): error %q is not one line of UTF-8", k.format, k.schema, text, msg)
			}
			return
		}
		if !utf8.ValidString(text) && k.plain {
			return // kept byte for byte, as the string serde keeps it; answers are UTF-8
		}
		answer, err := s.AppendJSON(nil, key)
		if err != nil {
			t.Fatalf("%s %s: FromText(%q) = %x, which AppendJSON refuses: %v", k.format, k.schema, text, key, err)
		}
		if !json.Valid(answer) || !utf8.Valid(answer) {
			t.Fatalf("%s %s: key %x renders as %q, not UTF-8 JSON", k.format, k.schema, key, answer)
		}
		again := string(answer)
		if k.plain && answer[0] == '"' {
			if err := json.Unmarshal(answer, &again); err != nil {
				t.Fatal(err)
			}
		}
		back, err := s.FromText(again)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("%s %s: %q → key %x → answer %s → key %x, %v", k.format, k.schema, text, key, answer, back, err)
		}
	})
}

package registry_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/serde/registry"
)

// fake is an in-process registry (franz-go's srfake) that counts the
// requests for schemas by id and can be taken down.
type fake struct {
	*srfake.Registry
	byID atomic.Int64
	down atomic.Bool
}

func newFake(t testing.TB) *fake {
	f := &fake{Registry: srfake.New()}
	t.Cleanup(f.Close)
	f.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if f.down.Load() {
			http.Error(w, `{"error_code":50301,"message":"down for the test"}`, http.StatusServiceUnavailable)
			return true
		}
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			f.byID.Add(1)
		}
		return false
	})
	return f
}

func (f *fake) register(t testing.TB, subject, typ, text string, refs ...sr.SchemaReference) int {
	t.Helper()
	s := sr.Schema{Schema: text, References: refs}
	switch typ {
	case "PROTOBUF":
		s.Type = sr.TypeProtobuf
	case "JSON":
		s.Type = sr.TypeJSON
	}
	id, _, err := f.RegisterSchema(subject, s)
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	return id
}

func client(t testing.TB, f *fake) *registry.Client {
	t.Helper()
	c, err := registry.NewClient(registry.Options{URLs: []string{f.URL()}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newSerde(t testing.TB, c *registry.Client, cfg registry.Config) *registry.Serde {
	t.Helper()
	s, err := registry.New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// frame is the Confluent wire format: magic byte, id, (indexes), payload.
func frame(id int, index []byte, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{0}, uint32(id))
	return append(append(b, index...), payload...)
}

const orderV1 = `{
  "type": "record", "name": "Order", "namespace": "com.acme",
  "fields": [
    {"name": "id", "type": "string"},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "due", "type": {"type": "int", "logicalType": "date"}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "name", "type": "string"},
      {"name": "email", "type": ["null", "string"], "default": null}
    ]}},
    {"name": "discount", "type": ["null", "int", "double"], "default": null},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "raw", "type": "bytes"},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
    {"name": "score", "type": "double"},
    {"name": "ratio", "type": "float"}
  ]
}`

// orderV2 adds a field with a default, as a compatible evolution does.
const orderV2 = `{
  "type": "record", "name": "Order", "namespace": "com.acme",
  "fields": [
    {"name": "id", "type": "string"},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "channel", "type": "string", "default": "web"}
  ]
}`

func order1(t testing.TB, id string) []byte {
	t.Helper()
	b, err := avro.Marshal(avro.MustParse(orderV1), map[string]any{
		"id":       id,
		"total":    big.NewRat(12345, 100),
		"placed":   time.Date(2026, 12, 2, 10, 30, 0, 123e6, time.UTC),
		"due":      time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC),
		"ref":      "123e4567-e89b-12d3-a456-426614174000",
		"status":   "PAID",
		"customer": map[string]any{"name": "Zoë \"Z\"", "email": map[string]any{"string": "z@example.com"}},
		"discount": map[string]any{"double": 0.5},
		"tags":     []any{"a", "b"},
		"attrs":    map[string]any{"z": int64(1), "a": int64(-9007199254740993)},
		"raw":      []byte{0, 1, 255},
		"hash":     [4]byte{0xde, 0xad, 0xbe, 0xef},
		"score":    1e21,
		"ratio":    float32(0.1),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const order1JSON = `{"id":"o-1","total":123.45,"placed":"2026-12-02T10:30:00.123Z","due":"2026-12-24",` +
	`"ref":"123e4567-e89b-12d3-a456-426614174000","status":"PAID",` +
	`"customer":{"name":"Zoë \"Z\"","email":"z@example.com"},"discount":0.5,"tags":["a","b"],` +
	`"attrs":{"a":-9007199254740993,"z":1},"raw":"AAH/","hash":"3q2+7w==","score":1e+21,"ratio":0.1}`

func TestAvroValuesRenderAsDocumented(t *testing.T) {
	f := newFake(t)
	id := f.register(t, "orders-value", "AVRO", orderV1)
	s := newSerde(t, client(t, f), registry.Config{Format: registry.Avro, Topic: "orders"})
	got, err := s.AppendJSON([]byte("prefix:"), frame(id, nil, order1(t, "o-1")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "prefix:" + order1JSON; string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// Records written with two versions of a schema, in one topic: each
// renders in its own shape, or with a reader schema, all in one.
func TestAvroEvolution(t *testing.T) {
	f := newFake(t)
	v1 := f.register(t, "orders-value", "AVRO", orderV1)
	v2 := f.register(t, "orders-value", "AVRO", orderV2)
	rec2, err := avro.Marshal(avro.MustParse(orderV2), map[string]any{"id": "o-2", "total": big.NewRat(-5, 100), "channel": "app"})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, f)
	plain := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: "orders"})
	for _, tc := range []struct {
		rec  []byte
		want string
	}{
		{frame(v1, nil, order1(t, "o-1")), order1JSON},
		{frame(v2, nil, rec2), `{"id":"o-2","total":-0.05,"channel":"app"}`},
	} {
		got, err := plain.AppendJSON(nil, tc.rec)
		if err != nil || string(got) != tc.want {
			t.Errorf("writer schema: got %s, %v; want %s", got, err, tc.want)
		}
	}
	reader := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: "orders", ReaderSchema: orderV2})
	for _, tc := range []struct {
		rec  []byte
		want string
	}{
		{frame(v1, nil, order1(t, "o-1")), `{"id":"o-1","total":123.45,"channel":"web"}`},
		{frame(v2, nil, rec2), `{"id":"o-2","total":-0.05,"channel":"app"}`},
	} {
		got, err := reader.AppendJSON(nil, tc.rec)
		if err != nil || string(got) != tc.want {
			t.Errorf("reader schema: got %s, %v; want %s", got, err, tc.want)
		}
	}
	// A reader schema the writer's records cannot be read as.
	bad := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: "orders",
		ReaderSchema: `{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"missing","type":"int"}]}`})
	if _, err := bad.AppendJSON(nil, frame(v2, nil, rec2)); !errors.Is(err, serde.ErrInvalid) || !strings.Contains(err.Error(), "cannot be read as the reader schema") {
		t.Errorf("incompatible reader schema: %v", err)
	}
}

// Key text is encoded into exactly the bytes a Confluent serializer
// writes: the header with the key schema's id, then the Avro binary.
func TestAvroKeysFromText(t *testing.T) {
	f := newFake(t)
	strID := f.register(t, "s-key", "AVRO", `"string"`)
	longID := f.register(t, "l-key", "AVRO", `"long"`)
	recSchema := `{"type":"record","name":"K","fields":[{"name":"region","type":"string"},{"name":"n","type":"int"},{"name":"at","type":["null",{"type":"long","logicalType":"timestamp-millis"}]}]}`
	recV1 := f.register(t, "r-key", "AVRO", recSchema)
	recV2 := f.register(t, "r-key", "AVRO", `{"type":"record","name":"K","fields":[{"name":"region","type":"string"}]}`)
	c := client(t, f)
	enc := func(schema string, v any) []byte {
		b, err := avro.Marshal(avro.MustParse(schema), v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		cfg  registry.Config
		text string
		want []byte
	}{
		{"string, latest", registry.Config{Topic: "s"}, "o-00001", frame(strID, nil, enc(`"string"`, "o-00001"))},
		{"long", registry.Config{Topic: "l"}, "-42", frame(longID, nil, enc(`"long"`, int64(-42)))},
		{"record pinned by id", registry.Config{Topic: "r", SchemaID: recV1}, `{"region":"eu","n":7,"at":"2026-12-02T10:00:00.5Z"}`,
			frame(recV1, nil, enc(recSchema, map[string]any{"region": "eu", "n": 7, "at": map[string]any{"long.timestamp-millis": time.Date(2026, 12, 2, 10, 0, 0, 5e8, time.UTC)}}))},
		{"record pinned by version", registry.Config{Topic: "r", Version: 1}, `{"region":"eu","n":7,"at":null}`,
			frame(recV1, nil, enc(recSchema, map[string]any{"region": "eu", "n": 7, "at": nil}))},
		{"record, latest", registry.Config{Topic: "r"}, `{"region":"eu"}`, frame(recV2, nil, enc(`{"type":"record","name":"K","fields":[{"name":"region","type":"string"}]}`, map[string]any{"region": "eu"}))},
	} {
		tc.cfg.Format, tc.cfg.Key = registry.Avro, true
		s := newSerde(t, c, tc.cfg)
		got, err := s.FromText(tc.text)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: FromText(%q) = %x, %v; want %x", tc.name, tc.text, got, err, tc.want)
			continue
		}
		// The answer for those bytes is key text that finds them again.
		js, err := s.AppendJSON(nil, got)
		if err != nil {
			t.Errorf("%s: AppendJSON: %v", tc.name, err)
			continue
		}
		text := string(js)
		if plain := strings.Trim(text, `"`); text[0] == '"' {
			text = plain
		}
		if back, err := s.FromText(text); err != nil || !bytes.Equal(back, got) {
			t.Errorf("%s: %x → %s → %x, %v", tc.name, got, js, back, err)
		}
	}
	s := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: "r", Key: true, SchemaID: recV1})
	for _, text := range []string{`{"region":"eu"}`, `{"region":"eu","n":"x","at":null}`, `{"region":"eu","n":1,"at":null,"extra":1}`, `nope`, `{"region":"eu","n":99999999999,"at":null}`} {
		if _, err := s.FromText(text); !errors.Is(err, serde.ErrInvalid) {
			t.Errorf("FromText(%q) = %v, want an error wrapping serde.ErrInvalid", text, err)
		}
	}
}

const shopProto = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";

message Order {
  string id = 1;
  int64 total_cents = 2;
  google.protobuf.Timestamp placed = 3;
  Customer customer = 4;
  repeated Line lines = 5;
  Status status = 6;
  message Line { string sku = 1; int32 qty = 2; }
}
message Customer { string name = 1; Address address = 2; message Address { string city = 1; } }
enum Status { NEW = 0; PAID = 1; }
`

// Several message types in one schema: the record's message indexes say
// which one it is; the answer is protojson's canonical JSON.
func TestProtobufMessageIndexes(t *testing.T) {
	f := newFake(t)
	id := f.register(t, "shop-value", "PROTOBUF", shopProto)
	s := newSerde(t, client(t, f), registry.Config{Format: registry.Protobuf, Topic: "shop"})
	// Wire bytes written by hand from the .proto above, so that the test
	// does not depend on the code under test to produce them.
	order := unhex(t, "0a036f2d31"+ // id "o-1"
		"10d209"+ // total_cents 1234
		"1a0608a8e6bfd806"+ // placed {seconds: 2026-12-02T10:30:00Z}
		"220a0a035a6f6512030a0142"+ // customer {name "Zoe", address {city "B"}}
		"2a070a03736b751002"+ // lines [{sku "sku", qty 2}]
		"3001") // status PAID
	addr := unhex(t, "0a044f736c6f") // Customer.Address {city "Oslo"}
	for _, tc := range []struct {
		name  string
		index []byte
		rec   []byte
		want  string
	}{
		{"first message, shortcut index", []byte{0}, order,
			`{"id":"o-1","totalCents":"1234","placed":"2026-12-02T10:30:00Z","customer":{"name":"Zoe","address":{"city":"B"}},"lines":[{"sku":"sku","qty":2}],"status":"PAID"}`},
		{"second message", []byte{2, 2}, unhex(t, "0a035a6f65"), `{"name":"Zoe"}`}, // [1]
		{"nested message", []byte{4, 2, 0}, addr, `{"city":"Oslo"}`},               // [1, 0]
	} {
		got, err := s.AppendJSON(nil, frame(id, tc.index, tc.rec))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %s, %v\nwant %s", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name  string
		index []byte
		want  string
	}{
		{"index past the messages", []byte{2, 6}, "names no message"},
		{"negative index count", []byte{1}, "message indexes"},
		{"absurd index count", []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, "message indexes"},
	} {
		if _, err := s.AppendJSON(nil, frame(id, tc.index, nil)); !errors.Is(err, serde.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an ErrInvalid saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := s.AppendJSON(nil, frame(id, []byte{0}, []byte{0x0a, 0x09, 'x'})); !errors.Is(err, serde.ErrInvalid) {
		t.Errorf("truncated message: %v", err)
	}
}

func TestProtobufKeysFromText(t *testing.T) {
	f := newFake(t)
	id := f.register(t, "shop-key", "PROTOBUF", shopProto)
	c := client(t, f)
	first := newSerde(t, c, registry.Config{Format: registry.Protobuf, Topic: "shop", Key: true})
	got, err := first.FromText(`{"id":"o-1","totalCents":"1234"}`)
	if want := frame(id, []byte{0}, unhex(t, "0a036f2d3110d209")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("first message: %x, %v; want %x", got, err, want)
	}
	nested := newSerde(t, c, registry.Config{Format: registry.Protobuf, Topic: "shop", Key: true, Record: "shop.Customer.Address"})
	got, err = nested.FromText(`{"city":"Oslo"}`)
	if want := frame(id, []byte{4, 2, 0}, unhex(t, "0a044f736c6f")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("nested message: %x, %v; want %x", got, err, want)
	}
	if js, err := nested.AppendJSON(nil, got); err != nil || string(js) != `{"city":"Oslo"}` {
		t.Errorf("answer: %s, %v", js, err)
	}
	if _, err := first.FromText(`{"nope":1}`); !errors.Is(err, serde.ErrInvalid) {
		t.Errorf("unknown field: %v", err)
	}
}

func TestJSONSchema(t *testing.T) {
	f := newFake(t)
	schema := `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},"required":["id"],"additionalProperties":false}`
	vid := f.register(t, "people-value", "JSON", schema)
	kid := f.register(t, "people-key", "JSON", schema)
	c := client(t, f)
	v := newSerde(t, c, registry.Config{Format: registry.JSONSchema, Topic: "people"})
	rec := frame(vid, nil, []byte(`{"id": 1, "name": "Zoë"}`))
	if got, err := v.AppendJSON(nil, rec); err != nil || string(got) != `{"id": 1, "name": "Zoë"}` {
		t.Errorf("value: %s, %v", got, err)
	}
	for _, bad := range [][]byte{frame(vid, nil, []byte(`{"id":`)), frame(vid, nil, []byte("\"\xff\""))} {
		if _, err := v.AppendJSON(nil, bad); !errors.Is(err, serde.ErrInvalid) {
			t.Errorf("AppendJSON(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	k := newSerde(t, c, registry.Config{Format: registry.JSONSchema, Topic: "people", Key: true})
	got, err := k.FromText(`{ "id": 7 }`)
	if want := frame(kid, nil, []byte(`{"id":7}`)); err != nil || !bytes.Equal(got, want) {
		t.Errorf("key: %q, %v; want %q", got, err, want)
	}
	for _, text := range []string{`{"id":"7"}`, `{"name":"x"}`, `{"id":1,"x":2}`, `{`} {
		if _, err := k.FromText(text); !errors.Is(err, serde.ErrInvalid) {
			t.Errorf("FromText(%q) = %v, want ErrInvalid", text, err)
		}
	}
	// A schema whose $ref points outside the registry is refused, not fetched.
	rid := f.register(t, "evil-value", "JSON", `{"$ref":"file:///etc/passwd"}`)
	if _, err := v.AppendJSON(nil, frame(rid, nil, []byte(`{}`))); err == nil || !strings.Contains(err.Error(), "not one of the schema's references") {
		t.Errorf("schema with an outside $ref: %v", err)
	}
}

// Each kind of bad record or unusable registry is its own error, and never
// a crash or a wrong value.
func TestErrors(t *testing.T) {
	f := newFake(t)
	id := f.register(t, "orders-value", "AVRO", orderV1)
	pid := f.register(t, "p-value", "PROTOBUF", shopProto)
	c := client(t, f)
	s := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: "orders"})
	good := order1(t, "o-1")
	for _, tc := range []struct {
		name    string
		rec     []byte
		invalid bool
		is      error
		msg     string
	}{
		{"empty", nil, true, nil, "empty record"},
		{"no magic byte", []byte(`{"id":1}`), true, nil, "first byte is 0x7b"},
		{"too short", []byte{0, 0, 1}, true, nil, "too short"},
		{"unknown id", frame(9999, nil, good), true, registry.ErrUnknownSchema, "the record names schema id 9999, which the schema registry does not have"},
		{"another format's schema", frame(pid, nil, good), true, nil, "a PROTOBUF schema"},
		{"truncated", frame(id, nil, good[:len(good)-3]), true, nil, "not an Avro record"},
		{"bytes left over", frame(id, nil, append(append([]byte{}, good...), 1, 2)), true, nil, "left over"},
		{"negative length", frame(id, nil, []byte{0x01}), true, nil, "not an Avro record"},
		{"huge length", frame(id, nil, []byte{0x06, 'o', '-', '1', 0xfe, 0xff, 0xff, 0xff, 0x0f}), true, nil, "not an Avro record"},
	} {
		out, err := s.AppendJSON([]byte("keep"), tc.rec)
		switch {
		case err == nil:
			t.Errorf("%s: no error, answered %s", tc.name, out)
		case errors.Is(err, serde.ErrInvalid) != tc.invalid:
			t.Errorf("%s: %v: wraps ErrInvalid %v, want %v", tc.name, err, !tc.invalid, tc.invalid)
		case tc.is != nil && !errors.Is(err, tc.is):
			t.Errorf("%s: %v, want one wrapping %v", tc.name, err, tc.is)
		case !strings.Contains(err.Error(), tc.msg):
			t.Errorf("%s: %v, want it to say %q", tc.name, err, tc.msg)
		case string(out) != "keep":
			t.Errorf("%s: dst changed to %q", tc.name, out)
		}
	}
	// A key subject that does not exist is not the key text's fault.
	k := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: "nothing", Key: true})
	if _, err := k.FromText("x"); !errors.Is(err, registry.ErrUnknownSchema) || errors.Is(err, serde.ErrInvalid) || !strings.Contains(err.Error(), `subject "nothing-key"`) {
		t.Errorf("missing key subject: %v", err)
	}
}

// Registry answers are untrusted: garbage, wrong types, schemas that do
// not parse and reference cycles are errors.
func TestUntrustedRegistryAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not JSON", `<html>`, "unable to decode"},
		{"unknown type", `{"schema":"{}","schemaType":"XML"}`, "unknown"},
		{"schema does not parse", `{"schema":"{\"type\":\"recrd\"}"}`, "not a valid Avro schema"},
		{"reference without a subject", `{"schema":"\"string\"","references":[{"name":"x","subject":"","version":1}]}`, "reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
					_, _ = w.Write([]byte(tc.body))
					return true
				}
				return false
			})
			s := newSerde(t, client(t, f), registry.Config{Format: registry.Avro, Topic: "t"})
			_, err := s.AppendJSON(nil, frame(1, nil, []byte{2, 'x'}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("reference cycle", func(t *testing.T) {
		f := newFake(t)
		f.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			// Every schema references version 1 of subject a.
			_, _ = w.Write([]byte(`{"subject":"a","version":1,"id":1,"schema":"\"string\"","references":[{"name":"a","subject":"a","version":1}]}`))
			return true
		})
		s := newSerde(t, client(t, f), registry.Config{Format: registry.Avro, Topic: "t"})
		done := make(chan error, 1)
		go func() { _, err := s.AppendJSON(nil, frame(1, nil, []byte{2, 'x'})); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "cycle") {
				t.Errorf("got %v, want a cycle error", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a reference cycle hangs")
		}
	})
}

// Avro references: a record whose field type is defined in another
// subject.
func TestAvroReferences(t *testing.T) {
	f := newFake(t)
	f.register(t, "com.acme.Money", "AVRO", `{"type":"record","name":"Money","namespace":"com.acme","fields":[{"name":"cents","type":"long"},{"name":"currency","type":"string"}]}`)
	id := f.register(t, "pay-value", "AVRO", `{"type":"record","name":"Payment","namespace":"com.acme","fields":[{"name":"amount","type":"com.acme.Money"}]}`,
		sr.SchemaReference{Name: "com.acme.Money", Subject: "com.acme.Money", Version: 1})
	s := newSerde(t, client(t, f), registry.Config{Format: registry.Avro, Topic: "pay"})
	// amount {cents 250 (zigzag 500 = f4 03), currency "EUR"}
	got, err := s.AppendJSON(nil, frame(id, nil, unhex(t, "f403 06455552")))
	if want := `{"amount":{"cents":250,"currency":"EUR"}}`; err != nil || string(got) != want {
		t.Errorf("got %s, %v; want %s", got, err, want)
	}
}

// A schema is fetched once per id however many records and goroutines
// ask; a registry that goes down costs only schemas not yet known, and a
// failed fetch is retried once the backoff has passed.
func TestCache(t *testing.T) {
	f := newFake(t)
	id := f.register(t, "orders-value", "AVRO", orderV1)
	id2 := f.register(t, "orders-value", "AVRO", orderV2)
	c := client(t, f)
	s := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: "orders"})
	rec := frame(id, nil, order1(t, "o-1"))
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := s.AppendJSON(nil, rec); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := f.byID.Load(); n != 1 {
		t.Errorf("1000 records of one schema id: %d fetches, want 1", n)
	}

	f.down.Store(true)
	if _, err := s.AppendJSON(nil, rec); err != nil {
		t.Errorf("registry down, schema cached: %v", err)
	}
	rec2 := frame(id2, nil, unhex(t, "06 6f2d32 02 fb 06617070"))
	_, err := s.AppendJSON(nil, rec2)
	if !errors.Is(err, registry.ErrRegistryUnavailable) || errors.Is(err, serde.ErrInvalid) || !strings.Contains(err.Error(), "503") {
		t.Errorf("registry down, new schema id: %v; want ErrRegistryUnavailable, not ErrInvalid", err)
	}
	f.down.Store(false)
	// Within the backoff the failure is remembered: the registry is not
	// asked once per record.
	before := f.byID.Load()
	if _, err := s.AppendJSON(nil, rec2); !errors.Is(err, registry.ErrRegistryUnavailable) {
		t.Errorf("within the backoff: %v", err)
	}
	if f.byID.Load() != before {
		t.Error("the registry was asked again within the backoff")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := s.AppendJSON(nil, rec2)
		if err == nil {
			if string(got) != `{"id":"o-2","total":-0.05,"channel":"app"}` {
				t.Errorf("after the registry came back: %s", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry came back, still %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The latest version of a key subject is asked again after the TTL; while
// the registry is down, the version known last keeps encoding keys.
func TestLatestKeySchemaTTL(t *testing.T) {
	f := newFake(t)
	v1 := f.register(t, "k-key", "AVRO", `"string"`)
	c, err := registry.NewClient(registry.Options{URLs: []string{f.URL()}, CacheTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: "k", Key: true})
	b, err := s.FromText("a")
	if err != nil || binary.BigEndian.Uint32(b[1:5]) != uint32(v1) {
		t.Fatalf("FromText: %x, %v", b, err)
	}
	f.down.Store(true)
	time.Sleep(60 * time.Millisecond)
	if b, err := s.FromText("a"); err != nil || binary.BigEndian.Uint32(b[1:5]) != uint32(v1) {
		t.Errorf("registry down past the TTL: %x, %v; want the last known version", b, err)
	}
	f.down.Store(false)
	v2 := f.register(t, "k-key", "AVRO", `{"type":"string","doc":"v2"}`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := s.FromText("a")
		if err == nil && binary.BigEndian.Uint32(b[1:5]) == uint32(v2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never moved to the new latest version %d: %x, %v", v2, b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCacheSizeBound(t *testing.T) {
	f := newFake(t)
	var ids []int
	for i := range 5 {
		ids = append(ids, f.register(t, "s"+string(rune('a'+i))+"-value", "AVRO", `{"type":"string","doc":"`+string(rune('a'+i))+`"}`))
	}
	c, err := registry.NewClient(registry.Options{URLs: []string{f.URL()}, CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := c.SchemaByID(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	before := f.byID.Load()
	_, _ = c.SchemaByID(context.Background(), ids[len(ids)-1])
	_, _ = c.SchemaByID(context.Background(), ids[0])
	if got := f.byID.Load() - before; got != 1 {
		t.Errorf("with a cache of 2: %d fetches for the newest and the oldest, want 1 (the oldest was evicted)", got)
	}
}

func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		cfg  registry.Config
		want string
	}{
		{registry.Config{Format: "avr"}, `format: "avr" is not avro, protobuf, json-schema`},
		{registry.Config{Format: "avro", SubjectStrategy: "record"}, "record: is required"},
		{registry.Config{Format: "avro", SubjectStrategy: "name"}, `subject_strategy: "name" is not`},
		{registry.Config{Format: "avro", Key: true, SchemaID: 1, Version: 2}, "pin one or the other"},
		{registry.Config{Format: "avro", SchemaID: 1}, "only a key serde encodes"},
		{registry.Config{Format: "protobuf", ReaderSchema: `"string"`}, "only avro has reader schemas"},
	} {
		if err := tc.cfg.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, tc := range []struct {
		cfg  registry.Config
		want string
	}{
		{registry.Config{Topic: "t", Key: true}, "t-key"},
		{registry.Config{Topic: "t"}, "t-value"},
		{registry.Config{Topic: "t", SubjectStrategy: "record", Record: "com.acme.Order"}, "com.acme.Order"},
		{registry.Config{Topic: "t", SubjectStrategy: "topic_record", Record: "com.acme.Order"}, "t-com.acme.Order"},
	} {
		if got := tc.cfg.Subject(); got != tc.want {
			t.Errorf("%+v: subject %q, want %q", tc.cfg, got, tc.want)
		}
	}
	if _, err := registry.New(nil, registry.Config{Format: "avro", ReaderSchema: `{"type":"recrd"}`}); err == nil || !strings.Contains(err.Error(), "reader schema") {
		t.Errorf("bad reader schema: %v", err)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package registry_test

import (
	"testing"

	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/serde/registry"
)

// One order, the same data in each format: the cost per record of
// rendering it as JSON, with its schema cached (as it is after the first
// record of an id), against the built-in json serde copying a JSON record.
const benchAvro = `{"type":"record","name":"Order","fields":[
  {"name":"id","type":"string"},{"name":"customer","type":"string"},
  {"name":"total_cents","type":"long"},{"name":"qty","type":"int"},
  {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
  {"name":"note","type":["null","string"]}]}`

const benchProto = `syntax = "proto3";
message Order { string id = 1; string customer = 2; int64 total_cents = 3; int32 qty = 4; Status status = 5; string note = 6; }
enum Status { NEW = 0; PAID = 1; }`

const benchJSON = `{"id":"o-00001","customer":"c-42","total_cents":12345,"qty":3,"status":"PAID","note":"leave at the door"}`

func BenchmarkAppendJSON(b *testing.B) {
	f := newFake(b)
	c := client(b, f)
	avroID := f.register(b, "a-value", "AVRO", benchAvro)
	protoID := f.register(b, "p-value", "PROTOBUF", benchProto)
	jsonID := f.register(b, "j-value", "JSON", `{"type":"object"}`)
	avroRec, err := avro.Marshal(avro.MustParse(benchAvro), map[string]any{
		"id": "o-00001", "customer": "c-42", "total_cents": int64(12345), "qty": 3, "status": "PAID",
		"note": map[string]any{"string": "leave at the door"}})
	if err != nil {
		b.Fatal(err)
	}
	var pb []byte
	pb = protowire.AppendTag(pb, 1, protowire.BytesType)
	pb = protowire.AppendString(pb, "o-00001")
	pb = protowire.AppendTag(pb, 2, protowire.BytesType)
	pb = protowire.AppendString(pb, "c-42")
	pb = protowire.AppendTag(pb, 3, protowire.VarintType)
	pb = protowire.AppendVarint(pb, 12345)
	pb = protowire.AppendTag(pb, 4, protowire.VarintType)
	pb = protowire.AppendVarint(pb, 3)
	pb = protowire.AppendTag(pb, 5, protowire.VarintType)
	pb = protowire.AppendVarint(pb, 1)
	pb = protowire.AppendTag(pb, 6, protowire.BytesType)
	pb = protowire.AppendString(pb, "leave at the door")
	jsonSerde, err := serde.Lookup("json")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		s    serde.Serde
		rec  []byte
	}{
		{"json", jsonSerde, []byte(benchJSON)},
		{"json-schema", newSerde(b, c, registry.Config{Format: registry.JSONSchema}), frame(jsonID, nil, []byte(benchJSON))},
		{"avro", newSerde(b, c, registry.Config{Format: registry.Avro}), frame(avroID, nil, avroRec)},
		{"protobuf", newSerde(b, c, registry.Config{Format: registry.Protobuf}), frame(protoID, []byte{0}, pb)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dst, err := bc.s.AppendJSON(nil, bc.rec) // fetches and compiles the schema
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.rec)))
			for b.Loop() {
				if dst, err = bc.s.AppendJSON(dst[:0], bc.rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

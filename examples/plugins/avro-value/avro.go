package main

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/linkedin/goavro/v2"

	"github.com/iqengine/iqengine/sdk/go/iq"
	"github.com/iqengine/iqengine/sdk/go/iq/registry"
)

// codecs keeps each schema id's codec: a schema parsed per record would
// cost more than decoding the record. Ids never change meaning.
var codecs = map[int32]*goavro.Codec{}

// appendJSON appends the JSON of one record in the Confluent wire format:
// a zero byte, the schema's id (4 bytes, big-endian), then the record in
// Avro's binary encoding, written with that schema.
func appendJSON(dst, value []byte) ([]byte, error) {
	if len(value) < 5 || value[0] != 0 {
		return nil, iq.Reject("not in the Confluent wire format: want a zero byte and a 4-byte schema id first")
	}
	id := int32(binary.BigEndian.Uint32(value[1:5]))
	c, err := codecOf(id)
	if err != nil {
		return nil, err
	}
	v, rest, err := c.NativeFromBinary(value[5:])
	if err != nil {
		return nil, iq.Reject("the record does not decode with schema id %d: %v", id, err)
	}
	if len(rest) > 0 {
		return nil, iq.Reject("the record has %d bytes after its schema id %d encoding", len(rest), id)
	}
	out, err := c.TextualFromNative(dst, v)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: rendering the record: %v", id, err)
	}
	return out, nil
}

// codecOf asks the host for schema id's text, once, and makes its codec.
func codecOf(id int32) (*goavro.Codec, error) {
	if c, ok := codecs[id]; ok {
		return c, nil
	}
	typ, text, err := registry.Schema(id)
	switch {
	case errors.Is(err, registry.ErrUnknownSchema):
		// The record names a schema that does not exist: its fault.
		return nil, iq.Reject("the record names schema id %d, which the registry does not have", id)
	case err != nil:
		// The registry is down: the record may well be fine.
		return nil, err
	case typ != registry.Avro:
		return nil, iq.Reject("the record names schema id %d, a %s schema, not Avro", id, typ)
	}
	// Avro's JSON encoding (a union's value as {"string":"gift"}): goavro's
	// standard-JSON codec also parses JSON from an io.Reader, which links
	// WASI's fd_read, an import plugins may not have (README.md).
	c, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("schema id %d does not parse as Avro: %v", id, err)
	}
	codecs[id] = c
	return c, nil
}

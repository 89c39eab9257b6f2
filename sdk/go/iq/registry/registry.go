// Package registry gives a plugin the schemas of the schema registry the
// node reads Avro, Protobuf and JSON Schema records with (ABI 1.1,
// sdk/ABI.md): Schema returns the schema with a global id, as the 4 bytes
// after the zero byte of a Confluent-framed record name it, so a plugin's
// own decoder follows schema evolution instead of embedding one schema.
//
//	typ, text, err := registry.Schema(id)
//	switch {
//	case errors.Is(err, registry.ErrUnknownSchema):
//		return nil, iq.Reject("the record names schema id %d, which the registry does not have", id)
//	case err != nil:
//		return nil, err // the registry is down: fail, the record may well be fine
//	}
//
// Importing this package adds the marker export iq_abi_v1_1, and calling
// Schema the import iq.schema: the store's config must grant the registry
// capability (allow_registry: true beside wasm) on a node with a
// schema_registry, or the node refuses the module at load time, saying so.
// Nothing else about the plugin changes.
//
// Schemas by id never change, so each instance keeps the ones it was given
// (up to 256; the host caches them too): asking for a record's schema per
// record costs a map lookup.
//
// The package builds on every platform; outside a module run by iqengine
// there is no host, and Schema answers what the function given to Fake
// answers (for go test), or an error.
package registry

import (
	"errors"
	"fmt"
)

// The schema types Schema returns, as the registry names them.
const (
	Avro     = "AVRO"
	Protobuf = "PROTOBUF"
	JSON     = "JSON"
)

var (
	// ErrUnknownSchema: the registry has no schema with the id. A record
	// that names it is at fault (reject it).
	ErrUnknownSchema = errors.New("unknown schema id")
	// ErrUnavailable: the registry could not be reached in the time the
	// call had, and the host has not cached the schema. The record may be
	// fine: fail, and a later query will tell.
	ErrUnavailable = errors.New("schema registry unavailable")
)

// Statuses of iq.schema.
const (
	statusUnknown     = -1
	statusUnavailable = -2
)

// maxCached bounds the schemas an instance keeps.
const maxCached = 256

type schema struct{ typ, text string }

var (
	cache = map[int32]schema{}
	buf   []byte // iq.schema writes here; grown when a schema is longer
	fake  func(id int32) (schemaType, schema string, err error)
)

// Schema returns the type (Avro, Protobuf or JSON) and text of the
// schema registry's schema with the global id. Its error is
// ErrUnknownSchema or ErrUnavailable (wrapped, with the id), or, outside
// iqengine, one saying there is no host. Schemas the schema references are
// not included.
func Schema(id int32) (schemaType, text string, err error) {
	if s, ok := cache[id]; ok {
		return s.typ, s.text, nil
	}
	if fake != nil {
		schemaType, text, err = fake(id)
	} else {
		schemaType, text, err = fetch(id)
	}
	if err != nil {
		return "", "", err
	}
	if len(cache) >= maxCached {
		clear(cache)
	}
	cache[id] = schema{schemaType, text}
	return schemaType, text, nil
}

// Fake makes Schema answer with f instead of the host, and forgets the
// schemas kept; nil goes back to the host. It is for tests run with go
// test, where there is no host.
func Fake(f func(id int32) (schemaType, schema string, err error)) {
	fake = f
	clear(cache)
}

// fetch asks the host, growing the buffer once when the schema is longer.
func fetch(id int32) (string, string, error) {
	if len(buf) == 0 {
		buf = make([]byte, 4096)
	}
	for range 3 {
		r, err := hostSchema(id, buf)
		if err != nil {
			return "", "", err
		}
		typ, n, err := decode(id, r)
		if err != nil {
			return "", "", err
		}
		if n <= len(buf) {
			return typ, string(buf[:n]), nil
		}
		buf = make([]byte, n)
	}
	return "", "", fmt.Errorf("schema id %d: the host answered longer texts each time", id)
}

// decode reads iq.schema's result: type << 32 | length, or a status.
func decode(id int32, r int64) (typ string, n int, err error) {
	switch {
	case r == statusUnknown:
		return "", 0, fmt.Errorf("schema id %d: %w", id, ErrUnknownSchema)
	case r == statusUnavailable:
		return "", 0, fmt.Errorf("schema id %d: %w", id, ErrUnavailable)
	case r < 0:
		return "", 0, fmt.Errorf("schema id %d: iq.schema answered status %d, which this SDK does not know", id, r)
	}
	switch r >> 32 {
	case 1:
		typ = Avro
	case 2:
		typ = Protobuf
	case 3:
		typ = JSON
	default:
		return "", 0, fmt.Errorf("schema id %d: iq.schema answered schema type %d, which this SDK does not know", id, r>>32)
	}
	return typ, int(r & 0xFFFFFFFF), nil
}

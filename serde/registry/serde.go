// Package registry is the schema registry serdes: avro, protobuf and
// json-schema records in Confluent's wire format (a zero byte, the schema's
// 4-byte big-endian id, then the encoded record; for Protobuf the message
// indexes between the two), with their schemas fetched from a Schema
// Registry with a Confluent-compatible API (Confluent's own, Apicurio's
// ccompat API, Redpanda's, Karapace).
//
// A record's schema is resolved by the id it carries, through Client's
// cache: fetched once per id, never per record, and never again once
// known, so a registry that goes down costs only records whose schema has
// not been seen yet. Key text is encoded with the key subject's schema
// (the latest version, or a pinned id or version) into the bytes a
// Confluent serializer writes, so lookups find keys written by Java, Go or
// Python producers.
//
// Like package serde, it knows nothing of stores, HTTP or the cluster; the
// formats themselves are the libraries' business (hamba/avro,
// protocompile with dynamicpb and protojson, santhosh-tekuri/jsonschema),
// the registry API and the wire header franz-go's sr package's.
package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/iqengine/iqengine/serde"
)

// Formats: the serde names a store's config uses.
const (
	Avro       = "avro"
	Protobuf   = "protobuf"
	JSONSchema = "json-schema"
)

// Formats lists the format names, for errors.
var Formats = []string{Avro, Protobuf, JSONSchema}

// Subject name strategies, as Confluent's serializers name them
// (TopicNameStrategy, RecordNameStrategy, TopicRecordNameStrategy).
const (
	StrategyTopic       = "topic"
	StrategyRecord      = "record"
	StrategyTopicRecord = "topic_record"
)

// Config is one store field's registry serde.
type Config struct {
	// Format is Avro, Protobuf or JSONSchema.
	Format string
	// Topic is the store's topic, and Key whether the serde is the key's:
	// together they name the subject under the topic strategy
	// (<topic>-key, <topic>-value).
	Topic string
	Key   bool
	// SubjectStrategy is StrategyTopic (the default), StrategyRecord
	// (the subject is Record) or StrategyTopicRecord (<topic>-<Record>).
	SubjectStrategy string
	// Record is the fully qualified name of the record (Avro) or message
	// (Protobuf) type; required by the record strategies. For Protobuf
	// keys it is also the message that key text is encoded as (default:
	// the schema's first message).
	Record string
	// SchemaID pins the schema that key text is encoded with, and Version
	// pins a version of the subject instead; without either, the subject's
	// latest version is used. At most one of them.
	SchemaID int
	Version  int
	// ReaderSchema (Avro only) is a schema every record is rendered in,
	// whatever version it was written with (Avro schema resolution:
	// fields the writer lacks take their defaults, fields the reader lacks
	// are dropped). Empty: each record in its own writer's schema.
	ReaderSchema string
}

// Subject is the subject the key text's schema is found under.
func (c Config) Subject() string {
	switch c.SubjectStrategy {
	case StrategyRecord:
		return c.Record
	case StrategyTopicRecord:
		return c.Topic + "-" + c.Record
	}
	if c.Key {
		return c.Topic + "-key"
	}
	return c.Topic + "-value"
}

// Check says what is wrong with c: errors joined, each starting with the
// field's name in a store's config ("record: is required ..."); nil when
// it is fine. It needs no registry.
func (c Config) Check() error {
	var errs []error
	switch c.Format {
	case Avro, Protobuf, JSONSchema:
	default:
		errs = append(errs, fmt.Errorf("format: %q is not %s", c.Format, strings.Join(Formats, ", ")))
	}
	switch c.SubjectStrategy {
	case "", StrategyTopic:
	case StrategyRecord, StrategyTopicRecord:
		if c.Record == "" {
			errs = append(errs, fmt.Errorf("record: is required with subject_strategy %s (the record's fully qualified name)", c.SubjectStrategy))
		}
	default:
		errs = append(errs, fmt.Errorf("subject_strategy: %q is not %s, %s or %s", c.SubjectStrategy, StrategyTopic, StrategyRecord, StrategyTopicRecord))
	}
	if c.SchemaID < 0 {
		errs = append(errs, errors.New("schema_id: must be positive"))
	}
	if c.Version < 0 {
		errs = append(errs, errors.New("version: must be positive"))
	}
	if c.SchemaID > 0 && c.Version > 0 {
		errs = append(errs, errors.New("schema_id and version: pin one or the other"))
	}
	if (c.SchemaID > 0 || c.Version > 0) && !c.Key {
		errs = append(errs, errors.New("schema_id and version: only a key serde encodes, so only a key's schema can be pinned"))
	}
	if c.ReaderSchema != "" && c.Format != Avro {
		errs = append(errs, errors.New("reader_schema_file: only avro has reader schemas"))
	}
	return errors.Join(errs...)
}

// codec is one format's decoding and encoding, given a schema from the
// registry.
type codec interface {
	// schemaType is the registry's name of the format's schemas.
	schemaType() string
	// appendJSON appends the JSON of payload (the record after the id),
	// written with schema s.
	appendJSON(dst []byte, s *Schema, payload []byte) ([]byte, error)
	// appendEncoded appends the encoding of key text with schema s,
	// header included.
	appendEncoded(dst []byte, s *Schema, text string) ([]byte, error)
}

// Serde is a registry serde. It implements serde.Serde and is safe for
// concurrent use.
type Serde struct {
	c     *Client
	cfg   Config
	codec codec
}

var _ serde.Serde = (*Serde)(nil)

// New returns the serde cfg describes, fetching schemas through c. A bad
// reader schema is an error now, not at the first record.
func New(c *Client, cfg Config) (*Serde, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	s := &Serde{c: c, cfg: cfg}
	switch cfg.Format {
	case Avro:
		a, err := newAvroCodec(cfg.ReaderSchema)
		if err != nil {
			return nil, err
		}
		s.codec = a
	case Protobuf:
		s.codec = &protoCodec{message: cfg.Record}
	case JSONSchema:
		s.codec = jsonSchemaCodec{}
	}
	return s, nil
}

// Name is the format's name.
func (s *Serde) Name() string { return s.cfg.Format }

// Config is the serde's configuration.
func (s *Serde) Config() Config { return s.cfg }

var header sr.ConfluentHeader

// AppendJSON renders a record in the wire format: its schema is looked up
// by the id it carries.
func (s *Serde) AppendJSON(dst, b []byte) ([]byte, error) {
	id, payload, err := header.DecodeID(b)
	if err != nil {
		return dst, noHeader(b)
	}
	sch, err := s.c.SchemaByID(context.Background(), id)
	if err != nil {
		return dst, recordsFault(err)
	}
	if sch.Type != s.codec.schemaType() {
		return dst, invalidf("the record names schema id %d, a %s schema, but the store reads %s records", id, sch.Type, s.cfg.Format)
	}
	return s.codec.appendJSON(dst, sch, payload)
}

// FromText encodes key text with the key subject's schema (pinned by id
// or version, or the latest), into the bytes a Confluent serializer writes
// for the same value.
func (s *Serde) FromText(text string) ([]byte, error) {
	sch, err := s.KeySchema(context.Background())
	if err != nil {
		return nil, err
	}
	if sch.Type != s.codec.schemaType() {
		return nil, fmt.Errorf("the key's schema (id %d) is a %s schema, but the store's key serde is %s", sch.ID, sch.Type, s.cfg.Format)
	}
	return s.codec.appendEncoded(nil, sch, text)
}

// KeySchema is the schema key text is encoded with.
func (s *Serde) KeySchema(ctx context.Context) (*Schema, error) {
	switch {
	case s.cfg.SchemaID > 0:
		return s.c.SchemaByID(ctx, s.cfg.SchemaID)
	case s.cfg.Version > 0:
		return s.c.SchemaByVersion(ctx, s.cfg.Subject(), s.cfg.Version)
	}
	return s.c.Latest(ctx, s.cfg.Subject())
}

// Subject is the subject key text's schema is found under.
func (s *Serde) Subject() string { return s.cfg.Subject() }

// noHeader explains bytes that are not in the wire format.
func noHeader(b []byte) error {
	switch {
	case len(b) == 0:
		return invalidf("empty record: the wire format starts with a zero byte and a 4-byte schema id")
	case b[0] != 0:
		return invalidf("not in the schema registry's wire format: the first byte is %#02x, not the magic byte 0 (was it written without a registry serializer?)", b[0])
	}
	return invalidf("not in the schema registry's wire format: %d bytes, too short for the magic byte and a 4-byte schema id", len(b))
}

// recordsFault marks an unknown schema as the record's fault: the record
// named it.
func recordsFault(err error) error {
	if u, ok := err.(*UnknownSchemaError); ok {
		c := *u
		c.Record = true
		return &c
	}
	return err
}

// appendHeader appends the wire format's header.
func appendHeader(dst []byte, id int, index []int) []byte {
	dst, _ = header.AppendEncode(dst, id, index) // never fails
	return dst
}

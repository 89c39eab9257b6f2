package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// jsonSchemaCodec reads JSON Schema records: after the header, the record
// is a JSON document, answered as it is (as the json serde does). Records
// are not validated against their schema when read: the serializer did
// that when it wrote them (as Confluent's deserializer, by default, does
// not either), and an answer shows what the record holds. The schema is
// still fetched once per id, so that a record naming an id the registry
// does not have is told apart. Key text is validated against the key's
// schema before it is encoded, so a key that could not have been written
// gets a reason rather than a 404.
type jsonSchemaCodec struct{}

func (jsonSchemaCodec) schemaType() string { return "JSON" }

// noLoader refuses every URL a schema's $ref would have the validator
// fetch: a schema from the registry is untrusted, and may only refer to
// itself and to the references the registry lists.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s is not one of the schema's references in the registry", url)
}

// compiledJSONSchema compiles a registry schema and its references.
func compiledJSONSchema(s *Schema) (*jsonschema.Schema, error) {
	v, err := s.compile("json-schema", func() (any, error) {
		c := jsonschema.NewCompiler()
		c.UseLoader(noLoader{})
		seen := map[string]bool{}
		var add func(s *Schema) error
		add = func(s *Schema) error {
			for _, r := range s.References {
				if seen[r.Name] {
					continue
				}
				seen[r.Name] = true
				doc, err := jsonschema.UnmarshalJSON(strings.NewReader(r.Schema.Text))
				if err != nil {
					return fmt.Errorf("its reference %q is not JSON: %v", r.Name, err)
				}
				if err := c.AddResource(r.Name, doc); err != nil {
					return err
				}
				if err := add(r.Schema); err != nil {
					return err
				}
			}
			return nil
		}
		if err := add(s); err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(s.Text))
		if err != nil {
			return nil, err
		}
		main := fmt.Sprintf("iqengine-registry-schema-%d.json", s.ID)
		if err := c.AddResource(main, doc); err != nil {
			return nil, err
		}
		return c.Compile(main)
	})
	if err != nil {
		return nil, fmt.Errorf("schema id %d from the registry is not a valid JSON Schema: %v", s.ID, err)
	}
	return v.(*jsonschema.Schema), nil
}

func (jsonSchemaCodec) appendJSON(dst []byte, s *Schema, payload []byte) ([]byte, error) {
	if _, err := compiledJSONSchema(s); err != nil {
		return dst, err
	}
	if !json.Valid(payload) {
		return dst, invalidf("not a JSON document after the header of schema id %d", s.ID)
	}
	if !utf8.Valid(payload) {
		return dst, invalidf("the JSON document after the header of schema id %d is not valid UTF-8", s.ID)
	}
	return append(dst, payload...), nil
}

// appendEncoded validates key text, a JSON document, against the key's
// schema, and writes it compact (as Jackson, which Confluent's serializer
// uses, writes it), members in the order given: the order a producer
// wrote cannot be known, so key text must list them in that order.
func (jsonSchemaCodec) appendEncoded(dst []byte, s *Schema, text string) ([]byte, error) {
	sch, err := compiledJSONSchema(s)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, invalidf("%q is not a JSON document", text)
	}
	if !utf8.ValidString(text) {
		return nil, invalidf("%q is not valid UTF-8", text)
	}
	if err := sch.Validate(doc); err != nil {
		return nil, invalidf("%q does not validate against the key's schema (id %d): %v", text, s.ID, oneLine(err))
	}
	var buf bytes.Buffer
	buf.Write(appendHeader(dst, s.ID, nil))
	if err := json.Compact(&buf, []byte(text)); err != nil {
		return nil, invalidf("%q is not a JSON document", text)
	}
	return buf.Bytes(), nil
}

// oneLine joins a library's multi-line report into one line of UTF-8
// (the reports quote the input, which may be neither), each run of spaces
// one space.
func oneLine(err error) string {
	msg := strings.ToValidUTF8(err.Error(), "\uFFFD")
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
}

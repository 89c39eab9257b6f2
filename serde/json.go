package serde

import (
	"encoding/json"
	"unicode/utf8"
)

func init() { register(jsonSerde{}) }

// jsonSerde reads records whose bytes are a JSON document, as written by
// most JSON serializers (no schema-registry framing).
type jsonSerde struct{}

func (jsonSerde) Name() string { return "json" }

// AppendJSON copies the document as is, whitespace included, rather than
// re-encoding it: validation is cheap and re-encoding would cost an
// allocation and a parse per record. UTF-8 is checked separately because
// json.Valid does not look inside strings, and an answer carrying invalid
// UTF-8 would be rejected by strict clients.
func (jsonSerde) AppendJSON(dst, b []byte) ([]byte, error) {
	if !json.Valid(b) {
		return dst, invalidf("not a JSON document")
	}
	if !utf8.Valid(b) {
		return dst, invalidf("JSON document is not valid UTF-8 at byte %d", firstInvalidUTF8(b))
	}
	return append(dst, b...), nil
}

// FromText returns the text exactly as given, not a canonical form: keys are
// compared byte for byte, and there is no way to know how the producer laid
// out its JSON. So `{"a":1}` and `{ "a": 1 }` name different keys, and the
// text must be written the way the producer serialised it.
func (jsonSerde) FromText(s string) ([]byte, error) {
	b := []byte(s)
	if !json.Valid(b) {
		return nil, invalidf("%q is not a JSON document", s)
	}
	if !utf8.Valid(b) {
		return nil, invalidf("%q is not valid UTF-8", s)
	}
	return b, nil
}

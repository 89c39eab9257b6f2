package serde

import (
	"encoding/base64"
	"strings"
)

func init() { register(bytesSerde{}) }

// bytesSerde treats records as opaque bytes, as ByteArraySerializer writes
// them. JSON has no byte type, so they travel as base64.
type bytesSerde struct{}

func (bytesSerde) Name() string { return "bytes" }

// AppendJSON uses standard, padded base64 because that is what most JSON
// tooling (and encoding/json for []byte) expects to decode.
func (bytesSerde) AppendJSON(dst, b []byte) ([]byte, error) {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"'), nil
}

// FromText accepts both alphabets, with or without padding, because keys
// arrive in URLs where people naturally use the URL-safe alphabet and drop
// the '='. Mixed alphabets, line breaks and non-zero trailing bits are
// rejected so that each key has only a few spellings.
func (bytesSerde) FromText(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, invalidf("%q is not base64: contains a line break", s)
	}
	urlSafe := strings.ContainsAny(s, "-_")
	if urlSafe && strings.ContainsAny(s, "+/") {
		return nil, invalidf("%q is not base64: mixes the standard and URL-safe alphabets", s)
	}
	var enc *base64.Encoding
	switch padded := strings.HasSuffix(s, "="); {
	case urlSafe && padded:
		enc = base64.URLEncoding
	case urlSafe:
		enc = base64.RawURLEncoding
	case padded:
		enc = base64.StdEncoding
	default:
		enc = base64.RawStdEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, invalidf("%q is not base64: %v", s, err)
	}
	return b, nil
}

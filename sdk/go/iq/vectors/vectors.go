// Package vectors reads the conformance vector files of sdk/conformance
// (JSON lines; the format is in sdk/conformance/README.md), for iqtest and
// for `iqengine plugin test`.
package vectors

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Vector is one line of a vector file.
type Vector struct {
	Line       int               `json:"-"`
	Op         string            `json:"op"`
	Name       string            `json:"name,omitempty"`
	In         *string           `json:"in,omitempty"`
	InHex      *string           `json:"in_hex,omitempty"`
	Out        *string           `json:"out,omitempty"`
	OutHex     *string           `json:"out_hex,omitempty"`
	Error      string            `json:"error,omitempty"`
	Skip       bool              `json:"skip,omitempty"`
	Partitions *int32            `json:"partitions,omitempty"`
	Partition  *int32            `json:"partition,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	Key        *string           `json:"key,omitempty"`
	Value      *string           `json:"value,omitempty"`
	Config     json.RawMessage   `json:"config,omitempty"`
}

// Load reads a vector file: one JSON object per line; empty lines and lines
// starting with # are skipped. Unknown fields are an error.
func Load(path string) ([]Vector, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var vs []Vector
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		var v Vector
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		v.Line = line
		vs = append(vs, v)
	}
	return vs, sc.Err()
}

// Validate checks that a vector has the fields its op needs.
func (v Vector) Validate() error {
	switch v.Op {
	case "key_to_json", "value_to_json", "key_from_text", "partition":
		if (v.In == nil) == (v.InHex == nil) {
			return fmt.Errorf("%s: want exactly one of in, in_hex", v.Op)
		}
		if v.Op == "partition" && (v.Partitions == nil || (v.Partition == nil && v.Error == "")) {
			return errors.New("partition: want partitions and partition (or error)")
		}
	case "transform":
		if v.Key == nil || v.Value == nil {
			return errors.New("transform: want key and value")
		}
	case "init":
		if v.Config == nil {
			return errors.New("init: want config")
		}
	default:
		return fmt.Errorf("unknown op %q (want key_to_json, value_to_json, key_from_text, partition, transform or init)", v.Op)
	}
	switch v.Error {
	case "", "reject", "fail":
	default:
		return fmt.Errorf("error %q: want reject or fail", v.Error)
	}
	if v.Error == "" && !v.Skip && v.Op != "partition" && v.Op != "init" && v.Out == nil && v.OutHex == nil {
		return fmt.Errorf("%s: want out, out_hex, skip or error", v.Op)
	}
	if v.InHex != nil {
		if _, err := hex.DecodeString(*v.InHex); err != nil {
			return fmt.Errorf("in_hex: %v", err)
		}
	}
	return nil
}

// Input is the vector's input bytes (in, or in_hex decoded).
func (v Vector) Input() []byte {
	if v.InHex != nil {
		b, _ := hex.DecodeString(*v.InHex)
		return b
	}
	if v.In == nil {
		return nil
	}
	return []byte(*v.In)
}

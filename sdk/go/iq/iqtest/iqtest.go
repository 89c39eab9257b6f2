// Package iqtest runs conformance vectors (the JSON-lines format of
// sdk/conformance/README.md, the one `iqengine plugin test` reads) against a
// plugin's handlers natively, under go test, without building WebAssembly.
//
// The handlers are the ones the package under test registered from its init
// functions, and the capabilities are the SDK packages it imports, as in the
// module: a vector for an operation whose package is not linked fails as a
// missing export would.
//
//	func TestVectors(t *testing.T) {
//		iqtest.Run(t, "vectors.jsonl")
//	}
//
// Native runs check the plugin's logic and the SDK's handling of results and
// errors; a trap, the memory cap, deadlines and import checks need the real
// host: `iqengine plugin test MODULE.wasm --vectors FILE.jsonl`.
package iqtest

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
	"github.com/iqengine/iqengine/sdk/go/iq/vectors"
)

// Vector is one line of a vector file.
type Vector = vectors.Vector

// Load reads a vector file: one JSON object per line; empty lines and lines
// starting with # are skipped. Unknown fields are an error.
func Load(path string) ([]Vector, error) { return vectors.Load(path) }

// Run runs every vector of the file, in order, each as a subtest named by its
// line and name, after an init with the config {} (as the host does for a
// store without plugin config).
func Run(t *testing.T, path string) {
	t.Helper()
	RunWithConfig(t, path, []byte("{}"))
}

// RunWithConfig is Run with another initial config (JSON).
func RunWithConfig(t *testing.T, path string, config []byte) {
	t.Helper()
	vs, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s: no vectors", path)
	}
	if err := initialize(config); err != nil {
		t.Fatalf("init with %s: %v", config, err)
	}
	current := config
	for _, v := range vs {
		name := fmt.Sprintf("%d", v.Line)
		if v.Name != "" {
			name += " " + v.Name
		}
		t.Run(name, func(t *testing.T) {
			if v.Op == "init" {
				if err := initialize(v.Config); err != nil {
					if got := statusName(err); got != v.Error {
						t.Errorf("%s:%d: init: got %s (%v), want %s", path, v.Line, got, err, orOK(v.Error))
					}
					_ = initialize(current) // the previous instance stays
					return
				}
				if v.Error != "" {
					t.Errorf("%s:%d: init: succeeded, want %s", path, v.Line, v.Error)
				}
				current = v.Config
				return
			}
			if problem := Check(v); problem != "" {
				t.Errorf("%s:%d: %s: %s", path, v.Line, v.Op, problem)
			} else if defaultPartitioned(v) {
				t.Skipf("%s:%d: the output is right; its partition under Kafka's default partitioner (the plugin has no iq_partition) is checked by `iqengine plugin test`, not natively", path, v.Line)
			}
		})
	}
}

func orOK(s string) string {
	if s == "" {
		return "success"
	}
	return s
}

func initialize(config []byte) error {
	if abi.Init == nil {
		return nil
	}
	return abi.Init(config)
}

func statusName(err error) string {
	if abi.StatusOf(err) == abi.StatusReject {
		return "reject"
	}
	return "fail"
}

// defaultPartitioned reports whether v wants the partition of a
// key_from_text output and the plugin has no partitioner of its own: the host
// then uses Kafka's default partitioner, which this package does not carry
// (it lives in the engine, and the SDK does not depend on the engine).
func defaultPartitioned(v Vector) bool {
	return v.Op == "key_from_text" && v.Partitions != nil && abi.Partition == nil
}

// Check runs one vector (not init) and describes how its result differs
// from the expected one; "" when it passes. The partition of a key_from_text
// output is checked only when the plugin has its own iq_partition.
func Check(v Vector) string {
	switch v.Op {
	case "key_to_json", "value_to_json", "key_from_text":
		op := map[string]func([]byte) ([]byte, error){
			"key_to_json": abi.KeyToJSON, "value_to_json": abi.ValueToJSON, "key_from_text": abi.KeyFromText,
		}[v.Op]
		if op == nil {
			return "the plugin does not import the SDK package for iq_" + v.Op
		}
		in, err := input(v)
		if err != nil {
			return err.Error()
		}
		out, err := op(in)
		if p := compare(v, out, true, err, v.Op != "key_from_text"); p != "" {
			return p
		}
		if v.Partitions != nil && err == nil {
			if v.Partition == nil {
				return "partitions without partition"
			}
			if abi.Partition == nil {
				return "" // Kafka's default partitioner: see defaultPartitioned
			}
			p, err := abi.Partition(out, *v.Partitions)
			if err != nil {
				return fmt.Sprintf("partition of the output: %s (%v)", statusName(err), err)
			}
			if p != *v.Partition {
				return fmt.Sprintf("partition of the output: got %d, want %d", p, *v.Partition)
			}
		}
		return ""
	case "partition":
		if abi.Partition == nil {
			return "the plugin does not import the SDK package for iq_partition"
		}
		in, err := input(v)
		if err != nil {
			return err.Error()
		}
		if v.Partitions == nil || (v.Partition == nil && v.Error == "") {
			return "want partitions and partition (or error)"
		}
		p, err := abi.Partition(in, *v.Partitions)
		if err != nil || v.Error != "" {
			return compare(v, nil, true, err, false)
		}
		if p != *v.Partition {
			return fmt.Sprintf("got %d, want %d", p, *v.Partition)
		}
		return ""
	case "transform":
		if abi.TransformBegin == nil {
			return "the plugin does not import the SDK package for iq_transform_*"
		}
		if v.Key == nil || v.Value == nil {
			return "want key and value"
		}
		params := v.Params
		if params == nil {
			params = map[string]string{}
		}
		pj, err := json.Marshal(params)
		if err != nil {
			return err.Error()
		}
		if err := abi.TransformBegin(pj); err != nil {
			return compare(v, nil, true, err, false)
		}
		defer abi.TransformEnd()
		frame := binary.LittleEndian.AppendUint32(nil, uint32(len(*v.Key)))
		frame = append(append(frame, *v.Key...), *v.Value...)
		out, keep, err := abi.TransformRecord(frame)
		return compare(v, out, keep, err, true)
	}
	return "unknown op " + v.Op
}

func input(v Vector) ([]byte, error) {
	switch {
	case v.In != nil && v.InHex == nil:
		return []byte(*v.In), nil
	case v.InHex != nil && v.In == nil:
		return hex.DecodeString(*v.InHex)
	}
	return nil, errors.New("want exactly one of in and in_hex")
}

func compare(v Vector, out []byte, keep bool, err error, isJSON bool) string {
	var got string
	switch {
	case err != nil:
		got = statusName(err)
	case !keep:
		got = "skip"
	}
	want := v.Error
	if v.Skip {
		want = "skip"
	}
	if got != "" || want != "" {
		if got == want {
			return ""
		}
		if got == "" {
			return fmt.Sprintf("got %q, want %s", out, want)
		}
		if err != nil {
			return fmt.Sprintf("got %s (%v), want %s", got, err, orOutput(want))
		}
		return fmt.Sprintf("got %s, want %s", got, orOutput(want))
	}
	if v.Out != nil && string(out) != *v.Out {
		return fmt.Sprintf("got %q, want %q", out, *v.Out)
	}
	if v.OutHex != nil && hex.EncodeToString(out) != *v.OutHex {
		return fmt.Sprintf("got %x, want %s", out, *v.OutHex)
	}
	if v.Out == nil && v.OutHex == nil {
		return "the vector has no expected output"
	}
	if isJSON && !json.Valid(out) {
		return fmt.Sprintf("output %q is not valid JSON", out)
	}
	return ""
}

func orOutput(s string) string {
	if s == "" {
		return "an output"
	}
	return s
}

package iqtest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iqengine/iqengine/sdk/go/iq"
	"github.com/iqengine/iqengine/sdk/go/iq/iqtest"
	"github.com/iqengine/iqengine/sdk/go/iq/keyfromtext"
	"github.com/iqengine/iqengine/sdk/go/iq/keytojson"
	"github.com/iqengine/iqengine/sdk/go/iq/transform"
)

var configs []string

func init() {
	iq.OnInit(func(c []byte) error {
		if string(c) == `"bad"` {
			return iq.Reject("bad config")
		}
		configs = append(configs, string(c))
		return nil
	})
	keytojson.Handle(func(key []byte) ([]byte, error) {
		if len(key) == 0 {
			return nil, iq.Reject("empty")
		}
		return append(append([]byte(`"`), bytes.ToUpper(key)...), '"'), nil
	})
	keyfromtext.Handle(func(text string) ([]byte, error) { return []byte(text), nil })
	transform.Handle(func(params map[string]string) (transform.Func, error) {
		if _, ok := params["bad"]; ok {
			return nil, iq.Reject("bad parameter")
		}
		return func(key, value []byte) ([]byte, bool, error) {
			if string(value) == "{}" {
				return nil, false, nil
			}
			return []byte(params["out"]), true, nil
		}, nil
	})
}

func write(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "v.jsonl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunPasses(t *testing.T) {
	configs = nil
	iqtest.Run(t, write(t, `# comment

{"op":"key_to_json","in":"ab","out":"\"AB\""}
{"op":"key_to_json","in_hex":"","error":"reject"}
{"op":"key_from_text","in":"k","out_hex":"6b","partitions":3,"partition":2}
{"op":"init","config":{"a":1}}
{"op":"init","config":"bad","error":"reject"}
{"op":"transform","params":{"out":"[1]"},"key":"1","value":"2","out":"[1]"}
{"op":"transform","params":{},"key":"1","value":"{}","skip":true}
{"op":"transform","params":{"bad":""},"key":"1","value":"2","error":"reject"}
`))
	if strings.Join(configs, " ") != `{} {"a":1} {"a":1}` {
		t.Fatalf("inits: %q (want the first, the vector's, and the previous again after the failed one)", configs)
	}
}

func TestCheckFindsProblems(t *testing.T) {
	vs, err := iqtest.Load(write(t, `{"op":"key_to_json","in":"ab","out":"\"ab\""}
{"op":"key_to_json","in":"ab","error":"reject"}
{"op":"key_to_json","in":"","out":"x"}
{"op":"key_to_json","in":"","error":"fail"}
{"op":"value_to_json","in":"x","out":"x"}
{"op":"partition","in":"x","partitions":2,"partition":0}
{"op":"key_from_text","in":"k","out_hex":"6c","partitions":3,"partition":1}
{"op":"transform","params":{"out":"[1"},"key":"1","value":"2","out":"[1"}
{"op":"transform","params":{},"key":"1","value":"{}","out":"{}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`got "\"AB\"", want "\"ab\""`,
		`got "\"AB\"", want reject`,
		`got reject (empty), want an output`,
		`got reject (empty), want fail`,
		`does not import the SDK package for iq_value_to_json`,
		`does not import the SDK package for iq_partition`,
		`got 6b, want 6c`,
		`is not valid JSON`,
		`got skip, want an output`,
	}
	for i, v := range vs {
		if got := iqtest.Check(v); !strings.Contains(got, want[i]) {
			t.Errorf("line %d: Check = %q, want it to say %q", v.Line, got, want[i])
		}
	}
	if _, err := iqtest.Load(write(t, `{"op":"key_to_json","typo":1}`)); err == nil {
		t.Error("Load accepted an unknown field")
	}
	if _, err := iqtest.Load(write(t, `{"op":"key_to_json","in":"a","in_hex":"61","out":"\"A\""}`)); err == nil || !strings.Contains(err.Error(), "want exactly one of in, in_hex") {
		t.Errorf("Load accepted both in and in_hex: %v", err)
	}
}

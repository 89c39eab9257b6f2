package transform

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
	"github.com/iqengine/iqengine/sdk/go/iq"
)

func TestParseParams(t *testing.T) {
	good := []string{
		``,
		`{}`,
		" \t\r\n{ } \n",
		`{"fields":"id,status","min_total":"100"}`,
		` { "a" : "1" , "b":"" } `,
		`{"esc":"\"\\\/\b\f\n\r\t","u":"\u00e9\u65e5\ud83d\ude00","lone":"\ud800x","lone2":"\udc00"}`,
		`{"raw":"é日本😀"}`,
		`{"a":"1","a":"2"}`,
		`{"a\u0000b":"\u0000"}`,
	}
	for _, in := range good {
		got, err := ParseParams([]byte(in))
		if err != nil {
			t.Errorf("ParseParams(%q): %v", in, err)
			continue
		}
		want := map[string]string{}
		if in != "" {
			if err := json.Unmarshal([]byte(in), &want); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseParams(%q) = %q, encoding/json says %q", in, got, want)
		}
	}
	bad := []string{
		`[]`, `"x"`, `{`, `{"a"}`, `{"a":1}`, `{"a":null}`, `{"a":"1",}`, `{"a":"1"} x`,
		`{"a":"1" "b":"2"}`, `{a:"1"}`, `{"a":"x` + "\n" + `"}`, `{"a":"\x"}`, `{"a":"\u12"}`,
		`{"a":"unterminated}`, `{"a":"\`,
	}
	for _, in := range bad {
		if got, err := ParseParams([]byte(in)); !iq.IsReject(err) {
			t.Errorf("ParseParams(%q) = %q, %v; want a rejection", in, got, err)
		}
	}
}

func frame(key, value string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(key)))
	return append(append(b, key...), value...)
}

func TestSplitFrame(t *testing.T) {
	k, v, err := SplitFrame(frame(`{"id":1}`, `{"a":2}`))
	if err != nil || string(k) != `{"id":1}` || string(v) != `{"a":2}` {
		t.Fatalf("SplitFrame = %q, %q, %v", k, v, err)
	}
	k, v, err = SplitFrame(frame(``, `1`))
	if err != nil || string(k) != `` || string(v) != `1` {
		t.Fatalf("SplitFrame(empty key) = %q, %q, %v", k, v, err)
	}
	for _, in := range [][]byte{nil, {1, 0, 0}, {5, 0, 0, 0, 'a'}, {0xff, 0xff, 0xff, 0xff}} {
		if _, _, err := SplitFrame(in); err == nil {
			t.Errorf("SplitFrame(%q): want an error", in)
		}
	}
}

func TestBatch(t *testing.T) {
	handler, current, inBatch = nil, nil, false
	if err := beginBatch([]byte(`{}`)); abi.StatusOf(err) != abi.StatusFail {
		t.Fatalf("begin without a handler: %v", err)
	}
	if _, _, err := record(frame(`1`, `2`)); abi.StatusOf(err) != abi.StatusFail {
		t.Fatalf("record without a batch: %v", err)
	}
	var got map[string]string
	Handle(func(params map[string]string) (Func, error) {
		got = params
		if params["mode"] == "bad" {
			return nil, iq.Reject("bad mode")
		}
		if params["mode"] == "identity" {
			return nil, nil
		}
		return func(key, value []byte) ([]byte, bool, error) {
			switch string(value) {
			case "skip":
				return nil, false, nil
			case "reject":
				return nil, true, iq.Reject("no")
			case "fail":
				return nil, true, errors.New("broken")
			}
			return append(append([]byte{}, key...), value...), true, nil
		}, nil
	})
	if err := beginBatch([]byte(`{"mode":"bad"}`)); abi.StatusOf(err) != abi.StatusReject {
		t.Fatalf("begin(bad): %v", err)
	}
	if _, _, err := record(frame(`1`, `2`)); err == nil {
		t.Fatal("record after a rejected begin")
	}
	if err := beginBatch([]byte(`{"mode":1}`)); abi.StatusOf(err) != abi.StatusReject {
		t.Fatalf("begin(malformed params): %v", err)
	}
	if err := beginBatch([]byte(`{"mode":"x"}`)); err != nil || got["mode"] != "x" {
		t.Fatalf("begin: %v, params %q", err, got)
	}
	if out, keep, err := record(frame(`k`, `v`)); err != nil || !keep || string(out) != "kv" {
		t.Fatalf("record = %q, %v, %v", out, keep, err)
	}
	if _, keep, err := record(frame(`k`, `skip`)); err != nil || keep {
		t.Fatalf("record(skip) = %v, %v", keep, err)
	}
	if _, _, err := record(frame(`k`, `reject`)); abi.StatusOf(err) != abi.StatusReject {
		t.Fatalf("record(reject): %v", err)
	}
	if _, _, err := record(frame(`k`, `fail`)); abi.StatusOf(err) != abi.StatusFail {
		t.Fatalf("record(fail): %v", err)
	}
	if _, _, err := record([]byte{9, 0, 0, 0}); abi.StatusOf(err) != abi.StatusReject {
		t.Fatalf("record(bad frame): %v", err)
	}
	endBatch()
	if _, _, err := record(frame(`k`, `v`)); err == nil {
		t.Fatal("record after end")
	}
	if err := beginBatch([]byte(`{"mode":"identity"}`)); err != nil {
		t.Fatal(err)
	}
	if out, keep, err := record(frame(`k`, `{"v":1}`)); err != nil || !keep || string(out) != `{"v":1}` {
		t.Fatalf("identity record = %q, %v, %v", out, keep, err)
	}
}

package plugins_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/iqengine/iqengine/internal/wasmgen"
	"github.com/iqengine/iqengine/plugins"
)

// The scripted plugin answers whatever its input tells it to, so that a
// fuzz target can make it return any result and point its results at any
// bytes, and check what the host makes of them. Every operation reads the
// payload at the start of its input (for iq_transform_record, at the start
// of the key JSON): its result is the payload's first 8 bytes
// (little-endian; the operations returning an i32 take the low 4), and
// iq_last_error's is the next 8. The payload is in the input region,
// always at scriptedInput: iq_alloc returns it whatever the size, and the
// memory is fixed at two pages, so a region can point into the payload,
// past it (bytes the fuzz target does not know), or outside memory.
const (
	scriptedInput  = 1024
	scriptedMemory = 2 * 65536
	// scriptedMaxOutput is between the largest input and the memory's
	// size, so a result can be too long while inside memory, and short
	// enough while outside it.
	scriptedMaxOutput = 100_000
	scriptedMaxData   = 60_000
)

func scriptedPlugin() []byte {
	m := wasmgen.New()
	m.SetMemory(wasmgen.Memory{Min: 2, Max: 2, HasMax: true, Export: "memory"})
	base := m.Global(wasmgen.I32, true, 0, "") // the payload of the last call
	// word pushes the little-endian i64 at base+off.
	word := func(off uint32) []byte {
		return wasmgen.Code(
			wasmgen.GlobalGet(base), wasmgen.I32Load(off+4), wasmgen.I64ExtendI32U(), wasmgen.I64Const(32), wasmgen.I64Shl(),
			wasmgen.GlobalGet(base), wasmgen.I32Load(off), wasmgen.I64ExtendI32U(),
			wasmgen.I64Or(),
		)
	}
	at := func(skip int32) []byte { // base = ptr + skip
		return wasmgen.Code(wasmgen.LocalGet(0), wasmgen.I32Const(skip), wasmgen.I32Add(), wasmgen.GlobalSet(base))
	}
	fn := func(name string, t wasmgen.FuncType, body []byte) { m.ExportFunc(name, m.Func(t, nil, body)) }
	op := wasmgen.FuncType{Params: []wasmgen.ValType{wasmgen.I32, wasmgen.I32}, Results: []wasmgen.ValType{wasmgen.I64}}
	status := wasmgen.FuncType{Params: []wasmgen.ValType{wasmgen.I32, wasmgen.I32}, Results: []wasmgen.ValType{wasmgen.I32}}
	fn("iq_abi_v1", wasmgen.FuncType{}, nil)
	fn("iq_alloc", wasmgen.FuncType{Params: []wasmgen.ValType{wasmgen.I32}, Results: []wasmgen.ValType{wasmgen.I32}}, wasmgen.I32Const(scriptedInput))
	fn("iq_last_error", wasmgen.FuncType{Results: []wasmgen.ValType{wasmgen.I64}}, word(8))
	for _, name := range []string{"iq_key_to_json", "iq_value_to_json", "iq_key_from_text"} {
		fn(name, op, wasmgen.Code(at(0), word(0)))
	}
	fn("iq_partition", wasmgen.FuncType{Params: []wasmgen.ValType{wasmgen.I32, wasmgen.I32, wasmgen.I32}, Results: []wasmgen.ValType{wasmgen.I32}}, wasmgen.Code(at(0), wasmgen.GlobalGet(base), wasmgen.I32Load(0)))
	fn("iq_transform_begin", status, wasmgen.Code(at(0), wasmgen.GlobalGet(base), wasmgen.I32Load(0)))
	fn("iq_transform_record", op, wasmgen.Code(at(4), word(0))) // after the key JSON's length
	fn("iq_transform_end", wasmgen.FuncType{}, nil)
	return m.Bytes()
}

// The operations FuzzPluginResults calls, by its op argument modulo their
// number.
var scriptedOps = []string{"iq_key_to_json", "iq_value_to_json", "iq_key_from_text", "iq_partition", "iq_transform_begin", "iq_transform_record"}

// FuzzPluginResults: whatever an operation returns (any region, any
// status, any partition, any bytes), the host neither panics nor reads
// outside the plugin's memory, and answers as sdk/ABI.md says: a region
// inside memory and under the output cap is the answer (for JSON
// operations only if it is UTF-8 JSON, else bad_output), a region outside
// memory or an unknown status is bad_result, one over the cap too_large,
// reject and fail statuses are the plugin's with iq_last_error's text
// (itself any region: the text when it is inside memory, else none), and
// a partition outside [0, partitions) is bad_result.
func FuzzPluginResults(f *testing.F) {
	h, _ := newHost(f, plugins.Options{MaxOutput: scriptedMaxOutput, Instances: 1})
	m := load(f, h, "scripted", scriptedPlugin())
	f.Fuzz(func(t *testing.T, op uint8, result, lastError uint64, data []byte, partitions int32) {
		name := scriptedOps[int(op)%len(scriptedOps)]
		if len(data) > scriptedMaxData {
			data = data[:scriptedMaxData]
		}
		payload := binary.LittleEndian.AppendUint64(nil, result)
		payload = binary.LittleEndian.AppendUint64(payload, lastError)
		payload = append(payload, data...)
		base := uint64(scriptedInput)
		if name == "iq_transform_record" {
			base += 4
		}
		// known is the memory at [ptr, ptr+n) when it is the payload's.
		known := func(ptr, n uint64) ([]byte, bool) {
			if ptr < base || ptr+n > base+uint64(len(payload)) {
				return nil, false
			}
			return payload[ptr-base : ptr-base+n], true
		}

		var out []byte
		var err error
		isJSON, keep := true, true
		switch name {
		case "iq_key_to_json":
			out, err = m.KeyToJSON([]byte("dst:"), payload)
		case "iq_value_to_json":
			out, err = m.ValueToJSON([]byte("dst:"), payload)
		case "iq_key_from_text":
			isJSON = false
			out, err = m.KeyFromText([]byte("dst:"), string(payload))
		case "iq_partition":
			var p int32
			p, err = m.Partition(payload, partitions)
			checkPartition(t, result, partitions, p, err)
		case "iq_transform_begin":
			var b *plugins.Batch
			if b, err = m.Begin(context.Background(), payload); err == nil {
				b.End()
			}
			checkBegin(t, result, err)
		case "iq_transform_record":
			b, berr := m.Begin(context.Background(), make([]byte, 16)) // status 0
			if berr != nil {
				t.Fatalf("Begin: %v", berr)
			}
			out, keep, err = b.Record([]byte("dst:"), payload, nil)
			b.End()
		}
		if err != nil {
			checkError(t, name, result, lastError, known, err)
			return
		}
		if name == "iq_partition" || name == "iq_transform_begin" {
			return
		}
		s := int64(result)
		if s == -3 && name == "iq_transform_record" {
			if keep || string(out) != "dst:" {
				t.Fatalf("%s: skip status, but keep %v and %q", name, keep, out)
			}
			return
		}
		ptr, n := result>>32, result&0xffffffff
		switch {
		case s < 0:
			t.Fatalf("%s: status %d is an answer %q", name, s, out)
		case n > scriptedMaxOutput:
			t.Fatalf("%s: a %d-byte result over the %d-byte cap is an answer", name, n, scriptedMaxOutput)
		case n > 0 && ptr+n > scriptedMemory:
			t.Fatalf("%s: region [%d, %d) outside memory of %d bytes is an answer", name, ptr, ptr+n, scriptedMemory)
		case isJSON && n == 0:
			t.Fatalf("%s: an empty result is a JSON answer", name)
		}
		if !strings.HasPrefix(string(out), "dst:") || uint64(len(out)-len("dst:")) != n {
			t.Fatalf("%s: region of %d bytes answers %q", name, n, out)
		}
		out = out[len("dst:"):]
		if want, ok := known(ptr, n); ok && string(out) != string(want) {
			t.Fatalf("%s: region [%d, %d) answers %q, want %q", name, ptr, ptr+n, out, want)
		}
		if isJSON && !(json.Valid(out) && utf8.Valid(out)) {
			t.Fatalf("%s: answers %q, not UTF-8 JSON", name, out)
		}
	})
}

// checkError checks that err is the host's verdict on result, and carries
// the plugin's message when the plugin refused or failed.
func checkError(t *testing.T, name string, result, lastError uint64, known func(ptr, n uint64) ([]byte, bool), err error) {
	t.Helper()
	var e *plugins.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T) is not a *plugins.Error", name, err, err)
	}
	if e.Op != name || !utf8.ValidString(e.Error()) {
		t.Fatalf("%s: error %q names op %q, or is not UTF-8", name, e, e.Op)
	}
	if name == "iq_partition" || name == "iq_transform_begin" {
		return // checked by checkPartition and checkBegin
	}
	s := int64(result)
	ptr, n := result>>32, result&0xffffffff
	var want plugins.Kind
	switch {
	case s == -1:
		want = plugins.KindRejected
	case s == -2:
		want = plugins.KindFailed
	case s < 0:
		want = plugins.KindBadResult
	case n > scriptedMaxOutput:
		want = plugins.KindTooLarge
	case n > 0 && ptr+n > scriptedMemory:
		want = plugins.KindBadResult
	default: // empty, or inside memory
		want = plugins.KindBadOutput
		if name == "iq_key_from_text" {
			t.Fatalf("%s: region [%d, %d) inside memory: %v", name, ptr, ptr+n, err)
		}
		if b, ok := known(ptr, n); ok && n > 0 && json.Valid(b) && utf8.Valid(b) {
			t.Fatalf("%s: the JSON %q is refused: %v", name, b, err)
		}
	}
	if e.Kind != want {
		t.Fatalf("%s: result %#x: error %v of kind %s, want %s", name, result, err, e.Kind, want)
	}
	if want == plugins.KindRejected || want == plugins.KindFailed {
		checkMessage(t, name, lastError, known, e)
	}
}

// checkMessage checks that a refusal carries iq_last_error's text: the
// first 512 bytes of its region, when that is inside memory.
func checkMessage(t *testing.T, name string, lastError uint64, known func(ptr, n uint64) ([]byte, bool), e *plugins.Error) {
	t.Helper()
	ptr, n := lastError>>32, min(lastError&0xffffffff, 512)
	switch {
	case int64(lastError) < 0 || n == 0 || ptr+n > scriptedMemory:
		if e.Msg != "" {
			t.Fatalf("%s: iq_last_error %#x gives no text, but the error says %q", name, lastError, e.Msg)
		}
	default:
		if b, ok := known(ptr, n); ok && e.Msg != strings.ToValidUTF8(string(b), "?") {
			t.Fatalf("%s: iq_last_error's text is %q, the error says %q", name, b, e.Msg)
		}
	}
}

func checkPartition(t *testing.T, result uint64, partitions, got int32, err error) {
	t.Helper()
	p := int32(uint32(result))
	var want plugins.Kind
	switch {
	case p == -1:
		want = plugins.KindRejected
	case p == -2:
		want = plugins.KindFailed
	case p < 0 || p >= partitions:
		want = plugins.KindBadResult
	default:
		if err != nil || got != p {
			t.Fatalf("iq_partition returned %d of %d: got %d, %v", p, partitions, got, err)
		}
		return
	}
	var e *plugins.Error
	if !errors.As(err, &e) || e.Kind != want {
		t.Fatalf("iq_partition returned %d of %d: got %d, %v; want a %s error", p, partitions, got, err, want)
	}
}

func checkBegin(t *testing.T, result uint64, err error) {
	t.Helper()
	var want plugins.Kind
	switch st := int32(uint32(result)); st {
	case 0:
		if err != nil {
			t.Fatalf("iq_transform_begin returned 0: %v", err)
		}
		return
	case -1:
		want = plugins.KindRejected
	case -2:
		want = plugins.KindFailed
	default:
		want = plugins.KindBadResult
	}
	var e *plugins.Error
	if !errors.As(err, &e) || e.Kind != want {
		t.Fatalf("iq_transform_begin returned %d: %v, want a %s error", int32(uint32(result)), err, want)
	}
}

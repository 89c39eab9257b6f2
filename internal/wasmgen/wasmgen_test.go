package wasmgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

func TestLEB128(t *testing.T) {
	for _, c := range []struct {
		v    uint32
		want []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{624485, []byte{0xe5, 0x8e, 0x26}},
		{0xffffffff, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		if got := appendU32(nil, c.v); !bytes.Equal(got, c.want) {
			t.Errorf("unsigned %d: got % x, want % x", c.v, got, c.want)
		}
	}
	for _, c := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0x00}},
		{-1, []byte{0x7f}},
		{63, []byte{0x3f}},
		{64, []byte{0xc0, 0x00}},
		{-64, []byte{0x40}},
		{-65, []byte{0xbf, 0x7f}},
		{-123456, []byte{0xc0, 0xbb, 0x78}},
		{int64(-1) << 63, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}},
	} {
		if got := appendS64(nil, c.v); !bytes.Equal(got, c.want) {
			t.Errorf("signed %d: got % x, want % x", c.v, got, c.want)
		}
	}
}

// TestBuilder runs a module using every part of the builder: an import, a
// local, a global, memory with a max, a data segment and loops.
func TestBuilder(t *testing.T) {
	ctx := context.Background()
	m := New()
	double := m.ImportFunc("env", "double", FuncType{Params: []ValType{I64}, Results: []ValType{I64}})
	m.SetMemory(Memory{Min: 1, Max: 2, HasMax: true, Export: "mem"})
	counter := m.Global(I32, true, 5, "counter")
	m.Data(16, []byte("hi"))
	// sum(n) = double(0 + 1 + ... + n-1), counting calls in the global and
	// storing the low byte of n at address 20.
	sum := m.Func(FuncType{Params: []ValType{I32}, Results: []ValType{I64}}, []ValType{I32, I64}, Code(
		GlobalGet(counter), I32Const(1), I32Add(), GlobalSet(counter),
		I32Const(20), LocalGet(0), I32Store8(0),
		Block(), Loop(),
		LocalGet(1), LocalGet(0), I32GeU(), BrIf(1),
		LocalGet(2), LocalGet(1), I64ExtendI32U(), I64Add(), LocalSet(2),
		LocalGet(1), I32Const(1), I32Add(), LocalSet(1),
		Br(0),
		End(), End(),
		LocalGet(2), Call(double),
	))
	m.ExportFunc("sum", sum)
	bin := m.Bytes()

	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	_, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(v int64) int64 { return 2 * v }).Export("double").
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	res, err := mod.ExportedFunction("sum").Call(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != 90 {
		t.Errorf("sum(10) = %d, want 90", res[0])
	}
	if g := mod.ExportedGlobal("counter").Get(); g != 6 {
		t.Errorf("counter = %d, want 6", g)
	}
	if b, _ := mod.Memory().Read(16, 5); string(b) != "hi\x00\x00\x0a" {
		t.Errorf("memory = %q", b)
	}
	if max, ok := mod.ExportedMemoryDefinitions()["mem"].Max(); !ok || max != 2 {
		t.Errorf("memory max = %d, %v", max, ok)
	}
}

func sig(params []ValType, results ...ValType) FuncType {
	return FuncType{Params: params, Results: results}
}

// echoExports are the function exports of Echo, by name.
func echoExports() map[string]FuncType {
	return map[string]FuncType{
		"iq_abi_v1":        sigVoid,
		"iq_alloc":         sigAlloc,
		"iq_last_error":    sigLastError,
		"iq_key_to_json":   sigOp,
		"iq_value_to_json": sigOp,
		"iq_key_from_text": sigOp,
	}
}

func with(m map[string]FuncType, add map[string]FuncType, remove ...string) map[string]FuncType {
	maps.Copy(m, add)
	for _, name := range remove {
		delete(m, name)
	}
	return m
}

type moduleCase struct {
	name    string
	bin     []byte
	exports map[string]FuncType
	imports []Import
	memory  uint32 // the exported memory's minimum, in pages; 0: not exported
}

func moduleCases() []moduleCase {
	return []moduleCase{
		{"Echo", Echo(), echoExports(), nil, 1},
		{"EchoWith/all", EchoWith(EchoOptions{
			Markers: []string{"iq_abi_v1", "iq_abi_v7"}, MemoryPages: 2, MaxPages: 10,
			Initialize: true, Init: true, Partition: true, Transform: true,
			Imports: AllowedImports(),
		}), with(echoExports(), map[string]FuncType{
			"iq_abi_v7":           sigVoid,
			"_initialize":         sigVoid,
			"iq_init":             sigStatus,
			"iq_partition":        sigPartition,
			"iq_transform_begin":  sigStatus,
			"iq_transform_record": sigOp,
			"iq_transform_end":    sigVoid,
		}), AllowedImports(), 2},
		{"EchoWith/no-memory-export", EchoWith(EchoOptions{Omit: []string{"memory"}}), echoExports(), nil, 0},
		{"MissingExports", MissingExports(), with(echoExports(), nil, "iq_alloc"), nil, 1},
		{"WrongSignature", WrongSignature(), with(echoExports(), map[string]FuncType{
			"iq_value_to_json": sig([]ValType{I32}, I32),
		}), nil, 1},
		{"UnknownABI", UnknownABI(), with(echoExports(), map[string]FuncType{"iq_abi_v7": sigVoid}, "iq_abi_v1"), nil, 1},
		{"ForbiddenImport", ForbiddenImport(), echoExports(), []Import{{
			Module: "wasi_snapshot_preview1", Name: "path_open",
			Type: sig([]ValType{I32, I32, I32, I32, I32, I64, I64, I32, I32}, I32),
		}}, 1},
		{"ForbiddenImportSock", ForbiddenImportSock(), echoExports(), []Import{{
			Module: "wasi_snapshot_preview1", Name: "sock_accept",
			Type: sig([]ValType{I32, I32, I32}, I32),
		}}, 1},
		{"Trap", Trap(), echoExports(), nil, 1},
		{"OutOfBoundsAccess", OutOfBoundsAccess(), echoExports(), nil, 1},
		{"InfiniteLoop", InfiniteLoop(), echoExports(), nil, 1},
		{"MemoryGrowth", MemoryGrowth(), echoExports(), nil, 1},
		{"OutOfBoundsResult", OutOfBoundsResult(), echoExports(), nil, 1},
		{"ResultPastEnd", ResultPastEnd(), echoExports(), nil, 1},
		{"InvalidJSON", InvalidJSON(), echoExports(), nil, 1},
		{"HugeResult", HugeResult(), echoExports(), nil, 40},
		{"BadStatus", BadStatus(), echoExports(), nil, 1},
		{"Reject", Reject(), echoExports(), nil, 1},
		{"InitFails", InitFails(), with(echoExports(), map[string]FuncType{"iq_init": sigStatus}), nil, 1},
		{"WrongPartition", WrongPartition(), with(echoExports(), map[string]FuncType{"iq_partition": sigPartition}), nil, 1},
		{"AllocOutOfBounds", AllocOutOfBounds(), echoExports(), nil, 1},
		{"HugeMemory", HugeMemory(), echoExports(), nil, HugeMemoryPages},
		{"PartialTransform", PartialTransform(), with(echoExports(), map[string]FuncType{"iq_transform_begin": sigStatus}), nil, 1},
		{"StderrThenTrap", StderrThenTrap(), echoExports(), []Import{wasi("fd_write", i32s(4), I32)}, 1},
		{"ProcExit", ProcExit(), echoExports(), []Import{wasi("proc_exit", i32s(1))}, 1},
	}
}

func toValTypes(ts []api.ValueType) []ValType {
	out := make([]ValType, len(ts))
	for i, t := range ts {
		out[i] = ValType(t)
	}
	return out
}

func defType(d api.FunctionDefinition) FuncType {
	return FuncType{Params: toValTypes(d.ParamTypes()), Results: toValTypes(d.ResultTypes())}
}

func TestModulesCompile(t *testing.T) {
	ctx := context.Background()
	for _, c := range moduleCases() {
		t.Run(c.name, func(t *testing.T) {
			r := wazero.NewRuntime(ctx)
			defer r.Close(ctx)
			cm, err := r.CompileModule(ctx, c.bin)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			t.Logf("%d bytes", len(c.bin))

			got := map[string]FuncType{}
			for name, d := range cm.ExportedFunctions() {
				got[name] = defType(d)
			}
			if !maps.EqualFunc(got, c.exports, FuncType.equal) {
				t.Errorf("exports:\n got %v\nwant %v", got, c.exports)
			}

			var imports []Import
			for _, d := range cm.ImportedFunctions() {
				mod, name, _ := d.Import()
				imports = append(imports, Import{Module: mod, Name: name, Type: defType(d)})
			}
			if !slices.EqualFunc(imports, c.imports, func(a, b Import) bool {
				return a.Module == b.Module && a.Name == b.Name && a.Type.equal(b.Type)
			}) {
				t.Errorf("imports:\n got %v\nwant %v", imports, c.imports)
			}

			mems := cm.ExportedMemories()
			if c.memory == 0 {
				if len(mems) != 0 {
					t.Errorf("exported memories %v, want none", slices.Collect(maps.Keys(mems)))
				}
				return
			}
			mem, ok := mems["memory"]
			if !ok || len(mems) != 1 {
				t.Fatalf("exported memories %v, want only memory", slices.Collect(maps.Keys(mems)))
			}
			if mem.Min() != c.memory {
				t.Errorf("memory min %d, want %d", mem.Min(), c.memory)
			}
		})
	}
}

func TestNotWasm(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	b := NotWasm()
	if !bytes.Equal(b, NotWasm()) {
		t.Error("NotWasm is not deterministic")
	}
	_, err := r.CompileModule(ctx, b)
	if err == nil {
		t.Fatal("NotWasm compiled")
	}
	t.Logf("compile error: %v", err)
}

// instance instantiates bin in a fresh runtime with config (nil: default),
// with WASI and a trapping env.abort available.
func instance(t *testing.T, config wazero.RuntimeConfig, bin []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	if config == nil {
		config = wazero.NewRuntimeConfig()
	}
	r := wazero.NewRuntimeWithConfig(ctx, config)
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	_, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(msg, file, line, col uint32) { panic("abort") }).Export("abort").
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Instantiate without calling _start or _initialize: the tests do it.
	mod, err := r.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithStartFunctions().WithStderr(&stderr))
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	return mod
}

// stderr collects what modules write to fd 2 (tests using it do not run in
// parallel).
var stderr bytes.Buffer

func call(t *testing.T, mod api.Module, name string, args ...uint64) uint64 {
	t.Helper()
	res, err := mod.ExportedFunction(name).Call(context.Background(), args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(res) == 0 {
		return 0
	}
	return res[0]
}

// input passes b to mod as the host does: iq_alloc, then a write.
func input(t *testing.T, mod api.Module, b []byte) (ptr, n uint64) {
	t.Helper()
	ptr = call(t, mod, "iq_alloc", uint64(len(b)))
	if !mod.Memory().Write(uint32(ptr), b) {
		t.Fatalf("iq_alloc(%d) = %d: out of memory (%d bytes)", len(b), ptr, mod.Memory().Size())
	}
	return ptr, uint64(len(b))
}

// result reads the region r or reports the status it is.
func result(t *testing.T, mod api.Module, r uint64) []byte {
	t.Helper()
	if int64(r) < 0 {
		t.Fatalf("status %d", int64(r))
	}
	b, ok := mod.Memory().Read(uint32(r>>32), uint32(r))
	if !ok {
		t.Fatalf("region %#x+%d is outside memory", r>>32, uint32(r))
	}
	return b
}

func TestEcho(t *testing.T) {
	mod := instance(t, nil, Echo())
	for _, op := range []string{"iq_key_to_json", "iq_value_to_json", "iq_key_from_text"} {
		in := []byte(`{"op":"` + op + `","n":[1,2,3]}`)
		ptr, n := input(t, mod, in)
		if ptr != InputBuffer {
			t.Errorf("iq_alloc = %d, want %d", ptr, InputBuffer)
		}
		out := result(t, mod, call(t, mod, op, ptr, n))
		if !bytes.Equal(out, in) {
			t.Errorf("%s: got %q, want %q", op, out, in)
		}
	}
	// An empty input gives an empty result.
	ptr, n := input(t, mod, nil)
	if r := call(t, mod, "iq_value_to_json", ptr, n); uint32(r) != 0 {
		t.Errorf("empty input: result %#x", r)
	}
	if msg := result(t, mod, call(t, mod, "iq_last_error")); len(msg) == 0 {
		t.Error("iq_last_error is empty")
	}
}

func TestEchoAllocGrows(t *testing.T) {
	mod := instance(t, nil, Echo())
	if size := mod.Memory().Size(); size != pageSize {
		t.Fatalf("initial memory %d bytes", size)
	}
	in := bytes.Repeat([]byte("x"), 200_000) // needs 4 pages with InputBuffer
	ptr, n := input(t, mod, in)
	if size := mod.Memory().Size(); size != 4*pageSize {
		t.Errorf("memory after iq_alloc(%d): %d bytes, want 4 pages", len(in), size)
	}
	if out := result(t, mod, call(t, mod, "iq_value_to_json", ptr, n)); !bytes.Equal(out, in) {
		t.Error("big input not echoed")
	}
	// Growth that cannot happen traps.
	_, err := mod.ExportedFunction("iq_alloc").Call(context.Background(), 0xFFFFFFFF)
	if err == nil {
		t.Error("iq_alloc(4 GiB) succeeded")
	}
	t.Logf("iq_alloc(4 GiB): %v", err)
}

func TestEchoWithLifecycle(t *testing.T) {
	bin := EchoWith(EchoOptions{Initialize: true, Init: true, Partition: true, Transform: true})
	mod := instance(t, nil, bin)
	ptr, n := input(t, mod, []byte("{}"))
	if r := int64(call(t, mod, "iq_value_to_json", ptr, n)); r != -2 {
		t.Errorf("before _initialize: %d, want -2", r)
	}
	if r := int32(call(t, mod, "iq_init", ptr, n)); r != -2 {
		t.Errorf("iq_init before _initialize: %d, want -2", r)
	}
	call(t, mod, "_initialize")
	if r := int64(call(t, mod, "iq_value_to_json", ptr, n)); r != -2 {
		t.Errorf("before iq_init: %d, want -2", r)
	}
	if r := int32(call(t, mod, "iq_init", ptr, n)); r != 0 {
		t.Errorf("iq_init: %d, want 0", r)
	}
	if out := result(t, mod, call(t, mod, "iq_value_to_json", ptr, n)); string(out) != "{}" {
		t.Errorf("after iq_init: %q", out)
	}

	ptr, n = input(t, mod, []byte("key-1"))
	if p := call(t, mod, "iq_partition", ptr, n, 3); p != 5%3 {
		t.Errorf("iq_partition = %d, want %d", p, 5%3)
	}

	if r := int32(call(t, mod, "iq_transform_begin", ptr, n)); r != 0 {
		t.Errorf("iq_transform_begin: %d", r)
	}
	key, value := `"k"`, `{"v":1}`
	frame := append([]byte{byte(len(key)), 0, 0, 0}, key+value...)
	ptr, n = input(t, mod, frame)
	if out := result(t, mod, call(t, mod, "iq_transform_record", ptr, n)); string(out) != value {
		t.Errorf("iq_transform_record: %q, want %q", out, value)
	}
	frame[0] = 200 // a key longer than the frame
	ptr, n = input(t, mod, frame)
	if r := int64(call(t, mod, "iq_transform_record", ptr, n)); r != -1 {
		t.Errorf("bad frame: %d, want -1", r)
	}
	ptr, n = input(t, mod, []byte{1, 0})
	if r := int64(call(t, mod, "iq_transform_record", ptr, n)); r != -1 {
		t.Errorf("short frame: %d, want -1", r)
	}
	call(t, mod, "iq_transform_end")
}

// TestAllowedImports instantiates a module importing the whole allow-list
// against wazero's WASI, which checks the signatures.
func TestAllowedImports(t *testing.T) {
	instance(t, nil, EchoWith(EchoOptions{Imports: AllowedImports()}))
}

// valueToJSON calls iq_value_to_json of a fresh instance of bin on `{}` and
// returns its error.
func valueToJSON(t *testing.T, ctx context.Context, config wazero.RuntimeConfig, bin []byte) (api.Module, uint64, error) {
	t.Helper()
	mod := instance(t, config, bin)
	ptr, n := input(t, mod, []byte("{}"))
	res, err := mod.ExportedFunction("iq_value_to_json").Call(ctx, ptr, n)
	if err != nil {
		return mod, 0, err
	}
	return mod, res[0], nil
}

func TestTrap(t *testing.T) {
	for _, c := range []struct {
		name string
		bin  []byte
		want string
	}{
		{"Trap", Trap(), "wasm error: unreachable"},
		{"OutOfBoundsAccess", OutOfBoundsAccess(), "wasm error: out of bounds memory access"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mod, _, err := valueToJSON(t, context.Background(), nil, c.bin)
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("error: %T (wrapping %T) %q; module closed: %v", err, errors.Unwrap(err), err, mod.IsClosed())
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error %q does not start with %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "wasmgen.iq_value_to_json(i32,i32) i64") {
				t.Errorf("error %q does not name the function", err)
			}
		})
	}
}

func TestInfiniteLoop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	mod, _, err := valueToJSON(t, ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true), InfiniteLoop())
	if err == nil {
		t.Fatal("no error")
	}
	t.Logf("error after %v: %T %v", time.Since(start).Round(time.Millisecond), err, err)
	var exit *sys.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != sys.ExitCodeDeadlineExceeded {
		t.Errorf("error %v is not a deadline exit", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v is not context.DeadlineExceeded", err)
	}
	if !mod.IsClosed() {
		t.Error("module still open")
	}
}

func TestMemoryGrowth(t *testing.T) {
	config := wazero.NewRuntimeConfig().WithMemoryLimitPages(64)
	mod, _, err := valueToJSON(t, context.Background(), config, MemoryGrowth())
	if err == nil {
		t.Fatal("no error")
	}
	t.Logf("error: %T %v; memory %d pages", err, err, mod.Memory().Size()/pageSize)
	if size := mod.Memory().Size(); size != 64*pageSize {
		t.Errorf("memory %d bytes, want 64 pages", size)
	}
}

func TestHostileResults(t *testing.T) {
	ctx := context.Background()

	mod, r, err := valueToJSON(t, ctx, nil, OutOfBoundsResult())
	if err != nil || int64(r) < 0 {
		t.Fatalf("OutOfBoundsResult: %#x, %v", r, err)
	}
	if _, ok := mod.Memory().Read(uint32(r>>32), uint32(r)); ok {
		t.Errorf("OutOfBoundsResult: region %#x readable", r)
	}

	mod, r, err = valueToJSON(t, ctx, nil, ResultPastEnd())
	if err != nil || int64(r) < 0 {
		t.Fatalf("ResultPastEnd: %#x, %v", r, err)
	}
	if _, ok := mod.Memory().Read(uint32(r>>32), uint32(r)); ok {
		t.Errorf("ResultPastEnd: region %#x readable", r)
	}
	if _, ok := mod.Memory().Read(uint32(r>>32), uint32(r)-1); !ok {
		t.Errorf("ResultPastEnd: region %#x less one byte not readable", r)
	}

	mod, r, err = valueToJSON(t, ctx, nil, InvalidJSON())
	if err != nil {
		t.Fatal(err)
	}
	if out := result(t, mod, r); json.Valid(out) || string(out) != `{"a":` {
		t.Errorf("InvalidJSON: %q", out)
	}

	mod, r, err = valueToJSON(t, ctx, nil, HugeResult())
	if err != nil {
		t.Fatal(err)
	}
	if out := result(t, mod, r); len(out) != HugeResultLen {
		t.Errorf("HugeResult: %d bytes", len(out))
	}

	if _, r, err = valueToJSON(t, ctx, nil, BadStatus()); err != nil || int64(r) != -7 {
		t.Errorf("BadStatus: %d, %v", int64(r), err)
	}

	mod, r, err = valueToJSON(t, ctx, nil, Reject())
	if err != nil || int64(r) != -1 {
		t.Errorf("Reject: %d, %v", int64(r), err)
	}
	ptr, n := input(t, mod, []byte("abc"))
	for _, op := range []string{"iq_key_to_json", "iq_key_from_text"} {
		if r := int64(call(t, mod, op, ptr, n)); r != -1 {
			t.Errorf("Reject %s: %d", op, r)
		}
	}
	if msg := result(t, mod, call(t, mod, "iq_last_error")); string(msg) != RejectMessage {
		t.Errorf("Reject message %q", msg)
	}

	mod = instance(t, nil, InitFails())
	ptr, n = input(t, mod, []byte("{}"))
	if r := int32(call(t, mod, "iq_init", ptr, n)); r != -2 {
		t.Errorf("InitFails: %d", r)
	}
	if msg := result(t, mod, call(t, mod, "iq_last_error")); string(msg) != InitFailsMessage {
		t.Errorf("InitFails message %q", msg)
	}

	mod = instance(t, nil, WrongPartition())
	ptr, n = input(t, mod, []byte("key"))
	if p := call(t, mod, "iq_partition", ptr, n, 4); p != 99 {
		t.Errorf("WrongPartition: %d", p)
	}
	for _, op := range []string{"iq_key_to_json", "iq_key_from_text"} {
		if out := result(t, mod, call(t, mod, op, ptr, n)); string(out) != "key" {
			t.Errorf("WrongPartition %s: %q", op, out)
		}
	}

	mod = instance(t, nil, AllocOutOfBounds())
	if p := call(t, mod, "iq_alloc", 10); mod.Memory().Write(uint32(p), make([]byte, 10)) {
		t.Errorf("AllocOutOfBounds: %#x writable", p)
	}
}

func TestStderrThenTrap(t *testing.T) {
	stderr.Reset()
	_, _, err := valueToJSON(t, context.Background(), nil, StderrThenTrap())
	if err == nil {
		t.Fatal("no error")
	}
	if stderr.String() != StderrMessage {
		t.Errorf("stderr %q, want %q", stderr.String(), StderrMessage)
	}
}

func TestProcExit(t *testing.T) {
	mod, _, err := valueToJSON(t, context.Background(), nil, ProcExit())
	var exit *sys.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("error %T %v, want exit 3", err, err)
	}
	t.Logf("error: %v; closed: %v", err, mod.IsClosed())
}

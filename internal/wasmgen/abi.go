package wasmgen

// Ready-made modules for the iqengine plugin ABI v1 (sdk/ABI.md).
//
// Echo is a valid, minimal plugin whose operations return their input
// unchanged. Every other module here is Echo with one thing broken, so a test
// that loads one of them exercises exactly one check or one kind of fault.
// All of them are valid WebAssembly that wazero compiles, except NotWasm.
// They carry a name section (module "wasmgen", functions by export name), so
// stack traces read like "wasmgen.iq_value_to_json(i32,i32) i64".
//
// Memory layout shared by these modules:
//
//	0..63        unused (HugeResult returns a region starting at 0)
//	MessageAddr  the iq_last_error text, when there is one
//	DataAddr     other static data (InvalidJSON's output)
//	InputBuffer  the buffer iq_alloc always returns

import (
	"encoding/binary"
	"math/rand/v2"
)

// Addresses in the modules' memory.
const (
	MessageAddr = 64   // where iq_last_error's text is
	DataAddr    = 256  // where other static data is
	InputBuffer = 1024 // what iq_alloc returns, whatever the size

	pageSize = 65536
)

// Import is a function a module imports.
type Import struct {
	Module, Name string
	Type         FuncType
}

// The ABI's signatures.
var (
	sigVoid      = FuncType{}
	sigAlloc     = FuncType{Params: []ValType{I32}, Results: []ValType{I32}}
	sigOp        = FuncType{Params: []ValType{I32, I32}, Results: []ValType{I64}}
	sigStatus    = FuncType{Params: []ValType{I32, I32}, Results: []ValType{I32}}
	sigPartition = FuncType{Params: []ValType{I32, I32, I32}, Results: []ValType{I32}}
	sigLastError = FuncType{Results: []ValType{I64}}
)

func wasi(name string, params []ValType, results ...ValType) Import {
	return Import{
		Module: "wasi_snapshot_preview1",
		Name:   name,
		Type:   FuncType{Params: params, Results: results},
	}
}

func i32s(n int) []ValType {
	ts := make([]ValType, n)
	for i := range ts {
		ts[i] = I32
	}
	return ts
}

// AllowedImports returns every import the ABI allows, with its real
// signature: the WASI preview 1 functions of the allow-list and
// AssemblyScript's env.abort.
func AllowedImports() []Import {
	return []Import{
		wasi("args_get", i32s(2), I32),
		wasi("args_sizes_get", i32s(2), I32),
		wasi("environ_get", i32s(2), I32),
		wasi("environ_sizes_get", i32s(2), I32),
		wasi("fd_write", i32s(4), I32),
		wasi("fd_close", i32s(1), I32),
		wasi("fd_fdstat_get", i32s(2), I32),
		wasi("fd_seek", []ValType{I32, I64, I32, I32}, I32),
		wasi("proc_exit", i32s(1)),
		wasi("random_get", i32s(2), I32),
		wasi("clock_time_get", []ValType{I32, I64, I32}, I32),
		wasi("clock_res_get", i32s(2), I32),
		wasi("poll_oneoff", i32s(4), I32),
		wasi("sched_yield", nil, I32),
		{Module: "env", Name: "abort", Type: FuncType{Params: i32s(4)}},
	}
}

// PathOpenImport is WASI's path_open, which the ABI forbids (no filesystem).
func PathOpenImport() Import {
	return wasi("path_open", []ValType{I32, I32, I32, I32, I32, I64, I64, I32, I32}, I32)
}

// SockAcceptImport is WASI's sock_accept, which the ABI forbids (no network).
func SockAcceptImport() Import {
	return wasi("sock_accept", i32s(3), I32)
}

// EchoOptions varies Echo. The zero value gives the same module as Echo().
type EchoOptions struct {
	// Markers are the version markers exported; nil means iq_abi_v1 only.
	Markers []string
	// MemoryPages is the memory's initial size in pages; 0 means 1.
	MemoryPages uint32
	// MaxPages, when non-zero, declares the memory's maximum.
	MaxPages uint32
	// Initialize exports _initialize; the other calls then fail (-2) until it
	// has been called.
	Initialize bool
	// Init exports iq_init, returning 0; the serializer and transform calls
	// then fail (-2) until it has been called. With Initialize, iq_init itself
	// fails when _initialize has not been called first.
	Init bool
	// Partition exports iq_partition, returning len(key) % partitions.
	Partition bool
	// Transform exports the three iq_transform_* functions;
	// iq_transform_record returns the value JSON of its frame unchanged
	// (rejecting, -1, a frame too short for its key length).
	Transform bool
	// Imports are imported and never called.
	Imports []Import
	// Omit names exports to leave out ("iq_alloc", "memory", ...). An omitted
	// memory still exists, it is just not exported.
	Omit []string
}

type namedFunc struct {
	name   string
	typ    FuncType
	locals []ValType
	body   []byte
}

// plugin is a module described by export name, so the hostile variants can
// replace or remove one export of Echo.
type plugin struct {
	imports []Import
	memory  Memory
	globals int // mutable i32 globals, all starting at 0, none exported
	funcs   []namedFunc
	data    []segment
	message string // iq_last_error's text, written at MessageAddr
}

func (p *plugin) set(name string, typ FuncType, locals []ValType, body []byte) {
	f := namedFunc{name: name, typ: typ, locals: locals, body: body}
	for i := range p.funcs {
		if p.funcs[i].name == name {
			p.funcs[i] = f
			return
		}
	}
	p.funcs = append(p.funcs, f)
}

func (p *plugin) remove(name string) {
	if p.memory.Export == name {
		p.memory.Export = ""
	}
	for i := range p.funcs {
		if p.funcs[i].name == name {
			p.funcs = append(p.funcs[:i], p.funcs[i+1:]...)
			return
		}
	}
}

// lastError makes iq_last_error return msg.
func (p *plugin) lastError(msg string) {
	p.message = msg
	p.set("iq_last_error", sigLastError, nil, constRegion(MessageAddr, uint32(len(msg))))
}

func (p *plugin) bytes() []byte {
	m := New()
	m.SetName("wasmgen")
	for _, im := range p.imports {
		m.NameFunc(m.ImportFunc(im.Module, im.Name, im.Type), im.Name)
	}
	m.SetMemory(p.memory)
	for range p.globals {
		m.Global(I32, true, 0, "")
	}
	for _, f := range p.funcs {
		fn := m.Func(f.typ, f.locals, f.body)
		m.ExportFunc(f.name, fn)
		m.NameFunc(fn, f.name)
	}
	if p.message != "" {
		m.Data(MessageAddr, []byte(p.message))
	}
	for _, d := range p.data {
		m.Data(d.offset, d.bytes)
	}
	return m.Bytes()
}

// region pushes the i64 result ptr<<32 | len, from code pushing ptr and code
// pushing len (both i32).
func region(ptr, n []byte) []byte {
	return Code(
		ptr, I64ExtendI32U(), I64Const(32), I64Shl(),
		n, I64ExtendI32U(),
		I64Or(),
	)
}

// constRegion pushes the i64 result for a fixed region.
func constRegion(ptr, n uint32) []byte {
	return I64Const(int64(ptr)<<32 | int64(n))
}

// echoBody returns its (ptr, len) input as the result region.
func echoBody() []byte { return region(LocalGet(0), LocalGet(1)) }

// allocBody returns InputBuffer, first growing memory so that InputBuffer+size
// fits; it traps when memory cannot grow.
func allocBody() []byte {
	const need = 1 // the local after the size parameter: pages needed
	return Code(
		// need = (InputBuffer + size + 65535) / 65536, in i64 so it cannot overflow.
		LocalGet(0), I64ExtendI32U(),
		I64Const(InputBuffer+pageSize-1), I64Add(),
		I64Const(16), I64ShrU(),
		I32WrapI64(), LocalSet(need),
		Block(),
		MemorySize(), LocalGet(need), I32GeU(), BrIf(0),
		LocalGet(need), MemorySize(), I32Sub(), MemoryGrow(),
		I32Const(-1), I32Eq(),
		If(), Unreachable(), End(),
		End(),
		I32Const(InputBuffer),
	)
}

// transformRecordBody returns the value part of a transform frame
// (u32 LE key length, key JSON, value JSON), or -1 if the frame is too short.
func transformRecordBody() []byte {
	const ptr, n, klen = 0, 1, 2
	return Code(
		Block(),
		LocalGet(n), I32Const(4), I32LtU(), BrIf(0),
		LocalGet(ptr), I32Load(0), LocalSet(klen),
		LocalGet(klen), LocalGet(n), I32Const(4), I32Sub(), I32GtU(), BrIf(0),
		region(
			Code(LocalGet(ptr), I32Const(4), I32Add(), LocalGet(klen), I32Add()),
			Code(LocalGet(n), I32Const(4), I32Sub(), LocalGet(klen), I32Sub()),
		),
		Return(),
		End(),
		I64Const(-1),
	)
}

// failUnless returns code that makes the function return status (i64 or i32
// per wide) when global g is 0.
func failUnless(g uint32, wide bool) []byte {
	status := I32Const(-2)
	if wide {
		status = I64Const(-2)
	}
	return Code(GlobalGet(g), I32Eqz(), If(), status, Return(), End())
}

func echoPlugin(o EchoOptions) *plugin {
	p := &plugin{imports: o.Imports}
	p.memory = Memory{Min: max(o.MemoryPages, 1), Export: "memory"}
	if o.MaxPages != 0 {
		p.memory.Max, p.memory.HasMax = o.MaxPages, true
	}

	markers := o.Markers
	if markers == nil {
		markers = []string{"iq_abi_v1"}
	}
	for _, mk := range markers {
		p.set(mk, sigVoid, nil, nil)
	}
	p.set("iq_alloc", sigAlloc, []ValType{I32}, allocBody())

	// Globals: 0 is set by _initialize, 1 by iq_init. guard is what the
	// serializer and transform calls check first.
	guard := func(wide bool) []byte { return nil }
	const initialized, configured = 0, 1
	if o.Initialize || o.Init {
		p.globals = 2
	}
	if o.Initialize {
		p.set("_initialize", sigVoid, nil, Code(I32Const(1), GlobalSet(initialized)))
		guard = func(wide bool) []byte { return failUnless(initialized, wide) }
	}
	if o.Init {
		var check []byte
		if o.Initialize {
			check = failUnless(initialized, false)
		}
		p.set("iq_init", sigStatus, nil, Code(check, I32Const(1), GlobalSet(configured), I32Const(0)))
		guard = func(wide bool) []byte { return failUnless(configured, wide) }
	}

	p.lastError("echo: _initialize or iq_init was not called")
	for _, name := range []string{"iq_key_to_json", "iq_value_to_json", "iq_key_from_text"} {
		p.set(name, sigOp, nil, Code(guard(true), echoBody()))
	}
	if o.Partition {
		p.set("iq_partition", sigPartition, nil, Code(guard(false), LocalGet(1), LocalGet(2), I32RemU()))
	}
	if o.Transform {
		p.set("iq_transform_begin", sigStatus, nil, Code(guard(false), I32Const(0)))
		p.set("iq_transform_record", sigOp, []ValType{I32}, Code(guard(true), transformRecordBody()))
		p.set("iq_transform_end", sigVoid, nil, nil)
	}
	for _, name := range o.Omit {
		p.remove(name)
	}
	return p
}

// Echo is a valid minimal plugin (about 300 bytes): a one-page memory exported
// as "memory", the iq_abi_v1 marker, iq_alloc always returning InputBuffer
// (growing memory when the size needs it, trapping when it cannot), and
// iq_key_to_json, iq_value_to_json and iq_key_from_text returning their input
// region unchanged, so JSON in is JSON out. Its iq_last_error names the only
// way it can fail (see EchoOptions). It imports nothing.
func Echo() []byte { return EchoWith(EchoOptions{}) }

// EchoWith is Echo varied by o.
func EchoWith(o EchoOptions) []byte { return echoPlugin(o).bytes() }

// NotWasm is 64 pseudo-random bytes (always the same ones) that are not a
// WebAssembly module.
func NotWasm() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 64)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] = 0xff // never the \0asm magic
	return b
}

// MissingExports is Echo without iq_alloc: it has memory, the marker and
// iq_value_to_json (and the key operations), but the host cannot pass it
// input.
func MissingExports() []byte {
	return EchoWith(EchoOptions{Omit: []string{"iq_alloc"}})
}

// WrongSignature is Echo whose iq_value_to_json is (i32) -> i32 instead of
// (i32, i32) -> i64. It returns its argument.
func WrongSignature() []byte {
	p := echoPlugin(EchoOptions{})
	p.set("iq_value_to_json", sigAlloc, nil, LocalGet(0))
	return p.bytes()
}

// UnknownABI is Echo whose only marker is iq_abi_v7.
func UnknownABI() []byte {
	return EchoWith(EchoOptions{Markers: []string{"iq_abi_v7"}})
}

// ForbiddenImport is Echo importing wasi_snapshot_preview1.path_open with its
// real signature. It never calls it.
func ForbiddenImport() []byte {
	return EchoWith(EchoOptions{Imports: []Import{PathOpenImport()}})
}

// ForbiddenImportSock is Echo importing wasi_snapshot_preview1.sock_accept.
// It never calls it.
func ForbiddenImportSock() []byte {
	return EchoWith(EchoOptions{Imports: []Import{SockAcceptImport()}})
}

// withValueToJSON is Echo with iq_value_to_json replaced by body.
func withValueToJSON(locals []ValType, body []byte) *plugin {
	p := echoPlugin(EchoOptions{})
	p.set("iq_value_to_json", sigOp, locals, body)
	return p
}

// Trap is Echo whose iq_value_to_json executes unreachable.
func Trap() []byte {
	return withValueToJSON(nil, Unreachable()).bytes()
}

// OutOfBoundsAccess is Echo whose iq_value_to_json loads an i32 from
// 0x7FFF0000, far past its one-page memory, which traps.
func OutOfBoundsAccess() []byte {
	return withValueToJSON(nil, Code(I32Const(0x7FFF0000), I32Load(0), Drop(), I64Const(0))).bytes()
}

// InfiniteLoop is Echo whose iq_value_to_json loops forever (loop br 0 end).
// Only a deadline stops it: run it with
// wazero.NewRuntimeConfig().WithCloseOnContextDone(true).
func InfiniteLoop() []byte {
	return withValueToJSON(nil, Code(Loop(), Br(0), End(), Unreachable())).bytes()
}

// MemoryGrowth is Echo whose iq_value_to_json grows memory one page at a time
// until memory.grow fails (returns -1), then traps with unreachable: it tries
// to eat unbounded memory. Run it only under a memory limit
// (wazero.NewRuntimeConfig().WithMemoryLimitPages); without one it grows to
// 4 GiB.
func MemoryGrowth() []byte {
	return withValueToJSON(nil, Code(
		Loop(),
		I32Const(1), MemoryGrow(), I32Const(-1), I32Ne(), BrIf(0),
		End(),
		Unreachable(),
	)).bytes()
}

// OutOfBoundsResult is Echo whose iq_value_to_json returns the region
// ptr=0x7FFF0000, len=100, far past its one-page memory. (The pointer is below
// 2^31 so the packed result is non-negative and reads as a region, not as a
// status.)
func OutOfBoundsResult() []byte {
	return withValueToJSON(nil, constRegion(0x7FFF0000, 100)).bytes()
}

// ResultPastEnd is Echo whose iq_value_to_json returns a region starting 50
// bytes before the end of memory, 51 bytes long: one byte too far, to catch
// an off-by-one bounds check. The end is read with memory.size at call time.
func ResultPastEnd() []byte {
	end := Code(MemorySize(), I32Const(16), I32Shl())
	return withValueToJSON(nil, region(Code(end, I32Const(50), I32Sub()), I32Const(51))).bytes()
}

// InvalidJSON is Echo whose iq_value_to_json returns `{"a":` (from a data
// segment at DataAddr), which is not JSON.
func InvalidJSON() []byte {
	const text = `{"a":`
	p := withValueToJSON(nil, constRegion(DataAddr, uint32(len(text))))
	p.data = append(p.data, segment{offset: DataAddr, bytes: []byte(text)})
	return p.bytes()
}

// HugeResultLen is the length of HugeResult's result: 2 MiB, over the default
// 1 MiB output cap.
const HugeResultLen = 2 << 20

// HugeResult is Echo with a 40-page memory (2.5 MiB) whose iq_value_to_json
// returns the region ptr=0, len=HugeResultLen: inside memory, but over the
// output cap. The bytes are zeros.
func HugeResult() []byte {
	p := withValueToJSON(nil, constRegion(0, HugeResultLen))
	p.memory.Min = 40
	return p.bytes()
}

// BadStatus is Echo whose iq_value_to_json returns -7, a status not in the
// ABI's table.
func BadStatus() []byte {
	return withValueToJSON(nil, I64Const(-7)).bytes()
}

// RejectMessage is Reject's iq_last_error text.
const RejectMessage = "bad key: not a number"

// Reject is Echo whose iq_key_to_json, iq_value_to_json and iq_key_from_text
// all return -1 (reject), with iq_last_error returning RejectMessage.
func Reject() []byte {
	p := echoPlugin(EchoOptions{})
	for _, name := range []string{"iq_key_to_json", "iq_value_to_json", "iq_key_from_text"} {
		p.set(name, sigOp, nil, I64Const(-1))
	}
	p.lastError(RejectMessage)
	return p.bytes()
}

// InitFailsMessage is InitFails's iq_last_error text.
const InitFailsMessage = "missing setting"

// InitFails is Echo whose iq_init returns -2 (fail), with iq_last_error
// returning InitFailsMessage.
func InitFails() []byte {
	p := echoPlugin(EchoOptions{})
	p.set("iq_init", sigStatus, nil, I32Const(-2))
	p.lastError(InitFailsMessage)
	return p.bytes()
}

// WrongPartition is Echo (so iq_key_to_json and iq_key_from_text echo) whose
// iq_partition returns 99 whatever the partition count.
func WrongPartition() []byte {
	p := echoPlugin(EchoOptions{})
	p.set("iq_partition", sigPartition, nil, I32Const(99))
	return p.bytes()
}

// AllocOutOfBounds is Echo whose iq_alloc returns 0x7FFF0000, far past its
// one-page memory, whatever the size.
func AllocOutOfBounds() []byte {
	p := echoPlugin(EchoOptions{})
	p.set("iq_alloc", sigAlloc, nil, I32Const(0x7FFF0000))
	return p.bytes()
}

// HugeMemoryPages is HugeMemory's declared minimum: 64 MiB + 1 page, just over
// the default memory cap.
const HugeMemoryPages = 1025

// HugeMemory is Echo whose memory declares a minimum of HugeMemoryPages.
// Compile it, don't instantiate it: that would allocate the 64 MiB.
func HugeMemory() []byte {
	return EchoWith(EchoOptions{MemoryPages: HugeMemoryPages})
}

// PartialTransform is Echo exporting iq_transform_begin but neither
// iq_transform_record nor iq_transform_end (the ABI wants all three or none).
func PartialTransform() []byte {
	return EchoWith(EchoOptions{Transform: true, Omit: []string{"iq_transform_record", "iq_transform_end"}})
}

// StderrMessage is what StderrThenTrap writes to stderr.
const StderrMessage = "panic: something went wrong\n"

// StderrThenTrap is Echo importing wasi_snapshot_preview1.fd_write, whose
// iq_value_to_json writes StderrMessage to stderr (fd 2) and then traps.
func StderrThenTrap() []byte {
	const iovec, nwritten = 32, 48 // an iovec {buf, len} and fd_write's count
	p := echoPlugin(EchoOptions{})
	p.imports = []Import{wasi("fd_write", i32s(4), I32)} // function 0
	iov := binary.LittleEndian.AppendUint32(nil, DataAddr)
	iov = binary.LittleEndian.AppendUint32(iov, uint32(len(StderrMessage)))
	p.data = append(p.data,
		segment{offset: iovec, bytes: iov},
		segment{offset: DataAddr, bytes: []byte(StderrMessage)},
	)
	p.set("iq_value_to_json", sigOp, nil, Code(
		I32Const(2), I32Const(iovec), I32Const(1), I32Const(nwritten), Call(0), Drop(),
		Unreachable(),
	))
	return p.bytes()
}

// ProcExit is Echo importing wasi_snapshot_preview1.proc_exit, whose
// iq_value_to_json calls proc_exit(3).
func ProcExit() []byte {
	p := echoPlugin(EchoOptions{})
	p.imports = []Import{wasi("proc_exit", i32s(1))} // function 0
	p.set("iq_value_to_json", sigOp, nil, Code(I32Const(3), Call(0), Unreachable()))
	return p.bytes()
}

// ConstValue is Echo whose iq_value_to_json always returns text (from a
// data segment at DataAddr): two ConstValue modules with different texts
// tell apart which version of a module answered.
func ConstValue(text string) []byte {
	p := withValueToJSON(nil, constRegion(DataAddr, uint32(len(text))))
	p.data = append(p.data, segment{offset: DataAddr, bytes: []byte(text)})
	return p.bytes()
}

// SchemaImport is iq.schema (ABI 1.1) with its signature.
func SchemaImport() Import {
	return Import{Module: "iq", Name: "schema", Type: FuncType{Params: i32s(3), Results: []ValType{I64}}}
}

// SchemaReader is Echo (markers iq_abi_v1 and iq_abi_v1_1) that imports
// iq.schema and calls it from iq_key_from_text, whose input is three
// little-endian i32s: the schema id, a buffer's address and its capacity.
// The result is iq.schema's i64 (8 bytes, little-endian) followed by the
// text written in the buffer: its length bytes when the result is not a
// status and the text fit, nothing otherwise. The buffer must be at
// address 8 or more (the result goes in the 8 bytes before it).
func SchemaReader() []byte {
	p := echoPlugin(EchoOptions{Markers: []string{"iq_abi_v1", "iq_abi_v1_1"}, Imports: []Import{SchemaImport()}})
	const in, r, buf = 0, 2, 3
	length := Code(LocalGet(r), I32WrapI64())
	capacity := Code(LocalGet(in), I32Load(8))
	p.set("iq_key_from_text", sigOp, []ValType{I64, I32}, Code(
		LocalGet(in), I32Load(4), LocalSet(buf),
		LocalGet(in), I32Load(0), LocalGet(buf), capacity, Call(0), LocalSet(r),
		LocalGet(buf), I32Const(8), I32Sub(), LocalGet(r), I32WrapI64(), I32Store(0),
		LocalGet(buf), I32Const(8), I32Sub(), LocalGet(r), I64Const(32), I64ShrU(), I32WrapI64(), I32Store(4),
		region(Code(LocalGet(buf), I32Const(8), I32Sub()), Code(
			LocalGet(r), I64Const(63), I64ShrU(), I64Eqz(),
			If(I32),
			length, capacity, I32GtU(),
			If(I32), I32Const(8), Else(), length, I32Const(8), I32Add(), End(),
			Else(), I32Const(8), End(),
		)),
	))
	return p.bytes()
}

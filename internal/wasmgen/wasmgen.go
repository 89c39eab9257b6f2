// Package wasmgen encodes small WebAssembly core modules in Go, so tests can
// build minimal and hostile plugins without an external toolchain.
//
// It is deliberately tiny: function types over i32 and i64, function imports,
// functions with locals and a raw instruction body, one memory, globals,
// active data segments and exports. It does not validate what it encodes: a
// wrong body gives a module that wazero refuses to compile, which is sometimes
// exactly what a test wants.
//
// A module is built like this:
//
//	m := wasmgen.New()
//	m.SetMemory(wasmgen.Memory{Min: 1, Export: "memory"})
//	add := m.Func(wasmgen.FuncType{
//		Params:  []wasmgen.ValType{wasmgen.I32, wasmgen.I32},
//		Results: []wasmgen.ValType{wasmgen.I32},
//	}, nil, wasmgen.Code(
//		wasmgen.LocalGet(0),
//		wasmgen.LocalGet(1),
//		wasmgen.I32Add(),
//	))
//	m.ExportFunc("add", add)
//	bin := m.Bytes()
//
// The abi.go file builds ready-made modules for the iqengine plugin ABI.
package wasmgen

import (
	"fmt"
	"maps"
	"slices"
)

// ValType is a WebAssembly value type. Only the integer types are supported.
type ValType byte

// The value types.
const (
	I32 ValType = 0x7f
	I64 ValType = 0x7e
)

func (t ValType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	}
	return fmt.Sprintf("ValType(%#x)", byte(t))
}

// FuncType is a function signature.
type FuncType struct {
	Params  []ValType
	Results []ValType
}

func (t FuncType) equal(o FuncType) bool {
	return slices.Equal(t.Params, o.Params) && slices.Equal(t.Results, o.Results)
}

// Memory describes the module's single linear memory. Sizes are in 64 KiB
// pages.
type Memory struct {
	Min    uint32
	Max    uint32 // used only when HasMax
	HasMax bool
	Export string // the export name; empty means not exported
}

type funcImport struct {
	module, name string
	typ          uint32
}

type function struct {
	typ    uint32
	locals []ValType
	body   []byte
}

type global struct {
	typ     ValType
	mutable bool
	init    int64
}

type export struct {
	name  string
	kind  byte
	index uint32
}

type segment struct {
	offset uint32
	bytes  []byte
}

// Module is a WebAssembly module under construction. The zero value is not
// usable; call New.
type Module struct {
	types   []FuncType
	imports []funcImport
	funcs   []function
	memory  *Memory
	globals []global
	exports []export
	data    []segment
	name    string            // the module's name in the name section
	names   map[uint32]string // function names in the name section
}

// New returns an empty module.
func New() *Module { return &Module{} }

// typeIndex returns the index of t in the type section, adding it if needed.
func (m *Module) typeIndex(t FuncType) uint32 {
	for i, have := range m.types {
		if have.equal(t) {
			return uint32(i)
		}
	}
	m.types = append(m.types, FuncType{
		Params:  slices.Clone(t.Params),
		Results: slices.Clone(t.Results),
	})
	return uint32(len(m.types) - 1)
}

// ImportFunc adds a function import and returns its function index. Imported
// functions come first in the function index space, so every import must be
// added before the first Func; ImportFunc panics otherwise.
func (m *Module) ImportFunc(module, name string, t FuncType) uint32 {
	if len(m.funcs) > 0 {
		panic("wasmgen: ImportFunc after Func would renumber functions")
	}
	m.imports = append(m.imports, funcImport{module: module, name: name, typ: m.typeIndex(t)})
	return uint32(len(m.imports) - 1)
}

// Func adds a function and returns its function index. Its parameters are
// locals 0..len(Params)-1; the extra locals follow. body is the instruction
// sequence without the function's final end, which Func appends.
func (m *Module) Func(t FuncType, locals []ValType, body []byte) uint32 {
	m.funcs = append(m.funcs, function{
		typ:    m.typeIndex(t),
		locals: slices.Clone(locals),
		body:   slices.Clone(body),
	})
	return uint32(len(m.imports) + len(m.funcs) - 1)
}

// ExportFunc exports the function with index fn (imported or defined) as name.
func (m *Module) ExportFunc(name string, fn uint32) {
	m.exports = append(m.exports, export{name: name, kind: 0x00, index: fn})
}

// SetName names the module in its name section, which runtimes use in stack
// traces.
func (m *Module) SetName(name string) { m.name = name }

// NameFunc names function fn in the module's name section, which runtimes use
// in stack traces.
func (m *Module) NameFunc(fn uint32, name string) {
	if m.names == nil {
		m.names = map[uint32]string{}
	}
	m.names[fn] = name
}

// SetMemory gives the module its memory, replacing any earlier one.
func (m *Module) SetMemory(mem Memory) {
	m.memory = &mem
}

// Global adds a global of type t initialised to init (truncated to 32 bits for
// I32) and returns its index. A non-empty export name exports it.
func (m *Module) Global(t ValType, mutable bool, init int64, export string) uint32 {
	m.globals = append(m.globals, global{typ: t, mutable: mutable, init: init})
	idx := uint32(len(m.globals) - 1)
	if export != "" {
		m.exports = append(m.exports, exportGlobal(export, idx))
	}
	return idx
}

func exportGlobal(name string, idx uint32) export {
	return export{name: name, kind: 0x03, index: idx}
}

// Data adds an active data segment writing b at offset in memory 0 at
// instantiation.
func (m *Module) Data(offset uint32, b []byte) {
	m.data = append(m.data, segment{offset: offset, bytes: slices.Clone(b)})
}

// Section ids, in the order the binary format requires.
const (
	secCustom   = 0 // may appear anywhere; the name section goes last
	secType     = 1
	secImport   = 2
	secFunction = 3
	secMemory   = 5
	secGlobal   = 6
	secExport   = 7
	secCode     = 10
	secData     = 11
)

// Bytes encodes the module in the WebAssembly binary format. Empty sections
// are left out. Names, if any, go in a "name" custom section at the end.
func (m *Module) Bytes() []byte {
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

	if len(m.types) > 0 {
		b := appendU32(nil, uint32(len(m.types)))
		for _, t := range m.types {
			b = append(b, 0x60)
			b = appendValTypes(b, t.Params)
			b = appendValTypes(b, t.Results)
		}
		out = appendSection(out, secType, b)
	}

	if len(m.imports) > 0 {
		b := appendU32(nil, uint32(len(m.imports)))
		for _, im := range m.imports {
			b = appendName(b, im.module)
			b = appendName(b, im.name)
			b = append(b, 0x00) // a function import
			b = appendU32(b, im.typ)
		}
		out = appendSection(out, secImport, b)
	}

	if len(m.funcs) > 0 {
		b := appendU32(nil, uint32(len(m.funcs)))
		for _, f := range m.funcs {
			b = appendU32(b, f.typ)
		}
		out = appendSection(out, secFunction, b)
	}

	if m.memory != nil {
		b := appendU32(nil, 1)
		if m.memory.HasMax {
			b = append(b, 0x01)
			b = appendU32(b, m.memory.Min)
			b = appendU32(b, m.memory.Max)
		} else {
			b = append(b, 0x00)
			b = appendU32(b, m.memory.Min)
		}
		out = appendSection(out, secMemory, b)
	}

	if len(m.globals) > 0 {
		b := appendU32(nil, uint32(len(m.globals)))
		for _, g := range m.globals {
			b = append(b, byte(g.typ))
			if g.mutable {
				b = append(b, 0x01)
			} else {
				b = append(b, 0x00)
			}
			if g.typ == I64 {
				b = append(b, I64Const(g.init)...)
			} else {
				b = append(b, I32Const(int32(g.init))...)
			}
			b = append(b, opEnd)
		}
		out = appendSection(out, secGlobal, b)
	}

	exports := m.exports
	if m.memory != nil && m.memory.Export != "" {
		exports = append([]export{{name: m.memory.Export, kind: 0x02, index: 0}}, exports...)
	}
	if len(exports) > 0 {
		b := appendU32(nil, uint32(len(exports)))
		for _, e := range exports {
			b = appendName(b, e.name)
			b = append(b, e.kind)
			b = appendU32(b, e.index)
		}
		out = appendSection(out, secExport, b)
	}

	if len(m.funcs) > 0 {
		b := appendU32(nil, uint32(len(m.funcs)))
		for _, f := range m.funcs {
			body := appendLocals(nil, f.locals)
			body = append(body, f.body...)
			body = append(body, opEnd)
			b = appendU32(b, uint32(len(body)))
			b = append(b, body...)
		}
		out = appendSection(out, secCode, b)
	}

	if len(m.data) > 0 {
		b := appendU32(nil, uint32(len(m.data)))
		for _, d := range m.data {
			b = append(b, 0x00) // active, memory 0
			b = append(b, I32Const(int32(d.offset))...)
			b = append(b, opEnd)
			b = appendU32(b, uint32(len(d.bytes)))
			b = append(b, d.bytes...)
		}
		out = appendSection(out, secData, b)
	}

	if m.name != "" || len(m.names) > 0 {
		b := appendName(nil, "name")
		if m.name != "" {
			b = appendSection(b, 0, appendName(nil, m.name)) // module name
		}
		if len(m.names) > 0 {
			sub := appendU32(nil, uint32(len(m.names)))
			for _, fn := range slices.Sorted(maps.Keys(m.names)) {
				sub = appendU32(sub, fn)
				sub = appendName(sub, m.names[fn])
			}
			b = appendSection(b, 1, sub) // function names
		}
		out = appendSection(out, secCustom, b)
	}

	return out
}

func appendSection(out []byte, id byte, contents []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(contents)))
	return append(out, contents...)
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

func appendValTypes(b []byte, ts []ValType) []byte {
	b = appendU32(b, uint32(len(ts)))
	for _, t := range ts {
		b = append(b, byte(t))
	}
	return b
}

// appendLocals encodes locals as runs of (count, type).
func appendLocals(b []byte, locals []ValType) []byte {
	type run struct {
		n uint32
		t ValType
	}
	var runs []run
	for _, t := range locals {
		if len(runs) > 0 && runs[len(runs)-1].t == t {
			runs[len(runs)-1].n++
			continue
		}
		runs = append(runs, run{1, t})
	}
	b = appendU32(b, uint32(len(runs)))
	for _, r := range runs {
		b = appendU32(b, r.n)
		b = append(b, byte(r.t))
	}
	return b
}

// appendU32 appends v as unsigned LEB128.
func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// appendS64 appends v as signed LEB128 (also used for i32 values, which encode
// identically once sign-extended).
func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7 // arithmetic shift keeps the sign
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// Code concatenates instructions into a function body.
func Code(instrs ...[]byte) []byte {
	var b []byte
	for _, in := range instrs {
		b = append(b, in...)
	}
	return b
}

// Opcodes used by the helpers below.
const (
	opUnreachable   = 0x00
	opNop           = 0x01
	opBlock         = 0x02
	opLoop          = 0x03
	opIf            = 0x04
	opElse          = 0x05
	opEnd           = 0x0b
	opBr            = 0x0c
	opBrIf          = 0x0d
	opReturn        = 0x0f
	opCall          = 0x10
	opDrop          = 0x1a
	opLocalGet      = 0x20
	opLocalSet      = 0x21
	opLocalTee      = 0x22
	opGlobalGet     = 0x23
	opGlobalSet     = 0x24
	opI32Load       = 0x28
	opI32Store      = 0x36
	opI32Store8     = 0x3a
	opMemorySize    = 0x3f
	opMemoryGrow    = 0x40
	opI32Const      = 0x41
	opI64Const      = 0x42
	opI32Eqz        = 0x45
	opI32Eq         = 0x46
	opI32Ne         = 0x47
	opI32LtU        = 0x49
	opI32GtU        = 0x4b
	opI32GeU        = 0x4f
	opI64Eqz        = 0x50
	opI64LtU        = 0x54
	opI32Add        = 0x6a
	opI32Sub        = 0x6b
	opI32Mul        = 0x6c
	opI32RemU       = 0x70
	opI32Or         = 0x72
	opI32Shl        = 0x74
	opI32ShrU       = 0x76
	opI64Add        = 0x7c
	opI64Sub        = 0x7d
	opI64Mul        = 0x7e
	opI64Or         = 0x84
	opI64Shl        = 0x86
	opI64ShrU       = 0x88
	opI32WrapI64    = 0xa7
	opI64ExtendI32U = 0xad

	blockEmpty = 0x40 // the block type of a block without results
)

// Control instructions.

// Unreachable traps.
func Unreachable() []byte { return []byte{opUnreachable} }

// Nop does nothing.
func Nop() []byte { return []byte{opNop} }

// Block opens a block with zero or one result; close it with End. A branch to
// a block jumps to its end.
func Block(results ...ValType) []byte { return []byte{opBlock, blockType(results)} }

// Loop opens a loop with zero or one result; close it with End. A branch to a
// loop jumps to its start.
func Loop(results ...ValType) []byte { return []byte{opLoop, blockType(results)} }

// If pops an i32 and runs what follows when it is non-zero, up to Else or End.
func If(results ...ValType) []byte { return []byte{opIf, blockType(results)} }

// Else separates the two arms of an If.
func Else() []byte { return []byte{opElse} }

// End closes a Block, Loop or If. A function's own final end is added by Func.
func End() []byte { return []byte{opEnd} }

// Br branches to the enclosing block depth levels out (0 is the innermost).
func Br(depth uint32) []byte { return appendU32([]byte{opBr}, depth) }

// BrIf pops an i32 and branches like Br when it is non-zero.
func BrIf(depth uint32) []byte { return appendU32([]byte{opBrIf}, depth) }

// Return returns from the function with the values on the stack.
func Return() []byte { return []byte{opReturn} }

// Call calls the function with index fn.
func Call(fn uint32) []byte { return appendU32([]byte{opCall}, fn) }

// Drop discards the top of the stack.
func Drop() []byte { return []byte{opDrop} }

func blockType(results []ValType) byte {
	switch len(results) {
	case 0:
		return blockEmpty
	case 1:
		return byte(results[0])
	}
	panic("wasmgen: blocks with several results are not supported")
}

// Variable instructions.

// LocalGet pushes local i.
func LocalGet(i uint32) []byte { return appendU32([]byte{opLocalGet}, i) }

// LocalSet pops into local i.
func LocalSet(i uint32) []byte { return appendU32([]byte{opLocalSet}, i) }

// LocalTee stores the top of the stack into local i, keeping it.
func LocalTee(i uint32) []byte { return appendU32([]byte{opLocalTee}, i) }

// GlobalGet pushes global i.
func GlobalGet(i uint32) []byte { return appendU32([]byte{opGlobalGet}, i) }

// GlobalSet pops into global i, which must be mutable.
func GlobalSet(i uint32) []byte { return appendU32([]byte{opGlobalSet}, i) }

// Memory instructions. Offsets are static and added to the address popped.

// I32Load pushes the 4 bytes (little-endian) at address+offset.
func I32Load(offset uint32) []byte { return memarg(opI32Load, 2, offset) }

// I32Store pops a value and an address and stores 4 bytes at address+offset.
func I32Store(offset uint32) []byte { return memarg(opI32Store, 2, offset) }

// I32Store8 pops a value and an address and stores its low byte.
func I32Store8(offset uint32) []byte { return memarg(opI32Store8, 0, offset) }

// MemorySize pushes the memory size in pages.
func MemorySize() []byte { return []byte{opMemorySize, 0x00} }

// MemoryGrow pops a page count, grows memory by that much and pushes the old
// size in pages, or -1 when the memory cannot grow.
func MemoryGrow() []byte { return []byte{opMemoryGrow, 0x00} }

func memarg(op byte, alignLog2, offset uint32) []byte {
	b := appendU32([]byte{op}, alignLog2)
	return appendU32(b, offset)
}

// Numeric instructions.

// I32Const pushes v.
func I32Const(v int32) []byte { return appendS64([]byte{opI32Const}, int64(v)) }

// I64Const pushes v.
func I64Const(v int64) []byte { return appendS64([]byte{opI64Const}, v) }

// I32Add is i32.add.
func I32Add() []byte { return []byte{opI32Add} }

// I32Sub is i32.sub.
func I32Sub() []byte { return []byte{opI32Sub} }

// I32Mul is i32.mul.
func I32Mul() []byte { return []byte{opI32Mul} }

// I32RemU is i32.rem_u (traps on a zero divisor).
func I32RemU() []byte { return []byte{opI32RemU} }

// I32Shl is i32.shl.
func I32Shl() []byte { return []byte{opI32Shl} }

// I32ShrU is i32.shr_u.
func I32ShrU() []byte { return []byte{opI32ShrU} }

// I32Or is i32.or.
func I32Or() []byte { return []byte{opI32Or} }

// I32Eqz pushes 1 when the popped i32 is 0, else 0.
func I32Eqz() []byte { return []byte{opI32Eqz} }

// I32Eq is i32.eq.
func I32Eq() []byte { return []byte{opI32Eq} }

// I32Ne is i32.ne.
func I32Ne() []byte { return []byte{opI32Ne} }

// I32LtU is i32.lt_u.
func I32LtU() []byte { return []byte{opI32LtU} }

// I32GtU is i32.gt_u.
func I32GtU() []byte { return []byte{opI32GtU} }

// I32GeU is i32.ge_u.
func I32GeU() []byte { return []byte{opI32GeU} }

// I32WrapI64 keeps the low 32 bits of an i64.
func I32WrapI64() []byte { return []byte{opI32WrapI64} }

// I64Add is i64.add.
func I64Add() []byte { return []byte{opI64Add} }

// I64Sub is i64.sub.
func I64Sub() []byte { return []byte{opI64Sub} }

// I64Mul is i64.mul.
func I64Mul() []byte { return []byte{opI64Mul} }

// I64Shl is i64.shl.
func I64Shl() []byte { return []byte{opI64Shl} }

// I64ShrU is i64.shr_u.
func I64ShrU() []byte { return []byte{opI64ShrU} }

// I64Or is i64.or.
func I64Or() []byte { return []byte{opI64Or} }

// I64Eqz pushes 1 when the popped i64 is 0, else 0.
func I64Eqz() []byte { return []byte{opI64Eqz} }

// I64LtU is i64.lt_u.
func I64LtU() []byte { return []byte{opI64LtU} }

// I64ExtendI32U zero-extends an i32 to an i64.
func I64ExtendI32U() []byte { return []byte{opI64ExtendI32U} }

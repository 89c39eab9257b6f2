// Package abi holds what the Go SDK's packages share to implement the
// iqengine plugin ABI v1 (sdk/ABI.md): the statuses, result encoding, the
// error that means "reject", the last error's text and the retained result.
//
// Everything here compiles on every platform so that it can be unit tested
// natively; only the //go:wasmexport functions of the SDK's public packages
// are specific to wasip1.
package abi

import (
	"errors"
	"fmt"
	"unsafe"
)

// Statuses, as returned by the ABI's operations.
const (
	StatusReject int32 = -1 // the input is not valid for this plugin
	StatusFail   int32 = -2 // the plugin could not do its job
	StatusSkip   int32 = -3 // transform record only: filtered out
)

// Rejection is the error that maps to StatusReject. It wraps the formatted
// error, so errors.Is and errors.As see what a %w verb wrapped.
type Rejection struct{ err error }

func (r *Rejection) Error() string { return r.err.Error() }

// Unwrap returns the formatted error, which wraps the %w arguments.
func (r *Rejection) Unwrap() error { return r.err }

// Reject builds a Rejection as fmt.Errorf formats and wraps.
func Reject(format string, args ...any) error {
	return &Rejection{fmt.Errorf(format, args...)}
}

// IsReject reports whether err, or an error it wraps, is a Rejection.
func IsReject(err error) bool {
	var r *Rejection
	return errors.As(err, &r)
}

// StatusOf maps a non-nil error to its status: StatusReject for a Rejection
// (wrapped or not), StatusFail for anything else.
func StatusOf(err error) int32 {
	if IsReject(err) {
		return StatusReject
	}
	return StatusFail
}

var (
	// lastOut keeps the last result region referenced until the next call,
	// as the ABI requires (the host copies it out before calling again).
	lastOut []byte
	// lastErr is the text iq_last_error returns.
	lastErr []byte
)

// Pack encodes a result region (ptr<<32 | len). ptr must be below 2 GiB, which
// the ABI guarantees, so the result is never negative.
func Pack(ptr, n uint32) int64 {
	return int64(uint64(ptr)<<32 | uint64(n))
}

// Region retains b until the next call and returns it as a result. An empty
// result is 0.
func Region(b []byte) int64 {
	lastOut = b
	if len(b) == 0 {
		return 0
	}
	return Pack(Addr(b), uint32(len(b)))
}

// Addr is the linear-memory address of b's first byte (meaningful on wasm,
// where addresses are 32-bit).
func Addr(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// Bytes views n bytes at ptr (an input region the host wrote) without
// copying. The view is only valid during the current call.
func Bytes(ptr unsafe.Pointer, n int32) []byte {
	if ptr == nil || n <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(ptr), n)
}

// Fail records err as the last error and returns its status (StatusReject or
// StatusFail).
func Fail(err error) int32 {
	SetError(err.Error())
	return StatusOf(err)
}

// SetError sets the text iq_last_error returns.
func SetError(msg string) {
	lastErr = append(lastErr[:0], msg...)
}

// LastError is the text of the last failed call.
func LastError() []byte { return lastErr }

// Result turns an operation's (output, error) into its i64 result: the output
// region, or the error's status (its text kept for iq_last_error).
func Result(out []byte, err error) int64 {
	if err != nil {
		return int64(Fail(err))
	}
	return Region(out)
}

// Status turns an operation's error into its i32 result: 0, or the error's
// status (its text kept for iq_last_error).
func Status(err error) int32 {
	if err != nil {
		return Fail(err)
	}
	return 0
}

// NoHandler is the error of an exported operation whose package was linked
// but whose Handle function was never called.
func NoHandler(export, pkg string) error {
	return errors.New(export + ": no handler registered (call " + pkg + ".Handle from an init function)")
}

// Ptr is the address of b's first byte as a pointer, for tests and for
// iq_alloc.
func Ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

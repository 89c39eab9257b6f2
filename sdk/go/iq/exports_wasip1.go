//go:build wasip1

//lint:file-ignore U1000 the host calls these: //go:wasmexport exports them

package iq

import (
	"unsafe"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
)

// The core exports every module built with the SDK has.

//go:wasmexport iq_abi_v1
func iqABIv1() {}

//go:wasmexport iq_alloc
func iqAlloc(size int32) unsafe.Pointer {
	return abi.Ptr(alloc(size))
}

//go:wasmexport iq_init
func iqInit(ptr unsafe.Pointer, n int32) int32 {
	return abi.Status(initialize(abi.Bytes(ptr, n)))
}

//go:wasmexport iq_last_error
func iqLastError() int64 {
	return abi.Region(abi.LastError())
}

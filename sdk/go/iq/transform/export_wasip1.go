//go:build wasip1

//lint:file-ignore U1000 the host calls these: //go:wasmexport exports them

package transform

import (
	"unsafe"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
)

//go:wasmexport iq_transform_begin
func exportBegin(ptr unsafe.Pointer, n int32) int32 {
	return abi.Status(beginBatch(abi.Bytes(ptr, n)))
}

//go:wasmexport iq_transform_record
func exportRecord(ptr unsafe.Pointer, n int32) int64 {
	out, keep, err := record(abi.Bytes(ptr, n))
	if err != nil {
		return abi.Result(nil, err)
	}
	if !keep {
		return int64(abi.StatusSkip)
	}
	return abi.Region(out)
}

//go:wasmexport iq_transform_end
func exportEnd() { endBatch() }

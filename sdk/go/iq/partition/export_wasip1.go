//go:build wasip1

//lint:file-ignore U1000 the host calls these: //go:wasmexport exports them

package partition

import (
	"unsafe"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
)

//go:wasmexport iq_partition
func export(ptr unsafe.Pointer, n int32, partitions int32) int32 {
	p, err := call(abi.Bytes(ptr, n), partitions)
	if err != nil {
		return abi.Fail(err)
	}
	return p
}

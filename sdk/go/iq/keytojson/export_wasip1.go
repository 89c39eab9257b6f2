//go:build wasip1

//lint:file-ignore U1000 the host calls these: //go:wasmexport exports them

package keytojson

import (
	"unsafe"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
)

//go:wasmexport iq_key_to_json
func export(ptr unsafe.Pointer, n int32) int64 {
	return abi.Result(call(abi.Bytes(ptr, n)))
}

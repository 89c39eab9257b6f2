//go:build wasip1

//lint:file-ignore U1000 the host calls iqABIv1_1: //go:wasmexport exports it

package registry

import "unsafe"

// iq_abi_v1_1 declares that the module needs ABI 1.1, which added
// iq.schema: a host without it refuses the module naming the version.
//
//go:wasmexport iq_abi_v1_1
func iqABIv1_1() {}

//go:wasmimport iq schema
func schemaImport(id int32, ptr unsafe.Pointer, capacity int32) int64

func hostSchema(id int32, buf []byte) (int64, error) {
	return schemaImport(id, unsafe.Pointer(unsafe.SliceData(buf)), int32(len(buf))), nil
}

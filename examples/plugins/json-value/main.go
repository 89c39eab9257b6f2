// Command json-value is the smallest useful plugin: a value serializer for
// values that are already JSON. It hands the bytes back unchanged, and the
// host checks that they are UTF-8 JSON before answering, as the built-in
// json serde does. scripts/bench.sh uses it for scenario (d), a lookup
// through a WebAssembly value serializer, to show what the plugin boundary
// costs on top of the built-in. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o json-value.wasm .
package main

import "github.com/iqengine/iqengine/sdk/go/iq/valuetojson"

func init() {
	valuetojson.Handle(func(value []byte) ([]byte, error) { return value, nil })
}

// main is never called in a plugin; it lets the package build natively.
func main() {}

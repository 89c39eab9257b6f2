// Command sensor-key is the iqengine example key serializer and partitioner
// for composite sensor keys (see README.md). Build it as a plugin with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o sensor-key.wasm .
package main

import (
	"github.com/iqengine/iqengine/sdk/go/iq/keyfromtext"
	"github.com/iqengine/iqengine/sdk/go/iq/keytojson"
	"github.com/iqengine/iqengine/sdk/go/iq/partition"
)

// out is reused from call to call: the host copies each result out before
// its next call.
var out []byte

func init() {
	keytojson.Handle(func(key []byte) ([]byte, error) {
		var err error
		out, err = appendKeyJSON(out[:0], key)
		return out, err
	})
	keyfromtext.Handle(func(text string) ([]byte, error) {
		var err error
		out, err = appendKey(out[:0], text)
		return out, err
	})
	partition.Handle(partitionOf)
}

// main is never called in a plugin (a c-shared module only runs init
// functions); it lets the package build and test natively too.
func main() {}

// Command avro-value is the iqengine example value serializer that asks the
// node's schema registry for each record's schema (see README.md). Build it
// as a plugin with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o avro-value.wasm .
package main

import (
	"github.com/iqengine/iqengine/sdk/go/iq/valuetojson"
)

// out is reused from call to call: the host copies each result out before
// its next call.
var out []byte

func init() {
	valuetojson.Handle(func(value []byte) ([]byte, error) {
		var err error
		out, err = appendJSON(out[:0], value)
		return out, err
	})
}

// main is never called in a plugin (a c-shared module only runs init
// functions); it lets the package build and test natively too.
func main() {}

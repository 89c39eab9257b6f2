// Command project is the iqengine example transform: it projects a record's
// value onto some top-level fields and filters records on numeric minimums
// (see README.md). Build it as a plugin with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o project.wasm .
package main

import (
	"github.com/iqengine/iqengine/sdk/go/iq/transform"
)

// out is reused from record to record: the host copies each result out
// before its next call.
var out []byte

func init() {
	transform.Handle(func(params map[string]string) (transform.Func, error) {
		p, err := newProjection(params)
		if err != nil {
			return nil, err
		}
		return func(key, value []byte) ([]byte, bool, error) {
			var keep bool
			var err error
			out, keep, err = p.apply(out[:0], value)
			return out, keep, err
		}, nil
	})
}

// main is never called in a plugin (a c-shared module only runs init
// functions); it lets the package build and test natively too.
func main() {}

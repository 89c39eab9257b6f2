// Command stdlib is a value serializer built from the packages a Go plugin
// is most tempted to use and that link os and syscall: fmt, strconv,
// encoding/json, time and os. plugins/stdlib_test.go builds it and runs it in
// the host, to show which WASI imports they add and that the host accepts
// them (sdk/ABI.md, Imports).
//
// A value is a decimal integer n; the answer is a JSON object of n formatted
// by each package.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/iqengine/iqengine/sdk/go/iq"
	"github.com/iqengine/iqengine/sdk/go/iq/valuetojson"
)

// Format is what fmt writes for n; the test formats the same natively.
const Format = "%05d|%x|%8.3f|%q|%v"

func init() {
	valuetojson.Handle(func(value []byte) ([]byte, error) {
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil {
			return nil, iq.Reject("value %q: %w", value, err)
		}
		return json.Marshal(map[string]string{
			"fmt":     fmt.Sprintf(Format, n, n, float64(n)/7, value, []int64{n, -n}),
			"strconv": strconv.Quote(strconv.FormatFloat(float64(n)/3, 'g', -1, 64)),
			"time":    time.Unix(n, 0).UTC().Format(time.RFC3339),
			"env":     os.Getenv("HOME"),
		})
	})
}

func main() {}

//go:build !wasip1

package registry

import "errors"

func hostSchema(int32, []byte) (int64, error) {
	return 0, errors.New("no iqengine host: iq.schema exists only in a module iqengine runs (use registry.Fake in tests)")
}

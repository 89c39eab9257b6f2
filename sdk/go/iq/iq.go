package iq

import (
	"github.com/iqengine/iqengine/sdk/go/internal/abi"
)

var (
	config    []byte
	initFuncs []func(config []byte) error
)

func init() { abi.Init = initialize }

// Config returns the static config the host passed to iq_init: the store's
// plugin config as JSON (`{}` when the store gives none). It is nil before
// iq_init. The slice is the SDK's own copy; do not modify it.
func Config() []byte { return config }

// OnInit registers f to run when the host calls iq_init, with the config (as
// Config returns it). Functions run in the order they were registered; the
// first error stops the instance's start-up: a Reject or any other error
// refuses the module for that store, showing the error's text.
//
// Call OnInit from an init function: a c-shared Go module never runs main.
func OnInit(f func(config []byte) error) {
	initFuncs = append(initFuncs, f)
}

// Reject returns an error meaning "this input is not valid for this plugin"
// (status reject, HTTP 422 plugin-rejected). Any other non-nil error returned
// by a handler means "the plugin could not do its job" (status fail, HTTP 500
// plugin-failed). The message is formatted as fmt.Errorf formats it, and an
// error given to %w is wrapped (errors.Is and errors.As see it). A rejection
// stays a rejection when wrapped (fmt.Errorf("...: %w", err)).
func Reject(format string, args ...any) error {
	return abi.Reject(format, args...)
}

// IsReject reports whether err is (or wraps) an error made by Reject.
func IsReject(err error) bool { return abi.IsReject(err) }

// initialize is iq_init's logic: keep a copy of the config, run the init
// functions.
func initialize(cfg []byte) error {
	config = append([]byte{}, cfg...)
	for _, f := range initFuncs {
		if err := f(config); err != nil {
			return err
		}
	}
	return nil
}

// scratch is the input buffer iq_alloc hands out. It is referenced here so
// that the garbage collector never frees it (Go's collector does not move
// objects, so its address is stable).
var scratch []byte

// alloc is iq_alloc's logic: the scratch buffer, grown only when too small.
// It always has at least one byte, so that it has an address.
func alloc(size int32) []byte {
	if size < 0 {
		panic("iq_alloc: negative size")
	}
	if int(size) > len(scratch) || len(scratch) == 0 {
		n := 2 * len(scratch)
		if n < 1024 {
			n = 1024
		}
		if n < int(size) {
			n = int(size)
		}
		scratch = make([]byte, n)
	}
	return scratch
}

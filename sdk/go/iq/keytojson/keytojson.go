// Package keytojson gives a plugin the key deserializer (Kafka key bytes → JSON)
// capability: importing it exports `iq_key_to_json` from the module, and Handle
// registers the Go function that implements it.
//
//	func init() {
//		keytojson.Handle(func(key []byte) ([]byte, error) {
//			...
//		})
//	}
//
// The input slice views the host's input buffer: it is valid only during the
// call (copy what you keep). The returned slice must stay unchanged until the
// next call into the module: a fresh slice, or a buffer reused from call to
// call (buf = append(buf[:0], ...)), both are fine. Return iq.Reject(...) for
// input this plugin does not accept, any other error when the plugin cannot
// do its job. A panic traps: the host counts it as a fault and replaces the
// instance.
package keytojson

import (
	"github.com/iqengine/iqengine/sdk/go/internal/abi"
	_ "github.com/iqengine/iqengine/sdk/go/iq" // the core exports
)

func init() { abi.KeyToJSON = call }

var handler func([]byte) ([]byte, error)

// Handle registers f as the module's `iq_key_to_json`. Call it from an init
// function (a c-shared Go module never runs main); a later call replaces f.
func Handle(f func(key []byte) ([]byte, error)) { handler = f }

func call(in []byte) ([]byte, error) {
	if handler == nil {
		return nil, abi.NoHandler("iq_key_to_json", "keytojson")
	}
	return handler(in)
}

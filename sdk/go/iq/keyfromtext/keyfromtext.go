// Package keyfromtext gives a plugin the key serializer capability (a key as
// written in a URL → Kafka key bytes): importing it exports
// `iq_key_from_text` from the module, and Handle registers the Go function
// that implements it.
//
//	func init() {
//		keyfromtext.Handle(func(text string) ([]byte, error) {
//			...
//		})
//	}
//
// The text is the key as the user wrote it in a URL path segment or in the
// from, to and prefix parameters, already percent-decoded. It is a string the
// function may keep (the SDK copies it out of the host's buffer; keys are
// short). The host requires UTF-8, but the SDK does not check it. For prefix
// scans the result is used as a byte prefix.
//
// The returned slice must stay unchanged until the next call into the
// module. Return iq.Reject(...) for text that is not a key of this format (HTTP
// 422), any other error when the plugin cannot do its job. A panic traps.
//
// A key serializer needs both this package and keytojson.
package keyfromtext

import (
	"github.com/iqengine/iqengine/sdk/go/internal/abi"
	_ "github.com/iqengine/iqengine/sdk/go/iq" // the core exports
)

func init() { abi.KeyFromText = call }

var handler func(string) ([]byte, error)

// Handle registers f as the module's `iq_key_from_text`. Call it from an
// init function (a c-shared Go module never runs main); a later call
// replaces f.
func Handle(f func(text string) ([]byte, error)) { handler = f }

func call(in []byte) ([]byte, error) {
	if handler == nil {
		return nil, abi.NoHandler("iq_key_from_text", "keyfromtext")
	}
	return handler(string(in))
}

// Package iq is the core of the Go SDK for iqengine plugins: WebAssembly
// modules that iqengine loads as Kafka key and value serializers,
// partitioners and query transforms (the plugin ABI, version 1, is
// sdk/ABI.md). With the SDK a plugin is plain Go functions; the SDK does the
// ABI: memory, result encoding, statuses, error texts.
//
// # Capabilities
//
// A module's capabilities are the exports it has, and each capability is a
// package of this SDK whose import adds its export:
//
//	package                     export                      handler
//	iq/keytojson                iq_key_to_json              func(key []byte) ([]byte, error)
//	iq/valuetojson              iq_value_to_json            func(value []byte) ([]byte, error)
//	iq/keyfromtext              iq_key_from_text            func(text string) ([]byte, error)
//	iq/partition                iq_partition                func(key []byte, partitions int32) (int32, error)
//	iq/transform                iq_transform_begin/record/end
//	                                                        func(params map[string]string) (transform.Func, error)
//
//	iq/registry                 iq_abi_v1_1 (ABI 1.1)        registry.Schema(id) (schemaType, schema string, err error)
//
// A value serializer imports valuetojson; a key serializer imports keytojson
// and keyfromtext (and partition when its topic is not partitioned by Kafka's
// default partitioner); a transform imports transform. This package adds the
// exports every module has: iq_abi_v1, iq_alloc, iq_init and iq_last_error.
//
// # A complete plugin
//
// A value serializer that answers a UTF-8 value as a JSON object:
//
//	// Command text-value answers a text value as {"text":"..."}.
//	package main
//
//	import (
//		"unicode/utf8"
//
//		"github.com/iqengine/iqengine/sdk/go/iq"
//		"github.com/iqengine/iqengine/sdk/go/iq/valuetojson"
//	)
//
//	var out []byte // reused: the host copies each result before its next call
//
//	func init() {
//		valuetojson.Handle(func(value []byte) ([]byte, error) {
//			if !utf8.Valid(value) {
//				return nil, iq.Reject("the value is not UTF-8")
//			}
//			out = append(out[:0], `{"text":`...)
//			out = iq.AppendJSONString(out, value)
//			return append(out, '}'), nil
//		})
//	}
//
//	func main() {}
//
// Build it with Go 1.24 or later (the first with //go:wasmexport and c-shared
// builds for wasip1):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o text-value.wasm .
//
// -buildmode=c-shared makes a WASI reactor: the host calls _initialize, which
// runs the package initialisers, and then the exports. main is never called,
// so handlers are registered from init functions. The packages also build on
// every other platform (without the exports), so a plugin's logic is tested
// with plain go test; package iqtest runs the conformance vectors of
// sdk/conformance against the registered handlers natively.
//
// # Results and errors
//
// A handler returns its output, or an error: Reject for input the plugin does
// not accept (status reject, HTTP 422 plugin-rejected), any other error when
// the plugin cannot do its job (status fail, HTTP 500 plugin-failed). The
// error's text is what iq_last_error gives the host, which shows it in the
// answer and the log. A panic is not recovered: it traps, the host counts a
// fault, answers 500 and replaces the instance (the panic message goes to
// stderr, which the host keeps to explain the trap).
//
// Input slices view the host's input buffer and are only valid during the
// call. An output must stay unchanged until the next call into the module;
// reusing one buffer from call to call, as above, is fine (and spares the
// garbage collector).
//
// # Configuration
//
// A store may give a plugin a static config (JSON, `{}` when none). Config
// returns it; OnInit registers functions that check it when the instance
// starts (an error refuses the module for that store):
//
//	func init() {
//		iq.OnInit(func(config []byte) error {
//			if string(bytes.TrimSpace(config)) != "{}" {
//				return errors.New("this plugin takes no config")
//			}
//			return nil
//		})
//	}
//
// # Helpers
//
// The helpers every iqengine SDK has under the same names (sdk/ABI.md, The
// SDKs): JSONObject walks the members of a JSON object without copying,
// AppendJSONString writes a JSON string and AppendFixed a fixed-point
// number; integers are strconv.AppendInt and strconv.AppendUint.
//
// # Standard library
//
// A plugin may use the standard library: fmt, strconv, time, encoding/json,
// log and the like. The Go runtime and package os import a few
// WASI functions at start-up (fd_prestat_get, fd_prestat_dir_name and
// fd_fdstat_set_flags among them), which the host allows (sdk/ABI.md,
// Imports). The host gives no files (no directory is preopened), no network
// (a module importing WASI's socket functions is refused) and no
// environment, and a virtual clock unless the module's config sets
// allow_clock. `iqengine plugin inspect MODULE.wasm` lists a module's
// imports.
//
// A module has one instance per concurrent query (a bounded pool), each
// single-threaded: package-level state is per instance, and a handler never
// runs concurrently with itself. An instance may be closed and replaced at
// any time, so it must hold nothing that has to outlive it.
package iq

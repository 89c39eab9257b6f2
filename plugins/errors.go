package plugins

import (
	"errors"
	"strings"

	"github.com/iqengine/iqengine/serde/registry"
)

// Kind classifies what went wrong in a plugin call.
type Kind string

// Kinds of plugin errors. KindRejected is the plugin refusing its input (a
// 422 answer); every other kind is a fault of the plugin (a 500 answer) after
// which the instance is closed and replaced.
const (
	KindRejected  Kind = "rejected"   // the plugin returned the reject status
	KindFailed    Kind = "failed"     // the plugin returned the fail status
	KindTrap      Kind = "trap"       // unreachable, out-of-bounds access, a panic, an abort, proc_exit
	KindTimeout   Kind = "timeout"    // the call or batch ran past plugins.timeout
	KindMemory    Kind = "memory"     // the instance hit the memory cap
	KindBadResult Kind = "bad_result" // a result outside memory, an unknown status, a bad partition
	KindBadOutput Kind = "bad_output" // output that is not valid JSON
	KindTooLarge  Kind = "too_large"  // a result longer than plugins.max_output
	KindBusy      Kind = "busy"       // no instance was free before the deadline
)

// faultKinds are the kinds counted in iqengine_plugin_faults_total.
var faultKinds = []Kind{KindFailed, KindTrap, KindTimeout, KindMemory, KindBadResult, KindBadOutput, KindTooLarge, KindBusy}

// Error is a failed plugin call. Its message names the plugin, the
// operation and the reason, and is safe to show to the user.
type Error struct {
	Plugin string // the module's name
	Op     string // the ABI operation, e.g. "iq_value_to_json"
	Kind   Kind
	Msg    string // the plugin's own message (iq_last_error, stderr) or the host's reason

	counted bool // already in the metrics
	// registryDown: the plugin failed after iq.schema told it the schema
	// registry was unavailable (see Unwrap).
	registryDown bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("plugin ")
	b.WriteString(e.Plugin)
	if e.Op != "" {
		b.WriteString(" (")
		b.WriteString(e.Op)
		b.WriteString(")")
	}
	switch e.Kind {
	case KindRejected:
		b.WriteString(" rejected the input")
	case KindFailed:
		b.WriteString(" failed")
	default:
		b.WriteString(" faulted: ")
		b.WriteString(string(e.Kind))
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

// Rejected reports whether the plugin refused its input, as opposed to
// failing.
func (e *Error) Rejected() bool { return e.Kind == KindRejected }

// Is makes errors.Is(err, ErrRejected) true for rejections.
func (e *Error) Is(target error) bool { return target == ErrRejected && e.Kind == KindRejected }

// Unwrap is registry.ErrRegistryUnavailable when the plugin failed after
// iq.schema told it the schema registry was unavailable: the record is not
// at fault, and the answer is the registry's (503 registry-unavailable), as
// for the built-in registry serdes.
func (e *Error) Unwrap() error {
	if e.registryDown && e.Kind != KindRejected {
		return registry.ErrRegistryUnavailable
	}
	return nil
}

// ErrRejected matches (with errors.Is) every error of a plugin that refused
// its input.
var ErrRejected = errors.New("plugin rejected the input")

// LoadError is a module refused at load time: not WebAssembly, a missing or
// mistyped export, an unsupported ABI version, a forbidden import, a failing
// iq_init.
type LoadError struct {
	Plugin string
	Reason string
}

func (e *LoadError) Error() string { return "plugin " + e.Plugin + ": " + e.Reason }

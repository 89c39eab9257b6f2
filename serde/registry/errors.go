package registry

import (
	"errors"
	"fmt"

	"github.com/iqengine/iqengine/serde"
)

// The errors a caller must tell apart, for errors.Is. The HTTP layer
// answers each with a problem type of its own.
var (
	// ErrUnknownSchema: the registry answered that a schema id, or a
	// subject's version, does not exist. When a record names the id, it is
	// the record's fault and the error also wraps serde.ErrInvalid.
	ErrUnknownSchema = errors.New("unknown schema")
	// ErrRegistryUnavailable: the registry could not be reached (or
	// answered a server error, or timed out) and the schema was not in
	// the cache. It never wraps serde.ErrInvalid: the record may well be
	// fine, and asking again once the registry is back will tell.
	ErrRegistryUnavailable = errors.New("schema registry unavailable")
)

// UnknownSchemaError is a schema the registry says does not exist.
type UnknownSchemaError struct {
	// What names it: "schema id 7", "subject orders-key version 3".
	What string
	// Record is true when a record's header named it, so the record is
	// what is wrong.
	Record bool
}

func (e *UnknownSchemaError) Error() string {
	if e.Record {
		return fmt.Sprintf("the record names %s, which the schema registry does not have", e.What)
	}
	return fmt.Sprintf("the schema registry has no %s", e.What)
}

// Is makes errors.Is(err, ErrUnknownSchema) true, and
// errors.Is(err, serde.ErrInvalid) when the record is at fault.
func (e *UnknownSchemaError) Is(target error) bool {
	return target == ErrUnknownSchema || (e.Record && target == serde.ErrInvalid)
}

// UnavailableError is a schema that could not be fetched because the
// registry did not answer usefully.
type UnavailableError struct {
	What string // as in UnknownSchemaError
	Err  error  // what the HTTP client or the registry said
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("schema registry unavailable: cannot fetch %s: %v", e.What, e.Err)
}

// Is makes errors.Is(err, ErrRegistryUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrRegistryUnavailable }

func (e *UnavailableError) Unwrap() error { return e.Err }

// invalidError is a record or key text that is not in the serde's format.
// It unwraps to serde.ErrInvalid, as the built-in serdes' errors do.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return serde.ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

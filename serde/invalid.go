package serde

import "fmt"

// invalidError carries a message meant for the person who typed the key or
// produced the record. It unwraps to ErrInvalid so callers can map every
// format problem to one answer (such as HTTP 400) with errors.Is, while the
// message itself stays free of a generic "invalid input:" prefix.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

// invalidf builds an error wrapping ErrInvalid. It allocates, which is fine:
// it runs only on the error path.
func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

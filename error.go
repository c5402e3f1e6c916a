package holdfast

import (
	"errors"
	"fmt"
)

// Sentinel errors that callers decide on. Compare with errors.Is.
var (
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request contradicts the stored state (a duplicate, or
	// a conditional update whose condition no longer holds).
	ErrConflict = errors.New("conflict")
)

// InvalidError reports bad input, naming the field that is wrong.
type InvalidError struct {
	Field   string // JSON name of the bad field; empty when it is the whole input
	Message string
}

// Error implements error.
func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Invalidf returns an *InvalidError for field.
func Invalidf(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

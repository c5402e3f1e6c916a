package monitor

import (
	"context"
	"errors"

	"github.com/holdfast/holdfast"
)

// failureReason names why the store refused a decision for good, as the
// reason label of holdfast_monitor_write_failures_total.
type failureReason string

// The permanent failures the writer recognises.
const (
	// reasonInvalid is a *holdfast.InvalidError: the store's own check
	// refused the decision.
	reasonInvalid failureReason = "invalid"
	// reasonDataException is PostgreSQL SQLSTATE class 22 (a NUL byte
	// in text is 22021, a value too long 22001), or SQLite's SQLITE_TOOBIG
	// and SQLITE_MISMATCH.
	reasonDataException failureReason = "data_exception"
	// reasonConstraint is PostgreSQL SQLSTATE class 23 or SQLite's
	// SQLITE_CONSTRAINT: an integrity constraint refused the row.
	reasonConstraint failureReason = "constraint"
	// reasonLimit is PostgreSQL SQLSTATE class 54: a program limit, such
	// as a row or an index entry too large.
	reasonLimit failureReason = "limit_exceeded"
)

// sqlStater is an error carrying a PostgreSQL SQLSTATE, as pgconn.PgError
// does; matching the method keeps pgx out of this package.
type sqlStater interface {
	error
	SQLState() string
}

// sqliteCoder is an error carrying an SQLite result code, as
// modernc.org/sqlite's *Error does.
type sqliteCoder interface {
	error
	Code() int
}

// SQLite primary result codes (https://sqlite.org/rescode.html).
const (
	sqliteTooBig     = 18
	sqliteConstraint = 19
	sqliteMismatch   = 20
)

// permanent says whether a store error will fail the same way however
// often the write is retried, and why. Only errors that name the data as
// the fault are permanent: an *holdfast.InvalidError, PostgreSQL SQLSTATE
// classes 22 (data exception), 23 (integrity constraint violation) and 54
// (program limit exceeded), and their SQLite equivalents. Everything else
// is transient and retried: a context ending, connection failures (class
// 08), serialization failures and deadlocks (class 40), an administrator's
// shutdown (class 57), too many connections (class 53), and any error
// that carries no code at all. holdfast.ErrNotFound and ErrConflict never
// get here: persist treats them as settled.
func permanent(err error) (failureReason, bool) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "", false
	}
	if _, ok := errors.AsType[*holdfast.InvalidError](err); ok {
		return reasonInvalid, true
	}
	if pe, ok := errors.AsType[sqlStater](err); ok {
		if s := pe.SQLState(); len(s) == 5 {
			switch s[:2] {
			case "22":
				return reasonDataException, true
			case "23":
				return reasonConstraint, true
			case "54":
				return reasonLimit, true
			}
		}
		return "", false
	}
	if se, ok := errors.AsType[sqliteCoder](err); ok {
		switch se.Code() & 0xff {
		case sqliteTooBig, sqliteMismatch:
			return reasonDataException, true
		case sqliteConstraint:
			return reasonConstraint, true
		}
	}
	return "", false
}

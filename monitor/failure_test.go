package monitor

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/holdfast/holdfast"
)

type sqlStateError string

func (e sqlStateError) Error() string    { return "SQLSTATE " + string(e) }
func (e sqlStateError) SQLState() string { return string(e) }

type sqliteError int

func (e sqliteError) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e sqliteError) Code() int     { return int(e) }

func TestPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want failureReason // empty: transient
	}{
		{"nul byte", fmt.Errorf("save incident 3: %w", sqlStateError("22021")), reasonDataException},
		{"value too long", sqlStateError("22001"), reasonDataException},
		{"unique violation", sqlStateError("23505"), reasonConstraint},
		{"row too big", sqlStateError("54000"), reasonLimit},
		{"invalid", fmt.Errorf("change state: %w", holdfast.Invalidf("state", "unknown state %q", "x")), reasonInvalid},
		{"sqlite constraint unique", sqliteError(2067), reasonConstraint},
		{"sqlite too big", sqliteError(18), reasonDataException},
		{"connection failure", sqlStateError("08006"), ""},
		{"serialization failure", sqlStateError("40001"), ""},
		{"admin shutdown", sqlStateError("57P01"), ""},
		{"too many connections", sqlStateError("53300"), ""},
		{"sqlite busy", sqliteError(5), ""},
		{"timeout", fmt.Errorf("save incident 3: %w", context.DeadlineExceeded), ""},
		{"plain", errors.New("dial tcp: connection refused"), ""},
	}
	for _, tt := range tests {
		got, ok := permanent(tt.err)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: permanent(%v) = %q, %v; want %q", tt.name, tt.err, got, ok, tt.want)
		}
	}
}

package mailtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skip and Fatal instead of ending
// the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...) }

func TestUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		ci                  bool
		wantSkip, wantFatal bool
	}{
		{name: "developer machine skips", ci: false, wantSkip: true},
		{name: "CI fails", ci: true, wantFatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{TB: t}
			unavailable(r, errors.New("dovecot not found"), tt.ci)
			if got := r.skipped != ""; got != tt.wantSkip {
				t.Errorf("unavailable(ci=%v) skipped = %v, want %v", tt.ci, got, tt.wantSkip)
			}
			if got := r.failed != ""; got != tt.wantFatal {
				t.Errorf("unavailable(ci=%v) failed = %v, want %v", tt.ci, got, tt.wantFatal)
			}
			msg := r.skipped + r.failed
			for _, want := range []string{"dovecot not found", ".ci/install-mail-servers"} {
				if !strings.Contains(msg, want) {
					t.Errorf("unavailable message %q does not mention %q", msg, want)
				}
			}
		})
	}
}

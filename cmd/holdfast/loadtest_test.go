package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestLoadtestFlags: bad flags are refused before anything starts (the
// fleet itself runs in package loadtest's TestLoadtestSmall).
func TestLoadtestFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		code exitCode
		want string
	}{
		{[]string{"--kill", "1"}, 2, "want node@after"},
		{[]string{"--kill", "x@30s"}, 2, "want node@after"},
		{[]string{"--serve-env", "NOEQUALS"}, 2, "want NAME=VALUE"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"--nodes", "0"}, 2, "nodes must be at least 1"},
		{[]string{"--kill", "3@10s"}, 2, "kill node 3: there are only 3 nodes"},
		{[]string{"--kill", "1@3m", "--outage", "2m"}, 2, "after the outage"},
		{[]string{"--interval", "1m", "--steady", "1m"}, 2, "at least two intervals"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var out, errb strings.Builder
			err := run(context.Background(), append([]string{"loadtest"}, tt.args...), func(string) string { return "" }, strings.NewReader(""), &out, &errb)
			var ec exitCode
			switch {
			case err == nil:
				t.Fatal("loadtest ran")
			case !errors.As(err, &ec) || ec != tt.code:
				t.Fatalf("err = %v, want exit code %d", err, tt.code)
			case !strings.Contains(err.Error()+errb.String(), tt.want):
				t.Errorf("err = %v, stderr %q; want %q", err, errb.String(), tt.want)
			}
		})
	}
}

package graph_test

import (
	"strings"
	"testing"
)

func TestEmulatorAccount(t *testing.T) {
	t.Parallel()
	b := setupEmulator(t, emuOpts{})
	got, err := b.conn.Account(t.Context(), b.sess)
	if err != nil {
		t.Fatalf("Account: %v", err)
	}
	if !strings.EqualFold(got, user) {
		t.Errorf("Account = %q, want %q", got, user)
	}
}

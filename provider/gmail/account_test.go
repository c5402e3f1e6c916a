package gmail_test

import (
	"strings"
	"testing"
)

func TestAccount(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	got, err := b.conn.Account(t.Context(), b.sess)
	if err != nil {
		t.Fatalf("Account: %v", err)
	}
	if !strings.EqualFold(got, user) {
		t.Errorf("Account = %q, want %q", got, user)
	}
}

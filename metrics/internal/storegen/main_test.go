package main

import (
	"bytes"
	"os"
	"testing"
)

// TestStoreGenUpToDate fails when metrics/store_gen.go is not what
// storegen writes from package holdfast's Store today: a store method was
// added, removed or changed without go generate ./metrics.
func TestStoreGenUpToDate(t *testing.T) {
	t.Parallel()
	want, err := generate("../../..")
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	got, err := os.ReadFile("../../store_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("metrics/store_gen.go is stale; run go generate ./metrics")
	}
}

func TestSnake(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Inbox", "inbox"},
		{"SaveSync", "save_sync"},
		{"APIKeyByHash", "api_key_by_hash"},
		{"CreateAPIKey", "create_api_key"},
		{"TakeOAuthState", "take_oauth_state"},
		{"ReserveIDs", "reserve_ids"},
		{"SendByID", "send_by_id"},
		{"APIKey", "api_key"},
	}
	for _, tt := range tests {
		if got := snake(tt.in); got != tt.want {
			t.Errorf("snake(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

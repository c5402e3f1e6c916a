package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestAPIKeyCLI creates a read-only key with the CLI, lists it, uses it
// against a running service (reads pass, writes answer 403), revokes it
// with the CLI while the service runs, and sees it refused at once.
func TestAPIKeyCLI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	admin := e.createAPIKey("admin")
	out, errOut, err := e.run("apikey", "create", "--name", "auditor", "--scope", "read_only")
	if err != nil {
		t.Fatalf("apikey create --scope read_only: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	ro := lines[len(lines)-1]
	id := regexp.MustCompile(`id (key_[0-9a-z]+)`).FindStringSubmatch(out)
	if id == nil || !strings.Contains(out, "scope read_only") {
		t.Fatalf("apikey create said %q; want the ID and the scope", out)
	}

	out, errOut, err = e.run("apikey", "list")
	if err != nil {
		t.Fatalf("apikey list: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, id[1]) || !strings.Contains(out, "read_only") || !strings.Contains(out, "auditor") || strings.Contains(out, ro) {
		t.Errorf("apikey list =\n%s\nwant the key's ID, scope and name, never its secret", out)
	}

	s := e.serve()
	defer s.stop()
	if code, body := call(t, "GET", s.base+"/v1/inboxes", ro, nil); code != http.StatusOK {
		t.Errorf("read-only GET /v1/inboxes = %d %v; want 200", code, body)
	}
	if code, body := call(t, "POST", s.base+"/v1/incidents", ro, `{"provider":"google"}`); code != http.StatusForbidden {
		t.Errorf("read-only POST /v1/incidents = %d %v; want 403", code, body)
	}
	if code, body := call(t, "GET", s.base+"/v1/api-keys", ro, nil); code != http.StatusForbidden {
		t.Errorf("read-only GET /v1/api-keys = %d %v; want 403", code, body)
	}

	if out, errOut, err = e.run("apikey", "revoke", id[1]); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("apikey revoke = %q, %v\n%s", out, err, errOut)
	}
	if code, body := call(t, "GET", s.base+"/v1/inboxes", ro, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/inboxes with the revoked key = %d %v; want 401", code, body)
	}
	if code, body := call(t, "GET", s.base+"/v1/inboxes", admin, nil); code != http.StatusOK {
		t.Errorf("GET /v1/inboxes with the admin key = %d %v; want 200", code, body)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"apikey", "create", "--name", "x", "--scope", "root"}, "--scope"},
		{[]string{"apikey", "revoke"}, "usage: holdfast apikey revoke"},
		{[]string{"apikey", "revoke", "key_01jd00000000000000000000ab"}, "not found"},
		{[]string{"apikey", "frobnicate"}, "usage: holdfast apikey create"},
	} {
		_, stderr, err := e.run(tt.args...)
		if err == nil {
			t.Errorf("run(%q) = nil error, want one", tt.args)
		} else if msg := stderr + err.Error(); !strings.Contains(msg, tt.want) {
			t.Errorf("run(%q) said %q, want it to say %q", tt.args, msg, tt.want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// engine is a store engine the end-to-end tests run on.
type engine struct {
	name string
	// env returns the environment for a fresh, empty store.
	env func(t *testing.T) map[string]string
}

// sqliteEngine gives each test its own data directory.
var sqliteEngine = engine{name: "sqlite", env: func(t *testing.T) map[string]string {
	return map[string]string{"HOLDFAST_DATA_DIR": filepath.Join(t.TempDir(), "data")}
}}

// testEnv runs the program in-process against one store.
type testEnv struct {
	t   *testing.T
	env map[string]string
}

func newTestEnv(t *testing.T, e engine) *testEnv {
	t.Helper()
	env := e.env(t)
	env["HOLDFAST_LOG_LEVEL"] = "debug"
	// The test mail servers (Dovecot, Postfix, the fakes) listen on
	// 127.0.0.1, which is refused without --allow-private-mail-hosts.
	env["HOLDFAST_ALLOW_PRIVATE_MAIL_HOSTS"] = "true"
	return &testEnv{t: t, env: env}
}

func (e *testEnv) getenv(k string) string { return e.env[k] }

// run runs one subcommand to completion.
func (e *testEnv) run(args ...string) (stdout, stderr string, err error) {
	var out, errb syncBuffer
	err = run(context.Background(), args, e.getenv, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// createAPIKey runs `holdfast apikey create` and returns the key from the
// last line of its output.
func (e *testEnv) createAPIKey(name string) string {
	e.t.Helper()
	out, errOut, err := e.run("apikey", "create", "--name", name)
	if err != nil {
		e.t.Fatalf("apikey create: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	key := lines[len(lines)-1]
	if !strings.HasPrefix(key, "hf_") || strings.ContainsAny(key, " \t") {
		e.t.Fatalf("apikey create: last line %q is not a key alone", key)
	}
	return key
}

// server is a running `holdfast serve`.
type server struct {
	base string
	logs *syncBuffer
	stop func() error
}

// serve starts `holdfast serve` on a free port and waits until it is ready.
func (e *testEnv) serve() *server {
	e.t.Helper()
	addr := freeAddr(e.t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr}, e.getenv, strings.NewReader(""), io.Discard, logs)
	}()
	s := &server{base: "http://" + addr, logs: logs}
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(10 * time.Second):
				stopErr = errors.New("serve did not stop within 10 s")
			}
		})
		return stopErr
	}
	e.t.Cleanup(func() {
		if err := s.stop(); err != nil {
			e.t.Errorf("serve: %v\nlogs:\n%s", err, logs.String())
		}
	})
	waitReady(e.t, s.base, done, logs)
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, base string, done <-chan error, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\nlogs:\n%s", err, logs)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve not ready after 30 s\nlogs:\n%s", logs)
}

// call makes one API request and decodes the JSON answer into a map.
func call(t *testing.T, method, url, key string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %q", method, url, raw)
		}
	}
	return resp.StatusCode, m
}

// imapInbox is a valid IMAP inbox creation request.
func imapInbox(email, password string) map[string]any {
	return map[string]any{
		"provider": "imap", "email": email,
		"imap":     map[string]any{"host": "imap.example.org", "port": 993, "security": "tls"},
		"smtp":     map[string]any{"host": "smtp.example.org", "port": 587, "security": "starttls"},
		"username": email, "password": password,
	}
}

func TestServeInboxLifecycle(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, eng)
			key := e.createAPIKey("lifecycle-test")
			s := e.serve()
			const password = "Tr0ub4dor&3-never-in-clear"

			// No key, a wrong key: 401.
			if code, _ := call(t, "GET", s.base+"/v1/inboxes", "", nil); code != http.StatusUnauthorized {
				t.Errorf("GET /v1/inboxes without key = %d, want 401", code)
			}
			if code, body := call(t, "GET", s.base+"/v1/inboxes", "hf_wrong", nil); code != http.StatusUnauthorized || errCode(body) != "unauthorized" {
				t.Errorf("GET /v1/inboxes with a wrong key = %d %v, want 401 unauthorized", code, body)
			}

			// Connect.
			code, in := call(t, "POST", s.base+"/v1/inboxes", key, imapInbox("a@example.org", password))
			if code != http.StatusCreated {
				t.Fatalf("POST /v1/inboxes = %d %v, want 201", code, in)
			}
			id, _ := in["id"].(string)
			for field, want := range map[string]any{
				"email": "a@example.org", "provider": "imap", "state": "connecting",
				"action_required": "none", "reason": "created", "tenant": "imap.example.org",
			} {
				if in[field] != want {
					t.Errorf("created inbox %s = %v, want %v", field, in[field], want)
				}
			}
			for _, field := range []string{"id", "message", "since"} {
				if s, _ := in[field].(string); s == "" {
					t.Errorf("created inbox has no %s: %v", field, in)
				}
			}
			if _, ok := in["password"]; ok {
				t.Errorf("created inbox shows its password: %v", in)
			}

			// Connecting the same inbox again conflicts.
			if code, body := call(t, "POST", s.base+"/v1/inboxes", key, imapInbox("a@example.org", "x")); code != http.StatusConflict {
				t.Errorf("second POST of the same inbox = %d %v, want 409", code, body)
			}

			// Read, list, events. The inbox's first sync, against servers
			// that do not exist, may already have made it degraded.
			if code, got := call(t, "GET", s.base+"/v1/inboxes/"+id, key, nil); code != http.StatusOK || got["id"] != id || (got["state"] != "connecting" && got["state"] != "degraded") {
				t.Errorf("GET inbox = %d %v, want 200 with id %s, connecting or degraded", code, got, id)
			}
			code, list := call(t, "GET", s.base+"/v1/inboxes?provider=imap", key, nil)
			if data, _ := list["data"].([]any); code != http.StatusOK || len(data) != 1 || list["next_cursor"] != "" {
				t.Errorf("GET /v1/inboxes = %d %v, want one inbox and no next cursor", code, list)
			}
			code, list = call(t, "GET", s.base+"/v1/inboxes?state=paused", key, nil)
			if data, _ := list["data"].([]any); code != http.StatusOK || len(data) != 0 {
				t.Errorf("GET /v1/inboxes?state=paused = %d %v, want no inbox", code, list)
			}
			code, evs := call(t, "GET", s.base+"/v1/inboxes/"+id+"/events", key, nil)
			data, _ := evs["data"].([]any)
			if code != http.StatusOK || len(data) == 0 {
				t.Fatalf("GET events = %d %v, want the creation event first", code, evs)
			}
			if ev, _ := data[len(data)-1].(map[string]any); ev["new_state"] != "connecting" || ev["cause"] != "api" {
				t.Errorf("creation event = %v, want new_state connecting, cause api", ev)
			}

			// Delete, then 404.
			if code, body := call(t, "DELETE", s.base+"/v1/inboxes/"+id, key, nil); code != http.StatusNoContent {
				t.Errorf("DELETE inbox = %d %v, want 204", code, body)
			}
			if code, body := call(t, "GET", s.base+"/v1/inboxes/"+id, key, nil); code != http.StatusNotFound || errCode(body) != "not_found" {
				t.Errorf("GET deleted inbox = %d %v, want 404 not_found", code, body)
			}
			if code, _ := call(t, "DELETE", s.base+"/v1/inboxes/"+id, key, nil); code != http.StatusNotFound {
				t.Errorf("second DELETE = %d, want 404", code)
			}

			// Metrics are served.
			resp, err := http.Get(s.base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, series := range []string{"holdfast_http_requests_total", "holdfast_inboxes{", "holdfast_store_latency_seconds"} {
				if !strings.Contains(string(raw), series) {
					t.Errorf("/metrics lacks %s", series)
				}
			}

			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(s.logs.String(), password) {
				t.Errorf("the password appears in the logs")
			}
			if dir := e.env["HOLDFAST_DATA_DIR"]; eng.name == "sqlite" {
				assertNotInFiles(t, dir, password)
			}
		})
	}
}

// assertNotInFiles fails if secret appears in any file under dir.
func assertNotInFiles(t *testing.T, dir, secret string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s contains the password in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files under %s to check", dir)
	}
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func errField(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["field"].(string)
	return c
}

func TestServeRejectsBadInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	key := e.createAPIKey("bad-input-test")
	s := e.serve()

	bad := func(mut func(m map[string]any)) map[string]any {
		m := imapInbox("c@example.org", "pw")
		mut(m)
		return m
	}
	tests := []struct {
		name      string
		body      any
		wantCode  int
		wantField string
	}{
		{"wrong type", bad(func(m map[string]any) { m["email"] = 42 }), 400, "email"},
		{"unknown field", bad(func(m map[string]any) { m["colour"] = "blue" }), 400, "colour"},
		{"unknown nested field", bad(func(m map[string]any) { m["imap"].(map[string]any)["tls"] = true }), 400, "tls"},
		{"bad port", bad(func(m map[string]any) { m["imap"].(map[string]any)["port"] = 0 }), 400, "imap.port"},
		{"bad security", bad(func(m map[string]any) { m["smtp"].(map[string]any)["security"] = "ssl" }), 400, "smtp.security"},
		{"no password", bad(func(m map[string]any) { delete(m, "password") }), 400, "password"},
		{"bad email", bad(func(m map[string]any) { m["email"] = "Alice <a@example.org>" }), 400, "email"},
		{"bad owner email", bad(func(m map[string]any) { m["owner_email"] = "Alice <a@example.org>" }), 400, "owner_email"},
		{"owner email not an address", bad(func(m map[string]any) { m["owner_email"] = "alice" }), 400, "owner_email"},
		{"unknown provider", bad(func(m map[string]any) { m["provider"] = "aol" }), 400, "provider"},
		{"password for microsoft", map[string]any{"provider": "microsoft", "email": "b@contoso.com", "refresh_token": "rt", "password": "x"}, 400, "password"},
		{"no refresh token", map[string]any{"provider": "google", "email": "b@gmail.com"}, 400, "refresh_token"},
		{"malformed", `{"provider": "imap",`, 400, ""},
		{"two values", `{} {}`, 400, ""},
		{"not an object", `[1,2]`, 400, ""},
		{"too large", `{"provider":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, "POST", s.base+"/v1/inboxes", key, tt.body)
			if code != tt.wantCode || errField(body) != tt.wantField {
				t.Errorf("POST %s = %d %v, want %d naming field %q", tt.name, code, body, tt.wantCode, tt.wantField)
			}
			if e, _ := body["error"].(map[string]any); e["message"] == "" || e["message"] == nil {
				t.Errorf("POST %s: error without message: %v", tt.name, body)
			}
		})
	}
	for _, q := range []string{"state=bogus", "provider=aol", "limit=0", "limit=x", "cursor=nope"} {
		if code, body := call(t, "GET", s.base+"/v1/inboxes?"+q, key, nil); code != 400 || errField(body) != strings.Split(q, "=")[0] {
			t.Errorf("GET /v1/inboxes?%s = %d %v, want 400 naming %s", q, code, body, strings.Split(q, "=")[0])
		}
	}
	// Nothing was stored by the bad requests.
	if _, list := call(t, "GET", s.base+"/v1/inboxes", key, nil); len(list["data"].([]any)) != 0 {
		t.Errorf("bad requests stored inboxes: %v", list)
	}
}

// TestServeInboxOwner: an inbox's owner_email is set on POST /v1/inboxes,
// shown with the inbox, changed and cleared with PATCH /v1/inboxes/{id},
// and bad input to PATCH names the field.
func TestServeInboxOwner(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	key := e.createAPIKey("owner-test")
	s := e.serve()

	body := imapInbox("work@example.org", "pw")
	body["owner_email"] = " ann@Example.ORG "
	code, in := call(t, "POST", s.base+"/v1/inboxes", key, body)
	if code != http.StatusCreated || in["owner_email"] != "ann@example.org" {
		t.Fatalf("POST /v1/inboxes with owner_email = %d %v, want 201 owned by ann@example.org", code, in)
	}
	id, _ := in["id"].(string)
	if code, in := call(t, "POST", s.base+"/v1/inboxes", key, imapInbox("other@example.org", "pw")); code != http.StatusCreated || in["owner_email"] != "" {
		t.Errorf("POST /v1/inboxes without owner_email = %d %v, want 201 with owner_email \"\"", code, in)
	}
	tests := []struct {
		name      string
		id        string
		body      any
		wantCode  int
		wantOwner string // the owner_email answered and then read
		wantField string
	}{
		{"change", id, map[string]any{"owner_email": "bob@example.org"}, 200, "bob@example.org", ""},
		{"clear", id, map[string]any{"owner_email": ""}, 200, "", ""},
		{"set again", id, map[string]any{"owner_email": "ann@example.org"}, 200, "ann@example.org", ""},
		{"bad address", id, map[string]any{"owner_email": "Ann <ann@example.org>"}, 400, "ann@example.org", "owner_email"},
		{"missing", id, map[string]any{}, 400, "ann@example.org", "owner_email"},
		{"other field", id, map[string]any{"email": "x@example.org"}, 400, "ann@example.org", "email"},
		{"unknown inbox", "inb_00000000000000000000000000", map[string]any{"owner_email": "ann@example.org"}, 404, "ann@example.org", ""},
	}
	for _, tt := range tests {
		code, got := call(t, "PATCH", s.base+"/v1/inboxes/"+tt.id, key, tt.body)
		if code != tt.wantCode || errField(got) != tt.wantField {
			t.Errorf("PATCH %s = %d %v, want %d naming field %q", tt.name, code, got, tt.wantCode, tt.wantField)
		}
		if code == http.StatusOK && got["owner_email"] != tt.wantOwner {
			t.Errorf("PATCH %s answered owner_email %v, want %q", tt.name, got["owner_email"], tt.wantOwner)
		}
		if _, read := call(t, "GET", s.base+"/v1/inboxes/"+id, key, nil); read["owner_email"] != tt.wantOwner {
			t.Errorf("after PATCH %s, owner_email = %v, want %q", tt.name, read["owner_email"], tt.wantOwner)
		}
	}
}

func TestServePaging(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	key := e.createAPIKey("paging-test")
	s := e.serve()
	want := map[string]bool{}
	for i := range 7 {
		code, in := call(t, "POST", s.base+"/v1/inboxes", key, imapInbox(fmt.Sprintf("p%d@example.org", i), "pw"))
		if code != http.StatusCreated {
			t.Fatalf("POST = %d %v", code, in)
		}
		want[in["id"].(string)] = true
	}
	seen := map[string]bool{}
	cursor, prev, pages := "", "", 0
	for {
		code, page := call(t, "GET", s.base+"/v1/inboxes?limit=3&cursor="+cursor, key, nil)
		if code != http.StatusOK {
			t.Fatalf("GET page = %d %v", code, page)
		}
		pages++
		for _, d := range page["data"].([]any) {
			id := d.(map[string]any)["id"].(string)
			if seen[id] || id <= prev {
				t.Errorf("page %d: %s repeated or out of order", pages, id)
			}
			seen[id], prev = true, id
		}
		cursor = page["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	if pages != 3 || len(seen) != len(want) {
		t.Errorf("paged %d pages and %d inboxes, want 3 pages and %d inboxes", pages, len(seen), len(want))
	}
}

func TestKeysRotate(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	e.env["HOLDFAST_ALLOW_PRIVATE_WEBHOOKS"] = "true"
	key := e.createAPIKey("rotate-test")
	s := e.serve()
	if code, body := call(t, "POST", s.base+"/v1/webhooks", key, map[string]any{
		"url": "http://127.0.0.1:9/hook", "events": []string{"*"},
	}); code != http.StatusCreated {
		t.Fatalf("POST webhook = %d %v", code, body)
	}
	for i := range 3 {
		if code, body := call(t, "POST", s.base+"/v1/inboxes", key, imapInbox(fmt.Sprintf("r%d@example.org", i), "pw")); code != http.StatusCreated {
			t.Fatalf("POST = %d %v", code, body)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := e.run("keys", "rotate")
	if err != nil || !strings.Contains(out, "3 inboxes scanned, 3 re-encrypted") || !strings.Contains(out, "1 webhooks scanned, 1 re-encrypted") {
		t.Fatalf("first keys rotate = %q, %v; stderr:\n%s", out, err, errOut)
	}
	out, errOut, err = e.run("keys", "rotate")
	if err != nil || !strings.Contains(out, "3 inboxes scanned, 3 re-encrypted") || !strings.Contains(out, "1 webhooks scanned, 1 re-encrypted") {
		t.Fatalf("second keys rotate (a new key again) = %q, %v; stderr:\n%s", out, err, errOut)
	}
	keys, err := os.ReadFile(filepath.Join(e.env["HOLDFAST_DATA_DIR"], "secret.keys"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(keys), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("key file holds %d keys after two rotations, want 3", n)
	}
	// The service still starts and serves the inboxes.
	s = e.serve()
	if _, list := call(t, "GET", s.base+"/v1/inboxes", key, nil); len(list["data"].([]any)) != 3 {
		t.Errorf("inboxes after rotation: %v", list)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	tests := []struct {
		args []string
		want string
	}{
		{nil, "usage: holdfast"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"apikey"}, "usage: holdfast apikey create"},
		{[]string{"apikey", "create"}, "--name"},
		{[]string{"serve", "--log-format", "xml"}, "--log-format"},
		{[]string{"migrate", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		_, stderr, err := e.run(tt.args...)
		if err == nil {
			t.Errorf("run(%q) = nil error, want one", tt.args)
			continue
		}
		if msg := stderr + err.Error(); !strings.Contains(msg, tt.want) {
			t.Errorf("run(%q) said %q, want it to say %q", tt.args, msg, tt.want)
		}
	}
}

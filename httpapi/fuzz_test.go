package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/monitor"
)

// recordingHealth accepts every declaration, resolution and release, and
// records them: they are part of what a rejected request must not change.
type recordingHealth struct {
	mu       sync.Mutex
	declared []monitor.Declaration
	resolved []int64
}

func (h *recordingHealth) Declare(_ context.Context, d monitor.Declaration) (*holdfast.Incident, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.declared = append(h.declared, d)
	return &holdfast.Incident{ID: int64(len(h.declared)), Kind: "declared", Provider: d.Provider, Tenant: d.Tenant, OpenedAt: t0}, nil
}

func (h *recordingHealth) Resolve(_ context.Context, id int64) (*holdfast.Incident, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resolved = append(h.resolved, id)
	return nil, holdfast.ErrNotFound
}
func (h *recordingHealth) Release(context.Context, int64) error { return holdfast.ErrNotFound }
func (h *recordingHealth) AddInbox(*holdfast.Inbox) error       { return nil }
func (h *recordingHealth) RemoveInbox(string)                   {}

// fuzzRoute is one way into the API that takes client input.
type fuzzRoute struct {
	method, path string // {inbox} and {token} are filled in
	form         bool   // the body is a form, not JSON
}

// fuzzRoutes are the routes the fuzz target drives: every /v1 body, the
// list routes' query parameters and the status page's form.
var fuzzRoutes = []fuzzRoute{
	{"POST", "/v1/inboxes", false},
	{"PATCH", "/v1/inboxes/{inbox}", false},
	{"POST", "/v1/inboxes/{inbox}/send", false},
	{"POST", "/v1/incidents", false},
	{"POST", "/v1/webhooks", false},
	{"GET", "/v1/inboxes", false},
	{"GET", "/v1/incidents", false},
	{"GET", "/v1/held-actions", false},
	{"GET", "/v1/inboxes/{inbox}/messages", false},
	{"GET", "/v1/inboxes/{inbox}/events", false},
	{"POST", "/v1/incidents/1/resolve", false},
	{"POST", "/status/{token}/imap/{inbox}", true},
}

// apiSnapshot is everything the fuzzed routes could change (an inbox's
// sealed credentials included).
type apiSnapshot struct {
	Inboxes   []*holdfast.Inbox
	Incidents []*holdfast.Incident
	Sends     []*holdfast.Send
	Webhooks  []*holdfast.Webhook
	Declared  []monitor.Declaration
	Reconnect []string
}

func snapshot(t *testing.T, b *statusBundle, h *recordingHealth) string {
	t.Helper()
	ctx := context.Background()
	var s apiSnapshot
	var err error
	if s.Inboxes, err = b.store.Inboxes(ctx, holdfast.InboxFilter{Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	if s.Incidents, err = b.store.Incidents(ctx, false, 1000); err != nil {
		t.Fatal(err)
	}
	all := []holdfast.SendState{holdfast.SendScheduled, holdfast.SendHeld, holdfast.SendSending, holdfast.SendSent, holdfast.SendFailed, holdfast.SendCancelled}
	if s.Sends, err = b.store.DueSends(ctx, all, t0.AddDate(2, 0, 0), 1000); err != nil {
		t.Fatal(err)
	}
	if s.Webhooks, err = b.store.Webhooks(ctx); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	s.Declared = append(s.Declared, h.declared...)
	h.mu.Unlock()
	// Sealing is not storing: an inbox's credentials are in Inboxes.
	b.mu.Lock()
	s.Reconnect = append(s.Reconnect, b.reconnected...)
	b.mu.Unlock()
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// wholeBody reports whether a 400 without a field is about the body as a
// whole: it is not one JSON object.
func wholeBody(body []byte) bool {
	var v map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&v) != nil || v == nil {
		return true
	}
	return len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 // trailing data
}

// FuzzAPI drives the API's input path with arbitrary bodies and query
// strings (issue 12, point 13): no request panics or fails inside (5xx);
// no NUL character reaches the store; every 400 names the field, unless
// the body is not one JSON object; and a request answered 4xx changes
// nothing stored.
func FuzzAPI(f *testing.F) {
	inbox := holdfast.NewID("inb", t0)
	for _, seed := range []struct {
		route       int
		query, body string
	}{
		{0, "", imapInbox("imap.example.org", "smtp.example.org", "u", "pw")},
		{0, "", `{"provider":"google","email":"g@example.org","refresh_token":"r"}`},
		{0, "", imapInbox("127.0.0.1", "smtp.example.org", "u", "pw")},
		{0, "", imapInbox("imap.example.org", "smtp.example.org", "u\u0000", "pw")},
		{0, "", `{"provider":"imap","imap":{"host":"h","port":99999}}`},
		{1, "", `{"owner_email":"o@example.org"}`},
		{1, "", `{"owner_email":"o\u0000@example.org"}`},
		{1, "", `{"owner_email":null}`},
		{2, "", `{"to":["x@example.org"],"subject":"hi","text":"t"}`},
		{2, "", `{"to":["x@example.org"],"text":"t","send_at":"2026-11-02T10:00:00Z","idempotency_key":"k"}`},
		{2, "", "{\"to\":[\"x@example.org\",\"\xff\"],\"text\":\"t\"}"},
		{2, "", `{"to":[1],"cc":{},"text":true}`},
		{3, "", `{"provider":"google","note":"a\u0000b"}`},
		{3, "", `{"provider":"microsoft","tenant":"contoso.com","start":"2026-11-02T08:00:00Z","end":"2026-11-02T08:30:00Z"}`},
		{3, "", `{"provider":"google"}{"provider":"google"}`},
		{4, "", `{"url":"https://93.184.215.14/hooks","events":["inbox.state_changed"]}`},
		{4, "", `{"url":"http://169.254.169.254/","secret":"s"}`},
		{5, "limit=5&cursor=inb_x", ""},
		{5, "cursor=%00", ""},
		{6, "state=open&order=desc", ""},
		{6, "state=%ff", ""},
		{7, "cursor=abc", ""},
		{8, "limit=0", ""},
		{9, "cursor=%c3%28", ""},
		{10, "", ""},
		{11, "", "password=n3w"},
		{11, "", "password=a%00b"},
		{11, "", "password=%ff&extra=1"},
		{0, "", ``},
		{0, "", `[]`},
		{0, "", `{"provider":"imap","email":"a@example.org","imap":{"host":"imap.example.org","port":993,"security":"tls","extra":1}}`},
	} {
		f.Add(uint8(seed.route), seed.query, []byte(seed.body))
	}
	h := &recordingHealth{}
	b := setupServer(f, "", nil, h)
	key := b.apiKey(f)
	b.inbox(f, inbox, "owner@example.test", holdfast.ProviderIMAP, holdfast.StateNeedsReconnect)
	token := b.links.Sign("owner@example.test", t0.Add(time.Hour))
	handler := b.srv.Config.Handler
	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := strings.NewReplacer("{inbox}", inbox, "{token}", token).Replace(rt.path)
		req, err := http.NewRequest(rt.method, "http://holdfast.test"+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+key)
		if rt.form {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Body = nopCloser{strings.NewReader("form_token=" + b.links.FormToken(token, inbox, "imap") + "&" + string(body))}
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
		before := snapshot(t, b, h)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		code := w.Code
		if code >= 500 {
			t.Fatalf("%s %s?%s %q = %d; want no failure inside:\n%s", rt.method, path, query, body, code, w.Body)
		}
		after := snapshot(t, b, h)
		if strings.Contains(after, `\u0000`) {
			t.Fatalf("%s %s?%s %q = %d, and a NUL character reached the store (PostgreSQL cannot keep one):\n%s", rt.method, path, query, body, code, after)
		}
		if code < 400 && !(rt.form && strings.Contains(w.Header().Get("Location"), "done=bad")) {
			return
		}
		if after != before {
			t.Fatalf("%s %s?%s %q = %d, but the stored data changed:\nbefore %s\nafter  %s", rt.method, path, query, body, code, before, after)
		}
		if code != http.StatusBadRequest {
			return
		}
		if rt.form {
			if !strings.Contains(w.Body.String(), ": ") {
				t.Fatalf("POST %s %q = 400 without naming the field:\n%s", path, body, w.Body)
			}
			return
		}
		var e struct {
			Error struct{ Field, Message string }
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("%s %s = 400 with a body that is not the API's error: %v\n%s", rt.method, path, err, w.Body)
		}
		if e.Error.Field == "" && (query != "" && rt.method == "GET" || rt.method != "GET" && !wholeBody(body)) {
			t.Fatalf("%s %s?%s %q = 400 %q without naming the field", rt.method, path, query, body, e.Error.Message)
		}
	})
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

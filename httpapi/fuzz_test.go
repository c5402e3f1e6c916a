package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/httpapi"
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
	method, path string // {inbox}, {token} and {webhook} are filled in
	form         bool   // the body is a form, not JSON
	// page is set for a route that answers a person's browser with a
	// page, not the API's JSON error.
	page bool
}

// fuzzRoutes are the routes the fuzz target drives: every /v1 body, the
// list routes' query parameters, the consent flow's and the status
// page's form. New routes go at the end, so that the committed corpus
// keeps driving the routes it was found on.
var fuzzRoutes = []fuzzRoute{
	{"POST", "/v1/inboxes", false, false},
	{"PATCH", "/v1/inboxes/{inbox}", false, false},
	{"POST", "/v1/inboxes/{inbox}/send", false, false},
	{"POST", "/v1/incidents", false, false},
	{"POST", "/v1/webhooks", false, false},
	{"GET", "/v1/inboxes", false, false},
	{"GET", "/v1/incidents", false, false},
	{"GET", "/v1/held-actions", false, false},
	{"GET", "/v1/inboxes/{inbox}/messages", false, false},
	{"GET", "/v1/inboxes/{inbox}/events", false, false},
	{"POST", "/v1/incidents/1/resolve", false, false},
	{"POST", "/status/{token}/imap/{inbox}", true, false},
	{"POST", "/v1/api-keys", false, false},
	{"GET", "/v1/webhooks/{webhook}/deliveries", false, false},
	{"GET", "/v1/connect/microsoft", false, false},
	{"GET", "/oauth/callback", false, true},
}

// apiSnapshot is everything the fuzzed routes could change (an inbox's
// sealed credentials included).
type apiSnapshot struct {
	Inboxes   []*holdfast.Inbox
	Incidents []*holdfast.Incident
	Sends     []*holdfast.Send
	Webhooks  []*holdfast.Webhook
	APIKeys   []*holdfast.APIKey
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
	if s.APIKeys, err = b.store.APIKeys(ctx); err != nil {
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
	// Marshal would write invalid UTF-8 as U+FFFD: look at the strings
	// themselves.
	if bad, where := badText(reflect.ValueOf(s), "snapshot"); bad {
		t.Fatalf("stored text at %s is not valid UTF-8 or holds a NUL (PostgreSQL cannot keep it): %s", where, out)
	}
	return string(out)
}

// badText reports whether a string reachable from v is invalid UTF-8 or
// holds a NUL, and where.
func badText(v reflect.Value, path string) (bool, string) {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		return !utf8.ValidString(s) || strings.ContainsRune(s, 0), path
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return false, ""
		}
		return badText(v.Elem(), path)
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return false, "" // bytes (sealed credentials) are not text
		}
		for i := range v.Len() {
			if bad, where := badText(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); bad {
				return true, where
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if bad, where := badText(v.Field(i), path+"."+v.Type().Field(i).Name); bad {
				return true, where
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if bad, where := badText(it.Value(), fmt.Sprintf("%s[%v]", path, it.Key())); bad {
				return true, where
			}
		}
	}
	return false, ""
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
		{12, "", `{"name":"ci","scope":"read_only"}`},
		{12, "", `{"name":"a\u0000b","scope":"full"}`},
		{12, "", "{\"name\":\"\xff\",\"scope\":\"send\"}"},
		{12, "", `{"name":"x","scope":"root"}`},
		{13, "cursor=%00&limit=5", ""},
		{13, "limit=-1", ""},
		{14, "email=a@example.org&redirect_uri=https://app.example.org/done", ""},
		{14, "email=a%00@example.org&redirect_uri=https://app.example.org/done", ""},
		{14, "email=a@example.org&redirect_uri=%ff", ""},
		{15, "state=abc&code=xyz", ""},
		{15, "state=%00&code=%ff", ""},
		{15, "error=access_denied&error_description=%c3%28", ""},
	} {
		f.Add(uint8(seed.route), seed.query, []byte(seed.body))
	}
	h := &recordingHealth{}
	b := setupServerConnect(f, "", nil, h, &httpapi.ConnectConfig{
		Providers: map[holdfast.Provider]httpapi.OAuthProvider{holdfast.ProviderMicrosoft: fakeOAuth{}},
		Health:    fakeReconnector{},
	})
	key := b.apiKey(f)
	b.inbox(f, inbox, "owner@example.test", holdfast.ProviderIMAP, holdfast.StateNeedsReconnect)
	hook := holdfast.NewID("whk", t0)
	if err := b.store.CreateWebhook(f.Context(), &holdfast.Webhook{ID: hook, URL: "https://hooks.example.org/h", Events: []string{"*"}, Secret: []byte("sealed"), CreatedAt: t0}); err != nil {
		f.Fatal(err)
	}
	token := b.links.Sign("owner@example.test", t0.Add(time.Hour))
	handler := b.srv.Config.Handler
	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := strings.NewReplacer("{inbox}", inbox, "{token}", token, "{webhook}", hook).Replace(rt.path)
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
		if code < 400 && !(rt.form && strings.Contains(w.Header().Get("Location"), "done=bad")) {
			return
		}
		if after != before {
			t.Fatalf("%s %s?%s %q = %d, but the stored data changed:\nbefore %s\nafter  %s", rt.method, path, query, body, code, before, after)
		}
		if code != http.StatusBadRequest {
			return
		}
		if rt.form || rt.page {
			// A page names the field ("code: is not valid UTF-8 text"), or
			// says that the sign-in link (its state) is not valid.
			if msg := w.Body.String(); !strings.Contains(msg, ": ") && !(rt.page && strings.Contains(msg, "sign-in link")) {
				t.Fatalf("%s %s?%s %q = 400 without naming the field:\n%s", rt.method, path, query, body, msg)
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

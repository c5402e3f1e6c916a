package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

// apiKey stores a new API key and returns it.
func (b *statusBundle) apiKey(t testing.TB) string {
	t.Helper()
	key, rec := holdfast.NewAPIKey("test", t0)
	if err := b.store.CreateAPIKey(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	return key
}

// call sends one API request with a raw body and returns the status and
// the error's field and message, when the answer is an error.
func (b *statusBundle) call(t *testing.T, key, method, path, body string) (code int, field, message string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Field, Message string }
	}
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Error.Field, e.Error.Message
}

// imapInbox is a POST /v1/inboxes body for an IMAP inbox, with the given
// IMAP and SMTP hosts, username and password.
func imapInbox(imapHost, smtpHost, username, password string) string {
	b, _ := json.Marshal(map[string]any{
		"provider": "imap", "email": "a@example.org", "username": username, "password": password,
		"imap": map[string]any{"host": imapHost, "port": 993, "security": "tls"},
		"smtp": map[string]any{"host": smtpHost, "port": 587, "security": "starttls"},
	})
	return string(b)
}

// TestTextRejectedAtTheEdge shows every text field checked where it enters
// (issue 12, point 2): a NUL byte, invalid UTF-8 or an over-long string in
// any JSON field or query parameter is a 400 naming the field, and nothing
// is stored.
func TestTextRejectedAtTheEdge(t *testing.T) {
	t.Parallel()
	b := setupStatus(t, "")
	key := b.apiKey(t)
	inboxID := holdfast.NewID("inb", t0)
	b.inbox(t, inboxID, "owner@example.test", holdfast.ProviderIMAP, holdfast.StateConnected)
	send := "/v1/inboxes/" + inboxID + "/send"
	tests := []struct {
		name, method, path, body, field string
	}{
		{"NULInNote", "POST", "/v1/incidents", `{"provider":"google","note":"a\u0000b"}`, "note"},
		{"InvalidUTF8InNote", "POST", "/v1/incidents", "{\"provider\":\"google\",\"note\":\"a\xffb\"}", "note"},
		{"NULInAKey", "POST", "/v1/incidents", `{"provider":"google","a\u0000":1}`, `"a\x00"`},
		{"EmptyKey", "POST", "/v1/incidents", `{"provider":"google","":"\u0000"}`, `""`},
		{"LongTenant", "POST", "/v1/incidents", `{"provider":"google","tenant":"` + strings.Repeat("t", 5000) + `"}`, "tenant"},
		{"NULInUsername", "POST", "/v1/inboxes", imapInbox("imap.example.org", "smtp.example.org", "u\x00", "pw"), "username"},
		{"NULInPassword", "POST", "/v1/inboxes", imapInbox("imap.example.org", "smtp.example.org", "u", "p\x00w"), "password"},
		{"InvalidUTF8InHost", "POST", "/v1/inboxes", strings.Replace(imapInbox("imap.example.org", "smtp.example.org", "u", "pw"), "imap.example", "imap\xfe.example", 1), "imap.host"},
		{"NULInOwner", "PATCH", "/v1/inboxes/" + inboxID, `{"owner_email":"o\u0000@example.org"}`, "owner_email"},
		{"NULInSubject", "POST", send, `{"to":["x@example.org"],"subject":"hi\u0000","text":"t"}`, "subject"},
		{"InvalidUTF8InText", "POST", send, "{\"to\":[\"x@example.org\"],\"text\":\"\xc3\x28\"}", "text"},
		{"InvalidUTF8InRecipient", "POST", send, "{\"to\":[\"x@example.org\",\"y\xff@example.org\"],\"text\":\"t\"}", "to[1]"},
		{"NULInIdempotencyKey", "POST", send, `{"to":["x@example.org"],"text":"t","idempotency_key":"k\u0000"}`, "idempotency_key"},
		{"NULInQuery", "GET", "/v1/inboxes?cursor=" + url.QueryEscape("a\x00"), "", "cursor"},
		{"InvalidUTF8InQuery", "GET", "/v1/incidents?state=%ff", "", "state"},
	}
	for _, tt := range tests {
		code, field, msg := b.call(t, key, tt.method, tt.path, tt.body)
		if code != http.StatusBadRequest || field != tt.field {
			t.Errorf("%s: %s %s = %d, field %q (%s); want 400 naming %q", tt.name, tt.method, tt.path, code, field, msg, tt.field)
		}
	}
	ins, err := b.store.Inboxes(t.Context(), holdfast.InboxFilter{})
	if err != nil || len(ins) != 1 {
		t.Errorf("inboxes after rejected requests = %d, %v; want only the one made by the test", len(ins), err)
	}
	if snds, err := b.store.DueSends(t.Context(), nil, t0.Add(24*time.Hour), 10); err != nil || len(snds) != 0 {
		t.Errorf("sends after rejected requests = %d, %v; want none", len(snds), err)
	}
}

// TestMailHostRefused shows the mail hosts of POST /v1/inboxes checked
// against the internal ranges (issue 12, point 9): a 400 naming the field,
// which does not say what a name resolves to.
func TestMailHostRefused(t *testing.T) {
	t.Parallel()
	b := setupStatus(t, "")
	key := b.apiKey(t)
	for _, host := range []string{
		"127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.20", "169.254.169.254", "100.64.0.1", "0.0.0.0",
		"::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "fd00::1", "fe80::1",
		"2002:7f00:1::1",                       // 6to4 around 127.0.0.1
		"2002:a9fe:a9fe::1",                    // 6to4 around 169.254.169.254
		"2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo around 127.0.0.1
		"2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo around 10.0.0.1
		"64:ff9b::a00:1",                       // NAT64 around 10.0.0.1
		"localhost",
	} {
		for _, field := range []string{"imap.host", "smtp.host"} {
			imapHost, smtpHost := host, "smtp.example.org"
			if field == "smtp.host" {
				imapHost, smtpHost = "imap.example.org", host
			}
			code, got, msg := b.call(t, key, "POST", "/v1/inboxes", imapInbox(imapHost, smtpHost, "u", "pw"))
			if code != http.StatusBadRequest || got != field {
				t.Errorf("POST /v1/inboxes with %s %s = %d, field %q (%s); want 400 naming %s", field, host, code, got, msg, field)
			}
			if host == "localhost" && (strings.Contains(msg, "127.") || strings.Contains(msg, "::1")) {
				t.Errorf("refusal of localhost = %q; it tells what the name resolves to", msg)
			}
		}
	}
	ins, err := b.store.Inboxes(t.Context(), holdfast.InboxFilter{})
	if err != nil || len(ins) != 0 {
		t.Errorf("inboxes after refused hosts = %d, %v; want none", len(ins), err)
	}
}

// TestStatusFormTextRejected shows the status page's form checked at the
// edge (issue 12, point 2): a password with a NUL byte is a 400 naming
// the field, and nothing is stored.
func TestStatusFormTextRejected(t *testing.T) {
	t.Parallel()
	b := setupStatus(t, "")
	b.inbox(t, "inb_imap", "owner@example.test", holdfast.ProviderIMAP, holdfast.StateNeedsReconnect)
	tok := b.links.Sign("owner@example.test", t0.Add(time.Hour))
	for _, pw := range []string{"a\x00b", "a\xffb"} {
		resp, err := client.PostForm(b.srv.URL+"/status/"+tok+"/imap/inb_imap",
			url.Values{"form_token": {b.links.FormToken(tok, "inb_imap", "imap")}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "password") {
			t.Errorf("POST password %q = %d, want 400 naming the password:\n%.400s", pw, resp.StatusCode, body)
		}
	}
	if len(b.sealed)+len(b.reconnected) != 0 {
		t.Errorf("a rejected form stored %v and reconnected %v", b.sealed, b.reconnected)
	}
}

// TestStatusPasswordVerified shows a password typed on the status page
// checked before the inbox is called connected (issue 12, point 10): a
// wrong one is said to be wrong and changes nothing; a right one is
// stored and the inbox goes back through the engine.
func TestStatusPasswordVerified(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		tried []string
	)
	verify := func(_ context.Context, in *holdfast.Inbox, pw string) error {
		mu.Lock()
		defer mu.Unlock()
		tried = append(tried, in.ID+":"+pw)
		if pw != "right" {
			return &holdfast.ProviderError{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonPasswordChanged, Action: holdfast.ActionReconnect,
				UserMessage: "The mail server rejected the user name or password.", Err: errors.New("imap login: NO [AUTHENTICATIONFAILED]")}
		}
		return nil
	}
	b := setupStatusVerify(t, "", verify)
	b.inbox(t, "inb_imap", "owner@example.test", holdfast.ProviderIMAP, holdfast.StateNeedsReconnect)
	tok := b.links.Sign("owner@example.test", t0.Add(time.Hour))
	post := func(pw string) (int, string, string) {
		t.Helper()
		resp, err := client.PostForm(b.srv.URL+"/status/"+tok+"/imap/inb_imap",
			url.Values{"form_token": {b.links.FormToken(tok, "inb_imap", "imap")}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(body)
	}
	code, _, body := post("wrong")
	if code != http.StatusBadRequest || !strings.Contains(body, "did not accept") || !strings.Contains(body, "rejected the user name or password") ||
		strings.Contains(body, "AUTHENTICATIONFAILED") {
		t.Errorf("wrong password = %d; want 400 saying the server did not accept it, without the server's reply:\n%.600s", code, body)
	}
	if len(b.sealed)+len(b.reconnected) != 0 {
		t.Errorf("a wrong password stored %v and reconnected %v", b.sealed, b.reconnected)
	}
	if in, err := b.store.Inbox(t.Context(), "inb_imap"); err != nil || in.State != holdfast.StateNeedsReconnect || string(in.Credentials) != "x" {
		t.Errorf("inbox after a wrong password = %v, %q, %v; want needs_reconnect with its old credentials", in.State, in.Credentials, err)
	}
	code, loc, _ := post("right")
	if code != http.StatusSeeOther || loc != "/status/"+tok+"?done=verified" {
		t.Errorf("right password = %d to %q; want 303 to ?done=verified", code, loc)
	}
	if _, page := get(t, b.srv.URL+loc); !strings.Contains(page, "the new password works") {
		t.Errorf("page after a right password does not say it works:\n%.600s", page)
	}
	if b.sealed["inb_imap"] != "right" || len(b.reconnected) != 1 {
		t.Errorf("right password: sealed %v, reconnected %v; want it stored and the inbox reconnected", b.sealed, b.reconnected)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"inb_imap:wrong", "inb_imap:right"}; strings.Join(tried, ",") != strings.Join(want, ",") {
		t.Errorf("verified %v; want %v", tried, want)
	}
}

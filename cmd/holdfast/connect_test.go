package main

import (
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
	"github.com/holdfast/holdfast/provider/graph"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/store/postgres"
	"github.com/holdfast/holdfast/store/sqlite"
)

// noRedirects is a client that does not follow redirects, as a test stands
// in for the user's browser one hop at a time.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// hop makes one browser request and returns the status and Location.
func hop(t *testing.T, u string) (int, *url.URL, string) {
	t.Helper()
	resp, err := noRedirects.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	loc, _ := resp.Location()
	return resp.StatusCode, loc, string(body)
}

// consentEnv is a serve connected to an emulator with both providers'
// client credentials.
type consentEnv struct {
	t    *testing.T
	emu  *emulator.Emulator
	urls emulator.URLs
	env  *testEnv
	srv  *server
	key  string
	host string // the host application's page
}

// newConsentEnv starts the emulator and serve. Serve syncs an inbox when it
// is connected and when it is reconnected, and otherwise only once an
// hour, so that the test knows which syncs ran.
func newConsentEnv(t *testing.T, eng engine) *consentEnv {
	t.Helper()
	emu, urls := emulatortest.Start(t)
	e := newTestEnv(t, eng)
	maps.Copy(e.env, urls.Env())
	maps.Copy(e.env, map[string]string{
		"HOLDFAST_MICROSOFT_CLIENT_ID": emulator.DefaultClientID, "HOLDFAST_MICROSOFT_CLIENT_SECRET": emulator.DefaultClientSecret,
		"HOLDFAST_GOOGLE_CLIENT_ID": emulator.DefaultClientID, "HOLDFAST_GOOGLE_CLIENT_SECRET": emulator.DefaultClientSecret,
		"HOLDFAST_SYNC_INTERVAL": "1h",
	})
	key := e.createAPIKey("consent-test")
	return &consentEnv{t: t, emu: emu, urls: urls, env: e, srv: e.serve(), key: key, host: "https://app.example.test/inboxes/done?tab=mail"}
}

// testStore is serve's store, opened by the test next to serve.
type testStore interface {
	holdfast.Store
	Close() error
}

// openStore opens the store serve runs on, closed at the end of the test.
func (c *consentEnv) openStore() testStore { return c.env.openStore() }

// openStore opens the store e's serve runs on, beside it, closed at the
// end of the test.
func (e *testEnv) openStore() testStore {
	e.t.Helper()
	var st testStore
	var err error
	if u := e.env["HOLDFAST_DATABASE_URL"]; u != "" {
		st, err = postgres.Open(e.t.Context(), u)
	} else {
		st, err = sqlite.Open(e.t.Context(), filepath.Join(e.env["HOLDFAST_DATA_DIR"], "holdfast.db"))
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

// messages lists an inbox's messages through the API, by Internet
// Message-ID.
func (c *consentEnv) messages(id string) map[string]string {
	c.t.Helper()
	code, body := call(c.t, "GET", c.srv.base+"/v1/inboxes/"+id+"/messages?limit=100", c.key, nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET messages = %d %v", code, body)
	}
	out := map[string]string{}
	for _, m := range body["data"].([]any) {
		m := m.(map[string]any)
		out[m["internet_message_id"].(string)] = m["id"].(string)
	}
	return out
}

// graphSync syncs a Microsoft mailbox from the start with holdfast's Graph
// connector, as serve would, with a refresh token of the emulator's.
func (c *consentEnv) graphSync(email, refreshToken string) *holdfast.SyncResult {
	c.t.Helper()
	src, err := oauth.New(oauth.Config{Provider: holdfast.ProviderMicrosoft, BaseURL: c.urls.MicrosoftLogin,
		ClientID: emulator.DefaultClientID, ClientSecret: emulator.DefaultClientSecret, Timeout: 10 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	conn, err := graph.New(graph.Config{BaseURL: c.urls.Graph, Tokens: src, Timeout: 10 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	sess := &holdfast.Session{Inbox: &holdfast.Inbox{ID: "inb_test", Email: email, Provider: holdfast.ProviderMicrosoft}, RefreshToken: refreshToken}
	res, err := conn.Sync(c.t.Context(), sess, "")
	if err != nil {
		c.t.Fatalf("graph sync of %s: %v", email, err)
	}
	return res
}

// start asks for the authorization URL and checks its OAuth parameters.
// start asks serve for the consent URL of email's inbox, with the other
// query parameters extra (name, value, ...).
func (c *consentEnv) start(provider, email string, extra ...string) *url.URL {
	c.t.Helper()
	q := url.Values{"email": {email}, "redirect_uri": {c.host}}
	for k := 0; k+1 < len(extra); k += 2 {
		q.Set(extra[k], extra[k+1])
	}
	code, body := call(c.t, "GET", c.srv.base+"/v1/connect/"+provider+"?"+q.Encode(), c.key, nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET /v1/connect/%s = %d %v, want 200", provider, code, body)
	}
	raw, _ := body["authorization_url"].(string)
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		c.t.Fatalf("authorization_url %q: %v", raw, err)
	}
	aq := u.Query()
	want := map[string]string{
		"response_type": "code", "client_id": emulator.DefaultClientID, "code_challenge_method": "S256",
		"login_hint": email, "redirect_uri": c.srv.base + "/oauth/callback",
	}
	if provider == "google" {
		want["access_type"], want["prompt"] = "offline", "consent"
	}
	for k, v := range want {
		if got := aq.Get(k); got != v {
			c.t.Errorf("authorization_url %s = %q, want %q", k, got, v)
		}
	}
	if len(aq.Get("state")) < 32 || len(aq.Get("code_challenge")) != 43 {
		c.t.Errorf("authorization_url state %q, code_challenge %q: want random values", aq.Get("state"), aq.Get("code_challenge"))
	}
	if provider == "microsoft" {
		// offline_access for a refresh token, User.Read for the account
		// check (GET /me), the mail permissions for sync and send.
		for _, want := range []string{"offline_access", "User.Read", "Mail.ReadWrite", "Mail.Send"} {
			if !slices.Contains(strings.Fields(aq.Get("scope")), want) {
				c.t.Errorf("authorization_url scope %q lacks %s", aq.Get("scope"), want)
			}
		}
	}
	return u
}

// authorize follows the authorization URL (the emulator consents at once)
// and returns the callback URL it sends the browser to.
func (c *consentEnv) authorize(authURL *url.URL) string {
	c.t.Helper()
	code, loc, body := hop(c.t, authURL.String())
	if code != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), c.srv.base+"/oauth/callback?") {
		c.t.Fatalf("authorization URL = %d to %v (%s), want 302 to the callback", code, loc, body)
	}
	return loc.String()
}

// callback follows the callback URL and returns where holdfast sends the
// browser: the host page, with its query.
func (c *consentEnv) callback(cb string) url.Values {
	c.t.Helper()
	code, loc, body := hop(c.t, cb)
	if code != http.StatusFound || loc == nil {
		c.t.Fatalf("callback = %d %s, want 302", code, body)
	}
	q := loc.Query()
	if loc.Scheme+"://"+loc.Host+loc.Path != "https://app.example.test/inboxes/done" || q.Get("tab") != "mail" {
		c.t.Errorf("callback redirects to %s, want the host page with its own query", loc)
	}
	return q
}

// connect runs the whole flow and returns the inbox ID.
func (c *consentEnv) connect(provider, email string, extra ...string) string {
	c.t.Helper()
	q := c.callback(c.authorize(c.start(provider, email, extra...)))
	id := q.Get("inbox_id")
	if q.Get("status") != "connected" || id == "" {
		c.t.Fatalf("connect %s %s: redirected with %v, want status=connected and inbox_id", provider, email, q)
	}
	return id
}

func (c *consentEnv) events(id string) []map[string]any {
	c.t.Helper()
	code, body := call(c.t, "GET", c.srv.base+"/v1/inboxes/"+id+"/events", c.key, nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET events = %d %v", code, body)
	}
	var out []map[string]any
	for _, e := range body["data"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// TestServeConsentFlow connects a Microsoft and a Google inbox through the
// consent flow against the emulator, reconnects one (same ID, history
// kept), and checks that a replayed or tampered callback fails and that a
// refused consent reaches the host page as an error.
func TestServeConsentFlow(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			c := newConsentEnv(t, eng)
			annRT, err := c.emu.CreateAccount(emulator.Account{Provider: emulator.Microsoft, Email: "ann@contoso.test"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.emu.CreateAccount(emulator.Account{Provider: emulator.Google, Email: "bob@fabrikam.test"}); err != nil {
				t.Fatal(err)
			}

			// Ann's inbox is connected for its owner in the host
			// application, whose notices go to ann@crm.test.
			const annOwner = "ann@crm.test"
			owners := map[string]string{"microsoft": annOwner}
			ids := map[string]string{}
			for provider, email := range map[string]string{"microsoft": "ann@contoso.test", "google": "bob@fabrikam.test"} {
				var extra []string
				if owners[provider] != "" {
					extra = []string{"owner_email", owners[provider]}
				}
				id := c.connect(provider, email, extra...)
				ids[provider] = id
				code, in := call(t, "GET", c.srv.base+"/v1/inboxes/"+id, c.key, nil)
				if code != http.StatusOK || in["provider"] != provider || in["email"] != email || in["tenant"] != email[strings.IndexByte(email, '@')+1:] {
					t.Errorf("GET /v1/inboxes/%s = %d %v, want the %s inbox of %s", id, code, in, provider, email)
				}
				if got, _ := in["owner_email"].(string); got != owners[provider] {
					t.Errorf("%s inbox owner_email = %q, want %q", provider, got, owners[provider])
				}
			}

			// Both are synced at once: wait for their first sync, so that
			// the event logs below are settled.
			for provider, id := range ids {
				waitFor(t, 20*time.Second, provider+" inbox connected", func() bool {
					_, in := call(t, "GET", c.srv.base+"/v1/inboxes/"+id, c.key, nil)
					return in["state"] == "connected"
				})
			}

			// Reconnect keeps the inbox's messages and its sync cursor. The
			// test syncs the mailbox itself and stores two of its three
			// messages with the cursor after all three; a fourth arrives
			// after that. The sync that follows the reconnection must go on
			// from the stored cursor: it brings the fourth, and not the
			// third, which only a sync from the start would find.
			db := c.openStore()
			waitFor(t, 20*time.Second, "the first sync's cursor stored", func() bool {
				in, err := db.Inbox(t.Context(), ids["microsoft"])
				return err == nil && in.SyncCursor != ""
			})
			deliver := func(subject string) string {
				t.Helper()
				d, err := c.emu.Deliver(emulator.Mail{To: "ann@contoso.test", From: "zed@fabrikam.test", Subject: subject, Text: "Hello."})
				if err != nil {
					t.Fatal(err)
				}
				return d.MessageID
			}
			kept1, kept2, leftOut := deliver("kept 1"), deliver("kept 2"), deliver("left out")
			res := c.graphSync("ann@contoso.test", annRT)
			if len(res.Messages) != 3 || res.More || res.Cursor == "" {
				t.Fatalf("graph sync = %d messages, more %v, cursor %q; want 3 and a cursor", len(res.Messages), res.More, res.Cursor)
			}
			kept := slices.DeleteFunc(res.Messages, func(m holdfast.Message) bool { return m.InternetMessageID == leftOut })
			if _, err := db.SaveSync(t.Context(), ids["microsoft"], kept, res.Cursor, time.Time{}, nil); err != nil {
				t.Fatal(err)
			}
			afterCursor := deliver("after the cursor")
			keptIDs := c.messages(ids["microsoft"])
			if len(keptIDs) != 2 || keptIDs[kept1] == "" || keptIDs[kept2] == "" {
				t.Fatalf("messages before reconnecting = %v, want the two stored", keptIDs)
			}

			// Reconnect: same inbox, history kept, and reconnected on top.
			before := c.events(ids["microsoft"])
			authURL := c.start("microsoft", "ann@contoso.test")
			cb := c.authorize(authURL)
			q := c.callback(cb)
			if q.Get("status") != "connected" || q.Get("inbox_id") != ids["microsoft"] {
				t.Errorf("reconnect redirected with %v, want status=connected and inbox_id=%s", q, ids["microsoft"])
			}
			waitFor(t, 20*time.Second, "the message after the cursor synced", func() bool {
				return c.messages(ids["microsoft"])[afterCursor] != ""
			})
			got := c.messages(ids["microsoft"])
			if got[kept1] != keptIDs[kept1] || got[kept2] != keptIDs[kept2] || len(got) != 3 {
				t.Errorf("messages after reconnecting = %v, want the two kept (%v) and the one after the cursor", got, keptIDs)
			}
			if got[leftOut] != "" {
				t.Errorf("a message before the stored cursor was synced after reconnecting: the sync started over instead of going on from the inbox's cursor")
			}
			if in, err := db.Inbox(t.Context(), ids["microsoft"]); err != nil {
				t.Error(err)
			} else if in.SyncCursor == "" || in.SyncCursor == res.Cursor {
				t.Errorf("inbox cursor after reconnecting = %q, want the stored one (%q) advanced past the new message", in.SyncCursor, res.Cursor)
			}
			after := c.events(ids["microsoft"])
			if len(after) != len(before)+1 || after[0]["reason"] != "reconnected" || after[0]["cause"] != "api" || after[0]["new_state"] != "connected" {
				t.Errorf("events after reconnect = %v, want the %d before and one reconnected (cause api) on top", after, len(before))
			}
			code, in := call(t, "GET", c.srv.base+"/v1/inboxes/"+ids["microsoft"], c.key, nil)
			if code != http.StatusOK || in["state"] != "connected" || in["owner_email"] != annOwner {
				t.Errorf("reconnected inbox = %d %v, want connected and still owned by %s", code, in, annOwner)
			}
			code, list := call(t, "GET", c.srv.base+"/v1/inboxes?provider=microsoft", c.key, nil)
			if data, _ := list["data"].([]any); code != http.StatusOK || len(data) != 1 {
				t.Errorf("microsoft inboxes after reconnect = %d %v, want one", code, list)
			}

			// Signing in with another account than the one asked for is
			// refused and stores nothing: not over an existing inbox, not
			// as a new one.
			for _, a := range []emulator.Account{
				{Provider: emulator.Microsoft, Email: "cy@contoso.test"},
				{Provider: emulator.Google, Email: "dee@fabrikam.test"},
			} {
				if _, err := c.emu.CreateAccount(a); err != nil {
					t.Fatal(err)
				}
			}
			before = c.events(ids["microsoft"])
			for _, tc := range []struct{ provider, asked, signedIn string }{
				{"microsoft", "ann@contoso.test", "cy@contoso.test"},
				{"microsoft", "new@contoso.test", "cy@contoso.test"},
				{"google", "bob@fabrikam.test", "dee@fabrikam.test"},
			} {
				u := c.start(tc.provider, tc.asked)
				uq := u.Query()
				uq.Set("login_hint", tc.signedIn)
				u.RawQuery = uq.Encode()
				q := c.callback(c.authorize(u))
				if q.Get("status") != "error" || q.Get("error") != "account_mismatch" || q.Get("inbox_id") != "" {
					t.Errorf("%s flow for %s signed in as %s redirected with %v, want status=error&error=account_mismatch",
						tc.provider, tc.asked, tc.signedIn, q)
				}
			}
			if after := c.events(ids["microsoft"]); len(after) != len(before) {
				t.Errorf("events after a mismatched sign-in = %v, want the %d before, unchanged", after, len(before))
			}
			for provider := range ids {
				code, list := call(t, "GET", c.srv.base+"/v1/inboxes?provider="+provider, c.key, nil)
				if data, _ := list["data"].([]any); code != http.StatusOK || len(data) != 1 {
					t.Errorf("%s inboxes after mismatched sign-ins = %d %v, want one", provider, code, list)
				}
			}

			// A replayed callback fails, and so does a tampered state.
			if code, _, body := hop(t, cb); code != http.StatusBadRequest || !strings.Contains(body, "expired or was already used") {
				t.Errorf("replayed callback = %d %q, want 400", code, body)
			}
			cbURL, _ := url.Parse(c.authorize(c.start("google", "bob@fabrikam.test")))
			cq := cbURL.Query()
			st := []byte(cq.Get("state"))
			st[0] ^= 1
			cq.Set("state", string(st))
			cbURL.RawQuery = cq.Encode()
			if code, _, body := hop(t, cbURL.String()); code != http.StatusBadRequest {
				t.Errorf("callback with a tampered state = %d %q, want 400", code, body)
			}
			if code, _, _ := hop(t, c.srv.base+"/oauth/callback?code=x"); code != http.StatusBadRequest {
				t.Errorf("callback without state = %d, want 400", code)
			}

			// A consent the provider refuses (no such account) reaches the
			// host page as an error.
			q = c.callback(c.authorize(c.start("microsoft", "nobody@contoso.test")))
			if q.Get("status") != "error" || q.Get("error") != "access_denied" || q.Get("inbox_id") != "" {
				t.Errorf("refused consent redirected with %v, want status=error&error=access_denied", q)
			}

			// A code redeemed with another flow's verifier fails: the
			// state binds the code to its verifier.
			first, second := c.start("google", "bob@fabrikam.test"), c.start("google", "bob@fabrikam.test")
			cb1, _ := url.Parse(c.authorize(first))
			q1 := cb1.Query()
			q1.Set("state", second.Query().Get("state"))
			cb1.RawQuery = q1.Encode()
			q = c.callback(cb1.String())
			if q.Get("status") != "error" || q.Get("error") != "exchange_failed" {
				t.Errorf("code with another flow's verifier redirected with %v, want status=error&error=exchange_failed", q)
			}

			// Nothing secret in the logs.
			logs := c.srv.logs.String()
			for _, secret := range []string{emulator.DefaultClientSecret, q1.Get("code"), q1.Get("state"), authURL.Query().Get("state")} {
				if strings.Contains(logs, secret) {
					t.Errorf("serve logs contain a secret %q", secret)
				}
			}
		})
	}
}

// TestServeConnectValidation: bad input to GET /v1/connect/{provider} is a
// 400 naming the field, and the route needs an API key.
func TestServeConnectValidation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	e.env["HOLDFAST_MICROSOFT_CLIENT_ID"], e.env["HOLDFAST_MICROSOFT_CLIENT_SECRET"] = "id", "secret"
	key := e.createAPIKey("connect-validation")
	s := e.serve()
	good := url.Values{"email": {"a@example.org"}, "redirect_uri": {"https://app.example.org/done"}}
	with := func(k, v string) string {
		q := maps.Clone(good)
		if v == "" {
			delete(q, k)
		} else {
			q.Set(k, v)
		}
		return q.Encode()
	}
	for _, tc := range []struct {
		name, path, field string
	}{
		{"unknown provider", "/v1/connect/yahoo?" + good.Encode(), "provider"},
		{"imap", "/v1/connect/imap?" + good.Encode(), "provider"},
		{"provider not configured", "/v1/connect/google?" + good.Encode(), "provider"},
		{"no email", "/v1/connect/microsoft?" + with("email", ""), "email"},
		{"bad email", "/v1/connect/microsoft?" + with("email", "Ann <a@example.org>"), "email"},
		{"no redirect_uri", "/v1/connect/microsoft?" + with("redirect_uri", ""), "redirect_uri"},
		{"relative redirect_uri", "/v1/connect/microsoft?" + with("redirect_uri", "/done"), "redirect_uri"},
		{"ftp redirect_uri", "/v1/connect/microsoft?" + with("redirect_uri", "ftp://app.example.org/"), "redirect_uri"},
		{"redirect_uri with a fragment", "/v1/connect/microsoft?" + with("redirect_uri", "https://app.example.org/#x"), "redirect_uri"},
		{"bad owner_email", "/v1/connect/microsoft?" + with("owner_email", "not an address"), "owner_email"},
	} {
		code, body := call(t, "GET", s.base+tc.path, key, nil)
		if code != http.StatusBadRequest || errField(body) != tc.field {
			t.Errorf("%s: GET %s = %d %v, want 400 naming %s", tc.name, tc.path, code, body, tc.field)
		}
	}
	if code, _ := call(t, "GET", s.base+"/v1/connect/microsoft?"+good.Encode(), "", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/connect without a key = %d, want 401", code)
	}
	if code, body := call(t, "GET", s.base+"/v1/connect/microsoft?"+good.Encode(), key, nil); code != http.StatusOK || !strings.HasPrefix(body["authorization_url"].(string), "https://login.microsoftonline.com/common/oauth2/v2.0/authorize?") {
		t.Errorf("GET /v1/connect/microsoft with the real endpoints = %d %v", code, body)
	}

	// HOLDFAST_MICROSOFT_TENANT chooses the tenant of the login URL.
	e = newTestEnv(t, sqliteEngine)
	e.env["HOLDFAST_MICROSOFT_CLIENT_ID"], e.env["HOLDFAST_MICROSOFT_CLIENT_SECRET"] = "id", "secret"
	e.env["HOLDFAST_MICROSOFT_TENANT"] = "Contoso.onmicrosoft.com"
	key = e.createAPIKey("connect-tenant")
	s = e.serve()
	if code, body := call(t, "GET", s.base+"/v1/connect/microsoft?"+good.Encode(), key, nil); code != http.StatusOK || !strings.HasPrefix(body["authorization_url"].(string), "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?") {
		t.Errorf("GET /v1/connect/microsoft with HOLDFAST_MICROSOFT_TENANT = %d %v, want the tenant's login URL", code, body)
	}
}

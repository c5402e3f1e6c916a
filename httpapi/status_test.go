package httpapi_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/httpapi"
	"github.com/holdfast/holdfast/monitor"
	"github.com/holdfast/holdfast/netguard"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/store/sqlite"
	"github.com/holdfast/holdfast/webhook"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// fakeHealth is the health engine's operator surface, doing nothing.
type fakeHealth struct{}

func (fakeHealth) Declare(context.Context, monitor.Declaration) (*holdfast.Incident, error) {
	return nil, errors.New("not here")
}
func (fakeHealth) Resolve(context.Context, int64) (*holdfast.Incident, error) {
	return nil, errors.New("not here")
}
func (fakeHealth) Release(context.Context, int64) error { return errors.New("not here") }
func (fakeHealth) AddInbox(*holdfast.Inbox) error       { return nil }
func (fakeHealth) RemoveInbox(string)                   {}

// noDNS answers names from /etc/hosts only (localhost), so that tests
// never wait on a DNS server.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in tests")
}}

type statusBundle struct {
	store       *sqlite.Store
	links       *notify.Links
	srv         *httptest.Server
	mu          sync.Mutex
	reconnected []string
	sealed      map[string]string
}

func setupStatus(t testing.TB, reconnectURL string) *statusBundle {
	t.Helper()
	return setupStatusVerify(t, reconnectURL, nil)
}

// setupStatusVerify is setupStatus with a StatusConfig.Verify.
func setupStatusVerify(t testing.TB, reconnectURL string, verify func(context.Context, *holdfast.Inbox, string) error) *statusBundle {
	t.Helper()
	return setupServer(t, reconnectURL, verify, fakeHealth{})
}

// setupServer is setupStatusVerify with the given health engine.
func setupServer(t testing.TB, reconnectURL string, verify func(context.Context, *holdfast.Inbox, string) error, health httpapi.Health) *statusBundle {
	t.Helper()
	return setupServerConnect(t, reconnectURL, verify, health, nil)
}

// setupServerConnect is setupServer, serving the consent flow with
// connect if it is not nil.
func setupServerConnect(t testing.TB, reconnectURL string, verify func(context.Context, *holdfast.Inbox, string) error, health httpapi.Health, connect *httpapi.ConnectConfig) *statusBundle {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "holdfast.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	links, err := notify.NewLinks([]byte(strings.Repeat("k", 32)), "http://holdfast.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	b := &statusBundle{store: st, links: links, sealed: map[string]string{}}
	h, err := httpapi.NewServer(httpapi.Config{
		Store: st, Health: health, Logger: slog.New(slog.DiscardHandler), Clock: fixedClock(t0),
		SealCredentials: func(id string, c httpapi.Credentials) ([]byte, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.sealed[id] = c.Password
			return []byte("sealed:" + id), nil
		},
		Status: &httpapi.StatusConfig{
			Links: links, ReconnectURL: reconnectURL,
			Reconnected: func(_ context.Context, id string) error {
				b.mu.Lock()
				defer b.mu.Unlock()
				b.reconnected = append(b.reconnected, id)
				return nil
			},
			Verify: verify,
		},
		Webhooks: &httpapi.WebhookConfig{
			Guard:      &webhook.Guard{Resolver: noDNS},
			SealSecret: func(id, secret string) ([]byte, error) { return []byte("sealed:" + id), nil },
		},
		MailHosts: &netguard.Guard{Resolver: noDNS},
		Connect:   connect,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *statusBundle) inbox(t testing.TB, id, email string, p holdfast.Provider, st holdfast.State) {
	t.Helper()
	in := &holdfast.Inbox{ID: id, Email: email, Provider: p, Tenant: "example.test", State: st, Reason: "created",
		Message: holdfast.DefaultMessage(st), Credentials: []byte("x"), Since: t0, CreatedAt: t0, UpdatedAt: t0}
	if err := b.store.CreateInbox(t.Context(), in, holdfast.Event{InboxID: id, At: t0, NewState: st, Cause: holdfast.CauseAPI}); err != nil {
		t.Fatal(err)
	}
}

// client does not follow redirects.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "status", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// TestStatusPage renders the page of one owner in each state, and the
// expired page, against golden files.
func TestStatusPage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		reconnectURL string
		setup        func(t *testing.T, b *statusBundle)
	}{
		{"connected", "", func(t *testing.T, b *statusBundle) {
			b.inbox(t, "inb_ms", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateConnected)
		}},
		{"paused", "", func(t *testing.T, b *statusBundle) {
			b.inbox(t, "inb_ms", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StatePaused)
			if err := b.store.SaveIncident(t.Context(), &holdfast.Incident{ID: 1, Kind: "provider_outage", Provider: holdfast.ProviderMicrosoft, OpenedAt: t0.Add(-time.Hour)}, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"needs_reconnect", "https://app.example.test/reconnect?provider={provider}&email={email}", func(t *testing.T, b *statusBundle) {
			b.inbox(t, "inb_ms", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
			b.inbox(t, "inb_imap", "Owner@example.test", holdfast.ProviderIMAP, holdfast.StateNeedsReconnect)
			b.inbox(t, "inb_g", "owner@example.test", holdfast.ProviderGoogle, holdfast.StateNeedsAdmin)
		}},
		{"needs_reconnect_no_link", "", func(t *testing.T, b *statusBundle) {
			b.inbox(t, "inb_g", "owner@example.test", holdfast.ProviderGoogle, holdfast.StateNeedsReconnect)
		}},
		{"needs_reconnect_storm", "", func(t *testing.T, b *statusBundle) {
			// Neither a notice storm nor a tenant event under verification
			// is an outage: the page must not say that nothing is needed.
			b.inbox(t, "inb_ms", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
			for i, kind := range []holdfast.IncidentKind{"notice_storm", "tenant_event"} {
				if err := b.store.SaveIncident(t.Context(), &holdfast.Incident{ID: int64(i + 1), Kind: kind, Provider: holdfast.ProviderMicrosoft, OpenedAt: t0.Add(-time.Hour)}, nil); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"owner_of_two", "", func(t *testing.T, b *statusBundle) {
			// One owner, two inboxes of other addresses; the owner's own
			// address is someone else's inbox, owned by them.
			b.inbox(t, "inb_work", "ann@corp.example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
			b.inbox(t, "inb_home", "ann.home@gmail.example.test", holdfast.ProviderGoogle, holdfast.StateConnected)
			b.inbox(t, "inb_given", "owner@example.test", holdfast.ProviderIMAP, holdfast.StateNeedsReconnect)
			for id, owner := range map[string]string{"inb_work": "owner@example.test", "inb_home": "Owner@Example.test", "inb_given": "other@example.test"} {
				if _, err := b.store.SetOwnerEmail(t.Context(), id, owner); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"no_inboxes", "", func(*testing.T, *statusBundle) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupStatus(t, tt.reconnectURL)
			tt.setup(t, b)
			u, _ := b.links.StatusURL("owner@example.test", t0)
			code, body := get(t, b.srv.URL+strings.TrimPrefix(u, "http://holdfast.test"))
			if code != http.StatusOK {
				t.Fatalf("GET status page = %d", code)
			}
			golden(t, tt.name, body)
		})
	}
}

func TestStatusPageExpiredOrTampered(t *testing.T) {
	t.Parallel()
	b := setupStatus(t, "")
	b.inbox(t, "inb_ms", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	expired := b.links.Sign("owner@example.test", t0.Add(-time.Second))
	unknown := b.links.Sign("nobody@example.test", t0.Add(-time.Second))
	valid := b.links.Sign("owner@example.test", t0.Add(time.Hour))
	tampered := strings.Replace(valid, ".", "x.", 1)
	var bodies []string
	for _, tok := range []string{expired, unknown, tampered, "nonsense"} {
		code, body := get(t, b.srv.URL+"/status/"+tok)
		if code != http.StatusNotFound {
			t.Errorf("GET /status/%s = %d; want 404", tok, code)
		}
		bodies = append(bodies, body)
	}
	for _, body := range bodies[1:] {
		if body != bodies[0] {
			t.Error("expired pages differ: they must not tell whether the email exists")
		}
	}
	golden(t, "expired", bodies[0])
}

func TestStatusForms(t *testing.T) {
	t.Parallel()
	b := setupStatus(t, "https://app.example.test/reconnect?provider={provider}&email={email}")
	b.inbox(t, "inb_ms", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	b.inbox(t, "inb_imap", "owner@example.test", holdfast.ProviderIMAP, holdfast.StateNeedsReconnect)
	b.inbox(t, "inb_other", "other@example.test", holdfast.ProviderIMAP, holdfast.StateNeedsReconnect)
	tok := b.links.Sign("owner@example.test", t0.Add(time.Hour))
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		resp, err := client.PostForm(b.srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	bad := "/status/" + tok + "?done=bad"
	tests := []struct {
		name, path   string
		form         url.Values
		wantCode     int
		wantLocation string
	}{
		{"ReconnectRedirects", "/status/" + tok + "/reconnect/inb_ms",
			url.Values{"form_token": {b.links.FormToken(tok, "inb_ms", "reconnect")}},
			http.StatusSeeOther, "https://app.example.test/reconnect?provider=microsoft&email=owner%40example.test"},
		{"ReconnectWithoutFormToken", "/status/" + tok + "/reconnect/inb_ms", nil, http.StatusSeeOther, bad},
		{"FormTokenOfAnotherInbox", "/status/" + tok + "/imap/inb_imap",
			url.Values{"form_token": {b.links.FormToken(tok, "inb_ms", "imap")}, "password": {"p"}}, http.StatusSeeOther, bad},
		{"AnotherOwnersInbox", "/status/" + tok + "/imap/inb_other",
			url.Values{"form_token": {b.links.FormToken(tok, "inb_other", "imap")}, "password": {"p"}}, http.StatusSeeOther, bad},
		{"ExpiredToken", "/status/" + b.links.Sign("owner@example.test", t0) + "/imap/inb_imap",
			url.Values{"form_token": {b.links.FormToken(tok, "inb_imap", "imap")}, "password": {"p"}}, http.StatusNotFound, ""},
		{"NewPassword", "/status/" + tok + "/imap/inb_imap",
			url.Values{"form_token": {b.links.FormToken(tok, "inb_imap", "imap")}, "password": {"n3w pass"}},
			http.StatusSeeOther, "/status/" + tok + "?done=imap"},
	}
	for _, tt := range tests {
		code, loc := post(tt.path, tt.form)
		if code != tt.wantCode || loc != tt.wantLocation {
			t.Errorf("%s: POST = %d %q; want %d %q", tt.name, code, loc, tt.wantCode, tt.wantLocation)
		}
	}
	if diff := cmp.Diff(map[string]string{"inb_imap": "n3w pass"}, b.sealed); diff != "" {
		t.Errorf("sealed passwords (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"inb_imap"}, b.reconnected); diff != "" {
		t.Errorf("reconnected (-want +got):\n%s", diff)
	}
	in, err := b.store.Inbox(t.Context(), "inb_imap")
	if err != nil || string(in.Credentials) != "sealed:inb_imap" {
		t.Errorf("inbox credentials = %q, %v; want the sealed new password", in.Credentials, err)
	}
}

// fakeOAuth is a provider's side of the consent flow.
type fakeOAuth struct{}

func (fakeOAuth) AuthCodeURL(state, _ string) string {
	return "https://login.example.test/authorize?state=" + url.QueryEscape(state)
}

func (fakeOAuth) Exchange(context.Context, string, string, string) (string, error) {
	return "", errors.New("not here")
}

type fakeReconnector struct{}

func (fakeReconnector) Reconnected(context.Context, string) error { return nil }

// TestStatusReconnectStartsConsent: with the consent flow served, the
// reconnect button goes straight to the provider's authorization URL.
func TestStatusReconnectStartsConsent(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "holdfast.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	links, _ := notify.NewLinks([]byte(strings.Repeat("k", 32)), "http://holdfast.test", 0)
	h, err := httpapi.NewServer(httpapi.Config{
		Store: st, Health: fakeHealth{}, Logger: slog.New(slog.DiscardHandler), Clock: fixedClock(t0),
		SealCredentials: func(string, httpapi.Credentials) ([]byte, error) { return nil, nil },
		Connect: &httpapi.ConnectConfig{
			Providers: map[holdfast.Provider]httpapi.OAuthProvider{holdfast.ProviderMicrosoft: fakeOAuth{}},
			Health:    fakeReconnector{},
		},
		Status: &httpapi.StatusConfig{Links: links},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	b := &statusBundle{store: st}
	b.inbox(t, "inb_ms", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	tok := links.Sign("owner@example.test", t0.Add(time.Hour))
	code, page := get(t, srv.URL+"/status/"+tok)
	if code != http.StatusOK || !strings.Contains(page, "Reconnect with Microsoft</button>") {
		t.Fatalf("GET status page = %d without the reconnect button:\n%s", code, page)
	}
	resp, err := client.PostForm(srv.URL+"/status/"+tok+"/reconnect/inb_ms", url.Values{"form_token": {links.FormToken(tok, "inb_ms", "reconnect")}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "https://login.example.test/authorize?") || !strings.Contains(loc, "login_hint=owner%40example.test") {
		t.Errorf("POST reconnect = %d %q; want a redirect to the authorization URL with the login hint", resp.StatusCode, loc)
	}
}

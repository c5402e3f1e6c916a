package oauth_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/provider/oauth/oauthtest"
	"github.com/holdfast/holdfast/provider/providertest"
)

// bundle is one test's token endpoint, source and session.
type bundle struct {
	srv     *oauthtest.Server
	src     *oauth.Source
	sess    *holdfast.Session
	logs    *providertest.Logs
	rotated *providertest.Rotations
	now     *time.Time
	mu      *sync.Mutex
}

func setup(t *testing.T, provider holdfast.Provider, secret string) *bundle {
	t.Helper()
	srv := oauthtest.Start(t, oauthtest.Options{Provider: provider, ClientSecret: "s3cret-client-never-logged"})
	if secret == "" {
		secret = srv.ClientSecret()
	}
	logs := &providertest.Logs{}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	mu := &sync.Mutex{}
	src, err := oauth.New(oauth.Config{
		Provider:     provider,
		BaseURL:      srv.URL,
		ClientID:     srv.ClientID(),
		ClientSecret: secret,
		Timeout:      5 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		},
	})
	if err != nil {
		t.Fatalf("oauth.New: %v", err)
	}
	b := &bundle{srv: srv, src: src, logs: logs, rotated: &providertest.Rotations{}, now: &now, mu: mu}
	b.sess = &holdfast.Session{
		Inbox:        &holdfast.Inbox{ID: "inb_test", Email: "alice@example.test", Provider: provider},
		RefreshToken: srv.Grant("alice@example.test"),
	}
	b.rotated.Track(b.sess)
	return b
}

func (b *bundle) advance(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*b.now = b.now.Add(d)
}

func (b *bundle) rotations() []string { return b.rotated.Tokens() }

func TestAccessTokenRefreshAndCache(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		provider holdfast.Provider
		rotates  bool
	}{
		{"microsoft rotates", holdfast.ProviderMicrosoft, true},
		{"google keeps", holdfast.ProviderGoogle, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.provider, "")
			ctx := t.Context()
			first := b.sess.RefreshToken
			tok, err := b.src.AccessToken(ctx, b.sess)
			if err != nil {
				t.Fatalf("AccessToken: %v", err)
			}
			if _, ok := b.srv.User(tok); !ok {
				t.Fatalf("AccessToken = %q, not a token the server issued", tok)
			}
			rot := b.rotations()
			if tc.rotates {
				if len(rot) != 1 || rot[0] == first || rot[0] != b.sess.RefreshToken {
					t.Errorf("OnTokenRotated got %d tokens (session now has the new one: %v), want the new token once", len(rot), b.sess.RefreshToken != first)
				}
			} else if len(rot) != 0 || b.sess.RefreshToken != first {
				t.Errorf("OnTokenRotated called %d times for a provider that does not rotate", len(rot))
			}

			// Cached until shortly before it expires.
			again, err := b.src.AccessToken(ctx, b.sess)
			if err != nil || again != tok {
				t.Errorf("second AccessToken = %v, %v; want the cached token", again == tok, err)
			}
			if got := b.srv.Requests(); got != 1 {
				t.Errorf("token requests after two calls = %d, want 1", got)
			}
			b.advance(59 * time.Minute)
			third, err := b.src.AccessToken(ctx, b.sess)
			if err != nil {
				t.Fatalf("AccessToken near expiry: %v", err)
			}
			if third == tok || b.srv.Requests() != 2 {
				t.Errorf("AccessToken near expiry reused the old token (requests %d), want a refresh", b.srv.Requests())
			}

			// After a 401 the token is invalidated and refreshed once.
			b.src.Invalidate(b.sess.Inbox.ID, third)
			fourth, err := b.src.AccessToken(ctx, b.sess)
			if err != nil || fourth == third || b.srv.Requests() != 3 {
				t.Errorf("AccessToken after Invalidate: new %v, err %v, requests %d; want a new token from the 3rd request", fourth != third, err, b.srv.Requests())
			}
			// A stale Invalidate (another token) keeps the cached one.
			b.src.Invalidate(b.sess.Inbox.ID, third)
			if fifth, _ := b.src.AccessToken(ctx, b.sess); fifth != fourth {
				t.Error("Invalidate with an old token dropped the current one")
			}
			if n := b.srv.BasicAuthRequests(); n != 0 {
				t.Errorf("%d requests sent the client secret in a header, want it in the body", n)
			}
			providertest.AssertNoSecret(t, nil, b.logs.String(), first, b.sess.RefreshToken, tok, fourth, b.srv.ClientSecret())
		})
	}
}

// A reconnected inbox (another refresh token) does not get the access
// token of the old grant.
func TestAccessTokenNewGrant(t *testing.T) {
	t.Parallel()
	b := setup(t, holdfast.ProviderGoogle, "")
	old, err := b.src.AccessToken(t.Context(), b.sess)
	if err != nil {
		t.Fatal(err)
	}
	b.sess.RefreshToken = b.srv.Grant("alice@example.test")
	tok, err := b.src.AccessToken(t.Context(), b.sess)
	if err != nil {
		t.Fatal(err)
	}
	if tok == old {
		t.Error("a session with a new refresh token got the old grant's access token")
	}
}

func TestAccessTokenConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, holdfast.ProviderMicrosoft, "")
	var wg sync.WaitGroup
	toks := make([]string, 8)
	for i := range toks {
		wg.Go(func() {
			sess := *b.sess
			tok, err := b.src.AccessToken(t.Context(), &sess)
			if err != nil {
				t.Errorf("AccessToken: %v", err)
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	if n := b.srv.Requests(); n != 1 {
		t.Errorf("8 concurrent AccessToken calls made %d token requests, want 1", n)
	}
	for _, tok := range toks[1:] {
		if tok != toks[0] {
			t.Error("concurrent callers got different tokens")
		}
	}
}

// A failed save of the rotated token is logged, not returned: the old token
// stays valid at Microsoft.
func TestRotationSaveFails(t *testing.T) {
	t.Parallel()
	b := setup(t, holdfast.ProviderMicrosoft, "")
	first := b.sess.RefreshToken
	var saved string
	b.sess.OnTokenRotated = func(_ context.Context, rt string) error {
		saved = rt
		return errors.New("store down while saving " + rt)
	}
	if _, err := b.src.AccessToken(t.Context(), b.sess); err != nil {
		t.Fatalf("AccessToken: %v", err)
	}
	if !strings.Contains(b.logs.String(), "could not save the rotated refresh token") {
		t.Errorf("no warning logged:\n%s", b.logs.String())
	}
	providertest.AssertNoSecret(t, nil, b.logs.String(), first, saved)
}

func TestRefreshErrors(t *testing.T) {
	t.Parallel()
	type want struct {
		class   holdfast.Class
		reason  holdfast.Reason
		scope   holdfast.Scope
		action  holdfast.Action
		outage  bool
		retry   time.Duration
		status  int
		request int
	}
	for _, tc := range []struct {
		name     string
		provider holdfast.Provider
		secret   string // client secret holdfast sends; empty: the right one
		prepare  func(b *bundle)
		want     want
	}{
		{
			name: "microsoft revoked AADSTS50173", provider: holdfast.ProviderMicrosoft,
			prepare: func(b *bundle) { b.srv.Revoke("alice@example.test") },
			want:    want{holdfast.ClassPermanent, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, false, 0, 400, 1},
		},
		{
			name: "microsoft wrong client secret", provider: holdfast.ProviderMicrosoft, secret: "wrong-secret",
			want: want{holdfast.ClassPermanent, holdfast.ReasonAppMisconfigured, holdfast.ScopeApp, holdfast.ActionOperator, false, 0, 401, 1},
		},
		{
			name: "microsoft invalid_grant without a code", provider: holdfast.ProviderMicrosoft,
			prepare: func(b *bundle) {
				b.srv.Fail(oauthtest.Fault{Status: 400, Body: `{"error":"invalid_grant","error_description":"The refresh token is invalid."}`})
			},
			want: want{holdfast.ClassPermanent, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, true, 0, 400, 1},
		},
		{
			name: "microsoft 503", provider: holdfast.ProviderMicrosoft,
			prepare: func(b *bundle) { b.srv.Fail(oauthtest.Fault{Status: 503, Body: "Service Unavailable"}) },
			want:    want{holdfast.ClassRecoverable, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetry, false, 0, 503, 1},
		},
		{
			name: "microsoft 429 Retry-After", provider: holdfast.ProviderMicrosoft,
			prepare: func(b *bundle) {
				b.srv.Fail(oauthtest.Fault{Status: 429, Header: http.Header{"Retry-After": {"7"}}, Body: `{"error":"temporarily_unavailable"}`})
			},
			want: want{holdfast.ClassRecoverable, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetryAfter, false, 7 * time.Second, 429, 1},
		},
		{
			name: "google revoked", provider: holdfast.ProviderGoogle,
			prepare: func(b *bundle) { b.srv.Revoke("alice@example.test") },
			want:    want{holdfast.ClassPermanent, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, false, 0, 400, 1},
		},
		{
			name: "google wrong client secret", provider: holdfast.ProviderGoogle, secret: "wrong-secret",
			want: want{holdfast.ClassPermanent, holdfast.ReasonAppMisconfigured, holdfast.ScopeApp, holdfast.ActionOperator, false, 0, 401, 1},
		},
		{
			name: "google 500", provider: holdfast.ProviderGoogle,
			prepare: func(b *bundle) { b.srv.Fail(oauthtest.Fault{Status: 500, Body: `{"error":"internal_failure"}`}) },
			want:    want{holdfast.ClassRecoverable, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetry, false, 0, 500, 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.provider, tc.secret)
			if tc.prepare != nil {
				tc.prepare(b)
			}
			rt := b.sess.RefreshToken
			_, err := b.src.AccessToken(t.Context(), b.sess)
			pe, ok := errors.AsType[*holdfast.ProviderError](err)
			if !ok {
				t.Fatalf("AccessToken error %v (%T) is not a *holdfast.ProviderError", err, err)
			}
			got := want{pe.Class, pe.Reason, pe.Scope, pe.Action, pe.OutageSensitive, pe.RetryAfter, 0, b.srv.Requests()}
			if te, ok := errors.AsType[*oauth.TokenError](err); ok {
				got.status = te.Status
			}
			if got != tc.want {
				t.Errorf("AccessToken error = %+v, want %+v (%v)", got, tc.want, err)
			}
			if pe.UserMessage == "" {
				t.Error("ProviderError has no UserMessage")
			}
			if !strings.Contains(err.Error(), "refresh token for inbox inb_test") {
				t.Errorf("error %q does not name the inbox", err)
			}
			if len(b.rotations()) != 0 {
				t.Error("OnTokenRotated called for a failed refresh")
			}
			providertest.AssertNoSecret(t, err, b.logs.String(), rt, b.srv.ClientSecret(), tc.secret)
		})
	}
}

// A token endpoint that echoes the credentials it got does not leak them
// through holdfast's errors or logs.
func TestRefreshErrorEchoingSecrets(t *testing.T) {
	t.Parallel()
	for _, provider := range []holdfast.Provider{holdfast.ProviderMicrosoft, holdfast.ProviderGoogle} {
		t.Run(string(provider), func(t *testing.T) {
			t.Parallel()
			b := setup(t, provider, "")
			rt := b.sess.RefreshToken
			b.srv.Fail(oauthtest.Fault{Status: 400, Body: `{"error":"invalid_request","error_description":"AADSTS900144: bad refresh_token ` +
				rt + ` for client_secret ` + b.srv.ClientSecret() + `"}`})
			_, err := b.src.AccessToken(t.Context(), b.sess)
			if err == nil {
				t.Fatal("AccessToken succeeded against a failing endpoint")
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("error %q: want the echoed secrets redacted", err)
			}
			providertest.AssertNoSecret(t, err, b.logs.String(), rt, b.srv.ClientSecret())
		})
	}
}

func TestRefreshTransportError(t *testing.T) {
	t.Parallel()
	src, err := oauth.New(oauth.Config{
		Provider: holdfast.ProviderMicrosoft, BaseURL: "http://127.0.0.1:1", ClientID: "id", ClientSecret: "s3cret",
		Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	sess := &holdfast.Session{Inbox: &holdfast.Inbox{ID: "inb_x"}, RefreshToken: "rt-never-logged"}
	_, err = src.AccessToken(t.Context(), sess)
	pe, ok := errors.AsType[*holdfast.ProviderError](err)
	if !ok || pe.Class != holdfast.ClassRecoverable || pe.Reason != holdfast.ReasonNetwork {
		t.Fatalf("AccessToken to a closed port = %v, want recoverable network", err)
	}
	providertest.AssertNoSecret(t, err, "", "rt-never-logged", "s3cret")
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  oauth.Config
	}{
		{"no provider", oauth.Config{ClientID: "id"}},
		{"imap", oauth.Config{Provider: holdfast.ProviderIMAP, ClientID: "id"}},
		{"no client id", oauth.Config{Provider: holdfast.ProviderGoogle}},
		{"bad base URL", oauth.Config{Provider: holdfast.ProviderMicrosoft, ClientID: "id", BaseURL: "login.example"}},
		{"bad tenant", oauth.Config{Provider: holdfast.ProviderMicrosoft, ClientID: "id", Tenant: "a/b"}},
	} {
		if _, err := oauth.New(tc.cfg); err == nil {
			t.Errorf("New(%s) succeeded, want an error", tc.name)
		}
	}
}

func TestAuthCodeURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		provider holdfast.Provider
		prefix   string
		has      []string
	}{
		{holdfast.ProviderMicrosoft, "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize?",
			[]string{"scope=offline_access+Mail.ReadWrite+Mail.Send+User.Read", "code_challenge_method=S256", "redirect_uri=https%3A%2F%2Fholdfast.example%2Foauth%2Fcallback"}},
		{holdfast.ProviderGoogle, "https://accounts.google.com/o/oauth2/v2/auth?",
			[]string{"access_type=offline", "prompt=consent", "code_challenge_method=S256", "gmail.send"}},
	} {
		src, err := oauth.New(oauth.Config{Provider: tc.provider, Tenant: "organizations", ClientID: "id", RedirectURL: "https://holdfast.example/oauth/callback"})
		if err != nil {
			t.Fatal(err)
		}
		u := src.AuthCodeURL("state-1", "verifier-0123456789-0123456789-0123456789")
		if !strings.HasPrefix(u, tc.prefix) {
			t.Errorf("AuthCodeURL(%s) = %s, want prefix %s", tc.provider, u, tc.prefix)
		}
		for _, h := range tc.has {
			if !strings.Contains(u, h) {
				t.Errorf("AuthCodeURL(%s) = %s, want it to hold %s", tc.provider, u, h)
			}
		}
	}
}

package dashboard

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/holdfast/holdfast"
)

// TestRevokedKeyEndsSession signs in, revokes the key in the store (as
// `holdfast apikey revoke` or DELETE /v1/api-keys/{id} would, from any
// node) and sees the session refused on its very next request.
func TestRevokedKeyEndsSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := b.browser(t)
	csrf := br.login(b.key)
	kept := *br.cookies[sessionCookie]
	k, err := b.st.APIKeyByHash(t.Context(), holdfast.HashAPIKey(b.key))
	must(t, err)
	_, err = b.st.RevokeAPIKey(t.Context(), k.ID, now)
	must(t, err)

	if w := br.do("GET", "/ui/held", nil); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/ui/login") {
		t.Errorf("GET /ui/held after the key was revoked = %d to %q; want 303 to the sign-in form", w.Code, w.Header().Get("Location"))
	}
	if _, ok := br.cookies[sessionCookie]; ok {
		t.Error("the session cookie of a revoked key was kept")
	}
	// The same cookie, kept and replayed after revocation, is refused too.
	br.cookies[sessionCookie] = &kept
	if w := br.do("POST", "/ui/incidents/2/resolve", url.Values{"csrf": {csrf}}); w.Code != http.StatusForbidden {
		t.Errorf("POST resolve with a revoked key's session = %d; want 403", w.Code)
	}
	if len(b.health.resolved) != 0 {
		t.Errorf("resolved with a revoked key's session: %v", b.health.resolved)
	}

	tok := csrfOf(t, br.do("GET", "/ui/login", nil).Body.String())
	if w := br.do("POST", "/ui/login", url.Values{"csrf": {tok}, "api_key": {b.key}}); w.Code != http.StatusUnauthorized {
		t.Errorf("sign-in with a revoked key = %d; want 401", w.Code)
	}
}

// otherKey stores a new key of scope and returns its secret.
func (b *testBundle) otherKey(t *testing.T, scope holdfast.APIKeyScope) string {
	t.Helper()
	key, rec := holdfast.NewAPIKey(string(scope), now)
	rec.Scope = scope
	must(t, b.st.CreateAPIKey(t.Context(), rec))
	return key
}

// TestSignInScopes lets full and dashboard keys sign in and refuses keys
// scoped to reading or sending.
func TestSignInScopes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct {
		scope holdfast.APIKeyScope
		want  int
	}{
		{holdfast.ScopeFull, http.StatusSeeOther},
		{holdfast.ScopeDashboard, http.StatusSeeOther},
		{holdfast.ScopeReadOnly, http.StatusForbidden},
		{holdfast.ScopeSend, http.StatusForbidden},
	} {
		t.Run(string(tt.scope), func(t *testing.T) {
			br := b.browser(t)
			tok := csrfOf(t, br.do("GET", "/ui/login", nil).Body.String())
			w := br.do("POST", "/ui/login", url.Values{"csrf": {tok}, "api_key": {b.otherKey(t, tt.scope)}})
			if w.Code != tt.want {
				t.Errorf("sign-in with a %s key = %d; want %d:\n%s", tt.scope, w.Code, tt.want, w.Body)
			}
			_, got := br.cookies[sessionCookie]
			if want := tt.want == http.StatusSeeOther; got != want {
				t.Errorf("sign-in with a %s key set a session: %v; want %v", tt.scope, got, want)
			}
		})
	}
}

// TestSessionKeyRotation accepts a session signed with a previous session
// key, and refuses it once that key is no longer listed.
func TestSessionKeyRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := b.browser(t)
	br.login(b.key)
	old := DeriveKey([]byte("a test secret of at least thirty-two bytes"))
	next := DeriveKey([]byte("the next signing key, thirty-two bytes or more"))
	for _, tt := range []struct {
		name     string
		previous [][]byte
		want     int
	}{
		{"PreviousAccepted", [][]byte{old}, http.StatusOK},
		{"DroppedRefused", nil, http.StatusSeeOther},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(Config{Store: b.st, Health: b.health, Logger: slog.New(slog.DiscardHandler), Clock: b.clock,
				SessionKey: next, PreviousSessionKeys: tt.previous})
			must(t, err)
			rb := &browser{t: t, h: h, cookies: map[string]*http.Cookie{sessionCookie: br.cookies[sessionCookie]}, headers: map[string]string{}}
			if w := rb.do("GET", "/ui/held", nil); w.Code != tt.want {
				t.Errorf("GET /ui/held with a session of the old key = %d; want %d", w.Code, tt.want)
			}
		})
	}
}

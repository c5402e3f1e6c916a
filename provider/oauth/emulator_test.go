package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
	"github.com/holdfast/holdfast/provider/oauth"
)

// The authorization-code flow and the refresh against the emulator: the
// consent page redirects with a code, Exchange redeems it (with PKCE) for a
// refresh token, and AccessToken redeems that, rotating it at Microsoft.
func TestEmulatorCodeFlow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		provider holdfast.Provider
		email    string
	}{
		{holdfast.ProviderMicrosoft, "ada@contoso.test"},
		{holdfast.ProviderGoogle, "gus@gmail.test"},
	} {
		t.Run(string(tc.provider), func(t *testing.T) {
			t.Parallel()
			emu, urls := emulatortest.Start(t)
			if _, err := emu.CreateAccount(emulator.Account{Provider: emulator.Provider(tc.provider), Email: tc.email}); err != nil {
				t.Fatal(err)
			}
			cfg := oauth.Config{
				Provider: tc.provider, ClientID: emulator.DefaultClientID, ClientSecret: emulator.DefaultClientSecret,
				RedirectURL: "https://holdfast.example/oauth/callback", Timeout: 5 * time.Second,
			}
			if tc.provider == holdfast.ProviderMicrosoft {
				cfg.BaseURL = urls.MicrosoftLogin
			} else {
				cfg.BaseURL, cfg.AuthURL = urls.GoogleOAuth, urls.GoogleAccounts+"/o/oauth2/v2/auth"
			}
			src, err := oauth.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			verifier := oauth2.GenerateVerifier()
			consent := src.AuthCodeURL("st4te", verifier) + "&login_hint=" + url.QueryEscape(tc.email)
			client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := client.Get(consent)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st4te" {
				t.Fatalf("consent answered %d, Location %q; want a redirect with a code and the state", resp.StatusCode, resp.Header.Get("Location"))
			}
			code := loc.Query().Get("code")
			_, err = src.Exchange(t.Context(), "inb_new", code, "wrong-verifier-0123456789-0123456789-012345")
			if _, ok := errors.AsType[*holdfast.ProviderError](err); !ok {
				t.Errorf("Exchange with a wrong PKCE verifier = %v, want a *holdfast.ProviderError", err)
			}
			// Codes are single-use: a fresh one for the real exchange.
			resp, err = client.Get(consent)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ = url.Parse(resp.Header.Get("Location"))
			rt, err := src.Exchange(t.Context(), "inb_new", loc.Query().Get("code"), verifier)
			if err != nil || rt == "" {
				t.Fatalf("Exchange = %q, %v; want a refresh token", rt, err)
			}
			var rotated []string
			sess := &holdfast.Session{Inbox: &holdfast.Inbox{ID: "inb_new"}, RefreshToken: rt,
				OnTokenRotated: func(_ context.Context, rt string) error { rotated = append(rotated, rt); return nil }}
			if _, err := src.AccessToken(t.Context(), sess); err != nil {
				t.Fatalf("AccessToken: %v", err)
			}
			if want := tc.provider == holdfast.ProviderMicrosoft; (len(rotated) == 1) != want {
				t.Errorf("rotations = %d, want rotation %v", len(rotated), want)
			}
		})
	}
}

package emulator_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/holdfast/holdfast/emulator"
)

func TestMicrosoftRefreshRotates(t *testing.T) {
	t.Parallel()
	for _, basic := range []bool{false, true} {
		t.Run(map[bool]string{false: "form", true: "basic"}[basic], func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{})
			rt0, err := b.e.CreateAccount(emulator.Account{Provider: emulator.Microsoft, Email: "ada@contoso.com", Tenant: "contoso"})
			if err != nil {
				t.Fatal(err)
			}
			refresh := func(rt string) map[string]any {
				t.Helper()
				r := b.token(t, emulator.Microsoft, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic)
				if r.status != http.StatusOK {
					t.Fatalf("refresh = %d %s; want 200", r.status, r.body)
				}
				return r.json(t)
			}
			first := refresh(rt0)
			var keys []string
			for k := range first {
				keys = append(keys, k)
			}
			want := []string{"access_token", "expires_in", "ext_expires_in", "id_token", "refresh_token", "scope", "token_type"}
			if diff := cmp.Diff(want, keys, cmpSorted); diff != "" {
				t.Errorf("token response fields (-want +got):\n%s", diff)
			}
			if first["token_type"] != "Bearer" || first["expires_in"] != 3600.0 || first["ext_expires_in"] != 3600.0 {
				t.Errorf("token response = %v", first)
			}
			rt1 := first["refresh_token"].(string)
			if rt1 == rt0 {
				t.Fatal("refresh token was not rotated")
			}
			// The old token keeps working, as Microsoft's does; each use
			// gives yet another one.
			if again := refresh(rt0)["refresh_token"]; again == rt0 || again == rt1 {
				t.Errorf("second use of the old token returned %v", again)
			}
			refresh(rt1)
			if r := b.get(t, b.u.Graph+"/v1.0/me", first["access_token"].(string)); r.status != http.StatusOK || r.json(t)["mail"] != "ada@contoso.com" {
				t.Errorf("GET /me = %d %s", r.status, r.body)
			}
		})
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestGoogleRefreshDoesNotRotate(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	rt, err := b.e.CreateAccount(emulator.Account{Provider: emulator.Google, Email: "bob@gmail.com"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r := b.refresh(t, emulator.Google, rt)
		if r.status != http.StatusOK {
			t.Fatalf("refresh = %d %s", r.status, r.body)
		}
		v := r.json(t)
		if _, ok := v["refresh_token"]; ok {
			t.Errorf("Google refresh response has a refresh_token: %s", r.body)
		}
		if v["token_type"] != "Bearer" || v["expires_in"] != 3600.0 || !strings.HasPrefix(v["access_token"].(string), "ya29.") {
			t.Errorf("refresh response = %s", r.body)
		}
	}
}

func TestAccessTokenExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		provider emulator.Provider
		url      func(emulator.URLs) string
		check    func(t *testing.T, r response)
	}{
		{"graph", emulator.Microsoft, func(u emulator.URLs) string { return u.Graph + "/v1.0/me/messages/x" }, func(t *testing.T, r response) {
			want := map[string]any{"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed, the token is expired."}
			got := r.json(t)["error"].(map[string]any)
			delete(got, "innerError")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("401 body (-want +got):\n%s", diff)
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
		}},
		{"gmail", emulator.Google, func(u emulator.URLs) string { return u.Gmail + "/gmail/v1/users/me/profile" }, func(t *testing.T, r response) {
			got := r.json(t)["error"].(map[string]any)
			if got["code"] != 401.0 || got["status"] != "UNAUTHENTICATED" {
				t.Errorf("401 body = %s", r.body)
			}
			if reason := got["errors"].([]any)[0].(map[string]any)["reason"]; reason != "authError" {
				t.Errorf("reason = %v; want authError", reason)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{TokenLifetime: 30 * time.Second})
			rt, err := b.e.CreateAccount(emulator.Account{Provider: tt.provider, Email: "eve@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			r := b.refresh(t, tt.provider, rt)
			if got := r.json(t)["expires_in"]; got != 30.0 {
				t.Errorf("expires_in = %v; want 30", got)
			}
			at := r.json(t)["access_token"].(string)
			if r := b.get(t, tt.url(b.u), at); r.status == http.StatusUnauthorized {
				t.Fatalf("fresh token refused: %s", r.body)
			}
			b.clock.Advance(30 * time.Second)
			r = b.get(t, tt.url(b.u), at)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("expired token: status %d; want 401", r.status)
			}
			tt.check(t, r)
		})
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider emulator.Provider
		api      func(emulator.URLs) string
		check    func(t *testing.T, r response)
	}{
		{emulator.Microsoft, func(u emulator.URLs) string { return u.Graph + "/v1.0/me" }, func(t *testing.T, r response) {
			v := r.json(t)
			got := map[string]any{"error": v["error"], "error_codes": v["error_codes"], "suberror": v["suberror"], "error_uri": v["error_uri"]}
			want := map[string]any{"error": "invalid_grant", "error_codes": []any{50173.0}, "suberror": "bad_token",
				"error_uri": "https://login.microsoftonline.com/error?code=50173"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("revoked refresh (-want +got):\n%s", diff)
			}
			desc := v["error_description"].(string)
			if !strings.HasPrefix(desc, "AADSTS50173: The provided grant has expired due to it being revoked") || !strings.Contains(desc, "\r\nTrace ID: ") {
				t.Errorf("error_description = %q", desc)
			}
			for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
				if v[k] == "" || v[k] == nil {
					t.Errorf("no %s", k)
				}
			}
		}},
		{emulator.Google, func(u emulator.URLs) string { return u.Gmail + "/gmail/v1/users/me/profile" }, func(t *testing.T, r response) {
			want := "{\n  \"error\": \"invalid_grant\",\n  \"error_description\": \"Token has been expired or revoked.\"\n}"
			if got := string(r.body); got != want {
				t.Errorf("revoked refresh body = %q; want %q", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider), func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{})
			rt, at := b.account(t, tt.provider, "sam@example.org", "")
			if r := b.postJSON(t, b.u.Control+"/accounts/sam@example.org/revoke", "", nil); r.status != http.StatusNoContent {
				t.Fatalf("revoke = %d %s", r.status, r.body)
			}
			for range 2 { // for good
				r := b.refresh(t, tt.provider, rt)
				if r.status != http.StatusBadRequest {
					t.Fatalf("refresh after revoke = %d %s; want 400", r.status, r.body)
				}
				tt.check(t, r)
			}
			if r := b.get(t, tt.api(b.u), at); r.status != http.StatusUnauthorized {
				t.Errorf("access token after revoke: %d; want 401", r.status)
			}
			// A new consent makes a new grant that works.
			if _, at2 := b.account(t, tt.provider, "sam@example.org", ""); b.get(t, tt.api(b.u), at2).status != http.StatusOK {
				t.Error("new grant after revoke does not work")
			}
		})
	}
}

func TestWrongClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		provider   emulator.Provider
		id, secret string
		basic      bool
		status     int
		error      string
		code       float64 // AADSTS code; Google: 0
		desc       string  // Google's description
	}{
		{"microsoft wrong secret", emulator.Microsoft, emulator.DefaultClientID, "nope", false, 401, "invalid_client", 7000215, ""},
		{"microsoft wrong secret basic", emulator.Microsoft, emulator.DefaultClientID, "nope", true, 401, "invalid_client", 7000215, ""},
		{"microsoft no secret", emulator.Microsoft, emulator.DefaultClientID, "", false, 401, "invalid_client", 7000218, ""},
		{"microsoft unknown client", emulator.Microsoft, "someone-else", "x", false, 400, "unauthorized_client", 700016, ""},
		{"google wrong secret", emulator.Google, emulator.DefaultClientID, "nope", false, 401, "invalid_client", 0, "Unauthorized"},
		{"google wrong secret basic", emulator.Google, emulator.DefaultClientID, "nope", true, 401, "invalid_client", 0, "Unauthorized"},
		{"google unknown client", emulator.Google, "someone-else", "x", false, 401, "invalid_client", 0, "The OAuth client was not found."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{})
			rt, err := b.e.CreateAccount(emulator.Account{Provider: tt.provider, Email: "kim@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, b.tokenURL(tt.provider), nil)
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
			if tt.basic {
				req.SetBasicAuth(tt.id, tt.secret)
			} else {
				form.Set("client_id", tt.id)
				form.Set("client_secret", tt.secret)
			}
			h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
			if tt.basic {
				h["Authorization"] = req.Header.Get("Authorization")
			}
			r := b.do(t, http.MethodPost, b.tokenURL(tt.provider), strings.NewReader(form.Encode()), h)
			if r.status != tt.status || errorField(t, r) != tt.error {
				t.Fatalf("token = %d %s; want %d %s", r.status, r.body, tt.status, tt.error)
			}
			v := r.json(t)
			if tt.code != 0 {
				if diff := cmp.Diff([]any{tt.code}, v["error_codes"]); diff != "" {
					t.Errorf("error_codes (-want +got):\n%s", diff)
				}
			} else if v["error_description"] != tt.desc {
				t.Errorf("error_description = %v; want %q", v["error_description"], tt.desc)
			}
		})
	}
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestAuthCodeFlowWithPKCE(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider  emulator.Provider
		authorize func(emulator.URLs) string
		scope     string
		extra     url.Values
		wrongCode float64 // AADSTS code for a wrong verifier; Google: 0
		wrongDesc string
	}{
		{emulator.Microsoft, func(u emulator.URLs) string { return u.MicrosoftLogin + "/contoso.com/oauth2/v2.0/authorize" },
			"offline_access openid Mail.ReadWrite Mail.Send", url.Values{"response_mode": {"query"}}, 501481, ""},
		{emulator.Google, func(u emulator.URLs) string { return u.GoogleAccounts + "/o/oauth2/v2/auth" },
			"https://mail.google.com/ openid email", url.Values{"access_type": {"offline"}, "prompt": {"consent"}}, 0, "Invalid code verifier."},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider), func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{})
			if _, err := b.e.CreateAccount(emulator.Account{Provider: tt.provider, Email: "lee@contoso.com"}); err != nil {
				t.Fatal(err)
			}
			verifier, challenge := pkce()
			const redirect = "http://127.0.0.1:9999/oauth/callback?x=1"
			authorize := func(hint string) response {
				q := url.Values{"client_id": {emulator.DefaultClientID}, "response_type": {"code"}, "redirect_uri": {redirect},
					"scope": {tt.scope}, "state": {"st8"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
				if hint != "" {
					q.Set("login_hint", hint)
				}
				for k, v := range tt.extra {
					q[k] = v
				}
				return b.get(t, tt.authorize(b.u)+"?"+q.Encode(), "")
			}
			code := func() string {
				t.Helper()
				r := authorize("lee@contoso.com")
				if r.status != http.StatusFound {
					t.Fatalf("authorize = %d %s; want 302", r.status, r.body)
				}
				loc, err := url.Parse(r.header.Get("Location"))
				if err != nil {
					t.Fatal(err)
				}
				q := loc.Query()
				if loc.Host != "127.0.0.1:9999" || loc.Path != "/oauth/callback" || q.Get("state") != "st8" || q.Get("x") != "1" || q.Get("code") == "" {
					t.Fatalf("redirect = %s", loc)
				}
				return q.Get("code")
			}
			exchange := func(code, verifier string) response {
				return b.token(t, tt.provider, url.Values{"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {redirect}, "code_verifier": {verifier}}, false)
			}

			c := code()
			r := exchange(c, verifier)
			if r.status != http.StatusOK {
				t.Fatalf("exchange = %d %s", r.status, r.body)
			}
			v := r.json(t)
			for _, k := range []string{"access_token", "refresh_token", "id_token"} {
				if s, _ := v[k].(string); s == "" {
					t.Errorf("exchange response has no %s: %s", k, r.body)
				}
			}
			if r := b.refresh(t, tt.provider, v["refresh_token"].(string)); r.status != http.StatusOK {
				t.Errorf("refresh of the new grant = %d %s", r.status, r.body)
			}
			if r := exchange(c, verifier); r.status != http.StatusBadRequest || errorField(t, r) != "invalid_grant" {
				t.Errorf("second redemption = %d %s; want 400 invalid_grant", r.status, r.body)
			}

			r = exchange(code(), "wrong-verifier-wrong-verifier-wrong-verifier")
			if r.status != http.StatusBadRequest || errorField(t, r) != "invalid_grant" {
				t.Fatalf("wrong verifier = %d %s; want 400 invalid_grant", r.status, r.body)
			}
			if tt.wrongCode != 0 {
				if diff := cmp.Diff([]any{tt.wrongCode}, r.json(t)["error_codes"]); diff != "" {
					t.Errorf("error_codes (-want +got):\n%s", diff)
				}
			} else if got := r.json(t)["error_description"]; got != tt.wrongDesc {
				t.Errorf("error_description = %v; want %q", got, tt.wrongDesc)
			}

			r = authorize("nobody@contoso.com")
			loc, _ := url.Parse(r.header.Get("Location"))
			if r.status != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st8" {
				t.Errorf("unknown account: %d %s", r.status, r.header.Get("Location"))
			}
			r = authorize("")
			if r.status != http.StatusOK || !strings.Contains(string(r.body), "lee@contoso.com") {
				t.Errorf("consent page = %d %s", r.status, r.body)
			}
		})
	}
}

func TestAuthorizeWithoutOffline(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	if _, err := b.e.CreateAccount(emulator.Account{Provider: emulator.Google, Email: "amy@gmail.com"}); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"client_id": {emulator.DefaultClientID}, "response_type": {"code"}, "redirect_uri": {"https://app.test/cb"},
		"scope": {"https://mail.google.com/"}, "login_hint": {"amy@gmail.com"}}
	r := b.get(t, b.u.GoogleOAuth+"/o/oauth2/v2/auth?"+q.Encode(), "")
	loc, _ := url.Parse(r.header.Get("Location"))
	r = b.token(t, emulator.Google, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"https://app.test/cb"}}, false)
	if r.status != http.StatusOK {
		t.Fatalf("exchange = %d %s", r.status, r.body)
	}
	if _, ok := r.json(t)["refresh_token"]; ok {
		t.Errorf("online exchange returned a refresh token: %s", r.body)
	}
}

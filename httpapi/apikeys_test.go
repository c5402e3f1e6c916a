package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast/holdfast"
)

// scopedKey stores a new API key of the given scope and returns it.
func (b *statusBundle) scopedKey(t testing.TB, scope holdfast.APIKeyScope) string {
	t.Helper()
	key, rec := holdfast.NewAPIKey(string(scope), t0)
	rec.Scope = scope
	if err := b.store.CreateAPIKey(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	return key
}

// TestAPIKeyScopes calls routes of every kind with a key of every scope:
// a scope that does not allow a route answers 403, one that does gets
// past authorisation (the route's own answer, never 401 or 403).
func TestAPIKeyScopes(t *testing.T) {
	t.Parallel()
	b := setupStatus(t, "")
	keys := map[holdfast.APIKeyScope]string{}
	for _, sc := range holdfast.APIKeyScopes {
		keys[sc] = b.scopedKey(t, sc)
	}
	const (
		full = holdfast.ScopeFull
		ro   = holdfast.ScopeReadOnly
		snd  = holdfast.ScopeSend
		dash = holdfast.ScopeDashboard
	)
	tests := []struct {
		name, method, path, body string
		allowed                  []holdfast.APIKeyScope
	}{
		{"ListInboxes", "GET", "/v1/inboxes", "", []holdfast.APIKeyScope{full, ro, snd}},
		{"GetInbox", "GET", "/v1/inboxes/inb_01jd00000000000000000000ab", "", []holdfast.APIKeyScope{full, ro, snd}},
		{"ListIncidents", "GET", "/v1/incidents", "", []holdfast.APIKeyScope{full, ro}},
		{"ListEvents", "GET", "/v1/inboxes/inb_01jd00000000000000000000ab/events", "", []holdfast.APIKeyScope{full, ro}},
		{"DeclareIncident", "POST", "/v1/incidents", `{"provider":"google"}`, []holdfast.APIKeyScope{full}},
		{"CreateInbox", "POST", "/v1/inboxes", `{}`, []holdfast.APIKeyScope{full}},
		{"DeleteInbox", "DELETE", "/v1/inboxes/inb_01jd00000000000000000000ab", "", []holdfast.APIKeyScope{full}},
		{"CreateWebhook", "POST", "/v1/webhooks", `{}`, []holdfast.APIKeyScope{full}},
		{"Send", "POST", "/v1/inboxes/inb_01jd00000000000000000000ab/send", `{}`, []holdfast.APIKeyScope{full, snd}},
		{"GetSend", "GET", "/v1/sends/snd_01jd00000000000000000000ab", "", []holdfast.APIKeyScope{full, ro, snd}},
		{"CancelSend", "DELETE", "/v1/sends/snd_01jd00000000000000000000ab", "", []holdfast.APIKeyScope{full, snd}},
		{"ListKeys", "GET", "/v1/api-keys", "", []holdfast.APIKeyScope{full}},
		{"CreateKey", "POST", "/v1/api-keys", `{"name":"x"}`, []holdfast.APIKeyScope{full}},
		{"RevokeKey", "DELETE", "/v1/api-keys/key_01jd00000000000000000000ab", "", []holdfast.APIKeyScope{full}},
		{"UnknownRoute", "GET", "/v1/nothing-here", "", []holdfast.APIKeyScope{full, ro, snd, dash}},
	}
	for _, tt := range tests {
		for _, sc := range holdfast.APIKeyScopes {
			t.Run(tt.name+"/"+string(sc), func(t *testing.T) {
				t.Parallel()
				code, _, msg := b.call(t, keys[sc], tt.method, tt.path, tt.body)
				allowed := strings.Contains(" "+joinScopes(tt.allowed)+" ", " "+string(sc)+" ")
				switch {
				case code == http.StatusUnauthorized:
					t.Errorf("%s %s with a %s key = 401 %s; a valid key is never 401", tt.method, tt.path, sc, msg)
				case allowed && code == http.StatusForbidden:
					t.Errorf("%s %s with a %s key = 403 %s; want it allowed", tt.method, tt.path, sc, msg)
				case !allowed && code != http.StatusForbidden:
					t.Errorf("%s %s with a %s key = %d %s; want 403", tt.method, tt.path, sc, code, msg)
				}
			})
		}
	}
}

func joinScopes(s []holdfast.APIKeyScope) string {
	var out []string
	for _, sc := range s {
		out = append(out, string(sc))
	}
	return strings.Join(out, " ")
}

// do sends one API request and decodes its JSON answer into out.
func (b *statusBundle) do(t *testing.T, key, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// TestAPIKeyLifecycle creates a send key through the API, sees it listed
// without its secret, uses it, revokes it and sees it refused at once.
func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	b := setupStatus(t, "")
	admin := b.apiKey(t)

	type keyJSON struct {
		ID, Name, Prefix, Scope, Key string
		RevokedAt                    *string `json:"revoked_at"`
	}
	var created keyJSON
	if code := b.do(t, admin, "POST", "/v1/api-keys", `{"name":"mailer","scope":"send"}`, &created); code != http.StatusCreated {
		t.Fatalf("POST /v1/api-keys = %d %+v; want 201", code, created)
	}
	if created.Scope != "send" || !strings.HasPrefix(created.Key, holdfast.APIKeyPrefix) || !strings.HasPrefix(created.Key, created.Prefix) {
		t.Fatalf("created key = %+v; want scope send and its secret, starting with its prefix", created)
	}
	var list struct{ Data []keyJSON }
	if code := b.do(t, admin, "GET", "/v1/api-keys", "", &list); code != http.StatusOK || len(list.Data) != 2 {
		t.Fatalf("GET /v1/api-keys = %d %+v; want 2 keys", code, list)
	}
	for _, k := range list.Data {
		if k.Key != "" {
			t.Errorf("GET /v1/api-keys shows the secret of %s", k.ID)
		}
	}
	if code := b.do(t, created.Key, "GET", "/v1/inboxes", "", nil); code != http.StatusOK {
		t.Fatalf("GET /v1/inboxes with the new send key = %d; want 200", code)
	}

	var revoked keyJSON
	if code := b.do(t, admin, "DELETE", "/v1/api-keys/"+created.ID, "", &revoked); code != http.StatusOK || revoked.RevokedAt == nil {
		t.Fatalf("DELETE /v1/api-keys/%s = %d %+v; want 200 with revoked_at", created.ID, code, revoked)
	}
	if code := b.do(t, created.Key, "GET", "/v1/inboxes", "", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/inboxes with the revoked key = %d; want 401", code)
	}
	if code := b.do(t, admin, "GET", "/v1/inboxes", "", nil); code != http.StatusOK {
		t.Errorf("GET /v1/inboxes with the other key = %d; want 200", code)
	}

	for _, tt := range []struct{ name, method, path, body, field string }{
		{"NoName", "POST", "/v1/api-keys", `{"scope":"full"}`, "name"},
		{"BadScope", "POST", "/v1/api-keys", `{"name":"x","scope":"root"}`, "scope"},
		{"NULInName", "POST", "/v1/api-keys", `{"name":"a\u0000b"}`, "name"},
	} {
		if code, field, msg := b.call(t, admin, tt.method, tt.path, tt.body); code != http.StatusBadRequest || field != tt.field {
			t.Errorf("%s: %s %s = %d %s %q; want 400 naming %s", tt.name, tt.method, tt.path, code, field, msg, tt.field)
		}
	}
	if code := b.do(t, admin, "DELETE", "/v1/api-keys/key_01jd00000000000000000000ab", "", nil); code != http.StatusNotFound {
		t.Errorf("DELETE an unknown key = %d; want 404", code)
	}
}

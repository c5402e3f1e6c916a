package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testBundle is what most tests need: an emulator on a test server, its
// URLs, its clock and a client that does not follow redirects.
type testBundle struct {
	e      *emulator.Emulator
	u      emulator.URLs
	clock  *clock
	client *http.Client
}

// setup starts an emulator with cfg, on a fake clock unless cfg has one.
func setup(t *testing.T, cfg emulator.Config) *testBundle {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 21, 5, 0, 0, time.UTC)}
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	e, u := emulatortest.StartConfig(t, cfg)
	return &testBundle{e: e, u: u, clock: c, client: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// response is an answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

// do sends a request and reads the answer.
func (b *testBundle) do(t *testing.T, method, u string, body io.Reader, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// get sends GET with a bearer token (none when empty).
func (b *testBundle) get(t *testing.T, u, token string) response {
	t.Helper()
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return b.do(t, http.MethodGet, u, nil, h)
}

// post sends POST with a body of the given content type and a bearer token.
func (b *testBundle) post(t *testing.T, u, token, contentType string, body []byte) response {
	t.Helper()
	h := map[string]string{"Content-Type": contentType}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return b.do(t, http.MethodPost, u, bytes.NewReader(body), h)
}

// postJSON sends v as JSON to the control API or an API path.
func (b *testBundle) postJSON(t *testing.T, u, token string, v any) response {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b.post(t, u, token, "application/json", data)
}

// tokenURL returns the token endpoint of provider p.
func (b *testBundle) tokenURL(p emulator.Provider) string {
	if p == emulator.Microsoft {
		return b.u.MicrosoftLogin + "/common/oauth2/v2.0/token"
	}
	return b.u.GoogleOAuth + "/token"
}

// token posts a form to provider p's token endpoint, with the client
// credentials in the form, or in HTTP Basic when basic is set.
func (b *testBundle) token(t *testing.T, p emulator.Provider, form url.Values, basic bool) response {
	t.Helper()
	if _, ok := form["client_id"]; !ok && !basic {
		form.Set("client_id", emulator.DefaultClientID)
		form.Set("client_secret", emulator.DefaultClientSecret)
	}
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	req, err := http.NewRequest(http.MethodPost, b.tokenURL(p), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	if basic {
		req.SetBasicAuth(url.QueryEscape(emulator.DefaultClientID), url.QueryEscape(emulator.DefaultClientSecret))
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// refresh refreshes rt at provider p and returns the answer.
func (b *testBundle) refresh(t *testing.T, p emulator.Provider, rt string) response {
	t.Helper()
	return b.token(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, false)
}

// account creates a mailbox and returns a working access token for it.
func (b *testBundle) account(t *testing.T, p emulator.Provider, email, tenant string) (rt, at string) {
	t.Helper()
	rt, err := b.e.CreateAccount(emulator.Account{Provider: p, Email: email, Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	r := b.refresh(t, p, rt)
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	return rt, r.json(t)["access_token"].(string)
}

// deliver delivers n messages to to.
func (b *testBundle) deliver(t *testing.T, to string, n int) []emulator.Delivery {
	t.Helper()
	var out []emulator.Delivery
	for i := range n {
		d, err := b.e.Deliver(emulator.Mail{To: to, From: "sender@example.net", Subject: "message " + string(rune('A'+i)), Text: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// errorField returns body.error when it is a string (OAuth errors).
func errorField(t *testing.T, r response) string {
	t.Helper()
	s, _ := r.json(t)["error"].(string)
	return s
}

// apiErrorCode returns body.error.code of a Graph error.
func apiErrorCode(t *testing.T, r response) any {
	t.Helper()
	m, _ := r.json(t)["error"].(map[string]any)
	return m["code"]
}

package main

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/secrets"
)

// statusCode fetches a status page and returns its HTTP status.
func statusCode(t *testing.T, base, token string) int {
	t.Helper()
	resp, err := http.Get(base + "/status/" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// signLink signs a status link for the owner with key.
func signLink(t *testing.T, key []byte) string {
	t.Helper()
	l, err := notify.NewLinks(key, "http://holdfast.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	return l.Sign("owner@example.test", time.Now().Add(time.Hour))
}

// TestSigningKeySurvivesSecretRotation signs status links with
// HOLDFAST_SIGNING_KEY, not with a key derived from HOLDFAST_SECRET_KEY:
// a link mailed before the credential key changes still opens after.
func TestSigningKeySurvivesSecretRotation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	signing := []byte(strings.Repeat("s", 32))
	e.env["HOLDFAST_SIGNING_KEY"] = hex.EncodeToString(signing)
	e.env["HOLDFAST_SECRET_KEY"] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	tok := signLink(t, signing)
	s := e.serve()
	if code := statusCode(t, s.base, tok); code != http.StatusOK {
		t.Fatalf("GET a status link signed with HOLDFAST_SIGNING_KEY = %d; want 200", code)
	}
	// A status link made under the old derivation still opens.
	if code := statusCode(t, s.base, signLink(t, notify.DeriveKey(e.env["HOLDFAST_SECRET_KEY"]))); code != http.StatusOK {
		t.Errorf("GET a status link derived from HOLDFAST_SECRET_KEY = %d; want 200 while it is set", code)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	e.env["HOLDFAST_SECRET_KEY"] = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4="
	s = e.serve()
	defer s.stop()
	if code := statusCode(t, s.base, tok); code != http.StatusOK {
		t.Errorf("GET the same link after HOLDFAST_SECRET_KEY changed = %d; want 200", code)
	}
	if code := statusCode(t, s.base, signLink(t, []byte(strings.Repeat("x", 32)))); code == http.StatusOK {
		t.Errorf("GET a link signed with another key = %d; want it refused", code)
	}
}

// Two credential keys, base64 32 bytes, for HOLDFAST_SECRET_KEY.
const (
	secretK1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	secretK2 = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4="
)

// dashboardClient is a browser signed in to a serve's dashboard.
type dashboardClient struct {
	t    *testing.T
	http *http.Client
}

var (
	csrfRe       = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	statusLinkRe = regexp.MustCompile(`/status/([A-Za-z0-9_.-]+)"`)
)

// signIn signs in to the dashboard at base with key, as a browser does.
func signIn(t *testing.T, base, key string) *dashboardClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &dashboardClient{t: t, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	_, page := c.get(base + "/ui/login")
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in form:\n%s", page)
	}
	resp, err := c.http.PostForm(base+"/ui/login", url.Values{"csrf": {m[1]}, "api_key": {key}, "next": {"/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("POST /ui/login = %d to %q; want 303 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	return c
}

// get fetches a page with the session's cookie.
func (c *dashboardClient) get(u string) (int, string) {
	c.t.Helper()
	resp, err := c.http.Get(u)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// signedIn reports whether the session's cookie is accepted at base.
func (c *dashboardClient) signedIn(base string) bool {
	c.t.Helper()
	code, _ := c.get(base + "/ui/")
	return code == http.StatusOK
}

// statusLink returns the owner's status link that serve at base shows on
// inbox id's dashboard page: a link serve signed.
func (c *dashboardClient) statusLink(base, id string) string {
	c.t.Helper()
	code, page := c.get(base + "/ui/inboxes/" + id)
	m := statusLinkRe.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		c.t.Fatalf("GET /ui/inboxes/%s = %d without a status link:\n%s", id, code, page)
	}
	return m[1]
}

// signingFixture is a serve's store with an API key and one inbox.
type signingFixture struct {
	e       *testEnv
	key, id string
}

// newSigningFixture makes an API key and, through a first serve, an
// inbox; it returns that serve, running.
func newSigningFixture(t *testing.T, e *testEnv) (*signingFixture, *server) {
	t.Helper()
	f := &signingFixture{e: e, key: e.createAPIKey("signing")}
	s := e.serve()
	code, in := call(t, "POST", s.base+"/v1/inboxes", f.key, imapInbox("owner@example.org", "pw"))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/inboxes = %d %v", code, in)
	}
	f.id = in["id"].(string)
	return f, s
}

// restart stops s and serves again.
func (f *signingFixture) restart(s *server) *server {
	f.e.t.Helper()
	if err := s.stop(); err != nil {
		f.e.t.Fatal(err)
	}
	return f.e.serve()
}

// keyID is the ID that HOLDFAST_SECRET_KEY gives a key listed alone.
func keyID(t *testing.T, key string) string {
	t.Helper()
	k, err := secrets.FromEnv(key)
	if err != nil {
		t.Fatal(err)
	}
	return k.ActiveID()
}

// TestSigningKeysSurviveSecretKeyRotation signs status links and
// dashboard sessions with only HOLDFAST_SECRET_KEY set, as several nodes
// on PostgreSQL do, and rotates that key as docs/operations.md says: add
// the new key last, move it first, keys rotate, drop the old one. The
// links serve made and the session stay valid through every step, and so
// does a link made before the signing keys were stored (signed with the
// key derived from HOLDFAST_SECRET_KEY).
func TestSigningKeysSurviveSecretKeyRotation(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, eng)
			e.env["HOLDFAST_SECRET_KEY"] = secretK1
			legacy := signLink(t, notify.DeriveKey(secretK1))
			f, s := newSigningFixture(t, e)
			dash := signIn(t, s.base, f.key)
			link := dash.statusLink(s.base, f.id)
			id1 := keyID(t, secretK1)
			for _, step := range []struct {
				name, secretKey string
				keysRotate      bool
			}{
				{"new key last", id1 + ":" + secretK1 + ",k2:" + secretK2, false},
				{"new key first", "k2:" + secretK2 + "," + id1 + ":" + secretK1, true},
				{"old key dropped", "k2:" + secretK2, false},
			} {
				e.env["HOLDFAST_SECRET_KEY"] = step.secretKey
				s = f.restart(s)
				if code := statusCode(t, s.base, link); code != http.StatusOK {
					t.Errorf("%s: GET the status link serve made = %d; want 200", step.name, code)
				}
				if code := statusCode(t, s.base, legacy); code != http.StatusOK {
					t.Errorf("%s: GET a status link made before the upgrade = %d; want 200", step.name, code)
				}
				if !dash.signedIn(s.base) {
					t.Errorf("%s: the dashboard session made under the first key is refused", step.name)
				}
				if step.keysRotate {
					if out, errOut, err := e.run("keys", "rotate"); err != nil || !strings.Contains(out, "2 signing keys scanned, 2 re-encrypted") {
						t.Fatalf("keys rotate = %q, %v; want the 2 signing keys re-encrypted\n%s", out, err, errOut)
					}
				}
			}
			if code := statusCode(t, s.base, signLink(t, notify.DeriveKey(e.env["HOLDFAST_SECRET_KEY"]))); code == http.StatusOK {
				t.Errorf("GET a link signed with the key derived from the new HOLDFAST_SECRET_KEY = %d; want it refused", code)
			}
		})
	}
}

// TestSigningKeysSharedOnPostgres starts several processes on one
// PostgreSQL database at once, with no shared data directory: they store
// one signing key and all use it, so a link or a session one node made is
// valid on another.
func TestSigningKeysSharedOnPostgres(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, postgresEngine)
	// Each process its own data directory.
	getenv := func(dir string) func(string) string {
		return func(k string) string {
			if k == "HOLDFAST_DATA_DIR" {
				return dir
			}
			return e.env[k]
		}
	}
	// The schema first: concurrent first migrations are another matter.
	if _, errOut, err := e.run("migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut)
	}
	const n = 4
	var (
		wg    sync.WaitGroup
		links [n][]byte
		errs  [n]error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			links[i], errs[i] = currentLinkKey(getenv(filepath.Join(t.TempDir(), "data")))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("process %d: %v", i, errs[i])
		}
		if string(links[i]) != string(links[0]) {
			t.Errorf("process %d signs with another key than process 0", i)
		}
	}

	f, a := newSigningFixture(t, e)
	e.env["HOLDFAST_DATA_DIR"] = filepath.Join(t.TempDir(), "other")
	b := e.serve()
	dash := signIn(t, a.base, f.key)
	if code := statusCode(t, b.base, dash.statusLink(a.base, f.id)); code != http.StatusOK {
		t.Errorf("GET on node B a status link node A made = %d; want 200", code)
	}
	if !dash.signedIn(b.base) {
		t.Error("node B refuses a dashboard session made on node A")
	}
	if code := statusCode(t, a.base, signLink(t, links[0])); code != http.StatusOK {
		t.Errorf("GET on node A a link signed with the key the concurrent starts stored = %d; want 200", code)
	}
}

// TestSigningKeyRotate rotates the stored signing key: links and sessions
// made before still work, and a second rotation voids the links of the
// first key.
func TestSigningKeyRotate(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, eng)
			f, s := newSigningFixture(t, e)
			dash := signIn(t, s.base, f.key)
			link0 := dash.statusLink(s.base, f.id)
			rotate := func() {
				t.Helper()
				if out, errOut, err := e.run("signing-key", "rotate"); err != nil {
					t.Fatalf("signing-key rotate = %q, %v\n%s", out, err, errOut)
				}
				s = f.restart(s)
			}
			rotate()
			link1 := dash.statusLink(s.base, f.id)
			for name, link := range map[string]string{"before the rotation": link0, "after": link1} {
				if code := statusCode(t, s.base, link); code != http.StatusOK {
					t.Errorf("GET a link made %s = %d; want 200", name, code)
				}
			}
			if !dash.signedIn(s.base) {
				t.Error("a dashboard session made before the rotation is refused")
			}
			rotate()
			if dash.signedIn(s.base) {
				t.Error("a dashboard session made two rotations ago is still accepted")
			}
			now := signIn(t, s.base, f.key).statusLink(s.base, f.id)
			for name, tt := range map[string]struct {
				link string
				want bool
			}{"two rotations ago": {link0, false}, "one rotation ago": {link1, true}, "now": {now, true}} {
				if code := statusCode(t, s.base, tt.link); (code == http.StatusOK) != tt.want {
					t.Errorf("GET a link made %s = %d; want accepted %v", name, code, tt.want)
				}
			}
		})
	}
}

// TestSigningKeyRotateRefusedWithEnv keeps HOLDFAST_SIGNING_KEY the
// operator's: signing-key rotate refuses to run with it set.
func TestSigningKeyRotateRefusedWithEnv(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	e.env["HOLDFAST_SIGNING_KEY"] = hex.EncodeToString([]byte(strings.Repeat("s", 32)))
	if _, _, err := e.run("signing-key", "rotate"); err == nil || !strings.Contains(err.Error(), "HOLDFAST_SIGNING_KEY is set") {
		t.Errorf("signing-key rotate with HOLDFAST_SIGNING_KEY = %v; want it refused", err)
	}
}

// TestSigningKeyFileImported upgrades a deployment that signed with
// status-link.key: its keys, current and previous, are stored at the
// first start, so links mailed before keep working.
func TestSigningKeyFileImported(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	dir := e.env["HOLDFAST_DATA_DIR"]
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	prev, cur := []byte(strings.Repeat("p", 32)), []byte(strings.Repeat("c", 32))
	file := hex.EncodeToString(cur) + "\n" + hex.EncodeToString(prev) + "\n"
	if err := os.WriteFile(filepath.Join(dir, notify.KeyFileName), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	s := e.serve()
	for name, k := range map[string][]byte{"previous": prev, "current": cur} {
		if code := statusCode(t, s.base, signLink(t, k)); code != http.StatusOK {
			t.Errorf("GET a link signed with the file's %s key = %d; want 200", name, code)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	// The file is no longer read: a rotation rotates the stored keys.
	if out, errOut, err := e.run("signing-key", "rotate"); err != nil {
		t.Fatalf("signing-key rotate = %q, %v\n%s", out, err, errOut)
	}
	s = e.serve()
	defer s.stop()
	for name, tt := range map[string]struct {
		key  []byte
		want bool
	}{"previous": {prev, false}, "current": {cur, true}} {
		if code := statusCode(t, s.base, signLink(t, tt.key)); (code == http.StatusOK) != tt.want {
			t.Errorf("after a rotation, GET a link signed with the file's %s key = %d; want accepted %v", name, code, tt.want)
		}
	}
}

// currentLinkKey loads the signing keys as serve does, with the
// environment getenv, and returns the key that signs new status links.
func currentLinkKey(getenv func(string) string) ([]byte, error) {
	var cfg config.Config
	fs, finish := config.NewFlagSet("test", config.FlagsStore, &cfg, getenv, io.Discard)
	if err := parse(fs, nil, finish); err != nil {
		return nil, err
	}
	ring, err := openKeyring(&cfg)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	b, err := openBackend(context.Background(), &cfg, log)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := b.migrate(context.Background()); err != nil {
		return nil, err
	}
	keys, err := loadSigningKeys(context.Background(), &cfg, b.store, ring, log)
	if err != nil {
		return nil, err
	}
	return keys.links[0], nil
}

// TestOpenSigningKeys reads stored signing keys back: the current one, and
// the previous one only while a link it signed may still be valid, the
// link lifetime after the current one was made.
func TestOpenSigningKeys(t *testing.T) {
	t.Parallel()
	ring, err := secrets.FromEnv(secretK1)
	if err != nil {
		t.Fatal(err)
	}
	made := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	older, prev, cur := pairOf([]byte(strings.Repeat("o", 32))), legacyPair(secretK1), pairOf([]byte(strings.Repeat("c", 40)))
	var stored []*holdfast.SigningKey
	for gen, p := range map[int64]signingPair{3: cur, 2: prev, 1: older} {
		sealed, err := ring.Seal(p.encode(), secrets.SigningKeyAAD(gen))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, &holdfast.SigningKey{Generation: gen, Sealed: sealed, CreatedAt: made.Add(time.Duration(gen) * time.Hour)})
	}
	slices.SortFunc(stored, func(a, b *holdfast.SigningKey) int { return int(b.Generation - a.Generation) })
	for _, tt := range []struct {
		name string
		now  time.Time
		want []signingPair
	}{
		{"just made", made.Add(3 * time.Hour), []signingPair{cur, prev}},
		{"a second before the links of the previous key expire", made.Add(3*time.Hour + notify.DefaultLinkLifetime - time.Second), []signingPair{cur, prev}},
		{"once they expired", made.Add(3*time.Hour + notify.DefaultLinkLifetime), []signingPair{cur}},
	} {
		got, err := openSigningKeys(stored, ring, tt.now)
		if err != nil {
			t.Fatalf("%s: openSigningKeys() = %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(signingPair{})); diff != "" {
			t.Errorf("%s: openSigningKeys() (-want +got):\n%s", tt.name, diff)
		}
	}
	// A sealed key moved to another generation does not open.
	stored[0].Generation = 9
	if _, err := openSigningKeys(stored, ring, made); err == nil {
		t.Error("openSigningKeys() of a key under another generation = nil; want an error")
	}
}

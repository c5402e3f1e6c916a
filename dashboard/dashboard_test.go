package dashboard

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/monitor"
	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// now is the fixed time of every test.
var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeHealth does what the monitor does to the store, without the engine.
type fakeHealth struct {
	st    holdfast.Store
	clock holdfast.Clock

	mu       sync.Mutex
	resolved []int64
	released []int64
	declared []monitor.Declaration
}

var _ Health = (*fakeHealth)(nil)

func (f *fakeHealth) Declare(ctx context.Context, d monitor.Declaration) (*holdfast.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	all, err := f.st.Incidents(ctx, false, 1000)
	if err != nil {
		return nil, err
	}
	var max int64
	for _, in := range all {
		if in.Open() && in.Provider == d.Provider && in.Tenant == d.Tenant {
			return nil, fmt.Errorf("declare: %w", holdfast.ErrConflict)
		}
		max = maxInt(max, in.ID)
	}
	start := d.Start
	if start.IsZero() {
		start = f.clock.Now()
	}
	in := &holdfast.Incident{ID: max + 1, Kind: "declared", Provider: d.Provider, Tenant: d.Tenant, OpenedAt: start, ResolvedAt: d.End,
		Evidence: "declared by operator: " + d.Note, Timeline: []holdfast.IncidentEntry{{At: start, What: "opened: declared by operator"}}}
	if err := f.st.SaveIncident(ctx, in, nil); err != nil {
		return nil, err
	}
	f.declared = append(f.declared, d)
	return in, nil
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func (f *fakeHealth) Resolve(ctx context.Context, id int64) (*holdfast.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, err := f.st.IncidentByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if !in.Open() {
		return nil, fmt.Errorf("resolve incident %d: %w", id, holdfast.ErrConflict)
	}
	in.ResolvedAt = f.clock.Now()
	in.Timeline = append(in.Timeline, holdfast.IncidentEntry{At: in.ResolvedAt, What: "resolved by operator"})
	if err := f.st.SaveIncident(ctx, in, nil); err != nil {
		return nil, err
	}
	f.resolved = append(f.resolved, id)
	return in, nil
}

func (f *fakeHealth) Release(ctx context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	hs, err := f.st.FindHeldActions(ctx, holdfast.HeldActionFilter{ID: id, Limit: 1})
	if err != nil {
		return err
	}
	if len(hs) == 0 {
		return holdfast.ErrNotFound
	}
	h := hs[0]
	if h.Done {
		return fmt.Errorf("release %d: %w", id, holdfast.ErrConflict)
	}
	h.Done, h.Outcome, h.ClosedAt = true, "released by operator", f.clock.Now()
	f.released = append(f.released, id)
	return f.st.SaveHeldAction(ctx, h)
}

// testBundle is what a test works with.
type testBundle struct {
	h      http.Handler
	st     holdfast.Store
	health *fakeHealth
	clock  *fixedClock
	key    string
}

// Fixed IDs of the seeded inboxes.
const (
	inboxA = "inb_06h2409mwp2sg3rvkk7pw75md0" // a@contoso.com, paused
	inboxB = "inb_06h2409mwp2sg3rvkk7pw75md4" // b@contoso.com, paused
	inboxC = "inb_06h2409mwp2sg3rvkk7pw75md8" // carol@example.org, needs reconnect
	inboxD = "inb_06h2409mwp2sg3rvkk7pw75mdc" // dave@gmail.com, connected
)

// setup makes a dashboard over a SQLite store holding an open Microsoft
// incident with two paused inboxes and a held action, a resolved IMAP
// incident, and notices in every status.
func setup(t testing.TB) *testBundle { return setupWith(t, false) }

// setupWith is setup, with the day of fleet snapshots if snapshots.
func setupWith(t testing.TB, snapshots bool) *testBundle { return setupOver(t, snapshots, nil) }

// setupOver is setupWith, the dashboard reading the store through wrap
// if it is not nil.
func setupOver(t testing.TB, snapshots bool, wrap func(holdfast.Store) holdfast.Store) *testBundle {
	t.Helper()
	ctx := t.Context()
	st := sqlitetest.Open(t)
	clock := &fixedClock{t: now}
	key, rec := holdfast.NewAPIKey("ops", now.Add(-48*time.Hour))
	must(t, st.CreateAPIKey(ctx, rec))

	opened := now.Add(-42 * time.Minute)
	inbox := func(id, email string, p holdfast.Provider, tenant string, created time.Time, moves ...holdfast.StateChange) {
		in := &holdfast.Inbox{ID: id, Email: email, Provider: p, Tenant: tenant, State: holdfast.StateConnecting, Reason: "created",
			Message: holdfast.DefaultMessage(holdfast.StateConnecting), Since: created, CreatedAt: created, UpdatedAt: created}
		must(t, st.CreateInbox(ctx, in, holdfast.Event{InboxID: id, At: created, NewState: holdfast.StateConnecting, Reason: "created",
			Message: "Inbox connected through the API.", Cause: holdfast.CauseAPI}))
		for _, c := range moves {
			if c.Message == "" {
				c.Message = holdfast.DefaultMessage(c.To)
			}
			if _, err := st.ChangeState(ctx, id, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	day := now.Add(-30 * time.Hour)
	connected := holdfast.StateChange{To: holdfast.StateConnected, Reason: "verified", Cause: holdfast.CauseHealth, At: day.Add(time.Minute)}
	inbox(inboxA, "a@contoso.com", holdfast.ProviderMicrosoft, "contoso.com", day, connected,
		holdfast.StateChange{To: holdfast.StateDegraded, Reason: "provider_unavailable", Cause: holdfast.CauseHealth, At: opened.Add(-3 * time.Minute)},
		holdfast.StateChange{To: holdfast.StatePaused, Reason: "provider_outage", Cause: holdfast.CauseHealth, At: opened.Add(30 * time.Second)})
	inbox(inboxB, "b@contoso.com", holdfast.ProviderMicrosoft, "contoso.com", day, connected,
		holdfast.StateChange{To: holdfast.StatePaused, Reason: "provider_outage", Cause: holdfast.CauseHealth, At: opened.Add(40 * time.Second)})
	inbox(inboxC, "carol@example.org", holdfast.ProviderIMAP, "imap.example.org", day, connected,
		holdfast.StateChange{To: holdfast.StateNeedsReconnect, Reason: "password_changed", Cause: holdfast.CauseHealth, At: now.Add(-3 * time.Hour)})
	inbox(inboxD, "dave@gmail.com", holdfast.ProviderGoogle, "gmail.com", day, connected)

	must(t, st.SaveIncident(ctx, &holdfast.Incident{
		ID: 1, Kind: "tenant_outage", Provider: holdfast.ProviderIMAP, Tenant: "imap.example.org",
		OpenedAt: now.Add(-20 * time.Hour), ResolvedAt: now.Add(-19 * time.Hour), Evidence: "3 of 3 inboxes failing with network errors",
		Affected: 1, Recovered: 1, Timeline: []holdfast.IncidentEntry{
			{At: now.Add(-20 * time.Hour), What: "opened: 3 of 3 inboxes failing with network errors"},
			{At: now.Add(-19 * time.Hour), What: "resolved"},
			{At: now.Add(-19*time.Hour + time.Minute), What: "recovery done: 1 recovery grants"},
		},
	}, nil))
	must(t, st.SaveIncident(ctx, &holdfast.Incident{
		ID: 2, Kind: "provider_outage", Provider: holdfast.ProviderMicrosoft,
		OpenedAt: opened, Evidence: "2 of 2 inboxes failing with provider_unavailable across 1 tenant", Affected: 2,
		Timeline: []holdfast.IncidentEntry{{At: opened, What: "opened: 2 of 2 inboxes failing with provider_unavailable across 1 tenant"}},
	}, nil))
	must(t, st.SaveHeldAction(ctx, &holdfast.HeldAction{ID: 1, InboxID: inboxA, Provider: holdfast.ProviderMicrosoft, Tenant: "contoso.com",
		To: holdfast.StateNeedsReconnect, Reason: "token_revoked", Why: "incident", HeldAt: opened.Add(5 * time.Minute)}))
	must(t, st.SaveHeldAction(ctx, &holdfast.HeldAction{ID: 2, InboxID: inboxC, Provider: holdfast.ProviderIMAP, Tenant: "imap.example.org",
		To: holdfast.StateNeedsReconnect, Reason: "password_changed", Why: "budget", HeldAt: now.Add(-4 * time.Hour),
		Done: true, Outcome: "taken: budget allowed", ClosedAt: now.Add(-3 * time.Hour)}))

	notice := func(inboxID string, episode int64, at time.Time, to holdfast.NoticeStatus, reason holdfast.NoticeStatusReason) {
		n := &holdfast.Notice{InboxID: inboxID, Episode: episode, Reason: "token_revoked", At: at}
		must(t, st.AppendNotice(ctx, n))
		if to == holdfast.NoticePending {
			return
		}
		from := holdfast.NoticePending
		if to == holdfast.NoticeSent {
			_, err := st.ChangeNotice(ctx, n.ID, holdfast.NoticeChange{From: from, To: holdfast.NoticeSending, At: at.Add(time.Minute)})
			must(t, err)
			from = holdfast.NoticeSending
		}
		_, err := st.ChangeNotice(ctx, n.ID, holdfast.NoticeChange{From: from, To: to, Reason: reason, At: at.Add(15 * time.Minute)})
		must(t, err)
	}
	notice(inboxC, 1, now.Add(-3*time.Hour), holdfast.NoticeSent, "")
	notice(inboxA, 1, opened.Add(2*time.Minute), holdfast.NoticeCancelled, "incident")
	notice(inboxD, 1, now.Add(-10*time.Hour), holdfast.NoticeCancelled, "recovered")
	notice(inboxB, 1, now.Add(-5*time.Minute), holdfast.NoticePending, "")

	// A day of snapshots, one a minute, with a 20-minute gap (holdfast
	// down) and the outage at the end.
	for at := now.Add(-24 * time.Hour).Add(time.Minute); snapshots && !at.After(now); at = at.Add(time.Minute) {
		if at.After(now.Add(-10*time.Hour)) && at.Before(now.Add(-10*time.Hour+20*time.Minute)) {
			continue
		}
		ms := []holdfast.InboxCount{{Provider: holdfast.ProviderMicrosoft, State: holdfast.StateConnected, Count: 2}}
		if !at.Before(opened) {
			ms = []holdfast.InboxCount{{Provider: holdfast.ProviderMicrosoft, State: holdfast.StatePaused, Count: 2}}
		}
		imapState := holdfast.StateConnected
		if !at.Before(now.Add(-3 * time.Hour)) {
			imapState = holdfast.StateNeedsReconnect
		} else if !at.Before(now.Add(-20*time.Hour)) && at.Before(now.Add(-19*time.Hour)) {
			imapState = holdfast.StatePaused
		}
		counts := append(ms,
			holdfast.InboxCount{Provider: holdfast.ProviderGoogle, State: holdfast.StateConnected, Count: 1},
			holdfast.InboxCount{Provider: holdfast.ProviderIMAP, State: imapState, Count: 1})
		must(t, st.AppendFleetSnapshot(ctx, at, counts))
	}

	health := &fakeHealth{st: st, clock: clock}
	var dst holdfast.Store = st
	if wrap != nil {
		dst = wrap(st)
	}
	h, err := New(Config{Store: dst, Health: health, Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil)), Clock: clock,
		SessionKey: DeriveKey([]byte("a test secret of at least thirty-two bytes")),
		StatusURL:  func(email string, _ time.Time) string { return "/status/token-for-" + email },
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{h: h, st: st, health: health, clock: clock, key: key}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tWriter sends logs to t.Log; a fuzz target's logs are dropped, since
// testing.F may not log from inside it.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	if _, fuzz := w.t.(*testing.F); !fuzz {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// browser is a cookie-keeping client of the handler.
type browser struct {
	t       testing.TB
	h       http.Handler
	cookies map[string]*http.Cookie
	headers map[string]string
}

func (b *testBundle) browser(t testing.TB) *browser {
	return &browser{t: t, h: b.h, cookies: map[string]*http.Cookie{}, headers: map[string]string{}}
}

// do sends one request and keeps the cookies it sets.
func (br *browser) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	br.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range br.headers {
		req.Header.Set(k, v)
	}
	for _, c := range br.cookies {
		if strings.HasPrefix(req.URL.Path, c.Path) {
			req.AddCookie(c)
		}
	}
	w := httptest.NewRecorder()
	br.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(br.cookies, c.Name)
		} else {
			br.cookies[c.Name] = c
		}
	}
	return w
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token of the page's forms.
func csrfOf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// login signs in with key through the form and returns the session's
// CSRF token.
func (br *browser) login(key string) string {
	br.t.Helper()
	w := br.do("GET", "/ui/login", nil)
	if w.Code != http.StatusOK {
		br.t.Fatalf("GET /ui/login = %d", w.Code)
	}
	w = br.do("POST", "/ui/login", url.Values{"csrf": {csrfOf(br.t, w.Body.String())}, "api_key": {key}, "next": {"/ui/"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/" {
		br.t.Fatalf("POST /ui/login = %d to %q, want 303 to /ui/:\n%s", w.Code, w.Header().Get("Location"), w.Body)
	}
	w = br.do("GET", "/ui/", nil)
	if w.Code != http.StatusOK {
		br.t.Fatalf("GET /ui/ after sign-in = %d", w.Code)
	}
	return csrfOf(br.t, w.Body.String())
}

func TestLoginRequired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/ui/", "/ui/incidents", "/ui/incidents/2", "/ui/held", "/ui/outbox", "/ui/inboxes?q=a", "/ui/inboxes/" + inboxA, "/ui/nowhere"} {
		w := b.browser(t).do("GET", path, nil)
		if want := "/ui/login?next=" + url.QueryEscape(path); w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
			t.Errorf("GET %s without a session = %d to %q, want 303 to %q", path, w.Code, w.Header().Get("Location"), want)
		}
	}
	w := b.browser(t).do("POST", "/ui/incidents/2/resolve", url.Values{"csrf": {"x"}})
	if w.Code != http.StatusForbidden {
		t.Errorf("POST resolve without a session = %d, want 403", w.Code)
	}
	if len(b.health.resolved) != 0 {
		t.Errorf("resolved without a session: %v", b.health.resolved)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("bad key", func(t *testing.T) {
		br := b.browser(t)
		w := br.do("GET", "/ui/login?next=%2Fui%2Fheld", nil)
		tok := csrfOf(t, w.Body.String())
		w = br.do("POST", "/ui/login", url.Values{"csrf": {tok}, "api_key": {"hf_not_a_key"}, "next": {"/ui/held"}})
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "That API key is not valid.") {
			t.Errorf("POST /ui/login with a bad key = %d:\n%s", w.Code, w.Body)
		}
		if _, ok := br.cookies[sessionCookie]; ok {
			t.Error("a bad key got a session cookie")
		}
		if !strings.Contains(w.Body.String(), `name="next" value="/ui/held"`) {
			t.Error("the form lost where to go after signing in")
		}
	})
	t.Run("no form token", func(t *testing.T) {
		br := b.browser(t)
		br.do("GET", "/ui/login", nil)
		w := br.do("POST", "/ui/login", url.Values{"api_key": {b.key}})
		if w.Code != http.StatusForbidden {
			t.Errorf("POST /ui/login without the form's token = %d, want 403", w.Code)
		}
		if _, ok := br.cookies[sessionCookie]; ok {
			t.Error("a sign-in without the form's token got a session cookie")
		}
	})
	t.Run("cookie flags", func(t *testing.T) {
		br := b.browser(t)
		br.headers["X-Forwarded-Proto"] = "https"
		br.login(b.key)
		c := br.cookies[sessionCookie]
		if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" {
			t.Fatalf("session cookie = %+v, want HttpOnly, Secure, SameSite=Strict, Path=/ui/", c)
		}
		if want := now.Add(DefaultSessionLifetime); !c.Expires.Equal(want) {
			t.Errorf("session expires %v, want %v", c.Expires, want)
		}
	})
	t.Run("next", func(t *testing.T) {
		for next, want := range map[string]string{"/ui/held": "/ui/held", "https://evil.example/": "/ui/", "//evil.example/ui/": "/ui/", "/ui/login": "/ui/"} {
			br := b.browser(t)
			tok := csrfOf(t, br.do("GET", "/ui/login", nil).Body.String())
			w := br.do("POST", "/ui/login", url.Values{"csrf": {tok}, "api_key": {b.key}, "next": {next}})
			if got := w.Header().Get("Location"); got != want {
				t.Errorf("sign-in with next=%q goes to %q, want %q", next, got, want)
			}
		}
	})
	t.Run("tampered, expired and signed out", func(t *testing.T) {
		br := b.browser(t)
		csrf := br.login(b.key)
		good := br.cookies[sessionCookie].Value
		flip := map[bool]string{true: "B", false: "C"}[good[12] != 'B']
		br.cookies[sessionCookie].Value = good[:12] + flip + good[13:]
		if w := br.do("GET", "/ui/", nil); w.Code != http.StatusSeeOther {
			t.Errorf("GET with a tampered session = %d, want 303", w.Code)
		}
		br.cookies[sessionCookie].Value = good
		if w := br.do("POST", "/ui/logout", url.Values{"csrf": {csrf}}); w.Code != http.StatusSeeOther {
			t.Errorf("POST /ui/logout = %d, want 303", w.Code)
		}
		if w := br.do("GET", "/ui/", nil); w.Code != http.StatusSeeOther {
			t.Errorf("GET after signing out = %d, want 303", w.Code)
		}
	})
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := b.browser(t)
	br.login(b.key)
	b.clock.Advance(DefaultSessionLifetime - time.Second)
	if w := br.do("GET", "/ui/held", nil); w.Code != http.StatusOK {
		t.Errorf("GET a second before the session ends = %d, want 200", w.Code)
	}
	b.clock.Advance(time.Second)
	if w := br.do("GET", "/ui/held", nil); w.Code != http.StatusSeeOther {
		t.Errorf("GET once the session ended = %d, want 303 to the sign-in form", w.Code)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := b.browser(t)
	csrf := br.login(b.key)
	other := b.browser(t)
	otherCSRF := other.login(b.key)

	for _, tt := range []struct {
		name   string
		form   url.Values
		origin string
	}{
		{"no token", url.Values{}, ""},
		{"wrong token", url.Values{"csrf": {"AAAA"}}, ""},
		{"another session's token", url.Values{"csrf": {otherCSRF}}, ""},
		{"another origin", url.Values{"csrf": {csrf}}, "https://evil.example"},
	} {
		for _, path := range []string{"/ui/incidents/2/resolve", "/ui/held/1/release", "/ui/incidents", "/ui/logout"} {
			br.headers["Origin"] = tt.origin
			if tt.origin == "" {
				delete(br.headers, "Origin")
			}
			if w := br.do("POST", path, tt.form); w.Code != http.StatusForbidden {
				t.Errorf("POST %s with %s = %d, want 403", path, tt.name, w.Code)
			}
		}
	}
	delete(br.headers, "Origin")
	if len(b.health.resolved)+len(b.health.released)+len(b.health.declared) != 0 {
		t.Fatalf("a forged POST acted: resolved %v, released %v, declared %v", b.health.resolved, b.health.released, b.health.declared)
	}
	if w := br.do("GET", "/ui/", nil); w.Code != http.StatusOK {
		t.Errorf("a forged logout signed the session out: GET /ui/ = %d", w.Code)
	}

	// With the token, the actions go through.
	br.headers["Origin"] = "http://example.com"
	w := br.do("POST", "/ui/incidents/2/resolve", url.Values{"csrf": {csrf}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/incidents/2?done=resolved" {
		t.Errorf("POST resolve = %d to %q", w.Code, w.Header().Get("Location"))
	}
	w = br.do("POST", "/ui/incidents/2/resolve", url.Values{"csrf": {csrf}})
	if w.Header().Get("Location") != "/ui/incidents/2?done=already_resolved" {
		t.Errorf("second POST resolve goes to %q", w.Header().Get("Location"))
	}
	if w := br.do("GET", "/ui/incidents/2?done=resolved", nil); !strings.Contains(w.Body.String(), "The incident is resolved") || strings.Contains(w.Body.String(), "Resolve incident 2") {
		t.Errorf("the incident page after resolving:\n%s", w.Body)
	}
	w = br.do("POST", "/ui/held/1/release", url.Values{"csrf": {csrf}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/held?done=released" {
		t.Errorf("POST release = %d to %q", w.Code, w.Header().Get("Location"))
	}
	if w := br.do("POST", "/ui/held/1/release", url.Values{"csrf": {csrf}}); w.Header().Get("Location") != "/ui/held?done=not_pending" {
		t.Errorf("second POST release goes to %q", w.Header().Get("Location"))
	}
	if w := br.do("POST", "/ui/held/99/release", url.Values{"csrf": {csrf}}); w.Code != http.StatusNotFound {
		t.Errorf("POST release of an unknown held action = %d, want 404", w.Code)
	}
	if got, want := b.health.resolved, []int64{2}; !cmp.Equal(got, want) {
		t.Errorf("resolved %v, want %v", got, want)
	}
	if got, want := b.health.released, []int64{1}; !cmp.Equal(got, want) {
		t.Errorf("released %v, want %v", got, want)
	}
}

func TestDeclare(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := b.browser(t)
	csrf := br.login(b.key)
	for _, tt := range []struct {
		name string
		form url.Values
		code int
		want string
	}{
		{"no provider", url.Values{}, 400, "provider: choose one"},
		{"future start", url.Values{"provider": {"google"}, "start": {"2026-11-28T13:00"}}, 400, "start: is in the future"},
		{"bad start", url.Values{"provider": {"google"}, "start": {"yesterday"}}, 400, "start: &#34;yesterday&#34; is not a time"},
		{"end without start", url.Values{"provider": {"google"}, "end": {"2026-11-28T11:00"}}, 400, "start: is required with an end"},
		{"end before start", url.Values{"provider": {"google"}, "start": {"2026-11-28T11:00"}, "end": {"2026-11-28T10:00"}}, 400, "end: is before the start"},
		{"conflict", url.Values{"provider": {"microsoft"}}, 409, "An open incident already covers this provider or tenant."},
	} {
		tt.form.Set("csrf", csrf)
		tt.form.Set("note", "kept on error")
		w := br.do("POST", "/ui/incidents", tt.form)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) || !strings.Contains(w.Body.String(), ">kept on error</textarea>") {
			t.Errorf("declare %s = %d, want %d saying %q and keeping the note:\n%s", tt.name, w.Code, tt.code, tt.want, w.Body)
		}
	}
	w := br.do("POST", "/ui/incidents", url.Values{"csrf": {csrf}, "provider": {"google"}, "start": {"2026-11-28T10:00"}, "end": {"2026-11-28T11:00:00Z"}, "note": {"retro"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/incidents/3?done=declared" {
		t.Fatalf("declare = %d to %q:\n%s", w.Code, w.Header().Get("Location"), w.Body)
	}
	want := []monitor.Declaration{{Provider: holdfast.ProviderGoogle, Note: "retro",
		Start: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 28, 11, 0, 0, 0, time.UTC)}}
	if diff := cmp.Diff(want, b.health.declared); diff != "" {
		t.Errorf("declared (-want +got):\n%s", diff)
	}
}

func TestInboxSearch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Inboxes A and C belong to boss@contoso.com, B and D to themselves.
	for _, id := range []string{inboxA, inboxC} {
		_, err := b.st.SetOwnerEmail(t.Context(), id, "boss@contoso.com")
		must(t, err)
	}
	br := b.browser(t)
	br.login(b.key)
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"q=a%40contoso.com", []string{"a@contoso.com"}},
		{"q=boss%40contoso.com", []string{"a@contoso.com", "carol@example.org"}},
		{"q=Boss%40Contoso.COM", []string{"a@contoso.com", "carol@example.org"}},
		{"q=bo", []string{"a@contoso.com", "carol@example.org"}},
		{"q=boss%40contoso.com&state=needs_reconnect", []string{"carol@example.org"}},
		{"q=dave%40gmail.com", []string{"dave@gmail.com"}},
		{"q=A%40Contoso.COM", []string{"a@contoso.com"}},
		{"q=b", []string{"a@contoso.com", "b@contoso.com", "carol@example.org"}}, // b@…, and boss@… owns A and C
		{"q=" + inboxC, []string{"carol@example.org"}},
		{"state=paused", []string{"a@contoso.com", "b@contoso.com"}},
		{"provider=google", []string{"dave@gmail.com"}},
		{"q=a&state=needs_reconnect", nil},
		{"q=zz", nil},
	} {
		w := br.do("GET", "/ui/inboxes?"+tt.query, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET /ui/inboxes?%s = %d", tt.query, w.Code)
			continue
		}
		var got []string
		for _, m := range regexp.MustCompile(`<a href="/ui/inboxes/inb_[^"]+">([^<]+)</a>`).FindAllStringSubmatch(w.Body.String(), -1) {
			got = append(got, m[1])
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("search %s (-want +got):\n%s", tt.query, diff)
		}
	}
	// The owner shows in the results and on the inbox page, linked to the
	// owner's inboxes.
	ownerLink := `<a href="/ui/inboxes?q=boss%40contoso.com">boss@contoso.com</a>`
	for _, path := range []string{"/ui/inboxes?q=boss%40contoso.com", "/ui/inboxes/" + inboxA} {
		if w := br.do("GET", path, nil); !strings.Contains(w.Body.String(), ownerLink) {
			t.Errorf("GET %s does not show %s:\n%s", path, ownerLink, w.Body)
		}
	}
	if w := br.do("GET", "/ui/inboxes/"+inboxD, nil); !strings.Contains(w.Body.String(), "<dt>Owner</dt><dd>dave@gmail.com <span") {
		t.Errorf("GET the page of an inbox without an owner address does not show it as its own owner:\n%s", w.Body)
	}
	if w := br.do("GET", "/ui/inboxes?state=bogus", nil); w.Code != http.StatusBadRequest {
		t.Errorf("GET /ui/inboxes?state=bogus = %d, want 400", w.Code)
	}
	if w := br.do("GET", "/ui/inboxes/inb_nope", nil); w.Code != http.StatusNotFound {
		t.Errorf("GET an unknown inbox = %d, want 404", w.Code)
	}
}

// TestPages renders every page and compares it with its golden file in
// testdata (go test ./dashboard -update rewrites them).
func TestPages(t *testing.T) {
	t.Parallel()
	b := setupWith(t, true)
	br := b.browser(t)
	br.login(b.key)
	pages := []struct{ name, path string }{
		{"fleet", "/ui/"},
		{"incidents", "/ui/incidents"},
		{"incident_open", "/ui/incidents/2"},
		{"incident_resolved", "/ui/incidents/1"},
		{"held", "/ui/held?done=released"},
		{"outbox_pending", "/ui/outbox"},
		{"outbox_cancelled", "/ui/outbox?status=cancelled"},
		{"inboxes", "/ui/inboxes?q=a%40contoso.com"},
		{"inbox", "/ui/inboxes/" + inboxA},
		{"not_found", "/ui/incidents/77"},
	}
	for _, p := range pages {
		w := br.do("GET", p.path, nil)
		wantCode := http.StatusOK
		if p.name == "not_found" {
			wantCode = http.StatusNotFound
		}
		if w.Code != wantCode {
			t.Errorf("GET %s = %d, want %d", p.path, w.Code, wantCode)
		}
		for h, want := range map[string]string{"Content-Type": "text/html; charset=utf-8", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
			if got := w.Header().Get(h); got != want {
				t.Errorf("GET %s: %s = %q, want %q", p.path, h, got, want)
			}
		}
		checkGolden(t, p.name, p.path, w.Body.String())
	}
	// The login page, without a session.
	w := b.browser(t).do("GET", "/ui/login", nil)
	checkGolden(t, "login", "/ui/login", w.Body.String())
}

// checkGolden compares the page got from path, its CSRF tokens blanked,
// with testdata/name.golden, or rewrites the file with -update.
func checkGolden(t *testing.T, name, path, got string) {
	t.Helper()
	got = csrfRe.ReplaceAllString(got, `name="csrf" value="CSRF"`)
	golden := filepath.Join("testdata", name+".golden")
	if *update {
		must(t, os.WriteFile(golden, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./dashboard -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("GET %s differs from %s (-want +got):\n%s", path, golden, diff)
	}
}

// TestIncidentChart checks that an incident's chart fits the incident: a
// 20-second one between two snapshots shows its paused inbox from the
// event log, and a 3-hour one keeps 3 hours of context either side.
func TestIncidentChart(t *testing.T) {
	t.Parallel()
	b := setup(t) // no snapshots: this test writes its own
	ctx := t.Context()
	const inboxE = "inb_06h2409mwp2sg3rvkk7pw75mdg"
	longOpened, longResolved := now.Add(-9*time.Hour), now.Add(-6*time.Hour)
	shortOpened, shortResolved := now.Add(-2*time.Hour+10*time.Second), now.Add(-2*time.Hour+30*time.Second)
	created := now.Add(-30 * time.Hour)
	e := &holdfast.Inbox{ID: inboxE, Email: "erin@gmail.com", Provider: holdfast.ProviderGoogle, Tenant: "gmail.com", State: holdfast.StateConnected,
		Reason: "verified", Message: holdfast.DefaultMessage(holdfast.StateConnected), Since: created, CreatedAt: created, UpdatedAt: created}
	must(t, b.st.CreateInbox(ctx, e, holdfast.Event{InboxID: inboxE, At: created, NewState: holdfast.StateConnected, Reason: "verified", Cause: holdfast.CauseAPI}))
	// paused is when erin@gmail.com was paused.
	paused := [][2]time.Time{
		{longOpened.Add(30 * time.Second), longResolved.Add(20 * time.Second)},
		{shortOpened.Add(2 * time.Second), shortResolved},
	}
	for _, p := range paused {
		for _, c := range []holdfast.StateChange{
			{To: holdfast.StatePaused, Reason: "provider_outage", Cause: holdfast.CauseHealth, At: p[0]},
			{To: holdfast.StateConnected, Reason: "recovered", Cause: holdfast.CauseHealth, At: p[1]},
		} {
			c.Message = holdfast.DefaultMessage(c.To)
			_, err := b.st.ChangeState(ctx, inboxE, c)
			must(t, err)
		}
	}
	for id, in := range map[int64][2]time.Time{3: {longOpened, longResolved}, 4: {shortOpened, shortResolved}} {
		must(t, b.st.SaveIncident(ctx, &holdfast.Incident{ID: id, Kind: "provider_outage", Provider: holdfast.ProviderGoogle,
			OpenedAt: in[0], ResolvedAt: in[1], Evidence: "2 of 2 inboxes failing", Affected: 1, Recovered: 1,
			Timeline: []holdfast.IncidentEntry{{At: in[0], What: "opened: 2 of 2 inboxes failing"}, {At: in[1], What: "resolved"}}}, nil))
	}
	// A snapshot a minute for 13 hours: dave@gmail.com connected, and
	// erin@gmail.com as it was.
	for at := now.Add(-13 * time.Hour); !at.After(now); at = at.Add(time.Minute) {
		st := holdfast.StateConnected
		for _, p := range paused {
			if !at.Before(p[0]) && at.Before(p[1]) {
				st = holdfast.StatePaused
			}
		}
		counts := []holdfast.InboxCount{{Provider: holdfast.ProviderGoogle, State: holdfast.StateConnected, Count: 1}}
		if st == holdfast.StatePaused {
			counts = append(counts, holdfast.InboxCount{Provider: holdfast.ProviderGoogle, State: holdfast.StatePaused, Count: 1})
		} else {
			counts[0].Count++
		}
		must(t, b.st.AppendFleetSnapshot(ctx, at, counts))
	}

	br := b.browser(t)
	br.login(b.key)
	for _, tt := range []struct {
		name, path string
		want       []string
	}{
		{"incident_long", "/ui/incidents/3", []string{"from 3 hours before the opening to 3 hours after the resolution", `<path d="M52.0 `, `fill="#8250df"`}},
		{"incident_short", "/ui/incidents/4", []string{"from 5 minutes before the opening to 5 minutes after the resolution", `<path d="M52.0 `, `fill="#8250df"`}},
	} {
		w := br.do("GET", tt.path, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", tt.path, w.Code)
		}
		for _, want := range tt.want {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("GET %s does not show %q", tt.path, want)
			}
		}
		checkGolden(t, tt.name, tt.path, w.Body.String())
	}
}

// TestNewestPastTheLimit checks that held actions and notices recorded
// after a thousand others are listed: on the held actions page (with their
// Release button), the incident page, the outbox and the inbox page.
func TestNewestPastTheLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	opened := now.Add(-42 * time.Minute) // incident 2, over inboxes A and B
	// 1000 held actions and 1000 notices of another inbox, closed and
	// cancelled long ago (IDs 3 to 1002 and 5 to 1004).
	for i := range int64(1000) {
		must(t, b.st.SaveHeldAction(ctx, &holdfast.HeldAction{ID: 3 + i, InboxID: inboxD, Provider: holdfast.ProviderGoogle, Tenant: "gmail.com",
			To: holdfast.StateNeedsReconnect, Reason: "invalid_grant", Why: "budget", HeldAt: now.Add(-20 * time.Hour),
			Done: true, Outcome: "cancelled: recovered", ClosedAt: now.Add(-19 * time.Hour)}))
		n := &holdfast.Notice{InboxID: inboxD, Episode: 2 + i, Reason: "invalid_grant", At: now.Add(-20 * time.Hour)}
		must(t, b.st.AppendNotice(ctx, n))
		_, err := b.st.ChangeNotice(ctx, n.ID, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeCancelled, Reason: "expired", At: now.Add(-19 * time.Hour)})
		must(t, err)
	}
	// Then the incident holds a disconnect of B and suppresses its notice.
	must(t, b.st.SaveHeldAction(ctx, &holdfast.HeldAction{ID: 1003, InboxID: inboxB, Provider: holdfast.ProviderMicrosoft, Tenant: "contoso.com",
		To: holdfast.StateNeedsReconnect, Reason: "token_revoked", Why: "incident", HeldAt: opened.Add(10 * time.Minute)}))
	n := &holdfast.Notice{InboxID: inboxB, Episode: 2, Reason: "token_revoked", At: opened.Add(20 * time.Minute)}
	must(t, b.st.AppendNotice(ctx, n))
	_, err := b.st.ChangeNotice(ctx, n.ID, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeCancelled, Reason: "incident", At: opened.Add(35 * time.Minute)})
	must(t, err)

	br := b.browser(t)
	csrf := br.login(b.key)
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/ui/held", []string{`action="/ui/held/1003/release"`, `action="/ui/held/1/release"`, `<td>1002</td>`}},
		{"/ui/incidents/2", []string{"held #1003: b@contoso.com to needs reconnect (token_revoked), held by incident",
			fmt.Sprintf("notice #%d to b@contoso.com suppressed (token_revoked)", n.ID), "2 destructive actions held, 2 notices suppressed"}},
		{"/ui/outbox?status=cancelled", []string{fmt.Sprintf("<tr><td>%d</td>", n.ID), "Only the newest 1,000 cancelled notices are shown."}},
		{"/ui/inboxes/" + inboxB, []string{"<tr><td>1003</td>", fmt.Sprintf("<tr><td>%d</td>", n.ID)}},
	} {
		w := br.do("GET", tt.path, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", tt.path, w.Code)
			continue
		}
		for _, want := range tt.want {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("GET %s does not show %q", tt.path, want)
			}
		}
	}
	w := br.do("POST", "/ui/held/1003/release", url.Values{"csrf": {csrf}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/held?done=released" {
		t.Errorf("POST release of held action 1003 = %d to %q", w.Code, w.Header().Get("Location"))
	}
	if got, want := b.health.released, []int64{1003}; !cmp.Equal(got, want) {
		t.Errorf("released %v, want %v", got, want)
	}
	if w := br.do("GET", "/ui/held", nil); strings.Contains(w.Body.String(), `action="/ui/held/1003/release"`) {
		t.Error("the held actions page still offers to release held action 1003 once released")
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for path, ctype := range map[string]string{"/ui/static/style.css": "text/css; charset=utf-8", "/ui/static/refresh.js": "text/javascript; charset=utf-8"} {
		w := b.browser(t).do("GET", path, nil)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ctype || w.Body.Len() == 0 {
			t.Errorf("GET %s = %d %q (%d bytes)", path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
	}
	if w := b.browser(t).do("GET", "/ui/static/nope.js", nil); w.Code != http.StatusNotFound {
		t.Errorf("GET an unknown static file = %d, want 404", w.Code)
	}
}

func TestNewRequires(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("New(Config{}) = nil error")
	}
	if _, err := New(Config{Store: nopStore{}, Health: &fakeHealth{}, Logger: slog.Default(), SessionKey: []byte("short")}); err == nil {
		t.Error("New with a short session key = nil error")
	}
}

// nopStore is a Store that is never called.
type nopStore struct{ holdfast.Store }

// TestEscalatedBanner: an open escalated incident says so in the banner
// shown on every page, and on its own page.
func TestEscalatedBanner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	opened := now.Add(-3 * time.Hour)
	must(t, b.st.SaveIncident(t.Context(), &holdfast.Incident{ID: 9, Kind: "declared", Provider: holdfast.ProviderGoogle,
		OpenedAt: opened, EscalatedAt: opened.Add(2 * time.Hour), Evidence: "declared by operator",
		Timeline: []holdfast.IncidentEntry{{At: opened, What: "opened: declared by operator"}}}, nil))
	br := b.browser(t)
	br.login(b.key)
	for _, tt := range []struct{ path, want string }{
		{"/ui/inboxes", "Escalated <time"},
		{"/ui/incidents/9", "<dt>Escalated</dt>"},
	} {
		w := br.do("GET", tt.path, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", tt.path, w.Code)
		}
		if body := w.Body.String(); !strings.Contains(body, tt.want) {
			t.Errorf("GET %s: no %q in the page", tt.path, tt.want)
		}
	}
	// Incident 2 of the fixture is open, not escalated: no such line for it.
	w := br.do("GET", "/ui/inboxes", nil)
	if n := strings.Count(w.Body.String(), `class="escalated"`); n != 1 {
		t.Errorf("escalated lines in the banner = %d, want 1", n)
	}
}

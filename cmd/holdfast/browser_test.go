package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/sqlite"
)

// chromiumPath finds headless Chromium: $HOLDFAST_CHROMIUM, or Debian's
// chromium on PATH. Under CI=true a missing browser fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOLDFAST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const how = "no chromium on PATH: install it (Debian: apt-get install chromium, or bash .ci/install-browser) or set HOLDFAST_CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal(how)
	}
	t.Skip(how)
	return ""
}

// screenshotDir is where the browser test saves its screenshots:
// $HOLDFAST_SCREENSHOTS, or a temporary folder.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HOLDFAST_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowserDashboard drives headless Chromium through the operators'
// dashboard while a Microsoft incident is open: sign-in with the API key,
// the fleet, the incident's review, held actions, the outbox, an inbox's
// history and its owner's status page; then it resolves the incident with
// the button. It saves a screenshot of each page.
func TestBrowserDashboard(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	shots := screenshotDir(t)
	t.Logf("screenshots in %s", shots)

	e := newTestEnv(t, sqliteEngine)
	key := e.createAPIKey("browser-test")
	emails := []string{"ana@contoso.com", "ben@contoso.com", "chloe@contoso.com", "dan@fabrikam.com", "eve@fabrikam.com"}
	seedFleet(t, e, emails, []string{"gus@gmail.com", "hana@gmail.com"})
	s := e.serve()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's logs:\n%s", s.logs)
		}
	})
	if code, in := call(t, "POST", s.base+"/v1/inboxes", key, imapInbox("ivan@example.org", "pw")); code != http.StatusCreated {
		t.Fatalf("POST /v1/inboxes = %d %v", code, in)
	}
	code, inc := call(t, "POST", s.base+"/v1/incidents", key, map[string]any{"provider": "microsoft", "note": "MO1020913: Exchange Online sign-in errors"})
	if code != http.StatusCreated {
		t.Fatalf("declare = %d %v", code, inc)
	}
	incID := int64(inc["id"].(float64))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		})
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(bctx, chromedp.Location())
		if err != nil {
			t.Fatalf("read the location: %v", err)
		}
		return loc
	}

	// Signed out, the dashboard sends the browser to the sign-in form.
	run("open the dashboard", chromedp.Navigate(s.base+"/ui/held"), chromedp.WaitVisible(chromedp.ID("api_key")))
	if loc := location(); !strings.Contains(loc, "/ui/login?next=") {
		t.Errorf("signed out, /ui/held went to %s, want the sign-in form", loc)
	}
	run("sign in with a wrong key",
		chromedp.SendKeys(chromedp.ID("api_key"), "hf_wrong"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".problem")),
	)
	if got := text(".problem"); !strings.Contains(got, "not valid") {
		t.Errorf("a wrong key says %q", got)
	}
	run("sign in", shot("login"),
		chromedp.SendKeys(chromedp.ID("api_key"), key),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(`//h1[text()="Held actions"]`),
		shot("held"),
	)
	if loc := location(); !strings.HasSuffix(loc, "/ui/held") {
		t.Errorf("after signing in the browser is at %s, want back at /ui/held", loc)
	}
	if lang, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS("html"), "lang")); err != nil || lang.Value != "en" {
		t.Errorf("<html lang> = %q, %v; want en", lang.Value, err)
	}

	run("fleet", chromedp.Navigate(s.base+"/ui/"), chromedp.WaitVisible(`//h1[text()="Fleet"]`), shot("fleet"))
	if got := text("#banner"); !strings.Contains(got, fmt.Sprintf("Incident %d", incID)) || !strings.Contains(got, "microsoft") {
		t.Errorf("the fleet page's banner = %q, want the open incident", got)
	}
	if got := text("main table"); !strings.Contains(got, "microsoft") || !strings.Contains(got, "google") {
		t.Errorf("the fleet table = %q", got)
	}
	// The page refreshes itself (refresh.js, every 15 s) under the
	// dashboard's Content-Security-Policy.
	before := text("#updated")
	deadline := time.Now().Add(25 * time.Second)
	for text("#updated") == before && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	if after := text("#updated"); after == before {
		t.Errorf("the fleet page did not refresh itself within 25 s: still %q", after)
	}

	run("incidents", chromedp.Navigate(s.base+"/ui/incidents"), chromedp.WaitVisible(`//h1[text()="Providers and incidents"]`), shot("incidents"))
	run("incident", chromedp.Click(fmt.Sprintf(`//main//a[text()="Incident %d"]`, incID)),
		chromedp.WaitVisible(`//h2[text()="Timeline"]`), shot("incident"))
	if got := text("main h1"); !strings.Contains(got, fmt.Sprintf("Incident %d", incID)) || !strings.Contains(got, "open") {
		t.Errorf("the incident page's heading = %q", got)
	}
	if got := text("main"); !strings.Contains(got, "declared") || !strings.Contains(got, "MO1020913") {
		t.Errorf("the incident page lacks its evidence: %q", got)
	}

	run("outbox", chromedp.Navigate(s.base+"/ui/outbox"), chromedp.WaitVisible(`//h1[text()="Notification outbox"]`), shot("outbox"))
	if got := text("main"); !strings.Contains(got, emails[3]) {
		t.Errorf("the outbox does not show the pending notice to %s: %q", emails[3], got)
	}

	run("inbox search",
		chromedp.Navigate(s.base+"/ui/inboxes"),
		chromedp.SendKeys(chromedp.ID("q"), "dan@"),
		chromedp.Submit(chromedp.ID("q")),
		chromedp.WaitVisible(`//main//a[text()="`+emails[3]+`"]`),
		chromedp.Click(`//main//a[text()="`+emails[3]+`"]`),
		chromedp.WaitVisible(`//h2[text()="History"]`),
		shot("inbox"),
	)
	if got := text("main"); !strings.Contains(got, "token_revoked") || !strings.Contains(got, "Inbox connected through the API.") {
		t.Errorf("the inbox's history lacks its creation: %q", got)
	}

	run("owner's status page",
		chromedp.Click(`//a[text()="open the owner's status page"]`),
		chromedp.WaitVisible(`//*[contains(text(),"`+emails[3]+`")]`),
		shot("status"),
	)
	if loc := location(); !strings.Contains(loc, "/status/") {
		t.Errorf("the status page link went to %s", loc)
	}

	resolve := `//button[starts-with(text(),"Resolve incident")]`
	run("resolve",
		chromedp.Navigate(fmt.Sprintf("%s/ui/incidents/%d", s.base, incID)),
		chromedp.WaitVisible(resolve),
		chromedp.Click(resolve),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		shot("incident_resolved"),
	)
	if got := text(".flash"); !strings.Contains(got, "resolved") {
		t.Errorf("after resolving, the page says %q", got)
	}
	if got := text("main h1"); !strings.Contains(got, "resolved") {
		t.Errorf("after resolving, the heading = %q", got)
	}
	if code, got := call(t, "GET", fmt.Sprintf("%s/v1/incidents/%d", s.base, incID), key, nil); code != http.StatusOK || got["state"] != "resolved" {
		t.Errorf("GET the incident after resolving it in the browser = %d %v, want resolved", code, got)
	}
	run("fleet without incident", chromedp.Navigate(s.base+"/ui/"), chromedp.WaitVisible(`//h1[text()="Fleet"]`))
	if got := text("#banner"); strings.TrimSpace(got) != "" {
		t.Errorf("the banner still shows %q once the incident is resolved", got)
	}
}

// seedFleet writes a day of history into the service's store before it
// starts, as the API, the health engine and the snapshot job would have
// recorded it: Microsoft and Google inboxes connected 30 hours ago, the
// fourth Microsoft inbox's token revoked (suspect, then needs reconnect
// with a pending notice to its owner), the first three degraded for the
// last 25 minutes, a short Google blip in the night, and a fleet snapshot
// every minute.
func seedFleet(t *testing.T, e *testEnv, microsoft, google []string) {
	t.Helper()
	if _, errOut, err := e.run("migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut)
	}
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(e.env["HOLDFAST_DATA_DIR"], "holdfast.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	created, trouble := now.Add(-30*time.Hour), now.Add(-25*time.Minute)
	add := func(p holdfast.Provider, email string, i int) {
		t.Helper()
		at := created.Add(time.Duration(i) * time.Second)
		in := &holdfast.Inbox{ID: holdfast.NewID("inb", at), Email: email, Provider: p, Tenant: email[strings.IndexByte(email, '@')+1:],
			State: holdfast.StateConnecting, Reason: "created", Message: holdfast.DefaultMessage(holdfast.StateConnecting),
			Since: at, CreatedAt: at, UpdatedAt: at}
		if err := st.CreateInbox(ctx, in, holdfast.Event{InboxID: in.ID, At: at, NewState: holdfast.StateConnecting, Reason: "created",
			Message: "Inbox connected through the API.", Cause: holdfast.CauseAPI}); err != nil {
			t.Fatal(err)
		}
		move := func(to holdfast.State, reason string, at time.Time) {
			if _, err := st.ChangeState(ctx, in.ID, holdfast.StateChange{To: to, Reason: reason, Message: holdfast.DefaultMessage(to), Cause: holdfast.CauseHealth, At: at}); err != nil {
				t.Fatal(err)
			}
		}
		move(holdfast.StateConnected, "verified", at.Add(time.Minute))
		if p == holdfast.ProviderGoogle {
			move(holdfast.StateDegraded, "provider_unavailable", now.Add(-9*time.Hour-40*time.Minute))
			move(holdfast.StateConnected, "recovered", now.Add(-9*time.Hour))
		}
		if p == holdfast.ProviderMicrosoft && i < 3 {
			move(holdfast.StateDegraded, "provider_unavailable", trouble.Add(time.Duration(i)*time.Minute))
		}
		if p == holdfast.ProviderMicrosoft && i == 3 {
			move(holdfast.StateSuspect, "token_revoked", now.Add(-95*time.Minute))
			move(holdfast.StateNeedsReconnect, "token_revoked", now.Add(-50*time.Minute))
			if err := st.AppendNotice(ctx, &holdfast.Notice{InboxID: in.ID, Episode: 1, Reason: "token_revoked", At: now.Add(-5 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, email := range microsoft {
		add(holdfast.ProviderMicrosoft, email, i)
	}
	for i, email := range google {
		add(holdfast.ProviderGoogle, email, i)
	}
	ms, gs := int64(len(microsoft)), int64(len(google))
	for at := now.Add(-24 * time.Hour).Truncate(time.Minute); at.Before(now); at = at.Add(time.Minute) {
		var degraded, suspect, lost int64
		ago := now.Sub(at)
		if ago <= 25*time.Minute {
			degraded = min(3, int64(25-ago/time.Minute)+1)
		}
		switch {
		case ago <= 50*time.Minute:
			lost = 1
		case ago <= 95*time.Minute:
			suspect = 1
		}
		snap := []holdfast.InboxCount{{Provider: holdfast.ProviderMicrosoft, State: holdfast.StateConnected, Count: ms - degraded - suspect - lost}}
		for _, c := range []holdfast.InboxCount{{State: holdfast.StateDegraded, Count: degraded}, {State: holdfast.StateSuspect, Count: suspect}, {State: holdfast.StateNeedsReconnect, Count: lost}} {
			if c.Count > 0 {
				c.Provider = holdfast.ProviderMicrosoft
				snap = append(snap, c)
			}
		}
		gState := holdfast.StateConnected
		if ago > 9*time.Hour && ago <= 9*time.Hour+40*time.Minute {
			gState = holdfast.StateDegraded
		}
		snap = append(snap, holdfast.InboxCount{Provider: holdfast.ProviderGoogle, State: gState, Count: gs})
		if err := st.AppendFleetSnapshot(ctx, at, snap); err != nil {
			t.Fatal(err)
		}
	}
}

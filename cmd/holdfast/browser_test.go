package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/holdfast/holdfast/emulator"
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

// browserMicrosoftInboxes is how many Microsoft inboxes the browser test
// connects, over eight tenants: enough for the engine to tell a provider
// outage from a few revoked grants (at least MinFailing, 20, failures in
// its long window) on the first round of failed syncs, in about 6 s. With
// 16 it needs their retries and takes about 14 s.
const browserMicrosoftInboxes = 24

// TestBrowserDashboard drives headless Chromium through the operators'
// dashboard during a real Microsoft outage: the emulator refuses every
// token and Graph request with AADSTS50173 until the health engine opens a
// provider incident by itself and pauses the inboxes. The browser signs in
// with the API key and goes through the fleet, the incident's review,
// held actions, the outbox, an inbox's history and its owner's status
// page (one inbox paused by the outage, one needing reconnect); then the
// fault ends, the first probes succeed, and it resolves the incident with
// the button and reads the recovery in the review. It saves a screenshot
// of each page.
func TestBrowserDashboard(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	shots := screenshotDir(t)
	t.Logf("screenshots in %s", shots)
	start := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }

	ctl, emuEnv := emulatorProcess(t)
	e := newTestEnv(t, sqliteEngine)
	for k, v := range emuEnv {
		e.env[k] = v
	}
	for k, v := range map[string]string{
		"HOLDFAST_LOG_LEVEL":           "info",
		"HOLDFAST_MICROSOFT_CLIENT_ID": emulator.DefaultClientID, "HOLDFAST_MICROSOFT_CLIENT_SECRET": emulator.DefaultClientSecret,
		"HOLDFAST_GOOGLE_CLIENT_ID": emulator.DefaultClientID, "HOLDFAST_GOOGLE_CLIENT_SECRET": emulator.DefaultClientSecret,
		// Syncs every 5 s and a 2 s detector bucket: the outage is seen
		// within seconds, well before a lost grant could be confirmed
		// (40 s). An incident's probes are judged over 15 s.
		"HOLDFAST_SYNC_INTERVAL": "5s", "HOLDFAST_HEALTH_BUCKET": "2s",
		"HOLDFAST_HEALTH_CONFIRM_SPAN": "40s", "HOLDFAST_HEALTH_CLOSE_WINDOW": "15s", "HOLDFAST_HEALTH_KEEPALIVE": "1m",
	} {
		e.env[k] = v
	}
	key := e.createAPIKey("browser-test")
	microsoft := browserMicrosoft(t, browserMicrosoftInboxes)
	google := []string{"gus@gmail.com", "hana@gmail.com", "iris@gmail.com", "jon@gmail.com", "kim@gmail.com", "lou@gmail.com"}
	owner := microsoft[3] // dan@fabrikam.com, whose Google inbox needs reconnecting
	seedOwner(t, e, owner)
	s := e.serve()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's logs (last 32 kB):\n%s", tail(s.logs.String(), 32<<10))
		}
	})
	connecting := time.Now()
	connectGrants(t, s.base, key, ctl, emulator.Microsoft, microsoft)
	connectGrants(t, s.base, key, ctl, emulator.Google, google)
	var states map[string]int
	waitFor(t, 60*time.Second, "every Microsoft and Google inbox connected", func() bool {
		states = fleetStates(t, s.base, key)
		if states["microsoft/connected"] == len(microsoft) && states["google/connected"] == len(google) {
			return true
		}
		time.Sleep(250 * time.Millisecond)
		return false
	})
	st := openTestStore(t, e)
	defer st.Close()
	// The made-up day of history ends well before the inboxes were
	// created, so that no chart counts them twice (in a made-up snapshot
	// and by their creation); the fleet as it is now follows.
	seedHistory(t, st, int64(len(microsoft)), int64(len(google)), connecting.Add(-6*time.Minute))
	takeSnapshot(t, st)
	step(fmt.Sprintf("%d Microsoft inboxes over %d tenants and %d Google ones connected", len(microsoft), len(browserTenants), len(google)))

	// The outage: every Microsoft token and Graph request is refused with
	// an error that normally means "the password changed".
	var fault struct {
		ID string `json:"id"`
	}
	control(t, "POST", ctl+"/faults", map[string]any{"provider": "microsoft", "surfaces": []string{"token", "graph"},
		"http_status": 400, "body": errorBody(t, "ms-token-50173")}, &fault)
	faultStart := time.Now()
	var inc map[string]any
	waitFor(t, 45*time.Second, "the health engine opens a Microsoft provider_outage incident", func() bool {
		if inc = openIncidentOf(t, s.base, key, "microsoft", "provider_outage"); inc != nil {
			return true
		}
		time.Sleep(250 * time.Millisecond)
		return false
	})
	incID := int64(inc["id"].(float64))
	step(fmt.Sprintf("incident %d opened %v after the fault: %s", incID, time.Since(faultStart).Round(100*time.Millisecond), inc["evidence"]))
	// Inboxes that had not synced since the fault are paused at their
	// next failure: wait until all are, so that the pages are stable.
	waitFor(t, 30*time.Second, "every Microsoft inbox paused by the incident", func() bool {
		states = fleetStates(t, s.base, key)
		if states["microsoft/paused"] == len(microsoft) {
			return true
		}
		time.Sleep(250 * time.Millisecond)
		return false
	})
	if n := states["microsoft/needs_reconnect"]; n != 0 {
		t.Errorf("%d Microsoft inboxes need reconnecting during the outage, want none", n)
	}
	takeSnapshot(t, st)
	step("every Microsoft inbox paused")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	// text reads the innerText of sel. The page's refresh (refresh.js)
	// replaces #banner, #content and #updated with fresh nodes; a read
	// that found a node just before it was replaced is read again.
	text := func(sel string) string {
		t.Helper()
		var err error
		for range 5 {
			var s string
			s, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
			if err == nil {
				return s
			}
			if !strings.Contains(err.Error(), "No node with given id") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("read %s: %v", sel, err)
		return ""
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(bctx, chromedp.Location())
		if err != nil {
			t.Fatalf("read the location: %v", err)
		}
		return loc
	}
	// count reads the number before what in the page's main text, or
	// fails the test.
	count := func(what string) int {
		t.Helper()
		page := text("main")
		m := regexp.MustCompile(`(\d+) ` + regexp.QuoteMeta(what)).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("the page does not say how many %q: %q", what, page)
		}
		n, _ := strconv.Atoi(m[1])
		return n
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

	run("fleet", chromedp.Navigate(s.base+"/ui/"), chromedp.WaitVisible(`//h1[text()="Fleet"]`))
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
	run("fleet", shot("fleet"))
	step("fleet page refreshed itself")

	run("incidents", chromedp.Navigate(s.base+"/ui/incidents"), chromedp.WaitVisible(`//h1[text()="Providers and incidents"]`), shot("incidents"))
	run("incident", chromedp.Click(fmt.Sprintf(`//main//a[text()="Incident %d"]`, incID)),
		chromedp.WaitVisible(`//h2[text()="Timeline"]`), shot("incident"))
	if got := text("main h1"); !strings.Contains(got, fmt.Sprintf("Incident %d", incID)) || !strings.Contains(got, "open") {
		t.Errorf("the incident page's heading = %q", got)
	}
	if got := text("main"); !strings.Contains(got, "provider_outage") {
		t.Errorf("the incident page does not say the engine detected a provider outage: %q", got)
	}
	// The review's timeline: the detection with its evidence, then the
	// inboxes paused.
	// (The phases are shown in capitals.)
	timeline := strings.ToLower(text("main tbody"))
	if !strings.Contains(timeline, "detection\topened: failing share") {
		t.Errorf("the incident's timeline lacks the engine's detection: %q", timeline)
	}
	if !strings.Contains(timeline, "paused\t") || !strings.Contains(timeline, "paused (nothing destructive") {
		t.Errorf("the incident's timeline does not show inboxes paused: %q", timeline)
	}
	if n := count("paused,"); n == 0 {
		t.Errorf("the incident page counts %d inboxes paused in the event log, want them all", n)
	}
	if n := count("inboxes paused or held under it"); n < len(microsoft)/2 {
		t.Errorf("the incident page says %d inboxes are affected, want most of the %d Microsoft ones", n, len(microsoft))
	}

	// The owner's notice for the revoked Google grant is not the
	// incident's business: it goes out (without a relay, to the log).
	deadline = time.Now().Add(30 * time.Second)
	for {
		run("outbox", chromedp.Navigate(s.base+"/ui/outbox?status=sent"), chromedp.WaitVisible(`//h1[text()="Notification outbox"]`))
		if strings.Contains(text("main"), owner) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox does not show the notice to %s as sent: %q", owner, text("main"))
		}
		time.Sleep(time.Second)
	}
	run("outbox", shot("outbox"))

	// The owner has two inboxes: Microsoft, paused by the outage, and
	// Google, whose grant was revoked.
	googleLink := `//main//tr[td[text()="google"]]//a[text()="` + owner + `"]`
	run("inbox search",
		chromedp.Navigate(s.base+"/ui/inboxes"),
		chromedp.SendKeys(chromedp.ID("q"), "dan@"),
		chromedp.Submit(chromedp.ID("q")),
		chromedp.WaitVisible(googleLink),
		chromedp.Click(googleLink),
		chromedp.WaitVisible(`//h2[text()="History"]`),
		shot("inbox"),
	)
	if got := text("main"); !strings.Contains(got, "token_revoked") || !strings.Contains(got, "Inbox connected through the API.") {
		t.Errorf("the inbox's history lacks its creation: %q", got)
	}

	run("owner's status page",
		chromedp.Click(`//a[text()="open the owner's status page"]`),
		chromedp.WaitVisible(`//*[contains(text(),"`+owner+`")]`),
		shot("status"),
	)
	if loc := location(); !strings.Contains(loc, "/status/") {
		t.Errorf("the status page link went to %s", loc)
	}
	if got := text("body"); !strings.Contains(got, "Paused by an outage at Microsoft") || !strings.Contains(got, "Needs reconnect") {
		t.Errorf("the owner's status page does not show one inbox paused by the outage and one needing reconnect: %q", got)
	}
	step("pages of the open incident read")

	// The outage ends. The incident's probes find inboxes working again;
	// once one is, the operator resolves the incident by hand and the
	// recovery ramp resumes the rest.
	control(t, "DELETE", ctl+"/faults/"+fault.ID, nil, nil)
	waitFor(t, 45*time.Second, "a probe of the incident resumes a Microsoft inbox", func() bool {
		states = fleetStates(t, s.base, key)
		if states["microsoft/connected"] > 0 {
			return true
		}
		time.Sleep(250 * time.Millisecond)
		return false
	})
	step(fmt.Sprintf("the fault ended; probes resumed %d inboxes", states["microsoft/connected"]))
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
	waitFor(t, 45*time.Second, "every Microsoft inbox connected again", func() bool {
		states = fleetStates(t, s.base, key)
		if states["microsoft/connected"] == len(microsoft) {
			return true
		}
		time.Sleep(250 * time.Millisecond)
		return false
	})
	takeSnapshot(t, st)
	step("every Microsoft inbox connected again")
	// Each came back by a probe or through the recovery ramp, and the
	// incident counts them all (it is stored again within a second).
	waitFor(t, 15*time.Second, "the incident counting every inbox recovered", func() bool {
		_, got := call(t, "GET", fmt.Sprintf("%s/v1/incidents/%d", s.base, incID), key, nil)
		if got["recovered"] == float64(len(microsoft)) {
			return true
		}
		time.Sleep(250 * time.Millisecond)
		return false
	})

	// The review now tells the whole story: detection, pauses, the
	// resolution, the recovery.
	run("incident after the recovery",
		chromedp.Navigate(fmt.Sprintf("%s/ui/incidents/%d", s.base, incID)),
		chromedp.WaitVisible(`//h2[text()="Timeline"]`),
		shot("incident_recovered"),
	)
	if n := count("inboxes resumed by the recovery"); n == 0 {
		t.Errorf("the incident page says %d inboxes were resumed by the recovery, want some", n)
	}
	if n := count("resumed,"); n != len(microsoft) {
		t.Errorf("the incident page counts %d inboxes that left the paused state, want %d", n, len(microsoft))
	}
	if got := text("main tbody"); !strings.Contains(got, "resolved by operator") || !strings.Contains(got, "recovery") {
		t.Errorf("the incident's timeline lacks its resolution and recovery: %q", got)
	}
	run("fleet without incident", chromedp.Navigate(s.base+"/ui/"), chromedp.WaitVisible(`//h1[text()="Fleet"]`))
	if got := text("#banner"); strings.TrimSpace(got) != "" {
		t.Errorf("the banner still shows %q once the incident is resolved", got)
	}
	step("done")
}

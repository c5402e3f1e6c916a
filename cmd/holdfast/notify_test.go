package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/provider/mailtest"
	"github.com/holdfast/holdfast/store/sqlite"
	"github.com/holdfast/holdfast/webhook"
)

// statusLinkRE matches the path of an owner's status link.
var statusLinkRE = regexp.MustCompile(`/status/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// statusLink returns the status page path a notice links to ("" if none),
// with quoted-printable soft line breaks removed.
func statusLink(msg []byte) string {
	body := strings.NewReplacer("=\r\n", "", "=\n", "").Replace(string(msg))
	return statusLinkRE.FindString(body)
}

// statusPath finds the status page path in the messages delivered to
// email's INBOX on srv.
func statusPath(t *testing.T, srv *mailtest.Server, email string) string {
	t.Helper()
	var found string
	for _, m := range srv.Messages(t, email, "INBOX") {
		if l := statusLink(m); l != "" {
			found = l
		}
	}
	if found == "" {
		t.Fatalf("no status link in %s's mailbox", email)
	}
	return found
}

// TestServeNoticeEmail runs serve with a real Postfix and Dovecot as the
// notification relay: an inbox whose owner must reconnect gets exactly
// one email, whose link opens a status page that says "Needs reconnect",
// and the host application one notice.sent event (channel email); a
// restart sends nothing more. Without a relay, the notice is not mailed
// but delivered as the notice.sent event alone (channel webhook).
//
// The engine takes 30 minutes of evidence and a 15-minute grace before it
// decides a notice, too long for this test: the test records the
// engine's decision itself (the inbox moved to needs_reconnect and its
// notice appended, as the monitor's writer does) while serve is stopped,
// and the notify sweep that runs at start delivers it.
func TestServeNoticeEmail(t *testing.T) {
	t.Parallel()
	for _, channel := range []string{notify.ChannelEmail, notify.ChannelWebhook} {
		t.Run(channel, func(t *testing.T) {
			t.Parallel()
			serveNotice(t, channel == notify.ChannelEmail)
		})
	}
}

func serveNotice(t *testing.T, relayed bool) {
	srv := mailtest.Start(t)
	const owner, relay, pw, relayPW = "owner@example.test", "holdfast@example.test", "the pw", "relay pw 7q"
	srv.AddUser(t, owner, pw)
	srv.AddUser(t, relay, relayPW)
	e := mailEnv(t, srv)
	if relayed {
		e.env["HOLDFAST_NOTIFY_SMTP_URL"] = "smtp://" + url.UserPassword(relay, relayPW).String() + "@" + srv.SMTPAddr
		e.env["HOLDFAST_NOTIFY_FROM"] = "holdfast <" + relay + ">"
	}
	e.env["HOLDFAST_ALLOW_PRIVATE_WEBHOOKS"] = "true"
	key := e.createAPIKey("notify-test")
	var (
		mu     sync.Mutex
		secret []byte
		events []struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
	)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		var ev struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, 0, time.Now()); err != nil || json.Unmarshal(body, &ev) != nil {
			t.Errorf("receiver: %v in %s", err, body)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		events = append(events, ev)
	}))
	t.Cleanup(rc.Close)
	eventCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(events)
	}

	s := e.serve()
	code, hook := call(t, "POST", s.base+"/v1/webhooks", key, map[string]any{"url": rc.URL, "events": []string{"notice.sent"}})
	if code != http.StatusCreated {
		t.Fatalf("POST webhook = %d %v", code, hook)
	}
	mu.Lock()
	secret = []byte(hook["secret"].(string))
	mu.Unlock()
	code, in := call(t, "POST", s.base+"/v1/inboxes", key, mailInbox(t, srv, owner, "not the pw"))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/inboxes = %d %v", code, in)
	}
	id := in["id"].(string)
	waitFor(t, 10*time.Second, "the wrong password noticed", func() bool {
		return inboxState(t, s.base, key, id)["state"] != "connecting"
	})
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.logs.String(), relayPW) || strings.Contains(s.logs.String(), url.QueryEscape(relayPW)) {
		t.Error("the logs show the relay's password")
	}

	st, err := sqlite.Open(t.Context(), filepath.Join(e.env["HOLDFAST_DATA_DIR"], "holdfast.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := st.ChangeState(t.Context(), id, holdfast.StateChange{
		To: holdfast.StateNeedsReconnect, Reason: "password_changed", Message: holdfast.DefaultMessage(holdfast.StateNeedsReconnect),
		Cause: holdfast.CauseHealth, At: now,
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendNotice(t.Context(), &holdfast.Notice{InboxID: id, Episode: 1, Reason: "password_changed", At: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	s = e.serve()
	// The host application hears of it through notice.sent.
	waitFor(t, 30*time.Second, "notice.sent at the webhook receiver", func() bool { return eventCount() > 0 })
	mu.Lock()
	var nd webhook.NoticeData
	if len(events) != 1 || events[0].Type != webhook.NoticeSent || json.Unmarshal(events[0].Data, &nd) != nil {
		t.Fatalf("receiver got %+v; want one notice.sent", events)
	}
	mu.Unlock()
	wantChannel := map[bool]string{true: notify.ChannelEmail, false: notify.ChannelWebhook}[relayed]
	if nd.Recipient != owner || nd.Template != "reconnect" || nd.Channel != wantChannel || len(nd.Inboxes) != 1 ||
		nd.Inboxes[0].InboxID != id || nd.Inboxes[0].ActionRequired != holdfast.RequireReconnect || nd.Inboxes[0].Reason != "password_changed" {
		t.Errorf("notice.sent data = %+v; want the owner's notice about %s, channel %s", nd, id, wantChannel)
	}
	u, err := url.Parse(nd.StatusURL)
	if err != nil {
		t.Fatalf("status_url %q: %v", nd.StatusURL, err)
	}
	path := u.Path
	wantMail := 0
	if relayed {
		wantMail = 1
		waitFor(t, 30*time.Second, "the notice mailed", func() bool {
			return len(srv.MessageIDs(t, owner, "INBOX")) == 1
		})
		if mailed := statusPath(t, srv, owner); mailed != path {
			t.Errorf("the email links to %s, the event to %s", mailed, path)
		}
	}
	resp, err := http.Get(s.base + path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Needs reconnect") || !strings.Contains(string(page), owner) {
		t.Errorf("GET %s = %d:\n%s", path, resp.StatusCode, page)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// Restarted, serve sends nothing more for the episode.
	s = e.serve()
	time.Sleep(3 * time.Second)
	if got := len(srv.MessageIDs(t, owner, "INBOX")); got != wantMail {
		t.Errorf("%d messages in the owner's INBOX after a restart; want exactly %d", got, wantMail)
	}
	if n := eventCount(); n != 1 {
		t.Errorf("%d notice.sent events after a restart; want 1", n)
	}
	if strings.Contains(s.logs.String(), relayPW) {
		t.Error("the logs show the relay's password")
	}
}

// TestServeWithoutRelaySaysSo: without --notify-smtp-url, serve says once
// at start that notices are not mailed.
func TestServeWithoutRelaySaysSo(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	s := e.serve()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(s.logs.String(), "notices are not mailed (no --notify-smtp-url)"); n != 1 {
		t.Errorf("the no-relay message is logged %d times; want once:\n%s", n, s.logs.String())
	}
}

package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/provider/mailtest"
)

// TestServeStatusPasswordVerified shows a password typed on the owners'
// status page checked against the real server before the inbox is called
// connected (issue 12, point 10): a wrong one is said to be wrong and the
// inbox stays as it was; the right one connects it.
func TestServeStatusPasswordVerified(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	const owner, pw = "owner@example.test", "the pw"
	srv.AddUser(t, owner, pw)
	e := mailEnv(t, srv)
	key := e.createAPIKey("status-test")
	s := e.serve()
	code, in := call(t, "POST", s.base+"/v1/inboxes", key, mailInbox(t, srv, owner, "not the pw"))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/inboxes = %d %v", code, in)
	}
	id := in["id"].(string)
	waitFor(t, 10*time.Second, "the wrong password noticed", func() bool {
		return inboxState(t, s.base, key, id)["state"] != "connecting"
	})

	// The owner's link and form token, as the page would carry them.
	linkKey, err := currentLinkKey(e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	links, err := notify.NewLinks(linkKey, "http://holdfast.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	tok := links.Sign(owner, time.Now().Add(time.Hour))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(password string) (int, string, string) {
		t.Helper()
		resp, err := client.PostForm(s.base+"/status/"+tok+"/imap/"+id,
			url.Values{"form_token": {links.FormToken(tok, id, "imap")}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(body)
	}

	code, loc, body := post("still not the pw")
	if code != http.StatusBadRequest || !strings.Contains(body, "did not accept") {
		t.Errorf("wrong password on the status page = %d to %q; want 400 saying the server did not accept it:\n%.800s", code, loc, body)
	}
	time.Sleep(time.Second)
	if got := inboxState(t, s.base, key, id); got["state"] == "connected" || got["reason"] == "reconnected" {
		t.Errorf("after a wrong password on the status page the inbox is %v; want it unchanged, not connected", got)
	}
	_, evs := call(t, "GET", s.base+"/v1/inboxes/"+id+"/events", key, nil)
	for _, ev := range evs["data"].([]any) {
		if ev := ev.(map[string]any); ev["new_state"] == "connected" {
			t.Errorf("after a wrong password on the status page the inbox was called connected: event %v", ev)
		}
	}

	code, loc, _ = post(pw)
	if code != http.StatusSeeOther || !strings.HasSuffix(loc, "?done=verified") {
		t.Errorf("right password on the status page = %d to %q; want 303 to ?done=verified", code, loc)
	}
	waitFor(t, 10*time.Second, "the inbox connected", func() bool {
		return inboxState(t, s.base, key, id)["state"] == "connected"
	})
}

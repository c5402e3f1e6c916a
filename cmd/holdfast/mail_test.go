package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/provider/mailtest"
)

// mailEnv is a test environment whose service trusts srv's certificate and
// syncs every second.
func mailEnv(t *testing.T, srv *mailtest.Server) *testEnv {
	t.Helper()
	e := newTestEnv(t, sqliteEngine)
	e.env["HOLDFAST_MAIL_CA_FILE"] = srv.CAFile
	e.env["HOLDFAST_SYNC_INTERVAL"] = "1s"
	return e
}

// mailInbox is the creation request of an inbox on srv, over STARTTLS.
func mailInbox(t *testing.T, srv *mailtest.Server, email, password string) map[string]any {
	t.Helper()
	server := func(addr string) map[string]any {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		return map[string]any{"host": host, "port": p, "security": "starttls"}
	}
	return map[string]any{
		"provider": "imap", "email": email, "username": email, "password": password,
		"imap": server(srv.IMAPAddr), "smtp": server(srv.SMTPAddr),
	}
}

// rawMessage returns an RFC 5322 message and its Message-ID.
func rawMessage(from, to, subject string) ([]byte, string) {
	id := fmt.Sprintf("<%d.%s@holdfast.test>", time.Now().UnixNano(), strings.ReplaceAll(subject, " ", "-"))
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: " + id +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello from " + subject + ".\r\n"), id
}

// waitFor polls cond every 50 ms until it holds, or fails t after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// messages lists all of an inbox's messages, two to a page.
func messages(t *testing.T, base, key, inboxID string) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for range 100 {
		code, page := call(t, "GET", base+"/v1/inboxes/"+inboxID+"/messages?limit=2&cursor="+cursor, key, nil)
		if code != http.StatusOK {
			t.Fatalf("GET messages = %d %v", code, page)
		}
		for _, d := range page["data"].([]any) {
			out = append(out, d.(map[string]any))
		}
		if cursor = page["next_cursor"].(string); cursor == "" {
			return out
		}
	}
	t.Fatalf("more than 100 pages of messages")
	return nil
}

// messageIDs returns the internet_message_id of each message.
func messageIDs(msgs []map[string]any) []string {
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m["internet_message_id"].(string))
	}
	return ids
}

// onceEach fails t unless ids holds each of want exactly once, and nothing
// else.
func onceEach(t *testing.T, ids []string, want ...string) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("message %s listed %d times, want once", w, seen[w])
		}
	}
	if len(ids) != len(want) {
		t.Errorf("%d messages listed (%q), want %d", len(ids), ids, len(want))
	}
}

func inboxState(t *testing.T, base, key, id string) map[string]any {
	t.Helper()
	code, in := call(t, "GET", base+"/v1/inboxes/"+id, key, nil)
	if code != http.StatusOK {
		t.Fatalf("GET inbox = %d %v", code, in)
	}
	return in
}

func TestServeSyncsRealMailbox(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	const alice, pw = "alice@example.test", "alice's pw"
	srv.AddUser(t, alice, pw)
	e := mailEnv(t, srv)
	key := e.createAPIKey("sync-test")
	s := e.serve()

	var want []string
	for i := range 3 {
		raw, id := rawMessage("bob@example.test", alice, fmt.Sprint("first ", i))
		srv.Deliver(t, alice, raw)
		want = append(want, id)
	}
	code, in := call(t, "POST", s.base+"/v1/inboxes", key, mailInbox(t, srv, alice, pw))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/inboxes = %d %v", code, in)
	}
	id := in["id"].(string)
	waitFor(t, 10*time.Second, "3 messages listed", func() bool { return len(messages(t, s.base, key, id)) == 3 })
	if st := inboxState(t, s.base, key, id)["state"]; st != "connected" {
		t.Errorf("state after a sync = %v, want connected", st)
	}
	msgs := messages(t, s.base, key, id)
	onceEach(t, messageIDs(msgs), want...)
	// Delivered within one second, they share received_at (IMAP's
	// INTERNALDATE has seconds): pick by subject.
	var m map[string]any
	for _, x := range msgs {
		if x["subject"] == "first 2" {
			m = x
		}
	}
	if m == nil || m["subject"] != "first 2" || m["from"] != "bob@example.test" || m["snippet"] != "Hello from first 2." ||
		fmt.Sprint(m["to"]) != "["+alice+"]" || m["received_at"] == "" {
		t.Errorf("newest message = %v, want subject first 2 from bob, with its snippet", m)
	}
	code, one := call(t, "GET", s.base+"/v1/inboxes/"+id+"/messages/"+m["id"].(string), key, nil)
	if code != http.StatusOK || one["internet_message_id"] != m["internet_message_id"] {
		t.Errorf("GET message = %d %v, want %v", code, one, m)
	}
	if code, _ := call(t, "GET", s.base+"/v1/inboxes/"+id+"/messages/msg_00000000000000000000000000", key, nil); code != http.StatusNotFound {
		t.Errorf("GET unknown message = %d, want 404", code)
	}

	// More mail later: only the new ones are added, through sync-now.
	for i := range 2 {
		raw, mid := rawMessage("bob@example.test", alice, fmt.Sprint("second ", i))
		srv.Deliver(t, alice, raw)
		want = append(want, mid)
	}
	if code, body := call(t, "POST", s.base+"/v1/inboxes/"+id+"/sync", key, nil); code != http.StatusAccepted {
		t.Errorf("POST sync = %d %v, want 202", code, body)
	}
	waitFor(t, 10*time.Second, "5 messages listed", func() bool { return len(messages(t, s.base, key, id)) == 5 })
	onceEach(t, messageIDs(messages(t, s.base, key, id)), want...)

	// UIDVALIDITY reset: the connector starts over; nothing is listed twice.
	srv.ResetUIDValidity(t, alice, "INBOX")
	raw, mid := rawMessage("bob@example.test", alice, "after reset")
	srv.Deliver(t, alice, raw)
	want = append(want, mid)
	waitFor(t, 10*time.Second, "6 messages listed", func() bool { return len(messages(t, s.base, key, id)) >= 6 })
	time.Sleep(2 * time.Second) // a couple more syncs
	onceEach(t, messageIDs(messages(t, s.base, key, id)), want...)

	if code, body := call(t, "POST", s.base+"/v1/inboxes/inb_00000000000000000000000000/sync", key, nil); code != http.StatusNotFound {
		t.Errorf("POST sync of an unknown inbox = %d %v, want 404", code, body)
	}
	if code, body := call(t, "GET", s.base+"/v1/inboxes/"+id+"/messages?cursor=garbage", key, nil); code != http.StatusBadRequest || errField(body) != "cursor" {
		t.Errorf("GET messages with a bad cursor = %d %v, want 400 naming cursor", code, body)
	}
}

func TestServeWrongPasswordAndOutage(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	const good, bad, pw = "good@example.test", "bad@example.test", "the pw"
	srv.AddUser(t, good, pw)
	srv.AddUser(t, bad, pw)
	e := mailEnv(t, srv)
	key := e.createAPIKey("outage-test")
	s := e.serve()

	code, in := call(t, "POST", s.base+"/v1/inboxes", key, mailInbox(t, srv, bad, "not the pw"))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/inboxes = %d %v", code, in)
	}
	badID := in["id"].(string)
	code, in = call(t, "POST", s.base+"/v1/inboxes", key, mailInbox(t, srv, good, pw))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/inboxes = %d %v", code, in)
	}
	goodID := in["id"].(string)

	// A wrong password is permanent, but one failure is not enough to ask
	// the owner to reconnect: the engine confirms it first.
	waitFor(t, 10*time.Second, "the wrong password noticed", func() bool {
		return inboxState(t, s.base, key, badID)["state"] != "connecting"
	})
	got := inboxState(t, s.base, key, badID)
	if got["state"] == "needs_reconnect" || got["action_required"] != "none" {
		t.Errorf("after the first failure the inbox is %v, want no action required yet", got)
	}
	if got["reason"] != "password_changed" {
		t.Errorf("reason = %v, want password_changed (permanent)", got["reason"])
	}

	// Server down: recoverable, the inbox is not disconnected; it recovers
	// after the restart.
	waitFor(t, 10*time.Second, "the good inbox connected", func() bool {
		return inboxState(t, s.base, key, goodID)["state"] == "connected"
	})
	srv.Stop()
	call(t, "POST", s.base+"/v1/inboxes/"+goodID+"/sync", key, nil)
	waitFor(t, 10*time.Second, "the outage noticed", func() bool {
		return inboxState(t, s.base, key, goodID)["state"] != "connected"
	})
	got = inboxState(t, s.base, key, goodID)
	if got["action_required"] != "none" || got["state"] == "needs_reconnect" || got["state"] == "needs_admin" {
		t.Errorf("during the outage the inbox is %v, want no action required", got)
	}
	srv.Restart(t)
	raw, mid := rawMessage("x@example.test", good, "after outage")
	srv.Deliver(t, good, raw)
	waitFor(t, 30*time.Second, "the mail after the outage synced", func() bool {
		ids := messageIDs(messages(t, s.base, key, goodID))
		return len(ids) == 1 && ids[0] == mid
	})
	waitFor(t, 10*time.Second, "the good inbox connected again", func() bool {
		return inboxState(t, s.base, key, goodID)["state"] == "connected"
	})
}

func TestServeSends(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	const alice, bob, pw = "alice@example.test", "bob@example.test", "the pw"
	srv.AddUser(t, alice, pw)
	srv.AddUser(t, bob, pw)
	e := mailEnv(t, srv)
	key := e.createAPIKey("send-test")
	s := e.serve()
	code, in := call(t, "POST", s.base+"/v1/inboxes", key, mailInbox(t, srv, alice, pw))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/inboxes = %d %v", code, in)
	}
	id := in["id"].(string)
	sendURL := s.base + "/v1/inboxes/" + id + "/send"
	waitSent := func(sendID string) map[string]any {
		t.Helper()
		var got map[string]any
		waitFor(t, 20*time.Second, "send "+sendID+" sent", func() bool {
			_, got = call(t, "GET", s.base+"/v1/sends/"+sendID, key, nil)
			return got["state"] == "sent"
		})
		return got
	}

	// Send now, with an idempotency key.
	req := map[string]any{"to": []string{bob}, "subject": "now", "text": "Sent now.", "idempotency_key": "k1"}
	code, snd := call(t, "POST", sendURL, key, req)
	if code != http.StatusAccepted || snd["state"] != "scheduled" {
		t.Fatalf("POST send = %d %v, want 202 scheduled", code, snd)
	}
	sendID, msgID := snd["id"].(string), snd["message_id"].(string)
	if !strings.HasPrefix(msgID, "<snd_") || !strings.HasSuffix(msgID, "@example.test>") {
		t.Errorf("message_id = %q, want <snd_...@example.test>", msgID)
	}
	code, again := call(t, "POST", sendURL, key, req)
	if code != http.StatusAccepted || again["id"] != sendID {
		t.Errorf("repeated POST send = %d %v, want 202 with id %s", code, again, sendID)
	}
	if got := waitSent(sendID); got["sent_at"] == nil || got["attempts"] != float64(1) {
		t.Errorf("sent send = %v, want sent_at and one attempt", got)
	}
	srv.WaitCount(t, bob, "INBOX", msgID, 1)
	srv.WaitCount(t, alice, "Sent", msgID, 1)
	// The same key after the send: still the same send, nothing more sent.
	if code, again := call(t, "POST", sendURL, key, req); code != http.StatusAccepted || again["id"] != sendID || again["state"] != "sent" {
		t.Errorf("POST send after it went = %d %v, want 202, the same sent send", code, again)
	}
	time.Sleep(500 * time.Millisecond)
	if n := srv.Count(t, bob, "INBOX", msgID); n != 1 {
		t.Errorf("bob's INBOX holds %d copies, want 1", n)
	}
	if n := srv.Count(t, alice, "Sent", msgID); n != 1 {
		t.Errorf("alice's Sent holds %d copies, want 1", n)
	}

	// Scheduled send.
	at := time.Now().Add(2 * time.Second).UTC()
	code, snd = call(t, "POST", sendURL, key, map[string]any{
		"to": []string{bob}, "cc": []string{"Alice <" + alice + ">"}, "subject": "later", "html": "<p>Later.</p>", "send_at": at.Format(time.RFC3339Nano),
	})
	if code != http.StatusAccepted || snd["state"] != "scheduled" {
		t.Fatalf("POST scheduled send = %d %v", code, snd)
	}
	laterID, laterMsg := snd["id"].(string), snd["message_id"].(string)
	got := waitSent(laterID)
	if sentAt, _ := time.Parse(time.RFC3339Nano, got["sent_at"].(string)); sentAt.Before(at) {
		t.Errorf("scheduled send went at %v, before its send_at %v", sentAt, at)
	}
	srv.WaitCount(t, bob, "INBOX", laterMsg, 1)
	srv.WaitCount(t, alice, "INBOX", laterMsg, 1) // the cc

	// Cancel.
	code, snd = call(t, "POST", sendURL, key, map[string]any{
		"to": []string{bob}, "subject": "never", "text": "x", "send_at": time.Now().Add(time.Hour).Format(time.RFC3339),
	})
	if code != http.StatusAccepted {
		t.Fatalf("POST send = %d %v", code, snd)
	}
	cancelID := snd["id"].(string)
	for range 2 {
		if code, got := call(t, "DELETE", s.base+"/v1/sends/"+cancelID, key, nil); code != http.StatusOK || got["state"] != "cancelled" {
			t.Errorf("DELETE send = %d %v, want 200 cancelled", code, got)
		}
	}
	if code, got := call(t, "DELETE", s.base+"/v1/sends/"+sendID, key, nil); code != http.StatusConflict {
		t.Errorf("DELETE of a sent send = %d %v, want 409", code, got)
	}
	if code, _ := call(t, "GET", s.base+"/v1/sends/snd_00000000000000000000000000", key, nil); code != http.StatusNotFound {
		t.Errorf("GET unknown send = %d, want 404", code)
	}

	// Validation names the field.
	for _, tt := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"no recipient", map[string]any{"text": "x"}, "to"},
		{"bad address", map[string]any{"to": []string{"bob"}, "text": "x"}, "to[0]"},
		{"bad bcc", map[string]any{"to": []string{bob}, "bcc": []string{"a@b.c", "x y"}, "text": "x"}, "bcc[1]"},
		{"no body", map[string]any{"to": []string{bob}, "subject": "s"}, "text"},
		{"two-line subject", map[string]any{"to": []string{bob}, "subject": "a\r\nBcc: x@y.z", "text": "x"}, "subject"},
		{"bad send_at", map[string]any{"to": []string{bob}, "text": "x", "send_at": "tomorrow"}, "send_at"},
		{"far send_at", map[string]any{"to": []string{bob}, "text": "x", "send_at": time.Now().AddDate(2, 0, 0).Format(time.RFC3339)}, "send_at"},
		{"unknown field", map[string]any{"to": []string{bob}, "text": "x", "body": "y"}, "body"},
	} {
		if code, body := call(t, "POST", sendURL, key, tt.body); code != http.StatusBadRequest || errField(body) != tt.field {
			t.Errorf("POST send, %s = %d %v, want 400 naming %s", tt.name, code, body, tt.field)
		}
	}
	if code, _ := call(t, "POST", s.base+"/v1/inboxes/inb_00000000000000000000000000/send", key, req); code != http.StatusNotFound {
		t.Errorf("POST send from an unknown inbox = %d, want 404", code)
	}
}

package gmail_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/provider/gmail"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/provider/oauth/oauthtest"
	"github.com/holdfast/holdfast/provider/providertest"
)

const user = "alice@gmail.test"

// harness runs the conformance suite on the emulator.
var harness = providertest.EmulatorHarness{
	Options: providertest.EmulatorOptions{Provider: holdfast.ProviderGoogle, Email: user},
	AccountFunc: func(t *testing.T, e *providertest.Emulator, log *slog.Logger) *providertest.Account {
		a := e.Account(newConnector(t, e, log, gmail.Config{}), "inb_gmail")
		a.NewestFirst, a.ResetKeepsProviderIDs = true, true
		a.BadCursors = []string{`{"v":1,"historyId":"not a number"}`}
		return a
	},
	Faults: append(providertest.GrantFailures(), []providertest.EmulatorFailure{
		{
			Name: "gmail 503", PrepareFunc: providertest.WithFault(503, "", 0, emulator.SurfaceGmail),
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderUnavailable, Scope: holdfast.ScopeOperation, Action: holdfast.ActionRetry, OutcomeUnknown: true},
		},
		{
			Name: "gmail 429 Retry-After", PrepareFunc: providertest.WithFault(429, "", 4, emulator.SurfaceGmail),
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonThrottled, Scope: holdfast.ScopeOperation, Action: holdfast.ActionRetryAfter, RetryAfter: 4 * time.Second},
		},
		{
			Name: "insufficient scope",
			PrepareFunc: providertest.WithFault(403, `{"error":{"code":403,"message":"Request had insufficient authentication scopes.",
				"errors":[{"message":"Insufficient Permission","domain":"global","reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED"}}`, 0, emulator.SurfaceGmail),
			Want: providertest.Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonInsufficientScope, Scope: holdfast.ScopeAccount, Action: holdfast.ActionReconnect},
		},
		{
			Name: "token endpoint 503", PrepareFunc: providertest.WithFault(503, "", 0, emulator.SurfaceGoogleToken),
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderUnavailable, Scope: holdfast.ScopeAccount, Action: holdfast.ActionRetry},
		},
	}...),
}

func TestConformance(t *testing.T) {
	t.Parallel()
	providertest.Run(t, harness)
}

// newConnector returns a connector on e configured by cfg, with short
// timeouts and one FindSent look.
func newConnector(t *testing.T, e *providertest.Emulator, log *slog.Logger, cfg gmail.Config) *gmail.Connector {
	t.Helper()
	cfg.BaseURL, cfg.Tokens, cfg.Logger = e.URLs.Gmail, e.Tokens, log
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.FindSentWait == 0 {
		cfg.FindSentWait = -1
	}
	conn, err := gmail.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// bundle is one test's emulator, connector and session.
type bundle struct {
	emu  *emulator.Emulator
	conn *gmail.Connector
	sess *holdfast.Session
}

func setup(t *testing.T, cfg gmail.Config) *bundle {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	e := providertest.StartEmulator(t, providertest.EmulatorOptions{Provider: holdfast.ProviderGoogle, Email: user, Log: log})
	return &bundle{emu: e.Emulator, conn: newConnector(t, e, log, cfg), sess: e.Session("inb_gmail")}
}

// deliver delivers n messages and returns their Gmail ids, oldest first.
func (b *bundle) deliver(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		d, err := b.emu.Deliver(emulator.Mail{To: user, From: "bob@example.test", Subject: fmt.Sprintf("Message %d", i),
			Text: "Tom & Jerry's\n\nnotes"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	return ids
}

// reversed returns a reversed copy of s.
var reversed = providertest.Reversed[string]

func TestSync(t *testing.T) {
	t.Parallel()
	b := setup(t, gmail.Config{PageSize: 2, MaxPages: 2})
	ctx := t.Context()
	all := b.deliver(t, 5)

	// The backfill lists newest first, two pages of two, then More.
	res, err := b.conn.Sync(ctx, b.sess, "")
	if err != nil {
		t.Fatalf("Sync 1: %v", err)
	}
	if diff := cmp.Diff(reversed(all)[:4], providertest.ProviderIDs(res.Messages)); diff != "" || !res.More || res.Reset {
		t.Fatalf("Sync 1: More %v Reset %v, ids (-want +got):\n%s", res.More, res.Reset, diff)
	}
	m := res.Messages[3]
	if m.From != "bob@example.test" || !slices.Equal(m.To, []string{user}) || m.Subject != "Message 1" ||
		m.InternetMessageID == "" || m.ReceivedAt.IsZero() || m.Snippet != "Tom & Jerry's notes" || len(m.Flags) != 0 {
		t.Errorf("message = %+v", m)
	}
	if !strings.Contains(res.Cursor, `"pageToken"`) {
		t.Errorf("Sync 1 cursor = %s, want a page token", res.Cursor)
	}
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil {
		t.Fatalf("Sync 2: %v", err)
	}
	if diff := cmp.Diff(all[:1], providertest.ProviderIDs(res.Messages)); diff != "" || res.More || strings.Contains(res.Cursor, "pageToken") {
		t.Fatalf("Sync 2: More %v cursor %s, ids (-want +got):\n%s", res.More, res.Cursor, diff)
	}

	// The history from then on: five new messages, two pages per Sync.
	more := b.deliver(t, 5)
	var got []string
	for round := 0; ; round++ {
		res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
		if err != nil {
			t.Fatalf("history Sync %d: %v", round, err)
		}
		got = append(got, providertest.ProviderIDs(res.Messages)...)
		if !res.More {
			break
		}
		if round > 3 {
			t.Fatal("history Sync never ends")
		}
	}
	if diff := cmp.Diff(more, got); diff != "" {
		t.Errorf("history ids (-want +got):\n%s", diff)
	}
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil || len(res.Messages) != 0 || res.More {
		t.Errorf("Sync with nothing new = %d messages, More %v, %v", len(res.Messages), res.More, err)
	}
}

func TestSyncBackfillLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, gmail.Config{BackfillLimit: 3})
	all := b.deliver(t, 5)
	res, err := b.conn.Sync(t.Context(), b.sess, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reversed(all)[:3], providertest.ProviderIDs(res.Messages)); diff != "" || res.More {
		t.Fatalf("Sync: More %v, ids (-want +got):\n%s", res.More, diff)
	}
	res, err = b.conn.Sync(t.Context(), b.sess, res.Cursor)
	if err != nil || len(res.Messages) != 0 {
		t.Errorf("Sync after the backfill = %d messages, %v; want none", len(res.Messages), err)
	}
}

func outgoing(id string) *holdfast.OutgoingMessage {
	return &holdfast.OutgoingMessage{
		MessageID: id, From: "Alice <" + user + ">", To: []string{"bob@example.test"},
		Bcc: []string{"carol@example.test"}, Subject: "Grüße", Text: "Hi Bob.",
		Date: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
	}
}

// fakeGmail serves what the emulator does not: a message deleted between
// history.list and messages.get, and error bodies that quote the access
// token.
func fakeGmail(t *testing.T, tokens *oauthtest.Server) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, ok := tokens.User(tok); !ok {
			w.WriteHeader(401)
			_, _ = io.WriteString(w, `{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError"}],"status":"UNAUTHENTICATED"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		switch r.URL.Path {
		case "/gmail/v1/users/me/history":
			_, _ = io.WriteString(w, `{"history":[{"id":"1201","messages":[{"id":"gone1","threadId":"gone1"}],"messagesAdded":[{"message":{"id":"gone1","threadId":"gone1","labelIds":["INBOX","UNREAD"]}}]},`+
				`{"id":"1202","messagesAdded":[{"message":{"id":"here2","threadId":"here2","labelIds":["INBOX","STARRED"]}}]},`+
				`{"id":"1203","messagesAdded":[{"message":{"id":"sent3","threadId":"sent3","labelIds":["SENT"]}}]}],"historyId":"1210"}`)
		case "/gmail/v1/users/me/messages/gone1":
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"error":{"code":404,"message":"Requested entity was not found.","errors":[{"message":"Requested entity was not found.","domain":"global","reason":"notFound"}],"status":"NOT_FOUND"}}`)
		case "/gmail/v1/users/me/messages/here2":
			_, _ = io.WriteString(w, `{"id":"here2","threadId":"here2","labelIds":["INBOX","STARRED"],"snippet":"Caf&eacute; at 5?","internalDate":"1764331200000",`+
				`"payload":{"headers":[{"name":"From","value":"=?UTF-8?Q?Zo=C3=A9?= <zoe@example.test>"},{"name":"To","value":"alice@gmail.test, Team <team@example.test>"},`+
				`{"name":"Subject","value":"=?UTF-8?B?Q2Fmw6k=?="},{"name":"Message-Id","value":"<here2@example.test>"}]}}`)
		case "/gmail/v1/users/me/messages/send":
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":{"code":400,"message":"Invalid To header for token `+tok+`","errors":[{"reason":"invalidArgument"}],"status":"INVALID_ARGUMENT"}}`)
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func fakeSetup(t *testing.T) (*gmail.Connector, *holdfast.Session, *providertest.Logs) {
	t.Helper()
	tokens := oauthtest.Start(t, oauthtest.Options{Provider: holdfast.ProviderGoogle})
	logs := &providertest.Logs{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := oauth.New(oauth.Config{Provider: holdfast.ProviderGoogle, BaseURL: tokens.URL, ClientID: tokens.ClientID(), ClientSecret: tokens.ClientSecret(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := gmail.New(gmail.Config{BaseURL: fakeGmail(t, tokens) + "/gmail/v1", Tokens: src, Logger: log, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sess := &holdfast.Session{Inbox: &holdfast.Inbox{ID: "inb_fake", Provider: holdfast.ProviderGoogle}, RefreshToken: tokens.Grant(user)}
	return conn, sess, logs
}

// A message deleted between history.list and messages.get is skipped, a
// message not in the inbox is not fetched, and headers are decoded.
func TestSyncSkipsGoneMessages(t *testing.T) {
	t.Parallel()
	conn, sess, _ := fakeSetup(t)
	res, err := conn.Sync(t.Context(), sess, `{"v":1,"historyId":"1200"}`)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	want := []holdfast.Message{{
		InboxID: "inb_fake", ProviderID: "here2", InternetMessageID: "<here2@example.test>",
		From: "zoe@example.test", To: []string{user, "team@example.test"}, Subject: "Café",
		ReceivedAt: time.UnixMilli(1764331200000).UTC(), Snippet: "Café at 5?", Flags: []string{`\Seen`, `\Flagged`},
	}}
	if diff := cmp.Diff(want, res.Messages); diff != "" {
		t.Errorf("Sync messages (-want +got):\n%s", diff)
	}
	if res.Cursor != `{"v":1,"historyId":"1210"}` {
		t.Errorf("cursor = %s, want historyId 1210", res.Cursor)
	}
}

// A Gmail error that quotes the access token does not leak it.
func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	conn, sess, logs := fakeSetup(t)
	err := conn.Send(t.Context(), sess, outgoing("<snd_03@gmail.test>"))
	pe := providertest.ProviderError(t, err)
	if pe.Class != holdfast.ClassRecoverable && pe.Class != holdfast.ClassPermanent {
		t.Errorf("class %q", pe.Class)
	}
	if !strings.Contains(err.Error(), "[redacted]") || strings.Contains(err.Error(), "at-") {
		t.Errorf("error %q: want the access token redacted", err)
	}
	providertest.AssertNoSecret(t, err, logs.String(), sess.RefreshToken)
}

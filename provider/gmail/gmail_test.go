package gmail_test

import (
	"context"
	"errors"
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
	"github.com/holdfast/holdfast/emulator/emulatortest"
	"github.com/holdfast/holdfast/provider/bearer/bearertest"
	"github.com/holdfast/holdfast/provider/gmail"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/provider/oauth/oauthtest"
)

const user = "alice@gmail.test"

// bundle is one test's emulator, connector and session.
type bundle struct {
	emu     *emulator.Emulator
	conn    *gmail.Connector
	sess    *holdfast.Session
	logs    *bearertest.Logs
	clock   *bearertest.Clock
	rotated *[]string
}

type setupOpts struct {
	clientSecret string // what holdfast sends; empty: the emulator's
	cfg          gmail.Config
}

func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	clk := bearertest.NewClock(time.Now())
	emu, urls := emulatortest.StartConfig(t, emulator.Config{Now: clk.Now})
	rt, err := emu.CreateAccount(emulator.Account{Provider: emulator.Google, Email: user})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bearertest.Logs{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	secret := o.clientSecret
	if secret == "" {
		secret = emulator.DefaultClientSecret
	}
	src, err := oauth.New(oauth.Config{
		Provider: holdfast.ProviderGoogle, BaseURL: urls.GoogleOAuth,
		ClientID: emulator.DefaultClientID, ClientSecret: secret, Timeout: 5 * time.Second, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.cfg
	cfg.BaseURL, cfg.Tokens, cfg.Logger = urls.Gmail, src, log
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
	rotated := &[]string{}
	return &bundle{
		emu: emu, conn: conn, logs: logs, clock: clk, rotated: rotated,
		sess: &holdfast.Session{
			Inbox:        &holdfast.Inbox{ID: "inb_gmail", Email: user, Provider: holdfast.ProviderGoogle},
			RefreshToken: rt,
			OnTokenRotated: func(_ context.Context, rt string) error {
				*rotated = append(*rotated, rt)
				return nil
			},
		},
	}
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

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func ids(ms []holdfast.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ProviderID)
	}
	return out
}

func TestVerify(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	if err := b.conn.Verify(t.Context(), b.sess); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(*b.rotated) != 0 {
		t.Error("OnTokenRotated called, but Google does not rotate refresh tokens")
	}
	bearertest.AssertNoSecret(t, nil, b.logs.String(), b.sess.RefreshToken)
}

func TestSync(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: gmail.Config{PageSize: 2, MaxPages: 2}})
	ctx := t.Context()
	all := b.deliver(t, 5)

	// The backfill lists newest first, two pages of two, then More.
	res, err := b.conn.Sync(ctx, b.sess, "")
	if err != nil {
		t.Fatalf("Sync 1: %v", err)
	}
	if diff := cmp.Diff(reversed(all)[:4], ids(res.Messages)); diff != "" || !res.More || res.Reset {
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
	if diff := cmp.Diff(all[:1], ids(res.Messages)); diff != "" || res.More || strings.Contains(res.Cursor, "pageToken") {
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
		got = append(got, ids(res.Messages)...)
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
	b := setup(t, setupOpts{cfg: gmail.Config{BackfillLimit: 3}})
	all := b.deliver(t, 5)
	res, err := b.conn.Sync(t.Context(), b.sess, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reversed(all)[:3], ids(res.Messages)); diff != "" || res.More {
		t.Fatalf("Sync: More %v, ids (-want +got):\n%s", res.More, diff)
	}
	res, err = b.conn.Sync(t.Context(), b.sess, res.Cursor)
	if err != nil || len(res.Messages) != 0 {
		t.Errorf("Sync after the backfill = %d messages, %v; want none", len(res.Messages), err)
	}
}

// A historyId Gmail no longer keeps (404) starts over: the same
// ProviderIDs come back, so nothing is stored twice.
func TestSyncHistoryReset(t *testing.T) {
	t.Parallel()
	for _, cur := range []string{"expired", `{"v":1,"historyId":"not a number"}`, `garbage`} {
		t.Run(cur, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			ctx := t.Context()
			b.deliver(t, 3)
			first, err := b.conn.Sync(ctx, b.sess, "")
			if err != nil {
				t.Fatal(err)
			}
			cursor := cur
			if cur == "expired" {
				cursor = first.Cursor
				if err := b.emu.ExpireSyncState(user); err != nil {
					t.Fatal(err)
				}
			}
			res, err := b.conn.Sync(ctx, b.sess, cursor)
			if err != nil {
				t.Fatalf("Sync after expiry: %v", err)
			}
			if !res.Reset {
				t.Error("Reset = false, want true")
			}
			if diff := cmp.Diff(first.Messages, res.Messages); diff != "" {
				t.Errorf("messages after the reset (-first +again):\n%s", diff)
			}
			if res, err := b.conn.Sync(ctx, b.sess, res.Cursor); err != nil || res.Reset || len(res.Messages) != 0 {
				t.Errorf("Sync after the reset = %d messages, Reset %v, %v", len(res.Messages), res.Reset, err)
			}
		})
	}
}

// An expired access token gets Gmail's 401; the connector refreshes once
// and retries.
func TestExpiredAccessToken(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	if err := b.conn.Verify(t.Context(), b.sess); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Hour)
	all := b.deliver(t, 1)
	res, err := b.conn.Sync(t.Context(), b.sess, "")
	if err != nil {
		t.Fatalf("Sync with an expired token: %v", err)
	}
	if !slices.Equal(ids(res.Messages), all) {
		t.Errorf("Sync = %v, want %v", ids(res.Messages), all)
	}
}

func outgoing(id string) *holdfast.OutgoingMessage {
	return &holdfast.OutgoingMessage{
		MessageID: id, From: "Alice <" + user + ">", To: []string{"bob@example.test"},
		Bcc: []string{"carol@example.test"}, Subject: "Grüße", Text: "Hi Bob.",
		Date: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
	}
}

func TestSendAndFindSent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := t.Context()
	const id = "<snd_01KQ@gmail.test>"
	if found, err := b.conn.FindSent(ctx, b.sess, id); err != nil || found {
		t.Fatalf("FindSent before Send = %v, %v", found, err)
	}
	if err := b.conn.Send(ctx, b.sess, outgoing(id)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sent, err := b.emu.Sent(user)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0].MessageID != id || sent[0].Subject != "Grüße" ||
		!slices.Equal(sent[0].Bcc, []string{"carol@example.test"}) || !slices.Equal(sent[0].To, []string{"bob@example.test"}) {
		t.Fatalf("emulator recorded %+v, want one send with Message-ID %s and Bcc carol", sent, id)
	}
	if found, err := b.conn.FindSent(ctx, b.sess, id); err != nil || !found {
		t.Fatalf("FindSent after Send = %v, %v; want true", found, err)
	}
	if found, _ := b.conn.FindSent(ctx, b.sess, "<other@gmail.test>"); found {
		t.Error("FindSent found a message never sent")
	}
	// The sent copy is not an inbox message.
	res, err := b.conn.Sync(ctx, b.sess, "")
	if err != nil || len(res.Messages) != 0 {
		t.Errorf("Sync after a send = %v, %v; want no inbox messages", ids(res.Messages), err)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	type want struct {
		class   holdfast.Class
		reason  holdfast.Reason
		scope   holdfast.Scope
		action  holdfast.Action
		retry   time.Duration
		unknown bool // the send's outcome is unclear
	}
	gmailFault := func(status int, body string, retry float64) *emulator.Fault {
		return &emulator.Fault{Provider: emulator.Google, Surfaces: []emulator.Surface{emulator.SurfaceGmail}, HTTPStatus: status, Body: body, RetryAfterS: retry}
	}
	for _, tc := range []struct {
		name         string
		clientSecret string
		fault        *emulator.Fault
		revoke       bool
		want         want
	}{
		{
			name: "revoked", revoke: true,
			want: want{holdfast.ClassPermanent, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false},
		},
		{
			name: "wrong client secret", clientSecret: "not-the-secret",
			want: want{holdfast.ClassPermanent, holdfast.ReasonAppMisconfigured, holdfast.ScopeApp, holdfast.ActionOperator, 0, false},
		},
		{
			name:  "gmail 503",
			fault: gmailFault(503, "", 0),
			want:  want{holdfast.ClassRecoverable, holdfast.ReasonProviderUnavailable, holdfast.ScopeOperation, holdfast.ActionRetry, 0, true},
		},
		{
			name:  "gmail 429 Retry-After",
			fault: gmailFault(429, "", 4),
			want:  want{holdfast.ClassRecoverable, holdfast.ReasonThrottled, holdfast.ScopeOperation, holdfast.ActionRetryAfter, 4 * time.Second, false},
		},
		{
			name: "insufficient scope",
			fault: gmailFault(403, `{"error":{"code":403,"message":"Request had insufficient authentication scopes.",
				"errors":[{"message":"Insufficient Permission","domain":"global","reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED"}}`, 0),
			want: want{holdfast.ClassPermanent, holdfast.ReasonInsufficientScope, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false},
		},
		{
			name:  "token endpoint 503",
			fault: &emulator.Fault{Provider: emulator.Google, Surfaces: []emulator.Surface{emulator.SurfaceGoogleToken}, HTTPStatus: 503},
			want:  want{holdfast.ClassRecoverable, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{clientSecret: tc.clientSecret})
			if tc.revoke {
				if err := b.emu.Revoke(user); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fault != nil {
				if _, err := b.emu.AddFault(*tc.fault); err != nil {
					t.Fatal(err)
				}
			}
			for _, op := range []string{"Verify", "Sync", "Send", "FindSent"} {
				var err error
				switch op {
				case "Verify":
					err = b.conn.Verify(t.Context(), b.sess)
				case "Sync":
					_, err = b.conn.Sync(t.Context(), b.sess, "")
				case "Send":
					err = b.conn.Send(t.Context(), b.sess, outgoing("<snd_02@gmail.test>"))
				case "FindSent":
					_, err = b.conn.FindSent(t.Context(), b.sess, "<snd_02@gmail.test>")
				}
				pe := bearertest.ProviderError(t, err)
				w := tc.want
				w.unknown = w.unknown && op == "Send"
				got := want{pe.Class, pe.Reason, pe.Scope, pe.Action, pe.RetryAfter, errors.Is(err, holdfast.ErrOutcomeUnknown)}
				if got != w {
					t.Errorf("%s error = %+v, want %+v (%v)", op, got, w, err)
				}
				bearertest.AssertNoSecret(t, err, b.logs.String(), b.sess.RefreshToken, emulator.DefaultClientSecret)
			}
			if sent, _ := b.emu.Sent(user); len(sent) != 0 {
				t.Errorf("the emulator accepted %d sends through a fault", len(sent))
			}
		})
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

func fakeSetup(t *testing.T) (*gmail.Connector, *holdfast.Session, *bearertest.Logs) {
	t.Helper()
	tokens := oauthtest.Start(t, oauthtest.Options{Provider: holdfast.ProviderGoogle})
	logs := &bearertest.Logs{}
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
	pe := bearertest.ProviderError(t, err)
	if pe.Class != holdfast.ClassRecoverable && pe.Class != holdfast.ClassPermanent {
		t.Errorf("class %q", pe.Class)
	}
	if !strings.Contains(err.Error(), "[redacted]") || strings.Contains(err.Error(), "at-") {
		t.Errorf("error %q: want the access token redacted", err)
	}
	bearertest.AssertNoSecret(t, err, logs.String(), sess.RefreshToken)
}

package graph_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/graph"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/provider/oauth/oauthtest"
	"github.com/holdfast/holdfast/provider/providertest"
)

const user = "alice@example.test"

// bundle is one test's fakes, connector and session.
type bundle struct {
	tokens *oauthtest.Server
	graph  *fakeGraph
	conn   *graph.Connector
	sess   *holdfast.Session
	logs   *providertest.Logs
	// secrets are every refresh and access token seen, for the leak check.
	secrets func() []string
}

type setupOpts struct {
	clientSecret string // what holdfast sends; empty: the right one
	cfg          graph.Config
}

func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	tokens := oauthtest.Start(t, oauthtest.Options{Provider: holdfast.ProviderMicrosoft, ClientSecret: "client-s3cret-never-logged"})
	g := startGraph(t, tokens)
	logs := &providertest.Logs{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	secret := o.clientSecret
	if secret == "" {
		secret = tokens.ClientSecret()
	}
	src, err := oauth.New(oauth.Config{
		Provider: holdfast.ProviderMicrosoft, BaseURL: tokens.URL, ClientID: tokens.ClientID(), ClientSecret: secret,
		Timeout: 5 * time.Second, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	conn := newConnector(t, g.URL, src, log, o.cfg)
	b := &bundle{tokens: tokens, graph: g, conn: conn, logs: logs}
	b.sess = &holdfast.Session{
		Inbox:        &holdfast.Inbox{ID: "inb_test", Email: user, Provider: holdfast.ProviderMicrosoft},
		RefreshToken: tokens.Grant(user),
	}
	rotated := &providertest.Rotations{}
	rotated.Track(b.sess)
	first := b.sess.RefreshToken
	b.secrets = func() []string {
		return append([]string{first, tokens.ClientSecret()}, rotated.Tokens()...)
	}
	return b
}

func TestSync(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: graph.Config{PageSize: 2, MaxPages: 2}})
	ctx := t.Context()
	all := b.graph.deliver(5)

	// First round: two pages of two, then More with a nextLink cursor.
	res, err := b.conn.Sync(ctx, b.sess, "")
	if err != nil {
		t.Fatalf("Sync 1: %v", err)
	}
	if diff := cmp.Diff(all[:4], providertest.ProviderIDs(res.Messages)); diff != "" || !res.More || res.Reset {
		t.Fatalf("Sync 1: More %v Reset %v, ids (-want +got):\n%s", res.More, res.Reset, diff)
	}
	if !strings.Contains(res.Cursor, `"nextLink"`) {
		t.Errorf("Sync 1 cursor = %s, want a nextLink", res.Cursor)
	}
	want := holdfast.Message{
		InboxID: "inb_test", ProviderID: all[0], InternetMessageID: "<m0@example.test>",
		From: "bob@example.test", To: []string{user}, Subject: "Message 0",
		ReceivedAt: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), Snippet: "Body of message 0.",
	}
	if diff := cmp.Diff(want, res.Messages[0]); diff != "" {
		t.Errorf("first message (-want +got):\n%s", diff)
	}

	// The rest of the round, ending with a deltaLink.
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil {
		t.Fatalf("Sync 2: %v", err)
	}
	if diff := cmp.Diff(all[4:], providertest.ProviderIDs(res.Messages)); diff != "" || res.More {
		t.Fatalf("Sync 2: More %v, ids (-want +got):\n%s", res.More, diff)
	}
	if !strings.Contains(res.Cursor, `"deltaLink"`) {
		t.Errorf("Sync 2 cursor = %s, want a deltaLink", res.Cursor)
	}

	// Incremental: new messages; a deletion and a partial update are
	// skipped.
	b.graph.remove(1)
	b.graph.markRead(2)
	more := b.graph.deliver(2)
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil {
		t.Fatalf("Sync 3: %v", err)
	}
	if diff := cmp.Diff(more, providertest.ProviderIDs(res.Messages)); diff != "" || res.More || res.Reset {
		t.Fatalf("Sync 3: More %v Reset %v, ids (-want +got):\n%s", res.More, res.Reset, diff)
	}

	// Nothing new.
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil || len(res.Messages) != 0 || res.More {
		t.Fatalf("Sync 4 = %d messages, More %v, %v; want none", len(res.Messages), res.More, err)
	}
	providertest.AssertNoSecret(t, nil, b.logs.String(), b.secrets()...)
}

// An expired delta token (410 SyncStateNotFound and its variants) starts
// over and returns the same ProviderIDs, so nothing is stored twice.
func TestSyncReset(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		expire func(g *fakeGraph)
	}{
		{"410 SyncStateNotFound", func(g *fakeGraph) { g.expireDeltaTokens() }},
		{"410 resyncRequired", func(g *fakeGraph) {
			g.fail("delta", fault{status: 410, body: `{"error":{"code":"resyncRequired","message":"Resync required."}}`})
		}},
		{"400 syncStateNotFound lower case", func(g *fakeGraph) {
			g.fail("delta", fault{status: 400, body: `{"error":{"code":"syncstatenotfound","message":"The sync state generation is not found."}}`})
		}},
		{"410 InvalidSyncStateData", func(g *fakeGraph) {
			g.fail("delta", fault{status: 410, body: `{"error":{"code":"InvalidSyncStateData","message":"Invalid sync state data."}}`})
		}},
		{"410 without a code", func(g *fakeGraph) {
			g.fail("delta", fault{status: 410, header: http.Header{"Location": {"https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$deltaToken="}}, body: ``})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			ctx := t.Context()
			all := b.graph.deliver(3)
			first, err := b.conn.Sync(ctx, b.sess, "")
			if err != nil {
				t.Fatalf("Sync: %v", err)
			}
			b.graph.deliver(1)
			all = append(all, "AAMkAD0003=")
			tc.expire(b.graph)
			res, err := b.conn.Sync(ctx, b.sess, first.Cursor)
			if err != nil {
				t.Fatalf("Sync after expiry: %v", err)
			}
			if !res.Reset {
				t.Error("Sync after expiry: Reset = false, want true")
			}
			if diff := cmp.Diff(all, providertest.ProviderIDs(res.Messages)); diff != "" {
				t.Errorf("Sync after expiry ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(first.Messages, res.Messages[:3]); diff != "" {
				t.Errorf("messages synced again differ (-first +again):\n%s", diff)
			}
			// The new cursor works.
			res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
			if err != nil || res.Reset || len(res.Messages) != 0 {
				t.Errorf("Sync after reset = %d messages, Reset %v, %v", len(res.Messages), res.Reset, err)
			}
		})
	}
}

// A cursor that is unreadable, or whose link points to another host, is
// never followed: the sync starts over.
func TestSyncBadCursor(t *testing.T) {
	t.Parallel()
	for _, cur := range []string{
		`not json`,
		`{"v":9,"deltaLink":"x"}`,
		`{"v":1,"deltaLink":"https://attacker.example/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=1.1.1.0"}`,
	} {
		b := setup(t, setupOpts{})
		all := b.graph.deliver(2)
		res, err := b.conn.Sync(t.Context(), b.sess, cur)
		if err != nil {
			t.Fatalf("Sync(%q): %v", cur, err)
		}
		if !res.Reset || !slices.Equal(all, providertest.ProviderIDs(res.Messages)) {
			t.Errorf("Sync(%q) = Reset %v, %v; want a reset and every message", cur, res.Reset, providertest.ProviderIDs(res.Messages))
		}
	}
}

// A Graph error that quotes the access token does not leak it.
func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.graph.fail("delta", fault{status: 403, body: `{"error":{"code":"ErrorAccessDenied","message":"Access is denied for token {{token}}."}}`})
	_, err := b.conn.Sync(t.Context(), b.sess, "")
	pe := providertest.ProviderError(t, err)
	if pe.Reason != holdfast.ReasonInsufficientScope {
		t.Errorf("reason = %s, want insufficient_scope", pe.Reason)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error %q: want the token redacted", err)
	}
	if strings.Contains(err.Error(), "at-") {
		t.Errorf("error holds an access token: %v", err)
	}
	providertest.AssertNoSecret(t, err, b.logs.String(), b.secrets()...)
}

func outgoing(id string) *holdfast.OutgoingMessage {
	return &holdfast.OutgoingMessage{
		MessageID: id, From: "Alice <" + user + ">", To: []string{"bob@example.test"},
		Bcc: []string{"carol@example.test"}, Subject: "Hello", Text: "Hi Bob.",
		Date: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
	}
}

// FindSent looks a second time after FindSentWait, for a Sent Items copy
// that appears a moment after the 202.
func TestFindSentWaits(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: graph.Config{FindSentWait: 50 * time.Millisecond}})
	b.graph.fail("messages", fault{status: 200, body: `{"value":[]}`})
	if err := b.conn.Send(t.Context(), b.sess, outgoing("<snd_02@example.test>")); err != nil {
		t.Fatal(err)
	}
	found, err := b.conn.FindSent(t.Context(), b.sess, "<snd_02@example.test>")
	if err != nil || !found {
		t.Errorf("FindSent = %v, %v; want true on the second look", found, err)
	}
	if n := b.graph.hit("messages"); n != 2 {
		t.Errorf("messages requests = %d, want 2", n)
	}
}

// TestFindSentOutboxFirst: a message leaving the Outbox for Sent Items
// between two lookups of one look is found, because the Outbox is looked
// at first (looking at Sent Items first missed it there, then in the
// Outbox it had left).
func TestFindSentOutboxFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: graph.Config{FindSentWait: -1}}) // one look
	b.graph.mu.Lock()
	b.graph.outboxLooks = 1 // filed right after the first lookup
	b.graph.mu.Unlock()
	if err := b.conn.Send(t.Context(), b.sess, outgoing("<snd_05@example.test>")); err != nil {
		t.Fatal(err)
	}
	found, err := b.conn.FindSent(t.Context(), b.sess, "<snd_05@example.test>")
	if err != nil || !found {
		t.Errorf("FindSent = %v, %v; want true: the message was in the Outbox, then in Sent Items", found, err)
	}
}

// A send whose answer never comes is an unclear outcome; one that cannot
// connect is not.
func TestSendTransport(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	hang := make(chan struct{})
	slow := startSlow(t, hang)
	t.Cleanup(func() { close(hang) }) // before the server's Close
	src, _ := oauth.New(oauth.Config{Provider: holdfast.ProviderMicrosoft, BaseURL: b.tokens.URL, ClientID: b.tokens.ClientID(), ClientSecret: b.tokens.ClientSecret()})
	for _, tc := range []struct {
		name    string
		base    string
		unknown bool
		reason  holdfast.Reason
	}{
		{"timeout", slow, true, holdfast.ReasonProviderTimeout},
		{"refused", "http://127.0.0.1:1", false, holdfast.ReasonNetwork},
	} {
		conn, err := graph.New(graph.Config{BaseURL: tc.base, Tokens: src, Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		err = conn.Send(t.Context(), b.sess, outgoing("<snd_04@example.test>"))
		pe := providertest.ProviderError(t, err)
		if errors.Is(err, holdfast.ErrOutcomeUnknown) != tc.unknown || pe.Reason != tc.reason || pe.Class != holdfast.ClassRecoverable {
			t.Errorf("%s: Send error %v (reason %s), want unknown outcome %v, reason %s", tc.name, err, pe.Reason, tc.unknown, tc.reason)
		}
	}
}

// startSlow runs a server that never answers until hang is closed.
func startSlow(t *testing.T, hang chan struct{}) string {
	t.Helper()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	return srv
}

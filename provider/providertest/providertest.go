// Package providertest is the conformance suite that every
// holdfast.Connector passes, and the test helpers the connectors share.
//
// Run drives one connector through a Harness, which each backend
// implements in its tests: provider/imap against a fake server and against
// real Dovecot and Postfix (package provider/mailtest), provider/graph and
// provider/gmail against the in-process emulator (package emulator, see
// StartEmulator). The suite checks what every connector promises: Verify,
// an initial and an incremental Sync, a cursor the provider no longer
// honours, Send and FindSent, the *holdfast.ProviderError of each failure
// the backend can cause, and that no secret (password, refresh or access
// token, client secret) appears in an error's text, its user message or a
// log line. Connector-specific behaviour (paging, cursor contents, protocol
// details) stays in each connector's own tests.
//
// The Go API of this package is not stable.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// Harness makes the accounts of one backend for the suite.
type Harness interface {
	// NewAccount returns a connector and a session for a fresh, empty
	// mailbox. The connector, and whatever it uses (a token source), log
	// to log, which the suite reads for secrets.
	NewAccount(t *testing.T, log *slog.Logger) *Account
	// Failures lists the failures the backend can cause, each with the
	// verdict the connector must give.
	Failures() []Failure
}

// Capable is a Harness whose backend can do more than every backend can;
// Run checks what it declares, and leaves out what it does not.
type Capable interface {
	Capabilities() Capabilities
}

// Capabilities are what some backends can do and others cannot. Each one
// declared must come with its Account func, or the suite fails.
type Capabilities struct {
	// ExpiresAccessTokens: the backend signs in with OAuth access tokens
	// and can expire one (Account.ExpireAccessTokenFunc); a backend that
	// signs in with a password has none.
	ExpiresAccessTokens bool
	// FailsAfterAccept: the backend can take a send and then answer it
	// with a failure (Account.FailAfterAcceptFunc).
	FailsAfterAccept bool
}

// Account is one fresh mailbox of a backend, with the connector that acts
// for it and the means to act on it out of band.
type Account struct {
	Connector holdfast.Connector
	// Session acts for the mailbox. The suite sets its OnTokenRotated.
	Session *holdfast.Session
	// DeliverFunc puts m into the mailbox's inbox, as if it had been
	// mailed there, and returns when a Sync can see it.
	DeliverFunc func(t *testing.T, m Mail)
	// ResetCursorFunc makes the provider stop honouring every cursor it
	// handed out: a new UIDVALIDITY, an expired delta token or history id.
	ResetCursorFunc func(t *testing.T)
	// MessageFunc returns the message the suite sends with this
	// Message-ID. Nil means Outgoing(Session.Inbox.Email, id).
	MessageFunc func(id string) *holdfast.OutgoingMessage
	// CheckSentFunc fails the test unless the provider accepted m exactly
	// once, to its recipients, and filed one copy as sent.
	CheckSentFunc func(t *testing.T, m *holdfast.OutgoingMessage)
	// SendsFunc returns how many sends the provider accepted so far; nil
	// when the backend cannot tell.
	SendsFunc func(t *testing.T) int
	// ExpireAccessTokenFunc makes the provider refuse the access token the
	// connector holds; nil for backends that sign in with a password.
	ExpireAccessTokenFunc func(t *testing.T)
	// FailAfterAcceptFunc makes the provider take every later send and
	// then answer it with a failure (a 503 after accepting); nil for
	// backends that cannot.
	FailAfterAcceptFunc func(t *testing.T)
	// Secrets are secrets besides the session's password and refresh
	// tokens (which the suite collects itself): a client secret, a token.
	Secrets []string
	// BadCursors are unreadable cursors, besides the suite's own, from
	// which Sync must start over.
	BadCursors []string

	// NewestFirst: a Sync from the start (an empty cursor, or one that
	// starts over) returns the messages newest first (Gmail's backfill);
	// a Sync from a cursor returns them oldest first.
	NewestFirst bool
	// ResetKeepsProviderIDs: a Sync that starts over returns the same
	// messages with the same ProviderIDs. IMAP's ProviderIDs hold the
	// UIDVALIDITY, so they change.
	ResetKeepsProviderIDs bool
	// RotatesRefreshTokens: every token refresh hands out a new refresh
	// token (Microsoft), passed to Session.OnTokenRotated.
	RotatesRefreshTokens bool
}

// Mail is a message the suite delivers.
type Mail struct {
	MessageID string // with angle brackets
	From      string // a bare address
	To        string
	Subject   string
	Text      string
	// Snippet is what holdfast.Message.Snippet must read.
	Snippet string
}

// Raw returns m as an RFC 5322 message, for backends that store raw mail.
func (m Mail) Raw() []byte {
	return []byte("From: Bob <" + m.From + ">\r\n" +
		"To: " + m.To + "\r\n" +
		"Subject: " + m.Subject + "\r\n" +
		"Message-ID: " + m.MessageID + "\r\n" +
		"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" + strings.ReplaceAll(m.Text, "\n", "\r\n") + "\r\n")
}

// Outgoing returns the message the suite sends from the address from: to
// bob@example.test, Bcc carol@example.test, with a non-ASCII subject and a
// text and an HTML part.
func Outgoing(from, id string) *holdfast.OutgoingMessage {
	return &holdfast.OutgoingMessage{
		MessageID: id, From: "Alice <" + from + ">", To: []string{"bob@example.test"},
		Bcc: []string{"carol@example.test"}, Subject: "Grüße", Text: "Hi Bob.", HTML: "<p>Hi Bob.</p>",
		Date: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
	}
}

// Op names a Connector method.
type Op string

// The Connector methods a failure can be checked on.
const (
	OpVerify   Op = "Verify"
	OpSync     Op = "Sync"
	OpSend     Op = "Send"
	OpFindSent Op = "FindSent"
)

// Failure is a failure a backend can cause, and the verdict it must give.
type Failure struct {
	Name string
	// NewAccountFunc returns an account on which the failure happens: made
	// with a wrong client secret, or with a fault injected, a grant
	// revoked, a server stopped.
	NewAccountFunc func(t *testing.T, log *slog.Logger) *Account
	// Ops are the calls that must fail so; nil means all four.
	Ops []Op
	// Want is the verdict of every call in Ops.
	Want Verdict
	// ErrorContains, if set, is text the error must hold (the server's
	// response code, for the operator).
	ErrorContains string
}

// Verdict is the part of a *holdfast.ProviderError the suite compares.
type Verdict struct {
	Class           holdfast.Class
	Reason          holdfast.Reason
	Scope           holdfast.Scope
	Action          holdfast.Action
	OutageSensitive bool
	RetryAfter      time.Duration
	// OutcomeUnknown: a Send error wraps holdfast.ErrOutcomeUnknown (it is
	// never expected of the other calls).
	OutcomeUnknown bool
}

// Run runs the conformance suite against h's connector.
func Run(t *testing.T, h Harness) {
	t.Helper()
	t.Run("Verify", func(t *testing.T) { testVerify(t, h) })
	t.Run("Sync", func(t *testing.T) { testSync(t, h) })
	t.Run("SyncReset", func(t *testing.T) { testSyncReset(t, h) })
	t.Run("SyncBadCursor", func(t *testing.T) { testSyncBadCursor(t, h) })
	t.Run("SendAndFindSent", func(t *testing.T) { testSend(t, h) })
	var caps Capabilities
	if c, ok := h.(Capable); ok {
		caps = c.Capabilities()
	}
	if caps.ExpiresAccessTokens {
		t.Run("ExpiredAccessToken", func(t *testing.T) { testExpiredAccessToken(t, h) })
	}
	if caps.FailsAfterAccept {
		t.Run("SendAcceptedThenFailed", func(t *testing.T) { testSendAcceptedThenFailed(t, h) })
	}
	t.Run("Failures", func(t *testing.T) {
		for _, f := range h.Failures() {
			t.Run(f.Name, func(t *testing.T) { testFailure(t, f) })
		}
	})
}

// run is one test's account, with the logs and rotated tokens the suite
// collects.
type run struct {
	*Account
	logs    *Logs
	first   string // the session's refresh token at the start
	rotated Rotations
}

// start makes an account with newAccount, collects its logs and rotated
// refresh tokens, and checks at the end of the test that no secret reached
// the logs.
func start(t *testing.T, newAccount func(*testing.T, *slog.Logger) *Account) *run {
	t.Helper()
	logs := &Logs{}
	a := newAccount(t, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	r := &run{Account: a, logs: logs, first: a.Session.RefreshToken}
	r.rotated.Track(a.Session)
	t.Cleanup(func() {
		AssertNoSecret(t, nil, logs.String(), r.secrets()...)
		if strings.Contains(logs.String(), "Bearer") {
			t.Errorf("logs show an Authorization header:\n%s", logs.String())
		}
	})
	return r
}

// rotations returns the refresh tokens handed to OnTokenRotated.
func (r *run) rotations() []string { return r.rotated.Tokens() }

// secrets returns every secret the account used so far.
func (r *run) secrets() []string {
	s := append([]string{r.Session.Password, r.first}, r.rotations()...)
	return append(s, r.Secrets...)
}

// mail returns the suite's message number i to the account.
func (r *run) mail(i int) Mail {
	return Mail{
		MessageID: fmt.Sprintf("<m%d@example.test>", i), From: "bob@example.test", To: r.Session.Inbox.Email,
		Subject: fmt.Sprintf("Message %d", i), Text: fmt.Sprintf("Hello  there,\n\nTom & Jerry's notes %d.", i),
		Snippet: fmt.Sprintf("Hello there, Tom & Jerry's notes %d.", i),
	}
}

// deliver delivers the suite's messages from..to-1 and returns them.
func (r *run) deliver(t *testing.T, from, to int) []Mail {
	t.Helper()
	var ms []Mail
	for i := from; i < to; i++ {
		m := r.mail(i)
		r.DeliverFunc(t, m)
		ms = append(ms, m)
	}
	return ms
}

// outgoing returns the message the suite sends with this Message-ID.
func (r *run) outgoing(id string) *holdfast.OutgoingMessage {
	if r.MessageFunc != nil {
		return r.MessageFunc(id)
	}
	return Outgoing(r.Session.Inbox.Email, id)
}

// sync syncs from cursor until the provider has no more to give, and
// returns the messages, the first round's result and the last cursor.
// With changing set, every round must move the cursor.
func (r *run) sync(t *testing.T, cursor string, changing bool) ([]holdfast.Message, *holdfast.SyncResult, string) {
	t.Helper()
	var msgs []holdfast.Message
	var first *holdfast.SyncResult
	for round := 0; ; round++ {
		res, err := r.Connector.Sync(t.Context(), r.Session, cursor)
		if err != nil {
			t.Fatalf("Sync round %d: %v", round, err)
		}
		if first == nil {
			first = res
		} else if res.Reset {
			t.Errorf("Sync round %d: Reset, want it only on the first", round)
		}
		if changing && res.Cursor == cursor {
			t.Errorf("Sync round %d: cursor unchanged", round)
		}
		msgs = append(msgs, res.Messages...)
		cursor = res.Cursor
		if !res.More {
			return msgs, first, cursor
		}
		if round > 20 {
			t.Fatal("Sync never ends")
		}
	}
}

// checkMessages fails unless msgs are exactly want, in order, each with
// the metadata the suite delivered.
func (r *run) checkMessages(t *testing.T, what string, msgs []holdfast.Message, want []Mail) {
	t.Helper()
	if got, w := MessageIDs(msgs), mailIDs(want); strings.Join(got, " ") != strings.Join(w, " ") {
		t.Errorf("%s = %v, want %v", what, got, w)
		return
	}
	for i, m := range msgs {
		w := want[i]
		if m.InboxID != r.Session.Inbox.ID || m.ProviderID == "" || m.From != w.From ||
			len(m.To) != 1 || !strings.EqualFold(m.To[0], w.To) || m.Subject != w.Subject ||
			m.Snippet != w.Snippet || m.ReceivedAt.IsZero() || slices.Contains(m.Flags, `\Seen`) {
			t.Errorf("%s: message %d = %+v, want InboxID %s, a ProviderID, From %s, To %s, Subject %q, Snippet %q, ReceivedAt, unread",
				what, i, m, r.Session.Inbox.ID, w.From, w.To, w.Subject, w.Snippet)
		}
	}
}

func mailIDs(ms []Mail) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.MessageID)
	}
	return out
}

// MessageIDs returns the messages' Internet Message-IDs, in order.
func MessageIDs(msgs []holdfast.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.InternetMessageID)
	}
	return out
}

// ProviderIDs returns the messages' ProviderIDs, in order.
func ProviderIDs(msgs []holdfast.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.ProviderID)
	}
	return out
}

// Reversed returns a reversed copy of s.
func Reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// accounter is the consent flow's check of whose mailbox a grant opens,
// which the OAuth connectors offer.
type accounter interface {
	Account(ctx context.Context, s *holdfast.Session) (string, error)
}

// testVerify: Verify signs in; a connector that can tell whose mailbox
// the grant opens names the session's.
func testVerify(t *testing.T, h Harness) {
	r := start(t, h.NewAccount)
	if err := r.Connector.Verify(t.Context(), r.Session); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if n := len(r.rotations()); n != 0 && !r.RotatesRefreshTokens || n != 1 && r.RotatesRefreshTokens {
		t.Errorf("rotations after Verify = %d; the provider rotates refresh tokens: %v", n, r.RotatesRefreshTokens)
	}
	if ac, ok := r.Connector.(accounter); ok {
		got, err := ac.Account(t.Context(), r.Session)
		if err != nil {
			t.Fatalf("Account: %v", err)
		}
		if !strings.EqualFold(got, r.Session.Inbox.Email) {
			t.Errorf("Account = %q, want %q", got, r.Session.Inbox.Email)
		}
	}
}

// testSync: the first sync of an empty mailbox, then of three messages,
// then of two more; a sync with nothing new returns nothing.
func testSync(t *testing.T, h Harness) {
	r := start(t, h.NewAccount)
	ctx := t.Context()
	res, err := r.Connector.Sync(ctx, r.Session, "")
	if err != nil {
		t.Fatalf("Sync of an empty inbox: %v", err)
	}
	if len(res.Messages) != 0 || res.More || res.Reset {
		t.Errorf("Sync of an empty inbox = %d messages, More %v, Reset %v; want none", len(res.Messages), res.More, res.Reset)
	}
	first := r.deliver(t, 0, 3)
	msgs, _, cursor := r.sync(t, res.Cursor, false)
	r.checkMessages(t, "first sync", msgs, first)

	more := r.deliver(t, 3, 5)
	msgs, _, cursor = r.sync(t, cursor, false)
	r.checkMessages(t, "incremental sync", msgs, more)

	res, err = r.Connector.Sync(ctx, r.Session, cursor)
	if err != nil || len(res.Messages) != 0 || res.More || res.Reset {
		t.Errorf("Sync with nothing new = %v, More %v, Reset %v, %v; want nothing", MessageIDs(res.Messages), res.More, res.Reset, err)
	}
}

// testSyncReset: a cursor the provider no longer honours starts over:
// Reset, the same messages again, and a cursor that works.
func testSyncReset(t *testing.T, h Harness) {
	r := start(t, h.NewAccount)
	ms := r.deliver(t, 0, 3)
	if r.NewestFirst {
		ms = Reversed(ms)
	}
	first, _, cursor := r.sync(t, "", false)
	r.ResetCursorFunc(t)
	again, res, cursor := r.sync(t, cursor, true)
	if !res.Reset {
		t.Error("Sync after the reset: Reset = false, want true")
	}
	r.checkMessages(t, "Sync after the reset", again, ms)
	if diff := cmp.Diff(first, again); r.ResetKeepsProviderIDs && diff != "" {
		t.Errorf("messages after the reset (-first +again):\n%s", diff)
	}
	if !r.ResetKeepsProviderIDs && len(again) > 0 && again[0].ProviderID == first[0].ProviderID {
		t.Errorf("ProviderID %s unchanged across the reset", again[0].ProviderID)
	}
	next, err := r.Connector.Sync(t.Context(), r.Session, cursor)
	if err != nil || next.Reset || len(next.Messages) != 0 {
		t.Errorf("Sync after the reset = %d messages, Reset %v, %v; want none", len(next.Messages), next.Reset, err)
	}
}

// testSyncBadCursor: an unreadable cursor starts over.
func testSyncBadCursor(t *testing.T, h Harness) {
	for _, cur := range append([]string{"not json", "garbage"}, start(t, h.NewAccount).BadCursors...) {
		t.Run(cur, func(t *testing.T) {
			r := start(t, h.NewAccount)
			ms := r.deliver(t, 0, 2)
			if r.NewestFirst {
				ms = Reversed(ms)
			}
			first, _, _ := r.sync(t, "", false)
			msgs, res, cursor := r.sync(t, cur, false)
			if !res.Reset {
				t.Errorf("Sync(%q): Reset = false, want true", cur)
			}
			r.checkMessages(t, fmt.Sprintf("Sync(%q)", cur), msgs, ms)
			if diff := cmp.Diff(first, msgs); diff != "" {
				t.Errorf("Sync(%q) messages (-from the start +from the bad cursor):\n%s", cur, diff)
			}
			next, err := r.Connector.Sync(t.Context(), r.Session, cursor)
			if err != nil || next.Reset || len(next.Messages) != 0 {
				t.Errorf("Sync after the start over = %d messages, Reset %v, %v; want none", len(next.Messages), next.Reset, err)
			}
		})
	}
}

// testSend: FindSent finds nothing before Send and the message after it;
// a second send works too; the sent copy is no inbox message.
func testSend(t *testing.T, h Harness) {
	r := start(t, h.NewAccount)
	ctx := t.Context()
	const id = "<snd_01KQ@holdfast.test>"
	if found, err := r.Connector.FindSent(ctx, r.Session, id); err != nil || found {
		t.Fatalf("FindSent before Send = %v, %v; want false, nil", found, err)
	}
	m := r.outgoing(id)
	if err := r.Connector.Send(ctx, r.Session, m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r.CheckSentFunc(t, m)
	if found, err := r.Connector.FindSent(ctx, r.Session, id); err != nil || !found {
		t.Fatalf("FindSent after Send = %v, %v; want true, nil", found, err)
	}
	if found, err := r.Connector.FindSent(ctx, r.Session, "<other@holdfast.test>"); err != nil || found {
		t.Errorf("FindSent of a message never sent = %v, %v; want false, nil", found, err)
	}
	second := r.outgoing("<snd_02KQ@holdfast.test>")
	if err := r.Connector.Send(ctx, r.Session, second); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	r.CheckSentFunc(t, second)
	res, err := r.Connector.Sync(ctx, r.Session, "")
	if err != nil || len(res.Messages) != 0 {
		t.Errorf("Sync after a send = %v, %v; want no inbox messages", MessageIDs(res.Messages), err)
	}
}

// testSendAcceptedThenFailed: a send the provider took and then failed is
// an unclear outcome (it wraps holdfast.ErrOutcomeUnknown, never a clear
// refusal), and FindSent finds the message, so that a retry does not send
// it again. A backend whose sends reach Sent late (an emulator with a
// SentDelay) shows here that FindSent looks where the message waits (the
// Graph Outbox).
func testSendAcceptedThenFailed(t *testing.T, h Harness) {
	r := start(t, h.NewAccount)
	if r.FailAfterAcceptFunc == nil {
		t.Fatal("the harness declares FailsAfterAccept, but its account has no FailAfterAcceptFunc")
	}
	r.FailAfterAcceptFunc(t)
	const id = "<snd_unclear@holdfast.test>"
	m := r.outgoing(id)
	err := r.Connector.Send(t.Context(), r.Session, m)
	if !errors.Is(err, holdfast.ErrOutcomeUnknown) {
		t.Fatalf("Send through a failure after acceptance = %v, want an error wrapping ErrOutcomeUnknown", err)
	}
	AssertNoSecret(t, err, r.logs.String(), r.secrets()...)
	r.CheckSentFunc(t, m)
	if found, err := r.Connector.FindSent(t.Context(), r.Session, id); err != nil || !found {
		t.Errorf("FindSent of the message taken before the failure = %v, %v; want true, nil", found, err)
	}
}

// testExpiredAccessToken: an access token the provider refuses (401) is
// refreshed once, the rotated refresh token handed on, and the call
// retried.
func testExpiredAccessToken(t *testing.T, h Harness) {
	r := start(t, h.NewAccount)
	if r.ExpireAccessTokenFunc == nil {
		t.Fatal("the harness declares ExpiresAccessTokens, but its account has no ExpireAccessTokenFunc")
	}
	ms := r.deliver(t, 0, 1)
	if err := r.Connector.Verify(t.Context(), r.Session); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if n := len(r.rotations()); n != 0 && !r.RotatesRefreshTokens || n != 1 && r.RotatesRefreshTokens {
		t.Fatalf("rotations after Verify = %d; the provider rotates refresh tokens: %v", n, r.RotatesRefreshTokens)
	}
	r.ExpireAccessTokenFunc(t)
	res, err := r.Connector.Sync(t.Context(), r.Session, "")
	if err != nil {
		t.Fatalf("Sync with an expired token: %v", err)
	}
	r.checkMessages(t, "Sync with an expired token", res.Messages, ms)
	rts := r.rotations()
	if !r.RotatesRefreshTokens {
		if len(rts) != 0 {
			t.Errorf("OnTokenRotated called %d times, but the provider does not rotate refresh tokens", len(rts))
		}
		return
	}
	if len(rts) != 2 || r.Session.RefreshToken != rts[1] {
		t.Errorf("rotations = %d, want 2, the session holding the last", len(rts))
	}
}

// testFailure: every call in f.Ops fails with f's verdict, leaks no
// secret, and no send goes out.
func testFailure(t *testing.T, f Failure) {
	r := start(t, f.NewAccountFunc)
	ops := f.Ops
	if ops == nil {
		ops = []Op{OpVerify, OpSync, OpSend, OpFindSent}
	}
	const id = "<snd_fail@holdfast.test>"
	for _, op := range ops {
		var err error
		switch op {
		case OpVerify:
			err = r.Connector.Verify(t.Context(), r.Session)
		case OpSync:
			_, err = r.Connector.Sync(t.Context(), r.Session, "")
		case OpSend:
			err = r.Connector.Send(t.Context(), r.Session, r.outgoing(id))
		case OpFindSent:
			_, err = r.Connector.FindSent(t.Context(), r.Session, id)
		}
		pe := ProviderError(t, err)
		want := f.Want
		want.OutcomeUnknown = want.OutcomeUnknown && op == OpSend
		got := Verdict{pe.Class, pe.Reason, pe.Scope, pe.Action, pe.OutageSensitive, pe.RetryAfter, errors.Is(err, holdfast.ErrOutcomeUnknown)}
		if got != want {
			t.Errorf("%s error = %+v, want %+v (%v)", op, got, want, err)
		}
		if f.ErrorContains != "" && !strings.Contains(err.Error(), f.ErrorContains) {
			t.Errorf("%s error %q lacks %q", op, err, f.ErrorContains)
		}
		AssertNoSecret(t, err, r.logs.String(), r.secrets()...)
	}
	if r.SendsFunc != nil {
		if n := r.SendsFunc(t); n != 0 {
			t.Errorf("the provider accepted %d sends through the failure", n)
		}
	}
}

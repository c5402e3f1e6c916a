package graph_test

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/provider/graph"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/provider/providertest"
)

// harness runs the conformance suite on the emulator.
var harness = providertest.EmulatorHarness{
	// Sends wait in the Outbox for longer than a test: FindSent must look
	// there.
	Options: providertest.EmulatorOptions{Provider: holdfast.ProviderMicrosoft, Email: user, SentDelay: time.Hour},
	AccountFunc: func(t *testing.T, e *providertest.Emulator, log *slog.Logger) *providertest.Account {
		a := e.Account(newConnector(t, e.URLs.Graph, e.Tokens, log, graph.Config{}), "inb_emu")
		a.ResetKeepsProviderIDs, a.RotatesRefreshTokens = true, true
		return a
	},
	Faults: append(providertest.GrantFailures(), []providertest.EmulatorFailure{
		{
			Name: "graph 503", PrepareFunc: providertest.WithFault(503, "", 0, emulator.SurfaceGraph),
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderUnavailable, Scope: holdfast.ScopeOperation, Action: holdfast.ActionRetry, OutcomeUnknown: true},
		},
		{
			Name: "graph 429 Retry-After", PrepareFunc: providertest.WithFault(429, "", 3.5, emulator.SurfaceGraph),
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonThrottled, Scope: holdfast.ScopeOperation, Action: holdfast.ActionRetryAfter, RetryAfter: 3500 * time.Millisecond},
		},
		{
			Name: "token endpoint 503", PrepareFunc: providertest.WithFault(503, "", 30, emulator.SurfaceToken),
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderUnavailable, Scope: holdfast.ScopeAccount, Action: holdfast.ActionRetryAfter, RetryAfter: 30 * time.Second},
		},
		{
			Name:        "tenant not found during an outage",
			PrepareFunc: providertest.WithFault(400, `{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'example.test' not found.","error_codes":[90002]}`, 0, emulator.SurfaceToken),
			Want:        providertest.Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonAccountNotFound, Scope: holdfast.ScopeAccount, Action: holdfast.ActionReconnect, OutageSensitive: true},
		},
		// What a sendMail failure says about the send's outcome.
		{
			Name: "send 503 may have been sent", PrepareFunc: providertest.WithFault(503, "", 0, emulator.SurfaceGraph), Ops: []providertest.Op{providertest.OpSend},
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderUnavailable, Scope: holdfast.ScopeOperation, Action: holdfast.ActionRetry, OutcomeUnknown: true},
		},
		{
			Name: "send 504 may have been sent", PrepareFunc: providertest.WithFault(504, "<html>Gateway Timeout</html>", 0, emulator.SurfaceGraph), Ops: []providertest.Op{providertest.OpSend},
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderTimeout, Scope: holdfast.ScopeOperation, Action: holdfast.ActionRetry, OutcomeUnknown: true},
		},
		{
			Name: "send 429 refused", PrepareFunc: providertest.WithFault(429, "", 10, emulator.SurfaceGraph), Ops: []providertest.Op{providertest.OpSend},
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonThrottled, Scope: holdfast.ScopeOperation, Action: holdfast.ActionRetryAfter, RetryAfter: 10 * time.Second},
		},
		{
			Name: "send quota refused", PrepareFunc: providertest.WithFault(403, `{"error":{"code":"ErrorSubmissionQuotaExceeded","message":"x"}}`, 0, emulator.SurfaceGraph), Ops: []providertest.Op{providertest.OpSend},
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonQuotaExceeded, Scope: holdfast.ScopeOperation, Action: holdfast.ActionRetry},
		},
		{
			Name: "send too large", PrepareFunc: providertest.WithFault(413, `{"error":{"code":"ErrorMessageSizeExceeded","message":"x"}}`, 0, emulator.SurfaceGraph), Ops: []providertest.Op{providertest.OpSend},
			Want: providertest.Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonMessageTooLarge, Scope: holdfast.ScopeOperation, Action: holdfast.ActionSkipItem},
		},
	}...),
}

func TestConformance(t *testing.T) {
	t.Parallel()
	providertest.Run(t, harness)
}

// newConnector returns a connector on the Graph at baseURL configured by
// cfg, with short timeouts and one FindSent look.
func newConnector(t *testing.T, baseURL string, tokens *oauth.Source, log *slog.Logger, cfg graph.Config) *graph.Connector {
	t.Helper()
	cfg.BaseURL, cfg.Tokens, cfg.Logger = baseURL, tokens, log
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.FindSentWait == 0 {
		cfg.FindSentWait = -1
	}
	conn, err := graph.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// emuBundle is one test's emulator, connector and session.
type emuBundle struct {
	emu  *providertest.Emulator
	conn *graph.Connector
	sess *holdfast.Session
	logs *providertest.Logs
	// rotated are the refresh tokens handed to OnTokenRotated.
	rotated func() []string
}

func setupEmulator(t *testing.T, cfg graph.Config) *emuBundle {
	t.Helper()
	logs := &providertest.Logs{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := providertest.StartEmulator(t, providertest.EmulatorOptions{Provider: holdfast.ProviderMicrosoft, Email: user, Log: log})
	b := &emuBundle{emu: e, conn: newConnector(t, e.URLs.Graph, e.Tokens, log, cfg), sess: e.Session("inb_emu"), logs: logs}
	rotated := &providertest.Rotations{}
	rotated.Track(b.sess)
	b.rotated = func() []string { return append([]string{e.RefreshToken}, rotated.Tokens()...) }
	return b
}

func (b *emuBundle) deliver(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		d, err := b.emu.Deliver(emulator.Mail{To: user, From: "bob@example.test", Subject: "Message " + string(rune('A'+i)), Text: "Hello  there,\n\nBob"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	return ids
}

func TestEmulatorSync(t *testing.T) {
	t.Parallel()
	b := setupEmulator(t, graph.Config{PageSize: 2, MaxPages: 2})
	ctx := t.Context()
	all := b.deliver(t, 5)

	res, err := b.conn.Sync(ctx, b.sess, "")
	if err != nil {
		t.Fatalf("Sync 1: %v", err)
	}
	if diff := cmp.Diff(all[:4], providertest.ProviderIDs(res.Messages)); diff != "" || !res.More {
		t.Fatalf("Sync 1: More %v, ids (-want +got):\n%s", res.More, diff)
	}
	m := res.Messages[0]
	if m.From != "bob@example.test" || !slices.Equal(m.To, []string{user}) || m.Subject != "Message A" ||
		m.InternetMessageID == "" || m.ReceivedAt.IsZero() || m.Snippet != "Hello there, Bob" {
		t.Errorf("first message = %+v", m)
	}
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil {
		t.Fatalf("Sync 2: %v", err)
	}
	if diff := cmp.Diff(all[4:], providertest.ProviderIDs(res.Messages)); diff != "" || res.More {
		t.Fatalf("Sync 2: More %v, ids (-want +got):\n%s", res.More, diff)
	}
	more := b.deliver(t, 2)
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil {
		t.Fatalf("Sync 3: %v", err)
	}
	if diff := cmp.Diff(more, providertest.ProviderIDs(res.Messages)); diff != "" || res.Reset {
		t.Fatalf("Sync 3: Reset %v, ids (-want +got):\n%s", res.Reset, diff)
	}

	// The delta token expires: a full resync with the same ProviderIDs.
	if err := b.emu.ExpireSyncState(user); err != nil {
		t.Fatal(err)
	}
	cur := res.Cursor
	var again []string
	for {
		res, err = b.conn.Sync(ctx, b.sess, cur)
		if err != nil {
			t.Fatalf("Sync after expiry: %v", err)
		}
		if cur == res.Cursor || (again == nil && !res.Reset) {
			t.Fatalf("Sync after expiry: Reset %v, cursor unchanged %v", res.Reset, cur == res.Cursor)
		}
		again = append(again, providertest.ProviderIDs(res.Messages)...)
		cur = res.Cursor
		if !res.More {
			break
		}
	}
	if diff := cmp.Diff(append(all, more...), again); diff != "" {
		t.Errorf("resync ids (-want +got):\n%s", diff)
	}
	providertest.AssertNoSecret(t, nil, b.logs.String(), b.rotated()...)
}

package graph_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
	"github.com/holdfast/holdfast/provider/bearer/bearertest"
	"github.com/holdfast/holdfast/provider/graph"
	"github.com/holdfast/holdfast/provider/oauth"
)

// emuBundle is one test's emulator, connector and session.
type emuBundle struct {
	emu   *emulator.Emulator
	urls  emulator.URLs
	conn  *graph.Connector
	sess  *holdfast.Session
	logs  *bearertest.Logs
	clock *bearertest.Clock
	// rotated are the refresh tokens handed to OnTokenRotated.
	rotated func() []string
}

type emuOpts struct {
	clientSecret string // what holdfast sends; empty: the emulator's
	cfg          graph.Config
}

func setupEmulator(t *testing.T, o emuOpts) *emuBundle {
	t.Helper()
	clk := bearertest.NewClock(time.Now())
	emu, urls := emulatortest.StartConfig(t, emulator.Config{Now: clk.Now})
	rt, err := emu.CreateAccount(emulator.Account{Provider: emulator.Microsoft, Email: user})
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
		Provider: holdfast.ProviderMicrosoft, BaseURL: urls.MicrosoftLogin, Tenant: "organizations",
		ClientID: emulator.DefaultClientID, ClientSecret: secret, Timeout: 5 * time.Second, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.cfg
	cfg.BaseURL, cfg.Tokens, cfg.Logger = urls.Graph, src, log
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
	var mu sync.Mutex
	var rotated []string
	return &emuBundle{
		emu: emu, urls: urls, conn: conn, logs: logs, clock: clk,
		sess: &holdfast.Session{
			Inbox:        &holdfast.Inbox{ID: "inb_emu", Email: user, Provider: holdfast.ProviderMicrosoft},
			RefreshToken: rt,
			OnTokenRotated: func(_ context.Context, rt string) error {
				mu.Lock()
				defer mu.Unlock()
				rotated = append(rotated, rt)
				return nil
			},
		},
		rotated: func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string{rt}, rotated...)
		},
	}
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
	b := setupEmulator(t, emuOpts{cfg: graph.Config{PageSize: 2, MaxPages: 2}})
	ctx := t.Context()
	all := b.deliver(t, 5)

	res, err := b.conn.Sync(ctx, b.sess, "")
	if err != nil {
		t.Fatalf("Sync 1: %v", err)
	}
	if diff := cmp.Diff(all[:4], ids(res.Messages)); diff != "" || !res.More {
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
	if diff := cmp.Diff(all[4:], ids(res.Messages)); diff != "" || res.More {
		t.Fatalf("Sync 2: More %v, ids (-want +got):\n%s", res.More, diff)
	}
	more := b.deliver(t, 2)
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil {
		t.Fatalf("Sync 3: %v", err)
	}
	if diff := cmp.Diff(more, ids(res.Messages)); diff != "" || res.Reset {
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
		again = append(again, ids(res.Messages)...)
		cur = res.Cursor
		if !res.More {
			break
		}
	}
	if diff := cmp.Diff(append(all, more...), again); diff != "" {
		t.Errorf("resync ids (-want +got):\n%s", diff)
	}
	bearertest.AssertNoSecret(t, nil, b.logs.String(), b.rotated()...)
}

// An expired access token gets Graph's 401; the connector refreshes once,
// hands the rotated refresh token on, and retries.
func TestEmulatorExpiredAccessToken(t *testing.T) {
	t.Parallel()
	b := setupEmulator(t, emuOpts{})
	b.deliver(t, 1)
	if err := b.conn.Verify(t.Context(), b.sess); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if n := len(b.rotated()); n != 2 {
		t.Fatalf("rotations after Verify = %d, want 1", n-1)
	}
	// Past the emulator's token lifetime, while the cache (on real time)
	// still holds the token: Graph answers 401.
	b.clock.Advance(2 * time.Hour)
	res, err := b.conn.Sync(t.Context(), b.sess, "")
	if err != nil {
		t.Fatalf("Sync with an expired token: %v", err)
	}
	if len(res.Messages) != 1 {
		t.Errorf("Sync = %d messages, want 1", len(res.Messages))
	}
	rts := b.rotated()
	if len(rts) != 3 || b.sess.RefreshToken != rts[2] {
		t.Errorf("rotations = %d, want 2, the session holding the last", len(rts)-1)
	}
	bearertest.AssertNoSecret(t, nil, b.logs.String(), rts...)
}

func TestEmulatorSendAndFindSent(t *testing.T) {
	t.Parallel()
	b := setupEmulator(t, emuOpts{})
	ctx := t.Context()
	const id = "<snd_01KQ@example.test>"
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
	if len(sent) != 1 || sent[0].MessageID != id || !slices.Equal(sent[0].Bcc, []string{"carol@example.test"}) ||
		!slices.Equal(sent[0].To, []string{"bob@example.test"}) {
		t.Fatalf("emulator recorded %+v, want one send with Message-ID %s and Bcc carol", sent, id)
	}
	if found, err := b.conn.FindSent(ctx, b.sess, id); err != nil || !found {
		t.Fatalf("FindSent after Send = %v, %v; want true", found, err)
	}
	if found, _ := b.conn.FindSent(ctx, b.sess, "<other@example.test>"); found {
		t.Error("FindSent found a message never sent")
	}
}

func TestEmulatorFaults(t *testing.T) {
	t.Parallel()
	type want struct {
		class   holdfast.Class
		reason  holdfast.Reason
		scope   holdfast.Scope
		action  holdfast.Action
		outage  bool
		retry   time.Duration
		unknown bool // the send's outcome is unclear
	}
	for _, tc := range []struct {
		name         string
		clientSecret string
		fault        *emulator.Fault
		revoke       bool
		want         want
	}{
		{
			name: "revoked AADSTS50173", revoke: true,
			want: want{holdfast.ClassPermanent, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, false, 0, false},
		},
		{
			name: "wrong client secret", clientSecret: "not-the-secret",
			want: want{holdfast.ClassPermanent, holdfast.ReasonAppMisconfigured, holdfast.ScopeApp, holdfast.ActionOperator, false, 0, false},
		},
		{
			name:  "graph 503",
			fault: &emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{emulator.SurfaceGraph}, HTTPStatus: 503},
			want:  want{holdfast.ClassRecoverable, holdfast.ReasonProviderUnavailable, holdfast.ScopeOperation, holdfast.ActionRetry, false, 0, true},
		},
		{
			name:  "graph 429 Retry-After",
			fault: &emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{emulator.SurfaceGraph}, HTTPStatus: 429, RetryAfterS: 3.5},
			want:  want{holdfast.ClassRecoverable, holdfast.ReasonThrottled, holdfast.ScopeOperation, holdfast.ActionRetryAfter, false, 3500 * time.Millisecond, false},
		},
		{
			name:  "token endpoint 503",
			fault: &emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{emulator.SurfaceToken}, HTTPStatus: 503, RetryAfterS: 30},
			want:  want{holdfast.ClassRecoverable, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetryAfter, false, 30 * time.Second, false},
		},
		{
			name: "tenant not found during an outage",
			fault: &emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{emulator.SurfaceToken}, HTTPStatus: 400,
				Body: `{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'example.test' not found.","error_codes":[90002]}`},
			want: want{holdfast.ClassPermanent, holdfast.ReasonAccountNotFound, holdfast.ScopeAccount, holdfast.ActionReconnect, true, 0, false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupEmulator(t, emuOpts{clientSecret: tc.clientSecret})
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
					err = b.conn.Send(t.Context(), b.sess, outgoing("<snd_02@example.test>"))
				case "FindSent":
					_, err = b.conn.FindSent(t.Context(), b.sess, "<snd_02@example.test>")
				}
				pe := bearertest.ProviderError(t, err)
				w := tc.want
				w.unknown = w.unknown && op == "Send"
				got := want{pe.Class, pe.Reason, pe.Scope, pe.Action, pe.OutageSensitive, pe.RetryAfter, errors.Is(err, errOutcomeUnknown)}
				if got != w {
					t.Errorf("%s error = %+v, want %+v (%v)", op, got, w, err)
				}
				bearertest.AssertNoSecret(t, err, b.logs.String(), append(b.rotated(), emulator.DefaultClientSecret)...)
			}
			if sent, _ := b.emu.Sent(user); len(sent) != 0 {
				t.Errorf("the emulator accepted %d sends through a fault", len(sent))
			}
			if strings.Contains(b.logs.String(), "Bearer") {
				t.Errorf("logs show an Authorization header:\n%s", b.logs.String())
			}
		})
	}
}

func TestEmulatorSendErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		fault   emulator.Fault
		unknown bool
		reason  holdfast.Reason
		retry   time.Duration
	}{
		{"503 may have been sent", emulator.Fault{HTTPStatus: 503}, true, holdfast.ReasonProviderUnavailable, 0},
		{"504 may have been sent", emulator.Fault{HTTPStatus: 504, Body: "<html>Gateway Timeout</html>"}, true, holdfast.ReasonProviderTimeout, 0},
		{"429 refused", emulator.Fault{HTTPStatus: 429, RetryAfterS: 10}, false, holdfast.ReasonThrottled, 10 * time.Second},
		{"quota refused", emulator.Fault{HTTPStatus: 403, Body: `{"error":{"code":"ErrorSubmissionQuotaExceeded","message":"x"}}`}, false, holdfast.ReasonQuotaExceeded, 0},
		{"too large", emulator.Fault{HTTPStatus: 413, Body: `{"error":{"code":"ErrorMessageSizeExceeded","message":"x"}}`}, false, holdfast.ReasonMessageTooLarge, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupEmulator(t, emuOpts{})
			f := tc.fault
			f.Provider, f.Surfaces = emulator.Microsoft, []emulator.Surface{emulator.SurfaceGraph}
			if _, err := b.emu.AddFault(f); err != nil {
				t.Fatal(err)
			}
			err := b.conn.Send(t.Context(), b.sess, outgoing("<snd_03@example.test>"))
			pe := bearertest.ProviderError(t, err)
			if got := errors.Is(err, errOutcomeUnknown); got != tc.unknown {
				t.Errorf("Send error %v: ErrOutcomeUnknown %v, want %v", err, got, tc.unknown)
			}
			if pe.Reason != tc.reason || pe.RetryAfter != tc.retry {
				t.Errorf("Send error reason %s retry %v, want %s %v", pe.Reason, pe.RetryAfter, tc.reason, tc.retry)
			}
		})
	}
}

package providertest

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
	"github.com/holdfast/holdfast/provider/oauth"
)

// Emulator is an in-process emulator serving one fresh mailbox, with a
// token source for it: the backend of the connectors built on package
// bearer (graph, gmail).
type Emulator struct {
	*emulator.Emulator
	URLs emulator.URLs
	// Clock is the emulator's time; the token cache keeps real time, so
	// advancing the clock expires a token the cache still holds.
	Clock *Clock
	// Tokens gets the mailbox's access tokens from the emulator.
	Tokens *oauth.Source
	// Email is the mailbox's address.
	Email string
	// RefreshToken is the mailbox's grant.
	RefreshToken string
	// Provider is holdfast's name for the emulated provider.
	Provider holdfast.Provider
}

// EmulatorOptions configures StartEmulator.
type EmulatorOptions struct {
	// Provider is holdfast.ProviderMicrosoft or holdfast.ProviderGoogle.
	Provider holdfast.Provider
	// Email is the mailbox's address.
	Email string
	// ClientSecret is what holdfast sends to the token endpoint. Empty
	// means the emulator's, emulator.DefaultClientSecret.
	ClientSecret string
	// Log receives the token source's records.
	Log *slog.Logger
	// SentDelay is the emulator's Config.SentDelay: how long a send takes
	// to reach Sent.
	SentDelay time.Duration
}

// StartEmulator serves an emulator for the rest of the test, with one
// account of o.Email, and a token source for it.
func StartEmulator(t testing.TB, o EmulatorOptions) *Emulator {
	t.Helper()
	clk := NewClock(time.Now())
	emu, urls := emulatortest.StartConfig(t, emulator.Config{Now: clk.Now, SentDelay: o.SentDelay})
	p, cfg := emulator.Microsoft, oauth.Config{Provider: o.Provider, BaseURL: urls.MicrosoftLogin, Tenant: "organizations"}
	if o.Provider == holdfast.ProviderGoogle {
		p, cfg = emulator.Google, oauth.Config{Provider: o.Provider, BaseURL: urls.GoogleOAuth}
	}
	rt, err := emu.CreateAccount(emulator.Account{Provider: p, Email: o.Email})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientID, cfg.ClientSecret, cfg.Timeout, cfg.Logger = emulator.DefaultClientID, o.ClientSecret, 5*time.Second, o.Log
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = emulator.DefaultClientSecret
	}
	src, err := oauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Emulator{Emulator: emu, URLs: urls, Clock: clk, Tokens: src, Email: o.Email, RefreshToken: rt, Provider: o.Provider}
}

// Session returns a session for the mailbox, as inbox inboxID.
func (e *Emulator) Session(inboxID string) *holdfast.Session {
	return &holdfast.Session{
		Inbox:        &holdfast.Inbox{ID: inboxID, Email: e.Email, Provider: e.Provider},
		RefreshToken: e.RefreshToken,
	}
}

// Account returns the suite's account for conn acting on the mailbox as
// inbox inboxID. The caller sets the capabilities.
func (e *Emulator) Account(conn holdfast.Connector, inboxID string) *Account {
	return &Account{
		Connector: conn,
		Session:   e.Session(inboxID),
		DeliverFunc: func(t *testing.T, m Mail) {
			t.Helper()
			if _, err := e.Deliver(emulator.Mail{To: m.To, From: m.From, Subject: m.Subject, Text: m.Text, MessageID: m.MessageID}); err != nil {
				t.Fatal(err)
			}
		},
		ResetCursorFunc: func(t *testing.T) {
			t.Helper()
			if err := e.ExpireSyncState(e.Email); err != nil {
				t.Fatal(err)
			}
		},
		CheckSentFunc: e.checkSent,
		SendsFunc: func(t *testing.T) int {
			t.Helper()
			sent, err := e.Sent(e.Email)
			if err != nil {
				t.Fatal(err)
			}
			return len(sent)
		},
		// Past the emulator's token lifetime, while the cache (on real
		// time) still holds the token: the API answers 401.
		ExpireAccessTokenFunc: func(*testing.T) { e.Clock.Advance(2 * time.Hour) },
		FailAfterAcceptFunc: func(t *testing.T) {
			t.Helper()
			p, s := emulator.Microsoft, emulator.SurfaceGraph
			if e.Provider == holdfast.ProviderGoogle {
				p, s = emulator.Google, emulator.SurfaceGmail
			}
			if _, err := e.AddFault(emulator.Fault{Provider: p, Surfaces: []emulator.Surface{s}, AfterAccept: true}); err != nil {
				t.Fatal(err)
			}
		},
		Secrets: []string{emulator.DefaultClientSecret},
	}
}

// checkSent fails unless the emulator recorded one send of m, with its
// subject and recipients, Bcc included.
func (e *Emulator) checkSent(t *testing.T, m *holdfast.OutgoingMessage) {
	t.Helper()
	sent, err := e.Sent(e.Email)
	if err != nil {
		t.Fatal(err)
	}
	var got []emulator.SentMessage
	for _, s := range sent {
		if s.MessageID == m.MessageID {
			got = append(got, s)
		}
	}
	if len(got) != 1 || got[0].Subject != m.Subject || !slices.Equal(got[0].To, m.To) || !slices.Equal(got[0].Bcc, m.Bcc) {
		t.Fatalf("emulator recorded %+v, want one send with Message-ID %s, Subject %q, To %v and Bcc %v", got, m.MessageID, m.Subject, m.To, m.Bcc)
	}
}

// EmulatorHarness is the Harness of a connector on the emulator: each
// account gets an emulator of its own.
type EmulatorHarness struct {
	// Options configures each emulator; its ClientSecret and Log are set
	// per account.
	Options EmulatorOptions
	// AccountFunc returns the account of a connector on e, logging to log:
	// e.Account(conn, inboxID) with the provider's capabilities set.
	AccountFunc func(t *testing.T, e *Emulator, log *slog.Logger) *Account
	// Faults are the failures the emulator causes for this provider.
	Faults []EmulatorFailure
}

// EmulatorFailure is a failure the emulator causes.
type EmulatorFailure struct {
	Name string
	// ClientSecret, if set, is the wrong client secret holdfast sends.
	ClientSecret string
	// PrepareFunc, if set, breaks the fresh mailbox: a fault, a revoked
	// grant.
	PrepareFunc func(t testing.TB, e *Emulator)
	// Ops and Want are Failure's.
	Ops  []Op
	Want Verdict
}

var _ Harness = EmulatorHarness{}

// NewAccount implements Harness.
func (h EmulatorHarness) NewAccount(t *testing.T, log *slog.Logger) *Account {
	t.Helper()
	return h.account(t, log, "", nil)
}

// account starts an emulator with the client secret, prepares it and
// returns the connector's account on it.
func (h EmulatorHarness) account(t *testing.T, log *slog.Logger, clientSecret string, prepare func(testing.TB, *Emulator)) *Account {
	t.Helper()
	o := h.Options
	o.ClientSecret, o.Log = clientSecret, log
	e := StartEmulator(t, o)
	if prepare != nil {
		prepare(t, e)
	}
	return h.AccountFunc(t, e, log)
}

// Failures implements Harness.
// Capabilities implements Capable: the emulator's accounts sign in with
// OAuth access tokens it can expire, and it can fail a send it took.
func (h EmulatorHarness) Capabilities() Capabilities {
	return Capabilities{ExpiresAccessTokens: true, FailsAfterAccept: true}
}

func (h EmulatorHarness) Failures() []Failure {
	var out []Failure
	for _, f := range h.Faults {
		out = append(out, Failure{
			Name: f.Name, Ops: f.Ops, Want: f.Want,
			NewAccountFunc: func(t *testing.T, log *slog.Logger) *Account {
				return h.account(t, log, f.ClientSecret, f.PrepareFunc)
			},
		})
	}
	return out
}

// GrantFailures are the failures of the token endpoint that both
// providers answer alike: a revoked grant, and a client secret that is not
// the app's.
func GrantFailures() []EmulatorFailure {
	return []EmulatorFailure{
		{
			Name: "revoked", PrepareFunc: Revoked,
			Want: Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonTokenRevoked, Scope: holdfast.ScopeAccount, Action: holdfast.ActionReconnect},
		},
		{
			Name: "wrong client secret", ClientSecret: "not-the-secret",
			Want: Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonAppMisconfigured, Scope: holdfast.ScopeApp, Action: holdfast.ActionOperator},
		},
	}
}

// Revoked revokes the mailbox's grant.
func Revoked(t testing.TB, e *Emulator) {
	t.Helper()
	if err := e.Revoke(e.Email); err != nil {
		t.Fatal(err)
	}
}

// WithFault returns a PrepareFunc that injects a fault of the emulated
// provider on the surfaces.
func WithFault(status int, body string, retryAfterS float64, surfaces ...emulator.Surface) func(testing.TB, *Emulator) {
	return func(t testing.TB, e *Emulator) {
		t.Helper()
		p := emulator.Microsoft
		if e.Provider == holdfast.ProviderGoogle {
			p = emulator.Google
		}
		if _, err := e.AddFault(emulator.Fault{Provider: p, Surfaces: surfaces, HTTPStatus: status, Body: body, RetryAfterS: retryAfterS}); err != nil {
			t.Fatal(err)
		}
	}
}

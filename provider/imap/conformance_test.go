package imap_test

import (
	"bytes"
	"log/slog"
	"slices"
	"testing"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/imap/imaptest"
	"github.com/holdfast/holdfast/provider/providertest"
)

// fakeHarness runs the conformance suite on the fake IMAP and SMTP
// servers, with one kind of connection security for both.
type fakeHarness struct {
	security holdfast.Security
}

var _ providertest.Harness = fakeHarness{}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, sec := range []holdfast.Security{holdfast.SecurityNone, holdfast.SecurityStartTLS, holdfast.SecurityTLS} {
		t.Run(string(sec), func(t *testing.T) {
			t.Parallel()
			providertest.Run(t, fakeHarness{security: sec})
		})
	}
}

// NewAccount implements providertest.Harness.
func (h fakeHarness) NewAccount(t *testing.T, log *slog.Logger) *providertest.Account {
	t.Helper()
	return setup(t, setupOpts{security: h.security, log: log}).account()
}

// account returns the suite's account for b.
func (b *bundle) account() *providertest.Account {
	return &providertest.Account{
		Connector: b.conn,
		Session:   b.sess,
		DeliverFunc: func(t *testing.T, m providertest.Mail) {
			t.Helper()
			b.imapSrv.Deliver(t, user, "INBOX", m.Raw())
		},
		ResetCursorFunc: func(t *testing.T) {
			t.Helper()
			b.imapSrv.ResetUIDValidity(t, user, "INBOX")
		},
		CheckSentFunc: func(t *testing.T, m *holdfast.OutgoingMessage) {
			t.Helper()
			var to [][]string
			for _, got := range b.smtpSrv.Messages() {
				if bytes.Contains(got.Data, []byte(m.MessageID)) {
					to = append(to, got.To)
				}
			}
			want := slices.Concat(m.To, m.Cc, m.Bcc)
			if len(to) != 1 || !slices.Equal(to[0], want) {
				t.Fatalf("SMTP server got %s to %v, want it once to %v", m.MessageID, to, want)
			}
			if n := b.imapSrv.Count(t, user, "Sent", m.MessageID); n != 1 {
				t.Errorf("Sent holds %d copies of %s, want 1", n, m.MessageID)
			}
		},
		SendsFunc: func(*testing.T) int { return len(b.smtpSrv.Messages()) },
		Secrets:   []string{password, token},
	}
}

// Failures implements providertest.Harness.
func (h fakeHarness) Failures() []providertest.Failure {
	broken := func(f func(b *bundle)) func(*testing.T, *slog.Logger) *providertest.Account {
		return func(t *testing.T, log *slog.Logger) *providertest.Account {
			b := setup(t, setupOpts{security: h.security, log: log})
			f(b)
			return b.account()
		}
	}
	imapOps := []providertest.Op{providertest.OpVerify, providertest.OpSync, providertest.OpFindSent}
	return []providertest.Failure{
		{
			Name:           "wrong password",
			NewAccountFunc: broken(func(b *bundle) { b.sess.Password = password + "-old" }),
			Ops:            imapOps,
			Want: providertest.Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonPasswordChanged, Scope: holdfast.ScopeAccount,
				Action: holdfast.ActionReconnect, OutageSensitive: true},
			ErrorContains: "AUTHENTICATIONFAILED",
		},
		{
			Name:           "wrong password on send",
			NewAccountFunc: broken(func(b *bundle) { b.sess.Password = "wrong-" + password }),
			Ops:            []providertest.Op{providertest.OpSend},
			Want: providertest.Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonPasswordChanged, Scope: holdfast.ScopeAccount,
				Action: holdfast.ActionReconnect, OutageSensitive: true},
		},
		{
			Name:           "[UNAVAILABLE]",
			NewAccountFunc: broken(func(b *bundle) { b.imapSrv.SetLoginError(imaptest.ErrUnavailable) }),
			Ops:            imapOps,
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderUnavailable, Scope: holdfast.ScopeAccount,
				Action: holdfast.ActionRetry},
		},
		{
			Name:           "server down",
			NewAccountFunc: broken(func(b *bundle) { b.imapSrv.Stop() }),
			Ops:            imapOps,
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonNetwork, Scope: holdfast.ScopeAccount,
				Action: holdfast.ActionRetry},
		},
	}
}

package imap_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/imap"
	"github.com/holdfast/holdfast/provider/mailtest"
	"github.com/holdfast/holdfast/provider/providertest"
)

// These tests run the connector against private real Dovecot and Postfix
// instances (package provider/mailtest). They skip where the servers are not
// installed, and fail under CI=true.

func hostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, port
}

// realSession returns a session for a new account on srv, over IMAP and
// SMTP with the given security.
func realSession(t testing.TB, srv *mailtest.Server, email, pw string, sec holdfast.Security) *holdfast.Session {
	t.Helper()
	srv.AddUser(t, email, pw)
	imapAddr, smtpAddr := srv.IMAPAddr, srv.SMTPAddr
	smtpSec := holdfast.SecurityStartTLS
	if sec == holdfast.SecurityTLS {
		imapAddr, smtpAddr, smtpSec = srv.IMAPTLSAddr, srv.SMTPTLSAddr, holdfast.SecurityTLS
	}
	ih, ip := hostPort(t, imapAddr)
	sh, sp := hostPort(t, smtpAddr)
	return &holdfast.Session{
		Inbox: &holdfast.Inbox{
			ID: "inb_" + strings.Split(email, "@")[0], Email: email, Username: email, Provider: holdfast.ProviderIMAP,
			IMAP: &holdfast.ServerConfig{Host: ih, Port: ip, Security: sec},
			SMTP: &holdfast.ServerConfig{Host: sh, Port: sp, Security: smtpSec},
		},
		Password: pw,
	}
}

// dovecotHarness runs the conformance suite on the real servers: each
// account is a new user, with a second user to send to.
type dovecotHarness struct {
	srv     *mailtest.Server
	newConn func(imap.Config) *imap.Connector
	n       int
}

var _ providertest.Harness = (*dovecotHarness)(nil)

// NewAccount implements providertest.Harness.
func (h *dovecotHarness) NewAccount(t *testing.T, log *slog.Logger) *providertest.Account {
	t.Helper()
	h.n++
	email, rcpt := fmt.Sprintf("suite%d@example.test", h.n), fmt.Sprintf("rcpt%d@example.test", h.n)
	s := realSession(t, h.srv, email, password, holdfast.SecurityStartTLS)
	h.srv.AddUser(t, rcpt, password)
	return &providertest.Account{
		Connector: h.newConn(imap.Config{Logger: log}),
		Session:   s,
		DeliverFunc: func(t *testing.T, m providertest.Mail) {
			t.Helper()
			h.srv.Deliver(t, email, m.Raw())
		},
		ResetCursorFunc: func(t *testing.T) {
			t.Helper()
			h.srv.ResetUIDValidity(t, email, "INBOX")
		},
		// Postfix delivers to the second user; it refuses unknown ones.
		MessageFunc: func(id string) *holdfast.OutgoingMessage {
			m := providertest.Outgoing(email, id)
			m.From, m.To, m.Bcc = email, []string{rcpt}, nil
			return m
		},
		CheckSentFunc: func(t *testing.T, m *holdfast.OutgoingMessage) {
			t.Helper()
			if n := h.srv.Count(t, email, "Sent", m.MessageID); n != 1 {
				t.Errorf("Sent holds %d copies, want 1", n)
			}
			h.srv.WaitCount(t, rcpt, "INBOX", m.MessageID, 1)
		},
		Secrets: []string{password},
	}
}

// Failures implements providertest.Harness.
func (h *dovecotHarness) Failures() []providertest.Failure {
	return []providertest.Failure{
		{
			Name: "wrong password",
			NewAccountFunc: func(t *testing.T, log *slog.Logger) *providertest.Account {
				a := h.NewAccount(t, log)
				a.Session.Password = "old-" + password
				return a
			},
			Ops: []providertest.Op{providertest.OpVerify, providertest.OpSync, providertest.OpFindSent},
			Want: providertest.Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonPasswordChanged, Scope: holdfast.ScopeAccount,
				Action: holdfast.ActionReconnect, OutageSensitive: true},
			ErrorContains: "AUTHENTICATIONFAILED",
		},
		{
			Name: "servers down",
			NewAccountFunc: func(t *testing.T, log *slog.Logger) *providertest.Account {
				a := h.NewAccount(t, log)
				h.srv.Stop()
				t.Cleanup(func() { h.srv.Restart(t) })
				return a
			},
			Ops:  []providertest.Op{providertest.OpVerify, providertest.OpSync, providertest.OpSend},
			Want: providertest.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonNetwork, Scope: holdfast.ScopeAccount, Action: holdfast.ActionRetry},
		},
	}
}

func TestDovecot(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	newConn := func(cfg imap.Config) *imap.Connector {
		cfg.TLSConfig = srv.TLSConfig()
		cfg.CommandTimeout = 20 * time.Second
		cfg.AllowPrivateHosts = true // Dovecot listens on 127.0.0.1
		return imap.New(cfg)
	}
	k := newConn(imap.Config{})

	t.Run("verify", func(t *testing.T) {
		for i, sec := range []holdfast.Security{holdfast.SecurityNone, holdfast.SecurityStartTLS, holdfast.SecurityTLS} {
			s := realSession(t, srv, fmt.Sprintf("verify%d@example.test", i), password, sec)
			if sec == holdfast.SecurityNone {
				s.Inbox.SMTP = nil // Postfix requires TLS for submission
			}
			if err := k.Verify(t.Context(), s); err != nil {
				t.Errorf("Verify over %s: %v", sec, err)
			}
		}
	})

	t.Run("conformance", func(t *testing.T) {
		providertest.Run(t, &dovecotHarness{srv: srv, newConn: newConn})
	})

	t.Run("condstore", func(t *testing.T) {
		const email = "condstore@example.test"
		s := realSession(t, srv, email, password, holdfast.SecurityTLS)
		appendMessages(t, srv, email, 0, 3)
		first, err := k.Sync(t.Context(), s, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(first.Messages) != 3 {
			t.Fatalf("first sync returned %d messages, want 3", len(first.Messages))
		}
		modSeq := func(cursor string) float64 {
			t.Helper()
			m, _ := decodeCursor(t, cursor)["modseq"].(float64)
			return m
		}
		if modSeq(first.Cursor) == 0 {
			t.Fatalf("cursor %s has no modseq; Dovecot offers CONDSTORE", first.Cursor)
		}
		quiet, err := k.Sync(t.Context(), s, first.Cursor)
		if err != nil {
			t.Fatal(err)
		}
		if len(quiet.Messages) != 0 || quiet.More || quiet.Cursor != first.Cursor {
			t.Errorf("sync with no change: %d messages, More %v, cursor %s; want none and %s", len(quiet.Messages), quiet.More, quiet.Cursor, first.Cursor)
		}

		storeFlags(t, srv, email, goimap.StoreFlagsAdd, goimap.FlagSeen, 2)
		res, err := k.Sync(t.Context(), s, quiet.Cursor)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) != 1 {
			t.Fatalf("sync after \\Seen on one message returned %v, want only that one", ids(res.Messages))
		}
		m, was := res.Messages[0], first.Messages[1]
		if m.ProviderID != was.ProviderID || !slices.Contains(m.Flags, string(goimap.FlagSeen)) ||
			m.Subject != was.Subject || m.Snippet != was.Snippet || m.InternetMessageID != was.InternetMessageID {
			t.Errorf("changed message = %+v, want %s with \\Seen and its metadata unchanged", m, was.ProviderID)
		}
		if modSeq(res.Cursor) <= modSeq(quiet.Cursor) {
			t.Errorf("cursor modseq %v, want above %v", modSeq(res.Cursor), modSeq(quiet.Cursor))
		}
		if again, err := k.Sync(t.Context(), s, res.Cursor); err != nil || len(again.Messages) != 0 {
			t.Errorf("sync after the change was returned = %v, %v; want nothing", again, err)
		}

		// A cursor from before the change returns it again.
		before, err := k.Sync(t.Context(), s, quiet.Cursor)
		if err != nil || len(before.Messages) != 1 || before.Messages[0].ProviderID != was.ProviderID {
			t.Errorf("sync from the cursor before the change = %+v, %v; want %s again", before, err, was.ProviderID)
		}
		// A cursor written before CONDSTORE was used still works: no
		// reset, nothing new, and it gains the modseq.
		old := decodeCursor(t, res.Cursor)
		delete(old, "modseq")
		oldCursor, _ := json.Marshal(old)
		up, err := k.Sync(t.Context(), s, string(oldCursor))
		if err != nil {
			t.Fatal(err)
		}
		if up.Reset || len(up.Messages) != 0 || modSeq(up.Cursor) != modSeq(res.Cursor) {
			t.Errorf("sync from a cursor without modseq: Reset %v, %d messages, cursor %s; want no reset, none, modseq %v",
				up.Reset, len(up.Messages), up.Cursor, modSeq(res.Cursor))
		}

		// A flag change and a new message in one sync: the change first.
		storeFlags(t, srv, email, goimap.StoreFlagsAdd, goimap.FlagFlagged, 1)
		appendMessages(t, srv, email, 3, 4)
		both, err := k.Sync(t.Context(), s, up.Cursor)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ids(both.Messages), " "); got != "<m0@example.test> <m3@example.test>" {
			t.Errorf("sync after a flag change and a delivery = %s, want <m0@example.test> <m3@example.test>", got)
		} else if !slices.Contains(both.Messages[0].Flags, string(goimap.FlagFlagged)) {
			t.Errorf("flags of m0 = %v, want \\Flagged", both.Messages[0].Flags)
		}
	})

	t.Run("condstore batches", func(t *testing.T) {
		const email = "condstore-batches@example.test"
		s := realSession(t, srv, email, password, holdfast.SecurityTLS)
		appendMessages(t, srv, email, 0, 7)
		kb := newConn(imap.Config{BatchSize: 3})
		_, _, cursor := syncRounds(t, kb, s, "", 3)
		// One STORE per message: seven mod-sequences.
		for uid := range 7 {
			storeFlags(t, srv, email, goimap.StoreFlagsAdd, goimap.FlagSeen, goimap.UID(uid+1))
		}
		sizes, msgs, _ := syncRounds(t, kb, s, cursor, 5)
		seen := map[string]bool{}
		for _, m := range msgs {
			seen[m.ProviderID] = true
		}
		if fmt.Sprint(sizes) != "[3 3 1]" || len(seen) != 7 {
			t.Errorf("changed batches = %v covering %d messages, want [3 3 1] covering 7", sizes, len(seen))
		}
	})

	t.Run("batches", func(t *testing.T) {
		const email = "batches@example.test"
		s := realSession(t, srv, email, password, holdfast.SecurityTLS)
		appendMessages(t, srv, email, 0, 23)
		kb := newConn(imap.Config{BatchSize: 10})
		sizes, all, _ := syncRounds(t, kb, s, "", 5)
		if fmt.Sprint(sizes) != "[10 10 3]" || len(all) != 23 {
			t.Errorf("batch sizes = %v (%d messages), want [10 10 3]", sizes, len(all))
		}
	})

}

// login signs in to the account over IMAPS, as another mail client would.
func login(t testing.TB, srv *mailtest.Server, email string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(srv.IMAPTLSAddr, &imapclient.Options{TLSConfig: srv.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(email, password).Wait(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// appendMessages appends messages from..to-1 to the account's INBOX over
// IMAP, which is much faster than one doveadm call each.
func appendMessages(t testing.TB, srv *mailtest.Server, email string, from, to int) {
	t.Helper()
	c := login(t, srv, email)
	defer c.Close()
	for i := from; i < to; i++ {
		raw := rawMessage(i, fmt.Sprintf("Body of message %d, with some more words to make a snippet.", i))
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// storeFlags changes the flags of the messages with these UIDs in the
// account's INBOX over IMAP, as another mail client would.
func storeFlags(t testing.TB, srv *mailtest.Server, email string, op goimap.StoreFlagsOp, flag goimap.Flag, uids ...goimap.UID) {
	t.Helper()
	c := login(t, srv, email)
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(goimap.UIDSetNum(uids...), &goimap.StoreFlags{Op: op, Silent: true, Flags: []goimap.Flag{flag}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

const (
	benchMailboxes = 20
	benchMessages  = 500
)

// benchSetup starts a server with benchMailboxes accounts of benchMessages
// messages each.
func benchSetup(b *testing.B) (*mailtest.Server, []*holdfast.Session) {
	b.Helper()
	srv := mailtest.Start(b)
	sessions := make([]*holdfast.Session, benchMailboxes)
	var wg sync.WaitGroup
	for i := range sessions {
		email := fmt.Sprintf("bench%d@example.test", i)
		sessions[i] = realSession(b, srv, email, password, holdfast.SecurityTLS)
		wg.Go(func() { appendMessages(b, srv, email, 0, benchMessages) })
	}
	wg.Wait()
	return srv, sessions
}

// BenchmarkSync syncs every mailbox from the start, all at once, with the
// connector.
func BenchmarkSync(b *testing.B) {
	srv, sessions := benchSetup(b)
	k := imap.New(imap.Config{TLSConfig: srv.TLSConfig(), BatchSize: benchMessages, AllowPrivateHosts: true})
	start := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, len(sessions))
		for _, s := range sessions {
			wg.Go(func() {
				res, err := k.Sync(context.Background(), s, "")
				if err == nil && len(res.Messages) != benchMessages {
					err = fmt.Errorf("synced %d messages, want %d", len(res.Messages), benchMessages)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*benchMailboxes*benchMessages)/time.Since(start).Seconds(), "messages/s")
}

// BenchmarkPlainFetch does the same fetch as BenchmarkSync with the bare
// go-imap client, as the baseline.
func BenchmarkPlainFetch(b *testing.B) {
	srv, sessions := benchSetup(b)
	opts := &goimap.FetchOptions{
		UID: true, Flags: true, Envelope: true, InternalDate: true,
		BodySection: []*goimap.FetchItemBodySection{
			{Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"Content-Type", "Content-Transfer-Encoding"}, Peek: true},
			{Specifier: goimap.PartSpecifierText, Partial: &goimap.SectionPartial{Size: 2048}, Peek: true},
		},
	}
	start := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, len(sessions))
		for _, s := range sessions {
			wg.Go(func() {
				errs <- func() error {
					c, err := imapclient.DialTLS(srv.IMAPTLSAddr, &imapclient.Options{TLSConfig: srv.TLSConfig()})
					if err != nil {
						return err
					}
					defer c.Close()
					if err := c.Login(s.Inbox.Username, s.Password).Wait(); err != nil {
						return err
					}
					if _, err := c.Select("INBOX", &goimap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
						return err
					}
					msgs, err := c.Fetch(goimap.UIDSet{{Start: 1, Stop: 0}}, opts).Collect()
					if err != nil {
						return err
					}
					if len(msgs) != benchMessages {
						return fmt.Errorf("fetched %d messages, want %d", len(msgs), benchMessages)
					}
					return c.Logout().Wait()
				}()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, net.ErrClosed) {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*benchMailboxes*benchMessages)/time.Since(start).Seconds(), "messages/s")
}

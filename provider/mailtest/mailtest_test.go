package mailtest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/provider/mailtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type testBundle struct {
	server   *mailtest.Server
	email    string
	password string
}

// setup starts a server with one account whose password has characters
// that a passwd-file is touchy about.
func setup(t *testing.T) *testBundle {
	t.Helper()
	start := time.Now()
	s := mailtest.Start(t)
	t.Logf("Start took %v", time.Since(start))
	b := &testBundle{server: s, email: "alice@example.test", password: "correct: horse battery ¶"}
	s.AddUser(t, b.email, b.password)
	return b
}

var messageSeq atomic.Int64

// newMessage returns a message with a new Message-ID.
func newMessage(from, to string) (raw []byte, messageID string) {
	messageID = fmt.Sprintf("<mailtest-%d-%d@holdfast.test>", time.Now().UnixNano(), messageSeq.Add(1))
	raw = []byte(strings.Join([]string{
		"From: " + from,
		"To: " + to,
		"Subject: mailtest",
		"Date: " + time.Now().Format(time.RFC1123Z),
		"Message-ID: " + messageID,
		"",
		"Hello from the mailtest harness.",
		"",
	}, "\r\n"))
	return raw, messageID
}

// dialIMAP connects by plaintext, STARTTLS or implicit TLS.
func dialIMAP(t *testing.T, s *mailtest.Server, mode string) (*imapclient.Client, error) {
	t.Helper()
	opts := &imapclient.Options{TLSConfig: s.TLSConfig(), Dialer: &net.Dialer{Timeout: 5 * time.Second}}
	var c *imapclient.Client
	var err error
	switch mode {
	case "plaintext":
		c, err = imapclient.DialInsecure(s.IMAPAddr, opts)
	case "starttls":
		c, err = imapclient.DialStartTLS(s.IMAPAddr, opts)
	case "tls":
		c, err = imapclient.DialTLS(s.IMAPTLSAddr, opts)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// login connects by plaintext and logs in, failing t on any error.
func login(t *testing.T, s *mailtest.Server, email, password string) *imapclient.Client {
	t.Helper()
	c, err := dialIMAP(t, s, "plaintext")
	if err != nil {
		t.Fatalf("dial IMAP: %v", err)
	}
	if err := c.Login(email, password).Wait(); err != nil {
		t.Fatalf("IMAP LOGIN %s: %v", email, err)
	}
	return c
}

// selectMailbox selects mailbox and returns what SELECT reported.
func selectMailbox(t *testing.T, c *imapclient.Client, mailbox string) *imap.SelectData {
	t.Helper()
	data, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", mailbox, err)
	}
	return data
}

// fetchMessageIDs returns the envelope Message-ID of every message in the
// selected mailbox, as go-imap reports it.
func fetchMessageIDs(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH ENVELOPE: %v", err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Envelope.MessageID)
	}
	return ids
}

// bare removes the angle brackets of a Message-ID, which go-imap's
// envelopes leave out.
func bare(messageID string) string {
	return strings.TrimSuffix(strings.TrimPrefix(messageID, "<"), ">")
}

func TestIMAPLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, mode := range []string{"plaintext", "starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c, err := dialIMAP(t, b.server, mode)
			if err != nil {
				t.Fatalf("dial %s: %v", mode, err)
			}
			if err := c.Login(b.email, b.password).Wait(); err != nil {
				t.Fatalf("LOGIN over %s: %v", mode, err)
			}
			selectMailbox(t, c, "INBOX")
			if err := c.Logout().Wait(); err != nil {
				t.Errorf("LOGOUT: %v", err)
			}
		})
	}
}

func TestIMAPSpecialUseMailboxes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := login(t, b.server, b.email, b.password)
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	got := map[string]string{}
	for _, m := range list {
		for _, a := range m.Attrs {
			if strings.HasPrefix(string(a), `\`) && a != imap.MailboxAttrHasNoChildren && a != imap.MailboxAttrHasChildren {
				got[string(a)] = m.Mailbox
			}
		}
	}
	want := map[string]string{`\Drafts`: "Drafts", `\Sent`: "Sent", `\Trash`: "Trash", `\Junk`: "Junk", `\Archive`: "Archive"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("special-use mailboxes (-want +got):\n%s", diff)
	}
}

func TestIMAPLoginFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name            string
		email, password string
	}{
		{"wrong password", b.email, "wrong"},
		{"unknown user", "nobody@example.test", b.password},
		{"empty password", b.email, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := dialIMAP(t, b.server, "tls")
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			err = c.Login(tt.email, tt.password).Wait()
			var imapErr *imap.Error
			if !errors.As(err, &imapErr) || imapErr.Type != imap.StatusResponseTypeNo || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
				t.Fatalf("LOGIN(%q, %q) = %v, want NO [AUTHENTICATIONFAILED]", tt.email, tt.password, err)
			}
		})
	}
}

func TestSetPassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Twice within a second: each change must take effect.
	for _, pw := range []string{"second", "third"} {
		old := b.password
		b.server.SetPassword(t, b.email, pw)
		b.password = pw
		c, err := dialIMAP(t, b.server, "plaintext")
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if err := c.Login(b.email, old).Wait(); err == nil {
			t.Errorf("LOGIN with the old password %q succeeded, want failure", old)
		}
		login(t, b.server, strings.ToUpper(b.email), pw)
	}
}

func TestAddUserAfterFailedLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const carol = "carol@example.test"
	c, err := dialIMAP(t, b.server, "plaintext")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err := c.Login(carol, "pw").Wait(); err == nil {
		t.Fatalf("LOGIN of an account not yet added succeeded")
	}
	// Within the same second: a new account must work at once.
	b.server.AddUser(t, carol, "pw")
	login(t, b.server, carol, "pw")
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	raw, id := newMessage("bob@example.test", b.email)
	b.server.Deliver(t, b.email, raw)

	if got := b.server.Count(t, b.email, "INBOX", id); got != 1 {
		t.Errorf("Count(INBOX, %s) = %d, want 1", id, got)
	}
	if got := b.server.Count(t, b.email, "Sent", id); got != 0 {
		t.Errorf("Count(Sent, %s) = %d, want 0", id, got)
	}
	c := login(t, b.server, b.email, b.password)
	if data := selectMailbox(t, c, "INBOX"); data.NumMessages != 1 {
		t.Errorf("SELECT INBOX: %d messages, want 1", data.NumMessages)
	}
	if diff := cmp.Diff([]string{bare(id)}, fetchMessageIDs(t, c)); diff != "" {
		t.Errorf("Message-IDs over IMAP (-want +got):\n%s", diff)
	}
}

func TestMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if got := b.server.Messages(t, b.email, "INBOX"); len(got) != 0 {
		t.Errorf("Messages(INBOX) of a new account = %q, want none", got)
	}
	raw1, id1 := newMessage("bob@example.test", b.email)
	raw2, id2 := newMessage("carol@example.test", b.email)
	b.server.Deliver(t, b.email, raw1)
	b.server.Deliver(t, b.email, raw2)
	got := b.server.Messages(t, b.email, "INBOX")
	if len(got) != 2 {
		t.Fatalf("Messages(INBOX) = %d messages, want 2: %q", len(got), got)
	}
	for k, want := range []struct{ from, id string }{{"bob@example.test", id1}, {"carol@example.test", id2}} {
		m, err := mail.ReadMessage(bytes.NewReader(got[k]))
		if err != nil {
			t.Fatalf("message %d: %v in %q", k, err, got[k])
		}
		if m.Header.Get("From") != want.from || m.Header.Get("Message-ID") != want.id {
			t.Errorf("message %d: From %q Message-ID %q, want %q %q", k, m.Header.Get("From"), m.Header.Get("Message-ID"), want.from, want.id)
		}
		if body, _ := io.ReadAll(m.Body); string(body) != "Hello from the mailtest harness." {
			t.Errorf("message %d body = %q", k, body)
		}
	}
}

func TestAppendAndMessageIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if got := b.server.MessageIDs(t, b.email, "Sent"); len(got) != 0 {
		t.Errorf("MessageIDs(Sent) of a new account = %q, want none", got)
	}
	raw1, id1 := newMessage(b.email, "bob@example.test")
	raw2, id2 := newMessage(b.email, "bob@example.test")
	b.server.Append(t, b.email, "Sent", raw1)
	b.server.Append(t, b.email, "Sent", raw2)
	b.server.Append(t, b.email, "Sent", raw1)
	b.server.Append(t, b.email, "Sent", []byte("Subject: no id\r\n\r\nbody\r\n"))

	if diff := cmp.Diff([]string{id1, id2, id1, ""}, b.server.MessageIDs(t, b.email, "Sent")); diff != "" {
		t.Errorf("MessageIDs(Sent) (-want +got):\n%s", diff)
	}
	if got := b.server.Count(t, b.email, "Sent", id1); got != 2 {
		t.Errorf("Count(Sent, %s) = %d, want 2", id1, got)
	}
}

func TestSMTPSubmit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const bob, bobPassword = "bob@example.test", "bob's password"
	b.server.AddUser(t, bob, bobPassword)

	tests := []struct {
		name string
		dial func(s *mailtest.Server) (*smtp.Client, error)
		auth sasl.Client
	}{
		{
			name: "STARTTLS, AUTH PLAIN",
			dial: func(s *mailtest.Server) (*smtp.Client, error) { return smtp.DialStartTLS(s.SMTPAddr, s.TLSConfig()) },
			auth: sasl.NewPlainClient("", b.email, b.password),
		},
		{
			name: "implicit TLS, AUTH LOGIN",
			dial: func(s *mailtest.Server) (*smtp.Client, error) { return smtp.DialTLS(s.SMTPTLSAddr, s.TLSConfig()) },
			auth: sasl.NewLoginClient(b.email, b.password),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tt.dial(b.server)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			if err := c.Auth(tt.auth); err != nil {
				t.Fatalf("AUTH: %v", err)
			}
			raw, id := newMessage(b.email, bob)
			if err := c.SendMail(b.email, []string{bob}, strings.NewReader(string(raw))); err != nil {
				t.Fatalf("SendMail: %v", err)
			}
			if err := c.Quit(); err != nil {
				t.Errorf("QUIT: %v", err)
			}

			b.server.WaitCount(t, bob, "INBOX", id, 1)
			// The server keeps the sender's copy in Sent, once.
			b.server.WaitCount(t, b.email, "Sent", id, 1)
			if got := b.server.Count(t, b.email, "INBOX", id); got != 0 {
				t.Errorf("sender's INBOX has %d copies, want 0", got)
			}
			if got := b.server.Count(t, bob, "Sent", id); got != 0 {
				t.Errorf("recipient's Sent has %d copies, want 0", got)
			}
			c2 := login(t, b.server, bob, bobPassword)
			selectMailbox(t, c2, "INBOX")
			ids := fetchMessageIDs(t, c2)
			if n := strings.Count(strings.Join(ids, " "), bare(id)); n != 1 {
				t.Errorf("IMAP shows %d copies of %s in bob's INBOX (%q), want 1", n, id, ids)
			}
		})
	}
}

func TestSMTPRejects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	raw, _ := newMessage(b.email, b.email)

	t.Run("no TLS", func(t *testing.T) {
		t.Parallel()
		c, err := smtp.Dial(b.server.SMTPAddr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		if err := c.Hello("localhost"); err != nil {
			t.Fatalf("EHLO: %v", err)
		}
		if ok, _ := c.Extension("AUTH"); ok {
			t.Errorf("AUTH offered before STARTTLS")
		}
		if err := c.SendMail(b.email, []string{b.email}, strings.NewReader(string(raw))); err == nil {
			t.Errorf("SendMail without TLS succeeded, want an error")
		}
	})
	t.Run("no AUTH", func(t *testing.T) {
		t.Parallel()
		c, err := smtp.DialStartTLS(b.server.SMTPAddr, b.server.TLSConfig())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		if err := c.SendMail(b.email, []string{b.email}, strings.NewReader(string(raw))); err == nil {
			t.Errorf("SendMail without AUTH succeeded, want an error")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		c, err := smtp.DialStartTLS(b.server.SMTPAddr, b.server.TLSConfig())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		err = c.Auth(sasl.NewPlainClient("", b.email, "wrong"))
		var smtpErr *smtp.SMTPError
		if !errors.As(err, &smtpErr) || smtpErr.Code != 535 {
			t.Errorf("AUTH with a wrong password = %v, want 535", err)
		}
	})
}

func TestResetUIDValidity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	raw, id := newMessage("bob@example.test", b.email)
	b.server.Deliver(t, b.email, raw)

	c := login(t, b.server, b.email, b.password)
	before := selectMailbox(t, c, "INBOX").UIDValidity
	if got := b.server.UIDValidity(t, b.email, "INBOX"); got != before {
		t.Errorf("UIDValidity = %d, SELECT says %d", got, before)
	}
	c.Close()

	after := b.server.ResetUIDValidity(t, b.email, "INBOX")
	if after == before {
		t.Fatalf("ResetUIDValidity kept %d", before)
	}
	c = login(t, b.server, b.email, b.password)
	if got := selectMailbox(t, c, "INBOX").UIDValidity; got != after {
		t.Errorf("SELECT after the reset: UIDVALIDITY %d, want %d (was %d)", got, after, before)
	}
	if diff := cmp.Diff([]string{bare(id)}, fetchMessageIDs(t, c)); diff != "" {
		t.Errorf("messages after the reset (-want +got):\n%s", diff)
	}
}

func TestStopRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.server
	raw, id := newMessage("bob@example.test", b.email)
	s.Deliver(t, b.email, raw)
	open := login(t, s, b.email, b.password)

	s.Stop()
	s.Stop() // idempotent
	if err := open.Noop().Wait(); err == nil {
		t.Errorf("NOOP on a connection opened before Stop succeeded")
	}
	for _, addr := range []string{s.IMAPAddr, s.IMAPTLSAddr, s.SMTPAddr, s.SMTPTLSAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("dial %s after Stop succeeded", addr)
		}
	}

	s.Restart(t)
	c := login(t, s, b.email, b.password)
	selectMailbox(t, c, "INBOX")
	if diff := cmp.Diff([]string{bare(id)}, fetchMessageIDs(t, c)); diff != "" {
		t.Errorf("INBOX after Restart (-want +got):\n%s", diff)
	}
	sc, err := smtp.DialStartTLS(s.SMTPAddr, s.TLSConfig())
	if err != nil {
		t.Fatalf("SMTP after Restart: %v", err)
	}
	defer sc.Close()
	if err := sc.Auth(sasl.NewPlainClient("", b.email, b.password)); err != nil {
		t.Errorf("SMTP AUTH after Restart: %v", err)
	}
}

func TestServersDoNotInterfere(t *testing.T) {
	t.Parallel()
	servers := make([]*testBundle, 2)
	ids := make([]string, 2)
	for i := range servers {
		servers[i] = setup(t)
		raw, id := newMessage("bob@example.test", servers[i].email)
		ids[i] = id
		servers[i].server.Deliver(t, servers[i].email, raw)
	}
	a, b := servers[0].server, servers[1].server
	if a.IMAPAddr == b.IMAPAddr || a.SMTPAddr == b.SMTPAddr || a.Dir == b.Dir {
		t.Fatalf("two servers share addresses or directory: %+v, %+v", a, b)
	}
	// The same account on both, with different passwords.
	b.SetPassword(t, servers[1].email, "other")
	for i, s := range servers {
		if diff := cmp.Diff([]string{ids[i]}, s.server.MessageIDs(t, s.email, "INBOX")); diff != "" {
			t.Errorf("INBOX of server %d (-want +got):\n%s", i, diff)
		}
	}
	login(t, a, servers[0].email, servers[0].password)
	login(t, b, servers[1].email, "other")
	a.Stop()
	login(t, b, servers[1].email, "other")
}

// BenchmarkStart measures how long Start takes to have both servers
// listening.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		mailtest.Start(b).Stop()
	}
}

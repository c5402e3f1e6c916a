package imap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/imap"
	"github.com/holdfast/holdfast/provider/imap/imaptest"
	"github.com/holdfast/holdfast/provider/smtp/smtptest"
)

const (
	user     = "alice@example.test"
	password = "s3cret-Passw0rd-never-logged"
	token    = "ya29.token-never-logged"
)

// bundle is one test's servers, connector and session.
type bundle struct {
	imapSrv *imaptest.Server
	smtpSrv *smtptest.Server
	conn    *imap.Connector
	sess    *holdfast.Session
	logs    *bytes.Buffer
}

type setupOpts struct {
	security holdfast.Security
	cfg      imap.Config
	caps     []goimap.Cap
}

func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	if o.security == "" {
		o.security = holdfast.SecurityNone
	}
	var iopts imaptest.Options
	var sopts smtptest.Options
	if o.security != holdfast.SecurityNone {
		serverTLS, clientTLS := smtptest.NewTLS(t)
		implicit := o.security == holdfast.SecurityTLS
		iopts = imaptest.Options{TLSConfig: serverTLS, ImplicitTLS: implicit}
		sopts = smtptest.Options{TLSConfig: serverTLS, ImplicitTLS: implicit}
		o.cfg.TLSConfig = clientTLS
	}
	iopts.Caps = o.caps
	is := imaptest.Start(t, iopts)
	is.AddUser(t, user, password)
	is.SetToken(user, token)
	ss := smtptest.Start(t, sopts)
	ss.AddUser(user, password)
	ss.SetToken(user, token)
	logs := &bytes.Buffer{}
	o.cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &bundle{
		imapSrv: is,
		smtpSrv: ss,
		conn:    imap.New(o.cfg),
		sess: &holdfast.Session{
			Inbox: &holdfast.Inbox{
				ID: "inb_test", Email: user, Username: user, Provider: holdfast.ProviderIMAP,
				IMAP: &holdfast.ServerConfig{Host: is.Host, Port: is.Port, Security: o.security},
				SMTP: &holdfast.ServerConfig{Host: ss.Host, Port: ss.Port, Security: o.security},
			},
			Password: password,
		},
		logs: logs,
	}
}

func rawMessage(i int, body string) []byte {
	return []byte(fmt.Sprintf("From: Bob <bob@example.test>\r\n"+
		"To: alice@example.test\r\n"+
		"Subject: Message %d\r\n"+
		"Message-ID: <m%d@example.test>\r\n"+
		"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n"+
		"\r\n%s\r\n", i, i, body))
}

func (b *bundle) deliver(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		b.imapSrv.Deliver(t, user, "INBOX", rawMessage(i, fmt.Sprintf("Body of message %d.", i)))
	}
}

// assertNoSecret fails if a secret appears in err's text or in the logs.
func assertNoSecret(t *testing.T, err error, logs string) {
	t.Helper()
	for _, secret := range []string{password, token} {
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error text holds a secret: %v", err)
		}
		var pe *holdfast.ProviderError
		if errors.As(err, &pe) && strings.Contains(pe.UserMessage, secret) {
			t.Errorf("user message holds a secret: %q", pe.UserMessage)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("logs hold a secret:\n%s", logs)
		}
	}
}

func providerError(t *testing.T, err error) *holdfast.ProviderError {
	t.Helper()
	var pe *holdfast.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *holdfast.ProviderError", err, err)
	}
	if pe.UserMessage == "" {
		t.Errorf("ProviderError has no UserMessage: %v", err)
	}
	return pe
}

func TestVerify(t *testing.T) {
	t.Parallel()
	for _, sec := range []holdfast.Security{holdfast.SecurityNone, holdfast.SecurityStartTLS, holdfast.SecurityTLS} {
		t.Run(string(sec), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{security: sec})
			if err := b.conn.Verify(t.Context(), b.sess); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			assertNoSecret(t, nil, b.logs.String())
		})
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.sess.Password = password + "-old"
	err := b.conn.Verify(t.Context(), b.sess)
	pe := providerError(t, err)
	if pe.Class != holdfast.ClassPermanent || pe.Reason != holdfast.ReasonPasswordChanged || !pe.OutageSensitive {
		t.Errorf("wrong password: %s/%s outage_sensitive=%v, want permanent/password_changed/true", pe.Class, pe.Reason, pe.OutageSensitive)
	}
	if !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
		t.Errorf("error %q lacks the response code", err)
	}
	assertNoSecret(t, err, b.logs.String())
}

func TestVerifyUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.imapSrv.SetLoginError(imaptest.ErrUnavailable)
	pe := providerError(t, b.conn.Verify(t.Context(), b.sess))
	if pe.Class != holdfast.ClassRecoverable || pe.Reason != holdfast.ReasonProviderUnavailable {
		t.Errorf("[UNAVAILABLE]: %s/%s, want recoverable/provider_unavailable", pe.Class, pe.Reason)
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.imapSrv.Stop()
	for name, call := range map[string]func() error{
		"Verify": func() error { return b.conn.Verify(t.Context(), b.sess) },
		"Sync":   func() error { _, err := b.conn.Sync(t.Context(), b.sess, ""); return err },
		"FindSent": func() error {
			_, err := b.conn.FindSent(t.Context(), b.sess, "<x@example.test>")
			return err
		},
	} {
		err := call()
		pe := providerError(t, err)
		if pe.Class != holdfast.ClassRecoverable || pe.Reason != holdfast.ReasonNetwork {
			t.Errorf("%s with the server down: %s/%s, want recoverable/network (%v)", name, pe.Class, pe.Reason, err)
		}
		assertNoSecret(t, err, b.logs.String())
	}
}

func TestCommandTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, sec := range []holdfast.Security{holdfast.SecurityNone, holdfast.SecurityStartTLS} {
		k := imap.New(imap.Config{CommandTimeout: 200 * time.Millisecond})
		s := &holdfast.Session{
			Inbox:    &holdfast.Inbox{ID: "inb_t", Username: user, IMAP: &holdfast.ServerConfig{Host: "127.0.0.1", Port: port, Security: sec}},
			Password: password,
		}
		start := time.Now()
		err := k.Verify(t.Context(), s)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: Verify took %v despite a 200ms command timeout", sec, d)
		}
		pe := providerError(t, err)
		if pe.Class != holdfast.ClassRecoverable || pe.Reason != holdfast.ReasonProviderTimeout {
			t.Errorf("%s: silent server: %s/%s, want recoverable/provider_timeout (%v)", sec, pe.Class, pe.Reason, err)
		}
	}
}

func TestXOAUTH2(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: imap.Config{
		AccessToken: func(ctx context.Context, s *holdfast.Session) (string, error) { return s.RefreshToken, nil },
	}})
	b.sess.Password = ""
	b.sess.RefreshToken = token // the fake token source hands it out as the access token
	if err := b.conn.Verify(t.Context(), b.sess); err != nil {
		t.Fatalf("Verify with XOAUTH2: %v", err)
	}
	b.sess.RefreshToken = "revoked-token"
	err := b.conn.Verify(t.Context(), b.sess)
	pe := providerError(t, err)
	if pe.Class != holdfast.ClassPermanent || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
		t.Errorf("refused token: %s/%s %v, want permanent with the tagged NO after the empty response", pe.Class, pe.Reason, err)
	}
	assertNoSecret(t, err, b.logs.String())
}

func TestAccessTokenError(t *testing.T) {
	t.Parallel()
	refused := &holdfast.ProviderError{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonTokenRevoked, UserMessage: "revoked"}
	b := setup(t, setupOpts{cfg: imap.Config{
		AccessToken: func(context.Context, *holdfast.Session) (string, error) { return "", refused },
	}})
	b.sess.Password = ""
	if err := b.conn.Verify(t.Context(), b.sess); !errors.Is(err, refused) {
		t.Errorf("Verify = %v, want the token source's error unchanged", err)
	}
}

func decodeCursor(t *testing.T, c string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(c), &m); err != nil {
		t.Fatalf("cursor %q is not JSON: %v", c, err)
	}
	return m
}

func ids(msgs []holdfast.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.InternetMessageID)
	}
	return out
}

func TestSyncIncremental(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := t.Context()
	res, err := b.conn.Sync(ctx, b.sess, "")
	if err != nil {
		t.Fatalf("Sync of an empty INBOX: %v", err)
	}
	if len(res.Messages) != 0 || res.More || res.Reset {
		t.Errorf("empty INBOX: %+v", res)
	}
	b.deliver(t, 0, 3)
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ids(res.Messages), " "), "<m0@example.test> <m1@example.test> <m2@example.test>"; got != want {
		t.Errorf("first sync = %s, want %s", got, want)
	}
	m := res.Messages[0]
	cur := decodeCursor(t, res.Cursor)
	wantPID := fmt.Sprintf("INBOX/%v/1", cur["uidvalidity"])
	if m.ProviderID != wantPID || m.InboxID != "inb_test" || m.From != "bob@example.test" ||
		len(m.To) != 1 || m.To[0] != user || m.Subject != "Message 0" || m.Snippet != "Body of message 0." || m.ReceivedAt.IsZero() {
		t.Errorf("message = %+v, want ProviderID %s, From bob, To alice, Subject, Snippet, ReceivedAt", m, wantPID)
	}
	if cur["uid"] != float64(3) {
		t.Errorf("cursor %s: uid %v, want 3", res.Cursor, cur["uid"])
	}

	b.deliver(t, 3, 5)
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ids(res.Messages), " "), "<m3@example.test> <m4@example.test>"; got != want {
		t.Errorf("incremental sync = %s, want only the new %s", got, want)
	}
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 0 {
		t.Errorf("sync with nothing new returned %s", ids(res.Messages))
	}
	assertNoSecret(t, nil, b.logs.String())
}

func TestSyncBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: imap.Config{BatchSize: 10}})
	b.deliver(t, 0, 25)
	var all []string
	cursor := ""
	var sizes []int
	for range 5 {
		res, err := b.conn.Sync(t.Context(), b.sess, cursor)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(res.Messages))
		all = append(all, ids(res.Messages)...)
		cursor = res.Cursor
		if !res.More {
			break
		}
	}
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Errorf("batch sizes = %v, want [10 10 5]", sizes)
	}
	if len(all) != 25 || all[0] != "<m0@example.test>" || all[24] != "<m24@example.test>" {
		t.Errorf("synced %d messages %v, want m0..m24 in order", len(all), all)
	}
}

func TestSyncUIDValidityChange(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.deliver(t, 0, 3)
	first, err := b.conn.Sync(t.Context(), b.sess, "")
	if err != nil {
		t.Fatal(err)
	}
	b.imapSrv.ResetUIDValidity(t, user, "INBOX")
	res, err := b.conn.Sync(t.Context(), b.sess, first.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reset {
		t.Errorf("Reset = false after a UIDVALIDITY change")
	}
	if got, want := strings.Join(ids(res.Messages), " "), strings.Join(ids(first.Messages), " "); got != want {
		t.Errorf("after the reset: %s, want all again with the same Message-IDs %s", got, want)
	}
	if res.Messages[0].ProviderID == first.Messages[0].ProviderID {
		t.Errorf("ProviderID %s unchanged across UIDVALIDITY", res.Messages[0].ProviderID)
	}
}

func TestSyncBadCursor(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.deliver(t, 0, 2)
	res, err := b.conn.Sync(t.Context(), b.sess, "not json")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reset || len(res.Messages) != 2 {
		t.Errorf("unreadable cursor: Reset=%v, %d messages; want a reset and both", res.Reset, len(res.Messages))
	}
}

func outgoing(id string) *holdfast.OutgoingMessage {
	return &holdfast.OutgoingMessage{
		MessageID: id,
		From:      "Alice <" + user + ">",
		To:        []string{"bob@example.test"},
		Bcc:       []string{"dave@example.test"},
		Subject:   "Hello",
		Text:      "Hi Bob.",
		HTML:      "<p>Hi Bob.</p>",
		Date:      time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func TestSendAppendsToSentAndFindSent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{security: holdfast.SecurityStartTLS})
	ctx := t.Context()
	const id = "<send-1@holdfast.test>"
	if found, err := b.conn.FindSent(ctx, b.sess, id); err != nil || found {
		t.Fatalf("FindSent before sending = %v, %v; want false, nil", found, err)
	}
	if err := b.conn.Send(ctx, b.sess, outgoing(id)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sent := b.smtpSrv.Messages()
	if len(sent) != 1 || len(sent[0].To) != 2 {
		t.Fatalf("SMTP server got %+v, want one message to bob and dave", sent)
	}
	if n := b.imapSrv.Count(t, user, "Sent", id); n != 1 {
		t.Errorf("Sent holds %d copies, want 1 (created as Sent)", n)
	}
	found, err := b.conn.FindSent(ctx, b.sess, id)
	if err != nil || !found {
		t.Errorf("FindSent after sending = %v, %v; want true, nil", found, err)
	}
	if found, err := b.conn.FindSent(ctx, b.sess, "<other@holdfast.test>"); err != nil || found {
		t.Errorf("FindSent of another Message-ID = %v, %v; want false, nil", found, err)
	}
	// A second send uses the existing folder.
	if err := b.conn.Send(ctx, b.sess, outgoing("<send-2@holdfast.test>")); err != nil {
		t.Fatal(err)
	}
	if n := b.imapSrv.Count(t, user, "Sent", "<send-2@holdfast.test>"); n != 1 {
		t.Errorf("second send: Sent holds %d copies, want 1", n)
	}
	assertNoSecret(t, nil, b.logs.String())
}

func TestSendFindsSentByName(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.imapSrv.CreateMailbox(t, user, "Sent Items")
	const id = "<send-3@holdfast.test>"
	if err := b.conn.Send(t.Context(), b.sess, outgoing(id)); err != nil {
		t.Fatal(err)
	}
	if n := b.imapSrv.Count(t, user, "Sent Items", id); n != 1 {
		t.Errorf("Sent Items holds %d copies, want 1", n)
	}
}

func TestSendWrongPassword(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.sess.Password = "wrong-" + password
	err := b.conn.Send(t.Context(), b.sess, outgoing("<send-4@holdfast.test>"))
	pe := providerError(t, err)
	if pe.Class != holdfast.ClassPermanent || errors.Is(err, holdfast.ErrOutcomeUnknown) {
		t.Errorf("send with a wrong password: %s/%s %v, want permanent and a clear outcome", pe.Class, pe.Reason, err)
	}
	assertNoSecret(t, err, b.logs.String())
}

func TestStatusLine(t *testing.T) {
	t.Parallel()
	got := imap.StatusLine(&goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeAuthenticationFailed, Text: "Authentication failed."})
	if want := "NO [AUTHENTICATIONFAILED] Authentication failed."; got != want {
		t.Errorf("StatusLine = %q, want %q", got, want)
	}
}

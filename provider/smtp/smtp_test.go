package smtp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/providertest"
	"github.com/holdfast/holdfast/provider/smtp"
	"github.com/holdfast/holdfast/provider/smtp/smtptest"
)

const (
	user     = "alice@example.test"
	password = "s3cret-Passw0rd-never-logged"
	token    = "ya29.token-never-logged"
)

func testMessage() *holdfast.OutgoingMessage {
	return &holdfast.OutgoingMessage{
		MessageID: "<send-1@holdfast.test>",
		From:      "Alice <" + user + ">",
		To:        []string{"bob@example.test"},
		Cc:        []string{"Carol <carol@example.test>"},
		Bcc:       []string{"dave@example.test"},
		Subject:   "Grüße from holdfast",
		Text:      "Hello Bob, plain text.",
		HTML:      "<p>Hello Bob, <b>HTML</b>.</p>",
		Date:      time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

// bundle is one test's server and client.
type bundle struct {
	srv    *smtptest.Server
	client *smtp.Client
	server *holdfast.ServerConfig
	logs   *bytes.Buffer
}

func setup(t *testing.T, security holdfast.Security, cfg smtp.Config) *bundle {
	t.Helper()
	var opts smtptest.Options
	if security != holdfast.SecurityNone {
		serverTLS, clientTLS := smtptest.NewTLS(t)
		opts = smtptest.Options{TLSConfig: serverTLS, ImplicitTLS: security == holdfast.SecurityTLS}
		cfg.TLSConfig = clientTLS
	}
	srv := smtptest.Start(t, opts)
	srv.AddUser(user, password)
	srv.SetToken(user, token)
	logs := &bytes.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.AllowPrivateHosts = true // the test servers listen on 127.0.0.1
	return &bundle{
		srv:    srv,
		client: smtp.New(cfg),
		server: &holdfast.ServerConfig{Host: srv.Host, Port: srv.Port, Security: security},
		logs:   logs,
	}
}

func TestSendSecurityModes(t *testing.T) {
	t.Parallel()
	for _, sec := range []holdfast.Security{holdfast.SecurityNone, holdfast.SecurityStartTLS, holdfast.SecurityTLS} {
		t.Run(string(sec), func(t *testing.T) {
			t.Parallel()
			b := setup(t, sec, smtp.Config{})
			err := b.client.Send(t.Context(), b.server, smtp.Credentials{Username: user, Password: password}, testMessage())
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := b.srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages, want 1", len(msgs))
			}
			got := msgs[0]
			if got.From != user {
				t.Errorf("MAIL FROM = %q, want %q", got.From, user)
			}
			want := []string{"bob@example.test", "carol@example.test", "dave@example.test"}
			if strings.Join(got.To, ",") != strings.Join(want, ",") {
				t.Errorf("RCPT TO = %v, want %v", got.To, want)
			}
			if bytes.Contains(got.Data, []byte("dave@")) {
				t.Errorf("Bcc recipient appears in the message:\n%s", got.Data)
			}
			providertest.AssertNoSecret(t, nil, b.logs.String(), password, token)
		})
	}
}

func TestSendXOAUTH2(t *testing.T) {
	t.Parallel()
	b := setup(t, holdfast.SecurityStartTLS, smtp.Config{})
	if err := b.client.Send(t.Context(), b.server, smtp.Credentials{Username: user, AccessToken: token}, testMessage()); err != nil {
		t.Fatalf("Send with XOAUTH2: %v", err)
	}
	err := b.client.Verify(t.Context(), b.server, smtp.Credentials{Username: user, AccessToken: "expired-token"})
	pe := providertest.ProviderError(t, err)
	if pe.Class != holdfast.ClassPermanent || pe.Reason != holdfast.ReasonPasswordChanged {
		t.Errorf("refused token: %s/%s, want permanent/password_changed (535 5.7.8 on a generic server)", pe.Class, pe.Reason)
	}
	if !strings.Contains(err.Error(), "535") {
		t.Errorf("error %q lacks the 535 reply: the empty response to the challenge was not sent", err)
	}
	providertest.AssertNoSecret(t, err, b.logs.String(), password, token)
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	b := setup(t, holdfast.SecurityStartTLS, smtp.Config{})
	err := b.client.Send(t.Context(), b.server, smtp.Credentials{Username: user, Password: password + "-wrong"}, testMessage())
	pe := providertest.ProviderError(t, err)
	if pe.Class != holdfast.ClassPermanent || pe.Reason != holdfast.ReasonPasswordChanged || !pe.OutageSensitive {
		t.Errorf("wrong password: %s/%s outage_sensitive=%v, want permanent/password_changed/true", pe.Class, pe.Reason, pe.OutageSensitive)
	}
	if errors.Is(err, holdfast.ErrOutcomeUnknown) {
		t.Errorf("a refused sign-in is no unclear outcome: %v", err)
	}
	if len(b.srv.Messages()) != 0 {
		t.Errorf("message accepted despite the failed sign-in")
	}
	providertest.AssertNoSecret(t, err, b.logs.String(), password, token)
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c := smtp.New(smtp.Config{AllowPrivateHosts: true})
	err = c.Verify(t.Context(), &holdfast.ServerConfig{Host: "127.0.0.1", Port: port, Security: holdfast.SecurityNone},
		smtp.Credentials{Username: user, Password: password})
	pe := providertest.ProviderError(t, err)
	if pe.Class != holdfast.ClassRecoverable {
		t.Errorf("server down: class %s, want recoverable", pe.Class)
	}
	providertest.AssertNoSecret(t, err, "", password, token)
}

func TestOutcomeUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t, holdfast.SecurityNone, smtp.Config{SubmissionTimeout: 200 * time.Millisecond})
	b.srv.SetDataFunc(func(smtptest.Message) error {
		time.Sleep(time.Second)
		return nil
	})
	err := b.client.Send(t.Context(), b.server, smtp.Credentials{Username: user, Password: password}, testMessage())
	if !errors.Is(err, holdfast.ErrOutcomeUnknown) {
		t.Fatalf("timeout after the final dot: %v, want ErrOutcomeUnknown", err)
	}
	pe := providertest.ProviderError(t, err)
	if pe.Class != holdfast.ClassRecoverable {
		t.Errorf("unclear outcome: class %s, want recoverable", pe.Class)
	}
	providertest.AssertNoSecret(t, err, b.logs.String(), password, token)
}

func TestOutcomeUnknownOnCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, holdfast.SecurityNone, smtp.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	b.srv.SetDataFunc(func(smtptest.Message) error {
		time.Sleep(time.Second)
		return nil
	})
	err := b.client.Send(ctx, b.server, smtp.Credentials{Username: user, Password: password}, testMessage())
	if !errors.Is(err, holdfast.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline after the final dot: %v, want ErrOutcomeUnknown and DeadlineExceeded", err)
	}
	if pe := providertest.ProviderError(t, err); pe.Reason != holdfast.ReasonProviderTimeout {
		t.Errorf("reason %s, want provider_timeout", pe.Reason)
	}
}

func TestRejectedAfterData(t *testing.T) {
	t.Parallel()
	b := setup(t, holdfast.SecurityNone, smtp.Config{})
	b.srv.SetDataFunc(func(smtptest.Message) error {
		return &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
	})
	err := b.client.Send(t.Context(), b.server, smtp.Credentials{Username: user, Password: password}, testMessage())
	if errors.Is(err, holdfast.ErrOutcomeUnknown) {
		t.Errorf("a reply after DATA is a clear outcome: %v", err)
	}
	pe := providertest.ProviderError(t, err)
	if pe.Reason != holdfast.ReasonMessageTooLarge || pe.Class != holdfast.ClassPermanent {
		t.Errorf("552 5.3.4: %s/%s, want permanent/message_too_large", pe.Class, pe.Reason)
	}
}

func TestCommandTimeout(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never greets.
	port := providertest.SilentServer(t)
	for _, sec := range []holdfast.Security{holdfast.SecurityNone, holdfast.SecurityStartTLS} {
		c := smtp.New(smtp.Config{CommandTimeout: 200 * time.Millisecond, AllowPrivateHosts: true})
		start := time.Now()
		err := c.Verify(t.Context(), &holdfast.ServerConfig{Host: "127.0.0.1", Port: port, Security: sec},
			smtp.Credentials{Username: user, Password: password})
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: Verify took %v despite a 200ms command timeout", sec, d)
		}
		pe := providertest.ProviderError(t, err)
		if pe.Class != holdfast.ClassRecoverable || pe.Reason != holdfast.ReasonProviderTimeout {
			t.Errorf("%s: silent server: %s/%s, want recoverable/provider_timeout (%v)", sec, pe.Class, pe.Reason, err)
		}
	}
}

func TestBuildMessage(t *testing.T) {
	t.Parallel()
	m := testMessage()
	raw, err := smtp.BuildMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse built message: %v", err)
	}
	if id, _ := r.Header.MessageID(); "<"+id+">" != m.MessageID {
		t.Errorf("Message-ID = %q, want %q", id, m.MessageID)
	}
	if s, _ := r.Header.Subject(); s != m.Subject {
		t.Errorf("Subject = %q, want %q", s, m.Subject)
	}
	if raw := r.Header.Get("Subject"); !strings.HasPrefix(raw, "=?") {
		t.Errorf("raw Subject %q is not an encoded word", raw)
	}
	if d, _ := r.Header.Date(); !d.Equal(m.Date) {
		t.Errorf("Date = %v, want %v", d, m.Date)
	}
	if r.Header.Has("Bcc") {
		t.Errorf("built message has a Bcc header")
	}
	if ct, _, _ := r.Header.ContentType(); ct != "multipart/alternative" {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
	var types []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.(*mail.InlineHeader).ContentType()
		body, _ := io.ReadAll(p.Body)
		types = append(types, ct+":"+string(body))
	}
	want := "text/plain:" + m.Text + "|text/html:" + m.HTML
	if got := strings.Join(types, "|"); got != want {
		t.Errorf("parts = %q, want %q", got, want)
	}

	m.HTML = ""
	raw, err = smtp.BuildMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("Content-Type: text/plain; charset=utf-8")) {
		t.Errorf("text-only message is not a single text/plain part:\n%s", raw)
	}
	for _, bad := range []*holdfast.OutgoingMessage{
		{From: user, To: []string{"b@example.test"}, Date: m.Date},
		{MessageID: "<x@y>", From: user, To: []string{"b@example.test"}},
		{MessageID: "<x@y>", From: "not an address", To: []string{"b@example.test"}, Date: m.Date},
	} {
		if _, err := smtp.BuildMessage(bad); err == nil {
			t.Errorf("BuildMessage(%+v) succeeded, want an error", bad)
		}
	}
}

func TestReplyLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  *gosmtp.SMTPError
		want string
	}{
		{&gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed"}, "535 5.7.8 Authentication failed"},
		{&gosmtp.SMTPError{Code: 421, Message: "Service not available"}, "421 Service not available"},
	} {
		if got := smtp.ReplyLine(tc.err); got != tc.want {
			t.Errorf("ReplyLine(%+v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Package smtp submits holdfast's outgoing mail over SMTP submission
// (RFC 6409): implicit TLS, STARTTLS or, for local test servers, plain text;
// AUTH PLAIN or LOGIN with a password and XOAUTH2 with an access token.
//
// Every failure is a *holdfast.ProviderError classified by package classify
// (surface smtp) from the server's reply code, enhanced status code and text,
// or from the transport error. A failure after DATA's final dot was sent and
// before the server's reply arrived is an unclear outcome: the message may or
// may not have gone out. Such errors wrap holdfast.ErrOutcomeUnknown, and
// the caller must look for the message in the Sent folder
// (holdfast.Connector.FindSent) before it submits again.
//
// Secrets (passwords, access tokens) never appear in errors or logs.
//
// The Go API of this package is not stable.
package smtp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gosasl "github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/provider/mailconn"
	"github.com/holdfast/holdfast/provider/xoauth2"
)

// Credentials sign in to the submission server.
type Credentials struct {
	Username string
	// Password signs in with AUTH PLAIN (or LOGIN when PLAIN is not
	// offered).
	Password string
	// AccessToken, when set, signs in with AUTH XOAUTH2 instead.
	AccessToken string
}

// Client submits messages. It holds no connection between calls and is safe
// for concurrent use.
type Client struct {
	cfg Config
}

// New returns a Client with cfg's zero fields set to their defaults.
func New(cfg Config) *Client {
	return &Client{cfg: cfg.withDefaults()}
}

// Verify connects to server and signs in, then quits. It returns a
// classified *holdfast.ProviderError on failure.
func (c *Client) Verify(ctx context.Context, server *holdfast.ServerConfig, cred Credentials) error {
	conn, err := c.open(ctx, server, cred)
	if err != nil {
		return err
	}
	defer conn.close()
	if err := conn.c.Quit(); err != nil {
		c.cfg.Logger.DebugContext(ctx, "smtp quit", "host", server.Host, "err", err)
	}
	return nil
}

// Send builds m with BuildMessage and submits it; see SendRaw.
func (c *Client) Send(ctx context.Context, server *holdfast.ServerConfig, cred Credentials, m *holdfast.OutgoingMessage) error {
	raw, err := BuildMessage(m)
	if err != nil {
		return err
	}
	from, rcpts, err := Envelope(m)
	if err != nil {
		return err
	}
	return c.SendRaw(ctx, server, cred, from, rcpts, raw)
}

// SendRaw submits the message raw from the envelope sender from to rcpts.
// A failure is a classified *holdfast.ProviderError; when the outcome is
// unclear it also wraps holdfast.ErrOutcomeUnknown.
func (c *Client) SendRaw(ctx context.Context, server *holdfast.ServerConfig, cred Credentials, from string, rcpts []string, raw []byte) error {
	conn, err := c.open(ctx, server, cred)
	if err != nil {
		return err
	}
	defer conn.close()
	if err := conn.c.Mail(from, nil); err != nil {
		return conn.fail(ctx, "MAIL FROM", err)
	}
	for _, r := range rcpts {
		if err := conn.c.Rcpt(r, nil); err != nil {
			return conn.fail(ctx, "RCPT TO", err)
		}
	}
	w, err := conn.c.Data()
	if err != nil {
		return conn.fail(ctx, "DATA", err)
	}
	if _, err := w.Write(raw); err != nil {
		// The final dot was not sent, so the server cannot have accepted
		// the message.
		return conn.fail(ctx, "DATA body", err)
	}
	if _, err := w.CloseWithResponse(); err != nil {
		var se *gosmtp.SMTPError
		if errors.As(err, &se) {
			// A reply: the server decided, and said what.
			return conn.fail(ctx, "end of DATA", err)
		}
		return conn.fail(ctx, "end of DATA", fmt.Errorf("%w: %w", holdfast.ErrOutcomeUnknown, err))
	}
	if err := conn.c.Quit(); err != nil {
		// The message was accepted; a failed QUIT changes nothing.
		c.cfg.Logger.DebugContext(ctx, "smtp quit", "host", server.Host, "err", err)
	}
	return nil
}

// conn is one SMTP session.
type conn struct {
	c    *gosmtp.Client
	mc   *mailconn.Conn
	stop func() bool
}

func (c *conn) close() {
	c.stop()
	_ = c.c.Close()
}

// fail returns the classified error for a failed step. Once ctx is done the
// connection was closed under the client, so the context's error is what
// happened.
func (c *conn) fail(ctx context.Context, step string, err error) error {
	return c.mc.Fail(ctx, step, err)
}

// open dials server, upgrades to TLS as configured and signs in.
func (c *Client) open(ctx context.Context, server *holdfast.ServerConfig, cred Credentials) (*conn, error) {
	if server == nil || server.Host == "" || server.Port == 0 {
		return nil, Classify("generic", errors.New("smtp: no server configured"))
	}
	mc, err := mailconn.Dial(ctx, server, mailconn.Options{
		Protocol: "smtp", TLSConfig: c.cfg.TLSConfig, DialTimeout: c.cfg.DialTimeout,
		Token: cred.AccessToken != "", Classify: Classify, AllowPrivate: c.cfg.AllowPrivateHosts,
	})
	if err != nil {
		return nil, err
	}
	// The greeting and STARTTLS happen inside go-smtp before its command
	// timeouts can be set, so a phase context closes the connection if they
	// take longer than one command may.
	hctx, hcancel := context.WithTimeout(ctx, c.cfg.CommandTimeout)
	defer hcancel()
	stopPhase := context.AfterFunc(hctx, func() { _ = mc.Close() })
	var sc *gosmtp.Client
	if server.Security == holdfast.SecurityStartTLS {
		sc, err = gosmtp.NewClientStartTLS(mc.Conn, mc.TLSConfig)
		if err != nil {
			if hctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
			}
			return nil, mc.Fail(ctx, "STARTTLS", err)
		}
	} else {
		sc = gosmtp.NewClient(mc.Conn)
	}
	stopPhase()
	sc.CommandTimeout = c.cfg.CommandTimeout
	sc.SubmissionTimeout = c.cfg.SubmissionTimeout
	stop := context.AfterFunc(ctx, func() { _ = sc.Close() })
	cn := &conn{c: sc, mc: mc, stop: stop}
	ok := false
	defer func() {
		if !ok {
			cn.close()
		}
	}()

	if err := sc.Auth(c.saslClient(sc, cred)); err != nil {
		return nil, cn.fail(ctx, "AUTH", err)
	}
	ok = true
	return cn, nil
}

// saslClient picks the mechanism: XOAUTH2 for a token, else PLAIN, else
// LOGIN when the server offers only that.
func (c *Client) saslClient(sc *gosmtp.Client, cred Credentials) gosasl.Client {
	switch {
	case cred.AccessToken != "":
		return xoauth2.NewClient(cred.Username, cred.AccessToken)
	case !sc.SupportsAuth(gosasl.Plain) && sc.SupportsAuth(gosasl.Login):
		return gosasl.NewLoginClient(cred.Username, cred.Password)
	}
	return gosasl.NewPlainClient("", cred.Username, cred.Password)
}

// Classify turns an SMTP failure into a *holdfast.ProviderError with the
// verdict of package classify. An *smtp.SMTPError in err's chain is
// classified by its reply line ("535 5.7.8 Authentication failed"); any
// other error as a transport error. provider is "generic", "google" or
// "microsoft" (see xoauth2.ProviderForHost). An error that already is a
// *holdfast.ProviderError is returned as it is.
func Classify(provider string, err error) error {
	if pe, ok := errors.AsType[*holdfast.ProviderError](err); ok {
		return pe
	}
	in := classify.Input{Provider: provider, Surface: classify.SurfaceSMTP}
	if se, ok := errors.AsType[*gosmtp.SMTPError](err); ok {
		in.Raw = ReplyLine(se)
	} else {
		in.Err = err
	}
	v := classify.Classify(in)
	return v.ProviderError(err)
}

// ReplyLine rebuilds the server's reply line from an *smtp.SMTPError, as
// received: "535 5.7.8 Authentication failed".
func ReplyLine(se *gosmtp.SMTPError) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(se.Code))
	if e := se.EnhancedCode; e != (gosmtp.EnhancedCode{}) && e != gosmtp.NoEnhancedCode {
		fmt.Fprintf(&b, " %d.%d.%d", e[0], e[1], e[2])
	}
	if se.Message != "" {
		b.WriteString(" ")
		b.WriteString(se.Message)
	}
	return b.String()
}

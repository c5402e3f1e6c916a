package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosasl "github.com/emersion/go-sasl"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/provider/mailconn"
	"github.com/holdfast/holdfast/provider/xoauth2"
)

// conn is one signed-in IMAP session.
type conn struct {
	c        *imapclient.Client
	addr     string
	provider string // for classify: generic, google or microsoft
	timeout  time.Duration
}

// credentials are what a session signs in with.
type credentials struct {
	username, password, token string
}

// credentials opens the session's secrets: the password, or an access token
// from cfg.AccessToken.
func (k *Connector) credentials(ctx context.Context, s *holdfast.Session) (credentials, error) {
	in := s.Inbox
	cred := credentials{username: in.Username, password: s.Password}
	if cred.username == "" {
		cred.username = in.Email
	}
	if s.Password == "" && k.cfg.AccessToken != nil {
		tok, err := k.cfg.AccessToken(ctx, s)
		if err != nil {
			if _, ok := errors.AsType[*holdfast.ProviderError](err); ok {
				return credentials{}, err
			}
			return credentials{}, classifyErr("generic", fmt.Errorf("access token for inbox %s: %w", in.ID, err))
		}
		cred.token = tok
	}
	return cred, nil
}

// dial connects to the inbox's IMAP server and signs in.
func (k *Connector) dial(ctx context.Context, s *holdfast.Session) (*conn, error) {
	server := s.Inbox.IMAP
	if server == nil || server.Host == "" || server.Port == 0 {
		return nil, classifyErr("generic", fmt.Errorf("imap: inbox %s has no IMAP server configured", s.Inbox.ID))
	}
	cred, err := k.credentials(ctx, s)
	if err != nil {
		return nil, err
	}
	mc, err := mailconn.Dial(ctx, server, mailconn.Options{
		Protocol: "imap", TLSConfig: k.cfg.TLSConfig, DialTimeout: k.cfg.DialTimeout,
		Token: cred.token != "", Classify: classifyErr, AllowPrivate: k.cfg.AllowPrivateHosts,
	})
	if err != nil {
		return nil, err
	}
	opts := &imapclient.Options{TLSConfig: mc.TLSConfig}
	cn := &conn{addr: mc.Addr, provider: mc.Provider, timeout: k.cfg.CommandTimeout}
	if server.Security == holdfast.SecurityStartTLS {
		// NewStartTLS waits for the greeting and the STARTTLS reply; close
		// the connection under it if that outlasts a command.
		hctx, hcancel := context.WithTimeout(ctx, k.cfg.CommandTimeout)
		stop := context.AfterFunc(hctx, func() { _ = mc.Close() })
		cn.c, err = imapclient.NewStartTLS(mc.Conn, opts)
		stopped := stop()
		hcancel()
		if err != nil {
			if !stopped && ctx.Err() == nil {
				err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
			}
			return nil, mc.Fail(ctx, "STARTTLS", err)
		}
	} else {
		cn.c = imapclient.New(mc.Conn, opts)
	}
	ok := false
	defer func() {
		if !ok {
			_ = cn.c.Close()
		}
	}()
	if err := cn.do(ctx, "greeting", func() error {
		if err := cn.c.WaitGreeting(); err != nil {
			if !isTyped(err) {
				// go-imap flattens a close before the greeting to text.
				return fmt.Errorf("%w: %v", io.ErrUnexpectedEOF, err)
			}
			return err
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := cn.do(ctx, "sign-in", func() error { return cn.login(cred) }); err != nil {
		return nil, err
	}
	ok = true
	return cn, nil
}

// login signs in: XOAUTH2 with a token; with a password LOGIN, or
// AUTHENTICATE PLAIN when the server disables LOGIN.
func (c *conn) login(cred credentials) error {
	switch {
	case cred.token != "":
		return c.c.Authenticate(xoauth2.NewClient(cred.username, cred.token))
	case c.c.Caps().Has(goimap.CapLoginDisabled):
		return c.c.Authenticate(gosasl.NewPlainClient("", cred.username, cred.password))
	}
	return c.c.Login(cred.username, cred.password).Wait()
}

// isTyped reports whether err carries a type classify reads.
func isTyped(err error) bool {
	var ie *goimap.Error
	var ne net.Error
	return errors.As(err, &ie) || errors.As(err, &ne) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// do runs one command (fn) under the command timeout and ctx: if either
// ends first, the connection is closed under the command, which then fails
// with the context's error. A failure comes back classified.
func (c *conn) do(ctx context.Context, step string, fn func() error) error {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	stop := context.AfterFunc(cctx, func() { _ = c.c.Close() })
	err := fn()
	if !stop() {
		// The connection was closed under the command.
		cause := context.Cause(cctx)
		if err == nil {
			err = cause
		} else {
			err = fmt.Errorf("%w (%w)", cause, err)
		}
	}
	if err != nil {
		return classifyErr(c.provider, fmt.Errorf("imap %s at %s: %w", step, c.addr, err))
	}
	return nil
}

// close logs out, bounded by the command timeout, and closes the connection.
func (c *conn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = c.c.Close() })
	_ = c.c.Logout().Wait()
	stop()
	_ = c.c.Close()
}

// classifyErr turns an IMAP failure into a *holdfast.ProviderError with the
// verdict of package classify (surface imap): an *imap.Error by its status
// line, anything else as a transport error. A *holdfast.ProviderError in
// err's chain is returned as it is.
func classifyErr(provider string, err error) error {
	if pe, ok := errors.AsType[*holdfast.ProviderError](err); ok {
		return pe
	}
	in := classify.Input{Provider: provider, Surface: classify.SurfaceIMAP}
	if ie, ok := errors.AsType[*goimap.Error](err); ok && !isContextErr(err) {
		in.Raw = StatusLine(ie)
	} else {
		in.Err = err
	}
	v := classify.Classify(in)
	return v.ProviderError(err)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// StatusLine rebuilds the server's status line from an *imap.Error, without
// its tag: "NO [AUTHENTICATIONFAILED] Authentication failed.".
func StatusLine(ie *goimap.Error) string {
	var b strings.Builder
	b.WriteString(string(ie.Type))
	if ie.Code != "" {
		b.WriteString(" [")
		b.WriteString(string(ie.Code))
		b.WriteString("]")
	}
	if ie.Text != "" {
		b.WriteString(" ")
		b.WriteString(ie.Text)
	}
	return b.String()
}

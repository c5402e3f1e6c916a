// Package mailconn opens the connections of the connectors that speak a
// mail protocol over TCP (provider/imap, provider/smtp): the address, the
// dial within the dial timeout, TLS from the first byte for implicit TLS,
// and the classified error of a step that fails. What happens on the
// connection after that (a greeting, STARTTLS, signing in) is the
// protocol's.
//
// The Go API of this package is not stable.
package mailconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/netguard"
	"github.com/holdfast/holdfast/provider/xoauth2"
)

// Options says how to dial.
type Options struct {
	// Protocol names the protocol in errors: "imap", "smtp".
	Protocol string
	// TLSConfig is the base TLS configuration; nil uses the system roots.
	// ServerName is filled in from the host when empty.
	TLSConfig *tls.Config
	// DialTimeout bounds the TCP connect and the TLS handshake.
	DialTimeout time.Duration
	// Token is set when the session signs in with an access token
	// (XOAUTH2): errors are then classified for the host's provider.
	Token bool
	// Classify turns a failure into the connector's classified error for a
	// classify provider ("generic", "google", "microsoft").
	Classify func(provider string, err error) error
	// AllowPrivate lets the dial reach loopback, private, link-local and
	// other internal addresses (--allow-private-mail-hosts). Without it
	// such an address is refused at the address actually dialled, before
	// any connection is attempted (see package netguard).
	AllowPrivate bool
}

// Conn is a connection to a mail server, before its protocol starts.
type Conn struct {
	// Conn is already TLS when the server's security is implicit TLS.
	net.Conn
	// Addr is the server's host:port.
	Addr string
	// Provider is the classify provider: the host's when signing in with
	// an access token, else "generic".
	Provider string
	// TLSConfig is the TLS configuration for the host, for STARTTLS.
	TLSConfig *tls.Config

	o Options
}

// Dial connects to server: TCP, then the TLS handshake when its security
// is implicit TLS, both within o.DialTimeout. A security that is none of
// holdfast's fails after the dial. Errors are classified (see Fail).
func Dial(ctx context.Context, server *holdfast.ServerConfig, o Options) (*Conn, error) {
	c := &Conn{Addr: net.JoinHostPort(server.Host, strconv.Itoa(server.Port)), Provider: "generic", o: o}
	if o.Token {
		c.Provider = xoauth2.ProviderForHost(server.Host)
	}
	c.TLSConfig = &tls.Config{}
	if o.TLSConfig != nil {
		c.TLSConfig = o.TLSConfig.Clone()
	}
	if c.TLSConfig.ServerName == "" {
		c.TLSConfig.ServerName = server.Host
	}
	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	guard := &netguard.Guard{AllowPrivate: o.AllowPrivate}
	d := net.Dialer{Timeout: o.DialTimeout, Control: guard.Control}
	nc, err := d.DialContext(dctx, "tcp", c.Addr)
	if errors.Is(err, netguard.ErrRefused) {
		return nil, c.refused(err)
	}
	if err != nil {
		return nil, c.Fail(ctx, "dial", err)
	}
	c.Conn = nc
	switch server.Security {
	case holdfast.SecurityTLS:
		tc := tls.Client(nc, c.TLSConfig)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = nc.Close()
			return nil, c.Fail(ctx, "TLS handshake", err)
		}
		c.Conn = tc
	case holdfast.SecurityStartTLS, holdfast.SecurityNone:
	default:
		_ = nc.Close()
		return nil, c.Fail(ctx, "connect", fmt.Errorf("unknown security %q", server.Security))
	}
	return c, nil
}

// refused returns the error of a dial the guard refused: permanent and
// for the operator, the same whatever listens (or not) at the address,
// since no connection was attempted. The owner's message does not name
// the address.
func (c *Conn) refused(err error) error {
	return &holdfast.ProviderError{
		Class: holdfast.ClassPermanent, Reason: holdfast.ReasonAppMisconfigured,
		Scope: holdfast.ScopeAccount, Action: holdfast.ActionOperator,
		UserMessage: "The mail server's address is on an internal network, which this holdfast is not allowed to reach. Ask your administrator.",
		Err:         fmt.Errorf("%s dial %s: %w", c.o.Protocol, c.Addr, err),
	}
}

// Fail returns the classified error of a failed step: "<protocol> <step>
// at <addr>: err". Once ctx is done the connection was closed under the
// client, so the context's cause comes first.
func (c *Conn) Fail(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	}
	return c.o.Classify(c.Provider, fmt.Errorf("%s %s at %s: %w", c.o.Protocol, step, c.Addr, err))
}

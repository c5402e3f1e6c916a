package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/smtp"
)

// Mailer submits a complete message.
type Mailer interface {
	Send(ctx context.Context, from string, to []string, raw []byte) error
}

// SMTPRelay is the relay notices go out through, parsed from
// --notify-smtp-url.
type SMTPRelay struct {
	Server   holdfast.ServerConfig
	Username string
	password string
}

// String shows the relay without its password.
func (r SMTPRelay) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(r.Server.Host, strconv.Itoa(r.Server.Port))}
	if r.Server.Security == holdfast.SecurityTLS {
		u.Scheme = "smtps"
	}
	if r.Username != "" {
		u.User = url.User(r.Username)
	}
	return u.String()
}

// ParseSMTPURL parses smtp://user:pass@host:port (STARTTLS, port 587 by
// default) or smtps://user:pass@host:port (implicit TLS, port 465 by
// default). Its errors never repeat the URL, which holds a password.
func ParseSMTPURL(s string) (SMTPRelay, error) {
	u, err := url.Parse(s)
	if err != nil {
		return SMTPRelay{}, errors.New("not a valid URL")
	}
	var r SMTPRelay
	port := 0
	switch u.Scheme {
	case "smtp":
		r.Server.Security, port = holdfast.SecurityStartTLS, 587
	case "smtps":
		r.Server.Security, port = holdfast.SecurityTLS, 465
	default:
		return SMTPRelay{}, errors.New("want an smtp:// or smtps:// URL")
	}
	r.Server.Host = u.Hostname()
	if r.Server.Host == "" {
		return SMTPRelay{}, errors.New("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SMTPRelay{}, errors.New("bad port")
		}
		port = n
	}
	r.Server.Port = port
	if u.User != nil {
		r.Username = u.User.Username()
		r.password, _ = u.User.Password()
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return SMTPRelay{}, errors.New("no path or query allowed")
	}
	return r, nil
}

// SMTPMailer sends through an SMTP relay with provider/smtp's client.
type SMTPMailer struct {
	relay  SMTPRelay
	client *smtp.Client
}

// NewSMTPMailer returns a Mailer for relay; tlsConfig (nil: the system
// roots) verifies the relay's certificate. The relay is the operator's
// own setting (--notify-smtp-url), never a client's, so it may be on the
// same host or a private network: the mail-host guard does not apply.
func NewSMTPMailer(relay SMTPRelay, tlsConfig *tls.Config, logger *slog.Logger) *SMTPMailer {
	return &SMTPMailer{relay: relay, client: smtp.New(smtp.Config{TLSConfig: tlsConfig, Logger: logger, AllowPrivateHosts: true})}
}

// Send implements Mailer.
func (m *SMTPMailer) Send(ctx context.Context, from string, to []string, raw []byte) error {
	env := from
	if a, err := parseAddr(from); err == nil {
		env = a
	}
	return m.client.SendRaw(ctx, &m.relay.Server, smtp.Credentials{Username: m.relay.Username, Password: m.relay.password}, env, to, raw)
}

// parseAddr returns the bare address of a From header value such as
// "holdfast <no-reply@example.com>".
func parseAddr(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}

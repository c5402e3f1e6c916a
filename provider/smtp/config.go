package smtp

import (
	"crypto/tls"
	"log/slog"
	"time"
)

// Config configures a Client. The zero value is usable.
type Config struct {
	// TLSConfig is used for implicit TLS and STARTTLS. Nil uses the system
	// roots; tests set RootCAs. ServerName is filled in from the host when
	// empty.
	TLSConfig *tls.Config
	// DialTimeout bounds the TCP connect and the TLS handshake. Zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// CommandTimeout bounds each SMTP command (greeting, EHLO, AUTH, MAIL,
	// RCPT, DATA). Zero means DefaultCommandTimeout.
	CommandTimeout time.Duration
	// SubmissionTimeout bounds the wait for the reply after DATA's final
	// dot. Zero means DefaultSubmissionTimeout.
	SubmissionTimeout time.Duration
	// Logger receives debug and warning records; never a secret. Nil
	// discards them.
	Logger *slog.Logger
	// AllowPrivateHosts lets the client reach SMTP servers at loopback,
	// private and other internal addresses (--allow-private-mail-hosts,
	// and the operator's own notice relay); by default they are refused
	// at the address dialled (package netguard).
	AllowPrivateHosts bool
}

// The defaults for Config's zero fields.
const (
	DefaultDialTimeout       = 15 * time.Second
	DefaultCommandTimeout    = time.Minute
	DefaultSubmissionTimeout = 5 * time.Minute
)

// withDefaults returns cfg with its zero fields set.
func (cfg Config) withDefaults() Config {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.SubmissionTimeout <= 0 {
		cfg.SubmissionTimeout = DefaultSubmissionTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

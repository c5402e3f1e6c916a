package imap

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/holdfast/holdfast"
)

// Config configures a Connector. The zero value is usable for password
// inboxes on servers with certificates from the system roots.
type Config struct {
	// TLSConfig is used for implicit TLS and STARTTLS, on IMAP and SMTP.
	// Nil uses the system roots; tests set RootCAs. ServerName is filled in
	// from the host when empty.
	TLSConfig *tls.Config
	// DialTimeout bounds the TCP connect and the TLS handshake. Zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// CommandTimeout bounds each IMAP command, and each SMTP command. Zero
	// means DefaultCommandTimeout.
	CommandTimeout time.Duration
	// SubmissionTimeout bounds the wait for the SMTP reply after the
	// message's final dot. Zero means the smtp package's default.
	SubmissionTimeout time.Duration
	// BatchSize is the most messages one Sync returns; when more are
	// waiting it sets SyncResult.More. Zero means DefaultBatchSize.
	BatchSize int
	// SentCopyWait is how long the first send through an SMTP host looks
	// for a copy that the server files in Sent by itself, before appending
	// one; the answer is remembered per host. Zero means
	// DefaultSentCopyWait; negative never looks, and always appends.
	SentCopyWait time.Duration
	// AccessToken, if set, returns an OAuth 2 access token for the session;
	// the connector then signs in with XOAUTH2 when the session has no
	// password. Errors it returns are passed on unchanged, so they should
	// already be classified *holdfast.ProviderError values (package
	// provider/oauth returns those).
	AccessToken func(ctx context.Context, s *holdfast.Session) (string, error)
	// Logger receives debug and warning records; never a secret. Nil
	// discards them.
	Logger *slog.Logger
	// AllowPrivateHosts lets the connector reach IMAP and SMTP servers at
	// loopback, private and other internal addresses
	// (--allow-private-mail-hosts); by default they are refused at the
	// address dialled (package netguard).
	AllowPrivateHosts bool
}

// The defaults for Config's zero fields.
const (
	DefaultDialTimeout    = 15 * time.Second
	DefaultCommandTimeout = time.Minute
	DefaultBatchSize      = 500
	DefaultSentCopyWait   = 3 * time.Second
)

// withDefaults returns cfg with its zero fields set.
func (cfg Config) withDefaults() Config {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.SentCopyWait == 0 {
		cfg.SentCopyWait = DefaultSentCopyWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

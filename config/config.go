// Package config reads holdfast's settings from command-line flags and their
// HOLDFAST_* environment equivalents, and checks them. A flag given on the
// command line wins over the environment, which wins over the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// Config holds the settings shared by holdfast's subcommands.
type Config struct {
	// Listen is the HTTP listen address (serve only).
	Listen string
	// DataDir holds the embedded SQLite database and the generated secret
	// key file. It is created with mode 0700.
	DataDir string
	// DatabaseURL, when set, selects PostgreSQL instead of SQLite.
	DatabaseURL string
	// SecretKey is HOLDFAST_SECRET_KEY: the key (or key list) that seals
	// credentials. Empty means a key file in DataDir.
	SecretKey string
	// SigningKey is HOLDFAST_SIGNING_KEY: hex keys, comma-separated, the
	// current first, that sign status-page links and dashboard sessions.
	// Empty means status-link.key in DataDir. It is separate from
	// SecretKey, so rotating that does not break the links already mailed.
	SigningKey string
	// MetricsListen, if set, serves /metrics on this address alone, and
	// not on Listen (serve only).
	MetricsListen string
	// LogFormat is "text" or "json".
	LogFormat string
	// LogLevel is "debug", "info", "warn" or "error".
	LogLevel string
	// ShutdownTimeout bounds a clean shutdown.
	ShutdownTimeout time.Duration
	// SyncInterval is the time between two syncs of an inbox, jittered by
	// ±10% (serve only).
	SyncInterval time.Duration
	// SyncConcurrency is the number of syncs one node runs at once (serve
	// only).
	SyncConcurrency int
	// Node names this node in the cluster (serve only); empty means a new
	// random ID at each start.
	Node string
	// ClusterLease is how long a node's sync partitions stay leased to it
	// unless renewed (serve only); a dead node's partitions move to the
	// others within about one lease.
	ClusterLease time.Duration
	// SendTimeout bounds one attempt at a send (serve only). A send whose
	// node died is resumed by the send sweep within a minute; River would
	// retry it twice this long after.
	SendTimeout time.Duration
	// MailCAFile names a PEM file of CA certificates trusted, besides the
	// system's, for the mail servers' TLS: for private mail servers
	// (serve only).
	MailCAFile string
	// AllowPrivateWebhooks lets webhooks reach loopback, private and other
	// internal addresses, which are refused by default (serve only).
	AllowPrivateWebhooks bool
	// AllowPrivateMailHosts lets inboxes' IMAP and SMTP hosts be loopback,
	// private and other internal addresses, which are refused by default
	// (serve only): for self-hosted mail servers on a private network.
	AllowPrivateMailHosts bool
	// NotifySMTPURL is the relay notices are mailed through,
	// smtp://user:pass@host:port (STARTTLS) or smtps:// (implicit TLS);
	// empty records notices without mailing them (serve only). It holds a
	// password: never log it.
	NotifySMTPURL string
	// NotifyFrom is the notices' From address (serve only).
	NotifyFrom string
	// TemplatesDir holds message templates that replace the embedded ones
	// of the same name (serve only).
	TemplatesDir string
	// NotifyResolved sends one "resolved, nothing to do" follow-up when an
	// inbox whose owner was told of trouble recovers by itself (serve
	// only).
	NotifyResolved bool

	// PublicURL is the base URL the service is reached at from users'
	// browsers; the OAuth redirect URI is PublicURL/oauth/callback (see
	// RedirectURL). Empty means http://LISTEN (serve only).
	PublicURL string
	// MicrosoftLoginURL, GraphURL, GoogleOAuthURL and GmailURL locate the
	// providers: the real endpoints by default, an emulator's in tests
	// (serve only).
	MicrosoftLoginURL string
	GraphURL          string
	GoogleOAuthURL    string
	GmailURL          string
	// MicrosoftTenant is the Microsoft Entra tenant in the login and token
	// URLs (MicrosoftLoginURL/{tenant}/oauth2/v2.0/...): "common" (work,
	// school and personal accounts; the default), "organizations" (work and
	// school only), "consumers" (personal only), or a tenant ID (GUID) or
	// one of its domains, for an app registered for a single tenant. It is
	// kept lower-case (serve only).
	MicrosoftTenant string
	// MicrosoftClientID, MicrosoftClientSecret, GoogleClientID and
	// GoogleClientSecret are holdfast's app registrations, from the
	// environment only (HOLDFAST_MICROSOFT_CLIENT_ID, ...). A provider
	// without a client ID cannot be connected through the consent flow.
	// The secrets are never logged.
	MicrosoftClientID     string
	MicrosoftClientSecret string
	GoogleClientID        string
	GoogleClientSecret    string

	// HealthConfirmSpan, HealthNoticeGrace, HealthKeepAlive, HealthBucket,
	// HealthCloseWindow and HealthSettle are the health engine parameters an operator may tune
	// (serve only); see HealthTuning and docs/operations.md. The defaults
	// are holdfast.DefaultHealthTuning's.
	HealthConfirmSpan time.Duration
	HealthNoticeGrace time.Duration
	HealthKeepAlive   time.Duration
	HealthBucket      time.Duration
	HealthCloseWindow time.Duration
	HealthSettle      time.Duration
}

// The providers' real endpoints, the defaults of the provider URL flags.
const (
	DefaultMicrosoftLoginURL = "https://login.microsoftonline.com"
	DefaultGraphURL          = "https://graph.microsoft.com"
	DefaultGoogleOAuthURL    = "https://oauth2.googleapis.com"
	DefaultGmailURL          = "https://gmail.googleapis.com"
)

// DefaultMicrosoftTenant is the default of --microsoft-tenant: any work,
// school or personal Microsoft account can sign in.
const DefaultMicrosoftTenant = "common"

// CallbackPath is the path of the OAuth callback under PublicURL.
const CallbackPath = "/oauth/callback"

// Flags names the flag groups a subcommand takes.
type Flags int

// The flag groups.
const (
	// FlagsStore: --data-dir, --database-url and the log flags.
	FlagsStore Flags = 1 << iota
	// FlagsServe: --listen, --shutdown-timeout, --sync-interval,
	// --sync-concurrency, --send-timeout, --mail-ca-file,
	// --allow-private-webhooks, --public-url, the provider URLs and
	// --microsoft-tenant, and the client credentials from the environment,
	// and the notification flags (--notify-smtp-url, --notify-from,
	// --templates-dir, --notify-resolved).
	FlagsServe
)

// env names the environment variable of each flag.
var env = map[string]string{
	"listen":           "HOLDFAST_LISTEN",
	"metrics-listen":   "HOLDFAST_METRICS_LISTEN",
	"data-dir":         "HOLDFAST_DATA_DIR",
	"database-url":     "HOLDFAST_DATABASE_URL",
	"log-format":       "HOLDFAST_LOG_FORMAT",
	"log-level":        "HOLDFAST_LOG_LEVEL",
	"shutdown-timeout": "HOLDFAST_SHUTDOWN_TIMEOUT",
	"sync-interval":    "HOLDFAST_SYNC_INTERVAL",
	"sync-concurrency": "HOLDFAST_SYNC_CONCURRENCY",
	"node":             "HOLDFAST_NODE",
	"cluster-lease":    "HOLDFAST_CLUSTER_LEASE",
	"send-timeout":     "HOLDFAST_SEND_TIMEOUT",
	"mail-ca-file":     "HOLDFAST_MAIL_CA_FILE",

	"allow-private-webhooks": "HOLDFAST_ALLOW_PRIVATE_WEBHOOKS",
	"public-url":             "HOLDFAST_PUBLIC_URL",
	"microsoft-login-url":    "HOLDFAST_MICROSOFT_LOGIN_URL",
	"graph-url":              "HOLDFAST_GRAPH_URL",
	"google-oauth-url":       "HOLDFAST_GOOGLE_OAUTH_URL",
	"gmail-url":              "HOLDFAST_GMAIL_URL",
	"microsoft-tenant":       "HOLDFAST_MICROSOFT_TENANT",
	"notify-smtp-url":        "HOLDFAST_NOTIFY_SMTP_URL",
	"notify-from":            "HOLDFAST_NOTIFY_FROM",
	"templates-dir":          "HOLDFAST_TEMPLATES_DIR",
	"notify-resolved":        "HOLDFAST_NOTIFY_RESOLVED",
	"health-confirm-span":    "HOLDFAST_HEALTH_CONFIRM_SPAN",
	"health-notice-grace":    "HOLDFAST_HEALTH_NOTICE_GRACE",
	"health-keepalive":       "HOLDFAST_HEALTH_KEEPALIVE",
	"health-bucket":          "HOLDFAST_HEALTH_BUCKET",
	"health-close-window":    "HOLDFAST_HEALTH_CLOSE_WINDOW",
	"health-settle":          "HOLDFAST_HEALTH_SETTLE",

	"allow-private-mail-hosts": "HOLDFAST_ALLOW_PRIVATE_MAIL_HOSTS",
}

// NewFlagSet returns a flag set for subcommand name with the given flag
// groups bound to c, and a function that, after fs.Parse, fills every flag
// not given on the command line from the environment and validates c.
func NewFlagSet(name string, groups Flags, c *Config, getenv func(string) string, stderr io.Writer) (*flag.FlagSet, func() error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if groups&FlagsStore != 0 {
		fs.StringVar(&c.DataDir, "data-dir", "./holdfast-data", "directory for the embedded SQLite store and the key file (env HOLDFAST_DATA_DIR)")
		fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL; when set, used instead of the embedded store (env HOLDFAST_DATABASE_URL)")
		fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json (env HOLDFAST_LOG_FORMAT)")
		fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error (env HOLDFAST_LOG_LEVEL)")
	}
	if groups&FlagsServe != 0 {
		fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "HTTP listen address (env HOLDFAST_LISTEN)")
		fs.StringVar(&c.MetricsListen, "metrics-listen", "", "serve /metrics on this address alone, not on --listen (env HOLDFAST_METRICS_LISTEN)")
		fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a clean shutdown may take (env HOLDFAST_SHUTDOWN_TIMEOUT)")
		fs.DurationVar(&c.SyncInterval, "sync-interval", time.Minute, "time between two syncs of an inbox, jittered by ±10% (env HOLDFAST_SYNC_INTERVAL)")
		fs.IntVar(&c.SyncConcurrency, "sync-concurrency", 32, "syncs run at once by this node (env HOLDFAST_SYNC_CONCURRENCY)")
		fs.StringVar(&c.Node, "node", "", "this node's name in the cluster; empty: a random one at each start (env HOLDFAST_NODE)")
		fs.DurationVar(&c.ClusterLease, "cluster-lease", 30*time.Second, "how long a node's sync partitions stay leased to it unless renewed (env HOLDFAST_CLUSTER_LEASE)")
		fs.DurationVar(&c.SendTimeout, "send-timeout", 6*time.Minute, "bound on one attempt at a send (env HOLDFAST_SEND_TIMEOUT)")
		fs.StringVar(&c.MailCAFile, "mail-ca-file", "", "PEM file of extra CA certificates to trust for mail servers (env HOLDFAST_MAIL_CA_FILE)")
		fs.BoolVar(&c.AllowPrivateWebhooks, "allow-private-webhooks", false, "let webhooks reach loopback, private and link-local addresses (env HOLDFAST_ALLOW_PRIVATE_WEBHOOKS)")
		fs.BoolVar(&c.AllowPrivateMailHosts, "allow-private-mail-hosts", false, "let inboxes' IMAP and SMTP hosts be loopback, private and link-local addresses, for mail servers on a private network (env HOLDFAST_ALLOW_PRIVATE_MAIL_HOSTS)")
		fs.StringVar(&c.NotifySMTPURL, "notify-smtp-url", "", "relay that mails notices, smtp://user:pass@host:port or smtps://; empty: notices are not mailed, only sent as notice.sent webhook events (env HOLDFAST_NOTIFY_SMTP_URL)")
		fs.StringVar(&c.NotifyFrom, "notify-from", "", "From address of the notices (env HOLDFAST_NOTIFY_FROM)")
		fs.StringVar(&c.TemplatesDir, "templates-dir", "", "directory of message templates replacing the embedded ones of the same name (env HOLDFAST_TEMPLATES_DIR)")
		fs.BoolVar(&c.NotifyResolved, "notify-resolved", false, "mail a short follow-up when trouble an owner was told of resolves by itself (env HOLDFAST_NOTIFY_RESOLVED)")
		fs.StringVar(&c.PublicURL, "public-url", "", "base URL users' browsers reach the service at; the OAuth redirect URI is this plus "+CallbackPath+" (default http://LISTEN; env HOLDFAST_PUBLIC_URL)")
		fs.StringVar(&c.MicrosoftLoginURL, "microsoft-login-url", DefaultMicrosoftLoginURL, "Microsoft identity platform base URL (env HOLDFAST_MICROSOFT_LOGIN_URL)")
		fs.StringVar(&c.GraphURL, "graph-url", DefaultGraphURL, "Microsoft Graph base URL (env HOLDFAST_GRAPH_URL)")
		fs.StringVar(&c.GoogleOAuthURL, "google-oauth-url", DefaultGoogleOAuthURL, "Google OAuth base URL (env HOLDFAST_GOOGLE_OAUTH_URL)")
		fs.StringVar(&c.GmailURL, "gmail-url", DefaultGmailURL, "Gmail API base URL (env HOLDFAST_GMAIL_URL)")
		fs.StringVar(&c.MicrosoftTenant, "microsoft-tenant", DefaultMicrosoftTenant, "Microsoft Entra tenant users sign in through: common, organizations, consumers, or a tenant ID or domain (env HOLDFAST_MICROSOFT_TENANT)")
		def := holdfast.DefaultHealthTuning()
		fs.DurationVar(&c.HealthConfirmSpan, "health-confirm-span", def.ConfirmSpan, "least time permanent-looking failures must span before an inbox needs its owner; checks come every 2/5 of it (env HOLDFAST_HEALTH_CONFIRM_SPAN)")
		fs.DurationVar(&c.HealthNoticeGrace, "health-notice-grace", def.NoticeGrace, "how long a reconnect notice waits before its re-check and delivery (env HOLDFAST_HEALTH_NOTICE_GRACE)")
		fs.DurationVar(&c.HealthKeepAlive, "health-keepalive", def.KeepAlive, "longest an inbox goes without a request before a cheap authenticated probe (env HOLDFAST_HEALTH_KEEPALIVE)")
		fs.DurationVar(&c.HealthBucket, "health-bucket", def.Bucket, "outage detector resolution; its windows are 6 and 30 buckets (env HOLDFAST_HEALTH_BUCKET)")
		fs.DurationVar(&c.HealthCloseWindow, "health-close-window", def.CloseWindow, "how long probes must succeed before an incident closes and recovery starts (env HOLDFAST_HEALTH_CLOSE_WINDOW)")
		fs.DurationVar(&c.HealthSettle, "health-settle", def.Settle, "how long an incident stays open once recovery started, so that failures that return continue it (a flapping provider is one incident); 0 resolves it at once (env HOLDFAST_HEALTH_SETTLE)")
	}
	finish := func() error {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		var errs []error
		fs.VisitAll(func(f *flag.Flag) {
			name, ok := env[f.Name]
			if !ok || given[f.Name] {
				return
			}
			if v := getenv(name); v != "" {
				if err := f.Value.Set(v); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
				}
			}
		})
		c.SecretKey = getenv("HOLDFAST_SECRET_KEY")
		c.SigningKey = strings.TrimSpace(getenv("HOLDFAST_SIGNING_KEY"))
		if groups&FlagsServe != 0 {
			c.MicrosoftClientID = strings.TrimSpace(getenv("HOLDFAST_MICROSOFT_CLIENT_ID"))
			c.MicrosoftClientSecret = getenv("HOLDFAST_MICROSOFT_CLIENT_SECRET")
			c.GoogleClientID = strings.TrimSpace(getenv("HOLDFAST_GOOGLE_CLIENT_ID"))
			c.GoogleClientSecret = getenv("HOLDFAST_GOOGLE_CLIENT_SECRET")
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		return c.Validate(groups)
	}
	return fs, finish
}

// Validate checks the settings of the given flag groups and names the bad
// one.
func (c *Config) Validate(groups Flags) error {
	if groups&FlagsStore != 0 {
		if c.DatabaseURL != "" {
			u, err := url.Parse(c.DatabaseURL)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				return errors.New("--database-url: want a postgres:// or postgresql:// URL")
			}
		} else if strings.TrimSpace(c.DataDir) == "" {
			return errors.New("--data-dir: must not be empty")
		}
		switch c.LogFormat {
		case "text", "json":
		default:
			return fmt.Errorf("--log-format: %q is not text or json", c.LogFormat)
		}
		var l slog.Level
		if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
			return fmt.Errorf("--log-level: %q is not debug, info, warn or error", c.LogLevel)
		}
	}
	if groups&FlagsServe != 0 {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		if _, _, err := net.SplitHostPort(c.MetricsListen); c.MetricsListen != "" && err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		if c.ShutdownTimeout <= 0 {
			return errors.New("--shutdown-timeout: must be positive")
		}
		if c.SyncInterval < time.Second || c.SyncInterval > 24*time.Hour {
			return errors.New("--sync-interval: must be between 1s and 24h")
		}
		if c.SyncConcurrency < 1 || c.SyncConcurrency > 10000 {
			return errors.New("--sync-concurrency: must be between 1 and 10000")
		}
		if c.SendTimeout < time.Second || c.SendTimeout > time.Hour {
			return errors.New("--send-timeout: must be between 1s and 1h")
		}
		if c.ClusterLease < time.Second || c.ClusterLease > time.Hour {
			return errors.New("--cluster-lease: must be between 1s and 1h")
		}
		if err := c.validateProviders(); err != nil {
			return err
		}
		if err := c.validateNotify(); err != nil {
			return err
		}
		if err := c.validateHealth(); err != nil {
			return err
		}
	}
	return nil
}

// validateHealth checks the health engine parameters.
func (c *Config) validateHealth() error {
	for _, f := range []struct {
		flag     string
		v        time.Duration
		min, max time.Duration
	}{
		{"--health-confirm-span", c.HealthConfirmSpan, 10 * time.Second, 24 * time.Hour},
		{"--health-notice-grace", c.HealthNoticeGrace, 10 * time.Second, 12 * time.Hour},
		{"--health-keepalive", c.HealthKeepAlive, 10 * time.Second, 24 * time.Hour},
		{"--health-bucket", c.HealthBucket, time.Second, time.Minute},
		{"--health-close-window", c.HealthCloseWindow, 10 * time.Second, 10 * time.Minute},
		{"--health-settle", c.HealthSettle, 0, time.Hour},
	} {
		if f.v < f.min || f.v > f.max {
			return fmt.Errorf("%s: %v is not between %v and %v", f.flag, f.v, f.min, f.max)
		}
	}
	// Confirmation must outlast the detector's reaction (its short window)
	// several times over, or an outage could confirm inboxes before it is
	// seen.
	if short := holdfast.HealthShortWindow * c.HealthBucket; c.HealthConfirmSpan < 2*short {
		return fmt.Errorf("--health-confirm-span: %v is shorter than twice the detector's short window (%v = 6 × --health-bucket)", c.HealthConfirmSpan, 2*short)
	}
	return nil
}

// HealthTuning returns the health engine parameters set by the
// --health-* flags, for health.Config.Tune. Call it after validation.
func (c *Config) HealthTuning() holdfast.HealthTuning {
	return holdfast.HealthTuning{
		ConfirmSpan: c.HealthConfirmSpan,
		NoticeGrace: c.HealthNoticeGrace,
		KeepAlive:   c.HealthKeepAlive,
		Bucket:      c.HealthBucket,
		CloseWindow: c.HealthCloseWindow,
		Settle:      c.HealthSettle,
	}
}

// validateProviders checks --public-url (setting its default), the
// provider URLs, --microsoft-tenant and the client credentials.
func (c *Config) validateProviders() error {
	if c.PublicURL == "" {
		host, port, _ := net.SplitHostPort(c.Listen) // validated
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	u, err := httpURL(c.PublicURL)
	if err != nil {
		return fmt.Errorf("--public-url: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("--public-url: must have no query or fragment")
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	for _, f := range []struct {
		flag string
		v    *string
	}{
		{"--microsoft-login-url", &c.MicrosoftLoginURL},
		{"--graph-url", &c.GraphURL},
		{"--google-oauth-url", &c.GoogleOAuthURL},
		{"--gmail-url", &c.GmailURL},
	} {
		if _, err := httpURL(*f.v); err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
		*f.v = strings.TrimRight(*f.v, "/")
	}
	tenant := strings.ToLower(strings.TrimSpace(c.MicrosoftTenant))
	if !validTenant(tenant) {
		return fmt.Errorf("--microsoft-tenant: %q is not common, organizations, consumers, a tenant ID (GUID) or a domain name", c.MicrosoftTenant)
	}
	c.MicrosoftTenant = tenant
	if c.MicrosoftClientSecret != "" && c.MicrosoftClientID == "" {
		return errors.New("HOLDFAST_MICROSOFT_CLIENT_SECRET: is set without HOLDFAST_MICROSOFT_CLIENT_ID")
	}
	if c.GoogleClientSecret != "" && c.GoogleClientID == "" {
		return errors.New("HOLDFAST_GOOGLE_CLIENT_SECRET: is set without HOLDFAST_GOOGLE_CLIENT_ID")
	}
	return nil
}

// validTenant reports whether s (lower-case) names a Microsoft tenant the
// way the identity platform's URLs take it: one of the three audiences, a
// tenant ID or a domain name.
func validTenant(s string) bool {
	switch s {
	case "common", "organizations", "consumers":
		return true
	}
	return isGUID(s) || isDomain(s)
}

// isGUID reports whether s has the form of a GUID,
// 8-4-4-4-12 hexadecimal digits.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// isDomain reports whether s is a DNS name of at least two labels of
// letters, digits and inner hyphens, such as contoso.onmicrosoft.com.
func isDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(s) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}

// httpURL parses an absolute http or https URL with a host.
func httpURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errors.New("must be an absolute http or https URL, without user information")
	}
	return u, nil
}

// RedirectURL returns the OAuth redirect URI to register with the
// providers: PublicURL followed by CallbackPath. Call it after validation.
func (c *Config) RedirectURL() string { return c.PublicURL + CallbackPath }

// validateNotify checks the notification settings. Its errors never
// repeat --notify-smtp-url, which holds a password.
func (c *Config) validateNotify() error {
	if c.TemplatesDir != "" {
		if fi, err := os.Stat(c.TemplatesDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("--templates-dir: %s is not a readable directory", c.TemplatesDir)
		}
	}
	if c.NotifySMTPURL == "" {
		if c.NotifyResolved {
			return errors.New("--notify-resolved: the follow-up is mailed; it needs --notify-smtp-url")
		}
		return nil
	}
	u, err := url.Parse(c.NotifySMTPURL)
	if err != nil {
		return errors.New("--notify-smtp-url: not a valid URL")
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		return errors.New("--notify-smtp-url: want an smtp:// or smtps:// URL")
	}
	if u.Hostname() == "" {
		return errors.New("--notify-smtp-url: no host")
	}
	if c.NotifyFrom == "" {
		return errors.New("--notify-from: required with --notify-smtp-url")
	}
	if _, err := mail.ParseAddress(c.NotifyFrom); err != nil {
		return fmt.Errorf("--notify-from: %q is not an email address", c.NotifyFrom)
	}
	return nil
}

// Logger returns a slog logger writing to w in the configured format and
// level.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel)) // validated
	opts := &slog.HandlerOptions{Level: l}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// EnsureDataDir creates the data directory with mode 0700 if it does not
// exist. An existing directory keeps its mode; the key file inside it is
// 0600 either way.
func (c *Config) EnsureDataDir() error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	fi, err := os.Stat(c.DataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", c.DataDir)
	}
	return nil
}

package gmail

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/oauth"
)

// Config configures a Connector.
type Config struct {
	// BaseURL is the Gmail API's root (HOLDFAST_GMAIL_URL). Empty means
	// DefaultBaseURL. A trailing "/gmail/v1" is accepted and dropped.
	BaseURL string
	// Tokens gets the inboxes' access tokens from their refresh tokens;
	// it must serve holdfast.ProviderGoogle. Required.
	Tokens *oauth.Source
	// HTTPClient sends the Gmail requests. Nil means a client with a
	// Timeout of Config.Timeout.
	HTTPClient *http.Client
	// Timeout bounds each Gmail request, body included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// PageSize is maxResults for history.list and messages.list. Zero
	// means DefaultPageSize; at most 500.
	PageSize int
	// MaxPages is the most history or list pages one Sync reads; when
	// more wait, the cursor records where to resume and More is set. Zero
	// means DefaultMaxPages.
	MaxPages int
	// BackfillLimit is how many of the most recent INBOX messages the
	// first sync of an inbox (or a sync after a reset) fetches, before it
	// follows the history from then on. Zero means DefaultBackfillLimit.
	BackfillLimit int
	// FindSentWait is how long FindSent waits to search a second time
	// when the first search finds nothing, for the search index to catch
	// up. Zero means DefaultFindSentWait; negative searches once.
	FindSentWait time.Duration
	// Logger receives debug and warning records; never a secret. Nil
	// discards them.
	Logger *slog.Logger
}

// The defaults for Config's zero fields.
const (
	DefaultBaseURL       = "https://gmail.googleapis.com"
	DefaultTimeout       = time.Minute
	DefaultPageSize      = 100
	DefaultMaxPages      = 5
	DefaultBackfillLimit = 500
	DefaultFindSentWait  = 5 * time.Second
)

// maxBody bounds the Gmail response bodies read.
const maxBody = 16 << 20

// withDefaults returns cfg with its zero fields set, or an error naming the
// bad field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Tokens == nil {
		return cfg, errors.New("gmail config: Tokens is nil")
	}
	if p := cfg.Tokens.Provider(); p != holdfast.ProviderGoogle {
		return cfg, fmt.Errorf("gmail config: Tokens serves %s, not google", p)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimSuffix(strings.TrimRight(cfg.BaseURL, "/"), "/gmail/v1")
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return cfg, fmt.Errorf("gmail config: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	cfg.PageSize = min(cfg.PageSize, 500)
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = DefaultMaxPages
	}
	if cfg.BackfillLimit <= 0 {
		cfg.BackfillLimit = DefaultBackfillLimit
	}
	if cfg.FindSentWait == 0 {
		cfg.FindSentWait = DefaultFindSentWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

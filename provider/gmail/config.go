package gmail

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/provider/bearer"
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
	// SentLag is how long after messages.send Gmail's search may still
	// miss the message: a send whose outcome was unclear is not sent again
	// before its search has come up empty this long after the unclear
	// attempt (Connector.SentLag). Zero means DefaultSentLag.
	SentLag time.Duration
	// Logger receives debug and warning records; never a secret. Nil
	// discards them.
	Logger *slog.Logger
}

// The defaults for Config's zero fields.
const (
	DefaultBaseURL       = "https://gmail.googleapis.com"
	DefaultTimeout       = bearer.DefaultTimeout
	DefaultPageSize      = 100
	DefaultMaxPages      = 5
	DefaultBackfillLimit = 500
	DefaultFindSentWait  = 5 * time.Second
	DefaultSentLag       = time.Minute
)

// client returns the settings of cfg's calls.
func (cfg Config) client() bearer.Config {
	return bearer.Config{
		Name: "gmail", Provider: holdfast.ProviderGoogle, Surface: classify.SurfaceGmail,
		Tokens: cfg.Tokens, HTTPClient: cfg.HTTPClient, Timeout: cfg.Timeout, Logger: cfg.Logger,
		ErrorCode: errorCode,
	}
}

// withDefaults returns cfg with its zero fields set, or an error naming the
// bad field.
func (cfg Config) withDefaults() (Config, error) {
	c, err := cfg.client().WithDefaults()
	if err != nil {
		return cfg, err
	}
	cfg.BaseURL, err = bearer.BaseURL("gmail", cfg.BaseURL, DefaultBaseURL, "/gmail/v1")
	if err != nil {
		return cfg, err
	}
	cfg.Timeout, cfg.HTTPClient, cfg.Logger = c.Timeout, c.HTTPClient, c.Logger
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
	if cfg.SentLag <= 0 {
		cfg.SentLag = DefaultSentLag
	}
	return cfg, nil
}

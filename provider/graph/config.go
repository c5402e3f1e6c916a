package graph

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
	// BaseURL is Microsoft Graph's root, without the version
	// (HOLDFAST_GRAPH_URL). Empty means DefaultBaseURL. A trailing
	// "/v1.0" is accepted and dropped.
	BaseURL string
	// Tokens gets the inboxes' access tokens from their refresh tokens;
	// it must serve holdfast.ProviderMicrosoft. Required.
	Tokens *oauth.Source
	// HTTPClient sends the Graph requests. Nil means a client with a
	// Timeout of Config.Timeout.
	HTTPClient *http.Client
	// Timeout bounds each Graph request, body included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// PageSize is the most messages asked for per delta page (Prefer:
	// odata.maxpagesize). Zero means DefaultPageSize.
	PageSize int
	// MaxPages is the most delta pages one Sync reads; when more wait it
	// stores the next page's link in the cursor and sets More. Zero means
	// DefaultMaxPages.
	MaxPages int
	// FindSentWait is how long FindSent waits to look a second time when
	// the first look finds nothing: sendMail is asynchronous (202), and
	// the Sent Items copy appears a moment after. Zero means
	// DefaultFindSentWait; negative looks once.
	FindSentWait time.Duration
	// SentLag is how long after sendMail's 202 (or a failure that may
	// hide one) the message may still be in neither the Outbox nor Sent
	// Items: a send whose outcome was unclear is not sent again before
	// FindSent has come up empty this long after the unclear attempt
	// (Connector.SentLag). Zero means DefaultSentLag.
	SentLag time.Duration
	// Logger receives debug and warning records; never a secret. Nil
	// discards them.
	Logger *slog.Logger
}

// The defaults for Config's zero fields.
const (
	DefaultBaseURL      = "https://graph.microsoft.com"
	DefaultTimeout      = time.Minute
	DefaultPageSize     = 100
	DefaultMaxPages     = 10
	DefaultFindSentWait = 5 * time.Second
	DefaultSentLag      = time.Minute
)

// client returns the settings of cfg's calls.
func (cfg Config) client() bearer.Config {
	return bearer.Config{
		Name: "graph", Provider: holdfast.ProviderMicrosoft, Surface: classify.SurfaceGraph,
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
	cfg.BaseURL, err = bearer.BaseURL("graph", cfg.BaseURL, DefaultBaseURL, "/v1.0")
	if err != nil {
		return cfg, err
	}
	cfg.Timeout, cfg.HTTPClient, cfg.Logger = c.Timeout, c.HTTPClient, c.Logger
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = DefaultMaxPages
	}
	if cfg.FindSentWait == 0 {
		cfg.FindSentWait = DefaultFindSentWait
	}
	if cfg.SentLag <= 0 {
		cfg.SentLag = DefaultSentLag
	}
	return cfg, nil
}

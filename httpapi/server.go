// Package httpapi serves holdfast's HTTP API: the authenticated /v1 JSON
// routes (documented in docs/api.md), and /healthz, /readyz and /metrics.
//
// The Go API is not stable.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/netguard"
)

// Store is the aggregates the API serves: every one but the notices, which
// only the health engine and the notify pipeline write, and Ping for
// /readyz.
type Store interface {
	holdfast.InboxStore
	holdfast.MailStore
	holdfast.SendStore
	holdfast.HealthStore
	holdfast.WebhookStore
	holdfast.APIKeyStore
	holdfast.OAuthStore
	// Ping checks that the store can be reached.
	Ping(ctx context.Context) error
}

// Config holds the server's dependencies. Store, Health, Logger and
// SealCredentials are required.
type Config struct {
	Store Store
	// Health is the health engine's operator surface.
	Health Health
	Logger *slog.Logger
	// Clock tells the time; nil means the wall clock.
	Clock holdfast.Clock
	// SealCredentials encrypts an inbox's secret for storage, bound to the
	// inbox's ID.
	SealCredentials func(inboxID string, c Credentials) ([]byte, error)
	// Syncer, if set, learns of created and deleted inboxes and runs
	// sync-now requests; without it POST /v1/inboxes/{id}/sync answers 409.
	Syncer Syncer
	// Sends, if set, enqueues accepted sends at once; without it they go
	// out when the send sweep finds them due.
	Sends SendQueue
	// Webhooks, if set, serves /v1/webhooks; without it those routes
	// answer 404.
	Webhooks *WebhookConfig
	// Connect, if set, serves the OAuth consent flow (GET
	// /v1/connect/{provider} and GET /oauth/callback); without it those
	// routes answer 404.
	Connect *ConnectConfig
	// Status, if set, serves the owners' status page (/status/{token});
	// without it those routes answer 404.
	Status *StatusConfig
	// Metrics, if set, serves /metrics and counts requests.
	Metrics MetricsHandler
	// MetricsElsewhere keeps /metrics off this handler (it is served on
	// its own listener); requests are still counted.
	MetricsElsewhere bool
	// MaxBodyBytes caps request bodies; zero means 1 MiB.
	MaxBodyBytes int64
	// MailHosts judges the IMAP and SMTP hosts of new inboxes; nil refuses
	// internal addresses (a zero netguard.Guard). The connectors check
	// again at the address they dial.
	MailHosts *netguard.Guard
}

// Credentials is the secret an inbox is connected with: a password for
// IMAP/SMTP, or a refresh token for Microsoft and Google.
type Credentials struct {
	Password     string
	RefreshToken string
}

// MetricsHandler serves /metrics and instruments the other routes.
type MetricsHandler interface {
	Handler() http.Handler
	Middleware(http.Handler) http.Handler
}

// NewServer returns the HTTP handler for the whole API.
func NewServer(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Health == nil || cfg.Logger == nil || cfg.SealCredentials == nil {
		return nil, errors.New("httpapi: Store, Health, Logger and SealCredentials are required")
	}
	if wc := cfg.Webhooks; wc != nil && (wc.Guard == nil || wc.SealSecret == nil) {
		return nil, errors.New("httpapi: Webhooks needs Guard and SealSecret")
	}
	if cc := cfg.Connect; cc != nil && cc.Health == nil {
		return nil, errors.New("httpapi: Connect needs Health")
	}
	if sc := cfg.Status; sc != nil && sc.Links == nil {
		return nil, errors.New("httpapi: Status needs Links")
	}
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	if cfg.MailHosts == nil {
		cfg.MailHosts = &netguard.Guard{}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	s := &server{cfg: cfg, log: cfg.Logger}
	mux := http.NewServeMux()
	s.addRoutes(mux)
	var h http.Handler = mux
	h = checkQuery(h)
	h = recoverPanics(s.log, h)
	if cfg.Metrics != nil {
		h = cfg.Metrics.Middleware(h)
	}
	return h, nil
}

// server holds what the handlers share.
type server struct {
	cfg Config
	log *slog.Logger
}

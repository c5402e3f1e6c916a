// Package dashboard serves the operators' dashboard under /ui/: the
// fleet's state, providers and incidents (with a post-incident review per
// incident), held actions, the notification outbox, and inbox search and
// history. Pages are rendered on the server from embedded html/template
// files, charts are inline SVG drawn here, and the only script refreshes
// the page's content every 15 seconds. Operators sign in with an API key;
// the session is an HMAC-signed cookie and every form carries a CSRF token.
//
// The Go API is not stable.
package dashboard

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/monitor"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Health is the part of the health engine the dashboard drives.
// monitor.Monitor implements it.
type Health interface {
	// Declare opens (or, with End, records) an incident. It returns
	// ErrConflict when an open incident already covers the scope, and an
	// invalid-input error naming the field.
	Declare(ctx context.Context, d monitor.Declaration) (*holdfast.Incident, error)
	// Resolve closes an open incident: ErrNotFound for an unknown one,
	// ErrConflict for one already resolved.
	Resolve(ctx context.Context, id int64) (*holdfast.Incident, error)
	// Release lets a held action go ahead now: ErrNotFound for an unknown
	// one, ErrConflict for one no longer pending.
	Release(ctx context.Context, id int64) error
}

var _ Health = (*monitor.Monitor)(nil)

// Store is the aggregates the dashboard reads: inboxes and their history,
// what the health engine decided, the notification outbox, and the API
// keys operators sign in with.
type Store interface {
	holdfast.InboxStore
	holdfast.HealthStore
	holdfast.NoticeStore
	holdfast.APIKeyStore
}

// Config holds the dashboard's dependencies. Store, Health, Logger and a
// SessionKey of at least 32 bytes (or SessionKeysFunc) are required.
type Config struct {
	Store  Store
	Health Health
	Logger *slog.Logger
	// Clock tells the time; nil means the wall clock.
	Clock holdfast.Clock
	// SessionKey signs the session cookies and CSRF tokens. Derive it from
	// a secret the service keeps, so that sessions survive a restart and
	// every node accepts them.
	SessionKey []byte
	// PreviousSessionKeys are the session keys before SessionKey: their
	// sessions are still accepted until they expire.
	PreviousSessionKeys [][]byte
	// SessionKeysFunc, if set, returns the session keys at each use, the
	// current first (at least 32 bytes) and then the previous ones, in
	// place of SessionKey and PreviousSessionKeys: for keys that change
	// while the dashboard runs (each node re-reads the stored signing
	// keys). It must be fast and safe for concurrent use.
	SessionKeysFunc func() [][]byte
	// SessionLifetime is how long a sign-in lasts; zero means 12 hours.
	SessionLifetime time.Duration
	// StatusURL, if set, returns the owners' status page link for an
	// email, shown on an inbox's page.
	StatusURL func(email string, now time.Time) string
}

// DefaultSessionLifetime is how long a sign-in lasts by default.
const DefaultSessionLifetime = 12 * time.Hour

// New returns the dashboard's handler, to be mounted at /ui/ (its routes
// carry the /ui prefix).
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Health == nil || cfg.Logger == nil {
		return nil, errors.New("dashboard: Store, Health and Logger are required")
	}
	if cfg.SessionKeysFunc == nil {
		keys := append([][]byte{cfg.SessionKey}, cfg.PreviousSessionKeys...)
		cfg.SessionKeysFunc = func() [][]byte { return keys }
	}
	if keys := cfg.SessionKeysFunc(); len(keys) == 0 || len(keys[0]) < 32 {
		return nil, errors.New("dashboard: SessionKey shorter than 32 bytes")
	}
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	d := &dash{cfg: cfg, log: cfg.Logger, tmpl: tmpl, static: static}
	mux := http.NewServeMux()
	d.addRoutes(mux)
	return securityHeaders(checkQuery(mux)), nil
}

// badText answers 400 naming the field when a form or query string holds
// a value that is not text (holdfast.CheckValues), and reports whether
// it did.
func badText(w http.ResponseWriter, values url.Values) bool {
	if err := holdfast.CheckValues(values, holdfast.MaxText); err != nil {
		http.Error(w, "The form could not be used: "+err.Error(), http.StatusBadRequest)
		return true
	}
	return false
}

// checkQuery applies badText to every request's query string.
func checkQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !badText(w, r.URL.Query()) {
			next.ServeHTTP(w, r)
		}
	})
}

// dash holds what the handlers share.
type dash struct {
	cfg    Config
	log    *slog.Logger
	tmpl   map[string]*template.Template
	static fs.FS
}

// addRoutes lists every dashboard route.
func (d *dash) addRoutes(mux *http.ServeMux) {
	mux.Handle("GET /ui/static/{name}", d.handleStatic())
	mux.Handle("GET /ui/login", d.handleLoginForm())
	mux.Handle("POST /ui/login", d.handleLogin())

	page := func(pattern string, h pageFunc) { mux.Handle(pattern, d.requireSession(d.render(h))) }
	post := func(pattern string, h sessionHandler) { mux.Handle(pattern, d.requireSession(d.checkCSRF(h))) }
	page("GET /ui/{$}", d.fleetPage)
	page("GET /ui/incidents", d.incidentsPage)
	page("GET /ui/incidents/{id}", d.incidentPage)
	page("GET /ui/held", d.heldPage)
	page("GET /ui/outbox", d.outboxPage)
	page("GET /ui/inboxes", d.inboxesPage)
	page("GET /ui/inboxes/{id}", d.inboxPage)
	post("POST /ui/logout", d.handleLogout)
	post("POST /ui/incidents", d.handleDeclare)
	post("POST /ui/incidents/{id}/resolve", d.handleResolve)
	post("POST /ui/held/{id}/release", d.handleRelease)
	page("/ui/", func(r *http.Request, s *session) (*view, error) { return nil, holdfast.ErrNotFound })
}

// securityHeaders keeps the pages out of frames and caches and allows
// only the dashboard's own style sheet and script.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // no-referrer would make browsers send "Origin: null" with forms
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

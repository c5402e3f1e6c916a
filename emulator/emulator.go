package emulator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Default client credentials, accepted when Config leaves them empty.
const (
	DefaultClientID     = "holdfast-dev"
	DefaultClientSecret = "holdfast-dev-secret"
)

// Provider names a provider the emulator plays.
type Provider string

// The providers.
const (
	Microsoft Provider = "microsoft"
	Google    Provider = "google"
)

// Surface names an endpoint group, with the names the classifier uses.
type Surface string

// The surfaces.
const (
	SurfaceToken       Surface = "token"        // Microsoft identity platform token endpoint
	SurfaceGraph       Surface = "graph"        // Microsoft Graph
	SurfaceGoogleToken Surface = "google_token" // Google OAuth token endpoint
	SurfaceGmail       Surface = "gmail"        // Gmail API
)

// Config configures an Emulator. The zero value is usable.
type Config struct {
	// ClientID and ClientSecret are the only client credentials the token
	// endpoints accept. Defaults: DefaultClientID, DefaultClientSecret.
	ClientID     string
	ClientSecret string
	// TokenLifetime is how long access tokens live. Default: one hour.
	TokenLifetime time.Duration
	// RateLimit is how many Graph or Gmail requests per second each
	// mailbox may make; zero turns throttling off.
	RateLimit float64
	// Seed seeds the random source that decides which requests a fault
	// with a failure rate below one fails.
	Seed uint64
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives the emulator's log lines. Default: discard.
	Logger *slog.Logger
	// MaxAccounts bounds the number of accounts. Default: 10,000.
	MaxAccounts int
	// MaxMessages bounds each mailbox's stored messages and its send
	// records. Default: 10,000.
	MaxMessages int
	// KeepMessages, when above zero, keeps only the last KeepMessages
	// messages of each folder of each mailbox, and as many send records:
	// storing one more forgets the folder's oldest instead of failing when
	// full. Forgotten messages
	// leave listings (and GETs answer 404), while change numbers, delta
	// tokens and history ids carry on. Zero keeps everything up to
	// MaxMessages.
	KeepMessages int
	// MaxMessageBytes bounds the request body of a send or a delivery.
	// Default: 4 MiB.
	MaxMessageBytes int64
	// SentDelay is how long an accepted send takes to reach the sender's
	// sent folder, as Graph's sendMail (asynchronous: 202 Accepted) and
	// Gmail's search index take a moment. Meanwhile the Graph copy sits in
	// the Outbox (mailFolders/outbox) and not in Sent Items, and a Gmail
	// search (messages.list) does not find it. Zero files it at once.
	SentDelay time.Duration
}

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.ClientSecret == "" {
		c.ClientSecret = DefaultClientSecret
	}
	if c.TokenLifetime <= 0 {
		c.TokenLifetime = time.Hour
	}
	if c.RateLimit < 0 {
		c.RateLimit = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxAccounts <= 0 {
		c.MaxAccounts = 10_000
	}
	if c.MaxMessages <= 0 {
		c.MaxMessages = 10_000
	}
	c.KeepMessages = max(c.KeepMessages, 0)
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 4 << 20
	}
	c.SentDelay = max(c.SentDelay, 0)
	return c
}

// Limits that are not configurable.
const (
	maxGrants     = 100 // per account, as Google's live-token limit
	maxCodes      = 10_000
	codeLifetime  = 10 * time.Minute
	smallBody     = 64 << 10
	firstChangeID = 1000 // change numbers (Gmail history ids) start above it
)

// Errors returned by the Go API; the control API maps them to 404, 409 and
// 507. Invalid input is an *InvalidError (400).
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrFull     = errors.New("storage limit reached")
)

// InvalidError reports invalid input, naming the field.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func invalidf(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Emulator is an in-memory Microsoft and Google mail provider. Make one with
// New and serve Handler; its methods mirror the control API.
type Emulator struct {
	cfg     Config
	key     []byte // signs tokens and cursors
	handler http.Handler

	mu       sync.Mutex // guards everything that follows
	accounts map[string]*account
	order    []*account // every account, in creation order (traffic picks from it)
	codes    map[string]*authCode
	faults   map[string]*fault
	nextID   uint64 // source of message, grant and fault numbers
	rng      *mrand.Rand
	stats    counters
	sentIDs  map[string]uint32 // Internet Message-ID → accepted sends carrying it
	capacity map[Provider]*bucket
	traffic  *traffic // the running generator, or nil
}

// New returns an emulator with no accounts and no faults.
func New(cfg Config) *Emulator {
	cfg = cfg.withDefaults()
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	e := &Emulator{
		cfg:      cfg,
		key:      key,
		accounts: map[string]*account{},
		codes:    map[string]*authCode{},
		faults:   map[string]*fault{},
		sentIDs:  map[string]uint32{},
		capacity: map[Provider]*bucket{},
		nextID:   1,
		rng:      mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
	}
	e.stats.dupWindow = defaultDupWindow
	e.handler = e.routes()
	return e
}

// Close stops the traffic generator, if one runs. The emulator stays usable.
// Run calls it when it returns.
func (e *Emulator) Close() { e.StopTraffic() }

// Handler returns the HTTP handler serving every provider path and the
// control API.
func (e *Emulator) Handler() http.Handler { return e.handler }

// Run serves the emulator on ln until ctx is cancelled, then shuts down,
// waiting up to five seconds for requests in flight. It closes ln.
func (e *Emulator) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           e.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	defer e.Close()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }() // ends when Shutdown closes ln
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// URLs holds the base URLs of an emulator, one per real host it mirrors.
type URLs struct {
	Base           string // the emulator's root, e.g. http://127.0.0.1:8025
	MicrosoftLogin string // HOLDFAST_MICROSOFT_LOGIN_URL: BASE/microsoft-login
	Graph          string // HOLDFAST_GRAPH_URL: BASE/graph
	GoogleOAuth    string // HOLDFAST_GOOGLE_OAUTH_URL: BASE/google-oauth
	GoogleAccounts string // accounts.google.com: BASE/google-accounts
	Gmail          string // HOLDFAST_GMAIL_URL: BASE/gmail
	Control        string // BASE/_emulator
}

// URLsFor returns the base URLs of an emulator served at base, a URL
// without a trailing slash such as "http://127.0.0.1:8025".
func URLsFor(base string) URLs {
	base = strings.TrimSuffix(base, "/")
	return URLs{
		Base:           base,
		MicrosoftLogin: base + prefixMicrosoftLogin,
		Graph:          base + prefixGraph,
		GoogleOAuth:    base + prefixGoogleOAuth,
		GoogleAccounts: base + prefixGoogleAccounts,
		Gmail:          base + prefixGmail,
		Control:        base + prefixControl,
	}
}

// Env returns the environment variables that point holdfast at the
// emulator.
func (u URLs) Env() map[string]string {
	return map[string]string{
		"HOLDFAST_MICROSOFT_LOGIN_URL": u.MicrosoftLogin,
		"HOLDFAST_GRAPH_URL":           u.Graph,
		"HOLDFAST_GOOGLE_OAUTH_URL":    u.GoogleOAuth,
		"HOLDFAST_GMAIL_URL":           u.Gmail,
	}
}

// Path prefixes, one per mirrored host.
const (
	prefixMicrosoftLogin = "/microsoft-login"
	prefixGraph          = "/graph"
	prefixGoogleOAuth    = "/google-oauth"
	prefixGoogleAccounts = "/google-accounts"
	prefixGmail          = "/gmail"
	prefixControl        = "/_emulator"
)

// routes builds the mux. Every handler's body is size-limited.
func (e *Emulator) routes() http.Handler {
	mux := http.NewServeMux()
	small := func(h http.HandlerFunc) http.Handler { return limitBody(smallBody, h) }
	large := func(h http.HandlerFunc) http.Handler { return limitBody(e.cfg.MaxMessageBytes, h) }

	ms := prefixMicrosoftLogin + "/{tenant}/oauth2/v2.0"
	mux.Handle("GET "+ms+"/authorize", small(e.handleMicrosoftAuthorize))
	mux.Handle("POST "+ms+"/token", small(e.handleMicrosoftToken))

	g := prefixGraph + "/v1.0/me"
	mux.Handle("GET "+g, small(e.graphAPI(permMe, e.handleGraphMe)))
	// Graph paths are case-insensitive; the camelCase and the lower-case
	// spellings are served.
	for _, folders := range []string{"/mailFolders", "/mailfolders"} {
		mux.Handle("GET "+g+folders+"/{folder}/messages/delta", small(e.graphAPI(permMailRead, e.handleGraphDelta)))
		mux.Handle("GET "+g+folders+"/{folder}/messages", small(e.graphAPI(permMailRead, e.handleGraphList)))
	}
	mux.Handle("GET "+g+"/messages/{id}", small(e.graphAPI(permMailRead, e.handleGraphMessage)))
	mux.Handle("POST "+g+"/sendMail", large(e.graphAPI(permMailSend, e.handleGraphSendMail)))
	mux.Handle("POST "+g+"/sendmail", large(e.graphAPI(permMailSend, e.handleGraphSendMail)))

	mux.Handle("POST "+prefixGoogleOAuth+"/token", small(e.handleGoogleToken))
	for _, p := range []string{prefixGoogleAccounts, prefixGoogleOAuth} {
		mux.Handle("GET "+p+"/o/oauth2/v2/auth", small(e.handleGoogleAuthorize))
		mux.Handle("GET "+p+"/o/oauth2/auth", small(e.handleGoogleAuthorize))
	}

	gm := prefixGmail + "/gmail/v1/users/{user}"
	mux.Handle("GET "+gm+"/profile", small(e.gmailAPI(permGmailProfile, e.handleGmailProfile)))
	mux.Handle("GET "+gm+"/history", small(e.gmailAPI(permGmailHistory, e.handleGmailHistory)))
	mux.Handle("GET "+gm+"/messages", small(e.gmailAPI(permGmailList, e.handleGmailList)))
	mux.Handle("GET "+gm+"/messages/{id}", small(e.gmailAPI(permGmailGet, e.handleGmailMessage)))
	mux.Handle("POST "+gm+"/messages/send", large(e.gmailAPI(permGmailSend, e.handleGmailSend)))

	c := prefixControl
	mux.Handle("GET "+c+"/health", small(e.handleHealth))
	mux.Handle("POST "+c+"/accounts", small(e.handleCreateAccount))
	mux.Handle("POST "+c+"/accounts/{email}/revoke", small(e.handleRevoke))
	mux.Handle("POST "+c+"/accounts/{email}/expire-sync", small(e.handleExpireSync))
	mux.Handle("POST "+c+"/mail", large(e.handleDeliver))
	mux.Handle("POST "+c+"/faults", small(e.handleAddFault))
	mux.Handle("DELETE "+c+"/faults/{id}", small(e.handleRemoveFault))
	mux.Handle("GET "+c+"/sent", small(e.handleSent))
	mux.Handle("POST "+c+"/accounts/bulk", small(e.handleBulkAccounts))
	mux.Handle("POST "+c+"/traffic", small(e.handleStartTraffic))
	mux.Handle("DELETE "+c+"/traffic", small(e.handleStopTraffic))
	mux.Handle("GET "+c+"/stats", small(e.handleStats))
	mux.Handle("POST "+c+"/stats/config", small(e.handleStatsConfig))
	mux.Handle("POST "+c+"/stats/reset", small(e.handleStatsReset))
	mux.Handle("GET "+c+"/sent/summary", small(e.handleSentSummary))
	mux.Handle("POST "+c+"/capacity", small(e.handleSetCapacity))
	return mux
}

// limitBody caps the request body at n bytes.
func limitBody(n int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h.ServeHTTP(w, r)
	})
}

// now returns the emulator's current time.
func (e *Emulator) now() time.Time { return e.cfg.Now() }

// newIDLocked returns a fresh number.
func (e *Emulator) newIDLocked() uint64 {
	n := e.nextID
	e.nextID++
	return n
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/dashboard"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/httpapi"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/metrics"
	"github.com/holdfast/holdfast/monitor"
	"github.com/holdfast/holdfast/netguard"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/provider/gmail"
	"github.com/holdfast/holdfast/provider/graph"
	"github.com/holdfast/holdfast/provider/imap"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/secrets"
	"github.com/holdfast/holdfast/syncer"
	"github.com/holdfast/holdfast/webhook"
)

// parse parses args into fs and finishes the configuration.
func parse(fs *flag.FlagSet, args []string, finish func() error) error {
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitCode(2)
	}
	return finish()
}

// runServe runs the service until ctx is cancelled (SIGINT or SIGTERM),
// then shuts down within the shutdown timeout.
func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg config.Config
	fs, finish := config.NewFlagSet("serve", config.FlagsStore|config.FlagsServe, &cfg, getenv, stderr)
	if err := parse(fs, args, finish); err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	if cfg.DatabaseURL != "" && cfg.SecretKey == "" {
		log.Warn("HOLDFAST_SECRET_KEY is not set: credentials are sealed with the key file in the data directory; every node on this database must use the same key")
	}
	ring, err := openKeyring(&cfg)
	if err != nil {
		return err
	}
	b, err := openBackend(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.migrate(ctx); err != nil {
		return err
	}

	m := metrics.New()
	classify.Register(m.Registry)
	store := m.InstrumentStore(b.store)
	m.WatchInboxes(store, 10*time.Second, log)

	// The syncer acts on the health engine's grants, and the webhook
	// publisher on its decisions; both are made before the monitor starts,
	// so that a grant or a decision always finds them.
	var (
		syn *syncer.Syncer
		pub *webhook.Publisher
		// outbox enqueues the notify jobs; set once the job runner exists.
		outbox jobRunner
	)
	ntf, links, err := notifier(&cfg, store, func(ctx context.Context, s notify.Sent) { pub.NoticeSent(ctx, noticeEvent(s)) }, log)
	if err != nil {
		return err
	}
	engine := health.DefaultConfig().Tune(cfg.HealthTuning())
	mon, err := monitor.New(ctx, monitor.Config{
		Store: store, Logger: log.With("component", "health"), Engine: &engine,
		OnGrant: func(inboxID string, _ bool) { _ = syn.Now(inboxID) },
		OnStateChange: func(ctx context.Context, in *holdfast.Inbox, from holdfast.State) {
			pub.InboxStateChanged(ctx, in, from)
			// An inbox that needed its owner and no longer does may get the
			// "resolved" follow-up: at once when it is connected, or once
			// it is, when an incident paused it (a retroactive incident).
			if ntf.Resolved() && from.ActionRequired() != holdfast.RequireNone && in.State.ActionRequired() == holdfast.RequireNone {
				if err := outbox.EnqueueFollowUp(ctx, in.ID, in.Since); err != nil {
					log.Warn("enqueue resolved follow-up", "inbox_id", in.ID, "err", err)
				}
			}
		},
		OnIncident: func(ctx context.Context, in *holdfast.Incident, opened bool) { pub.IncidentChanged(ctx, in, opened) },
		OnNotice: func(ctx context.Context, n *holdfast.Notice) {
			// On an error the notify sweep enqueues it within a minute.
			if err := outbox.EnqueueNotice(ctx, n); err != nil {
				log.Warn("enqueue notice", "notice_id", n.ID, "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	m.Registry.MustRegister(mon.Collector())

	sources, err := oauthSources(&cfg, log)
	if err != nil {
		return err
	}
	conns, err := connectors(&cfg, sources, log)
	if err != nil {
		return err
	}
	consent := &httpapi.ConnectConfig{Providers: map[holdfast.Provider]httpapi.OAuthProvider{},
		Accounts: map[holdfast.Provider]httpapi.AccountReader{}, Health: mon}
	for p, src := range sources {
		consent.Providers[p] = src
		if ar, ok := conns[p].(httpapi.AccountReader); ok {
			consent.Accounts[p] = ar
		}
	}
	session := func(_ context.Context, in *holdfast.Inbox) (*holdfast.Session, error) {
		c, err := secrets.OpenCredentials(ring, in.ID, in.Credentials)
		if err != nil {
			return nil, fmt.Errorf("open credentials of inbox %s: %w", in.ID, err)
		}
		sess := &holdfast.Session{Inbox: in, Password: c.Password, RefreshToken: c.RefreshToken}
		if c.RefreshToken != "" {
			var mu sync.Mutex
			prev := in.Credentials
			sess.OnTokenRotated = func(ctx context.Context, refreshToken string) error {
				mu.Lock()
				defer mu.Unlock()
				sealed, err := saveRotatedToken(ctx, store, ring, in.ID, prev, refreshToken)
				if errors.Is(err, secrets.ErrSuperseded) {
					log.InfoContext(ctx, "rotated refresh token not saved: the inbox was reconnected meanwhile", "inbox_id", in.ID)
					return nil
				}
				if err == nil {
					prev = sealed
				}
				return err
			}
		}
		return sess, nil
	}
	syn, err = syncer.New(syncer.Config{
		Store: store, Monitor: mon, Connectors: conns, Session: session,
		Interval: cfg.SyncInterval, Concurrency: cfg.SyncConcurrency,
		Logger: log.With("component", "sync"),
		OnMessages: func(ctx context.Context, inboxID string, msgs []holdfast.Message) {
			pub.MessagesReceived(ctx, inboxID, msgs)
		},
	})
	if err != nil {
		return err
	}
	guard := &webhook.Guard{AllowPrivate: cfg.AllowPrivateWebhooks}
	sender := webhook.NewSender(guard, webhook.DefaultTimeout)
	defer sender.Close()
	jobOpts := []jobs.Option{
		jobs.WithSends(jobs.SendConfig{
			Store: store, Monitor: mon, Connectors: conns, Session: session, Timeout: cfg.SendTimeout,
			OnOutcome: func(ctx context.Context, s *holdfast.Send) { pub.SendChanged(ctx, s) },
		}),
		jobs.WithWebhooks(jobs.WebhookConfig{
			Store: store, Sender: sender,
			OpenSecret: func(id string, sealed []byte) ([]byte, error) { return ring.Open(sealed, webhookSecretAAD(id)) },
			OnDisabled: func(string) { pub.Invalidate() },
		}),
		jobs.WithNotify(jobs.NotifyConfig{Store: store, Notifier: ntf}),
	}
	jobs, err := b.newJobs(store, log, jobOpts...)
	if err != nil {
		return err
	}
	outbox = jobs
	pub, err = webhook.NewPublisher(webhook.PublisherConfig{Store: store, Queue: jobs, Logger: log.With("component", "webhook")})
	if err != nil {
		return err
	}
	handler, err := httpapi.NewServer(httpapi.Config{
		Store:   store,
		Health:  mon,
		Syncer:  forgetting{Syncer: syn, sources: sources},
		Sends:   jobs,
		Logger:  log,
		Metrics: m,
		Connect: consent,
		Status:  &httpapi.StatusConfig{Links: links, Reconnected: mon.Reconnected, Verify: verifyPassword(conns)},
		Webhooks: &httpapi.WebhookConfig{
			Guard: guard, Queue: jobs, Changed: pub.Invalidate,
			SealSecret: func(id, secret string) ([]byte, error) {
				return ring.Seal([]byte(secret), webhookSecretAAD(id))
			},
		},
		MailHosts: &netguard.Guard{AllowPrivate: cfg.AllowPrivateMailHosts},
		SealCredentials: func(inboxID string, c httpapi.Credentials) ([]byte, error) {
			return secrets.SealCredentials(ring, inboxID, secrets.Credentials{Password: c.Password, RefreshToken: c.RefreshToken})
		},
	})
	if err != nil {
		return err
	}
	dashKey, err := dashboardKey(&cfg)
	if err != nil {
		return err
	}
	dash, err := dashboard.New(dashboard.Config{
		Store: store, Health: mon, Logger: log.With("component", "dashboard"), SessionKey: dashKey,
		StatusURL: func(email string, now time.Time) string {
			return "/status/" + links.Sign(email, now.Add(links.Lifetime).Truncate(time.Second))
		},
	})
	if err != nil {
		return err
	}
	handler = withDashboard(handler, dash)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}

	if err := mon.Start(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("start health monitor: %w", err)
	}
	if err := jobs.Start(ctx); err != nil {
		ln.Close()
		_ = mon.Stop(context.WithoutCancel(ctx))
		return fmt.Errorf("start background jobs: %w", err)
	}
	if err := pub.Start(ctx); err != nil {
		ln.Close()
		_ = jobs.Stop(context.WithoutCancel(ctx))
		_ = mon.Stop(context.WithoutCancel(ctx))
		return fmt.Errorf("start webhook publisher: %w", err)
	}
	if err := syn.Start(ctx); err != nil {
		ln.Close()
		_ = jobs.Stop(context.WithoutCancel(ctx))
		_ = mon.Stop(context.WithoutCancel(ctx))
		return fmt.Errorf("start syncer: %w", err)
	}
	// The server goroutine is owned here: it ends when Shutdown is called
	// below, and its error comes back on serveErr.
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("holdfast serving", "addr", ln.Addr().String(), "store", b.name, "key_id", ring.ActiveID())

	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case err = <-serveErr:
		log.Error("HTTP server stopped", "err", err)
	}

	// Shut down within the timeout even if the parent context is gone.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down HTTP server: %w", err))
	}
	if err := syn.Stop(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := jobs.Stop(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stop background jobs: %w", err))
	}
	if err := mon.Stop(sctx); err != nil {
		errs = append(errs, err)
	}
	// Last, so that the events of the parts stopped above are enqueued
	// (River inserts without its client running).
	if err := pub.Stop(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("holdfast stopped")
	return nil
}

// jobRunner is the background job system as serve sees it.
type jobRunner interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Enqueue(ctx context.Context, s *holdfast.Send) error
	EnqueueDeliveries(ctx context.Context, ds []webhook.Delivery) error
	EnqueueNotice(ctx context.Context, n *holdfast.Notice) error
	EnqueueFollowUp(ctx context.Context, inboxID string, since time.Time) error
}

// webhookSecretAAD binds a webhook's sealed signing secret to its ID.
func webhookSecretAAD(webhookID string) []byte { return []byte("webhook secret " + webhookID) }

// saveRotatedToken stores an inbox's rotated refresh token at once, sealed
// to the inbox (Microsoft rotates it on every refresh), unless the owner
// reconnected since prev was read: then the new grant is kept.
func saveRotatedToken(ctx context.Context, store holdfast.Store, ring *secrets.Keyring, inboxID string, prev []byte, refreshToken string) ([]byte, error) {
	// Saved even if the request that rotated it is cancelled.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return secrets.RotateRefreshToken(sctx, store, ring, inboxID, prev, refreshToken)
}

// forgetting is the syncer as the API sees it: deleting an inbox also drops
// its cached access token.
type forgetting struct {
	httpapi.Syncer
	sources map[holdfast.Provider]*oauth.Source
}

// Remove forgets the inbox in the syncer and in every token cache.
func (f forgetting) Remove(id string) {
	f.Syncer.Remove(id)
	for _, src := range f.sources {
		src.Forget(id)
	}
}

// connectors returns the connector of each provider that can be served:
// IMAP always, Microsoft (Graph) and Google (Gmail API) when their OAuth
// client is configured (sources). Inboxes of a provider without a connector
// are stored and monitored, but not synced nor sent from.
func connectors(cfg *config.Config, sources map[holdfast.Provider]*oauth.Source, log *slog.Logger) (map[holdfast.Provider]holdfast.Connector, error) {
	var tlsConfig *tls.Config
	if cfg.MailCAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(cfg.MailCAFile)
		if err != nil {
			return nil, fmt.Errorf("--mail-ca-file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--mail-ca-file: no PEM certificate in %s", cfg.MailCAFile)
		}
		tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	conns := map[holdfast.Provider]holdfast.Connector{
		holdfast.ProviderIMAP: imap.New(imap.Config{TLSConfig: tlsConfig, Logger: log.With("component", "imap"), AllowPrivateHosts: cfg.AllowPrivateMailHosts}),
	}
	if src := sources[holdfast.ProviderMicrosoft]; src != nil {
		c, err := graph.New(graph.Config{BaseURL: cfg.GraphURL, Tokens: src, Logger: log.With("component", "graph")})
		if err != nil {
			return nil, err
		}
		conns[holdfast.ProviderMicrosoft] = c
	} else {
		log.Warn("Microsoft inboxes are not synced nor sent from: HOLDFAST_MICROSOFT_CLIENT_ID is not set")
	}
	if src := sources[holdfast.ProviderGoogle]; src != nil {
		c, err := gmail.New(gmail.Config{BaseURL: cfg.GmailURL, Tokens: src, Logger: log.With("component", "gmail")})
		if err != nil {
			return nil, err
		}
		conns[holdfast.ProviderGoogle] = c
	} else {
		log.Warn("Google inboxes are not synced nor sent from: HOLDFAST_GOOGLE_CLIENT_ID is not set")
	}
	return conns, nil
}

// The OAuth connectors tell the consent flow which account signed in.
var (
	_ httpapi.AccountReader = (*graph.Connector)(nil)
	_ httpapi.AccountReader = (*gmail.Connector)(nil)
)

// oauthSources returns the token source of each OAuth provider whose
// client ID is set, for the consent flow. With a Google OAuth URL other
// than the real one (an emulator), the consent page is served under it
// too, at /o/oauth2/v2/auth.
func oauthSources(cfg *config.Config, log *slog.Logger) (map[holdfast.Provider]*oauth.Source, error) {
	out := map[holdfast.Provider]*oauth.Source{}
	add := func(c oauth.Config) error {
		c.RedirectURL, c.Logger = cfg.RedirectURL(), log.With("component", "oauth")
		src, err := oauth.New(c)
		if err != nil {
			return fmt.Errorf("%s OAuth client: %w", c.Provider, err)
		}
		out[c.Provider] = src
		return nil
	}
	if cfg.MicrosoftClientID != "" {
		if err := add(oauth.Config{Provider: holdfast.ProviderMicrosoft, BaseURL: cfg.MicrosoftLoginURL, Tenant: cfg.MicrosoftTenant,
			ClientID: cfg.MicrosoftClientID, ClientSecret: cfg.MicrosoftClientSecret}); err != nil {
			return nil, err
		}
	}
	if cfg.GoogleClientID != "" {
		var authURL string
		if cfg.GoogleOAuthURL != config.DefaultGoogleOAuthURL {
			authURL = cfg.GoogleOAuthURL + "/o/oauth2/v2/auth"
		}
		if err := add(oauth.Config{Provider: holdfast.ProviderGoogle, BaseURL: cfg.GoogleOAuthURL, AuthURL: authURL,
			ClientID: cfg.GoogleClientID, ClientSecret: cfg.GoogleClientSecret}); err != nil {
			return nil, err
		}
	}
	log.Info("OAuth consent flow", "redirect_uri", cfg.RedirectURL(),
		"microsoft", out[holdfast.ProviderMicrosoft] != nil, "google", out[holdfast.ProviderGoogle] != nil)
	return out, nil
}

// backend is an opened store engine with what serve needs from it.
type backend struct {
	name    string
	store   holdfast.Store
	migrate func(ctx context.Context) error
	newJobs func(s holdfast.Store, log *slog.Logger, opts ...jobs.Option) (jobRunner, error)
	close   func()
}

// withDashboard serves the operators' dashboard under /ui/ and the API
// everywhere else.
func withDashboard(api, dash http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ui/", dash)
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	mux.Handle("/", api)
	return mux
}

// dashboardKey returns the dashboard's session key, derived from
// HOLDFAST_SECRET_KEY when it is set (every node accepts the sessions of
// the others), else from the status-link key file in the data directory.
func dashboardKey(cfg *config.Config) ([]byte, error) {
	if cfg.SecretKey != "" {
		return dashboard.DeriveKey([]byte(cfg.SecretKey)), nil
	}
	if err := cfg.EnsureDataDir(); err != nil {
		return nil, err
	}
	k, err := notify.LoadOrCreateKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return dashboard.DeriveKey(k), nil
}

// verifyPassword checks a password an owner typed on the status page by
// signing in with it (the IMAP connector's Verify), before it is stored.
func verifyPassword(conns map[holdfast.Provider]holdfast.Connector) func(context.Context, *holdfast.Inbox, string) error {
	return func(ctx context.Context, in *holdfast.Inbox, pw string) error {
		return conns[holdfast.ProviderIMAP].Verify(ctx, &holdfast.Session{Inbox: in, Password: pw})
	}
}

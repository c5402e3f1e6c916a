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
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/cluster"
	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/dashboard"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/httpapi"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/lifecycle"
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
	a, err := newApp(ctx, args, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.close()
	return a.run(ctx)
}

// app is holdfast serve wired: its parts, the services among them in the
// order they start, and what to close once they have stopped.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	ring    *secrets.Keyring
	backend *backend
	metrics *metrics.Metrics
	// store is the backend's store, instrumented.
	store holdfast.Store
	ntf   *notify.Notifier
	links *notify.Links
	// metricsHTTP serves /metrics alone on --metrics-listen; nil without.
	metricsHTTP *httpServer
	signing     *signingKeys
	mon         *monitor.Monitor
	sources     map[holdfast.Provider]*oauth.Source
	conns       map[holdfast.Provider]holdfast.Connector
	syn         *syncer.Syncer
	guard       *webhook.Guard
	jobs        jobRunner
	relay       *webhook.Relay
	http        *httpServer
	// member is this node's part in the cluster, bus carries signals
	// between the nodes, and router makes API calls reach the owner of
	// their inbox (wireCluster, wireRouting).
	member *cluster.Membership
	bus    cluster.Bus
	router *cluster.Router
	// leader elects the node that runs the health engine's fleet
	// detectors; nil on SQLite, whose one node is the fleet.
	leader *cluster.Leader

	// services start in this order and stop in reverse (see newApp).
	services []service
	// closers run in reverse at close, after the services stopped: the
	// store's is the first, so it closes last.
	closers []func()
}

// service is a long-running part of serve, with the name its errors carry.
type service struct {
	name string
	lifecycle.Service
}

// newApp parses serve's flags and wires every part, in small steps; it
// starts nothing. On an error it closes what it opened.
func newApp(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) (_ *app, err error) {
	a := &app{}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.cfg, a.log, err = serveConfig(args, getenv, stderr); err != nil {
		return nil, err
	}
	if a.ring, err = openKeyring(a.cfg); err != nil {
		return nil, err
	}
	if err = a.openStore(ctx); err != nil {
		return nil, err
	}
	if err = a.wireCluster(); err != nil {
		return nil, err
	}
	if err = a.wireHealth(ctx); err != nil {
		return nil, err
	}
	if err = a.wireSync(); err != nil {
		return nil, err
	}
	if err = a.wireRouting(); err != nil {
		return nil, err
	}
	if err = a.wireJobs(); err != nil {
		return nil, err
	}
	if err = a.wireHTTP(); err != nil {
		return nil, err
	}
	// The webhook relay stops last, so that the events the parts stopped
	// before it committed to the outbox are enqueued (River inserts
	// without its client running); any it cannot enqueue in time stay in
	// the outbox for the next start.
	// The monitor stops after the jobs and the syncer, which report to it,
	// and persists its last decisions. The signal bus and the cluster
	// membership (the router starts it) start before them, so that the
	// syncer loads the partitions this node holds, and stop after them, so
	// that the partitions are handed over once this node stopped syncing
	// and deciding. The HTTP server, which uses them all, starts last and
	// stops first.
	a.services = []service{
		{"signing keys", a.signing},
		{"webhook relay", a.relay},
		{"cluster signal bus", a.bus},
		{"cluster membership", a.router},
	}
	if a.leader != nil {
		// Given up after the monitor stopped deciding, so that another
		// node takes the detectors over at once.
		a.services = append(a.services, service{"cluster leader election", a.leader})
	}
	a.services = append(a.services, []service{
		{"health monitor", a.mon},
		{"background jobs", a.jobs},
		{"syncer", a.syn},
		{"HTTP server", a.http},
	}...)
	if a.metricsHTTP != nil {
		a.services = append(a.services, service{"metrics HTTP server", a.metricsHTTP})
	}
	return a, nil
}

// serveConfig parses serve's flags and environment into a configuration
// and makes its logger.
func serveConfig(args []string, getenv func(string) string, stderr io.Writer) (*config.Config, *slog.Logger, error) {
	cfg := &config.Config{}
	fs, finish := config.NewFlagSet("serve", config.FlagsStore|config.FlagsServe, cfg, getenv, stderr)
	if err := parse(fs, args, finish); err != nil {
		return nil, nil, err
	}
	log := cfg.Logger(stderr)
	if cfg.DatabaseURL != "" && cfg.SecretKey == "" {
		log.Warn("HOLDFAST_SECRET_KEY is not set: credentials are sealed with the key file in the data directory; every node on this database must use the same key")
	}
	return cfg, log, nil
}

// openStore opens and migrates the store, and instruments it.
func (a *app) openStore(ctx context.Context) error {
	b, err := openBackend(ctx, a.cfg, a.log)
	if err != nil {
		return err
	}
	a.backend = b
	a.closers = append(a.closers, b.close)
	if err := b.migrate(ctx); err != nil {
		return err
	}
	a.metrics = metrics.New()
	classify.Register(a.metrics.Registry)
	a.store = a.metrics.InstrumentStore(b.store)
	a.metrics.WatchInboxes(a.store, 10*time.Second, a.log)
	return nil
}

// wireHealth makes the notify pipeline and the health monitor. The
// syncer acts on the monitor's grants, and the webhook relay is woken by
// its decisions (whose events the store writes with them): both are made
// before the monitor starts, so that a grant or a decision always finds
// them.
func (a *app) wireHealth(ctx context.Context) error {
	var err error
	if a.signing, err = loadSigningKeys(ctx, a.cfg, a.store, a.ring, a.log); err != nil {
		return err
	}
	a.ntf, a.links, err = notifier(a.cfg, a.signing, a.store, a.wake, a.log)
	if err != nil {
		return err
	}
	engine := health.DefaultConfig().Tune(a.cfg.HealthTuning())
	a.mon, err = monitor.New(ctx, monitor.Config{
		Store: a.store, Logger: a.log.With("component", "health"), Engine: &engine,
		OnGrant: func(inboxID string, _ bool) { _ = a.syn.Now(inboxID) },
		Owns:    a.member.Owns,
		Fleet:   a.fleet(),
		AnnounceState: func(in *holdfast.Inbox, from holdfast.State) ([]holdfast.OutboxEvent, error) {
			return webhook.InboxEvents(in, from, time.Now())
		},
		AnnounceIncident: func(in *holdfast.Incident, opened bool) ([]holdfast.OutboxEvent, error) {
			return webhook.IncidentEvents(in, opened, time.Now())
		},
		AnnounceEscalation: func(in *holdfast.Incident) ([]holdfast.OutboxEvent, error) {
			return webhook.EscalationEvents(in, time.Now())
		},
		OnStateChange: a.stateChanged,
		OnIncident:    func(context.Context, *holdfast.Incident, bool) { a.relay.Wake() },
		OnNotice: func(ctx context.Context, n *holdfast.Notice) {
			// On an error the notify sweep enqueues it within a minute.
			if err := a.jobs.EnqueueNotice(ctx, n); err != nil {
				a.log.Warn("enqueue notice", "notice_id", n.ID, "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	a.metrics.Registry.MustRegister(a.mon.Collector())
	return nil
}

// wake wakes the webhook relay after a write that appended events to the
// outbox; the relay polls otherwise.
func (a *app) wake(context.Context, notify.Sent) { a.relay.Wake() }

// stateChanged wakes the webhook relay after an inbox's stored state
// change, whose events the change appended to the outbox, and tells the
// other nodes. An inbox that
// needed its owner and no longer does may get the "resolved" follow-up: at
// once when it is connected, or once it is, when an incident paused it (a
// retroactive incident).
func (a *app) stateChanged(ctx context.Context, in *holdfast.Inbox, from holdfast.State) {
	a.relay.Wake()
	a.router.StateChanged(in.ID) // the other nodes' engines re-read it
	if a.ntf.Resolved() && from.ActionRequired() != holdfast.RequireNone && in.State.ActionRequired() == holdfast.RequireNone {
		if err := a.jobs.EnqueueFollowUp(ctx, in.ID, in.Since); err != nil {
			a.log.Warn("enqueue resolved follow-up", "inbox_id", in.ID, "err", err)
		}
	}
}

// wireSync makes the OAuth token sources, the connectors and the syncer.
func (a *app) wireSync() error {
	var err error
	if a.sources, err = oauthSources(a.cfg, a.log); err != nil {
		return err
	}
	if a.conns, err = connectors(a.cfg, a.sources, a.log); err != nil {
		return err
	}
	a.syn, err = syncer.New(syncer.Config{
		Store: a.store, Monitor: a.mon, Connectors: a.conns, Session: a.session,
		Interval: a.cfg.SyncInterval, Concurrency: a.cfg.SyncConcurrency,
		Logger: a.log.With("component", "sync"),
		AnnounceMessages: func(inboxID string, msgs []holdfast.Message) ([]holdfast.OutboxEvent, error) {
			return webhook.MessageEvents(inboxID, msgs, time.Now())
		},
		OnMessages: func(context.Context, string, []holdfast.Message) { a.relay.Wake() },
		Owns:       a.member.Owns,
	})
	if err != nil {
		return err
	}
	a.metrics.Registry.MustRegister(a.syn.Collector())
	return nil
}

// wireCluster makes this node's cluster membership and the signal bus:
// on PostgreSQL the bus is LISTEN/NOTIFY on the store's schema channel,
// on SQLite (one node, which holds every partition) a local one.
func (a *app) wireCluster() error {
	var err error
	a.member, err = cluster.New(cluster.Config{
		Store: a.store, Logger: a.log.With("component", "cluster"),
		Node: a.cfg.Node, Lease: a.cfg.ClusterLease,
		// The router exists once the membership starts (it starts it).
		OnChange: func(gained, lost []int) { a.router.OnChange(gained, lost) },
	})
	if err != nil {
		return err
	}
	if ch, ok := a.backend.store.(cluster.Channel); ok {
		a.bus = cluster.NewChannelBus(ch, a.member.Node(), a.log)
	} else {
		a.bus = cluster.NewLocalBus(a.member.Node(), a.log)
	}
	a.metrics.Registry.MustRegister(a.member.Collector())
	if _, ok := a.backend.store.(cluster.Channel); ok {
		a.leader, err = cluster.NewLeader(cluster.LeaderConfig{Store: a.store, Logger: a.log.With("component", "cluster"),
			Node: a.member.Node(), Lease: a.cfg.ClusterLease})
		if err != nil {
			return err
		}
		a.metrics.SetClusterInfo(a.member.Node(), a.leader.IsLeader)
	} else {
		a.metrics.SetClusterInfo(a.member.Node(), func() bool { return true })
	}
	a.log.Info("cluster node", "node", a.member.Node(), "lease", a.cfg.ClusterLease)
	return nil
}

// fleet is the health monitor's part as one node of several: on
// PostgreSQL, any number of nodes may share the database, so the engine
// follows the elected leader's incidents and the fleet's budget; nil on
// SQLite.
func (a *app) fleet() *monitor.FleetConfig {
	if a.leader == nil {
		return nil
	}
	return &monitor.FleetConfig{Store: a.store, Node: a.member.Node(), Leading: a.leader.IsLeader,
		LeaderKnown: func() bool { _, ok := a.leader.Current(); return ok }}
}

// wireRouting makes the router through which the API's create, delete,
// sync-now and reconnect reach every node, or the inbox's owner.
func (a *app) wireRouting() error {
	var err error
	a.router, err = cluster.NewRouter(cluster.RouterConfig{
		Bus: a.bus, Membership: a.member, Store: a.store, Health: a.mon, Syncer: a.syn,
		Logger: a.log,
		Synced: func(p holdfast.Provider) bool { return a.conns[p] != nil },
		// Deleting an inbox also drops its cached access token, on every
		// node.
		OnDeleted: func(id string) {
			for _, src := range a.sources {
				src.Forget(id)
			}
		},
	})
	return err
}

// routedHealth is the health monitor as the API drives it: created and
// deleted inboxes go through the router, which tells the other nodes.
type routedHealth struct {
	*monitor.Monitor
	router *cluster.Router
}

// AddInbox implements httpapi.Health.
func (h routedHealth) AddInbox(in *holdfast.Inbox) error { return h.router.AddInbox(in) }

// Release implements httpapi.Health: the held action's owner lets it go.
func (h routedHealth) Release(ctx context.Context, id int64) error { return h.router.Release(ctx, id) }

// RemoveInbox implements httpapi.Health.
func (h routedHealth) RemoveInbox(id string) { h.router.RemoveInbox(id) }

// session opens an inbox's credentials for a connector. A rotated refresh
// token is saved at once (saveRotatedToken).
func (a *app) session(_ context.Context, in *holdfast.Inbox) (*holdfast.Session, error) {
	c, err := secrets.OpenCredentials(a.ring, in.ID, in.Credentials)
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
			sealed, err := saveRotatedToken(ctx, a.store, a.ring, in.ID, prev, refreshToken)
			if errors.Is(err, secrets.ErrSuperseded) {
				a.log.InfoContext(ctx, "rotated refresh token not saved: the inbox was reconnected meanwhile", "inbox_id", in.ID)
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

// wireJobs makes the background job runner, with its sends, webhook
// deliveries and notices, and the webhook relay, which enqueues the
// deliveries of the events in the outbox.
func (a *app) wireJobs() error {
	a.guard = &webhook.Guard{AllowPrivate: a.cfg.AllowPrivateWebhooks}
	sender := webhook.NewSender(a.guard, webhook.DefaultTimeout)
	a.closers = append(a.closers, sender.Close)
	opts := []jobs.Option{
		jobs.WithSends(jobs.SendConfig{
			Store: a.store, Monitor: a.mon, Connectors: a.conns, Session: a.session, Timeout: a.cfg.SendTimeout,
			Announce:  func(s *holdfast.Send) ([]holdfast.OutboxEvent, error) { return webhook.SendEvents(s, time.Now()) },
			OnOutcome: func(context.Context, *holdfast.Send) { a.relay.Wake() },
		}),
		jobs.WithWebhooks(jobs.WebhookConfig{
			Store: a.store, Sender: sender,
			OpenSecret: func(id string, sealed []byte) ([]byte, error) { return a.ring.Open(sealed, webhookSecretAAD(id)) },
			OnDisabled: func(string) { a.relay.Invalidate() },
		}),
		jobs.WithNotify(jobs.NotifyConfig{Store: a.store, Notifier: a.ntf}),
	}
	var err error
	if a.jobs, err = a.backend.newJobs(a.store, a.log, opts...); err != nil {
		return err
	}
	a.relay, err = webhook.NewRelay(webhook.RelayConfig{Store: a.store, Queue: a.jobs, Logger: a.log.With("component", "webhook")})
	if err != nil {
		return err
	}
	a.metrics.Registry.MustRegister(a.relay.Collector())
	return nil
}

// wireHTTP makes the API and the dashboard, and listens on --listen: a
// taken address fails serve before any service starts.
func (a *app) wireHTTP() error {
	api, err := a.api()
	if err != nil {
		return err
	}
	dash, err := dashboard.New(dashboard.Config{
		Store: a.store, Health: routedHealth{Monitor: a.mon, router: a.router}, Logger: a.log.With("component", "dashboard"),
		SessionKeysFunc: a.signing.sessionKeys,
		StatusURL: func(email string, now time.Time) string {
			return "/status/" + a.links.Sign(email, now.Add(a.links.Lifetime).Truncate(time.Second))
		},
	})
	if err != nil {
		return err
	}
	if a.http, err = listenHTTP(a.cfg.Listen, withDashboard(api, dash)); err != nil {
		return err
	}
	if a.cfg.MetricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.Handler())
		if a.metricsHTTP, err = listenHTTP(a.cfg.MetricsListen, mux); err != nil {
			a.http.ln.Close()
			return fmt.Errorf("--metrics-listen: %w", err)
		}
	}
	return nil
}

// api makes the HTTP API's handler.
func (a *app) api() (http.Handler, error) {
	consent := &httpapi.ConnectConfig{Providers: map[holdfast.Provider]httpapi.OAuthProvider{},
		Accounts: map[holdfast.Provider]httpapi.AccountReader{}, Health: a.router}
	for p, src := range a.sources {
		consent.Providers[p] = src
		if ar, ok := a.conns[p].(httpapi.AccountReader); ok {
			consent.Accounts[p] = ar
		}
	}
	return httpapi.NewServer(httpapi.Config{
		Store:   a.store,
		Health:  routedHealth{Monitor: a.mon, router: a.router},
		Syncer:  a.router,
		Sends:   a.jobs,
		Logger:  a.log,
		Metrics: a.metrics,
		// With --metrics-listen, /metrics is only there.
		MetricsElsewhere: a.cfg.MetricsListen != "",
		Connect:          consent,
		Status:           &httpapi.StatusConfig{Links: a.links, Reconnected: a.router.Reconnected, Verify: verifyPassword(a.conns)},
		Webhooks: &httpapi.WebhookConfig{
			Guard: a.guard, Wake: a.relay.Wake, Changed: a.relay.Invalidate,
			SealSecret: func(id, secret string) ([]byte, error) {
				return a.ring.Seal([]byte(secret), webhookSecretAAD(id))
			},
		},
		MailHosts: &netguard.Guard{AllowPrivate: a.cfg.AllowPrivateMailHosts},
		SealCredentials: func(inboxID string, c httpapi.Credentials) ([]byte, error) {
			return secrets.SealCredentials(a.ring, inboxID, secrets.Credentials{Password: c.Password, RefreshToken: c.RefreshToken})
		},
	})
}

// run starts the services in order, serves until ctx ends or the HTTP
// server fails, then stops them in reverse within the shutdown timeout. A
// service that fails to start stops the ones started before it.
func (a *app) run(ctx context.Context) error {
	g := lifecycle.Group{StopTimeout: a.cfg.ShutdownTimeout}
	// The services stopped before the health monitor (the jobs may wait
	// for a send) end a share of the budget early, which the monitor keeps
	// to write its queue and final state before the store closes.
	reserve, early := a.cfg.ShutdownTimeout/3, false
	for _, s := range a.services {
		svc := s.Service
		if early {
			svc = earlyStop{Service: svc, reserve: reserve}
		}
		if m, ok := s.Service.(*monitor.Monitor); ok && m == a.mon {
			early = true
		}
		g.Add(s.name, svc)
	}
	if err := g.Start(ctx); err != nil {
		return err
	}
	if a.metricsHTTP != nil {
		a.log.Info("metrics served apart", "metrics_addr", a.metricsHTTP.addr())
	}
	a.log.Info("holdfast serving", "addr", a.http.addr(), "store", a.backend.name, "key_id", a.ring.ActiveID())

	var err error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down", "cause", context.Cause(ctx))
	case err = <-a.http.failed:
		a.log.Error("HTTP server stopped", "err", err)
	case err = <-a.metricsFailed():
		a.log.Error("metrics HTTP server stopped", "err", err)
	}
	// Shut down within the timeout even if the parent context is gone.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := errors.Join(err, g.Stop(sctx)); err != nil {
		return err
	}
	a.log.Info("holdfast stopped")
	return nil
}

// earlyStop stops a service reserve before the deadline of its stop
// context, leaving the rest to the services stopped after it.
type earlyStop struct {
	lifecycle.Service
	reserve time.Duration
}

// Stop implements lifecycle.Service.
func (s earlyStop) Stop(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-s.reserve))
		defer cancel()
	}
	return s.Service.Stop(ctx)
}

// metricsFailed reports the metrics listener's failure; it never
// delivers without --metrics-listen.
func (a *app) metricsFailed() <-chan error {
	if a.metricsHTTP == nil {
		return nil
	}
	return a.metricsHTTP.failed
}

// close runs the closers in reverse: the store closes last.
func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// jobRunner is the background job system as serve sees it.
type jobRunner interface {
	lifecycle.Service
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
func saveRotatedToken(ctx context.Context, store holdfast.InboxStore, ring *secrets.Keyring, inboxID string, prev []byte, refreshToken string) ([]byte, error) {
	// Saved even if the request that rotated it is cancelled.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return secrets.RotateRefreshToken(sctx, store, ring, inboxID, prev, refreshToken)
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

// verifyPassword checks a password an owner typed on the status page by
// signing in with it (the IMAP connector's Verify), before it is stored.
func verifyPassword(conns map[holdfast.Provider]holdfast.Connector) func(context.Context, *holdfast.Inbox, string) error {
	return func(ctx context.Context, in *holdfast.Inbox, pw string) error {
		return conns[holdfast.ProviderIMAP].Verify(ctx, &holdfast.Session{Inbox: in, Password: pw})
	}
}

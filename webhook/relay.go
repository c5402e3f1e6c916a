package webhook

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/lifecycle"
)

// Queue enqueues durable delivery jobs: jobs.Runner on River. One job per
// (WebhookID, EventID, Replay): enqueuing one twice makes one job.
type Queue interface {
	EnqueueDeliveries(ctx context.Context, ds []Delivery) error
}

// Store is the aggregates a Relay uses: the webhooks and the outbox, and
// the lock that lets one node's relay at a time work.
type Store interface {
	holdfast.WebhookStore
	holdfast.LockStore
}

// RelayLock is the name of the store lock (holdfast.LockStore) a relay
// holds while it moves events from the outbox to jobs: one node at a time.
const RelayLock = "webhook relay"

var _ Store = holdfast.Store(nil)

// The defaults of RelayConfig's zero fields.
const (
	DefaultCacheTTL     = 5 * time.Second
	DefaultPollInterval = time.Second
	DefaultRetention    = 7 * 24 * time.Hour
	DefaultBatchSize    = 100
	// passTimeout bounds one read, enqueue and mark of a batch.
	passTimeout = 30 * time.Second
	// pruneEvery is how often relayed events past the retention are
	// deleted.
	pruneEvery = time.Hour
)

// RelayConfig holds a Relay's dependencies and parameters.
type RelayConfig struct {
	Store  Store
	Queue  Queue
	Logger *slog.Logger
	Clock  holdfast.Clock
	// CacheTTL is how long the list of webhooks is reused; zero means
	// DefaultCacheTTL. Invalidate drops it at once; webhooks created on
	// another node take up to CacheTTL to receive events here.
	CacheTTL time.Duration
	// PollInterval is how often the outbox is read when no local write
	// woke the relay (events written by other nodes); zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Retention is how long relayed events stay in the outbox; zero
	// means DefaultRetention.
	Retention time.Duration
	// BatchSize is the most events one pass reads and enqueues; zero
	// means DefaultBatchSize.
	BatchSize int
}

// Relay moves webhook events from the store's outbox to delivery jobs.
// Every announcing write appends its events to the outbox in its own
// transaction (OutboxEvents and its kin build them); the Relay's goroutine
// (Start, Stop) reads the unrelayed ones in order, enqueues one delivery
// job per event and subscribed webhook (one job for a replay, to its
// webhook), and then marks them relayed. Nothing waits in memory: an event
// committed is relayed, by this process or, after a crash, by the next
// one. A crash between the enqueue and the mark relays the batch again,
// which the jobs' uniqueness absorbs: delivery is at least once, and
// receivers de-duplicate by event ID.
//
// Every node runs a Relay, but one at a time works: a pass holds the
// store's RelayLock, and a relay that finds it held leaves the outbox to
// the holder and tries again at its next poll. So events are enqueued
// once, in outbox order, whichever node wrote them; when the holder stops
// (or dies, and its connection with it) another node's relay takes over
// at its next poll.
type Relay struct {
	cfg  RelayConfig
	log  *slog.Logger
	wake chan struct{}

	// pass holds one token: one pass at a time, the goroutine's or
	// Stop's, taken within a context.
	pass chan struct{}
	// stopping is closed when Stop begins: the goroutine's pass ends after
	// the batch it is in, and the goroutine starts no other.
	stopping chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex // guards the cache
	hooks    []*holdfast.Webhook
	loadedAt time.Time

	relayed  prometheus.Counter
	lag      prometheus.Histogram
	failures prometheus.Counter

	owner lifecycle.Owner
}

var _ lifecycle.Service = (*Relay)(nil)

// NewRelay returns a Relay; Start it to relay.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Store == nil || cfg.Queue == nil || cfg.Logger == nil {
		return nil, errors.New("webhook: Store, Queue and Logger are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	return &Relay{
		cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1),
		pass: make(chan struct{}, 1), stopping: make(chan struct{}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "holdfast_webhook_events_relayed_total",
			Help: "Webhook events moved from the outbox to delivery jobs.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "holdfast_webhook_relay_lag_seconds",
			Help:    "Time from a webhook event's creation to its relay from the outbox to delivery jobs.",
			Buckets: []float64{.01, .05, .1, .5, 1, 2, 5, 10, 30, 60, 300},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "holdfast_webhook_relay_failures_total",
			Help: "Relay passes that failed (the store or the job queue refused); their events stay in the outbox and are relayed again.",
		}),
	}, nil
}

// Collector returns a Prometheus collector of the relay's metrics: events
// relayed, their lag, and failed passes.
func (r *Relay) Collector() prometheus.Collector { return relayCollector{r} }

type relayCollector struct{ r *Relay }

func (c relayCollector) Describe(ch chan<- *prometheus.Desc) {
	c.r.relayed.Describe(ch)
	c.r.lag.Describe(ch)
	c.r.failures.Describe(ch)
}

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.relayed.Collect(ch)
	c.r.lag.Collect(ch)
	c.r.failures.Collect(ch)
}

// Wake makes the relay read the outbox at once: call it after a write
// that appended events. It never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default: // a wake is pending already
	}
}

// Invalidate makes the next pass read the list of webhooks again: call
// it when one is created, deleted or disabled.
func (r *Relay) Invalidate() {
	r.mu.Lock()
	r.loadedAt = time.Time{}
	r.mu.Unlock()
}

// Start starts the Relay's goroutine, which relays at once, then when
// woken and every PollInterval, and prunes the outbox every hour, until
// Stop (lifecycle.Service).
func (r *Relay) Start(ctx context.Context) error {
	return r.owner.Start(ctx, func(run context.Context) error {
		r.owner.Go(func() { r.loop(run) })
		return nil
	})
}

// Stop relays what is committed, within ctx, and ends the goroutine: the
// goroutine's pass ends after the batch it is in (so that no batch is
// enqueued twice), then Stop relays the rest until none is left or ctx
// ends, unless another node's relay holds RelayLock (it relays them).
// Events it cannot relay in time stay in the outbox for another node or
// the next start. It is safe to call before Start and more than once.
func (r *Relay) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stopping) })
	return r.owner.Stop(ctx, func(ctx context.Context) error {
		if err := r.Flush(ctx); err != nil {
			r.log.WarnContext(ctx, "webhook events left in the outbox at shutdown; the next start relays them", "err", err)
		}
		return nil
	})
}

// loop relays until run ends.
func (r *Relay) loop(run context.Context) {
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	var pruned, warned time.Time
	for {
		// While the store or the queue refuses, the events wait in the
		// outbox; say so once a minute, not on every poll.
		err := r.flush(run, r.stopping)
		switch now := time.Now(); {
		case err == nil || run.Err() != nil:
			warned = time.Time{}
		case now.Sub(warned) >= time.Minute:
			r.log.WarnContext(run, "relay webhook events; they wait in the outbox, retrying", "err", err)
			warned = now
		}
		if now := r.cfg.Clock.Now(); now.Sub(pruned) >= pruneEvery {
			r.prune(run, now)
			pruned = now
		}
		select {
		case <-run.Done():
			return
		case <-r.stopping:
			return
		case <-r.wake:
		case <-poll.C:
		}
	}
}

// Flush relays every event committed to the outbox, batch by batch, until
// none is left or ctx ends. An error leaves the batch unrelayed, for the
// next pass. If another node's relay holds RelayLock, Flush leaves the
// outbox to it and returns nil.
func (r *Relay) Flush(ctx context.Context) error { return r.flush(ctx, nil) }

// flush is Flush, which also ends, between two batches, once stop is
// closed.
func (r *Relay) flush(ctx context.Context, stop <-chan struct{}) error {
	select {
	case r.pass <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.pass }()
	release, ok, err := r.cfg.Store.TryLock(ctx, RelayLock)
	if err != nil {
		r.failures.Inc()
		return err
	}
	if !ok {
		return nil // another node relays
	}
	defer release()
	for ctx.Err() == nil {
		select {
		case <-stop:
			return nil
		default:
		}
		n, err := r.relayBatch(ctx)
		if err != nil {
			r.failures.Inc()
			return err
		}
		if n < r.cfg.BatchSize {
			return nil
		}
	}
	return ctx.Err()
}

// relayBatch relays one batch and returns how many events it read.
func (r *Relay) relayBatch(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, passTimeout)
	defer cancel()
	evs, err := r.cfg.Store.OutboxEvents(ctx, r.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	if len(evs) == 0 {
		return 0, nil
	}
	ds, err := r.deliveries(ctx, evs)
	if err != nil {
		return 0, err
	}
	if len(ds) > 0 {
		if err := r.cfg.Queue.EnqueueDeliveries(ctx, ds); err != nil {
			return 0, err
		}
	}
	seqs := make([]int64, len(evs))
	for i, ev := range evs {
		seqs[i] = ev.Seq
	}
	now := r.cfg.Clock.Now()
	if err := r.cfg.Store.MarkRelayed(ctx, seqs, now); err != nil {
		return 0, err
	}
	for _, ev := range evs {
		r.lag.Observe(max(now.Sub(ev.CreatedAt), 0).Seconds())
	}
	r.relayed.Add(float64(len(evs)))
	return len(evs), nil
}

// deliveries returns the deliveries of evs: each event to every webhook
// subscribed to its type, or a targeted one (a replay) to its webhook.
func (r *Relay) deliveries(ctx context.Context, evs []*holdfast.OutboxEvent) ([]Delivery, error) {
	hooks, err := r.webhooks(ctx)
	if err != nil {
		return nil, err
	}
	var ds []Delivery
	for _, ev := range evs {
		d := Delivery{EventID: ev.ID, EventType: ev.Type, Payload: ev.Payload, Since: ev.CreatedAt, Replay: ev.Replay}
		if ev.WebhookID != "" {
			w, err := r.cfg.Store.Webhook(ctx, ev.WebhookID)
			if errors.Is(err, holdfast.ErrNotFound) {
				continue // deleted since the replay
			}
			if err != nil {
				return nil, err
			}
			if !w.Disabled() {
				d.WebhookID = w.ID
				ds = append(ds, d)
			}
			continue
		}
		for _, w := range hooks {
			if Subscribed(w, ev.Type) {
				d.WebhookID = w.ID
				ds = append(ds, d)
			}
		}
	}
	return ds, nil
}

// webhooks returns the cached list of webhooks, reloading it when stale.
func (r *Relay) webhooks(ctx context.Context) ([]*holdfast.Webhook, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.loadedAt.IsZero() && now.Sub(r.loadedAt) < r.cfg.CacheTTL {
		return r.hooks, nil
	}
	hooks, err := r.cfg.Store.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	r.hooks, r.loadedAt = hooks, now
	return hooks, nil
}

// prune deletes the events relayed more than Retention before now.
func (r *Relay) prune(ctx context.Context, now time.Time) {
	n, err := r.cfg.Store.PruneOutbox(ctx, now.Add(-r.cfg.Retention))
	if err != nil && ctx.Err() == nil {
		r.log.WarnContext(ctx, "prune the webhook outbox", "err", err)
	}
	if n > 0 {
		r.log.InfoContext(ctx, "webhook outbox pruned", "events", n)
	}
}

package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/lifecycle"
)

// Queue enqueues durable delivery jobs: jobs.Runner on River. One job per
// (WebhookID, EventID, Replay): enqueuing one twice makes one job.
type Queue interface {
	EnqueueDeliveries(ctx context.Context, ds []Delivery) error
}

// Store is the aggregate a Publisher reads: the webhooks.
type Store interface {
	holdfast.WebhookStore
}

var _ Store = holdfast.Store(nil)

// The defaults of PublisherConfig's zero fields.
const (
	DefaultQueueSize = 10_000
	DefaultCacheTTL  = 5 * time.Second
	// batchSize is the most events one enqueue carries.
	batchSize = 100
	// enqueueTimeout bounds one enqueue, and enqueueTries the tries of a
	// batch before its events are dropped.
	enqueueTimeout = 10 * time.Second
	enqueueTries   = 3
)

// PublisherConfig holds a Publisher's dependencies and parameters.
type PublisherConfig struct {
	Store  Store
	Queue  Queue
	Logger *slog.Logger
	Clock  holdfast.Clock
	// QueueSize bounds the events waiting to be fanned out; zero means
	// DefaultQueueSize. Publish drops (and logs) events beyond it.
	QueueSize int
	// CacheTTL is how long the list of webhooks is reused; zero means
	// DefaultCacheTTL. Invalidate drops it at once; webhooks created on
	// another node take up to CacheTTL to receive events here.
	CacheTTL time.Duration
}

// Publisher fans events out to the webhooks subscribed to them. Publish
// never blocks: events wait on a bounded in-memory queue, from which the
// Publisher's goroutine (Start, Stop) enqueues delivery jobs in batches.
// An event still in memory when the process dies is lost; once its jobs
// are enqueued it is durable.
type Publisher struct {
	cfg    PublisherConfig
	log    *slog.Logger
	events chan Event

	mu       sync.Mutex // guards the cache
	hooks    []*holdfast.Webhook
	loadedAt time.Time

	dropped atomic.Int64

	owner lifecycle.Owner
}

var _ lifecycle.Service = (*Publisher)(nil)

// NewPublisher returns a Publisher; Start it to deliver.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Store == nil || cfg.Queue == nil || cfg.Logger == nil {
		return nil, errors.New("webhook: Store, Queue and Logger are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	return &Publisher{cfg: cfg, log: cfg.Logger, events: make(chan Event, cfg.QueueSize)}, nil
}

// Publish queues ev for its subscribers and returns at once. When the
// queue is full the event is dropped and logged: the hot paths that
// publish (syncs, sends, health decisions) never wait for webhooks.
func (p *Publisher) Publish(ctx context.Context, ev Event) {
	select {
	case p.events <- ev:
	default:
		n := p.dropped.Add(1)
		p.log.ErrorContext(ctx, "webhook event dropped: the publish queue is full", "event_id", ev.ID, "type", ev.Type, "dropped_total", n)
	}
}

// Dropped returns how many events Publish dropped.
func (p *Publisher) Dropped() int64 { return p.dropped.Load() }

// Invalidate makes the next event read the list of webhooks again: call
// it when one is created, deleted or disabled.
func (p *Publisher) Invalidate() {
	p.mu.Lock()
	p.loadedAt = time.Time{}
	p.mu.Unlock()
}

// Start starts the Publisher's goroutine, which runs until Stop
// (lifecycle.Service).
func (p *Publisher) Start(ctx context.Context) error {
	return p.owner.Start(ctx, func(run context.Context) error {
		p.owner.Go(func() {
			for {
				select {
				case <-run.Done():
					return
				case ev := <-p.events:
					p.fanOut(run, p.batch(ev))
				}
			}
		})
		return nil
	})
}

// Stop ends the goroutine, then enqueues the events still queued, within
// ctx. It is safe to call before Start (it then only enqueues) and more
// than once.
func (p *Publisher) Stop(ctx context.Context) error {
	err := p.owner.Stop(ctx, nil)
	for err == nil && ctx.Err() == nil && p.enqueueOne(ctx) {
	}
	if n := len(p.events); n > 0 {
		p.log.Warn("webhook events not enqueued at shutdown", "count", n)
	}
	return err
}

// enqueueOne enqueues the deliveries of one batch of queued events, and
// reports whether there was one.
func (p *Publisher) enqueueOne(ctx context.Context) bool {
	select {
	case ev := <-p.events:
		p.fanOut(ctx, p.batch(ev))
		return true
	default:
		return false
	}
}

// batch returns first and the events queued behind it, at most batchSize.
func (p *Publisher) batch(first Event) []Event {
	evs := []Event{first}
	for len(evs) < batchSize {
		select {
		case ev := <-p.events:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
	return evs
}

// webhooks returns the cached list of webhooks, reloading it when stale.
func (p *Publisher) webhooks(ctx context.Context) ([]*holdfast.Webhook, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !p.loadedAt.IsZero() && now.Sub(p.loadedAt) < p.cfg.CacheTTL {
		return p.hooks, nil
	}
	hooks, err := p.cfg.Store.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	p.hooks, p.loadedAt = hooks, now
	return hooks, nil
}

// fanOut enqueues one delivery per event and subscribed webhook.
func (p *Publisher) fanOut(ctx context.Context, evs []Event) {
	var ds []Delivery
	for try := 1; ; try++ {
		lctx, cancel := context.WithTimeout(ctx, enqueueTimeout)
		hooks, err := p.webhooks(lctx)
		if err == nil {
			ds = ds[:0]
			for _, ev := range evs {
				ds = p.deliveries(ctx, hooks, ev, ds)
			}
			if len(ds) > 0 {
				err = p.cfg.Queue.EnqueueDeliveries(lctx, ds)
			}
		}
		cancel()
		if err == nil {
			return
		}
		if try == enqueueTries || ctx.Err() != nil {
			p.log.ErrorContext(ctx, "webhook events dropped: cannot enqueue their deliveries", "events", len(evs), "err", err)
			return
		}
		p.log.WarnContext(ctx, "enqueue webhook deliveries; retrying", "events", len(evs), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try) * time.Second):
		}
	}
}

// deliveries appends to ds the deliveries of ev to the subscribed hooks.
func (p *Publisher) deliveries(ctx context.Context, hooks []*holdfast.Webhook, ev Event, ds []Delivery) []Delivery {
	var payload []byte
	for _, w := range hooks {
		if !Subscribed(w, ev.Type) {
			continue
		}
		if payload == nil {
			var err error
			if payload, err = json.Marshal(ev); err != nil {
				p.log.ErrorContext(ctx, "webhook event cannot be encoded; dropped", "event_id", ev.ID, "type", ev.Type, "err", err)
				return ds
			}
		}
		ds = append(ds, Delivery{WebhookID: w.ID, EventID: ev.ID, EventType: ev.Type, Payload: payload, Since: ev.CreatedAt})
	}
	return ds
}

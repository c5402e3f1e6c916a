package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/holdfast/holdfast/lifecycle"
)

// SignalKind names what a Signal tells the nodes. The kinds are a closed
// vocabulary: add one here, with its meaning, before publishing it.
type SignalKind string

// The signal kinds.
const (
	// InboxCreated: the inbox with the signal's ID was created; every node
	// registers it with its health engine, and its owner schedules it.
	InboxCreated SignalKind = "inbox_created"
	// InboxDeleted: the inbox with the signal's ID was deleted; every node
	// forgets it.
	InboxDeleted SignalKind = "inbox_deleted"
	// SyncNow: the owner of the inbox with the signal's ID syncs it at once.
	SyncNow SignalKind = "sync_now"
	// Reconnected: the inbox with the signal's ID was reconnected (its new
	// credentials and its move to connected are stored); its owner brings
	// its engine state in line with the store, then syncs it at once.
	Reconnected SignalKind = "reconnected"
	// InboxStateChanged: the owner of the inbox with the signal's ID
	// stored a change of its state; the other nodes' engines, which drop
	// their own decisions about it, re-read it from the store (a send
	// runs on any node, and asks its engine first).
	InboxStateChanged SignalKind = "inbox_state_changed"
	// HeldRelease asks the owner of a held action's inbox to let it go
	// ahead (an operator released it through another node); ID is the held
	// action's ID, in decimal.
	HeldRelease SignalKind = "held_release"
	// Resync is local only, never published: the bus delivers it to this
	// node's subscribers after its listener connected again, since signals
	// published meanwhile may have been missed. Its ID is empty.
	Resync SignalKind = "resync"
)

// Signal is one message on the bus.
type Signal struct {
	Kind SignalKind `json:"kind"`
	// ID is what the signal is about: an inbox ID for the inbox kinds.
	ID string `json:"id,omitempty"`
	// From is the node that published it (Membership.Node); the bus sets
	// it.
	From string `json:"from"`
}

// Handler receives the signals of one kind. Handlers run one at a time,
// in the order the signals arrived, on the bus's delivery goroutine: they
// must be quick and bound their own calls. ctx ends when the bus stops.
type Handler func(ctx context.Context, s Signal)

// Bus carries signals between the nodes of a cluster. Every published
// signal is delivered once to the subscribers of every node that is
// listening, the publishing node included (through the same path as the
// others, so handlers see one order); handlers must therefore be
// idempotent, and may tell their own node's signals by From. Delivery is
// at most once: a node that was not listening misses the signal, and gets
// a Resync once it listens again. A Bus is a lifecycle.Service; Subscribe
// before Start.
type Bus interface {
	lifecycle.Service
	// Publish sends s to every node; the bus sets s.From. Resync cannot be
	// published.
	Publish(ctx context.Context, s Signal) error
	// Subscribe registers h for the signals of kind k. It must be called
	// before Start.
	Subscribe(k SignalKind, h Handler)
}

// ErrBusStopped is returned by Publish on a bus that has stopped.
var ErrBusStopped = errors.New("cluster: the signal bus has stopped")

// handlers is the subscribers of a bus, by kind, and the delivery to them.
type handlers struct {
	mu     sync.Mutex // guards m, which is read-only once started
	m      map[SignalKind][]Handler
	frozen bool
}

func (h *handlers) subscribe(k SignalKind, f Handler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.frozen {
		panic("cluster: Subscribe after the bus started")
	}
	if h.m == nil {
		h.m = map[SignalKind][]Handler{}
	}
	h.m[k] = append(h.m[k], f)
}

// freeze ends subscription; deliver may then read m without the lock.
func (h *handlers) freeze() {
	h.mu.Lock()
	h.frozen = true
	h.mu.Unlock()
}

func (h *handlers) deliver(ctx context.Context, s Signal) {
	for _, f := range h.m[s.Kind] {
		f(ctx, s)
	}
}

// checkPublish validates a signal to publish.
func checkPublish(s Signal) error {
	if s.Kind == "" || s.Kind == Resync {
		return fmt.Errorf("cluster: cannot publish a signal of kind %q", s.Kind)
	}
	return nil
}

// localQueue bounds the signals a LocalBus holds undelivered.
const localQueue = 4096

// LocalBus is the Bus of a single node (SQLite): it delivers what this
// node publishes to this node's subscribers, from its own goroutine.
type LocalBus struct {
	node string
	log  *slog.Logger
	subs handlers
	q    chan Signal

	owner lifecycle.Owner
	mu    sync.Mutex // guards stopped
	// stopped is set at Stop: Publish then fails.
	stopped bool
}

var _ Bus = (*LocalBus)(nil)

// NewLocalBus returns a LocalBus for node (Membership.Node).
func NewLocalBus(node string, log *slog.Logger) *LocalBus {
	return &LocalBus{node: node, log: log, q: make(chan Signal, localQueue)}
}

// Subscribe implements Bus.
func (b *LocalBus) Subscribe(k SignalKind, h Handler) { b.subs.subscribe(k, h) }

// Publish implements Bus: the signal is queued for this node's
// subscribers. A full queue (a stuck handler) drops it, with an error.
func (b *LocalBus) Publish(ctx context.Context, s Signal) error {
	if err := checkPublish(s); err != nil {
		return err
	}
	s.From = b.node
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return ErrBusStopped
	}
	select {
	case b.q <- s:
		return nil
	default:
		return fmt.Errorf("cluster: publish %s: the local signal queue is full", s.Kind)
	}
}

// Start implements lifecycle.Service: it starts the delivery goroutine.
func (b *LocalBus) Start(ctx context.Context) error {
	return b.owner.Start(ctx, func(run context.Context) error {
		b.subs.freeze()
		b.owner.Go(func() {
			for {
				select {
				case <-run.Done():
					return
				case s := <-b.q:
					b.subs.deliver(run, s)
				}
			}
		})
		return nil
	})
}

// Stop implements lifecycle.Service. Signals not yet delivered are
// dropped.
func (b *LocalBus) Stop(ctx context.Context) error {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	return b.owner.Stop(ctx, nil)
}

// Channel is a database's notification channel, as a ChannelBus uses it
// (postgres.Store's Notify and Listen: LISTEN/NOTIFY on a channel named
// after the store's schema).
type Channel interface {
	// Notify sends payload to every listener of the channel, within ctx.
	Notify(ctx context.Context, payload string) error
	// Listen holds one connection listening on the channel: it calls
	// listening once it listens, then deliver with each payload received,
	// in order, until ctx ends or the connection fails; it returns the
	// error (ctx's once it ends).
	Listen(ctx context.Context, listening func(), deliver func(payload string)) error
}

// The timing of a ChannelBus.
const (
	// publishTimeout bounds one Notify.
	publishTimeout = 5 * time.Second
	// firstListenWait is how long Start waits for the first LISTEN.
	firstListenWait = 10 * time.Second
	// minBackoff and maxBackoff bound the wait before listening again
	// after the connection failed; it doubles at each failure in a row.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// ChannelBus is the Bus of a cluster on one database: signals travel as
// JSON payloads on the database's notification channel (Channel). A
// dedicated connection listens; when it fails the bus listens again with
// backoff, and once it does delivers a Resync to this node's subscribers.
type ChannelBus struct {
	ch   Channel
	node string
	log  *slog.Logger
	subs handlers

	owner lifecycle.Owner
	// Start waits on first until the first LISTEN, within firstListenWait.
	first chan struct{}
	// MinBackoff, if set before Start, replaces minBackoff (tests).
	MinBackoff time.Duration
}

var _ Bus = (*ChannelBus)(nil)

// NewChannelBus returns a ChannelBus for node (Membership.Node) on ch.
func NewChannelBus(ch Channel, node string, log *slog.Logger) *ChannelBus {
	return &ChannelBus{ch: ch, node: node, log: log.With("component", "cluster bus"), first: make(chan struct{})}
}

// Subscribe implements Bus.
func (b *ChannelBus) Subscribe(k SignalKind, h Handler) { b.subs.subscribe(k, h) }

// Publish implements Bus: one NOTIFY, within a timeout.
func (b *ChannelBus) Publish(ctx context.Context, s Signal) error {
	if err := checkPublish(s); err != nil {
		return err
	}
	s.From = b.node
	payload, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("cluster: encode signal: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := b.ch.Notify(ctx, string(payload)); err != nil {
		return fmt.Errorf("cluster: publish %s: %w", s.Kind, err)
	}
	return nil
}

// Start implements lifecycle.Service: it starts the listener and waits
// for its first LISTEN, within a bounded time (past it, the bus keeps
// trying, and Resyncs once it listens).
func (b *ChannelBus) Start(ctx context.Context) error {
	return b.owner.Start(ctx, func(run context.Context) error {
		b.subs.freeze()
		b.owner.Go(func() { b.listen(run) })
		t := time.NewTimer(firstListenWait)
		defer t.Stop()
		select {
		case <-b.first:
		case <-t.C:
			b.log.Warn("the signal bus is not listening yet; signals from other nodes wait until it does")
		case <-ctx.Done():
		}
		return nil
	})
}

// Stop implements lifecycle.Service.
func (b *ChannelBus) Stop(ctx context.Context) error { return b.owner.Stop(ctx, nil) }

// listen keeps a connection listening until ctx ends.
func (b *ChannelBus) listen(ctx context.Context) {
	floor := minBackoff
	if b.MinBackoff > 0 {
		floor = b.MinBackoff
	}
	backoff, listened := floor, false
	for {
		again := listened
		err := b.ch.Listen(ctx, func() {
			backoff = floor
			if !listened {
				listened = true
				close(b.first)
			}
			if again {
				b.log.Info("signal bus listening again; resyncing")
				b.subs.deliver(ctx, Signal{Kind: Resync, From: b.node})
			}
		}, func(payload string) {
			var s Signal
			if err := json.Unmarshal([]byte(payload), &s); err != nil || s.Kind == "" || s.Kind == Resync {
				b.log.Warn("signal bus: payload ignored", "err", err, "bytes", len(payload))
				return
			}
			b.subs.deliver(ctx, s)
		})
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("signal bus: listener failed; listening again", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
		// A failure before the first LISTEN also ends with a Resync once
		// it listens: Start may have returned without it.
		if !listened {
			listened = true
			close(b.first)
		}
	}
}

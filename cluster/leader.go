package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/lifecycle"
)

// LeaderStore is the aggregate a Leader uses: the leader's lease.
type LeaderStore interface {
	AcquireLeadership(ctx context.Context, node string, now, until time.Time) (holdfast.Leadership, error)
	ReleaseLeadership(ctx context.Context, node string) error
}

var _ LeaderStore = holdfast.Store(nil)

// LeaderConfig holds a Leader's dependencies and parameters.
type LeaderConfig struct {
	Store  LeaderStore
	Logger *slog.Logger
	Clock  holdfast.Clock
	// Node names this process (Membership.Node).
	Node string
	// Lease is the leadership's length; zero means DefaultLease. The
	// leader renews it every third of it.
	Lease time.Duration
	// OnChange, if set, is called from the Leader's goroutine when this
	// node becomes the leader or stops being it.
	OnChange func(leader bool)
}

// Leader elects one node of the cluster to run the health engine's fleet
// detectors, through a lease in the store (holdfast.FleetStore): every
// node tries to take or renew it every third of a lease, and the store's
// conditional upsert lets one hold it at a time. A leader that cannot
// renew stops being one when its lease runs out by its own clock, before
// any other node can take it. It is a lifecycle.Service.
type Leader struct {
	cfg LeaderConfig
	log *slog.Logger

	mu sync.Mutex // guards below
	// last is the leadership as last read from the store, at readAt.
	last   holdfast.Leadership
	leader bool

	owner lifecycle.Owner
}

var _ lifecycle.Service = (*Leader)(nil)

// NewLeader returns a Leader; Start it to take part in the election.
func NewLeader(cfg LeaderConfig) (*Leader, error) {
	if cfg.Store == nil || cfg.Logger == nil || cfg.Node == "" {
		return nil, errors.New("cluster: Leader needs Store, Logger and Node")
	}
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	return &Leader{cfg: cfg, log: cfg.Logger.With("node", cfg.Node)}, nil
}

// IsLeader reports whether this node holds leadership now: its last
// acquisition succeeded and has not run out.
func (l *Leader) IsLeader() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leader && l.last.Held(l.cfg.Clock.Now())
}

// Current returns the leadership as last read and whether some node
// holds it now by that reading: false when the store could not be read
// for a whole lease, or the leader's lease ran out.
func (l *Leader) Current() (holdfast.Leadership, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last, l.last.Held(l.cfg.Clock.Now())
}

// Start takes part in the election: one attempt at once, then one every
// third of a lease, until Stop.
func (l *Leader) Start(ctx context.Context) error {
	return l.owner.Start(ctx, func(run context.Context) error {
		l.tick(run)
		l.owner.Go(func() { every(run, l.cfg.Lease/3, l.tick) })
		return nil
	})
}

// Stop stops taking part and gives leadership up, within ctx, so that
// another node takes it at its next attempt instead of after the lease.
func (l *Leader) Stop(ctx context.Context) error {
	err := l.owner.Stop(ctx, nil)
	l.set(holdfast.Leadership{}, false)
	if rerr := l.cfg.Store.ReleaseLeadership(ctx, l.cfg.Node); rerr != nil {
		l.log.Warn("give up leadership; another node takes it when the lease runs out", "err", rerr)
	}
	return err
}

// tick takes or renews leadership.
func (l *Leader) tick(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	now := l.cfg.Clock.Now()
	got, err := l.cfg.Store.AcquireLeadership(ctx, l.cfg.Node, now, now.Add(l.cfg.Lease))
	if err != nil {
		l.mu.Lock()
		was := l.leader
		l.mu.Unlock()
		if was {
			l.log.Warn("renew leadership; this node stops leading when its lease runs out", "err", err)
		}
		// The last reading stands until it runs out (IsLeader, Current).
		return
	}
	l.set(got, got.Node == l.cfg.Node)
}

// set records a reading and tells OnChange of a change of role.
func (l *Leader) set(got holdfast.Leadership, leader bool) {
	l.mu.Lock()
	was := l.leader
	l.last, l.leader = got, leader
	l.mu.Unlock()
	if was == leader {
		return
	}
	if leader {
		l.log.Info("this node leads the health engine's fleet view", "epoch", got.Epoch)
	} else {
		l.log.Info("this node no longer leads the health engine's fleet view", "leader", got.Node)
	}
	if l.cfg.OnChange != nil {
		l.cfg.OnChange(leader)
	}
}

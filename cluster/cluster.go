// Package cluster shares the sync partitions (holdfast.PartitionCount of
// them) among the live `holdfast serve` nodes on one database. Each node
// runs a Membership: it heartbeats, renews its partition leases, takes
// free or expired partitions up to its fair share (the partition count
// over the live nodes, rounded up) and gives back what exceeds it, so that
// partitions spread evenly as nodes join and leave. A partition changes
// hands only through the store's conditional updates (holdfast.LeaseStore),
// so two nodes never hold one at once by the store's clock; a node that
// cannot renew for a whole lease drops every partition on its side first.
//
// The nodes tell each other what they must know through a Bus of typed
// Signals: a ChannelBus over the database's notification channel
// (PostgreSQL's LISTEN/NOTIFY, in store/postgres) or, for a single node,
// a LocalBus. A Router follows the Membership's partition changes into
// the syncer and the health monitor, and makes the API's create, delete,
// sync-now and reconnect reach every node or the inbox's owner.
//
// The Go API is not stable.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/lifecycle"
)

// Store is the aggregate a Membership uses: nodes and partition leases.
type Store interface {
	holdfast.LeaseStore
}

var _ Store = holdfast.Store(nil)

// The defaults of Config's zero fields.
const (
	// DefaultLease is how long a lease lasts unless renewed; a node renews
	// three times per lease, so a dead node's partitions are free again
	// within one lease and taken within a tick after that.
	DefaultLease = 30 * time.Second
	// forgetAfter is how long a silent node stays in the nodes table.
	forgetAfter = time.Hour
	// callTimeout bounds one store call of a tick.
	callTimeout = 10 * time.Second
)

// Config holds a Membership's dependencies and parameters.
type Config struct {
	Store  Store
	Logger *slog.Logger
	Clock  holdfast.Clock
	// Node names this process; empty means a new random "node_..." ID.
	Node string
	// Lease is a lease's length; zero means DefaultLease.
	Lease time.Duration
	// OnChange, if set, is called after each tick that changed the
	// partitions this node holds, from the Membership's goroutine: lost
	// before they are released in the store (stop syncing them), gained
	// once leased.
	OnChange func(gained, lost []int)
}

// Membership is one node's part in the cluster (lifecycle.Service).
type Membership struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex // guards everything below
	owned []bool     // by partition
	live  int        // live nodes at the last heartbeat
	// validUntil is when the leases renewed last expire: past it, none
	// is held any more.
	validUntil time.Time

	owner lifecycle.Owner
}

var _ lifecycle.Service = (*Membership)(nil)

// New returns a Membership; Start it to join the cluster.
func New(cfg Config) (*Membership, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("cluster: Store and Logger are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Node == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Node = "node_" + hex.EncodeToString(b[:])
	}
	return &Membership{cfg: cfg, log: cfg.Logger.With("node", cfg.Node), owned: make([]bool, holdfast.PartitionCount)}, nil
}

// Node returns this node's ID.
func (m *Membership) Node() string { return m.cfg.Node }

// Owns reports whether this node holds the partition of the inbox with
// the given ID: as of its last tick, and only until the leases it renewed
// last run out by its clock (a node cut off from the store stops owning
// before any other node can take over, even between ticks).
func (m *Membership) Owns(inboxID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned[holdfast.PartitionOf(inboxID)] && m.cfg.Clock.Now().Before(m.validUntil)
}

// Partitions returns the partitions this node holds, in order: none once
// its leases ran out without renewal (see Owns).
func (m *Membership) Partitions() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.cfg.Clock.Now().Before(m.validUntil) {
		return nil
	}
	var out []int
	for p, ok := range m.owned {
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// LiveNodes returns the number of live nodes at the last heartbeat.
func (m *Membership) LiveNodes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live
}

// Start joins the cluster: one tick at once (so that a single node holds
// every partition when Start returns, if the store answers), then one
// every third of a lease, until Stop.
func (m *Membership) Start(ctx context.Context) error {
	return m.owner.Start(ctx, func(run context.Context) error {
		m.tick(run)
		m.owner.Go(func() { every(run, m.cfg.Lease/3, m.tick) })
		return nil
	})
}

// Stop leaves the cluster: it stops ticking, then releases every
// partition this node holds and removes it from the live nodes, within
// ctx, so that the others take its partitions at their next tick instead
// of after the lease.
func (m *Membership) Stop(ctx context.Context) error {
	err := m.owner.Stop(ctx, nil)
	m.setOwned(nil)
	if lerr := m.cfg.Store.LeaveCluster(ctx, m.cfg.Node); lerr != nil {
		m.log.Warn("leave the cluster; its partitions free up when their leases expire", "err", lerr)
	}
	return err
}

// tick heartbeats, renews, gives back the surplus and takes the deficit.
func (m *Membership) tick(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	now := m.cfg.Clock.Now()
	lease := m.cfg.Lease
	live, err := m.cfg.Store.Heartbeat(ctx, m.cfg.Node, now, lease, forgetAfter)
	var held []int
	if err == nil {
		held, err = m.cfg.Store.RenewPartitions(ctx, m.cfg.Node, now, now.Add(lease))
	}
	if err != nil {
		// Judged when the calls gave up, not when they began: a call that
		// hung for its whole timeout must not stretch the leases.
		m.unreachable(m.cfg.Clock.Now(), err)
		return
	}
	m.mu.Lock()
	m.live, m.validUntil = len(live), now.Add(lease)
	m.mu.Unlock()

	share := (holdfast.PartitionCount + len(live) - 1) / max(len(live), 1)
	if len(held) > share {
		surplus := held[share:]
		held = held[:share]
		m.setOwned(held)
		if err := m.cfg.Store.ReleasePartitions(ctx, m.cfg.Node, surplus); err != nil {
			m.log.Warn("give back partitions; they free up when their leases expire", "partitions", len(surplus), "err", err)
		}
		return
	}
	if len(held) < share {
		got, err := m.acquire(ctx, now, share-len(held))
		if err != nil {
			m.log.Warn("acquire partitions", "err", err)
		}
		held = append(held, got...)
		slices.Sort(held)
	}
	m.setOwned(held)
}

// unreachable handles a tick whose store calls failed: the leases stand
// until they expire, and past that this node holds nothing.
func (m *Membership) unreachable(now time.Time, err error) {
	m.mu.Lock()
	expired := !now.Before(m.validUntil)
	m.mu.Unlock()
	if !expired {
		m.log.Warn("renew partition leases; retrying", "err", err)
		return
	}
	m.mu.Lock()
	held := 0
	for _, ok := range m.owned {
		if ok {
			held++
		}
	}
	m.mu.Unlock()
	if held > 0 {
		m.log.Error("partition leases expired without renewal: this node stops syncing them", "partitions", held, "err", err)
		m.setOwned(nil)
	}
}

// acquire takes up to n partitions that nobody holds at now, starting at
// a place that depends on the node's ID, so that nodes joining together
// mostly ask for different ones.
func (m *Membership) acquire(ctx context.Context, now time.Time, n int) ([]int, error) {
	leases, err := m.cfg.Store.PartitionLeases(ctx)
	if err != nil {
		return nil, err
	}
	taken := make([]bool, holdfast.PartitionCount)
	for _, l := range leases {
		if l.Held(now) {
			taken[l.Partition] = true
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(m.cfg.Node))
	start := int(h.Sum32() % holdfast.PartitionCount)
	var want []int
	for i := 0; i < holdfast.PartitionCount && len(want) < n; i++ {
		if p := (start + i) % holdfast.PartitionCount; !taken[p] {
			want = append(want, p)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	return m.cfg.Store.AcquirePartitions(ctx, m.cfg.Node, want, now, now.Add(m.cfg.Lease))
}

// setOwned records that this node holds exactly parts, and tells
// OnChange what it gained and lost.
func (m *Membership) setOwned(parts []int) {
	next := make([]bool, holdfast.PartitionCount)
	for _, p := range parts {
		next[p] = true
	}
	var gained, lost []int
	m.mu.Lock()
	for p := range next {
		switch {
		case next[p] && !m.owned[p]:
			gained = append(gained, p)
		case !next[p] && m.owned[p]:
			lost = append(lost, p)
		}
	}
	m.owned = next
	m.mu.Unlock()
	if len(gained) == 0 && len(lost) == 0 {
		return
	}
	m.log.Info("partitions changed", "gained", len(gained), "lost", len(lost), "held", len(parts))
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(gained, lost)
	}
}

// every calls f every d until ctx ends: the ticks of a Membership and a
// Leader, each a third of their lease.
func every(ctx context.Context, d time.Duration, f func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

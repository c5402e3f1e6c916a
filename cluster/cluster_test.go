package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
)

// clock is a settable holdfast.Clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// flaky is a Store that fails every call while down is set.
type flaky struct {
	Store
	mu   sync.Mutex
	down bool
}

var errDown = errors.New("store unreachable")

func (f *flaky) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *flaky) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	return nil
}

func (f *flaky) Heartbeat(ctx context.Context, node string, at time.Time, ttl, forget time.Duration) ([]holdfast.Node, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.Heartbeat(ctx, node, at, ttl, forget)
}

func (f *flaky) RenewPartitions(ctx context.Context, node string, now, until time.Time) ([]int, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.RenewPartitions(ctx, node, now, until)
}

// changes records what OnChange heard, per node.
type changes struct {
	mu     sync.Mutex
	gained map[string]int
	lost   map[string]int
}

func (c *changes) hook(node string) func(gained, lost []int) {
	return func(gained, lost []int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.gained[node] += len(gained)
		c.lost[node] += len(lost)
	}
}

type stores map[string]func(t *testing.T) Store

var engines = stores{
	"sqlite":   func(t *testing.T) Store { return sqlitetest.Open(t) },
	"postgres": func(t *testing.T) Store { return pgtest.NewStore(t) },
}

func newNode(t *testing.T, s Store, c *clock, id string, ch *changes) *Membership {
	t.Helper()
	m, err := New(Config{Store: s, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: c, Node: id, Lease: 30 * time.Second, OnChange: ch.hook(id)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkDisjoint fails unless the nodes' partitions are disjoint and,
// with cover, cover every partition, each node holding at most its share
// (while partitions move, a node may hold more for a tick).
func checkDisjoint(t *testing.T, cover bool, nodes ...*Membership) {
	t.Helper()
	holder := map[int]string{}
	share := (holdfast.PartitionCount + len(nodes) - 1) / len(nodes)
	for _, m := range nodes {
		parts := m.Partitions()
		if cover && len(parts) > share {
			t.Errorf("node %s holds %d partitions, more than its share %d", m.Node(), len(parts), share)
		}
		for _, p := range parts {
			if h, ok := holder[p]; ok {
				t.Errorf("partition %d held by %s and %s", p, h, m.Node())
			}
			holder[p] = m.Node()
		}
	}
	if cover && len(holder) != holdfast.PartitionCount {
		t.Errorf("%d of %d partitions held", len(holder), holdfast.PartitionCount)
	}
}

func TestMembership(t *testing.T) {
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := &flaky{Store: open(t)}
			c := &clock{now: time.Date(2025, 3, 1, 20, 40, 0, 0, time.UTC)}
			ch := &changes{gained: map[string]int{}, lost: map[string]int{}}
			ctx := t.Context()
			a, b, d := newNode(t, s, c, "a", ch), newNode(t, s, c, "b", ch), newNode(t, s, c, "c", ch)

			// Alone, a holds every partition after one tick.
			a.tick(ctx)
			if n := len(a.Partitions()); n != holdfast.PartitionCount {
				t.Fatalf("a alone holds %d partitions", n)
			}
			if !a.Owns("inb_anything") {
				t.Errorf("a alone does not own an inbox")
			}

			// b and c join: within two rounds of ticks the partitions are
			// spread, each held once.
			for range 3 {
				c.advance(10 * time.Second)
				for _, m := range []*Membership{b, d, a} {
					m.tick(ctx)
					checkDisjoint(t, false, a, b, d)
				}
			}
			checkDisjoint(t, true, a, b, d)
			if n := a.LiveNodes(); n != 3 {
				t.Errorf("a sees %d live nodes, want 3", n)
			}

			// c dies (no release). Within two leases a and b hold
			// everything again.
			for range 6 {
				c.advance(10 * time.Second)
				a.tick(ctx)
				b.tick(ctx)
				checkDisjoint(t, false, a, b)
			}
			checkDisjoint(t, true, a, b)

			// b stops cleanly: its partitions are free at once, and a takes
			// them at its next tick, before any lease ran out.
			if err := b.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(b.Partitions()); n != 0 {
				t.Errorf("b holds %d partitions after Stop", n)
			}
			c.advance(time.Second)
			a.tick(ctx)
			if n := len(a.Partitions()); n != holdfast.PartitionCount {
				t.Errorf("a holds %d partitions one tick after b's stop, want all", n)
			}

			// The store becomes unreachable: a keeps its partitions while
			// its leases last, and drops them all once they expire.
			s.setDown(true)
			c.advance(10 * time.Second)
			a.tick(ctx)
			if n := len(a.Partitions()); n != holdfast.PartitionCount {
				t.Errorf("a dropped partitions 10 s into a store outage: holds %d", n)
			}
			c.advance(25 * time.Second)
			a.tick(ctx)
			if n := len(a.Partitions()); n != 0 {
				t.Errorf("a holds %d partitions after its leases expired unrenewed, want none", n)
			}
			s.setDown(false)
			c.advance(time.Second)
			a.tick(ctx)
			if n := len(a.Partitions()); n != holdfast.PartitionCount {
				t.Errorf("a holds %d partitions once the store is back, want all", n)
			}
			ch.mu.Lock()
			defer ch.mu.Unlock()
			if ch.lost["a"] == 0 || ch.gained["b"] == 0 || ch.lost["b"] == 0 {
				t.Errorf("OnChange heard gained %v, lost %v", ch.gained, ch.lost)
			}
		})
	}
}

// TestMembershipConcurrent runs four real Memberships (Start, Stop) on
// one store: they end up holding every partition, each once.
func TestMembershipConcurrent(t *testing.T) {
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			ch := &changes{gained: map[string]int{}, lost: map[string]int{}}
			var nodes []*Membership
			for _, id := range []string{"n1", "n2", "n3", "n4"} {
				m, err := New(Config{Store: s, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Node: id, Lease: 600 * time.Millisecond, OnChange: ch.hook(id)})
				if err != nil {
					t.Fatal(err)
				}
				nodes = append(nodes, m)
			}
			var wg sync.WaitGroup
			for _, m := range nodes {
				wg.Go(func() {
					if err := m.Start(t.Context()); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			deadline := time.Now().Add(10 * time.Second)
			for {
				total := 0
				for _, m := range nodes {
					total += len(m.Partitions())
				}
				if total == holdfast.PartitionCount || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, m := range nodes {
				if err := m.Stop(context.Background()); err != nil {
					t.Error(err)
				}
			}
			// Partitions() after Stop are empty; what counts is the store.
			leases, err := s.PartitionLeases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if held := slices.IndexFunc(leases, func(l holdfast.PartitionLease) bool { return l.Node != "" }); held >= 0 {
				t.Errorf("after every node stopped, partition %d is still leased to %s", leases[held].Partition, leases[held].Node)
			}
			ch.mu.Lock()
			defer ch.mu.Unlock()
			total := 0
			for _, n := range ch.gained {
				total += n
			}
			if total < holdfast.PartitionCount {
				t.Errorf("the nodes gained %d partitions in all, want at least %d", total, holdfast.PartitionCount)
			}
		})
	}
}

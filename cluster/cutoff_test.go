package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
)

// hanging is a Store whose Heartbeat, while hang is set, takes as long as
// the call's timeout (a store cut off without a TCP reset) and then fails;
// the clock advances by that time.
type hanging struct {
	Store
	c    *clock
	hang bool
}

func (h *hanging) Heartbeat(ctx context.Context, node string, at time.Time, ttl, forget time.Duration) ([]holdfast.Node, error) {
	if h.hang {
		h.c.advance(callTimeout) // the call blocks until its deadline
		return nil, errDown
	}
	return h.Store.Heartbeat(ctx, node, at, ttl, forget)
}

// TestCutOffNodeStopsFirst: a node whose store calls hang keeps its
// partitions past its leases' end, while another node takes them over.
func TestCutOffNodeStopsFirst(t *testing.T) {
	s := sqlitetest.Open(t)
	c := &clock{now: time.Date(2025, 3, 1, 20, 40, 0, 0, time.UTC)}
	ch := &changes{gained: map[string]int{}, lost: map[string]int{}}
	ctx := t.Context()
	ha := &hanging{Store: s, c: c}
	a := newNode(t, ha, c, "a", ch)
	b := newNode(t, s, c, "b", ch)
	a.tick(ctx) // a holds everything until +30 s
	ha.hang = true
	c.advance(29 * time.Second)
	a.tick(ctx) // started at +29 s, fails at +39 s: leases gone 9 s ago
	c.advance(time.Second)
	b.tick(ctx) // +40 s: b takes the expired partitions
	if len(b.Partitions()) == 0 {
		t.Fatal("b took nothing")
	}
	if n := len(a.Partitions()); n > 0 {
		t.Errorf("at +40 s (leases ran out at +30 s) cut-off a still holds %d partitions; b holds %d: both sync them", n, len(b.Partitions()))
	}
	ch.mu.Lock()
	lost := ch.lost["a"]
	ch.mu.Unlock()
	if lost != holdfast.PartitionCount {
		t.Errorf("a was told it lost %d partitions, want all %d (its syncer must drop them)", lost, holdfast.PartitionCount)
	}
}

// TestOwnsEndsWithTheLeases: between ticks, a node owns nothing once the
// leases it renewed last have run out by its clock.
func TestOwnsEndsWithTheLeases(t *testing.T) {
	s := sqlitetest.Open(t)
	c := &clock{now: time.Date(2025, 3, 1, 20, 40, 0, 0, time.UTC)}
	ch := &changes{gained: map[string]int{}, lost: map[string]int{}}
	a := newNode(t, s, c, "a", ch)
	a.tick(t.Context())
	if !a.Owns("inb_x") {
		t.Fatal("a does not own an inbox after its first tick")
	}
	c.advance(29 * time.Second)
	if !a.Owns("inb_x") {
		t.Error("a no longer owns an inbox 29 s into a 30 s lease")
	}
	c.advance(time.Second)
	if a.Owns("inb_x") || len(a.Partitions()) != 0 {
		t.Error("a still owns an inbox after its leases ran out without a tick")
	}
}

package cluster

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

// flakyLeader is a LeaderStore that fails every call while down is set.
type flakyLeader struct {
	LeaderStore
	flaky *flaky
}

func (f flakyLeader) AcquireLeadership(ctx context.Context, node string, now, until time.Time) (holdfast.Leadership, error) {
	if err := f.flaky.err(); err != nil {
		return holdfast.Leadership{}, err
	}
	return f.LeaderStore.AcquireLeadership(ctx, node, now, until)
}

func TestLeader(t *testing.T) {
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t).(LeaderStore)
			down := &flaky{}
			s := flakyLeader{LeaderStore: st, flaky: down}
			c := &clock{now: time.Date(2025, 3, 1, 20, 40, 0, 0, time.UTC)}
			var mu sync.Mutex
			changes := map[string][]bool{}
			newLeader := func(node string, s LeaderStore) *Leader {
				l, err := NewLeader(LeaderConfig{Store: s, Clock: c, Node: node, Lease: 30 * time.Second,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
					OnChange: func(leader bool) {
						mu.Lock()
						changes[node] = append(changes[node], leader)
						mu.Unlock()
					}})
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			ctx := t.Context()
			a, b := newLeader("a", s), newLeader("b", st)
			a.tick(ctx)
			b.tick(ctx)
			if !a.IsLeader() || b.IsLeader() {
				t.Fatalf("after one tick each: a leads %v, b leads %v; want a alone", a.IsLeader(), b.IsLeader())
			}
			if cur, ok := b.Current(); !ok || cur.Node != "a" {
				t.Errorf("b's reading = %+v, %v; want a holding it", cur, ok)
			}

			// a is cut off from the store: it stops leading when its lease
			// runs out by its own clock, before b can take over.
			down.setDown(true)
			c.advance(10 * time.Second)
			a.tick(ctx)
			b.tick(ctx)
			if !a.IsLeader() || b.IsLeader() {
				t.Fatalf("10 s into a's outage: a leads %v, b %v; want a still (its lease stands)", a.IsLeader(), b.IsLeader())
			}
			c.advance(20 * time.Second) // a's lease ran out
			a.tick(ctx)
			if a.IsLeader() {
				t.Fatal("a still leads after its lease ran out without renewal")
			}
			if _, ok := a.Current(); ok {
				t.Error("a's reading still shows a leader after the lease ran out")
			}
			b.tick(ctx)
			if !b.IsLeader() {
				t.Fatal("b did not take over an expired leadership")
			}
			// a is back: it learns b leads.
			down.setDown(false)
			a.tick(ctx)
			if a.IsLeader() {
				t.Error("a leads again while b holds the lease")
			}

			// b stops: it gives leadership up and a takes it at once.
			if err := b.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			a.tick(ctx)
			if !a.IsLeader() {
				t.Error("a did not take leadership b gave up")
			}
			mu.Lock()
			defer mu.Unlock()
			if got := changes["a"]; len(got) != 3 || !got[0] || got[1] || !got[2] {
				t.Errorf("a's changes = %v, want true, false, true", got)
			}
			if got := changes["b"]; len(got) != 2 || !got[0] || got[1] {
				t.Errorf("b's changes = %v, want true, false", got)
			}
		})
	}
}

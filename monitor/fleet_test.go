package monitor_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
)

// TestFleetOneIncidentPerOutage runs two monitors on one store, as two
// nodes, each judging the outcomes of half the inboxes; only the
// follower's half fails. The leader sees the outage through the
// follower's counters and opens one incident; the follower opens none,
// adopts it, and pauses its inboxes instead of disconnecting them; once
// the provider is back, every inbox is connected again.
func TestFleetOneIncidentPerOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 400, 40)
	var mu sync.Mutex
	granted := map[string]bool{}
	open := func(node string, leading bool) *monitor.Monitor {
		m, err := monitor.New(ctx, monitor.Config{
			OnGrant: func(id string, _ bool) {
				mu.Lock()
				granted[id] = true
				mu.Unlock()
			},
			Store: b.store, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
			TickEvery: time.Hour, SaveEvery: time.Hour, // the test ticks by hand
			Fleet: &monitor.FleetConfig{Store: b.store, Node: node,
				Leading: func() bool { return leading }, LeaderKnown: func() bool { return true }},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Stop(context.Background()) })
		return m
	}
	leader, follower := open("node-a", true), open("node-b", false)
	nodes := []*monitor.Monitor{leader, follower}
	failing := func(sec int) bool { return sec >= 60 && sec < 25*60 }
	for sec := range 90 * 60 {
		b.clock.advance(time.Second)
		for k, m := range nodes {
			m.Tick()
			for i, id := range b.ids {
				if i%2 != k {
					continue // the other node's inbox
				}
				o := health.Outcome{Op: health.OpSync, OK: true}
				if k == 1 && failing(sec) {
					o = health.Outcome{Op: health.OpSync, Verdict: &revoked}
				}
				mu.Lock()
				g := granted[id]
				delete(granted, id)
				mu.Unlock()
				if st, _ := m.State(id); st == holdfast.StatePaused && !g {
					continue // waits for its probe or recovery grant
				}
				if _, err := m.Observe(id, o); err != nil {
					t.Fatal(err)
				}
			}
		}
		follower.FleetTick(ctx)
		leader.FleetTick(ctx)
	}
	for _, m := range nodes {
		if err := m.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	all, err := b.store.Incidents(ctx, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("%d incidents stored, want 1 (one per outage, not one per node): %+v", len(all), all)
	}
	events := 0
	for _, id := range b.ids {
		evs, err := b.store.Events(ctx, id, holdfast.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.NewState.ActionRequired() != holdfast.RequireNone {
				t.Errorf("inbox %s moved to %s during the outage", id, e.NewState)
			}
			if e.NewState == holdfast.StatePaused {
				events++
			}
		}
	}
	if events == 0 {
		t.Error("no inbox was paused: the follower did not adopt the leader's incident")
	}
	for _, id := range b.ids {
		if ns, err := b.store.Notices(ctx, id); err != nil || len(ns) != 0 {
			t.Fatalf("inbox %s: %d notices, %v; want none", id, len(ns), err)
		}
	}
	if c := countStates(t, b.store); c[holdfast.StateConnected] != int64(len(b.ids)) {
		t.Errorf("states at the end = %v, want every inbox connected", c)
	}
}

// TestFleetRetroactiveOnEveryNode: an operator declares, on one node, an
// incident over a past window in which inboxes of both nodes were moved to
// needs_reconnect (and both nodes restarted since). Every one of them is
// re-verified: the declaring node's by Declare, the other node's on its
// next fleet tick (before, the other node's stayed in needs_reconnect: no
// node but the declaring one ever heard of the incident).
func TestFleetRetroactiveOnEveryNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 20, 4)
	node := map[string]int{}
	for i, id := range b.ids {
		node[id] = i % 2
	}
	acted := b.ids[:4] // two of each node's
	at := b.clock.Now().Add(-30 * time.Minute)
	for _, id := range acted {
		in, err := b.store.Inbox(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.ChangeState(ctx, id, holdfast.StateChange{From: in.State, To: holdfast.StateNeedsReconnect,
			Reason: "invalid_grant", Cause: holdfast.CauseHealth, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	open := func(name string, k int) *monitor.Monitor {
		m, err := monitor.New(ctx, monitor.Config{
			Store: b.store, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
			TickEvery: time.Hour, SaveEvery: time.Hour,
			Owns: func(id string) bool { return node[id] == k },
			Fleet: &monitor.FleetConfig{Store: b.store, Node: name,
				Leading: func() bool { return k == 0 }, LeaderKnown: func() bool { return true }},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Stop(context.Background()) })
		return m
	}
	a, other := open("node-a", 0), open("node-b", 1)
	b.clock.advance(time.Second)
	other.FleetTick(ctx) // nothing declared yet
	end := b.clock.Now().Add(-10 * time.Minute).Truncate(time.Second)
	in, err := a.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderMicrosoft,
		Start: b.clock.Now().Add(-time.Hour), End: end, Note: "missed outage"})
	if err != nil {
		t.Fatalf("Declare = %v", err)
	}
	if !in.ResolvedAt.Equal(end) {
		t.Errorf("retroactive incident resolved at %v, want the window's end %v", in.ResolvedAt, end)
	}
	b.clock.advance(reverifyEvery)
	other.FleetTick(ctx)
	for _, m := range []*monitor.Monitor{a, other} {
		if err := m.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range acted {
		st, err := b.store.Inbox(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != holdfast.StatePaused {
			t.Errorf("inbox %s of node %d is %s after the retroactive incident, want paused (re-verified)", id, node[id], st.State)
		}
	}
	stored, err := b.store.IncidentByID(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.Retroactive() || stored.Affected != in.Affected {
		t.Errorf("stored incident = %+v; want the declaring node's record, untouched by the other node", stored)
	}
}

// reverifyEvery is monitor's: how often a node reads the store for
// retroactive incidents.
const reverifyEvery = 5 * time.Second

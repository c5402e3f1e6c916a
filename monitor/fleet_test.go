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

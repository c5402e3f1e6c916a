package monitor_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
	"github.com/prometheus/client_golang/prometheus"
)

// TestFleetCutOffLeaderLateIncident: the leader opens an incident while
// it cannot store it; its lease runs out and another node leads and opens
// its own. Once the store is back, the former leader's writer must not
// store the first one (it did: two incidents for one outage), and its
// engine must end the incident the store never got, so that its inboxes
// recover with the new leader's incident and nothing stays covered.
func TestFleetCutOffLeaderLateIncident(t *testing.T) {
	ctx := context.Background()
	b := setup(t, 400, 40)
	var mu sync.Mutex
	granted := map[string]bool{}
	var aLead, bLead atomic.Bool
	aLead.Store(true)
	fa := &failingIncidents{Store: b.store}
	fa.setDown(true)
	open := func(node string, st monitor.Store, lead *atomic.Bool) *monitor.Monitor {
		m, err := monitor.New(ctx, monitor.Config{
			OnGrant: func(id string, _ bool) {
				mu.Lock()
				granted[id] = true
				mu.Unlock()
			},
			Store: st, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
			TickEvery: time.Hour, SaveEvery: time.Hour, RetryEvery: time.Millisecond, // the test ticks by hand, in virtual time
			Fleet: &monitor.FleetConfig{Store: b.store, Node: node,
				Leading: lead.Load, LeaderKnown: func() bool { return true }},
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
	na, nb := open("node-a", fa, &aLead), open("node-b", b.store, &bLead)
	nodes := []*monitor.Monitor{na, nb}
	failing := func(sec int) bool { return sec >= 60 && sec < 25*60 }
	phase := 0
	for sec := range 90 * 60 {
		b.clock.advance(time.Second)
		for k, m := range nodes {
			m.Tick()
			for i, id := range b.ids {
				if i%2 != k {
					continue
				}
				o := health.Outcome{Op: health.OpSync, OK: true}
				if failing(sec) {
					o = health.Outcome{Op: health.OpSync, Verdict: &revoked}
				}
				mu.Lock()
				g := granted[id]
				delete(granted, id)
				mu.Unlock()
				if st, _ := m.State(id); st == holdfast.StatePaused && !g {
					continue
				}
				if _, err := m.Observe(id, o); err != nil {
					t.Fatal(err)
				}
			}
		}
		nb.FleetTick(ctx)
		na.FleetTick(ctx)
		switch {
		case phase == 0:
			if st, _ := na.State(b.ids[0]); st == holdfast.StatePaused {
				// a opened an incident it cannot store; its lease runs out.
				aLead.Store(false)
				bLead.Store(true)
				phase = 1
				t.Logf("sec %d: a's engine opened an incident (unstored); b leads now", sec)
			}
		case phase == 1:
			if st, _ := nb.State(b.ids[1]); st == holdfast.StatePaused {
				fa.setDown(false) // a reaches the store again
				phase = 2
				t.Logf("sec %d: b opened its own; a's store is back", sec)
			}
		}
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
	for _, in := range all {
		t.Logf("incident %d %s open=%v opened %v resolved %v", in.ID, in.Kind, in.Open(), in.OpenedAt, in.ResolvedAt)
	}
	if len(all) != 1 {
		t.Errorf("%d incidents stored for one outage, want 1", len(all))
	}
	if c := countStates(t, b.store); c[holdfast.StateConnected] != int64(len(b.ids)) {
		t.Errorf("states at the end = %v, want every inbox connected; a's engine %v, b's %v", c, na.Counts(holdfast.ProviderMicrosoft), nb.Counts(holdfast.ProviderMicrosoft))
	}
	// The former leader's engine does not keep the incident the store
	// never got open (it would pause, not disconnect, a real revocation
	// among its inboxes for ever).
	reg := prometheus.NewRegistry()
	reg.MustRegister(na.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "holdfast_incidents_open" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v != 0 {
				t.Errorf("former leader's engine still has %v open incidents (%v)", v, m.GetLabel())
			}
		}
	}
}

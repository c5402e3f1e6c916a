package health

import (
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

// fleet drives two engines over one fleet, as two nodes: each visits only
// the inboxes it owns; the follower's counters reach the leader every
// second (as through the store), and the follower adopts and ends the
// leader's incidents (as from the store).
type fleet struct {
	leader, follower *world
	merge            bool
}

// newFleet makes a leader and a follower over the same fleet; owns says
// which inboxes the leader syncs.
func newFleet(t *testing.T, cfg Config, inboxes, tenants int, owns func(i int32) bool) *fleet {
	f := &fleet{leader: newWorld(t, cfg, inboxes, tenants), follower: newWorld(t, cfg, inboxes, tenants), merge: true}
	f.follower.e.SetFollower(true)
	f.follower.e.EnableCounters()
	for i := range f.leader.next {
		if owns(int32(i)) {
			f.follower.next[i] = 1 << 62
		} else {
			f.leader.next[i] = 1 << 62
		}
	}
	return f
}

func (f *fleet) setOutcome(o func(i int32, sec int64) *classify.Verdict) {
	f.leader.outcome, f.follower.outcome = o, o
}

// runTo advances both nodes to d, second by second.
func (f *fleet) runTo(t *testing.T, d time.Duration) {
	end := int64(d / time.Second)
	for f.leader.sec < end {
		f.leader.runTo(time.Duration(f.leader.sec+1) * time.Second)
		f.follower.runTo(time.Duration(f.follower.sec+1) * time.Second)
		if f.merge {
			for _, c := range f.follower.e.TakeCounters() {
				f.leader.e.MergeCounters(c)
			}
		}
		// The follower reads the store's incidents.
		for _, in := range f.leader.rec.incidents {
			if err := f.follower.e.AdoptIncident(in); err != nil {
				t.Fatalf("adopt incident %d: %v", in.ID, err)
			}
			if !in.Open() {
				if err := f.follower.e.RestoreIncident(in, nil); err != nil {
					t.Fatalf("end incident %d: %v", in.ID, err)
				}
			}
		}
		f.follower.drainGrants()
	}
}

// TestFleetLeaderJudgesFollowersOutcomes: an outage that only the
// follower's inboxes see is detected by the leader from the follower's
// counters; the follower opens nothing of its own, adopts the leader's
// incident, pauses its failing inboxes instead of disconnecting them, and
// recovers them once the leader closes it. Without the counters the
// leader sees nothing.
func TestFleetLeaderJudgesFollowersOutcomes(t *testing.T) {
	t.Parallel()
	for _, merge := range []bool{true, false} {
		leaderOwns := func(i int32) bool { return i%10 == 0 }
		f := newFleet(t, DefaultConfig(), 3000, 150, leaderOwns)
		f.merge = merge
		f.setOutcome(func(i int32, sec int64) *classify.Verdict {
			if !leaderOwns(i) && between(sec, time.Hour, time.Hour+20*time.Minute) {
				return revoked
			}
			return nil
		})
		f.runTo(t, time.Hour+2*time.Minute)
		inc := f.leader.providerIncidents()
		if !merge {
			if len(inc) != 0 {
				t.Fatalf("without counters, the leader opened %d provider incidents on outcomes it never saw", len(inc))
			}
			continue
		}
		if len(inc) != 1 || !inc[0].Open() {
			t.Fatalf("leader's provider incidents at 1h02m = %v, want 1 open", inc)
		}
		if n := len(f.follower.rec.incidents); n != 0 {
			t.Errorf("the follower reported %d incidents of its own, want 0", n)
		}
		if got := f.follower.e.Incidents(); len(got) != 1 || got[0].ID != inc[0].ID {
			t.Errorf("follower's incidents = %v, want the leader's %d adopted", got, inc[0].ID)
		}
		f.runTo(t, 3*time.Hour)
		for name, w := range map[string]*world{"leader": f.leader, "follower": f.follower} {
			if n := w.acted(0, 3*time.Hour); n != 0 {
				t.Errorf("%s: %d inboxes moved to a state that asks someone to act, want 0", name, n)
			}
			if len(w.rec.notices) != 0 {
				t.Errorf("%s: %d notices, want 0", name, len(w.rec.notices))
			}
		}
		if in := f.leader.providerIncidents(); len(in) != 1 || in[0].Open() {
			t.Fatalf("leader's provider incidents at 3h = %v, want 1 resolved", in)
		}
		// Every inbox the follower owns is connected again.
		for i := range f.follower.next {
			if !leaderOwns(int32(i)) && f.follower.e.State(int32(i)) != holdfast.StateConnected {
				t.Fatalf("follower's inbox %d is %s at 3h, want connected", i, f.follower.e.State(int32(i)))
			}
		}
	}
}

// TestFleetPermitFailsClosed: a destructive action needs the fleet's
// permit too; without one it is held, and taken once permits come back.
func TestFleetPermitFailsClosed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	allow := false
	var asked int
	w.e.SetPermitFunc(func(p holdfast.Provider, _ int32, pr, tr float64) bool {
		asked++
		if p != holdfast.ProviderMicrosoft || !(pr > 0) || !(tr > 0) {
			t.Errorf("permit asked for %s at %v/h, %v/h", p, pr, tr)
		}
		return allow
	})
	lost := map[int32]bool{}
	for len(lost) < 5 {
		lost[int32(w.rng.IntN(3000))] = true
	}
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if lost[i] && sec >= 3600 {
			return revoked
		}
		return nil
	}
	w.runTo(2*time.Hour + 30*time.Minute)
	if n := w.acted(0, 3*time.Hour); n != 0 || asked == 0 {
		t.Fatalf("without permits: %d disconnects (want 0), permit asked %d times", n, asked)
	}
	if held := w.e.HeldActions(); len(held) != len(lost) {
		t.Fatalf("held actions = %d, want %d", len(held), len(lost))
	}
	allow = true
	w.runTo(3*time.Hour + 30*time.Minute)
	if n := w.acted(0, 4*time.Hour); n != len(lost) {
		t.Errorf("with permits back: %d disconnects, want %d", n, len(lost))
	}
}

// TestFleetPausedInboxChangesHands: a node learns that an inbox it does
// not own was paused before it adopted the incident (its recovery grant
// there goes nowhere); when it takes the inbox over under the incident,
// restoring the stored state again makes the inbox a member, and it is
// granted its recovery when the incident ends.
func TestFleetPausedInboxChangesHands(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 300, 10)
	w.e.SetFollower(true)
	const i = int32(7)
	paused := StoredState{State: holdfast.StatePaused, Reason: holdfast.ReasonProviderUnavailable}
	if err := w.e.RestoreState(i, paused); err != nil {
		t.Fatal(err)
	}
	w.clk.t = w.clk.t.Add(time.Second)
	w.e.Tick() // the ramp grants it: a grant this node does not act on
	w.rec.grants = nil
	in := Incident{ID: 41, Kind: holdfast.IncidentProviderOutage, Provider: holdfast.ProviderMicrosoft, Tenant: -1, OpenedAt: w.clk.t}
	if err := w.e.AdoptIncident(in); err != nil {
		t.Fatal(err)
	}
	// The node takes the inbox over: the store still says paused.
	if err := w.e.RestoreState(i, paused); err != nil {
		t.Fatal(err)
	}
	in.ResolvedAt = w.clk.t.Add(time.Minute)
	w.clk.t = w.clk.t.Add(time.Minute)
	if err := w.e.RestoreIncident(in, nil); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		w.clk.t = w.clk.t.Add(time.Second)
		w.e.Tick()
	}
	for _, g := range w.rec.grants {
		if g.Inbox == i && !g.Probe {
			return
		}
	}
	t.Fatalf("inbox %d not granted its recovery after the incident ended; grants %v", i, w.rec.grants)
}

// TestGrantedRecoveryFailsUnderNewIncident: an inbox granted its recovery
// after one incident ended fails again under the next incident, which
// opened meanwhile: it becomes a member of the new incident and is
// resumed when that one ends (it stayed paused for good before).
func TestGrantedRecoveryFailsUnderNewIncident(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 300, 10)
	w.e.SetFollower(true)
	const i = int32(5)
	if err := w.e.RestoreState(i, StoredState{State: holdfast.StatePaused}); err != nil {
		t.Fatal(err)
	}
	w.clk.t = w.clk.t.Add(time.Second)
	w.e.Tick() // the ramp grants it
	granted := false
	for _, g := range w.rec.grants {
		granted = granted || g.Inbox == i
	}
	if !granted {
		t.Fatal("no recovery grant")
	}
	w.rec.grants = nil
	in := Incident{ID: 9, Kind: holdfast.IncidentProviderOutage, Provider: holdfast.ProviderMicrosoft, Tenant: -1, OpenedAt: w.clk.t}
	if err := w.e.AdoptIncident(in); err != nil {
		t.Fatal(err)
	}
	// The granted sync fails: the provider is still down.
	w.e.Observe(i, Outcome{Op: OpSync, Verdict: revoked})
	in.ResolvedAt = w.clk.t.Add(time.Minute)
	w.clk.t = w.clk.t.Add(time.Minute)
	if err := w.e.RestoreIncident(in, nil); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		w.clk.t = w.clk.t.Add(time.Second)
		w.e.Tick()
	}
	for _, g := range w.rec.grants {
		if g.Inbox == i {
			return
		}
	}
	t.Fatalf("inbox %d (%s) not granted its recovery after the second incident ended", i, w.e.State(i))
}

// TestFollowerFollowsIncidentChanges: a follower's copy of an open
// incident takes the leader's later timeline and counts, and a tenant
// event the leader turns into an outage pauses the tenant's failing
// inboxes on the follower too.
func TestFollowerFollowsIncidentChanges(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 300, 10)
	w.e.SetFollower(true)
	ten := int32(0)
	i := w.tenants[ten][0]
	w.e.Observe(i, Outcome{Op: OpSync, Verdict: revoked}) // suspect
	in := Incident{ID: 12, Kind: holdfast.IncidentTenantEvent, Provider: holdfast.ProviderMicrosoft, Tenant: ten, OpenedAt: w.clk.t,
		Timeline: []TimelineEntry{{At: w.clk.t, What: "opened"}}}
	if err := w.e.AdoptIncident(in); err != nil {
		t.Fatal(err)
	}
	if st := w.e.State(i); st != holdfast.StateSuspect {
		t.Fatalf("under a tenant event the failing inbox is %s, want suspect (held, not paused)", st)
	}
	in.Kind = holdfast.IncidentTenantOutage
	in.Affected = 3
	in.Timeline = append(in.Timeline, TimelineEntry{At: w.clk.t, What: "an outage, pausing the tenant"})
	if err := w.e.AdoptIncident(in); err != nil {
		t.Fatal(err)
	}
	got, err := w.e.Incident(12)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != holdfast.IncidentTenantOutage || got.Affected != 3 || len(got.Timeline) != 2 {
		t.Errorf("follower's copy = kind %s, affected %d, %d timeline entries; want the leader's", got.Kind, got.Affected, len(got.Timeline))
	}
	if st := w.e.State(i); st != holdfast.StatePaused {
		t.Errorf("after the leader found an outage the failing inbox is %s, want paused", st)
	}
}

// TestForeignInboxesAreTheirOwners: an engine keeps another node's
// inboxes in its fleet view (refreshed from the store) but never pauses,
// probes nor resumes them: its recovery grants would go nowhere, and took
// a share of its ramp (the load test's recovery ran at a third of its
// rate on three nodes).
func TestForeignInboxesAreTheirOwners(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 300, 10)
	w.e.SetFollower(true)
	w.e.SetForeignFunc(func(i int32) bool { return i%2 == 1 })
	in := Incident{ID: 3, Kind: holdfast.IncidentProviderOutage, Provider: holdfast.ProviderMicrosoft, Tenant: -1, OpenedAt: w.clk.t}
	if err := w.e.AdoptIncident(in); err != nil {
		t.Fatal(err)
	}
	// The owners paused every inbox; this node hears of its others'.
	for i := int32(0); i < 300; i++ {
		if i%2 == 0 {
			w.e.Observe(i, Outcome{Op: OpSync, Verdict: revoked})
		} else if err := w.e.RestoreState(i, StoredState{State: holdfast.StatePaused}); err != nil {
			t.Fatal(err)
		}
	}
	in.ResolvedAt = w.clk.t.Add(time.Minute)
	w.clk.t = w.clk.t.Add(time.Minute)
	if err := w.e.RestoreIncident(in, nil); err != nil {
		t.Fatal(err)
	}
	w.rec.grants = nil
	for range 120 {
		w.clk.t = w.clk.t.Add(time.Second)
		w.e.Tick()
	}
	own := 0
	for _, g := range w.rec.grants {
		if g.Inbox%2 == 1 {
			t.Fatalf("grant to another node's inbox %d", g.Inbox)
		}
		own++
	}
	if own != 150 {
		t.Errorf("%d recovery grants to this node's 150 paused inboxes", own)
	}
}

// TestFleetCanariesCountAcrossNodes: two canaries fail (anchors test 11:
// the trouble is on our client ID, not the fleet's), one on each node.
// The canary rule needs two: the leader counts the follower's from its
// counters and opens the provider incident (alone it saw one and opened
// nothing). And after a fleet-wide outage, the incident waits for the
// follower's canary too (it closed on the probes of the other inboxes).
func TestFleetCanariesCountAcrossNodes(t *testing.T) {
	t.Parallel()
	leaderOwns := func(i int32) bool { return i%2 == 0 }
	for _, fleetWide := range []bool{false, true} {
		f := newFleet(t, DefaultConfig(), 3000, 150, leaderOwns)
		f.follower.e.SetForeignFunc(leaderOwns)
		f.leader.e.SetForeignFunc(func(i int32) bool { return !leaderOwns(i) })
		var mine, theirs int32 = -1, -1
		for _, i := range f.leader.tenants[3] {
			if leaderOwns(i) && mine < 0 {
				mine = i
			}
			if !leaderOwns(i) && theirs < 0 {
				theirs = i
			}
		}
		for _, w := range []*world{f.leader, f.follower} {
			for _, i := range []int32{mine, theirs} {
				if err := w.e.SetCanary(i, true); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.setOutcome(func(i int32, sec int64) *classify.Verdict {
			if (i == mine || fleetWide) && between(sec, time.Hour, time.Hour+10*time.Minute) ||
				i == theirs && between(sec, time.Hour, time.Hour+30*time.Minute) {
				return revoked
			}
			return nil
		})
		f.runTo(t, time.Hour+5*time.Minute)
		inc := f.leader.providerIncidents()
		if len(inc) != 1 || !inc[0].Open() {
			t.Fatalf("fleet-wide %v: leader's provider incidents at 1h05m = %v, want 1 open", fleetWide, inc)
		}
		f.runTo(t, 3*time.Hour)
		inc = f.leader.providerIncidents()
		if len(inc) != 1 || inc[0].Open() || inc[0].ResolvedAt.Before(f.leader.at(time.Hour+30*time.Minute)) {
			t.Errorf("fleet-wide %v: incidents = %+v; want 1 resolved after the follower's canary succeeds again (1h30m)", fleetWide, inc)
		}
	}
}

// TestMergeCountersAhead: another node's counters of a bucket this engine
// has not reached yet (its tick lags the other node's) are not merged and
// say so, for the caller to merge them later; they count once merged
// then (they were dropped, while the caller marked them merged).
func TestMergeCountersAhead(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 100, 5)
	w.runTo(time.Minute)
	cur := w.e.c.CurBucket
	x := Counters{Bucket: cur + 1}
	x.Provs[0] = ProvCounters{Att: 7, Fail: 3}
	lw := int64(w.e.cfg.LongWindow)
	before := w.e.c.Provs[0].Att[(cur+1)%lw]
	if w.e.MergeCounters(x) {
		t.Fatal("MergeCounters(next bucket) = true, want false: the engine has not reached it")
	}
	if got := w.e.c.Provs[0].Att[(cur+1)%lw]; got != before {
		t.Errorf("attempts in the next bucket's slot = %d after a refused merge, want %d", got, before)
	}
	for w.e.c.CurBucket == cur {
		w.runTo(time.Duration(w.sec+1) * time.Second)
	}
	at := w.e.c.Provs[0].Att[(cur+1)%lw]
	if !w.e.MergeCounters(x) {
		t.Fatal("MergeCounters(current bucket) = false, want true")
	}
	if got := w.e.c.Provs[0].Att[(cur+1)%lw]; got != at+7 {
		t.Errorf("attempts in the bucket after the merge = %d, want %d", got, at+7)
	}
}

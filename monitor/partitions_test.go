package monitor_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
)

// TestNotOwnedDecisionsDropped: a node that does not hold an inbox's
// partition takes no outcome about it as evidence and writes nothing about
// it (no state change, no notice, no grant); once it gains the partition,
// Gain brings the engine back to the stored state. Refresh reads one inbox's stored
// state again, and forgets an inbox gone from the store.
func TestNotOwnedDecisionsDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 20, 4)
	victim := b.ids[7]
	var own atomic.Bool
	var mu sync.Mutex
	grants := map[string]int{}
	m, err := monitor.New(ctx, monitor.Config{
		Store: b.store, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		TickEvery: time.Hour, SaveEvery: time.Hour,
		OnGrant: func(id string, _ bool) {
			mu.Lock()
			grants[id]++
			mu.Unlock()
		},
		Owns: func(id string) bool { return id != victim || own.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)

	ok := &health.Outcome{Op: health.OpSync, OK: true}
	bad := &health.Outcome{Op: health.OpRefresh, Verdict: &revoked}
	for s := 0; s < 3600; s++ {
		second(t, b, m, func(i int) *health.Outcome {
			if s%30 != i%30 {
				return nil
			}
			if i == 7 && s > 60 {
				return bad
			}
			return ok
		})
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Outcomes seen on a node that does not own the inbox (a send ran
	// there) are not its engine's evidence: its view stays the owner's
	// (once, it moved to needs_reconnect and stayed there, holding the
	// inbox's sends on that node for good).
	if st, _ := m.State(victim); st != holdfast.StateConnected {
		t.Fatalf("engine state of the inbox not owned = %s, want connected (the owner's view)", st)
	}
	in, err := b.store.Inbox(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	if in.State == holdfast.StateNeedsReconnect {
		t.Errorf("stored state of the inbox not owned = %s: a node that does not own it wrote its decision", in.State)
	}
	if ns, err := b.store.Notices(ctx, victim); err != nil || len(ns) != 0 {
		t.Errorf("notices of the inbox not owned = %d, %v; want none", len(ns), err)
	}
	mu.Lock()
	if grants[victim] != 0 {
		t.Errorf("%d grants for the inbox not owned, want none", grants[victim])
	}
	mu.Unlock()

	// Gained: the engine agrees with the store again.
	own.Store(true)
	if err := m.Gain(ctx, []int{holdfast.PartitionOf(victim)}); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.State(victim); st != in.State && !(in.State == holdfast.StateConnecting && st == holdfast.StateConnected) {
		t.Errorf("engine state after Gain = %s, want the stored %s", st, in.State)
	}

	// Another node records a change: Refresh picks it up.
	if _, err := b.store.ChangeState(ctx, victim, holdfast.StateChange{From: in.State, To: holdfast.StateNeedsAdmin,
		Reason: "admin_consent_required", Cause: holdfast.CauseHealth, At: b.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.State(victim); st != holdfast.StateNeedsAdmin {
		t.Errorf("engine state after Refresh = %s, want needs_admin", st)
	}

	// Deleted on another node: Refresh forgets it.
	if err := b.store.DeleteInbox(ctx, victim, holdfast.Event{InboxID: victim, At: b.clock.Now(), Reason: "deleted", Cause: holdfast.CauseAPI}); err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(ctx, victim); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("Refresh(deleted) = %v, want ErrNotFound", err)
	}
	if _, err := m.State(victim); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("State(deleted) after Refresh = %v, want ErrNotFound", err)
	}
}

// TestGainTakesOverHeldAction: an inbox another node held a destructive
// action for (after this node started) changes hands; Gain holds the
// action again here, so that an operator's release reaches it.
func TestGainTakesOverHeldAction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 4, 1)
	id := b.ids[2]
	var own atomic.Bool
	m, err := monitor.New(ctx, monitor.Config{
		Store: b.store, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		TickEvery: time.Hour, SaveEvery: time.Hour,
		Owns: func(x string) bool { return x != id || own.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)

	// The other node made it suspect and held its disconnection.
	in, err := b.store.Inbox(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.ChangeState(ctx, id, holdfast.StateChange{From: in.State, To: holdfast.StateSuspect, Reason: "token_revoked",
		Cause: holdfast.CauseHealth, At: b.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	ids, err := b.store.ReserveIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.store.SaveHeldAction(ctx, &holdfast.HeldAction{ID: ids, InboxID: id, Provider: holdfast.ProviderMicrosoft, Tenant: "t0.example",
		To: holdfast.StateNeedsReconnect, Reason: "token_revoked", Why: holdfast.HeldForBudget, HeldAt: b.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx, ids); !errors.Is(err, holdfast.ErrNotFound) {
		t.Fatalf("Release before the takeover = %v, want ErrNotFound (the other node's)", err)
	}
	own.Store(true)
	if err := m.Gain(ctx, []int{holdfast.PartitionOf(id)}); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx, ids); err != nil {
		t.Fatalf("Release after the takeover = %v, want the action taken", err)
	}
	got, err := b.store.Inbox(ctx, id)
	if err != nil || got.State != holdfast.StateNeedsReconnect {
		t.Fatalf("inbox after release = %v, %v; want needs_reconnect", got, err)
	}
}

// TestLoseForgetsHeldActions: a node that loses an inbox's partition
// forgets the inbox's pending held action, which stays pending in the
// store for the new owner (it drained it before, spending the fleet's
// budget, and closed it again if it came back).
func TestLoseForgetsHeldActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 4, 1)
	id := b.ids[1]
	var lost atomic.Bool
	m, err := monitor.New(ctx, monitor.Config{
		Store: b.store, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		TickEvery: time.Hour, SaveEvery: time.Hour,
		Owns: func(x string) bool { return x != id || !lost.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	in, err := b.store.Inbox(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.ChangeState(ctx, id, holdfast.StateChange{From: in.State, To: holdfast.StateSuspect, Reason: "token_revoked",
		Cause: holdfast.CauseHealth, At: b.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	hid, err := b.store.ReserveIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.store.SaveHeldAction(ctx, &holdfast.HeldAction{ID: hid, InboxID: id, Provider: holdfast.ProviderMicrosoft, Tenant: "t0.example",
		To: holdfast.StateNeedsReconnect, Reason: "token_revoked", Why: holdfast.HeldForBudget, HeldAt: b.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	part := holdfast.PartitionOf(id)
	if err := m.Gain(ctx, []int{part}); err != nil {
		t.Fatal(err)
	}
	lost.Store(true)
	m.Lose([]int{part})
	if err := m.Release(ctx, hid); !errors.Is(err, holdfast.ErrNotFound) {
		t.Fatalf("Release after losing the partition = %v, want ErrNotFound (the new owner's)", err)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	hs, err := b.store.FindHeldActions(ctx, holdfast.HeldActionFilter{ID: hid})
	if err != nil || len(hs) != 1 || hs[0].Done {
		t.Fatalf("stored held action after Lose = %+v, %v; want it still pending", hs, err)
	}
}

// TestNotOwnedSendJudgedByStoredState: a send job runs on a node that does
// not own its inbox. That node's engine copy of the inbox is refreshed
// only by the owner's signal; when the signal that the inbox is connected
// again was missed, the copy said paused for good and held the send for
// ever (2 of 4,800 sends in the 100,000-inbox load test). The admission
// follows the stored state, and the copy is brought in line.
func TestNotOwnedSendJudgedByStoredState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 4, 2)
	victim := b.ids[1]
	m, err := monitor.New(ctx, monitor.Config{
		Store: b.store, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		TickEvery: time.Hour, SaveEvery: time.Hour,
		Owns: func(id string) bool { return id != victim },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)

	change := func(from, to holdfast.State) *holdfast.Inbox {
		t.Helper()
		if _, err := b.store.ChangeState(ctx, victim, holdfast.StateChange{From: from, To: to,
			Reason: "provider_outage", Cause: holdfast.CauseHealth, At: b.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		in, err := b.store.Inbox(ctx, victim)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	in, err := b.store.Inbox(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	paused := change(in.State, holdfast.StatePaused)
	if err := m.Refresh(ctx, victim); err != nil { // the owner's signal
		t.Fatal(err)
	}
	if a, err := m.AdmitInbox(ctx, paused, health.OpSend); err != nil || a != health.Hold {
		t.Fatalf("AdmitInbox(paused) = %s, %v; want hold", a, err)
	}
	back := change(holdfast.StatePaused, holdfast.StateConnected) // its signal is missed
	if a, err := m.AdmitInbox(ctx, back, health.OpSend); err != nil || a != health.Allow {
		t.Errorf("AdmitInbox(connected again, signal missed) = %s, %v; want allow", a, err)
	}
	if st, _ := m.State(victim); st != holdfast.StateConnected {
		t.Errorf("engine copy after AdmitInbox = %s, want connected (the stored state)", st)
	}
	needs := change(holdfast.StateConnected, holdfast.StateNeedsReconnect)
	if a, err := m.AdmitInbox(ctx, needs, health.OpSend); err != nil || a != health.Fail {
		t.Errorf("AdmitInbox(needs_reconnect) = %s, %v; want fail", a, err)
	}
}

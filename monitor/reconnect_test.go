package monitor_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
)

// TestReconnected: an inbox whose grant was revoked (needs_reconnect) is
// reconnected by its owner; it is connected at once, its history records
// the reconnection (cause api), and the engine treats it as connected. A
// connected inbox's reconnection is recorded too, and an unknown inbox is
// not found.
func TestReconnected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 200, 20)
	m := b.open(t, nil)
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
	if st, err := m.State(b.ids[7]); err != nil || st != holdfast.StateNeedsReconnect {
		t.Fatalf("State(revoked) = %s, %v; want needs_reconnect", st, err)
	}

	for _, tc := range []struct {
		name string
		id   string
		from holdfast.State
	}{
		{"revoked", b.ids[7], holdfast.StateNeedsReconnect},
		{"connected", b.ids[8], holdfast.StateConnected},
	} {
		if err := m.Reconnected(ctx, tc.id); err != nil {
			t.Fatalf("Reconnected(%s) = %v", tc.name, err)
		}
		if st, err := m.State(tc.id); err != nil || st != holdfast.StateConnected {
			t.Errorf("State(%s) after Reconnected = %s, %v; want connected", tc.name, st, err)
		}
		in, err := b.store.Inbox(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if in.State != holdfast.StateConnected || in.Reason != "reconnected" {
			t.Errorf("%s inbox after Reconnected: %s (%s), want connected (reconnected)", tc.name, in.State, in.Reason)
		}
		evs, err := b.store.Events(ctx, tc.id, holdfast.EventFilter{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if e := evs[0]; e.Reason != "reconnected" || e.Cause != holdfast.CauseAPI || e.OldState != tc.from || e.NewState != holdfast.StateConnected {
			t.Errorf("%s inbox's last event = %+v, want %s → connected, reconnected, cause api", tc.name, e, tc.from)
		}
		if len(evs) > 1 && evs[1].NewState == holdfast.StateConnected && evs[1].Cause == holdfast.CauseHealth && tc.from != holdfast.StateConnected {
			t.Errorf("%s inbox's move to connected was recorded twice: %+v", tc.name, evs)
		}
	}

	// The revoked inbox now works: later outcomes keep it connected.
	for range 120 {
		second(t, b, m, func(int) *health.Outcome { return ok })
	}
	if st, _ := m.State(b.ids[7]); st != holdfast.StateConnected {
		t.Errorf("reconnected inbox drifted to %s", st)
	}
	if err := m.Reconnected(ctx, "inb_unknown"); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("Reconnected(unknown) = %v, want ErrNotFound", err)
	}
}

// TestReconnectedDuringOutageStoredBeforeAnswered (issue 12, point 3): an
// inbox reconnected while the store is down, then failing again, gets
// more moves queued behind its Reconnected call; when the queue reaches
// its limit, compaction must not merge the reconnection into them. The
// call answers once the reconnection is stored, and the inbox's history
// shows it.
func TestReconnectedDuringOutageStoredBeforeAnswered(t *testing.T) {
	t.Parallel()
	b := setup(t, 12, 3)
	fs := &faultyStore{Store: b.store}
	m, err := monitor.New(context.Background(), monitor.Config{
		Store: fs, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		TickEvery: time.Hour, SaveEvery: time.Hour, QueueLimit: 4, RetryEvery: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctx, c := context.WithTimeout(context.Background(), 5*time.Second); defer c(); _ = m.Stop(ctx) })
	revocation(t, b, m) // inbox 1 needs reconnecting
	if err := m.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}

	down := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	fs.setFail(func(string, any) error { return down })
	// A declaration whose caller gives up keeps the writer retrying its
	// incident, so that what follows stays queued, where compaction acts.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	start := b.clock.Now().Add(-3 * time.Hour)
	if _, err := m.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderGoogle, Start: start, End: start.Add(time.Minute)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Declare during the outage = %v; want it to wait until its context ends", err)
	}
	cancel()

	done := make(chan error, 1)
	go func() { done <- m.Reconnected(context.Background(), b.ids[1]) }()
	for st, _ := m.State(b.ids[1]); st != holdfast.StateConnected; st, _ = m.State(b.ids[1]) {
		time.Sleep(time.Millisecond)
	}
	// Inbox 1 is revoked again, the others flap: moves queue up behind
	// the reconnection, and the queue is compacted.
	bad := &health.Outcome{Op: health.OpRefresh, Verdict: &revoked}
	ok := &health.Outcome{Op: health.OpSync, OK: true}
	for s := range 600 {
		second(t, b, m, func(i int) *health.Outcome {
			switch {
			case s%30 != i%30:
				return nil
			case i == 1 || (s/60)%2 == 1:
				return bad
			}
			return ok
		})
	}
	if st, _ := m.State(b.ids[1]); st == holdfast.StateConnected {
		t.Fatalf("inbox 1 is %s after failing again; the test needs it to have moved on", st)
	}
	if n, _ := metricValue(t, m.Collector(), "holdfast_monitor_decisions_coalesced_total", map[string]string{"kind": "transition"}); n == 0 {
		t.Fatal("no move was coalesced during the outage; the test needs compaction")
	}

	fs.setFail(nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Reconnected = %v; want nil once the store is back", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Reconnected has not answered 10 s after the store came back")
	}
	if h := history(t, b)[b.ids[1]]; !slices.Contains(h, "connected/"+monitor.ReasonReconnected) {
		t.Errorf("inbox 1's history once Reconnected answered = %q; want the reconnection in it", h)
	}
}

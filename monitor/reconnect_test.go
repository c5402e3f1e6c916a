package monitor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
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

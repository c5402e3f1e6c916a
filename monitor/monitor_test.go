package monitor_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
	"github.com/holdfast/holdfast/store/sqlite"
)

// clock is a settable clock for the engine under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// revoked is the token endpoint's answer when a grant is revoked, or when
// Microsoft's identity platform is failing as on 2025-03-01.
var revoked = classify.Classify(classify.Input{
	Provider: "microsoft", Surface: classify.SurfaceToken, HTTPStatus: 400,
	Raw: `{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked.","error_codes":[50173],"suberror":"bad_token"}`,
})

type testBundle struct {
	store *sqlite.Store
	clock *clock
	ids   []string
	path  string
}

// setup stores n Microsoft inboxes spread over tenants.
func setup(t *testing.T, n, tenants int) *testBundle {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "holdfast.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)}
	b := &testBundle{store: st, clock: c, path: path}
	for i := range n {
		in := &holdfast.Inbox{
			ID: holdfast.NewID("inb", c.Now().Add(time.Duration(i)*time.Millisecond)), Provider: holdfast.ProviderMicrosoft,
			Email: fmt.Sprintf("u%d@t%d.example", i, i%tenants), Tenant: fmt.Sprintf("t%d.example", i%tenants),
			State: holdfast.StateConnecting, Reason: "created", Since: c.Now(), CreatedAt: c.Now(), UpdatedAt: c.Now(),
		}
		if err := st.CreateInbox(ctx, in, holdfast.Event{InboxID: in.ID, At: c.Now(), NewState: in.State, Reason: "created", Cause: holdfast.CauseAPI}); err != nil {
			t.Fatal(err)
		}
		b.ids = append(b.ids, in.ID)
	}
	return b
}

func (b *testBundle) open(t *testing.T, onGrant func(string, bool)) *monitor.Monitor {
	t.Helper()
	m, err := monitor.New(context.Background(), monitor.Config{
		Store: b.store, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		TickEvery: time.Hour, SaveEvery: time.Hour, // the test ticks by hand
		OnGrant: onGrant,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// second runs one virtual second: a tick, then one outcome per inbox for
// which outcome returns non-nil.
func second(t *testing.T, b *testBundle, m *monitor.Monitor, outcome func(i int) *health.Outcome) {
	t.Helper()
	b.clock.advance(time.Second)
	m.Tick()
	for i, id := range b.ids {
		if o := outcome(i); o != nil {
			if _, err := m.Observe(id, *o); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func countStates(t *testing.T, st holdfast.Store) map[holdfast.State]int64 {
	t.Helper()
	counts, err := st.CountInboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[holdfast.State]int64{}
	for _, c := range counts {
		out[c.State] += c.Count
	}
	return out
}

// TestOutageAcrossRestart replays a provider-wide outage of
// permanent-looking errors: an incident opens, nobody is disconnected or
// notified, a restart in the middle loses nothing, and every inbox is
// connected again after the provider recovers.
func TestOutageAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 400, 40)
	var grantsMu sync.Mutex
	granted := map[string]bool{}
	onGrant := func(id string, probe bool) {
		grantsMu.Lock()
		granted[id] = true
		grantsMu.Unlock()
	}
	m := b.open(t, onGrant)
	ok := &health.Outcome{Op: health.OpSync, OK: true}
	bad := &health.Outcome{Op: health.OpRefresh, Verdict: &revoked}

	// At(0..60s): healthy traffic; every inbox verified.
	for range 60 {
		second(t, b, m, func(i int) *health.Outcome { return ok })
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := countStates(t, b.store)[holdfast.StateConnected]; got != 400 {
		t.Fatalf("At(60s): %d inboxes connected in the store, want 400", got)
	}

	// At(60s..5m): every request fails with AADSTS50173.
	for range 240 {
		second(t, b, m, func(i int) *health.Outcome { return bad })
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	open, err := b.store.Incidents(ctx, true, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Provider != holdfast.ProviderMicrosoft || open[0].Tenant != "" {
		t.Fatalf("At(5m): open incidents = %+v, want one for all of microsoft", open)
	}

	// Restart in the middle of the outage: the engine comes back with the
	// same view (the paused inboxes and the open incident).
	before := m.Counts(holdfast.ProviderMicrosoft)
	if before[holdfast.StatePaused] == 0 {
		t.Fatalf("At(5m): engine states %v, want inboxes paused by the incident", before)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	m = b.open(t, onGrant)
	defer m.Stop(ctx)
	if after := m.Counts(holdfast.ProviderMicrosoft); !maps.Equal(before, after) {
		t.Fatalf("after restart: engine states %v, want %v as before", after, before)
	}
	for range 600 {
		second(t, b, m, func(i int) *health.Outcome { return bad })
	}

	// The provider recovers: granted inboxes (probes, then the recovery
	// ramp) succeed; the others wait for their grant.
	for s := 0; s < 1800; s++ {
		second(t, b, m, func(i int) *health.Outcome {
			grantsMu.Lock()
			defer grantsMu.Unlock()
			if granted[b.ids[i]] || s%60 == 0 {
				return ok
			}
			return nil
		})
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	states := countStates(t, b.store)
	if states[holdfast.StateNeedsReconnect] != 0 || states[holdfast.StateNeedsAdmin] != 0 {
		t.Errorf("inboxes asked to act during an outage: %v", states)
	}
	if states[holdfast.StateConnected] != 400 {
		t.Errorf("after recovery: states %v, want all 400 connected", states)
	}
	all, err := b.store.Incidents(ctx, false, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Open() {
		t.Errorf("incidents after recovery = %+v, want the one, resolved", all)
	}
	for _, id := range b.ids {
		ns, err := b.store.Notices(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != 0 {
			t.Fatalf("inbox %s was sent notices during an outage: %+v", id, ns)
		}
	}
}

// TestRealRevocation: one inbox fails with a permanent error for good while
// the others work; it ends in needs_reconnect with one notice, and its
// history records every move.
func TestRealRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 200, 20)
	m := b.open(t, nil)
	defer m.Stop(ctx)
	ok := &health.Outcome{Op: health.OpSync, OK: true}
	bad := &health.Outcome{Op: health.OpRefresh, Verdict: &revoked}
	for s := 0; s < 2*3600; s++ {
		second(t, b, m, func(i int) *health.Outcome {
			if s%30 != i%30 {
				return nil // each inbox makes a request every 30 s
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
	in, err := b.store.Inbox(ctx, b.ids[7])
	if err != nil {
		t.Fatal(err)
	}
	if in.State != holdfast.StateNeedsReconnect || in.ActionRequired() != holdfast.RequireReconnect {
		t.Fatalf("revoked inbox: state %s, want needs_reconnect", in.State)
	}
	evs, err := b.store.Events(ctx, b.ids[7], holdfast.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 3 || evs[0].NewState != holdfast.StateNeedsReconnect || evs[0].Cause != holdfast.CauseHealth {
		t.Errorf("revoked inbox history = %+v, want it to end in needs_reconnect caused by the health engine", evs)
	}
	ns, err := b.store.Notices(ctx, b.ids[7])
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 {
		t.Errorf("revoked inbox got %d notices, want 1", len(ns))
	}
	if states := countStates(t, b.store); states[holdfast.StateConnected] != 199 {
		t.Errorf("states %v, want 199 connected", states)
	}
}

// TestCanariesAcrossRestart: two canaries failing permanent-class freeze
// the provider while the rest of the fleet works; the marks survive a
// restart.
func TestCanariesAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 200, 20)
	m := b.open(t, nil)
	if err := m.SetCanary("inb_nope", true); err == nil {
		t.Error("SetCanary(unknown) = nil, want an error")
	}
	for _, id := range b.ids[:2] {
		if err := m.SetCanary(id, true); err != nil {
			t.Fatal(err)
		}
	}
	ok := &health.Outcome{Op: health.OpSync, OK: true}
	bad := &health.Outcome{Op: health.OpRefresh, Verdict: &revoked}
	for range 30 {
		second(t, b, m, func(i int) *health.Outcome { return ok })
	}
	// Restart: the canary marks come back with the engine's state.
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	m = b.open(t, nil)
	defer m.Stop(ctx)
	for range 60 {
		second(t, b, m, func(i int) *health.Outcome {
			if i < 2 {
				return bad
			}
			return ok
		})
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	open, err := b.store.Incidents(ctx, true, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Tenant != "" || !strings.HasPrefix(open[0].Evidence, "canaries") {
		t.Fatalf("At(90s): open incidents = %+v, want one for all of microsoft, opened by the canaries", open)
	}
}

// TestRetroactiveIncidentAnnounced covers an incident declared for a past
// window: it is stored resolved, its save writes the events of its
// opening and resolution to the outbox (AnnounceIncident), and OnIncident
// hears of it opened and resolved, as for one seen live. A state change
// writes its events too (AnnounceState), and a move that is no change
// none.
func TestRetroactiveIncidentAnnounced(t *testing.T) {
	t.Parallel()
	b := setup(t, 4, 2)
	if _, err := b.store.ChangeState(t.Context(), b.ids[0], holdfast.StateChange{To: holdfast.StateNeedsReconnect, Reason: "invalid_grant"}); err != nil {
		t.Fatal(err)
	}
	type call struct {
		id     int64
		opened bool
	}
	var mu sync.Mutex
	var calls []call
	m, err := monitor.New(context.Background(), monitor.Config{
		Store: b.store, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		TickEvery: time.Hour, SaveEvery: time.Hour,
		OnIncident: func(_ context.Context, in *holdfast.Incident, opened bool) {
			mu.Lock()
			calls = append(calls, call{in.ID, opened})
			mu.Unlock()
		},
		AnnounceIncident: func(in *holdfast.Incident, opened bool) ([]holdfast.OutboxEvent, error) {
			return []holdfast.OutboxEvent{{ID: fmt.Sprintf("evt_incident_%d_%v_%v", in.ID, opened, in.Open()), Type: "incident"}}, nil
		},
		AnnounceState: func(in *holdfast.Inbox, from holdfast.State) ([]holdfast.OutboxEvent, error) {
			return []holdfast.OutboxEvent{{ID: fmt.Sprintf("evt_%s_%s_%s", in.ID, from, in.State), Type: "inbox"}}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	now := b.clock.Now()
	in, err := m.Declare(t.Context(), monitor.Declaration{Provider: holdfast.ProviderMicrosoft,
		Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour), Note: "missed outage"})
	if err != nil {
		t.Fatalf("Declare = %v", err)
	}
	if in.Open() {
		t.Fatalf("retroactive incident is open: %+v", in)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []call{{in.ID, true}, {in.ID, false}}; !slices.Equal(calls, want) {
		t.Errorf("OnIncident calls %v, want %v", calls, want)
	}
	mu.Unlock()
	for range 2 { // the second is no move: connected already
		if err := m.Reconnected(t.Context(), b.ids[0]); err != nil {
			t.Fatalf("Reconnected = %v", err)
		}
	}
	mu.Lock()
	evs, err := b.store.OutboxEvents(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.ID)
	}
	want := []string{fmt.Sprintf("evt_incident_%d_true_false", in.ID), "evt_" + b.ids[0] + "_needs_reconnect_connected"}
	if !slices.Equal(ids, want) {
		t.Errorf("outbox = %v; want %v", ids, want)
	}
}

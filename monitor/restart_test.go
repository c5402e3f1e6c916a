package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
)

// engines opens a fresh, migrated store of each engine.
var engines = []struct {
	name string
	open func(t *testing.T) monitor.Store
}{
	{"sqlite", func(t *testing.T) monitor.Store { return sqlitetest.Open(t) }},
	{"postgres", func(t *testing.T) monitor.Store { return pgtest.NewStore(t) }},
}

// seed stores one connected inbox of each provider given and returns
// their IDs.
func seed(t *testing.T, st monitor.Store, now time.Time, providers ...holdfast.Provider) []string {
	t.Helper()
	var ids []string
	for i, p := range providers {
		in := &holdfast.Inbox{
			ID: holdfast.NewID("inb", now.Add(time.Duration(i)*time.Millisecond)), Provider: p,
			Email: fmt.Sprintf("u%d@t%d.example", i, i), Tenant: fmt.Sprintf("t%d.example", i),
			State: holdfast.StateConnected, Reason: "created", Since: now, CreatedAt: now, UpdatedAt: now,
		}
		if err := st.CreateInbox(t.Context(), in, holdfast.Event{InboxID: in.ID, At: now, NewState: in.State, Reason: "created", Cause: holdfast.CauseAPI}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	return ids
}

// restartBundle is a store with one inbox of each provider, and Monitors
// opened on it, as one service started again and again.
type restartBundle struct {
	st    monitor.Store
	clock *clock
	ids   []string
}

// open starts a Monitor on the store, stopped when the test ends (before
// the store closes) unless the test stops it or abandons it first.
func (b *restartBundle) open(t *testing.T, cfg *health.Config) *monitor.Monitor {
	t.Helper()
	m, err := monitor.New(t.Context(), monitor.Config{
		Store: b.st, Clock: b.clock, Logger: slog.New(slog.DiscardHandler), Engine: cfg,
		TickEvery: time.Hour, SaveEvery: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	return m
}

// TestStoreIsTruthAfterRestart abandons Monitors without Stop (a kill -9:
// the engine state they saved last predates their last decisions) and
// starts others on the same store: what the store shows is what the new
// engine acts on, and a new incident or held action never takes an ID
// already stored.
func TestStoreIsTruthAfterRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, b *restartBundle)
	}{
		{"IncidentDeclaredAfterSave", testIncidentDeclaredAfterSave},
		{"IncidentResolvedAfterSave", testIncidentResolvedAfterSave},
		{"HeldActionAfterSave", testHeldActionAfterSave},
		{"ActedAfterSave", testActedAfterSave},
	}
	for _, e := range engines {
		for _, tt := range tests {
			t.Run(e.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				b := &restartBundle{st: e.open(t), clock: &clock{t: time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)}}
				b.ids = seed(t, b.st, b.clock.Now(), holdfast.ProviderMicrosoft, holdfast.ProviderGoogle)
				tt.run(t, b)
			})
		}
	}
}

// testIncidentDeclaredAfterSave: an incident declared after the last save
// is resolvable after a restart, and the next one gets another ID.
func testIncidentDeclaredAfterSave(t *testing.T, b *restartBundle) {
	first := b.open(t, nil)
	ms, err := first.Declare(t.Context(), monitor.Declaration{Provider: holdfast.ProviderMicrosoft, Note: "Entra ID down"})
	if err != nil {
		t.Fatalf("Declare(microsoft) = %v", err)
	}
	// first is abandoned here.
	b.clock.advance(time.Minute)
	second := b.open(t, nil)
	gg, err := second.Declare(t.Context(), monitor.Declaration{Provider: holdfast.ProviderGoogle, Note: "Gmail down"})
	if err != nil {
		t.Fatalf("Declare(google) after restart = %v", err)
	}
	if gg.ID == ms.ID {
		t.Errorf("Declare(google) after restart got ID %d, the ID of the open Microsoft incident", gg.ID)
	}
	got, err := b.st.IncidentByID(t.Context(), ms.ID)
	if err != nil {
		t.Fatalf("IncidentByID(%d) = %v", ms.ID, err)
	}
	if got.Provider != holdfast.ProviderMicrosoft || !got.Open() {
		t.Errorf("IncidentByID(%d) = %s open=%v after restart, want the open microsoft incident", ms.ID, got.Provider, got.Open())
	}
	res, err := second.Resolve(t.Context(), ms.ID)
	if err != nil {
		t.Fatalf("Resolve(%d) after restart = %v, want the open microsoft incident resolved", ms.ID, err)
	}
	if res.Provider != holdfast.ProviderMicrosoft || res.Open() {
		t.Errorf("Resolve(%d) = %s open=%v, want microsoft resolved", ms.ID, res.Provider, res.Open())
	}
	if got, err := b.st.IncidentByID(t.Context(), ms.ID); err != nil || got.Open() {
		t.Errorf("IncidentByID(%d) after Resolve = %+v, %v; want resolved", ms.ID, got, err)
	}
}

// testIncidentResolvedAfterSave: an incident resolved after the last save
// (which has it open) stays resolved after a restart, and its scope is
// free for a new one.
func testIncidentResolvedAfterSave(t *testing.T, b *restartBundle) {
	ctx := t.Context()
	first := b.open(t, nil)
	in, err := first.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderMicrosoft})
	if err != nil {
		t.Fatalf("Declare = %v", err)
	}
	if err := first.Stop(ctx); err != nil { // saves the engine with in open
		t.Fatal(err)
	}
	second := b.open(t, nil)
	if _, err := second.Resolve(ctx, in.ID); err != nil {
		t.Fatalf("Resolve(%d) = %v", in.ID, err)
	}
	// second is abandoned here.
	b.clock.advance(time.Minute)
	third := b.open(t, nil)
	if _, err := third.Resolve(ctx, in.ID); !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("Resolve(%d) again after restart = %v, want ErrConflict (resolved before the restart)", in.ID, err)
	}
	again, err := third.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderMicrosoft})
	if err != nil {
		t.Fatalf("Declare(microsoft) after restart = %v, want a new incident: the last one was resolved", err)
	}
	if again.ID == in.ID {
		t.Errorf("new incident got ID %d, the resolved one's", again.ID)
	}
	if got, err := b.st.IncidentByID(ctx, in.ID); err != nil || got.Open() {
		t.Errorf("IncidentByID(%d) = %+v, %v; want resolved", in.ID, got, err)
	}
}

// revokeFirst opens a Monitor with cfg, made to confirm a lost credential
// at its first permanent-class failure (cfg is changed so), feeds it one
// for the first inbox and waits until its decisions are stored. The
// Monitor is then abandoned.
func (b *restartBundle) revokeFirst(t *testing.T, cfg *health.Config) {
	t.Helper()
	cfg.ConfirmCount, cfg.ConfirmSpan = 1, 0
	m := b.open(t, cfg)
	b.clock.advance(time.Second)
	if _, err := m.Observe(b.ids[0], health.Outcome{Op: health.OpRefresh, Verdict: &revoked}); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// testHeldActionAfterSave: an action held after the last save can be
// released after a restart, and acts on the inbox.
func testHeldActionAfterSave(t *testing.T, b *restartBundle) {
	ctx := t.Context()
	cfg := health.DefaultConfig()
	cfg.ProviderBudgetPerHour, cfg.ProviderBudgetShare = 0, 0 // every action is held
	b.revokeFirst(t, &cfg)
	held, err := b.st.FindHeldActions(ctx, holdfast.HeldActionFilter{PendingOnly: true})
	if err != nil || len(held) != 1 {
		t.Fatalf("pending held actions = %v, %v; want one", held, err)
	}
	b.clock.advance(time.Minute)
	second := b.open(t, &cfg)
	if err := second.Release(ctx, held[0].ID); err != nil {
		t.Fatalf("Release(%d) after restart = %v", held[0].ID, err)
	}
	in, err := b.st.Inbox(ctx, b.ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if in.State != holdfast.StateNeedsReconnect {
		t.Errorf("inbox after its held action was released: %s, want needs_reconnect", in.State)
	}
	got, err := b.st.FindHeldActions(ctx, holdfast.HeldActionFilter{ID: held[0].ID})
	if err != nil || len(got) != 1 || got[0].Outcome != holdfast.HeldReleased {
		t.Errorf("held action %d after Release = %+v, %v; want released", held[0].ID, got, err)
	}
}

// testActedAfterSave: an inbox moved to needs_reconnect after the last
// save, its notice still in its grace period, gets its notice after a
// restart, once.
func testActedAfterSave(t *testing.T, b *restartBundle) {
	ctx := t.Context()
	cfg := health.DefaultConfig()
	b.revokeFirst(t, &cfg)
	if in, err := b.st.Inbox(ctx, b.ids[0]); err != nil || in.State != holdfast.StateNeedsReconnect {
		t.Fatalf("Inbox = %+v, %v; want needs_reconnect", in, err)
	}
	// The abandoned Monitor's notice was queued in its grace period.
	b.clock.advance(time.Minute)
	second := b.open(t, &cfg)
	for range 3 {
		b.clock.advance(cfg.NoticeGrace)
		second.Tick()
	}
	if err := second.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ns, err := b.st.Notices(ctx, b.ids[0]); err != nil || len(ns) != 1 {
		t.Errorf("notices after the restart = %d, %v; want 1", len(ns), err)
	}
}

// failingIncidents is a store whose SaveIncident fails while down is set.
type failingIncidents struct {
	monitor.Store
	mu   sync.Mutex
	down bool
}

func (s *failingIncidents) SaveIncident(ctx context.Context, in *holdfast.Incident, announce holdfast.Announce[*holdfast.Incident]) error {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		return errors.New("database unreachable")
	}
	return s.Store.SaveIncident(ctx, in, announce)
}

func (s *failingIncidents) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// TestDeclareAnswersOnlyOnceDurable: while the incident cannot be stored,
// Declare does not report success (the API would answer 201 for an
// incident a crash then loses); once the store is back, the incident is
// stored and resolvable.
func TestDeclareAnswersOnlyOnceDurable(t *testing.T) {
	t.Parallel()
	st := &failingIncidents{Store: sqlitetest.Open(t)}
	b := &restartBundle{st: st, clock: &clock{t: time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)}}
	b.ids = seed(t, st, b.clock.Now(), holdfast.ProviderMicrosoft)
	m := b.open(t, nil)
	st.setDown(true)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if in, err := m.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderMicrosoft}); err == nil {
		t.Fatalf("Declare with the store down = %+v, nil; want an error", in)
	}
	st.setDown(false)
	if err := m.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	open, err := st.Incidents(t.Context(), true, 10)
	if err != nil || len(open) != 1 {
		t.Fatalf("open incidents once the store is back = %v, %v; want the declared one", open, err)
	}
	if _, err := m.Resolve(t.Context(), open[0].ID); err != nil {
		t.Errorf("Resolve(%d) = %v", open[0].ID, err)
	}
}

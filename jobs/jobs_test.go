package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/riverqueue/river"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/store/postgres"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
	"github.com/holdfast/holdfast/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger sends warnings and errors to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// engine opens a fresh store with its and River's tables, and returns it
// with a runner on it, made with opts.
type engine struct {
	name  string
	setup func(t *testing.T, opts ...jobs.Option) (holdfast.Store, *jobs.Runner)
}

var engines = []engine{
	{"SQLite", func(t *testing.T, opts ...jobs.Option) (holdfast.Store, *jobs.Runner) {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "holdfast.db"))
		if err != nil {
			t.Fatalf("sqlite.Open = %v", err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate = %v", err)
		}
		if err := jobs.MigrateSQLite(t.Context(), st.DB(), testLogger(t)); err != nil {
			t.Fatalf("MigrateSQLite = %v", err)
		}
		r, err := jobs.NewSQLite(st.DB(), st, testLogger(t), opts...)
		if err != nil {
			t.Fatalf("NewSQLite = %v", err)
		}
		return st, r
	}},
	{"Postgres", func(t *testing.T, opts ...jobs.Option) (holdfast.Store, *jobs.Runner) {
		st := pgtest.NewStore(t)
		if err := jobs.MigratePostgres(t.Context(), st.Pool(), st.Schema(), testLogger(t)); err != nil {
			t.Fatalf("MigratePostgres = %v", err)
		}
		r, err := jobs.NewPostgres(st.Pool(), st.Schema(), st, testLogger(t), opts...)
		if err != nil {
			t.Fatalf("NewPostgres = %v", err)
		}
		return st, r
	}},
}

// TestFleetSnapshotRuns starts River on a fresh store, waits for the
// fleet_snapshot job that runs at start to write a snapshot and prune the
// snapshots older than the retention, and stops.
func TestFleetSnapshotRuns(t *testing.T) {
	t.Parallel()
	retentions := []struct {
		name      string
		opts      []jobs.Option
		retention time.Duration
	}{
		{"DefaultRetention", nil, jobs.DefaultSnapshotRetention},
		{"WithSnapshotRetention", []jobs.Option{jobs.WithSnapshotRetention(2 * time.Hour)}, 2 * time.Hour},
	}
	for _, e := range engines {
		for _, rt := range retentions {
			t.Run(e.name+"/"+rt.name, func(t *testing.T) {
				t.Parallel()
				testFleetSnapshotRuns(t, e, rt.opts, rt.retention)
			})
		}
	}
}

func testFleetSnapshotRuns(t *testing.T, e engine, opts []jobs.Option, retention time.Duration) {
	st, r := e.setup(t, opts...)
	ctx := t.Context()
	for i, p := range []holdfast.Provider{holdfast.ProviderGoogle, holdfast.ProviderGoogle, holdfast.ProviderIMAP} {
		in := &holdfast.Inbox{
			ID: "inb_" + string(rune('a'+i)), Email: string(rune('a'+i)) + "@example.test",
			Provider: p, State: holdfast.StateConnected,
		}
		if err := st.CreateInbox(ctx, in, holdfast.Event{}); err != nil {
			t.Fatalf("CreateInbox = %v", err)
		}
	}
	// One snapshot older than the retention, one younger by as much.
	begin := time.Now().UTC().Truncate(holdfast.StoreTimePrecision)
	old := holdfast.FleetSnapshot{At: begin.Add(-retention - time.Hour), Counts: []holdfast.InboxCount{{Provider: holdfast.ProviderGoogle, State: holdfast.StatePaused, Count: 1}}}
	young := holdfast.FleetSnapshot{At: begin.Add(-retention + time.Hour), Counts: []holdfast.InboxCount{{Provider: holdfast.ProviderGoogle, State: holdfast.StatePaused, Count: 2}}}
	for _, snap := range []holdfast.FleetSnapshot{old, young} {
		if err := st.AppendFleetSnapshot(ctx, snap.At, snap.Counts); err != nil {
			t.Fatalf("AppendFleetSnapshot = %v", err)
		}
	}

	if err := r.Start(ctx); err != nil {
		t.Fatalf("Start = %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			r.Stop(context.Background())
		}
	})

	// Wait for a new snapshot, and for the old one to be gone: the job
	// prunes just after it appends.
	var snaps []holdfast.FleetSnapshot
	deadline := time.Now().Add(30 * time.Second)
	for len(snaps) == 0 || !snaps[len(snaps)-1].At.After(young.At) || snaps[0].At.Equal(old.At) {
		if time.Now().After(deadline) {
			t.Fatalf("30 seconds after Start, the snapshots are %v; want the young one and a new one", snaps)
		}
		time.Sleep(50 * time.Millisecond)
		var err error
		if snaps, err = st.FleetSnapshots(ctx, time.Time{}); err != nil {
			t.Fatalf("FleetSnapshots = %v", err)
		}
	}

	stopBegin := time.Now()
	if err := r.Stop(ctx); err != nil {
		t.Errorf("Stop = %v", err)
	}
	stopped = true
	if d := time.Since(stopBegin); d > 5*time.Second {
		t.Errorf("Stop took %v; want under 5s", d)
	}

	if len(snaps) != 2 {
		t.Fatalf("%d snapshots; want 2, the young one and a new one", len(snaps))
	}
	if diff := cmp.Diff(young, snaps[0]); diff != "" {
		t.Errorf("snapshot younger than the retention (-want +got):\n%s", diff)
	}
	got := map[holdfast.InboxCount]bool{}
	for _, c := range snaps[1].Counts {
		if c.Count != 0 {
			got[c] = true
		}
	}
	want := map[holdfast.InboxCount]bool{
		{Provider: holdfast.ProviderGoogle, State: holdfast.StateConnected, Count: 2}: true,
		{Provider: holdfast.ProviderIMAP, State: holdfast.StateConnected, Count: 1}:   true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("non-zero counts of the new snapshot (-want +got):\n%s", diff)
	}
	if n, all := len(snaps[1].Counts), len(holdfast.Providers)*len(holdfast.States); n != all {
		t.Errorf("new snapshot has %d counts; want one for each of the %d providers and states", n, all)
	}
}

func TestStopBeforeStartAndTwice(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			_, r := e.setup(t)
			for i := range 2 {
				if err := r.Stop(t.Context()); err != nil {
					t.Errorf("Stop #%d before Start = %v", i+1, err)
				}
			}
		})
	}
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		migrate func(t *testing.T) func() error
	}{
		{"SQLite", func(t *testing.T) func() error {
			st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "holdfast.db"))
			if err != nil {
				t.Fatalf("sqlite.Open = %v", err)
			}
			t.Cleanup(func() { st.Close() })
			return func() error {
				if err := st.Migrate(t.Context()); err != nil {
					return err
				}
				return jobs.MigrateSQLite(t.Context(), st.DB(), nil)
			}
		}},
		{"Postgres", func(t *testing.T) func() error {
			st := pgtest.NewStore(t)
			return func() error {
				if err := st.Migrate(t.Context()); err != nil {
					return err
				}
				return jobs.MigratePostgres(t.Context(), st.Pool(), st.Schema(), nil)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			migrate := tt.migrate(t)
			for i := range 2 {
				if err := migrate(); err != nil {
					t.Fatalf("migrate #%d = %v", i+1, err)
				}
			}
		})
	}
}

// fakeStore records snapshots and prunes; CountInboxes returns counts or
// err, and PruneFleetSnapshots pruned and pruneErr.
type fakeStore struct {
	// The aggregates' other methods are not called: they would panic.
	holdfast.InboxStore
	holdfast.HealthStore

	counts   []holdfast.InboxCount
	err      error
	pruned   int64
	pruneErr error

	at          time.Time
	got         []holdfast.InboxCount
	prunes      int
	pruneBefore time.Time
}

func (f *fakeStore) CountInboxes(context.Context) ([]holdfast.InboxCount, error) {
	return f.counts, f.err
}

func (f *fakeStore) AppendFleetSnapshot(_ context.Context, at time.Time, counts []holdfast.InboxCount) error {
	f.at, f.got = at, counts
	return nil
}

func (f *fakeStore) PruneFleetSnapshots(_ context.Context, before time.Time) (int64, error) {
	f.prunes++
	f.pruneBefore = before
	return f.pruned, f.pruneErr
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestFleetSnapshotWorker(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		counts  []holdfast.InboxCount
		err     error
		nonZero []holdfast.InboxCount // counts other than zeros, in order
	}{
		{name: "Empty"},
		{
			name: "Known",
			counts: []holdfast.InboxCount{
				{Provider: holdfast.ProviderMicrosoft, State: holdfast.StatePaused, Count: 7},
				{Provider: holdfast.ProviderGoogle, State: holdfast.StateConnected, Count: 3},
			},
			nonZero: []holdfast.InboxCount{
				{Provider: holdfast.ProviderMicrosoft, State: holdfast.StatePaused, Count: 7},
				{Provider: holdfast.ProviderGoogle, State: holdfast.StateConnected, Count: 3},
			},
		},
		{
			name: "UnknownKeptAtTheEnd",
			counts: []holdfast.InboxCount{
				{Provider: "yahoo", State: holdfast.StateConnected, Count: 2},
				{Provider: holdfast.ProviderIMAP, State: holdfast.StateNeedsAdmin, Count: 1},
			},
			nonZero: []holdfast.InboxCount{
				{Provider: holdfast.ProviderIMAP, State: holdfast.StateNeedsAdmin, Count: 1},
				{Provider: "yahoo", State: holdfast.StateConnected, Count: 2},
			},
		},
		{name: "CountFails", err: errors.New("database gone")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeStore{counts: tt.counts, err: tt.err}
			w := &jobs.FleetSnapshotWorker{Store: st, Clock: fixedClock(now), Logger: slog.New(slog.DiscardHandler)}
			err := w.Work(t.Context(), &river.Job[jobs.FleetSnapshotArgs]{})
			if tt.err != nil {
				if !errors.Is(err, tt.err) || st.got != nil {
					t.Errorf("Work = %v with %d counts appended; want %v and none", err, len(st.got), tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Work = %v", err)
			}
			if !st.at.Equal(now) {
				t.Errorf("snapshot at %v; want the clock's %v", st.at, now)
			}
			var nonZero []holdfast.InboxCount
			for _, c := range st.got {
				if c.Count != 0 {
					nonZero = append(nonZero, c)
				}
			}
			if diff := cmp.Diff(tt.nonZero, nonZero); diff != "" {
				t.Errorf("non-zero counts (-want +got):\n%s", diff)
			}
			if st.prunes != 0 {
				t.Errorf("%d prunes with no retention; want none", st.prunes)
			}
			if want := len(holdfast.Providers)*len(holdfast.States) + len(tt.nonZero) - countKnown(tt.nonZero); len(st.got) != want {
				t.Errorf("%d counts appended; want %d", len(st.got), want)
			}
		})
	}
}

func TestFleetSnapshotWorkerPrunes(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		retention  time.Duration
		pruned     int64
		pruneErr   error
		wantBefore time.Time // zero: no prune
		wantLog    string    // in the logs; "" for no log at info or above
	}{
		{name: "Prunes", retention: 30 * 24 * time.Hour, pruned: 42,
			wantBefore: now.Add(-30 * 24 * time.Hour), wantLog: "level=INFO msg=\"fleet snapshots pruned\" pruned_rows=42"},
		{name: "NothingToPrune", retention: time.Hour, wantBefore: now.Add(-time.Hour)},
		{name: "ZeroKeepsForever"},
		{name: "NegativeKeepsForever", retention: -time.Hour},
		// The snapshot is taken all the same, and the job succeeds.
		{name: "PruneFails", retention: time.Hour, pruned: 7, pruneErr: errors.New("database gone"),
			wantBefore: now.Add(-time.Hour), wantLog: "level=WARN msg=\"fleet snapshot: pruning old snapshots stopped; the next run goes on\" pruned_rows=7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeStore{pruned: tt.pruned, pruneErr: tt.pruneErr}
			var logs bytes.Buffer
			w := &jobs.FleetSnapshotWorker{
				Store: st, Clock: fixedClock(now), Retention: tt.retention,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
			}
			if err := w.Work(t.Context(), &river.Job[jobs.FleetSnapshotArgs]{}); err != nil {
				t.Fatalf("Work = %v", err)
			}
			if len(st.got) == 0 {
				t.Errorf("Work appended no snapshot")
			}
			switch {
			case tt.wantBefore.IsZero() && st.prunes != 0:
				t.Errorf("%d prunes; want none", st.prunes)
			case !tt.wantBefore.IsZero() && (st.prunes != 1 || !st.pruneBefore.Equal(tt.wantBefore)):
				t.Errorf("%d prunes, the last before %v; want 1 before %v", st.prunes, st.pruneBefore, tt.wantBefore)
			}
			if tt.wantLog == "" && logs.Len() != 0 {
				t.Errorf("logs = %q; want none", logs.String())
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("logs = %q; want %q in them", logs.String(), tt.wantLog)
			}
		})
	}
}

// countKnown counts the elements of counts with a known provider.
func countKnown(counts []holdfast.InboxCount) int {
	n := 0
	for _, c := range counts {
		if c.Provider.Valid() {
			n++
		}
	}
	return n
}

// TestMigratePostgresConcurrently: nodes starting at once on a fresh
// schema all migrate River's tables; without a lock one of them failed
// with a duplicate key on pg_type.
func TestMigratePostgresConcurrently(t *testing.T) {
	t.Parallel()
	url, _ := pgtest.Schema(t)
	const nodes = 4
	stores := make([]*postgres.Store, nodes)
	for i := range stores {
		stores[i] = pgtest.Open(t, url)
	}
	errs := make(chan error, nodes)
	for _, st := range stores {
		go func() { errs <- jobs.MigratePostgres(t.Context(), st.Pool(), st.Schema(), nil) }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Errorf("MigratePostgres on one of %d nodes at once = %v", nodes, err)
		}
	}
}

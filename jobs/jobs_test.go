package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/riverqueue/river"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/jobs"
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
// with a runner on it.
type engine struct {
	name  string
	setup func(t *testing.T) (holdfast.Store, *jobs.Runner)
}

var engines = []engine{
	{"SQLite", func(t *testing.T) (holdfast.Store, *jobs.Runner) {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "holdfast.db"))
		if err != nil {
			t.Fatalf("sqlite.Open = %v", err)
		}
		t.Cleanup(func() { st.Close() })
		if err := jobs.MigrateSQLite(t.Context(), st, testLogger(t)); err != nil {
			t.Fatalf("MigrateSQLite = %v", err)
		}
		r, err := jobs.NewSQLite(st.DB(), st, testLogger(t))
		if err != nil {
			t.Fatalf("NewSQLite = %v", err)
		}
		return st, r
	}},
	{"Postgres", func(t *testing.T) (holdfast.Store, *jobs.Runner) {
		st := pgtest.NewStore(t)
		if err := jobs.MigratePostgres(t.Context(), st, testLogger(t)); err != nil {
			t.Fatalf("MigratePostgres = %v", err)
		}
		r, err := jobs.NewPostgres(st.Pool(), st.Schema(), st, testLogger(t))
		if err != nil {
			t.Fatalf("NewPostgres = %v", err)
		}
		return st, r
	}},
}

// TestFleetSnapshotRuns starts River on a fresh store, waits for the
// fleet_snapshot job that runs at start to write a snapshot, and stops.
func TestFleetSnapshotRuns(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			st, r := e.setup(t)
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

			if err := r.Start(ctx); err != nil {
				t.Fatalf("Start = %v", err)
			}
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					r.Stop(context.Background())
				}
			})

			var snaps []holdfast.FleetSnapshot
			deadline := time.Now().Add(30 * time.Second)
			for len(snaps) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no fleet snapshot 30 seconds after Start")
				}
				time.Sleep(50 * time.Millisecond)
				var err error
				if snaps, err = st.FleetSnapshots(ctx, time.Time{}); err != nil {
					t.Fatalf("FleetSnapshots = %v", err)
				}
			}

			begin := time.Now()
			if err := r.Stop(ctx); err != nil {
				t.Errorf("Stop = %v", err)
			}
			stopped = true
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("Stop took %v; want under 5s", d)
			}

			if len(snaps) != 1 {
				t.Fatalf("%d snapshots; want 1", len(snaps))
			}
			got := map[holdfast.InboxCount]bool{}
			for _, c := range snaps[0].Counts {
				if c.Count != 0 {
					got[c] = true
				}
			}
			want := map[holdfast.InboxCount]bool{
				{Provider: holdfast.ProviderGoogle, State: holdfast.StateConnected, Count: 2}: true,
				{Provider: holdfast.ProviderIMAP, State: holdfast.StateConnected, Count: 1}:   true,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("non-zero counts of the snapshot (-want +got):\n%s", diff)
			}
			if n, all := len(snaps[0].Counts), len(holdfast.Providers)*len(holdfast.States); n != all {
				t.Errorf("snapshot has %d counts; want one for each of the %d providers and states", n, all)
			}
		})
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
			return func() error { return jobs.MigrateSQLite(t.Context(), st, nil) }
		}},
		{"Postgres", func(t *testing.T) func() error {
			st := pgtest.NewStore(t)
			return func() error { return jobs.MigratePostgres(t.Context(), st, nil) }
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

// fakeStore records snapshots; CountInboxes returns counts or err.
type fakeStore struct {
	counts []holdfast.InboxCount
	err    error
	at     time.Time
	got    []holdfast.InboxCount
}

func (f *fakeStore) CountInboxes(context.Context) ([]holdfast.InboxCount, error) {
	return f.counts, f.err
}

func (f *fakeStore) AppendFleetSnapshot(_ context.Context, at time.Time, counts []holdfast.InboxCount) error {
	f.at, f.got = at, counts
	return nil
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
			if want := len(holdfast.Providers)*len(holdfast.States) + len(tt.nonZero) - countKnown(tt.nonZero); len(st.got) != want {
				t.Errorf("%d counts appended; want %d", len(st.got), want)
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

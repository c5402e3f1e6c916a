package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/sqlite"
	"github.com/holdfast/holdfast/store/storetest"
)

// childEnv, when set, turns the test binary into the child process of
// TestCreatedInboxSurvivesSIGKILL; its value is the database path.
const childEnv = "HOLDFAST_SQLITE_TEST_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		runChild(path)
		return
	}
	goleak.VerifyTestMain(m)
}

// open opens and migrates the store at path and closes it at cleanup.
func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	return s
}

func newStore(t *testing.T) holdfast.Store {
	return open(t, filepath.Join(t.TempDir(), "holdfast.db"))
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, newStore,
		storetest.WithReopen(func(t *testing.T) func(t *testing.T) holdfast.Store {
			path := filepath.Join(t.TempDir(), "holdfast.db")
			return func(t *testing.T) holdfast.Store { return open(t, path) }
		}),
		storetest.WithPruneBatchSize(func(s holdfast.Store, n int) { sqlite.SetPruneBatchSize(s.(*sqlite.Store), n) }),
	)
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "holdfast.db"))
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	}
	for _, tt := range tests {
		t.Run(tt.pragma, func(t *testing.T) {
			t.Parallel()
			var got string
			if err := s.DB().QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA %s = %q; want %q", tt.pragma, got, tt.want)
			}
		})
	}
}

func TestSingleConnection(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "holdfast.db"))
	if got := s.DB().Stats().MaxOpenConnections; got != 1 {
		t.Errorf("MaxOpenConnections = %d; want 1", got)
	}
}

// TestCountInboxesPlan checks that CountInboxes reads only the covering
// index on (provider, state), in the GROUP BY's order, without sorting.
func TestCountInboxesPlan(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "holdfast.db"))
	want := []string{"SCAN inboxes USING COVERING INDEX inboxes_provider_state"}
	if diff := cmp.Diff(want, queryPlan(t, s, sqlite.QueryCountInboxes)); diff != "" {
		t.Errorf("plan of CountInboxes (-want +got):\n%s", diff)
	}
}

// TestLookupPlans checks that the lookups run for every notice and every
// status page read their indexes rather than whole tables.
func TestLookupPlans(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "holdfast.db"))
	tests := []struct {
		name  string
		query string
		args  []any
		want  []string
	}{
		{"NoticeRecords by ID", sqlite.QueryNoticeRecordByID, []any{7, "", "", "", "", nil, nil, 1}, []string{
			"SEARCH n USING INTEGER PRIMARY KEY (rowid=?)",
			"SEARCH i USING INDEX sqlite_autoindex_inboxes_1 (id=?) LEFT-JOIN",
		}},
		{"InboxesByOwner", sqlite.QueryInboxesByOwner, []any{"owner@example.test"}, []string{
			"MERGE (UNION ALL)",
			"LEFT",
			"SEARCH inboxes USING INDEX inboxes_owner_email (<expr>=?)",
			"USE TEMP B-TREE FOR ORDER BY",
			"RIGHT",
			"SEARCH inboxes USING INDEX inboxes_unowned_email (<expr>=?)",
			"USE TEMP B-TREE FOR ORDER BY",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, queryPlan(t, s, tt.query, tt.args...)); diff != "" {
				t.Errorf("plan of %s (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

// queryPlan returns the details of EXPLAIN QUERY PLAN for query with args.
func queryPlan(t *testing.T, s *sqlite.Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.DB().QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN: %v", err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var (
			id, parent, unused int
			detail             string
		)
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatalf("EXPLAIN QUERY PLAN: %v", err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN: %v", err)
	}
	return plan
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "holdfast.db"))
	if err := s.Migrate(t.Context()); err != nil {
		t.Errorf("second Migrate = %v", err)
	}
}

func TestOpenBadPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path string
	}{
		{"Empty", ""},
		{"QueryString", filepath.Join(t.TempDir(), "x.db?mode=ro")},
		{"MissingDirectory", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := sqlite.Open(t.Context(), tt.path)
			if err == nil {
				s.Close()
				t.Errorf("Open(%q) = nil error; want an error", tt.path)
			}
		})
	}
}

// TestCreatedInboxSurvivesSIGKILL kills a process right after CreateInbox
// returned and checks that the inbox is there. A killed process loses
// nothing the kernel already has, so this shows that a commit is complete
// when CreateInbox returns; synchronous=FULL (TestPragmas) is what makes it
// survive a power cut too.
func TestCreatedInboxSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "holdfast.db")
	open(t, path).Close()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("read child's inbox ID: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	cmd.Wait()

	var id string
	if _, err := fmt.Sscanf(line, "created %s", &id); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	s := open(t, path)
	if _, err := s.Inbox(t.Context(), id); err != nil {
		t.Errorf("Inbox(%s) after SIGKILL = %v", id, err)
	}
	evs, err := s.Events(t.Context(), id, holdfast.EventFilter{})
	if err != nil || len(evs) != 1 {
		t.Errorf("Events(%s) after SIGKILL = %v, %v; want the creation event", id, evs, err)
	}
}

// runChild creates an inbox in the database at path, reports its ID on
// stdout and waits to be killed.
func runChild(path string) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	now := time.Now()
	in := &holdfast.Inbox{
		ID: fmt.Sprintf("inb_sigkill%d", now.UnixNano()), Email: "kill@example.test",
		Provider: holdfast.ProviderGoogle, State: holdfast.StateConnecting, Credentials: []byte("sealed"),
	}
	if err := s.CreateInbox(ctx, in, holdfast.Event{Cause: holdfast.CauseAPI}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("created %s\n", in.ID)
	time.Sleep(time.Minute)
	os.Exit(1)
}

// TestIDSequenceStartsAfterStoredIDs: on a database that has incidents and
// held actions, migration 00010 starts the ID sequence after the largest
// of their IDs, so that an upgraded service never reuses one.
func TestIDSequenceStartsAfterStoredIDs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "holdfast.db"))
	at := time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)
	if err := s.SaveIncident(ctx, &holdfast.Incident{ID: 7, Kind: holdfast.IncidentDeclared, Provider: holdfast.ProviderMicrosoft, OpenedAt: at}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveHeldAction(ctx, &holdfast.HeldAction{ID: 12, InboxID: "inb_x", Provider: holdfast.ProviderMicrosoft, To: holdfast.StateNeedsReconnect, HeldAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.MigrateDownTo(ctx, s, 9); err != nil {
		t.Fatalf("MigrateDownTo(9) = %v", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	if first, err := s.ReserveIDs(ctx, 1); err != nil || first != 13 {
		t.Errorf("ReserveIDs(1) after the upgrade = %d, %v; want 13", first, err)
	}
}

// TestMigrateBackfillsPartitions checks that Migrate gives inboxes stored
// without a partition (before migration 00013) theirs.
func TestMigrateBackfillsPartitions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "holdfast.db"))
	in := &holdfast.Inbox{ID: "inb_backfill", Email: "b@example.test", Provider: holdfast.ProviderIMAP, State: holdfast.StateConnected}
	if err := s.CreateInbox(ctx, in, holdfast.Event{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, "UPDATE inboxes SET part = NULL"); err != nil {
		t.Fatal(err)
	}
	if page, _ := s.PartitionInboxes(ctx, holdfast.PartitionOf(in.ID), "", 10); len(page) != 0 {
		t.Fatalf("an inbox without a partition is listed in one")
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	if page, err := s.PartitionInboxes(ctx, holdfast.PartitionOf(in.ID), "", 10); err != nil || len(page) != 1 || page[0].ID != in.ID {
		t.Errorf("after Migrate, its partition lists %v, %v; want the inbox", page, err)
	}
}

package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/postgres"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
	"github.com/holdfast/holdfast/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t,
		func(t *testing.T) holdfast.Store { return pgtest.NewStore(t) },
		storetest.WithReopen(func(t *testing.T) func(t *testing.T) holdfast.Store {
			databaseURL, _ := pgtest.Schema(t)
			return func(t *testing.T) holdfast.Store { return pgtest.Open(t, databaseURL) }
		}),
		storetest.WithPruneBatchSize(func(s holdfast.Store, n int) { postgres.SetPruneBatchSize(s.(*postgres.Store), n) }),
	)
}

// tableCount counts the store's tables in schema.
func tableCount(t *testing.T, st *postgres.Store, schema string) int {
	t.Helper()
	var n int
	err := st.Pool().QueryRow(t.Context(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('inboxes', 'inbox_events', 'api_keys', 'fleet_snapshots')`,
		schema).Scan(&n)
	if err != nil {
		t.Fatalf("count tables: %v", err)
	}
	return n
}

func TestSchemaFromURL(t *testing.T) {
	t.Parallel()
	databaseURL, schema := pgtest.Schema(t)
	st := pgtest.Open(t, databaseURL)
	if got := st.Schema(); got != schema {
		t.Errorf("Schema() = %q; want %q from the URL", got, schema)
	}
	if n := tableCount(t, st, schema); n != 4 {
		t.Errorf("%d of 4 tables in schema %s", n, schema)
	}
}

func TestWithSchema(t *testing.T) {
	t.Parallel()
	_, base := pgtest.Schema(t)
	tests := []struct {
		name   string
		schema string
	}{
		{"Existing", base},
		{"Missing", base + "_new"}, // Migrate creates it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := pgtest.Open(t, pgtest.URL(), postgres.WithSchema(tt.schema))
			t.Cleanup(func() {
				_, err := st.Pool().Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{tt.schema}.Sanitize()+" CASCADE")
				if err != nil {
					t.Errorf("drop schema %s: %v", tt.schema, err)
				}
			})
			if got := st.Schema(); got != tt.schema {
				t.Errorf("Schema() = %q; want %q", got, tt.schema)
			}
			if n := tableCount(t, st, tt.schema); n != 4 {
				t.Errorf("%d of 4 tables in schema %s", n, tt.schema)
			}
		})
	}
}

// TestCountInboxesPlan checks that CountInboxes can count with an
// index-only scan of the index on (provider, state). The test table is too
// small for the planner to prefer it over a sequential scan, so the test
// disables those.
func TestCountInboxesPlan(t *testing.T) {
	t.Parallel()
	st := pgtest.NewStore(t)
	ctx := t.Context()
	tx, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, "EXPLAIN (COSTS OFF) "+postgres.QueryCountInboxes)
	if err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	plan := strings.Join(lines, "\n")
	if want := "Index Only Scan using inboxes_provider_state on inboxes"; !strings.Contains(plan, want) {
		t.Errorf("plan of CountInboxes has no %q:\n%s", want, plan)
	}
}

func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	databaseURL, schema := pgtest.Schema(t)
	const n = 4
	stores := make([]*postgres.Store, n)
	for i := range stores {
		st, err := postgres.Open(t.Context(), databaseURL)
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		t.Cleanup(func() { st.Close() })
		stores[i] = st
	}
	var wg sync.WaitGroup
	for _, st := range stores {
		wg.Go(func() {
			if err := st.Migrate(t.Context()); err != nil {
				t.Errorf("concurrent Migrate = %v", err)
			}
		})
	}
	wg.Wait()
	if n := tableCount(t, stores[0], schema); n != 4 {
		t.Errorf("%d of 4 tables in schema %s", n, schema)
	}
}

func TestPoolMaxConns(t *testing.T) {
	t.Parallel()
	databaseURL, _ := pgtest.Schema(t)
	tests := []struct {
		name  string
		param string // added to the URL's query
		want  int32
	}{
		{"Default", "", postgres.DefaultMaxConns},
		// 4 is pgx's own default on small machines: set explicitly, it
		// stays.
		{"Smaller", "&pool_max_conns=4", 4},
		{"Larger", "&pool_max_conns=40", 40},
		{"OtherPoolSetting", "&pool_min_conns=1", postgres.DefaultMaxConns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, err := postgres.Open(t.Context(), databaseURL+tt.param)
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			defer st.Close()
			if got := st.Pool().Config().MaxConns; got != tt.want {
				t.Errorf("MaxConns with %q = %d; want %d", tt.param, got, tt.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url string
	}{
		{"Unreachable", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"},
		{"BadURL", "postgres://holdfast:sekrit-pw@127.0.0.1:notaport/test"},
		{"MissingSearchPathSchema", pgtest.URL() + "&options=-c%20search_path%3Dno_such_schema_here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, err := postgres.Open(t.Context(), tt.url)
			if err == nil {
				st.Close()
				t.Fatalf("Open(%s) = nil error; want an error", tt.name)
			}
			if strings.Contains(err.Error(), "sekrit") {
				t.Errorf("Open error %q shows the password", err)
			}
		})
	}
}

// TestMigrateBackfillsPartitions checks that Migrate gives inboxes stored
// without a partition (before migration 00013) theirs.
func TestMigrateBackfillsPartitions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := pgtest.NewStore(t)
	in := &holdfast.Inbox{ID: "inb_backfill", Email: "b@example.test", Provider: holdfast.ProviderIMAP, State: holdfast.StateConnected}
	if err := s.CreateInbox(ctx, in, holdfast.Event{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "UPDATE inboxes SET part = NULL"); err != nil {
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

// TestTryLockAcrossNodes: a lock taken through one store (a node) is
// held for every store on the same schema, not for a store on another
// schema; and when its holder's connection dies (the node died), another
// node takes it.
func TestTryLockAcrossNodes(t *testing.T) {
	t.Parallel()
	databaseURL, schema := pgtest.Schema(t)
	a, b := pgtest.Open(t, databaseURL), pgtest.Open(t, databaseURL)
	other := pgtest.NewStore(t)
	ctx := t.Context()
	const name = "webhook relay"

	release, ok, err := a.TryLock(ctx, name)
	if err != nil || !ok {
		t.Fatalf("a.TryLock = %v, %v; want taken", ok, err)
	}
	defer release() // gives the dead connection back, for the pool to close
	if _, ok, err := b.TryLock(ctx, name); err != nil || ok {
		t.Fatalf("b.TryLock while a holds it = %v, %v; want not taken", ok, err)
	}
	if r, ok, err := other.TryLock(ctx, name); err != nil || !ok {
		t.Errorf("TryLock on another schema = %v, %v; want taken", ok, err)
	} else {
		r()
	}

	// a's node dies: its session ends, and its locks with it.
	var pid int32
	err = b.Pool().QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
		AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1 || ' ' || $2, 0)`, schema, name).Scan(&pid)
	if err != nil {
		t.Fatalf("find the holder's session: %v", err)
	}
	if _, err := b.Pool().Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, ok, err := b.TryLock(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			r()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never took the lock of a's dead session")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

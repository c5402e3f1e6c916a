// Package pgtest gives each test its own PostgreSQL schema, created fresh
// and dropped when the test ends, so that tests can run in parallel
// against one database.
//
// The database is TEST_DATABASE_URL, a postgres:// URL, or DefaultURL. When
// it cannot be reached, tests are skipped with a message saying how to
// enable them, except under CI=true, where they fail: CI must never pass
// by skipping.
//
//	func TestSomething(t *testing.T) {
//		st := pgtest.NewStore(t) // migrated *postgres.Store in a fresh schema
//		...
//	}
//
// For a process that opens the database itself, such as an end-to-end
// test of "holdfast serve --database-url", Schema returns a URL whose
// search_path selects the fresh schema.
//
// The Go API is not stable.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/holdfast/holdfast/store/postgres"
	"github.com/holdfast/holdfast/store/storetest"
)

// DefaultURL is the database used when TEST_DATABASE_URL is unset: a local
// Postgres with trust authentication and a database named test.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// schemaPrefix starts the name of every schema made here, followed by the
// creation time, so that schemas left by killed test runs can be found and
// dropped.
const schemaPrefix = "holdfast_test_"

// staleAfter is the age after which a test schema is assumed abandoned.
const staleAfter = time.Hour

// The SQL this package runs. Names are quoted identifiers (%s).
const (
	queryCreateSchema = `CREATE SCHEMA %s`
	queryDropSchema   = `DROP SCHEMA IF EXISTS %s CASCADE`
	queryTestSchemas  = `SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)`
)

// URL returns TEST_DATABASE_URL, or DefaultURL when it is unset.
func URL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var (
	probeOnce sync.Once
	probeErr  error
)

// connect connects to URL(), skipping or failing t when the database
// cannot be reached.
func connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	probeOnce.Do(func() {
		conn, err := pgx.Connect(ctx, URL())
		if err != nil {
			probeErr = err
			return
		}
		sweep(ctx, conn)
		conn.Close(ctx)
	})
	if probeErr != nil {
		unreachable(t, probeErr)
	}
	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		unreachable(t, err)
	}
	return conn
}

// unreachable skips t, or fails it under CI=true.
func unreachable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("Postgres at %s is unreachable (%v). Start Postgres there, or set TEST_DATABASE_URL to a postgres:// URL of a database these tests may create schemas in.",
		redacted(URL()), err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + " Skipping; under CI=true this fails.")
}

// redacted returns u without its password.
func redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "TEST_DATABASE_URL"
	}
	return p.Redacted()
}

// sweep drops test schemas older than staleAfter, left by test runs that
// were killed before their cleanup.
func sweep(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, queryTestSchemas, schemaPrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		stamp, _, _ := strings.Cut(strings.TrimPrefix(name, schemaPrefix), "_")
		created, err := time.Parse("20060102150405", stamp)
		if err != nil || time.Since(created) < staleAfter {
			continue
		}
		_, _ = conn.Exec(ctx, fmt.Sprintf(queryDropSchema, pgx.Identifier{name}.Sanitize()))
	}
}

// Schema creates a fresh, empty schema, drops it with everything in it when
// t's test ends, and returns its name and a database URL whose search_path
// selects it (through the URL's options parameter), for postgres.Open or
// another process. It skips or fails t when Postgres is unreachable.
func Schema(t testing.TB) (databaseURL, schema string) {
	t.Helper()
	u, err := url.Parse(URL())
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("TEST_DATABASE_URL must be a postgres:// URL, not %s", redacted(URL()))
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema = schemaPrefix + time.Now().UTC().Format("20060102150405") + "_" + hex.EncodeToString(b[:])

	conn := connect(t)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), fmt.Sprintf(queryCreateSchema, pgx.Identifier{schema}.Sanitize())); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// t.Context is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, URL())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf(queryDropSchema, pgx.Identifier{schema}.Sanitize())); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	opt := "-c search_path=" + schema
	if old := q.Get("options"); old != "" {
		opt = old + " " + opt
	}
	q.Set("options", opt)
	// pgx reads "+" literally, so spaces must be %20. Encode writes a "+"
	// of the values as %2B, so every "+" left is a space.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String(), schema
}

// NewStore returns a store open on a fresh, migrated schema (see Schema),
// closed when t's test ends, before the schema is dropped.
func NewStore(t testing.TB, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	databaseURL, _ := Schema(t)
	return Open(t, databaseURL, opts...)
}

// Open opens and migrates the store at databaseURL, as from Schema, and
// closes it when t's test ends. Opening the same URL again shows what a
// restarted service would see.
func Open(t testing.TB, databaseURL string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	return storetest.Open(t, func(ctx context.Context) (*postgres.Store, error) {
		return postgres.Open(ctx, databaseURL, opts...)
	})
}

// Package sqlitetest opens migrated SQLite stores for tests, the way
// pgtest does for PostgreSQL.
package sqlitetest

import (
	"path/filepath"
	"testing"

	"github.com/holdfast/holdfast/store/sqlite"
)

// Open returns a new, migrated store in a temporary directory of t, closed
// when t ends.
func Open(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "holdfast.db"))
	if err != nil {
		t.Fatalf("open SQLite store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate SQLite store: %v", err)
	}
	return st
}

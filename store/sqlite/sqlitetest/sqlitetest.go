// Package sqlitetest opens migrated SQLite stores for tests, the way
// pgtest does for PostgreSQL.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/holdfast/holdfast/store/sqlite"
	"github.com/holdfast/holdfast/store/storetest"
)

// Open returns a new, migrated store in a temporary directory of t, closed
// when t ends.
func Open(t testing.TB) *sqlite.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "holdfast.db")
	return storetest.Open(t, func(ctx context.Context) (*sqlite.Store, error) { return sqlite.Open(ctx, path) })
}

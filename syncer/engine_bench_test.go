package syncer_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
	"github.com/holdfast/holdfast/store/sqlite"
)

// benchEngine is one store engine the sync benchmarks store into.
type benchEngine struct {
	name string
	// open returns a new, migrated, empty store. The caller closes it;
	// closing it again at b's cleanup does nothing.
	open func(b *testing.B) holdfast.Store
}

// benchEngines are the engines each sync benchmark runs on, one
// sub-benchmark each. PostgreSQL is TEST_DATABASE_URL or pgtest's default;
// its sub-benchmark is skipped when that is unreachable.
var benchEngines = []benchEngine{
	{name: "sqlite", open: func(b *testing.B) holdfast.Store {
		ctx := context.Background()
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "holdfast.db"))
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Migrate(ctx); err != nil {
			st.Close()
			b.Fatal(err)
		}
		return st
	}},
	{name: "postgres", open: func(b *testing.B) holdfast.Store {
		return pgtest.NewStore(b)
	}},
}

package main

import (
	"testing"

	"github.com/holdfast/holdfast/store/postgres/pgtest"
)

// postgresEngine gives each test its own schema in the test database; it
// fails under CI=true when PostgreSQL is unreachable, and skips otherwise.
var postgresEngine = engine{name: "postgres", env: func(t *testing.T) map[string]string {
	url, _ := pgtest.Schema(t)
	return map[string]string{
		"HOLDFAST_DATABASE_URL": url,
		"HOLDFAST_SECRET_KEY":   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		// The data directory stays unused but must not be the default.
		"HOLDFAST_DATA_DIR": t.TempDir(),
	}
}}

// engines lists the store engines every end-to-end test runs on.
func engines() []engine { return []engine{sqliteEngine, postgresEngine} }

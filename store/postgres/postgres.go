// Package postgres keeps holdfast's store in PostgreSQL: store/sqlstore's
// Store over pgx's native pool, with PostgreSQL's dialect.
//
// A Store keeps its tables in one schema: the one WithSchema names, or the
// first of the search_path that the database URL selects (for example with
// "options=-c search_path=holdfast"), or the server's default. Queries name
// tables without a schema, so every connection of the pool has that
// search_path. River, sharing the pool through Pool, keeps its tables in
// the same schema (see Schema).
//
// Times are timestamptz, kept to the microsecond. The schema is created and
// upgraded by Migrate, with goose and the SQL files embedded from
// migration/. The run-time SQL is store/sqlstore's, but for the few
// statements in dialect.go.
//
// The Go API is not stable.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/sqlstore"
)

//go:embed migration/*.sql
var migrations embed.FS

// Store is a holdfast.Store kept in a PostgreSQL schema. Its methods are
// safe for concurrent use.
type Store struct {
	*sqlstore.Store
	pool   *pgxpool.Pool
	schema string
	// createSchema: WithSchema named the schema, and Migrate creates it.
	createSchema bool
}

var _ holdfast.Store = (*Store)(nil)

// options are what the Options set.
type options struct {
	schema string
	store  sqlstore.Config
}

// Option configures a Store.
type Option func(*options)

// WithSchema keeps the store's tables in the named schema, by setting
// search_path on every connection; Migrate creates the schema if needed.
// Do not combine it with a search_path in the database URL.
func WithSchema(name string) Option {
	return func(o *options) { o.schema = name }
}

// WithClock sets the clock that fills in times the caller left zero. The
// default is the system clock.
func WithClock(c holdfast.Clock) Option {
	return func(o *options) { o.store.Clock = c }
}

// DefaultMaxConns is the size of the connection pool when the database URL
// does not set pool_max_conns. pgx's own default, the greater of 4 and the
// number of CPUs, is too small on small machines: River's listener keeps
// one connection for itself, and its workers, the API and the store share
// the rest.
const DefaultMaxConns = 16

// Open connects to the database at databaseURL (a postgres:// URL or a
// key=value string, as pgx accepts, including the pgxpool settings such as
// pool_max_conns) and checks that it can be reached. The pool holds at
// most DefaultMaxConns connections unless the URL sets pool_max_conns, as
// in "postgres://holdfast@db/holdfast?pool_max_conns=32". Open does not
// create or upgrade the schema: call Migrate for that.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Store{schema: o.schema, createSchema: o.schema != ""}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// The error may quote the URL, password included: leave it out.
		return nil, errors.New("open postgres: cannot parse the database URL")
	}
	// pgxpool.ParseConfig consumes pool_max_conns, so whether the URL set
	// it shows only in a plain parse, which keeps it as a run-time
	// parameter. That parse cannot fail where the first succeeded.
	if pc, err := pgconn.ParseConfig(databaseURL); err == nil {
		if _, ok := pc.RuntimeParams["pool_max_conns"]; !ok {
			cfg.MaxConns = DefaultMaxConns
		}
	}
	if s.schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{s.schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s.pool = pool
	s.Store = sqlstore.New(newDB(pool), dialect{}, o.store)
	if s.schema == "" {
		var current *string
		if err := pool.QueryRow(ctx, queryCurrentSchema).Scan(&current); err != nil {
			pool.Close()
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		if current == nil {
			pool.Close()
			return nil, errors.New("open postgres: no schema of the search_path exists")
		}
		s.schema = *current
	} else if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return s, nil
}

// Migrate brings the schema up to date, creating the schema first if
// WithSchema named it. It is safe to run on every start, from several
// processes at once: a Postgres advisory lock, one per schema, lets one
// process migrate while the others wait.
func (s *Store) Migrate(ctx context.Context) error {
	if s.createSchema {
		if _, err := s.pool.Exec(ctx, fmt.Sprintf(queryCreateSchema, pgx.Identifier{s.schema}.Sanitize())); err != nil {
			return fmt.Errorf("migrate postgres schema %s: %w", s.schema, err)
		}
	}
	fsys, err := fs.Sub(migrations, "migration")
	if err != nil {
		return fmt.Errorf("migrate postgres schema %s: %w", s.schema, err)
	}
	h := fnv.New64a()
	h.Write([]byte("holdfast migrate " + s.schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64())),
		lock.WithLockTimeout(1, 300),
		lock.WithUnlockTimeout(1, 60),
	)
	if err != nil {
		return fmt.Errorf("migrate postgres schema %s: %w", s.schema, err)
	}
	// Closing db leaves the pool open.
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrate postgres schema %s: %w", s.schema, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate postgres schema %s: %w", s.schema, err)
	}
	if _, err := s.BackfillPartitions(ctx); err != nil {
		return fmt.Errorf("migrate postgres schema %s: %w", s.schema, err)
	}
	return nil
}

// Pool returns the store's connection pool, for River's riverpgxv5 driver.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the schema that holds the store's tables, which River's
// client and migrator must be given too.
func (s *Store) Schema() string { return s.schema }

// The SQL Open and Migrate run. queryCreateSchema takes the schema as a
// quoted identifier (%s).
const (
	queryCreateSchema  = `CREATE SCHEMA IF NOT EXISTS %s`
	queryCurrentSchema = `SELECT current_schema()`
)

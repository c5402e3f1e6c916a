package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/holdfast/holdfast/store/sqlstore"
)

// querier is what the pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// executor is the sqlstore.Executor of the pool or of a transaction. pgx
// prepares and caches every statement per connection, so a statement run
// for every message of a sync is parsed once.
type executor struct{ q querier }

// Exec implements sqlstore.Executor.
func (e executor) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := e.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

// Query implements sqlstore.Executor.
func (e executor) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return e.q.Query(ctx, query, args...)
}

// QueryRow implements sqlstore.Executor.
func (e executor) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return e.q.QueryRow(ctx, query, args...)
}

// pgxDB is the sqlstore.DB of pgx's native pool.
type pgxDB struct {
	executor
	pool *pgxpool.Pool
}

// newDB returns the sqlstore.DB of pool.
func newDB(pool *pgxpool.Pool) pgxDB { return pgxDB{executor{pool}, pool} }

// Tx implements sqlstore.DB.
func (d pgxDB) Tx(ctx context.Context, fn func(sqlstore.Executor) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(executor{tx}) })
}

// Ping implements sqlstore.DB.
func (d pgxDB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Close closes the pool, waiting for connections in use to be returned.
// Calling it again does nothing.
func (d pgxDB) Close() error {
	d.pool.Close()
	return nil
}

package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/holdfast/holdfast/store/sqlstore"
)

// pgxDB is the sqlstore.DB of pgx's native pool. pgx prepares and caches
// every statement per connection, so a statement run for every message of
// a sync is parsed once.
type pgxDB struct{ pool *pgxpool.Pool }

func (d pgxDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, d.pool, query, args...)
}

func (d pgxDB) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return d.pool.Query(ctx, query, args...)
}

func (d pgxDB) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return d.pool.QueryRow(ctx, query, args...)
}

func (d pgxDB) Tx(ctx context.Context, fn func(sqlstore.Executor) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(txExec{tx}) })
}

func (d pgxDB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Close closes the pool, waiting for connections in use to be returned.
// Calling it again does nothing.
func (d pgxDB) Close() error {
	d.pool.Close()
	return nil
}

// txExec is the sqlstore.Executor of a transaction.
type txExec struct{ tx pgx.Tx }

func (t txExec) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, t.tx, query, args...)
}

func (t txExec) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return t.tx.Query(ctx, query, args...)
}

func (t txExec) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return t.tx.QueryRow(ctx, query, args...)
}

// exec runs a statement on e, the pool or a transaction, and returns how
// many rows it changed.
func exec(ctx context.Context, e interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, query string, args ...any) (int64, error) {
	tag, err := e.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

package postgres

import (
	"context"
	"sync"
	"time"

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

// queryTryLock takes the session advisory lock whose key hashes the
// schema and the lock's name ($1), and returns the key and whether it was
// taken. Advisory locks are per database: the schema keeps the stores of
// two schemas (tests, or two deployments) apart.
const queryTryLock = `SELECT k, pg_try_advisory_lock(k)
	FROM (SELECT hashtextextended(current_schema() || ' ' || $1, 0) AS k) AS lock`

// unlockTimeout bounds the release of a lock.
const unlockTimeout = 10 * time.Second

// TryLock implements sqlstore.DB with a session advisory lock on a
// connection taken from the pool and kept until release: if the process
// dies, its connection closes and the lock goes with it, and another node
// may take it at once.
func (d pgxDB) TryLock(ctx context.Context, name string) (func(), bool, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	var key int64
	var ok bool
	if err := conn.QueryRow(ctx, queryTryLock, name).Scan(&key, &ok); err != nil {
		// Whether the lock was taken is unknown: the connection goes, and
		// any lock with it.
		closeConn(conn)
		return nil, false, err
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
			defer cancel()
			var released bool
			if err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", key).Scan(&released); err != nil || !released {
				closeConn(conn)
				return
			}
			conn.Release()
		})
	}, true, nil
}

// closeConn closes a pooled connection, and its session with its locks,
// and gives it back to the pool, which then drops it.
func closeConn(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	_ = conn.Conn().Close(ctx)
	conn.Release()
}

// Package sqlstore is the one implementation of holdfast.Store, over SQL.
// Everything the engines do alike is here, once: defaults and validation,
// compare-and-set rules, the event-log append that goes with every state
// change, cursors, paging and limits, and the mapping of errors to
// holdfast.ErrNotFound and holdfast.ErrConflict.
//
// It reaches its database through a small seam, in the spirit of River's
// riverdriver: a DB (an Executor that also runs transactions) and a
// Dialect saying how the engine binds times, recognises its constraint
// violations, and spells the few statements whose SQL differs. store/sqlite
// (database/sql, modernc SQLite) and store/postgres (pgx's native pool)
// provide both; every other statement is written once, in sql.go, with $N
// placeholders, which both engines accept.
//
// Adding a store method means one method here, its SQL in sql.go and, only
// where the engines spell it differently, a field of Statements that each
// dialect fills in.
//
// The Go API is not stable.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
)

// Row is one result row: *sql.Row, or pgx.Row.
type Row interface {
	// Scan copies the row's columns into dest. With no row it returns an
	// error matching sql.ErrNoRows (pgx.ErrNoRows does).
	Scan(dest ...any) error
}

// Rows is a result set being read: *sql.Rows (whose Close the adapter
// wraps), or pgx.Rows.
type Rows interface {
	// Next moves to the next row, reporting false after the last one or
	// on an error.
	Next() bool
	// Scan copies the current row's columns into dest.
	Scan(dest ...any) error
	// Err returns the error that ended Next, if any.
	Err() error
	// Close releases the result set; Next calls it after the last row.
	Close()
}

// Executor runs statements, on the pool or within a transaction. Args are
// bound to $1, $2, ... in order.
type Executor interface {
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a statement returning rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a statement returning at most one row; errors show
	// when the row is scanned.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// DB is the database of one engine: an Executor on its pool that also runs
// transactions.
type DB interface {
	Executor
	// Tx runs fn in a transaction, which it commits if fn returns nil and
	// rolls back otherwise. fn runs every statement on the Executor it is
	// given.
	Tx(ctx context.Context, fn func(tx Executor) error) error
	// TryLock takes the named lock of holdfast.LockStore if nobody holds
	// it: a lock that every node on the database sees, released by the
	// func it returns or with the process.
	TryLock(ctx context.Context, name string) (release func(), ok bool, err error)
	// Ping checks that the database can be reached.
	Ping(ctx context.Context) error
	// Close releases the pool.
	Close() error
}

// Dialect is what one engine does differently.
type Dialect interface {
	// Name names the engine in errors ("sqlite", "postgres").
	Name() string
	// Time returns the value bound for t, which is in UTC at the store's
	// precision: t itself for a timestamp column, or its microseconds
	// since the Unix epoch for an integer one.
	Time(t time.Time) any
	// IsUniqueViolation reports whether err is a violation of a unique or
	// primary key constraint.
	IsUniqueViolation(err error) bool
	// IsForeignKeyViolation reports whether err is a violation of a
	// foreign key.
	IsForeignKeyViolation(err error) bool
	// Statements returns the statements whose SQL differs per engine.
	Statements() *Statements
}

// Config configures a Store.
type Config struct {
	// Clock fills in times the caller left zero; nil is the system clock.
	Clock holdfast.Clock
	// PruneBatchSize is the most rows one statement of
	// PruneFleetSnapshots deletes; zero or less is
	// DefaultPruneBatchSize.
	PruneBatchSize int
}

// DefaultPruneBatchSize is the most rows one statement of
// PruneFleetSnapshots deletes by default, so that no statement holds its
// locks (on SQLite, the only connection and the write lock) for long.
const DefaultPruneBatchSize = 10_000

// Store is holdfast.Store kept in a SQL database. Its methods are safe for
// concurrent use.
type Store struct {
	db      DB
	dialect Dialect
	sql     *Statements
	clock   holdfast.Clock
	// pruneBatchSize is the most rows one statement of
	// PruneFleetSnapshots deletes.
	pruneBatchSize int
}

var _ holdfast.Store = (*Store)(nil)

// New returns a store on db, which speaks dialect d. Closing the store
// closes db.
func New(db DB, d Dialect, cfg Config) *Store {
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	if cfg.PruneBatchSize <= 0 {
		cfg.PruneBatchSize = DefaultPruneBatchSize
	}
	return &Store{db: db, dialect: d, sql: d.Statements(), clock: cfg.Clock, pruneBatchSize: cfg.PruneBatchSize}
}

// SetPruneBatchSize sets the most rows one statement of
// PruneFleetSnapshots deletes, for tests of deleting in batches.
func (s *Store) SetPruneBatchSize(n int) { s.pruneBatchSize = n }

// Ping checks that the database can be reached.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect.Name(), err)
	}
	return nil
}

// TryLock implements holdfast.LockStore.
func (s *Store) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	if name == "" {
		return nil, false, fmt.Errorf("try lock: %w", holdfast.Invalidf("name", "lock name is empty"))
	}
	release, ok, err = s.db.TryLock(ctx, name)
	if err != nil {
		return nil, false, fmt.Errorf("try lock %q: %w", name, err)
	}
	return release, ok, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// now returns the clock's time at the store's precision.
func (s *Store) now() time.Time { return s.clock.Now().UTC().Truncate(holdfast.StoreTimePrecision) }

// orNow returns t in UTC at the store's precision, or now when t is zero.
func (s *Store) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return s.now()
	}
	return orTime(t, time.Time{})
}

// orTime returns t in UTC at the store's precision, or def when t is zero.
// Postgres would round to the microsecond; rounding down here keeps the
// engines alike.
func orTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t.UTC().Truncate(holdfast.StoreTimePrecision)
}

// ceilMicro rounds t up to the store's precision, so that "at or after t"
// keeps its meaning for a t between two stored values.
func ceilMicro(t time.Time) time.Time {
	r := t.Truncate(holdfast.StoreTimePrecision)
	if r.Before(t) {
		r = r.Add(holdfast.StoreTimePrecision)
	}
	return r
}

// time returns the bound value of t, rounded down to the store's precision.
func (s *Store) time(t time.Time) any { return s.dialect.Time(orTime(t, time.Time{})) }

// nullTime returns the bound value of t, or NULL when t is zero.
func (s *Store) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.time(t)
}

// sinceTime returns the bound value of the lower bound t of a range,
// rounded up so that "at or after t" keeps its meaning, or NULL (open)
// when t is zero.
func (s *Store) sinceTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.time(ceilMicro(t))
}

// conflict marks a unique violation as holdfast.ErrConflict and returns
// any other error as it is.
func (s *Store) conflict(err error) error {
	if s.dialect.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %w", holdfast.ErrConflict, err)
	}
	return err
}

// scanTime is a scan target for a time column, stored as a timestamp or
// as integer microseconds since the Unix epoch; NULL is the zero time.
type scanTime time.Time

// Scan implements sql.Scanner, which pgx honours too.
func (t *scanTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = scanTime{}
	case int64:
		*t = scanTime(time.UnixMicro(v).UTC())
	case time.Time:
		*t = scanTime(v.UTC())
	default:
		return fmt.Errorf("scan %T into a time", src)
	}
	return nil
}

// timeDest returns a scan target that stores into *t.
func timeDest(t *time.Time) *scanTime { return (*scanTime)(t) }

// nullString returns s, or NULL when s is empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// one runs q, which returns at most one row, and reads the row with scan.
// No row is holdfast.ErrNotFound; on an error it returns the zero T.
func one[T any](ctx context.Context, e Executor, scan func(Row) (T, error), q string, args ...any) (T, error) {
	var zero T
	v, err := scan(e.QueryRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return zero, holdfast.ErrNotFound
	}
	if err != nil {
		return zero, err
	}
	return v, nil
}

// all runs q and reads every row with scan; on an error it returns nil.
func all[T any](ctx context.Context, e Executor, scan func(Row) (T, error), q string, args ...any) ([]T, error) {
	rows, err := e.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// wrapf returns err with the context that format and args say, or nil
// when err is nil.
func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

// exists reports whether q, a SELECT 1, returns a row.
func exists(ctx context.Context, e Executor, q string, args ...any) (bool, error) {
	var one int
	err := e.QueryRow(ctx, q, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// changeOne runs an UPDATE or DELETE of one row; no row changed is
// holdfast.ErrNotFound.
func changeOne(ctx context.Context, e Executor, q string, args ...any) error {
	n, err := e.Exec(ctx, q, args...)
	if err == nil && n == 0 {
		err = holdfast.ErrNotFound
	}
	return err
}

// swapOne runs q, a compare-and-set UPDATE of the row whose key is the
// first of args; when it changed nothing, see notFoundOr.
func swapOne(ctx context.Context, e Executor, what, q, existsQuery string, args ...any) error {
	n, err := e.Exec(ctx, q, args...)
	if err != nil || n > 0 {
		return err
	}
	return notFoundOr(ctx, e, what, existsQuery, args[0])
}

// notFoundOr tells, after a compare-and-set changed nothing, an unknown row
// from one that no longer matched: it runs existsQuery (a SELECT 1) with
// key and returns holdfast.ErrNotFound when there is no row, and otherwise
// holdfast.ErrConflict saying what, or nil when what is empty.
func notFoundOr(ctx context.Context, e Executor, what, existsQuery string, key ...any) error {
	ok, err := exists(ctx, e, existsQuery, key...)
	switch {
	case err != nil:
		return err
	case !ok:
		return holdfast.ErrNotFound
	case what == "":
		return nil
	}
	return fmt.Errorf("%w: %s", holdfast.ErrConflict, what)
}

// limit applies the page size rules: zero or less means 100, at most 1000.
func limit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// order returns the query oldest, or newestFirst (the same query ordered
// newest first) if newest.
func order(newest bool, oldest, newestFirst string) string {
	if newest {
		return newestFirst
	}
	return oldest
}

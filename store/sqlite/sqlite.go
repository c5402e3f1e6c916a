// Package sqlite implements holdfast.Store on SQLite, through the pure-Go
// driver modernc.org/sqlite.
//
// A Store holds one connection. SQLite allows one writer at a time and
// answers a second with SQLITE_BUSY; River, which shares the database
// through DB, recommends a single connection for the same reason (see
// riversqlite). One connection serialises readers behind writers too, which
// is fine for the deployments SQLite is meant for; larger fleets run on
// store/postgres.
//
// The database runs in WAL mode with synchronous=FULL, so a write whose
// transaction committed survives a crash of the process or of the machine,
// and with foreign keys enforced. Times are stored as INTEGER microseconds
// since the Unix epoch, UTC.
//
// The schema is created and upgraded by Migrate, with goose and the SQL
// files embedded from migration/. All run-time SQL is in queries.go,
// queries_mail.go and queries_webhook.go.
//
// The Go API is not stable.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/holdfast/holdfast"
)

//go:embed migration/*.sql
var migrations embed.FS

// busyTimeout is how long a connection waits for another process's lock
// before it reports SQLITE_BUSY. Within one process the single connection
// already serialises access; this covers tools such as the sqlite3 shell
// that open the same file.
const busyTimeout = 10 * time.Second

// Store is a holdfast.Store kept in one SQLite database file. Its methods
// are safe for concurrent use.
type Store struct {
	db    *sql.DB
	clock holdfast.Clock
	// pruneBatchSize is the most rows one statement of
	// PruneFleetSnapshots deletes.
	pruneBatchSize int
}

var _ holdfast.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock that fills in times the caller left zero. The
// default is the system clock.
func WithClock(c holdfast.Clock) Option {
	return func(s *Store) { s.clock = c }
}

// Open opens the SQLite database at path, creating the file if needed, and
// checks that it can be used. It does not create or upgrade the schema:
// call Migrate for that.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite database %q: path must be a non-empty file name without '?' or '#'", path)
	}
	// The pragmas run on every new connection. _txlock=immediate makes
	// every transaction take the write lock when it begins, so a
	// read-then-write transaction cannot fail half-way with SQLITE_BUSY.
	dsn := path + "?_txlock=immediate" +
		"&_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	s := &Store{db: db, clock: holdfast.SystemClock{}, pruneBatchSize: defaultPruneBatchSize}
	for _, opt := range opts {
		opt(s)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return s, nil
}

// Migrate brings the schema up to date. It is safe to run on every start.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migration")
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, fsys)
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	// p.Close would close s.db, which the store still uses.
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	return nil
}

// DB returns the store's connection pool, for River's riversqlite driver.
// It holds a single connection, so a caller that keeps a transaction or a
// *sql.Rows open blocks every other user until it is done.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database can be reached.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// tx runs fn in a transaction, committing if it returns nil. fn must use
// tx for every statement: the pool's only connection is busy with it.
func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

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
func orTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t.UTC().Truncate(holdfast.StoreTimePrecision)
}

// micros converts t to the stored form.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros converts a stored time back.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// isUnique reports whether err is a violation of a unique or primary key
// constraint.
func isUnique(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// order returns the query oldest, or newestFirst (the same query ordered
// newest first) if newest.
func order(newest bool, oldest, newestFirst string) string {
	if newest {
		return newestFirst
	}
	return oldest
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

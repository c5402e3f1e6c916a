// Package sqlite keeps holdfast's store in SQLite, through the pure-Go
// driver modernc.org/sqlite: store/sqlstore's Store over a database/sql
// pool, with SQLite's dialect.
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
// files embedded from migration/. The run-time SQL is store/sqlstore's,
// but for the few statements in dialect.go.
//
// The Go API is not stable.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/sqlstore"
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
	*sqlstore.Store
	db *sql.DB
}

var _ holdfast.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*sqlstore.Config)

// WithClock sets the clock that fills in times the caller left zero. The
// default is the system clock.
func WithClock(c holdfast.Clock) Option {
	return func(cfg *sqlstore.Config) { cfg.Clock = c }
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

	var cfg sqlstore.Config
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return &Store{Store: sqlstore.New(pool{db, &locks{held: map[string]bool{}}}, dialect{}, cfg), db: db}, nil
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
	if _, err := s.BackfillPartitions(ctx); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	return nil
}

// DB returns the store's connection pool, for River's riversqlite driver.
// It holds a single connection, so a caller that keeps a transaction or a
// *sql.Rows open blocks every other user until it is done.
func (s *Store) DB() *sql.DB { return s.db }

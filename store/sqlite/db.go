package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/holdfast/holdfast/store/sqlstore"
)

// pool is the sqlstore.DB of a database/sql pool.
type pool struct {
	db    *sql.DB
	locks *locks
}

// locks are the named locks of one SQLite database (sqlstore.DB's
// TryLock), held in the process: a SQLite database is served by one
// process, the only node.
type locks struct {
	mu   sync.Mutex
	held map[string]bool
}

// TryLock implements sqlstore.DB.
func (p pool) TryLock(_ context.Context, name string) (func(), bool, error) {
	l := p.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] {
		return nil, false, nil
	}
	l.held[name] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.held, name)
			l.mu.Unlock()
		})
	}, true, nil
}

// Exec implements sqlstore.Executor.
func (p pool) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return rowsAffected(p.db.ExecContext(ctx, query, args...))
}

// Query implements sqlstore.Executor.
func (p pool) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return wrapRows(p.db.QueryContext(ctx, query, args...))
}

// QueryRow implements sqlstore.Executor.
func (p pool) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return p.db.QueryRowContext(ctx, query, args...)
}

// Ping implements sqlstore.DB.
func (p pool) Ping(ctx context.Context) error { return p.db.PingContext(ctx) }

// Close implements sqlstore.DB.
func (p pool) Close() error { return p.db.Close() }

// Tx runs fn in a transaction, committing if it returns nil. fn must use
// the Executor it is given for every statement: the pool's only connection
// is busy with the transaction.
func (p pool) Tx(ctx context.Context, fn func(sqlstore.Executor) error) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(&txExec{tx: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// txExec is the sqlstore.Executor of a transaction. It prepares each
// statement once per transaction: a sync runs the same few statements for
// every message, and preparing them each time was its largest cost. The
// statements close with the transaction.
type txExec struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// stmt returns query prepared within the transaction.
func (t *txExec) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	st, err := t.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = st
	return st, nil
}

// Exec implements sqlstore.Executor.
func (t *txExec) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return 0, err
	}
	return rowsAffected(st.ExecContext(ctx, args...))
}

// Query implements sqlstore.Executor.
func (t *txExec) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return wrapRows(st.QueryContext(ctx, args...))
}

// QueryRow implements sqlstore.Executor.
func (t *txExec) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// rowsAffected returns how many rows the statement that returned res and
// err changed.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// rows is *sql.Rows as sqlstore.Rows.
type rows struct{ *sql.Rows }

// Close closes the rows; an error closing them shows in Err.
func (r rows) Close() { _ = r.Rows.Close() }

// wrapRows returns r as sqlstore.Rows.
func wrapRows(r *sql.Rows, err error) (sqlstore.Rows, error) {
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

// errRow is a row whose statement could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

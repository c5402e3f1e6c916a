package loadtest

// The load test's own PostgreSQL connection: the run's schema, the state
// counts and the write counters. It reads holdfast's tables directly (as
// an operator's query would), never writes them.

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The SQL of the load test. The schema name is a quoted identifier (%s).
const (
	queryCreateDatabase = `CREATE DATABASE %s`
	queryDropDatabase   = `DROP DATABASE IF EXISTS %s WITH (FORCE)`
	queryCreateSchema   = `CREATE SCHEMA %s`
	queryDropSchema     = `DROP SCHEMA IF EXISTS %s CASCADE`
	queryStates         = `SELECT state, count(*) FROM inboxes GROUP BY state`
	queryStale          = `SELECT count(*) FROM inboxes WHERE last_sync_at IS NULL OR last_sync_at < $1`
	queryNeedsOwner     = `SELECT id FROM inboxes WHERE state IN ('needs_reconnect', 'needs_admin')`
	queryDeadLeases     = `SELECT count(*) FROM partition_leases WHERE node = $1 AND leased_until > now()`
	queryLeaseCount     = `SELECT count(*) FROM partition_leases WHERE node <> '' AND leased_until > now()`
	queryOwned          = `SELECT l.node, count(*) FROM inboxes i JOIN partition_leases l ON l.part = i.part
		WHERE l.node <> '' AND l.leased_until > now() GROUP BY l.node`
	queryTupleWrites = `SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables WHERE schemaname = $1`
	queryCommits     = `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`
)

// db is the run's own database (or, without the right to create one, its
// own schema) and a pool on it.
type db struct {
	pool   *pgxpool.Pool
	admin  *pgxpool.Pool
	name   string // the database made for the run, or ""
	schema string
	url    string // the URL the nodes use
}

// openDB makes a fresh database on the server of base, or a fresh schema
// in base when it may not create databases. The database's commit count
// (pg_stat_database) is the run's own only in a database of its own.
func openDB(ctx context.Context, base string) (*db, string, error) {
	admin, err := pgxpool.New(ctx, base)
	if err != nil {
		return nil, "", fmt.Errorf("database: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		admin.Close()
		return nil, "", fmt.Errorf("database URL: %w", err)
	}
	d := &db{admin: admin}
	name := fmt.Sprintf("holdfast_loadtest_%d", time.Now().UnixNano())
	note := ""
	if _, err := admin.Exec(ctx, fmt.Sprintf(queryCreateDatabase, quoteIdent(name))); err == nil {
		d.name, d.schema = name, "public"
		u.Path = "/" + name
	} else {
		note = fmt.Sprintf("a schema in the given database, not a database of its own (%v): the commits per sync count every client of the database", err)
		if _, err := admin.Exec(ctx, fmt.Sprintf(queryCreateSchema, quoteIdent(name))); err != nil {
			admin.Close()
			return nil, "", fmt.Errorf("create schema: %w", err)
		}
		d.schema = name
		q := u.Query()
		q.Set("options", "-c search_path="+name)
		u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	d.url = u.String()
	if d.pool, err = pgxpool.New(ctx, d.url); err != nil {
		_ = d.close(false)
		return nil, "", fmt.Errorf("database: %w", err)
	}
	return d, note, nil
}

// close drops the database or schema unless keep, and closes the pools.
func (d *db) close(keep bool) error {
	if d.pool != nil {
		d.pool.Close()
	}
	defer d.admin.Close()
	if keep {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q, what := fmt.Sprintf(queryDropSchema, quoteIdent(d.schema)), "schema "+d.schema
	if d.name != "" {
		q, what = fmt.Sprintf(queryDropDatabase, quoteIdent(d.name)), "database "+d.name
	}
	if _, err := d.admin.Exec(ctx, q); err != nil {
		return fmt.Errorf("drop %s: %w", what, err)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + s + `"` }

// states counts the inboxes per state.
func (d *db) states(ctx context.Context) (map[string]int, error) {
	rows, err := d.pool.Query(ctx, queryStates)
	if err != nil {
		return nil, fmt.Errorf("inbox states: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("inbox states: %w", err)
		}
		out[s] = n
	}
	return out, rows.Err()
}

// stale counts the inboxes whose last sync is before t.
func (d *db) stale(ctx context.Context, t time.Time) (int, error) {
	var n int
	if err := d.pool.QueryRow(ctx, queryStale, t).Scan(&n); err != nil {
		return 0, fmt.Errorf("stale inboxes: %w", err)
	}
	return n, nil
}

// needsOwner lists the inboxes in needs_reconnect or needs_admin.
func (d *db) needsOwner(ctx context.Context) ([]string, error) {
	rows, err := d.pool.Query(ctx, queryNeedsOwner)
	if err != nil {
		return nil, fmt.Errorf("inboxes needing their owner: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// leasesOf counts the live partition leases of node.
func (d *db) leasesOf(ctx context.Context, node string) (int, error) {
	var n int
	if err := d.pool.QueryRow(ctx, queryDeadLeases, node).Scan(&n); err != nil {
		return 0, fmt.Errorf("leases of %s: %w", node, err)
	}
	return n, nil
}

// liveLeases counts the live partition leases.
func (d *db) liveLeases(ctx context.Context) (int, error) {
	var n int
	if err := d.pool.QueryRow(ctx, queryLeaseCount).Scan(&n); err != nil {
		return 0, fmt.Errorf("leases: %w", err)
	}
	return n, nil
}

// owned counts the inboxes of each node's leased partitions.
func (d *db) owned(ctx context.Context) (map[string]int, error) {
	rows, err := d.pool.Query(ctx, queryOwned)
	if err != nil {
		return nil, fmt.Errorf("owned inboxes: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var node string
		var n int
		if err := rows.Scan(&node, &n); err != nil {
			return nil, err
		}
		out[node] = n
	}
	return out, rows.Err()
}

// writes returns the rows written in the schema and the database's
// commits so far.
func (d *db) writes(ctx context.Context) (tuples, commits int64, err error) {
	if err := d.pool.QueryRow(ctx, queryTupleWrites, d.schema).Scan(&tuples); err != nil {
		return 0, 0, fmt.Errorf("tuple writes: %w", err)
	}
	if err := d.pool.QueryRow(ctx, queryCommits).Scan(&commits); err != nil {
		return 0, 0, fmt.Errorf("commits: %w", err)
	}
	return tuples, commits, nil
}

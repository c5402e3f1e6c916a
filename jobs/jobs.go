// Package jobs runs holdfast's background work on River, the job queue,
// against the same database as the store: SQLite through riversqlite or
// Postgres through riverpgxv5.
//
// A Runner owns a River client with the default queue, the worker
// registry and the periodic jobs: fleet_snapshot, which records the number
// of inboxes per provider and state every minute and deletes the snapshots
// older than the retention (WithSnapshotRetention); and, with WithSends,
// the send job, one per accepted send, scheduled at its send_at, with
// send_sweep, which every 30 seconds enqueues the due sends that lack a job
// and resumes those whose attempt died with its process;
// and, with WithWebhooks, the webhook_delivery job, one per event and
// webhook (EnqueueDeliveries), retried with backoff for 24 hours; and, with
// WithNotify, the notify job, one per notice (EnqueueNotice), which runs it
// through package notify's pipeline, notify_resolved for the follow-up
// (EnqueueFollowUp), and notify_sweep, which every minute enqueues the
// pending notices that lack a job.
// The workers are thin: they call the store, the health monitor and the
// connectors.
//
// River keeps its own tables, created by Migrate (River's rivermigrate);
// MigrateSQLite and MigratePostgres bring both the store's tables and
// River's up to date, and are what "holdfast serve" runs at start and
// "holdfast migrate" runs alone.
//
// The Go API is not stable.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/lifecycle"
)

const (
	// softStopTimeout is how long running jobs get to finish once a stop
	// begins; River then cancels their contexts.
	softStopTimeout = 10 * time.Second
	// stopTimeout bounds Stop even when its context has no deadline.
	stopTimeout = 15 * time.Second
	// hardStopTimeout bounds the cancelling stop that follows a soft stop
	// that did not end in time.
	hardStopTimeout = 5 * time.Second
	// maxWorkers is the number of jobs of the default queue that run at
	// once in one process.
	maxWorkers = 10
	// snapshotInterval is how often fleet_snapshot runs.
	snapshotInterval = time.Minute
)

// DefaultSnapshotRetention is how long fleet snapshots are kept unless
// WithSnapshotRetention says otherwise: 30 days, about 900,000 rows with
// today's providers and states.
const DefaultSnapshotRetention = 30 * 24 * time.Hour

// Store is the aggregates the periodic jobs use: inbox counts, kept as fleet snapshots.
type Store interface {
	holdfast.InboxStore
	holdfast.HealthStore
}

var _ Store = holdfast.Store(nil)

// Option configures a Runner.
type Option func(*options)

type options struct {
	clock     holdfast.Clock
	retention time.Duration
	sends     *SendConfig
	webhooks  *WebhookConfig
	notify    *NotifyConfig
}

// WithClock sets the clock that workers read, for example the time a
// fleet snapshot is taken at. The default is the system clock. River's own
// scheduling keeps the wall clock.
func WithClock(c holdfast.Clock) Option {
	return func(o *options) { o.clock = c }
}

// WithSnapshotRetention sets how long fleet snapshots are kept: every run
// of fleet_snapshot deletes those taken more than d before it. The default
// is DefaultSnapshotRetention; zero or less keeps them forever.
func WithSnapshotRetention(d time.Duration) Option {
	return func(o *options) { o.retention = d }
}

// client is the part of *river.Client[TTx] a Runner uses, whatever TTx.
type client interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	JobCancel(ctx context.Context, jobID int64) (*rivertype.JobRow, error)
}

// Runner runs the job workers and the periodic jobs of one process. Several
// processes may share a database: River elects one leader, which alone
// enqueues the periodic jobs, and all of them work jobs.
type Runner struct {
	client client
	logger *slog.Logger
	owner  lifecycle.Owner
}

var _ lifecycle.Service = (*Runner)(nil)

// NewSQLite returns a Runner on the SQLite database db, normally the
// store's (sqlite.Store.DB), whose River tables MigrateSQLite has created.
// A nil logger discards River's logs.
func NewSQLite(db *sql.DB, store Store, logger *slog.Logger, opts ...Option) (*Runner, error) {
	return newRunner(riversqlite.New(db), "", store, logger, opts)
}

// NewPostgres returns a Runner on the Postgres pool, normally the store's
// (postgres.Store.Pool), with River's tables in schema
// (postgres.Store.Schema), which MigratePostgres has created. A nil logger
// discards River's logs.
func NewPostgres(pool *pgxpool.Pool, schema string, store Store, logger *slog.Logger, opts ...Option) (*Runner, error) {
	return newRunner(riverpgxv5.New(pool), schema, store, logger, opts)
}

func newRunner[TTx any](driver riverdriver.Driver[TTx], schema string, store Store, logger *slog.Logger, opts []Option) (*Runner, error) {
	o := options{clock: holdfast.SystemClock{}, retention: DefaultSnapshotRetention}
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{logger: logger}
	workers := river.NewWorkers()
	river.AddWorker(workers, &FleetSnapshotWorker{Store: store, Clock: o.clock, Logger: logger, Retention: o.retention})
	periodic := []*river.PeriodicJob{
		river.NewPeriodicJob(
			river.PeriodicInterval(snapshotInterval),
			func() (river.JobArgs, *river.InsertOpts) { return FleetSnapshotArgs{}, nil },
			&river.PeriodicJobOpts{ID: FleetSnapshotArgs{}.Kind(), RunOnStart: true},
		),
	}
	var rescueAfter, jobTimeout time.Duration
	if sc := o.sends; sc != nil {
		if sc.Store == nil || sc.Monitor == nil || sc.Session == nil {
			return nil, errors.New("jobs: WithSends needs Store, Monitor and Session")
		}
		cfg := *sc
		if cfg.Timeout <= 0 {
			cfg.Timeout = DefaultSendTimeout
		}
		// A send job whose process died is run again once its attempt is
		// surely over: River cancels an attempt at its timeout. (A
		// fleet_snapshot or send_sweep still running then, possible only
		// with a send timeout under 15 s, is run again too, which they
		// bear.)
		jobTimeout, rescueAfter = cfg.Timeout, 2*cfg.Timeout
		river.AddWorker(workers, &SendWorker{SendConfig: cfg, Clock: o.clock, Logger: logger})
		river.AddWorker(workers, &SendSweepWorker{Store: cfg.Store, Insert: r.insert, Resume: r.resume, Lease: cfg.Lease, Clock: o.clock, Logger: logger})
		periodic = append(periodic, river.NewPeriodicJob(
			river.PeriodicInterval(sweepInterval),
			func() (river.JobArgs, *river.InsertOpts) { return SendSweepArgs{}, nil },
			&river.PeriodicJobOpts{ID: SendSweepArgs{}.Kind(), RunOnStart: true},
		))
	}
	if wc := o.webhooks; wc != nil {
		if wc.Store == nil || wc.Sender == nil || wc.OpenSecret == nil {
			return nil, errors.New("jobs: WithWebhooks needs Store, Sender and OpenSecret")
		}
		river.AddWorker(workers, &WebhookWorker{WebhookConfig: *wc, Clock: o.clock, Logger: logger})
	}
	if nc := o.notify; nc != nil {
		var err error
		if periodic, err = r.addNotify(nc, workers, periodic, o.clock, logger); err != nil {
			return nil, err
		}
	}

	c, err := river.NewClient(driver, &river.Config{
		Logger: logger,
		Schema: schema,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: maxWorkers},
			NotifyQueue:        {MaxWorkers: 1},
		},
		Workers:              workers,
		PeriodicJobs:         periodic,
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: rescueAfter,
		SoftStopTimeout:      softStopTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("new river client: %w", err)
	}
	r.client = c
	return r, nil
}

// Start starts working jobs and returns; the runner works them until Stop
// (lifecycle.Service): River's client runs under the owner's run context,
// which cancelling ctx does not end.
func (r *Runner) Start(ctx context.Context) error {
	return r.owner.Start(ctx, func(run context.Context) error {
		if err := r.client.Start(run); err != nil {
			return fmt.Errorf("start river: %w", err)
		}
		return nil
	})
}

// Stop stops fetching jobs and waits for running ones, for at most 15
// seconds whatever ctx says: running jobs get 10 seconds to finish before
// their contexts are cancelled, and if the stop still does not end, the
// runner cancels everything and waits 5 more seconds. Stop is safe to call
// before Start and more than once.
func (r *Runner) Stop(ctx context.Context) error { return r.owner.Stop(ctx, r.stop) }

// stop stops River's client: softly, then by cancelling the running jobs.
func (r *Runner) stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	err := r.client.Stop(ctx)
	if err == nil {
		return nil
	}
	r.logger.WarnContext(ctx, "jobs: soft stop did not end in time; cancelling running jobs", "error", err)
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), hardStopTimeout)
	defer hcancel()
	if herr := r.client.StopAndCancel(hctx); herr != nil {
		return fmt.Errorf("stop river: %w", errors.Join(err, herr))
	}
	return nil
}

// Migrate brings River's tables in schema up to date through driver; an
// empty schema means the connection's search_path (for SQLite, the main
// database). A nil logger discards the migrator's logs.
func Migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], schema string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: schema, Logger: logger})
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	return nil
}

// MigrateSQLite brings River's tables in the SQLite database db (the
// store's, sqlite.Store.DB) up to date. The store's own tables are its
// own to migrate (sqlite.Store.Migrate): cmd runs both.
func MigrateSQLite(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	return Migrate(ctx, riversqlite.New(db), "", logger)
}

// MigratePostgres brings River's tables in schema of the PostgreSQL pool
// (the store's, postgres.Store.Pool and Schema) up to date. The store's
// own tables are its own to migrate (postgres.Store.Migrate): cmd runs
// both. Nodes starting at once take turns: a session advisory lock, one
// per schema, is held while one migrates (rivermigrate takes none, and two
// creating River's types at once fail on a duplicate key).
func MigratePostgres(ctx context.Context, pool *pgxpool.Pool, schema string, logger *slog.Logger) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	defer conn.Release()
	h := fnv.New64a()
	h.Write([]byte("holdfast river migrate " + schema))
	id := int64(h.Sum64())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", id); err != nil {
		return fmt.Errorf("migrate river: lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must go even when ctx has ended. If
		// this fails, the connection is closed and the lock with it.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", id); err != nil {
			_ = conn.Conn().Close(uctx)
		}
	}()
	return Migrate(ctx, riverpgxv5.New(pool), schema, logger)
}

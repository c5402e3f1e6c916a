package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/notify"
)

// NotifyStore is the aggregate the notify sweep reads: the notices.
type NotifyStore interface {
	holdfast.NoticeStore
}

var _ NotifyStore = holdfast.Store(nil)

// NotifyConfig is what the notification workers need; WithNotify registers
// them.
type NotifyConfig struct {
	Store    NotifyStore
	Notifier *notify.Notifier
}

// WithNotify registers the notify job (one per notice, EnqueueNotice),
// the notify_resolved job (EnqueueFollowUp) and notify_sweep, which every
// minute enqueues the pending notices that lack a job.
func WithNotify(c NotifyConfig) Option {
	return func(o *options) { o.notify = &c }
}

const (
	// notifyMaxAttempts bounds the retries of a notice whose relay fails;
	// River's backoff reaches the notice TTL (24 h) in about 12.
	notifyMaxAttempts = 15
	// notifySweepBatch is the most notices one sweep enqueues or flags.
	notifySweepBatch = 1000
)

// NoticeStrandedAfter is how long a notice may stay claimed (sending)
// before the notify sweep takes it for stranded by a node that died
// between the claim and recording the outcome. It is twice the notify
// job's timeout (5 minutes), so a job still running is never taken for
// dead. A stranded notice is cancelled with NoticeReasonStranded, not
// mailed again: it may already have gone out, and a notice goes out at
// most once.
const NoticeStrandedAfter = 10 * time.Minute

// NotifyArgs are the arguments of the notify job, which delivers one
// notice, with the other pending notices of its recipient, through the
// notify pipeline. It is unique per inbox and episode.
type NotifyArgs struct {
	InboxID  string `json:"inbox_id" river:"unique"`
	Episode  int64  `json:"episode" river:"unique"`
	NoticeID int64  `json:"notice_id"`
}

// Kind implements river.JobArgs.
func (NotifyArgs) Kind() string { return "notify" }

// NotifyQueue is the River queue of the notify jobs; it runs one job at a
// time per node.
const NotifyQueue = "notify"

// InsertOpts implements river.JobArgsWithInsertOpts.
// Notify jobs run in their own queue, one at a time per node, so that a
// slow mail relay holds up no other work. A job sends every pending notice
// of its recipient in one message; two jobs of one recipient, on one node
// or two, never run the pipeline at once: the recipient's lock in the
// store (notify.Notifier.Deliver) holds across the nodes, and the job that
// does not get it snoozes for notify.LockRetry.
func (NotifyArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: NotifyQueue, MaxAttempts: notifyMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// NotifyWorker works notify jobs; a job snoozes through the group wait.
type NotifyWorker struct {
	river.WorkerDefaults[NotifyArgs]
	Notifier *notify.Notifier
}

// Timeout implements river.Worker.
func (w *NotifyWorker) Timeout(*river.Job[NotifyArgs]) time.Duration { return 5 * time.Minute }

// Work implements river.Worker.
func (w *NotifyWorker) Work(ctx context.Context, job *river.Job[NotifyArgs]) error {
	wait, err := w.Notifier.Deliver(ctx, job.Args.NoticeID)
	if err != nil {
		return err
	}
	if wait > 0 {
		return river.JobSnooze(wait)
	}
	return nil
}

// NotifyResolvedArgs are the arguments of the notify_resolved job: the
// "resolved, nothing to do" follow-up for an inbox that returned to
// connected at Since. It is unique per inbox and Since.
type NotifyResolvedArgs struct {
	InboxID string    `json:"inbox_id" river:"unique"`
	Since   time.Time `json:"since" river:"unique"`
}

// Kind implements river.JobArgs.
func (NotifyResolvedArgs) Kind() string { return "notify_resolved" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (NotifyResolvedArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: NotifyQueue, MaxAttempts: notifyMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// NotifyResolvedWorker works notify_resolved jobs.
type NotifyResolvedWorker struct {
	river.WorkerDefaults[NotifyResolvedArgs]
	Notifier *notify.Notifier
	Clock    holdfast.Clock
}

// The follow-up's wait for an inbox on its way back.
const (
	// followUpRetry is how often a follow-up asks again while its inbox
	// is not connected yet.
	followUpRetry = time.Minute
	// followUpWait is how long after its inbox left the state that needed
	// its owner a follow-up waits for it to be connected; then there is
	// nothing to follow up.
	followUpWait = 24 * time.Hour
)

// Work implements river.Worker. While the inbox is not connected yet (a
// retroactive incident paused it) the job snoozes, up to followUpWait after
// Since.
func (w *NotifyResolvedWorker) Work(ctx context.Context, job *river.Job[NotifyResolvedArgs]) error {
	err := w.Notifier.FollowUp(ctx, job.Args.InboxID)
	if errors.Is(err, notify.ErrNotYet) {
		if w.Clock.Now().Sub(job.Args.Since) >= followUpWait {
			return nil
		}
		return river.JobSnooze(followUpRetry)
	}
	return err
}

// NotifySweepArgs are the arguments of the periodic notify_sweep job.
type NotifySweepArgs struct{}

// Kind implements river.JobArgs.
func (NotifySweepArgs) Kind() string { return "notify_sweep" }

// NotifySweepWorker works notify_sweep jobs: a notice the monitor stored
// but whose job was not enqueued (a crash in between) gets one, and a
// notice left sending for NoticeStrandedAfter (a crash between its claim
// and its outcome) is flagged: cancelled with NoticeReasonStranded.
type NotifySweepWorker struct {
	river.WorkerDefaults[NotifySweepArgs]
	Store  NotifyStore
	Insert func(ctx context.Context, a NotifyArgs) (skipped bool, err error)
	// Clock dates the stranded timeout; nil means the system clock.
	Clock  holdfast.Clock
	Logger *slog.Logger
}

// Timeout implements river.Worker.
func (w *NotifySweepWorker) Timeout(*river.Job[NotifySweepArgs]) time.Duration {
	return 30 * time.Second
}

// Work implements river.Worker.
func (w *NotifySweepWorker) Work(ctx context.Context, _ *river.Job[NotifySweepArgs]) error {
	pending, err := w.Store.NoticeRecords(ctx, holdfast.NoticeFilter{Status: holdfast.NoticePending, Limit: notifySweepBatch})
	if err != nil {
		return fmt.Errorf("notify sweep: %w", err)
	}
	n := 0
	for _, p := range pending {
		skipped, err := w.Insert(ctx, NotifyArgs{InboxID: p.InboxID, Episode: p.Episode, NoticeID: p.ID})
		if err != nil {
			return fmt.Errorf("notify sweep: enqueue notice %d: %w", p.ID, err)
		}
		if !skipped {
			n++
		}
	}
	if n > 0 {
		w.Logger.InfoContext(ctx, "notify sweep enqueued notices without a job", "notices", n)
	}
	return w.flagStranded(ctx)
}

// flagStranded cancels, with NoticeReasonStranded, the notices sending
// since NoticeStrandedAfter ago or longer, each with a warning. A notice
// whose outcome was recorded meanwhile (ErrConflict) is left as it is.
func (w *NotifySweepWorker) flagStranded(ctx context.Context) error {
	var clock holdfast.Clock = holdfast.SystemClock{}
	if w.Clock != nil {
		clock = w.Clock
	}
	stranded, err := w.Store.NoticeRecords(ctx, holdfast.NoticeFilter{
		Status: holdfast.NoticeSending, UpdatedUntil: clock.Now().Add(-NoticeStrandedAfter), Limit: notifySweepBatch,
	})
	if err != nil {
		return fmt.Errorf("notify sweep: stranded notices: %w", err)
	}
	for _, s := range stranded {
		_, err := w.Store.ChangeNotice(ctx, s.ID, holdfast.NoticeChange{
			From: holdfast.NoticeSending, To: holdfast.NoticeCancelled, Reason: holdfast.NoticeReasonStranded,
		})
		if errors.Is(err, holdfast.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("notify sweep: flag stranded notice %d: %w", s.ID, err)
		}
		w.Logger.WarnContext(ctx, "notify sweep: notice stranded in sending, flagged; its owner may or may not have been told",
			"notice", s.ID, "inbox", s.InboxID, "claimed_at", s.UpdatedAt)
	}
	return nil
}

// addNotify registers the notification workers and the sweep.
func (r *Runner) addNotify(c *NotifyConfig, workers *river.Workers, periodic []*river.PeriodicJob, clock holdfast.Clock, logger *slog.Logger) ([]*river.PeriodicJob, error) {
	if c.Store == nil || c.Notifier == nil {
		return nil, errors.New("jobs: WithNotify needs Store and Notifier")
	}
	river.AddWorker(workers, &NotifyWorker{Notifier: c.Notifier})
	river.AddWorker(workers, &NotifyResolvedWorker{Notifier: c.Notifier, Clock: clock})
	river.AddWorker(workers, &NotifySweepWorker{Store: c.Store, Insert: r.insertNotice, Clock: clock, Logger: logger})
	return append(periodic, river.NewPeriodicJob(
		river.PeriodicInterval(time.Minute),
		func() (river.JobArgs, *river.InsertOpts) { return NotifySweepArgs{}, nil },
		&river.PeriodicJobOpts{ID: NotifySweepArgs{}.Kind(), RunOnStart: true},
	)), nil
}

// EnqueueNotice enqueues the notify job of n, to run at once (the engine
// already waited the grace period; the pipeline waits the group wait). A
// notice that has a job already is left alone.
func (r *Runner) EnqueueNotice(ctx context.Context, n *holdfast.Notice) error {
	_, err := r.insertNotice(ctx, NotifyArgs{InboxID: n.InboxID, Episode: n.Episode, NoticeID: n.ID})
	return err
}

func (r *Runner) insertNotice(ctx context.Context, a NotifyArgs) (skipped bool, err error) {
	res, err := r.client.Insert(ctx, a, nil)
	if err != nil {
		return false, fmt.Errorf("enqueue notice %d: %w", a.NoticeID, err)
	}
	return res.UniqueSkippedAsDuplicate, nil
}

// EnqueueFollowUp enqueues the notify_resolved job of an inbox that
// returned to connected at since.
func (r *Runner) EnqueueFollowUp(ctx context.Context, inboxID string, since time.Time) error {
	if _, err := r.client.Insert(ctx, NotifyResolvedArgs{InboxID: inboxID, Since: since.UTC()}, nil); err != nil {
		return fmt.Errorf("enqueue follow-up of inbox %s: %w", inboxID, err)
	}
	return nil
}

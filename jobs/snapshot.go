package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/holdfast/holdfast"
)

// FleetSnapshotArgs are the arguments of the fleet_snapshot job, which
// records how many inboxes each provider has in each state, and deletes
// the snapshots older than the retention. It runs every minute, and once
// when the runner starts.
type FleetSnapshotArgs struct{}

// Kind implements river.JobArgs.
func (FleetSnapshotArgs) Kind() string { return "fleet_snapshot" }

// InsertOpts implements river.JobArgsWithInsertOpts. A snapshot that keeps
// failing is not worth retrying for long: the next one is a minute away.
func (FleetSnapshotArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3}
}

// FleetSnapshotWorker works fleet_snapshot jobs.
type FleetSnapshotWorker struct {
	river.WorkerDefaults[FleetSnapshotArgs]
	Store  Store
	Clock  holdfast.Clock
	Logger *slog.Logger
	// Retention is how long snapshots are kept; zero or less keeps them
	// forever. The Runner sets it (WithSnapshotRetention).
	Retention time.Duration
}

// Timeout implements river.Worker: counting is one query, and appending
// one transaction. Pruning deletes in batches and usually has a minute's
// worth to delete; when it has more, as on the first run after an upgrade,
// the timeout stops it and the next runs go on.
func (w *FleetSnapshotWorker) Timeout(*river.Job[FleetSnapshotArgs]) time.Duration {
	return 30 * time.Second
}

// Work counts the inboxes and appends a snapshot with a count for every
// known provider and state, zeros included, so that a missing row means a
// missing snapshot rather than no inboxes. Then it prunes the snapshots
// older than the retention, counting from the new snapshot's time.
func (w *FleetSnapshotWorker) Work(ctx context.Context, _ *river.Job[FleetSnapshotArgs]) error {
	counts, err := w.Store.CountInboxes(ctx)
	if err != nil {
		return fmt.Errorf("fleet snapshot: %w", err)
	}
	at := w.Clock.Now()
	grid := fullCounts(counts)
	if err := w.Store.AppendFleetSnapshot(ctx, at, grid); err != nil {
		return fmt.Errorf("fleet snapshot: %w", err)
	}
	var total int64
	for _, c := range counts {
		total += c.Count
	}
	w.Logger.DebugContext(ctx, "fleet snapshot taken", "inboxes", total)
	if w.Retention > 0 {
		w.prune(ctx, at.Add(-w.Retention))
	}
	return nil
}

// prune deletes the snapshots taken before before. It logs a failure
// rather than return it: the snapshot is taken, a retry of the job would
// take another, and the next run prunes what this one left.
func (w *FleetSnapshotWorker) prune(ctx context.Context, before time.Time) {
	n, err := w.Store.PruneFleetSnapshots(ctx, before)
	if err != nil {
		w.Logger.WarnContext(ctx, "fleet snapshot: pruning old snapshots stopped; the next run goes on",
			"pruned_rows", n, "before", before, "error", err)
		return
	}
	if n > 0 {
		w.Logger.InfoContext(ctx, "fleet snapshots pruned", "pruned_rows", n, "before", before)
	}
}

// fullCounts returns counts completed with a zero count for every pair of
// holdfast.Providers and holdfast.States that counts lacks, in that
// order, followed by the pairs of counts that are not known.
func fullCounts(counts []holdfast.InboxCount) []holdfast.InboxCount {
	type key struct {
		p holdfast.Provider
		s holdfast.State
	}
	byKey := make(map[key]int64, len(counts))
	for _, c := range counts {
		byKey[key{c.Provider, c.State}] += c.Count
	}
	out := make([]holdfast.InboxCount, 0, len(holdfast.Providers)*len(holdfast.States))
	for _, p := range holdfast.Providers {
		for _, s := range holdfast.States {
			out = append(out, holdfast.InboxCount{Provider: p, State: s, Count: byKey[key{p, s}]})
			delete(byKey, key{p, s})
		}
	}
	for _, c := range counts {
		if n, ok := byKey[key{c.Provider, c.State}]; ok {
			out = append(out, holdfast.InboxCount{Provider: c.Provider, State: c.State, Count: n})
			delete(byKey, key{c.Provider, c.State})
		}
	}
	return out
}

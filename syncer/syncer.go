// Package syncer keeps every inbox's mail in sync: it runs each inbox's
// incremental sync on a cadence (the sync interval, jittered by ±10%), and
// at once when asked (the API's sync-now, a new inbox, a grant of the
// health engine).
//
// The schedule is in memory, not in the job queue: one min-heap entry of
// 16 bytes (the due time and a slot number) per scheduled inbox, plus a
// slot holding the inbox's ID. A single dispatcher goroutine pops due
// inboxes and hands them to a fixed pool of workers, so at most
// Config.Concurrency syncs run at once, and when the pool cannot keep up
// the most overdue inbox goes first. The schedule is loaded from the store
// at Start and kept current by Add and Remove (the API's create and delete
// hooks).
//
// One sync asks the health engine first (Admit, OpSync), opens the inbox's
// credentials, calls the connector's Sync from the stored cursor (again
// while it says More, a bounded number of rounds), stores each batch with
// its new cursor atomically (Store.SaveSync), and reports every provider
// outcome to the engine (Observe). After a failure the inbox is tried
// again at the engine's RetryAt, or on its normal cadence.
//
// Only providers with a connector are scheduled; inboxes of others are
// left alone until their connector exists.
//
// On several nodes (package cluster), a node syncs only the inboxes of the
// sync partitions it holds (Config.Owns): Gain and Lose follow the
// partitions as they move, and Reload reconciles the schedule with the
// store after signals may have been missed.
//
// The Go API is not stable.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/lifecycle"
)

// The defaults for Config's zero fields.
const (
	DefaultInterval    = time.Minute
	DefaultConcurrency = 32
	DefaultCallTimeout = 2 * time.Minute
	DefaultMaxRounds   = 10
	DefaultTouchEvery  = 5 * time.Second
	// Jitter is the fraction by which each interval is shortened or
	// lengthened at random, so that inboxes loaded together spread out.
	Jitter = 0.1
)

// Store is the aggregates the syncer uses: inboxes and the mail synced into them.
type Store interface {
	holdfast.InboxStore
	holdfast.MailStore
}

var _ Store = holdfast.Store(nil)

// Monitor is the health engine as the syncer sees it (monitor.Monitor).
type Monitor interface {
	Admit(inboxID string, op health.Op) (health.Admission, error)
	Observe(inboxID string, o health.Outcome) (health.Decision, error)
}

// Config holds a Syncer's dependencies and parameters.
type Config struct {
	Store   Store
	Monitor Monitor
	// Connectors maps each provider to its connector. Inboxes of providers
	// without one are not scheduled.
	Connectors map[holdfast.Provider]holdfast.Connector
	// Session opens an inbox's credentials for one sync.
	Session func(ctx context.Context, in *holdfast.Inbox) (*holdfast.Session, error)
	// Interval is the time between two syncs of an inbox; zero means
	// DefaultInterval. Each one is jittered by ±10%.
	Interval time.Duration
	// Concurrency is the number of syncs run at once; zero means
	// DefaultConcurrency.
	Concurrency int
	// CallTimeout bounds each call to the connector and the store; zero
	// means DefaultCallTimeout.
	CallTimeout time.Duration
	// MaxRounds bounds the connector calls of one sync when the provider
	// keeps saying More; the inbox then goes to the back of the due
	// queue. Zero means DefaultMaxRounds.
	MaxRounds int
	// TouchEvery is how often the last sync time of the inboxes whose sync
	// found nothing (no message, the cursor unchanged) is written, all in
	// one transaction; zero means DefaultTouchEvery.
	TouchEvery time.Duration
	Clock      holdfast.Clock
	Logger     *slog.Logger
	// AnnounceMessages, if set, returns the outbox events of a batch, as
	// stored (Added marks the new ones): Store.SaveSync calls it within
	// the batch's transaction, so that the events commit with the
	// messages (webhook.MessageEvents).
	AnnounceMessages func(inboxID string, msgs []holdfast.Message) ([]holdfast.OutboxEvent, error)
	// OnMessages, if set, is called after each stored batch that added
	// messages, with the batch (Added marks the new ones). It must not
	// block (webhook.Relay.Wake).
	OnMessages func(ctx context.Context, inboxID string, msgs []holdfast.Message)
	// Owns, if set, says whether this node syncs the inbox with the given
	// ID (cluster.Membership.Owns: its sync partition is leased to this
	// node); nil means every inbox. Inboxes it does not own are not
	// scheduled, and Gain and Lose follow the partitions as they move.
	Owns func(inboxID string) bool
}

// entry is one scheduled sync: 16 bytes.
type entry struct {
	due  int64 // Unix nanoseconds
	slot int32
}

// slot is one known inbox.
type slot struct {
	id string
	// pos is the slot's index in the heap, or -1 when it is not queued.
	pos int32
	// running is set while a worker syncs the inbox; again asks for another
	// sync as soon as it ends.
	running, again bool
	dead           bool
}

// Syncer schedules and runs the syncs of every inbox. Create it with New,
// then Start it; it is a lifecycle.Service.
type Syncer struct {
	cfg   Config
	log   *slog.Logger
	clock holdfast.Clock

	mu    sync.Mutex // guards everything below
	heap  []entry
	slots []slot
	free  []int32
	idx   map[string]int32

	wake chan struct{} // a buffered nudge for the dispatcher
	work chan int32    // dispatcher → workers

	// touched holds the inboxes whose last sync found nothing (no message,
	// the same cursor), with its time: written together every TouchEvery
	// (Store.TouchSynced) instead of one transaction each.
	touchMu sync.Mutex
	touched map[string]time.Time

	owner   lifecycle.Owner
	metrics metrics
}

var _ lifecycle.Service = (*Syncer)(nil)

// ErrNotScheduled is returned by Now for an inbox the syncer does not sync:
// unknown, deleted, or of a provider without a connector.
var ErrNotScheduled = errors.New("inbox is not scheduled for sync")

// New returns a Syncer with cfg's zero fields set to their defaults.
func New(cfg Config) (*Syncer, error) {
	if cfg.Store == nil || cfg.Monitor == nil || cfg.Session == nil || cfg.Logger == nil {
		return nil, errors.New("syncer: Store, Monitor, Session and Logger are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.MaxRounds <= 0 {
		cfg.MaxRounds = DefaultMaxRounds
	}
	if cfg.TouchEvery <= 0 {
		cfg.TouchEvery = DefaultTouchEvery
	}
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	return &Syncer{
		cfg: cfg, log: cfg.Logger, clock: cfg.Clock,
		idx:     map[string]int32{},
		wake:    make(chan struct{}, 1),
		work:    make(chan int32),
		metrics: newMetrics(),
	}, nil
}

// Start loads every inbox of a provider with a connector from the store,
// spreading their first syncs over one interval, and starts the dispatcher
// and the workers. They run until Stop (lifecycle.Service).
func (s *Syncer) Start(ctx context.Context) error {
	return s.owner.Start(ctx, func(run context.Context) error {
		if err := s.load(ctx); err != nil {
			return err
		}
		s.owner.Go(func() { s.dispatch(run) })
		s.owner.Go(func() { s.touchLoop(run) })
		for range s.cfg.Concurrency {
			s.owner.Go(func() { s.worker(run) })
		}
		return nil
	})
}

// Stop ends the dispatcher and the workers; running syncs are cancelled
// and Stop waits for them within ctx. It is safe before Start and more than
// once.
func (s *Syncer) Stop(ctx context.Context) error {
	err := s.owner.Stop(ctx, nil)
	// After the workers: the last empty syncs' times are written too.
	return errors.Join(err, s.flushTouched(ctx))
}

// touchLoop writes the times of the syncs that found nothing every
// TouchEvery, until ctx ends.
func (s *Syncer) touchLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.TouchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.flushTouched(ctx); err != nil {
				s.log.WarnContext(ctx, "sync: record the last sync time of inboxes that had nothing new; retrying", "err", err)
			}
		}
	}
}

// touch records that inbox id was synced at at and found nothing.
func (s *Syncer) touch(id string, at time.Time) {
	s.touchMu.Lock()
	if s.touched == nil {
		s.touched = map[string]time.Time{}
	}
	s.touched[id] = at
	s.touchMu.Unlock()
}

// flushTouched writes the recorded times; on a failure they are kept for
// the next flush (later times of the same inbox win).
func (s *Syncer) flushTouched(ctx context.Context) error {
	s.touchMu.Lock()
	batch := s.touched
	s.touched = nil
	s.touchMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	err := s.cfg.Store.TouchSynced(sctx, batch)
	if err != nil {
		s.touchMu.Lock()
		for id, at := range batch {
			if cur, ok := s.touched[id]; !ok || cur.Before(at) {
				if s.touched == nil {
					s.touched = map[string]time.Time{}
				}
				s.touched[id] = at
			}
		}
		s.touchMu.Unlock()
	}
	return err
}

// load schedules every stored inbox this node owns that has a connector.
func (s *Syncer) load(ctx context.Context) error {
	loaded, skipped, err := s.scan(ctx, nil)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "sync schedule loaded", "inboxes", loaded, "interval", s.cfg.Interval, "concurrency", s.cfg.Concurrency)
	for p, n := range skipped {
		s.log.InfoContext(ctx, "inboxes not synced: no connector for their provider yet", "provider", p, "inboxes", n)
	}
	return nil
}

// owns reports whether this node syncs inbox id.
func (s *Syncer) owns(id string) bool { return s.cfg.Owns == nil || s.cfg.Owns(id) }

// scan schedules every stored inbox this node owns that has a connector
// and is not scheduled yet, its first sync at a random time within one
// interval, so that inboxes loaded together spread out. It returns how
// many it scheduled, and how many it skipped by provider for want of a
// connector. seen, if set, collects the IDs of the owned inboxes it read.
func (s *Syncer) scan(ctx context.Context, seen map[string]bool) (int, map[holdfast.Provider]int, error) {
	f := holdfast.InboxFilter{Limit: 1000}
	loaded, skipped := 0, map[holdfast.Provider]int{}
	for {
		lctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		page, err := s.cfg.Store.Inboxes(lctx, f)
		cancel()
		if err != nil {
			return loaded, skipped, fmt.Errorf("load inboxes to sync: %w", err)
		}
		var n int
		n, skipped = s.schedule(page, seen, skipped)
		loaded += n
		if len(page) < f.Limit {
			return loaded, skipped, nil
		}
		f.After = page[len(page)-1].ID
	}
}

// schedule schedules the inboxes of page this node owns that have a
// connector and are not scheduled yet, spread over one interval; see scan.
func (s *Syncer) schedule(page []*holdfast.Inbox, seen map[string]bool, skipped map[holdfast.Provider]int) (int, map[holdfast.Provider]int) {
	now := s.clock.Now()
	loaded := 0
	s.mu.Lock()
	for _, in := range page {
		if !s.owns(in.ID) {
			continue
		}
		if seen != nil {
			seen[in.ID] = true
		}
		if s.cfg.Connectors[in.Provider] == nil {
			if skipped != nil {
				skipped[in.Provider]++
			}
			continue
		}
		// At its natural time after its last sync (so that a partition
		// handed over from another node is synced once per interval, not
		// twice), or, overdue or never synced, spread over one interval.
		due := in.LastSyncAt.Add(time.Duration(float64(s.cfg.Interval) * (1 + Jitter*(2*rand.Float64()-1))))
		switch {
		case in.LastSyncAt.IsZero() || now.Sub(due) >= s.cfg.Interval:
			due = now.Add(time.Duration(rand.Int64N(int64(s.cfg.Interval))))
		case !due.After(now):
			// Just overdue (a partition taken over): soon, spread a little.
			due = now.Add(time.Duration(rand.Int64N(max(1, int64(s.cfg.Interval/10)))))
		}
		if s.addLocked(in.ID, due) {
			loaded++
		}
	}
	s.mu.Unlock()
	if loaded > 0 {
		s.nudge()
	}
	return loaded, skipped
}

// Gain schedules the stored inboxes of the sync partitions parts, which
// this node now owns, as load does at Start: their first syncs spread over
// one interval. It reads the partitions page by page, each call within
// CallTimeout, and stops at the first error (the inboxes read so far stay
// scheduled; Reload picks up the rest).
func (s *Syncer) Gain(ctx context.Context, parts []int) error {
	const page = 1000
	loaded := 0
	for _, p := range parts {
		after := ""
		for {
			lctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
			ins, err := s.cfg.Store.PartitionInboxes(lctx, p, after, page)
			cancel()
			if err != nil {
				return fmt.Errorf("load inboxes of sync partition %d: %w", p, err)
			}
			n, _ := s.schedule(ins, nil, nil)
			loaded += n
			if len(ins) < page {
				break
			}
			after = ins[len(ins)-1].ID
		}
	}
	s.log.DebugContext(ctx, "sync partitions gained", "partitions", len(parts), "inboxes", loaded)
	return nil
}

// Lose forgets the inboxes of the sync partitions parts, which this node
// no longer owns. A sync running for one of them finishes, and is not
// scheduled again.
func (s *Syncer) Lose(parts []int) {
	lost := make(map[int]bool, len(parts))
	for _, p := range parts {
		lost[p] = true
	}
	s.mu.Lock()
	for id, i := range s.idx {
		if lost[holdfast.PartitionOf(id)] {
			s.dropLocked(i)
		}
	}
	s.mu.Unlock()
	// The last sync times not written yet go now, before the partitions
	// are released: the next owner schedules each inbox after its last
	// sync.
	ctx, cancel := context.WithTimeout(context.Background(), loseFlushTimeout)
	defer cancel()
	if err := s.flushTouched(ctx); err != nil {
		s.log.Warn("sync: record the last sync times before handing partitions over", "err", err)
	}
}

// loseFlushTimeout bounds Lose's write of the last sync times.
const loseFlushTimeout = 5 * time.Second

// Reload brings the schedule in line with the store after signals may
// have been missed (cluster.Resync): owned inboxes not scheduled yet are
// (their first syncs spread over one interval), and scheduled inboxes
// that are gone from the store, or no longer owned, are forgotten.
func (s *Syncer) Reload(ctx context.Context) error {
	// Only inboxes scheduled before the scan may be forgotten: one added
	// meanwhile was created after its page was read.
	s.mu.Lock()
	before := make(map[string]bool, len(s.idx))
	for id := range s.idx {
		before[id] = true
	}
	s.mu.Unlock()
	seen := map[string]bool{}
	added, _, err := s.scan(ctx, seen)
	if err != nil {
		return err
	}
	removed := 0
	s.mu.Lock()
	for id, i := range s.idx {
		if before[id] && (!seen[id] || !s.owns(id)) {
			s.dropLocked(i)
			removed++
		}
	}
	s.mu.Unlock()
	s.log.InfoContext(ctx, "sync schedule reloaded", "added", added, "removed", removed)
	return nil
}

// Add schedules a new inbox's first sync at once. Inboxes of providers
// without a connector, and inboxes this node does not own, are ignored.
func (s *Syncer) Add(in *holdfast.Inbox) {
	if s.cfg.Connectors[in.Provider] == nil || !s.owns(in.ID) {
		return
	}
	s.mu.Lock()
	added := s.addLocked(in.ID, s.clock.Now())
	s.mu.Unlock()
	if added {
		s.nudge()
	}
}

// addLocked schedules inbox id at due unless it is known. s.mu must be held.
func (s *Syncer) addLocked(id string, due time.Time) bool {
	if _, ok := s.idx[id]; ok {
		return false
	}
	var i int32
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
		s.slots[i] = slot{id: id, pos: -1}
	} else {
		i = int32(len(s.slots))
		s.slots = append(s.slots, slot{id: id, pos: -1})
	}
	s.idx[id] = i
	s.push(i, due.UnixNano())
	return true
}

// Remove forgets a deleted inbox. A sync running for it ends unreported
// to the schedule.
func (s *Syncer) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.idx[id]
	if !ok {
		return
	}
	s.dropLocked(i)
}

// dropLocked forgets slot i; a running slot is freed when its sync ends.
// s.mu must be held.
func (s *Syncer) dropLocked(i int32) {
	sl := &s.slots[i]
	delete(s.idx, sl.id)
	if sl.pos >= 0 {
		s.remove(sl.pos)
	}
	if sl.running {
		sl.dead = true
		return
	}
	s.slots[i] = slot{pos: -1}
	s.free = append(s.free, i)
}

// Now asks for a sync of inbox id as soon as a worker is free. A sync
// already running is followed by another. It returns ErrNotScheduled for
// an inbox the syncer does not sync.
func (s *Syncer) Now(id string) error {
	s.mu.Lock()
	i, ok := s.idx[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("sync inbox %s now: %w", id, ErrNotScheduled)
	}
	sl := &s.slots[i]
	switch {
	case sl.running:
		sl.again = true
	case sl.pos >= 0:
		s.heap[sl.pos].due = s.clock.Now().UnixNano()
		s.fix(sl.pos)
	}
	s.mu.Unlock()
	s.nudge()
	return nil
}

// Len returns the number of inboxes scheduled (queued or syncing).
func (s *Syncer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.idx)
}

// nudge wakes the dispatcher to look at the heap again.
func (s *Syncer) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// idleWait is how long the dispatcher sleeps with nothing scheduled.
const idleWait = time.Hour

// dispatch hands due inboxes to the workers, most overdue first.
func (s *Syncer) dispatch(ctx context.Context) {
	timer := time.NewTimer(idleWait)
	defer timer.Stop()
	for {
		next, wait := int32(-1), idleWait
		s.mu.Lock()
		if len(s.heap) > 0 {
			top := s.heap[0]
			if d := time.Duration(top.due - s.clock.Now().UnixNano()); d > 0 {
				wait = d
			} else {
				s.remove(0)
				s.slots[top.slot].running = true
				next = top.slot
			}
		}
		s.mu.Unlock()
		if next >= 0 {
			select {
			case s.work <- next:
				continue
			case <-ctx.Done():
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// worker runs the syncs the dispatcher hands it.
func (s *Syncer) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case i := <-s.work:
			s.mu.Lock()
			id := s.slots[i].id
			s.mu.Unlock()
			start := s.clock.Now()
			next, drop, out := s.syncInbox(ctx, id)
			if out != "" {
				s.metrics.syncs.WithLabelValues(string(out)).Inc()
				if out != SyncDeferred {
					s.metrics.seconds.WithLabelValues(string(out)).Observe(s.clock.Now().Sub(start).Seconds())
				}
			}
			s.done(i, next, drop)
		}
	}
}

// done reschedules slot i after its sync, at next, or drops it.
func (s *Syncer) done(i int32, next time.Time, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := &s.slots[i]
	sl.running = false
	switch {
	case sl.dead:
		s.slots[i] = slot{pos: -1}
		s.free = append(s.free, i)
	case drop:
		s.dropLocked(i)
	default:
		if sl.again {
			sl.again = false
			next = s.clock.Now()
		}
		s.push(i, next.UnixNano())
		s.nudge()
	}
}

// jittered returns when the next sync after one at now is due.
func (s *Syncer) jittered(now time.Time) time.Time {
	f := 1 + Jitter*(2*rand.Float64()-1)
	return now.Add(time.Duration(float64(s.cfg.Interval) * f))
}

// syncInbox runs one sync of inbox id and returns when the next is due, or
// drop for an inbox that is gone or can no longer be synced.
func (s *Syncer) syncInbox(ctx context.Context, id string) (next time.Time, drop bool, out SyncOutcome) {
	start := s.clock.Now()
	normal := s.jittered(start)
	log := s.log.With("inbox_id", id)

	if !s.owns(id) {
		// This node's lease on the inbox's partition ran out (it could not
		// renew): another node may sync it now. Asked again on the normal
		// cadence; losing the partition drops it.
		log.DebugContext(ctx, "sync skipped: the inbox's partition is not held")
		return normal, false, SyncDeferred
	}
	adm, err := s.cfg.Monitor.Admit(id, health.OpSync)
	if err != nil {
		log.WarnContext(ctx, "sync: the health engine does not know the inbox", "err", err)
		return normal, false, SyncDeferred
	}
	if adm != health.Allow {
		// The engine asks for it later: at its normal time, or at once
		// through a grant (Now).
		log.DebugContext(ctx, "sync deferred by the health engine", "admission", adm.String())
		return normal, false, SyncDeferred
	}

	sctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	in, err := s.cfg.Store.Inbox(sctx, id)
	cancel()
	if errors.Is(err, holdfast.ErrNotFound) {
		return time.Time{}, true, ""
	}
	if err != nil {
		log.ErrorContext(ctx, "sync: load inbox", "err", err)
		return normal, false, SyncFailed
	}
	conn := s.cfg.Connectors[in.Provider]
	if conn == nil {
		return time.Time{}, true, ""
	}
	sctx, cancel = context.WithTimeout(ctx, s.cfg.CallTimeout)
	sess, err := s.cfg.Session(sctx, in)
	cancel()
	if err != nil {
		log.ErrorContext(ctx, "sync: open credentials", "err", err)
		return normal, false, SyncFailed
	}

	cursor, total := in.SyncCursor, 0
	for range s.cfg.MaxRounds {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		res, err := conn.Sync(cctx, sess, cursor)
		cancel()
		if ctx.Err() != nil {
			return normal, false, "" // stopping: not the provider's outcome
		}
		if err != nil {
			v := classify.Classify(classify.Input{Provider: string(in.Provider), Err: err})
			d, oerr := s.cfg.Monitor.Observe(id, health.Outcome{Op: health.OpSync, Verdict: &v})
			if oerr != nil {
				log.WarnContext(ctx, "sync: report failure to the health engine", "err", oerr)
			}
			log.InfoContext(ctx, "sync failed", "class", v.Class, "reason", v.Reason, "state", d.State, "retry_at", d.RetryAt, "err", err)
			if !d.RetryAt.IsZero() {
				return d.RetryAt, false, SyncFailed
			}
			return normal, false, SyncFailed
		}
		if _, oerr := s.cfg.Monitor.Observe(id, health.Outcome{Op: health.OpSync, OK: true}); oerr != nil {
			log.WarnContext(ctx, "sync: report success to the health engine", "err", oerr)
		}
		if len(res.Messages) == 0 && res.Cursor == cursor && !res.Reset && !res.More && cursor != "" {
			// Nothing new and the same cursor: no transaction, only the
			// last sync time, written with others' (touchLoop).
			s.touch(id, s.clock.Now())
			log.DebugContext(ctx, "synced", "added", total, "took", s.clock.Now().Sub(start))
			if total > 0 {
				return normal, false, SyncNewMail // in an earlier round
			}
			return normal, false, SyncNothingNew
		}
		sctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		var announce holdfast.Announce[[]holdfast.Message]
		if s.cfg.AnnounceMessages != nil {
			announce = func(msgs []holdfast.Message) ([]holdfast.OutboxEvent, error) { return s.cfg.AnnounceMessages(id, msgs) }
		}
		added, err := s.cfg.Store.SaveSync(sctx, id, res.Messages, res.Cursor, s.clock.Now(), announce)
		cancel()
		if errors.Is(err, holdfast.ErrNotFound) {
			return time.Time{}, true, ""
		}
		if err != nil {
			log.ErrorContext(ctx, "sync: store messages", "err", err)
			return normal, false, SyncFailed
		}
		total += added
		if added > 0 && s.cfg.OnMessages != nil {
			s.cfg.OnMessages(ctx, id, res.Messages)
		}
		cursor = res.Cursor
		if res.Reset {
			log.InfoContext(ctx, "sync cursor was reset by the provider; synced from the start")
		}
		if !res.More {
			log.DebugContext(ctx, "synced", "added", total, "took", s.clock.Now().Sub(start))
			return normal, false, SyncNewMail
		}
	}
	// More waits: go to the back of those due now, so that one big
	// mailbox does not hold a worker.
	log.DebugContext(ctx, "synced a bounded number of rounds; more waits", "added", total)
	return s.clock.Now(), false, SyncNewMail
}

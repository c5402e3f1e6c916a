package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
)

// decision is one engine decision waiting to be persisted. Exactly one of
// its pointer fields is set.
type decision struct {
	inbox      string
	transition *holdfast.StateChange
	// from is the state a transition leaves, when known.
	from     holdfast.State
	incident *holdfast.Incident
	held     *holdfast.HeldAction
	notice   *holdfast.Notice
	grant    *health.Grant
	state    []byte
	// barrier, when set, is the end of call's decisions: the writer
	// answers it once everything before it is persisted or, refused by
	// the store for good, skipped.
	barrier *call
	// call, when set, is the operator's call that made this decision: a
	// refusal of it is the call's.
	call *call
}

// call is an operator's call (or a Sync) waiting for its decisions to be
// stored. Its decisions and its barrier are queued in one critical
// section of m.mu (callLocked), so that no other decision comes between
// them and a refusal is counted against the call that made it, never
// against another one waiting at the same time.
type call struct {
	// refused counts the call's decisions the store refused for good. Only
	// the writer's goroutine writes it, before it closes done.
	refused int
	done    chan struct{}
	// gone is set, under the writer's mu, once nobody waits on the call
	// any more (its context ended): its barrier is then no longer a fence
	// (see compactLocked).
	gone bool
}

// sink receives the engine's decisions while the Monitor's mutex is held
// and queues them, translated to IDs, on m.pending.
type sink struct{ m *Monitor }

var _ health.Sink = sink{}

func (s sink) live(i int32) (string, bool) {
	m := s.m
	if int(i) >= len(m.ids) || m.dead[i] || !m.owns(m.ids[i]) {
		return "", false
	}
	return m.ids[i], true
}

func (s sink) tenant(t int32) string {
	if t < 0 || int(t) >= len(s.m.tenants) {
		return ""
	}
	k := s.m.tenants[t]
	for i := range len(k) {
		if k[i] == '/' {
			return k[i+1:]
		}
	}
	return k
}

// Transition implements health.Sink.
func (s sink) Transition(t health.Transition) {
	id, ok := s.live(t.Inbox)
	if !ok {
		return
	}
	s.m.unverified[t.Inbox] = false
	s.m.pending = append(s.m.pending, decision{inbox: id, from: t.From, transition: &holdfast.StateChange{
		To: t.To, Reason: string(t.Reason), Message: holdfast.DefaultMessage(t.To),
		Cause: t.Cause, At: t.At.UTC().Truncate(holdfast.StoreTimePrecision),
	}})
}

// IncidentChanged implements health.Sink.
func (s sink) IncidentChanged(in *health.Incident) {
	if !s.m.writesIncidents() {
		return // the leader's to store (FleetConfig)
	}
	s.m.pending = append(s.m.pending, decision{incident: s.m.toIncident(in)})
}

// HeldChanged implements health.Sink.
func (s sink) HeldChanged(h health.HeldAction) {
	id, ok := s.live(h.Inbox)
	if !ok {
		return
	}
	s.m.pending = append(s.m.pending, decision{held: &holdfast.HeldAction{
		ID: h.ID, InboxID: id, Provider: h.Provider, Tenant: s.tenant(h.Tenant), To: h.To,
		Reason: string(h.Reason), Why: h.Why, HeldAt: utc(h.HeldAt), Done: h.Done, Outcome: h.Outcome,
		ClosedAt: utc(h.ClosedAt),
	}})
}

// Notice implements health.Sink.
func (s sink) Notice(n health.Notice) {
	id, ok := s.live(n.Inbox)
	if !ok {
		return
	}
	s.m.pending = append(s.m.pending, decision{inbox: id, notice: &holdfast.Notice{
		InboxID: id, Episode: int64(n.Episode), Admin: n.Admin, Reason: string(n.Reason), At: utc(n.At),
	}})
}

// Grant implements health.Sink.
func (s sink) Grant(g health.Grant) {
	id, ok := s.live(g.Inbox)
	if !ok {
		return
	}
	s.m.pending = append(s.m.pending, decision{inbox: id, grant: &g})
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(holdfast.StoreTimePrecision)
}

// toIncident translates an engine incident. m.mu must be held.
func (m *Monitor) toIncident(in *health.Incident) *holdfast.Incident {
	out := &holdfast.Incident{
		ID: in.ID, Kind: in.Kind, Provider: in.Provider, Tenant: sink{m}.tenant(in.Tenant),
		OpenedAt: utc(in.OpenedAt), ResolvedAt: utc(in.ResolvedAt), EscalatedAt: utc(in.EscalatedAt), Evidence: in.Evidence,
		Affected: in.Affected, Recovered: in.Recovered,
	}
	for _, e := range in.Timeline {
		out.Timeline = append(out.Timeline, holdfast.IncidentEntry{At: utc(e.At), What: e.What})
	}
	return out
}

// callLocked queues the decisions of the current engine call (m.pending)
// as the operator's call's own, followed by the call's barrier, in one
// go. m.mu must be held. Wait for the call with durable.
func (m *Monitor) callLocked() *call {
	c := &call{done: make(chan struct{})}
	for i := range m.pending {
		m.pending[i].call = c
	}
	m.pending = append(m.pending, decision{barrier: c})
	m.flushLocked()
	return c
}

// flushLocked hands the decisions of the last engine call to the writer.
// m.mu must be held, which keeps the queue in the engine's order.
func (m *Monitor) flushLocked() {
	if len(m.pending) == 0 {
		return
	}
	m.w.enqueue(m.pending)
	m.pending = m.pending[:0]
}

// Defaults of the writer's queue bound and retry backoff.
const (
	defaultQueueLimit = 10000
	defaultRetryEvery = time.Second
	// maxRetrySteps caps the backoff at RetryEvery × 2^maxRetrySteps
	// (32 s by default).
	maxRetrySteps = 5
	// batchSize is how many decisions the writer takes off the queue at
	// once; the rest stay where coalescing can reach them.
	batchSize = 256
)

// writer persists decisions in order, from one goroutine owned by the
// Monitor (started by Start, ended by Stop).
//
// Its queue is bounded by coalescing, not by dropping: a queued engine
// state is replaced by a newer one at once, and when the queue reaches
// its limit (a long store outage) every record that a later one
// supersedes is removed (see compactLocked). A decision the store refuses
// for good (permanent) is logged, counted and skipped; any other error is
// retried with backoff, so decisions wait out an outage in order.
type writer struct {
	m *Monitor

	mu    sync.Mutex // guards everything below
	queue []decision
	// inflight counts the decisions drain has taken and not yet settled.
	inflight int
	// compactAt is the queue length that triggers compaction: the limit,
	// or twice what the last compaction left, so that a fleet larger than
	// the limit is not compacted on every decision.
	compactAt int

	wake chan struct{}
	// abandon ends the drain at Stop, when Stop's context ends first; set
	// by Start.
	abandon context.CancelFunc

	limit      int
	retryEvery time.Duration
	metrics    writerMetrics
}

func newWriter(m *Monitor) *writer {
	limit := m.cfg.QueueLimit
	if limit <= 0 {
		limit = defaultQueueLimit
	}
	retry := m.cfg.RetryEvery
	if retry <= 0 {
		retry = defaultRetryEvery
	}
	return &writer{
		m: m, wake: make(chan struct{}, 1),
		limit: limit, compactAt: limit, retryEvery: retry, metrics: newWriterMetrics(),
	}
}

func (w *writer) enqueue(ds []decision) {
	w.mu.Lock()
	for _, d := range ds {
		if d.state != nil {
			w.dropStateLocked()
		}
		w.queue = append(w.queue, d)
	}
	if len(w.queue) >= w.compactAt {
		w.compactLocked()
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// length returns how many decisions wait to be persisted.
func (w *writer) length() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) + w.inflight
}

// take moves up to batchSize decisions from the head of the queue to the
// caller.
func (w *writer) take() []decision {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.queue), batchSize)
	batch := slices.Clone(w.queue[:n])
	w.queue = slices.Delete(w.queue, 0, n)
	w.inflight = n
	return batch
}

// settled marks one decision of the batch as done with.
func (w *writer) settled() {
	w.mu.Lock()
	w.inflight--
	w.mu.Unlock()
}

// requeue puts the unsettled rest of a batch back at the head of the
// queue, in order.
func (w *writer) requeue(rest []decision) {
	w.mu.Lock()
	w.queue = slices.Insert(w.queue, 0, rest...)
	w.inflight = 0
	w.mu.Unlock()
}

// run persists decisions until ctx is done, then persists what is queued
// within drainCtx.
func (w *writer) run(ctx, drainCtx context.Context) {
	for {
		select {
		case <-ctx.Done():
			w.drain(drainCtx)
			if n := w.length(); n > 0 {
				w.m.log.Error("health decisions not persisted at shutdown", "count", n, "err", context.Cause(drainCtx))
			}
			return
		case <-w.wake:
			w.drain(ctx)
		}
	}
}

// drain persists everything queued, until ctx ends; what it could not
// persist by then stays queued.
func (w *writer) drain(ctx context.Context) {
	for {
		batch := w.take()
		if len(batch) == 0 {
			return
		}
		for i := range batch {
			if !w.persistRetrying(ctx, batch[i]) {
				w.requeue(batch[i:])
				return
			}
			w.settled()
		}
	}
}

// persistRetrying persists d, retrying transient errors with backoff. It
// returns false if ctx ends first. A permanent error is recorded and d
// skipped: one bad decision must not hold up the ones behind it.
func (w *writer) persistRetrying(ctx context.Context, d decision) bool {
	delay := w.retryEvery
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return false
		}
		err := w.persist(ctx, d)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if reason, ok := permanent(err); ok {
			w.metrics.failures.WithLabelValues(d.kind(), string(reason)).Inc()
			w.m.log.Error("health decision refused by the store; skipped", d.logAttrs("reason", string(reason), "err", err)...)
			if d.call != nil {
				d.call.refused++
			}
			return true
		}
		w.m.log.Warn("persist health decision; retrying", d.logAttrs("attempt", attempt+1, "retry_in", delay, "err", err)...)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		if attempt < maxRetrySteps {
			delay *= 2
		}
	}
}

// persist writes one decision.
func (w *writer) persist(ctx context.Context, d decision) error {
	st := w.m.store
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch {
	case d.barrier != nil:
		close(d.barrier.done)
	case d.transition != nil:
		return w.changeState(ctx, d)
	case d.incident != nil:
		if f := w.m.fleet; f != nil && d.call == nil && !f.cfg.Leading() {
			// Decided while this node led, written after it stopped (it was
			// cut off from the store until its lease ran out): the new
			// leader decides now, and this write would open a second
			// incident for one outage, or undo the new leader's work.
			w.m.log.Warn("incident change dropped: this node no longer leads", "incident_id", d.incident.ID)
			return nil
		}
		return w.saveIncident(ctx, d.incident)
	case d.held != nil:
		return st.SaveHeldAction(ctx, d.held)
	case d.notice != nil:
		err := st.AppendNotice(ctx, d.notice)
		if errors.Is(err, holdfast.ErrConflict) {
			return nil // never twice for one episode
		}
		if err == nil && w.m.cfg.OnNotice != nil {
			w.m.cfg.OnNotice(ctx, d.notice)
		}
		return err
	case d.grant != nil:
		if w.m.cfg.OnGrant != nil {
			w.m.cfg.OnGrant(d.inbox, d.grant.Probe)
		}
	case d.state != nil:
		return st.SaveEngineState(ctx, w.m.now(), d.state)
	}
	return nil
}

// changeState stores a state change and, in its transaction, the outbox
// events AnnounceState returns for it; then it tells OnStateChange. A run
// of moves coalesced during an outage may end where it began: then no
// change is announced.
func (w *writer) changeState(ctx context.Context, d decision) error {
	from := d.from
	if from == "" {
		from = d.transition.From
	}
	c := *d.transition
	if announce := w.m.cfg.AnnounceState; announce != nil {
		c.Announce = func(in *holdfast.Inbox) ([]holdfast.OutboxEvent, error) {
			if from == in.State {
				return nil, nil
			}
			return announce(in, from)
		}
	}
	in, err := w.m.store.ChangeState(ctx, d.inbox, c)
	if errors.Is(err, holdfast.ErrNotFound) || errors.Is(err, holdfast.ErrConflict) {
		return nil // deleted meanwhile, or already moved on
	}
	if err == nil && w.m.cfg.OnStateChange != nil && from != in.State {
		w.m.cfg.OnStateChange(ctx, in, from)
	}
	return err
}

// saveIncident stores an incident and, in the same transaction, the
// outbox events AnnounceIncident returns when the save opens it (its
// first save) or resolves it (its first save as resolved); then it tells
// OnIncident. A retroactive incident, first saved resolved, is both.
func (w *writer) saveIncident(ctx context.Context, in *holdfast.Incident) error {
	var opened, resolved, escalated bool
	err := w.m.store.SaveIncident(ctx, in, func(prev *holdfast.Incident) ([]holdfast.OutboxEvent, error) {
		opened = prev == nil
		resolved = !in.Open() && (prev == nil || prev.Open())
		escalated = in.Escalated() && (prev == nil || !prev.Escalated())
		var evs []holdfast.OutboxEvent
		if w.m.cfg.AnnounceIncident != nil && (opened || resolved) {
			e, err := w.m.cfg.AnnounceIncident(in, opened)
			if err != nil {
				return nil, err
			}
			evs = e
		}
		if w.m.cfg.AnnounceEscalation != nil && escalated {
			e, err := w.m.cfg.AnnounceEscalation(in)
			if err != nil {
				return nil, err
			}
			evs = append(evs, e...)
		}
		return evs, nil
	})
	if err != nil {
		return err
	}
	if escalated {
		w.metrics.escalated.WithLabelValues(string(in.Provider), string(in.Kind)).Inc()
	}
	if w.m.cfg.OnIncident == nil {
		return nil
	}
	if opened {
		w.m.cfg.OnIncident(ctx, in, true)
	}
	if escalated {
		w.m.cfg.OnIncident(ctx, in, false)
	}
	if resolved {
		w.m.cfg.OnIncident(ctx, in, false)
	}
	return nil
}

// Sync waits until every decision made so far is persisted (or, refused
// by the store for good, skipped and counted), or ctx ends.
func (m *Monitor) Sync(ctx context.Context) error {
	m.mu.Lock()
	c := m.callLocked()
	m.mu.Unlock()
	_, err := m.wait(ctx, c)
	return err
}

// ErrRefused is returned by an operator's call (Declare, Resolve,
// Release, Reconnected) one of whose own decisions the store refused for
// good: the call was not made durable, and is not to be answered as a
// success.
var ErrRefused = errors.New("the store refused a health decision for good")

// durable waits like Sync for the call c (see callLocked), and fails with
// ErrRefused when the store refused one of c's decisions for good, so that
// nothing is acknowledged that was not stored.
func (m *Monitor) durable(ctx context.Context, c *call) error {
	refused, err := m.wait(ctx, c)
	if err != nil {
		return err
	}
	if refused > 0 {
		return fmt.Errorf("%w (%d skipped; see the log)", ErrRefused, refused)
	}
	return nil
}

// wait waits for the writer to reach c's barrier, returning how many of
// c's decisions the store refused. When ctx ends first, c's barrier stops
// being a fence.
func (m *Monitor) wait(ctx context.Context, c *call) (int, error) {
	select {
	case <-c.done:
		return c.refused, nil
	case <-ctx.Done():
		m.w.mu.Lock()
		c.gone = true
		m.w.mu.Unlock()
		return 0, ctx.Err()
	}
}

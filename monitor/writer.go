package monitor

import (
	"context"
	"errors"
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
	// barrier, when set, is closed once everything before it is persisted.
	barrier chan struct{}
}

// sink receives the engine's decisions while the Monitor's mutex is held
// and queues them, translated to IDs, on m.pending.
type sink struct{ m *Monitor }

var _ health.Sink = sink{}

func (s sink) live(i int32) (string, bool) {
	m := s.m
	if int(i) >= len(m.ids) || m.dead[i] {
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
		OpenedAt: utc(in.OpenedAt), ResolvedAt: utc(in.ResolvedAt), Evidence: in.Evidence,
		Affected: in.Affected, Recovered: in.Recovered,
	}
	for _, e := range in.Timeline {
		out.Timeline = append(out.Timeline, holdfast.IncidentEntry{At: utc(e.At), What: e.What})
	}
	return out
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

// writer persists decisions in order, from one goroutine owned by the
// Monitor (started by Start, ended by Stop).
type writer struct {
	m *Monitor

	mu    sync.Mutex // guards queue
	queue []decision
	wake  chan struct{}

	// open marks the incidents known to be open, for OnIncident; only the
	// writer's goroutine uses it (and New, before it starts).
	open map[int64]bool
}

func newWriter(m *Monitor) *writer {
	return &writer{m: m, wake: make(chan struct{}, 1), open: map[int64]bool{}}
}

func (w *writer) enqueue(ds []decision) {
	w.mu.Lock()
	w.queue = append(w.queue, ds...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run persists decisions until ctx is done, then persists what is queued
// within drainCtx.
func (w *writer) run(ctx, drainCtx context.Context) {
	for {
		select {
		case <-ctx.Done():
			w.drain(drainCtx)
			return
		case <-w.wake:
			w.drain(ctx)
		}
	}
}

// drain persists everything queued. A store error is retried with backoff
// until ctx ends: decisions are never dropped while the service runs.
func (w *writer) drain(ctx context.Context) {
	for {
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for i := 0; i < len(batch); {
			err := w.persist(ctx, batch[i])
			if err == nil {
				i++
				continue
			}
			if ctx.Err() != nil {
				w.m.log.Error("health decisions not persisted at shutdown", "count", len(batch)-i, "err", err)
				return
			}
			w.m.log.Warn("persist health decision; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
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
		close(d.barrier)
	case d.transition != nil:
		in, err := st.ChangeState(ctx, d.inbox, *d.transition)
		if errors.Is(err, holdfast.ErrNotFound) || errors.Is(err, holdfast.ErrConflict) {
			return nil // deleted meanwhile, or already moved on
		}
		if err == nil && w.m.cfg.OnStateChange != nil {
			from := d.from
			if from == "" {
				from = d.transition.From
			}
			w.m.cfg.OnStateChange(ctx, in, from)
		}
		return err
	case d.incident != nil:
		if err := st.SaveIncident(ctx, d.incident); err != nil {
			return err
		}
		w.incidentChanged(ctx, d.incident)
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

// incidentChanged calls OnIncident when in opened or was resolved.
func (w *writer) incidentChanged(ctx context.Context, in *holdfast.Incident) {
	if w.m.cfg.OnIncident == nil {
		return
	}
	switch {
	case in.Open() && !w.open[in.ID]:
		w.open[in.ID] = true
		w.m.cfg.OnIncident(ctx, in, true)
	case !in.Open() && w.open[in.ID]:
		delete(w.open, in.ID)
		w.m.cfg.OnIncident(ctx, in, false)
	}
}

// Sync waits until every decision made so far is persisted, or ctx ends.
func (m *Monitor) Sync(ctx context.Context) error {
	b := make(chan struct{})
	m.mu.Lock()
	m.w.enqueue([]decision{{barrier: b}})
	m.mu.Unlock()
	select {
	case <-b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Package monitor runs the health engine (package health) inside holdfast
// serve. It maps inbox IDs and tenants to the engine's dense indices, feeds
// it provider outcomes, ticks it on the clock, writes every decision through
// to the store (inbox state changes with their event log entries,
// incidents, held actions, notices) and saves the engine's whole state.
//
// The store is the truth after a restart: incident and held action IDs
// are reserved from the store's durable sequence, never from the engine's
// own counter, and New makes the engine restored from its last saved
// state (which may predate the last decisions, after a kill) agree with
// the store: open incidents, pending held actions and inbox states. The
// saved state only warms the rest (detector windows, budgets, ramps,
// queued notices).
//
// The engine is not safe for concurrent use; Monitor serialises every call
// into it under one mutex and persists decisions from one writer goroutine,
// in the order the engine made them.
//
// The Go API is not stable.
package monitor

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/lifecycle"
)

// Store is the aggregates a Monitor writes through: the inboxes' states,
// what the health engine decided, and the notices it decided.
type Store interface {
	holdfast.InboxStore
	holdfast.HealthStore
	holdfast.NoticeStore
}

// Config holds a Monitor's dependencies and parameters.
type Config struct {
	Store  Store
	Clock  holdfast.Clock
	Logger *slog.Logger
	// Engine holds the engine's parameters; the zero value means
	// health.DefaultConfig().
	Engine *health.Config
	// TickEvery is how often the engine is ticked; zero means 1 s.
	TickEvery time.Duration
	// SaveEvery is how often the engine's whole state is saved; zero means
	// one minute. It is also saved at Stop.
	SaveEvery time.Duration
	// QueueLimit is how many decisions may wait to be written before the
	// writer coalesces superseded ones (see docs/operations.md, "A long
	// database outage"); zero means 10,000.
	QueueLimit int
	// RetryEvery is the first delay before a failed write is retried; it
	// doubles up to 32 times that. Zero means 1 s.
	RetryEvery time.Duration
	// OnGrant, if set, is called (from the writer goroutine, after the
	// decisions before it are stored) when the engine lets the service make
	// requests for an inbox now: a recovery of a paused inbox, or with
	// probe one cheap authenticated request (an incident probe, a canary's
	// probe, or the re-verification of an inbox whose notice the
	// meta-guard holds). The sync scheduler acts on it.
	OnGrant func(inboxID string, probe bool)
	// AnnounceState, if set, returns the outbox events of an inbox's
	// state change, given the inbox as stored and the state it left; the
	// store calls it within the change's transaction, so that the events
	// commit with the change (webhook.InboxEvents). It is not called for a
	// run of moves that ends where it began.
	AnnounceState func(in *holdfast.Inbox, from holdfast.State) ([]holdfast.OutboxEvent, error)
	// AnnounceIncident, if set, returns the outbox events of an incident
	// that opened (opened set) or was resolved, or both (a retroactive
	// incident, from Declare); the store calls it within the incident's
	// save (webhook.IncidentEvents).
	AnnounceIncident func(in *holdfast.Incident, opened bool) ([]holdfast.OutboxEvent, error)
	// AnnounceEscalation, if set, returns the outbox events of an incident
	// whose save first stores its escalation (once per incident, across
	// nodes: the store compares with the stored incident in the same
	// transaction); they are appended after AnnounceIncident's
	// (webhook.EscalationEvents).
	AnnounceEscalation func(in *holdfast.Incident) ([]holdfast.OutboxEvent, error)
	// OnStateChange, if set, is called (from the writer goroutine) after a
	// state change of an inbox is stored, with the inbox as stored and the
	// state it left. It must not block.
	OnStateChange func(ctx context.Context, in *holdfast.Inbox, from holdfast.State)
	// OnIncident, if set, is called (from the writer goroutine) after an
	// incident is stored, when it opened (opened set), was escalated (once,
	// opened unset) or was resolved; for
	// a retroactive incident, from Declare, once opened and once resolved.
	// It must not block.
	OnIncident func(ctx context.Context, in *holdfast.Incident, opened bool)
	// OnNotice, if set, is called (from the writer goroutine) right after
	// a notice is stored, with its ID set: the notify outbox enqueues its
	// job. It must not block for long.
	OnNotice func(ctx context.Context, n *holdfast.Notice)
	// Fleet, if set, makes the Monitor one node of several on one store
	// (FleetConfig). The engine's whole state is then neither saved nor
	// loaded: the store's incidents, held actions and inbox states
	// rebuild it at start, and the leader's windows fill from every
	// node's counters.
	Fleet *FleetConfig
	// Owns, if set, says whether this node acts on the inbox with the
	// given ID (cluster.Membership.Owns); nil means every inbox. The
	// engine's per-inbox decisions about the others are dropped (see
	// partitions.go).
	Owns func(inboxID string) bool
}

// Monitor owns one health engine. Create it with New, then Start it; it
// is a lifecycle.Service.
type Monitor struct {
	cfg   Config
	store Store
	clock holdfast.Clock
	log   *slog.Logger

	mu  sync.Mutex // guards everything below, and every call into eng
	eng *health.Engine
	// ids maps engine index → inbox ID; dead marks deleted inboxes, whose
	// later decisions are dropped.
	ids  []string
	dead []bool
	// unverified marks inboxes still "connecting" in the store: the first
	// successful outcome records their move to connected.
	unverified []bool
	idx        map[string]int32
	// tenants maps engine tenant index → "provider/tenant".
	tenants []string
	tidx    map[string]int32
	// pending collects the decisions of the current engine call.
	pending []decision

	w *writer
	// idSrc issues incident and held action IDs from the store.
	idSrc *idSource
	// fleet is the Monitor's part as one node of several; nil alone.
	fleet *fleetNode

	owner lifecycle.Owner
}

var _ lifecycle.Service = (*Monitor)(nil)

// New loads the engine's saved state, if any, makes sure every stored
// inbox is known to it, and rebuilds from the store what the saved state
// may not have seen: open incidents, pending held actions, inbox states.
// It reads every inbox once and reserves a first block of IDs.
func New(ctx context.Context, cfg Config) (*Monitor, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("monitor: Store and Logger are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = time.Second
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = time.Minute
	}
	ecfg := health.DefaultConfig()
	if cfg.Engine != nil {
		ecfg = *cfg.Engine
	}
	m := &Monitor{
		cfg: cfg, store: cfg.Store, clock: cfg.Clock, log: cfg.Logger,
		idx: map[string]int32{}, tidx: map[string]int32{},
	}
	m.eng = health.New(ecfg, cfg.Clock, cfg.Logger, sink{m})
	m.w = newWriter(m)
	m.idSrc = newIDSource(m)
	m.eng.SetIDFunc(m.idSrc.take)
	if cfg.Owns != nil {
		m.eng.SetForeignFunc(m.foreign)
	}
	if err := m.idSrc.refill(ctx); err != nil {
		return nil, fmt.Errorf("reserve incident and held action IDs: %w", err)
	}
	if cfg.Fleet != nil {
		if cfg.Fleet.Store == nil || cfg.Fleet.Node == "" || cfg.Fleet.Leading == nil || cfg.Fleet.LeaderKnown == nil {
			return nil, errors.New("monitor: Fleet needs Store, Node, Leading and LeaderKnown")
		}
		m.initFleet()
	} else if err := m.load(ctx); err != nil {
		return nil, err
	}
	stored, err := m.reconcile(ctx)
	if err != nil {
		return nil, err
	}
	if err := m.rebuild(ctx, stored); err != nil {
		return nil, err
	}
	// Decisions made while loading (none expected) are written by Start.
	return m, nil
}

// savedState is what SaveEngineState stores: the index maps and the
// engine's own snapshot.
type savedState struct {
	Version    int
	IDs        []string
	Dead       []bool
	Unverified []bool
	Tenants    []string
	Engine     []byte
}

const stateVersion = 1

// load restores the engine from its saved state, if there is one.
func (m *Monitor) load(ctx context.Context) error {
	at, blob, err := m.store.EngineState(ctx)
	if errors.Is(err, holdfast.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load health engine state: %w", err)
	}
	var s savedState
	if err := gob.NewDecoder(bytes.NewReader(blob)).Decode(&s); err != nil {
		return fmt.Errorf("decode health engine state saved at %s: %w", at.Format(time.RFC3339), err)
	}
	if s.Version != stateVersion {
		return fmt.Errorf("health engine state saved at %s has version %d, want %d", at.Format(time.RFC3339), s.Version, stateVersion)
	}
	if err := m.eng.Restore(bytes.NewReader(s.Engine)); err != nil {
		return err
	}
	m.ids, m.dead, m.unverified, m.tenants = s.IDs, s.Dead, s.Unverified, s.Tenants
	for i, id := range m.ids {
		if !m.dead[i] {
			m.idx[id] = int32(i)
		}
	}
	for i, k := range m.tenants {
		m.tidx[k] = int32(i)
	}
	m.log.Info("health engine state restored", "saved_at", at, "inboxes", len(m.ids), "tenants", len(m.tenants))
	return nil
}

// reconcile adds stored inboxes the engine does not know (created after
// the last save) and marks known ones that are gone as dead. It returns
// the state the store shows of the inboxes that are paused there or whose
// state the engine sees otherwise.
func (m *Monitor) reconcile(ctx context.Context) ([]storedState, error) {
	var stored []storedState
	seen := make(map[string]bool, len(m.idx))
	f := holdfast.InboxFilter{Limit: 1000}
	added := 0
	for {
		page, err := m.store.Inboxes(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list inboxes for the health engine: %w", err)
		}
		for _, in := range page {
			seen[in.ID] = true
			if _, ok := m.idx[in.ID]; !ok {
				if err := m.addLocked(in); err != nil {
					return nil, err
				}
				added++
			}
			i := m.idx[in.ID]
			if eng := m.eng.State(i); in.State == holdfast.StatePaused ||
				eng != in.State && !(eng == holdfast.StateConnected && in.State == holdfast.StateConnecting) {
				stored = append(stored, storedState{inbox: i, state: in.State, reason: in.Reason, since: in.Since})
			}
		}
		if len(page) < f.Limit {
			break
		}
		f.After = page[len(page)-1].ID
	}
	removed := 0
	for id, i := range m.idx {
		if !seen[id] {
			m.dead[i] = true
			delete(m.idx, id)
			removed++
		}
	}
	if added > 0 || removed > 0 {
		m.log.Info("health engine reconciled with the store", "added", added, "removed", removed)
	}
	return stored, nil
}

// addLocked registers an inbox with the engine. m.mu must be held (or m
// not yet shared).
func (m *Monitor) addLocked(in *holdfast.Inbox) error {
	key := string(in.Provider) + "/" + in.Tenant
	t, ok := m.tidx[key]
	if !ok {
		var err error
		if t, err = m.eng.AddTenant(in.Provider); err != nil {
			return fmt.Errorf("add tenant %s: %w", key, err)
		}
		m.tidx[key] = t
		m.tenants = append(m.tenants, key)
	}
	i, err := m.eng.AddInbox(t)
	if err != nil {
		return fmt.Errorf("add inbox %s: %w", in.ID, err)
	}
	m.idx[in.ID] = i
	m.ids = append(m.ids, in.ID)
	m.dead = append(m.dead, false)
	m.unverified = append(m.unverified, in.State == holdfast.StateConnecting)
	return nil
}

// AddInbox registers a newly connected inbox.
func (m *Monitor) AddInbox(in *holdfast.Inbox) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.idx[in.ID]; ok {
		return nil
	}
	return m.addLocked(in)
}

// RemoveInbox forgets a deleted inbox: later decisions about it are dropped.
func (m *Monitor) RemoveInbox(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i, ok := m.idx[id]; ok {
		m.dead[i] = true
		delete(m.idx, id)
	}
}

// index returns the engine index of inbox id. m.mu must be held.
func (m *Monitor) index(id string) (int32, error) {
	i, ok := m.idx[id]
	if !ok {
		return 0, fmt.Errorf("inbox %s: %w", id, holdfast.ErrNotFound)
	}
	return i, nil
}

// Observe reports the outcome of one provider request for an inbox and
// returns the engine's decision. The decisions it causes are persisted in
// order by the writer.
func (m *Monitor) Observe(inboxID string, o health.Outcome) (health.Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := m.index(inboxID)
	if err != nil {
		return health.Decision{}, err
	}
	if !m.owns(inboxID) {
		// Another node syncs and judges this inbox (a send ran here): its
		// outcome is not this engine's evidence, nor may it move this
		// engine's view of the inbox, which follows the owner's stored
		// decisions (Refresh). The caller waits and asks again.
		return health.Decision{State: m.eng.State(i)}, nil
	}
	if o.OK && m.unverified[i] {
		m.unverified[i] = false
		m.pending = append(m.pending, decision{transition: &holdfast.StateChange{
			From: holdfast.StateConnecting, To: holdfast.StateConnected, Reason: "verified",
			Message: holdfast.DefaultMessage(holdfast.StateConnected), Cause: holdfast.CauseHealth, At: m.now(),
		}, inbox: inboxID})
	}
	d := m.eng.Observe(i, o)
	m.flushLocked()
	return d, nil
}

// SetCanary marks an inbox as one of its provider's canary accounts (on),
// or as an ordinary inbox again. Canaries are accounts the operator owns, on
// holdfast's own client ID, ideally in at least two regions; two of them
// failing permanent-class within two minutes freeze the provider (see
// health.Engine.SetCanary). The mark is saved with the engine's state. It
// returns holdfast.ErrNotFound for an unknown inbox.
func (m *Monitor) SetCanary(inboxID string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := m.index(inboxID)
	if err != nil {
		return fmt.Errorf("set canary: %w", err)
	}
	if err := m.eng.SetCanary(i, on); err != nil {
		return err
	}
	m.flushLocked()
	return nil
}

// Admit says whether a request of kind op may be made for an inbox now.
func (m *Monitor) Admit(inboxID string, op health.Op) (health.Admission, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := m.index(inboxID)
	if err != nil {
		return health.Defer, err
	}
	a := m.eng.Admit(i, op)
	m.flushLocked()
	return a, nil
}

// State returns the engine's view of an inbox's state.
func (m *Monitor) State(inboxID string) (holdfast.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := m.index(inboxID)
	if err != nil {
		return "", err
	}
	return m.eng.State(i), nil
}

// Tick advances the engine to the clock's time. Start calls it every
// TickEvery; tests may call it directly.
func (m *Monitor) Tick() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.eng.Tick()
	m.flushLocked()
}

func (m *Monitor) now() time.Time {
	return m.clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
}

// Counts returns the number of inboxes per state for provider p, in the
// engine's view.
func (m *Monitor) Counts(p holdfast.Provider) map[holdfast.State]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.eng.Counts(p)
}

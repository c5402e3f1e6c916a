package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
)

// rebuild makes the engine, restored from a snapshot that may predate
// the last decisions, agree with the store, which has every decision
// persisted: incidents open in the store are open in the engine (and
// resolvable), incidents resolved in the store are resolved in it; the
// same for held actions and the inboxes' states. The snapshot only warms
// the rest (detector windows, budgets, ramps, queued notices). stored are
// the states reconcile found. m is not yet shared.
func (m *Monitor) rebuild(ctx context.Context, stored []storedState) error {
	var paused []int32
	for _, s := range stored {
		if s.state == holdfast.StatePaused {
			paused = append(paused, s.inbox)
		}
	}
	if err := m.rebuildIncidents(ctx, paused); err != nil {
		return err
	}
	if err := m.rebuildHeld(ctx); err != nil {
		return err
	}
	for _, s := range stored {
		rec := health.StoredState{State: s.state, Reason: holdfast.Reason(s.reason), Since: s.since}
		if s.state == holdfast.StateNeedsReconnect || s.state == holdfast.StateNeedsAdmin {
			if err := m.noticesSince(ctx, m.ids[s.inbox], s.since, &rec); err != nil {
				return err
			}
		}
		if err := m.eng.RestoreState(s.inbox, rec); err != nil {
			return fmt.Errorf("restore state of inbox %s: %w", m.ids[s.inbox], err)
		}
	}
	return nil
}

// storedState is an inbox's state as the store shows it.
type storedState struct {
	inbox  int32
	state  holdfast.State
	reason string
	since  time.Time
}

// noticesSince sets rec's newest notice episode of inbox id, and whether
// a notice was recorded since it entered its state at since: if not, the
// engine queues one (it was decided after the last save, and lost).
func (m *Monitor) noticesSince(ctx context.Context, id string, since time.Time, rec *health.StoredState) error {
	ns, err := m.store.Notices(ctx, id)
	if err != nil {
		return fmt.Errorf("load notices of inbox %s: %w", id, err)
	}
	for _, n := range ns {
		rec.Episode = max(rec.Episode, uint32(n.Episode))
		if !n.At.Before(since) {
			rec.Told = true
		}
	}
	return nil
}

// rebuildPage is how many open incidents, or pending held actions, are
// read from the store at a time at start (the store's page limit): all of
// them are read, page by page.
const rebuildPage = 1000

// openIncidents returns every open incident in the store, oldest first.
func (m *Monitor) openIncidents(ctx context.Context) ([]*holdfast.Incident, error) {
	var out []*holdfast.Incident
	var after int64
	for {
		page, err := m.store.OpenIncidents(ctx, after, rebuildPage)
		if err != nil {
			return nil, fmt.Errorf("load open incidents: %w", err)
		}
		out = append(out, page...)
		if len(page) < rebuildPage {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// pendingHeld returns every pending held action in the store, oldest
// first.
func (m *Monitor) pendingHeld(ctx context.Context) ([]*holdfast.HeldAction, error) {
	var out []*holdfast.HeldAction
	f := holdfast.HeldActionFilter{PendingOnly: true, Limit: rebuildPage}
	for {
		page, err := m.store.FindHeldActions(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("load pending held actions: %w", err)
		}
		out = append(out, page...)
		if len(page) < rebuildPage {
			return out, nil
		}
		f.AfterID = page[len(page)-1].ID
	}
}

// rebuildIncidents makes the engine's incidents agree with the store's.
func (m *Monitor) rebuildIncidents(ctx context.Context, paused []int32) error {
	open, err := m.openIncidents(ctx)
	if err != nil {
		return err
	}
	stored := make(map[int64]bool, len(open))
	for _, in := range open {
		stored[in.ID] = true
	}
	// Open in the engine, resolved since its snapshot.
	for _, in := range m.eng.Incidents() {
		if !in.Open() || stored[in.ID] {
			continue
		}
		st, err := m.store.IncidentByID(ctx, in.ID)
		if errors.Is(err, holdfast.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("load incident %d: %w", in.ID, err)
		}
		m.restoreIncident(st, nil)
	}
	// Open in the store, oldest first: adopted if the engine has not seen
	// them.
	for _, in := range open {
		m.restoreIncident(in, paused)
	}
	return nil
}

// restoreIncident hands the stored incident in to the engine. An incident
// the engine cannot take (a scope it no longer knows) is logged: it stays
// in the store as it is.
func (m *Monitor) restoreIncident(in *holdfast.Incident, paused []int32) {
	hi, ok := m.fromIncident(in)
	if !ok {
		return
	}
	if err := m.eng.RestoreIncident(hi, paused); err != nil {
		m.log.Warn("stored incident not restored", "incident_id", in.ID, "err", err)
	}
}

// fromIncident translates a stored incident for the engine. An incident
// whose tenant no inbox has is logged and not translated.
func (m *Monitor) fromIncident(in *holdfast.Incident) (health.Incident, bool) {
	hi := health.Incident{ID: in.ID, Kind: in.Kind, Provider: in.Provider, Tenant: -1,
		OpenedAt: in.OpenedAt, ResolvedAt: in.ResolvedAt, EscalatedAt: in.EscalatedAt, Evidence: in.Evidence,
		Affected: in.Affected, Recovered: in.Recovered}
	for _, e := range in.Timeline {
		hi.Timeline = append(hi.Timeline, health.TimelineEntry{At: e.At, What: e.What})
	}
	if in.Tenant != "" {
		t, ok := m.tidx[string(in.Provider)+"/"+in.Tenant]
		if !ok {
			m.log.Warn("stored incident not taken: no inbox has its tenant", "incident_id", in.ID, "provider", in.Provider, "tenant", in.Tenant)
			return hi, false
		}
		hi.Tenant = t
	}
	return hi, true
}

// rebuildHeld makes the engine's pending held actions agree with the
// store's.
func (m *Monitor) rebuildHeld(ctx context.Context) error {
	pending, err := m.pendingHeld(ctx)
	if err != nil {
		return err
	}
	stored := make(map[int64]bool, len(pending))
	for _, h := range pending {
		stored[h.ID] = true
	}
	// Pending in the engine, done since its snapshot.
	for _, h := range m.eng.HeldActions() {
		if stored[h.ID] {
			continue
		}
		found, err := m.store.FindHeldActions(ctx, holdfast.HeldActionFilter{ID: h.ID, Limit: 1})
		if err != nil {
			return fmt.Errorf("load held action %d: %w", h.ID, err)
		}
		if len(found) == 1 && found[0].Done {
			h.Done = true
			m.restoreHeld(h)
		}
	}
	// Pending in the store: held again if the engine has not seen them.
	for _, h := range pending {
		i, ok := m.idx[h.InboxID]
		if !ok {
			continue
		}
		m.restoreHeld(health.HeldAction{ID: h.ID, Inbox: i, Provider: h.Provider, To: h.To,
			Reason: holdfast.Reason(h.Reason), HeldAt: h.HeldAt, Why: h.Why})
	}
	return nil
}

func (m *Monitor) restoreHeld(h health.HeldAction) {
	if err := m.eng.RestoreHeld(h); err != nil {
		m.log.Warn("stored held action not restored", "held_action_id", h.ID, "err", err)
	}
}

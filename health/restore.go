package health

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/holdfast/holdfast"
)

// SetIDFunc makes f the source of incident and held action IDs; f must
// never return an ID twice, across restarts included (the monitor
// reserves blocks from the store's durable sequence). f must not block:
// it returns false when no ID is at hand (its owner could not reserve
// more, the store being down). The engine then puts off what needs one,
// failing closed: an incident is opened at a later evaluation, Declare
// fails with ErrNoID, and no destructive action is taken (nor held)
// until an ID is at hand again; the inbox stays suspect and is retried.
//
// Without f the engine numbers IDs itself from 1, saved in its snapshot,
// which is enough where nothing else numbers them (holdfast sim).
func (e *Engine) SetIDFunc(f func() (int64, bool)) { e.idFunc = f }

// ErrNoID is returned by Declare when no incident ID is at hand (see
// SetIDFunc): nothing was declared; the call may be retried.
var ErrNoID = errors.New("no incident ID at hand")

// newID issues the next incident or held action ID, or reports that none
// is at hand.
func (e *Engine) newID() (int64, bool) {
	if e.idFunc != nil {
		id, ok := e.idFunc()
		if ok != !e.idStarved {
			e.idStarved = !ok
			if ok {
				e.log.Info("incident and held action IDs at hand again")
			} else {
				e.log.Warn("no incident or held action ID at hand: incidents and destructive actions wait")
			}
		}
		return id, ok
	}
	id := e.c.NextID
	e.c.NextID++
	return id, true
}

// RestoreIncident makes the engine agree with its owner's durable record
// of an incident, after a Restore from a snapshot that may predate it
// (the record is the truth). It reports nothing to the sink about in.
//
//   - An incident open in the record and unknown to the engine is adopted:
//     it covers its scope again, and paused, the inboxes of its scope that
//     the record shows paused, are paused under it as its members.
//   - An incident open in the engine and resolved in the record is
//     resolved as of in.ResolvedAt, and its members are queued for the
//     recovery ramp.
//
// Anything else leaves the engine as it is. It returns holdfast.ErrConflict
// when another open incident already covers the scope of one to adopt,
// and a *holdfast.InvalidError for an unknown provider or tenant.
func (e *Engine) RestoreIncident(in Incident, paused []int32) error {
	c := &e.c
	p, ok := provIndex(in.Provider)
	if !ok {
		return holdfast.Invalidf("provider", "restore incident %d: unknown provider %q", in.ID, in.Provider)
	}
	if in.Tenant >= int32(len(c.TProv)) || in.Tenant >= 0 && c.TProv[in.Tenant] != p {
		return holdfast.Invalidf("tenant", "restore incident %d: unknown tenant %d for provider %s", in.ID, in.Tenant, in.Provider)
	}
	if k := slices.IndexFunc(c.Incidents, func(x *Incident) bool { return x.ID == in.ID }); k >= 0 {
		cur := c.Incidents[k]
		if cur.Open() && !in.Open() {
			sink := e.sink
			e.sink = muteIncident{Sink: sink, id: in.ID}
			e.resolve(cur, in.ResolvedAt.Unix(), true)
			e.sink = sink
			cur.ResolvedAt = in.ResolvedAt.UTC()
			cur.Timeline = slices.Clone(in.Timeline)
			cur.Affected, cur.Recovered = in.Affected, in.Recovered
		}
		return nil
	}
	if !in.Open() {
		return nil
	}
	return e.adoptIncident(in, p, paused)
}

// adoptIncident makes open incident in, unknown to the engine, cover its
// scope again.
func (e *Engine) adoptIncident(in Incident, p uint8, paused []int32) error {
	c := &e.c
	ps := &c.Provs[p]
	fx := in.Kind.Effects()
	var slot *int32
	switch {
	case fx.HoldsNotices:
		slot = &ps.Storm
	case in.Tenant < 0:
		slot = &ps.Inc
	default:
		slot = &c.TInc[in.Tenant]
	}
	if *slot != 0 && c.Incidents[*slot-1].Open() {
		return fmt.Errorf("restore incident %d: incident %d covers its scope: %w", in.ID, c.Incidents[*slot-1].ID, holdfast.ErrConflict)
	}
	a := &Incident{ID: in.ID, Kind: in.Kind, Provider: in.Provider, Tenant: in.Tenant,
		OpenedAt: in.OpenedAt.UTC(), Evidence: in.Evidence, Timeline: slices.Clone(in.Timeline),
		Affected: in.Affected, Recovered: in.Recovered, prov: p}
	if !in.EscalatedAt.IsZero() {
		a.EscalatedAt = in.EscalatedAt.UTC() // escalated once, not again
	}
	win := e.cfg.CloseWindow
	if fx.HoldsNotices {
		win = e.cfg.ProbeEvery
	}
	a.closeWin = max(1, int64(win/max(1, e.cfg.ProbeEvery)))
	a.probeOK, a.probeN = make([]int32, a.closeWin), make([]int32, a.closeWin)
	c.Incidents = append(c.Incidents, a)
	*slot = int32(len(c.Incidents))
	opened := a.OpenedAt.Unix()
	if fx.PausesInboxes {
		if in.Tenant < 0 {
			ps.LastAbn = max(ps.LastAbn, opened)
		} else {
			c.TLastAbn[in.Tenant] = max(c.TLastAbn[in.Tenant], opened)
		}
		now := e.now()
		for _, i := range paused {
			if i < 0 || int(i) >= len(c.H) || c.H[i].Prov != p || in.Tenant >= 0 && c.H[i].Ten != in.Tenant {
				continue
			}
			if st := c.H[i].St; st != sPaused {
				c.Counts[p][st]--
				c.Counts[p][sPaused]++
				c.H[i].St = sPaused
				c.Since[i] = now
			}
			c.H[i].PermN, c.BackoffN[i] = 0, 0
			c.H[i].Flags |= fMember
			a.members = append(a.members, i)
		}
	}
	e.log.Info("incident restored from the store", "incident_id", a.ID, "kind", a.Kind, "provider", a.Provider, "tenant", a.Tenant, "members", len(a.members))
	return nil
}

// RestoreHeld makes the engine agree with its owner's durable record of a
// held action, after a Restore from a snapshot that may predate it. It
// reports nothing to the sink.
//
//   - A held action pending in the record and unknown to the engine is
//     held again, unless its inbox already has a pending one.
//   - A held action pending in the engine and done in the record is
//     forgotten.
func (e *Engine) RestoreHeld(h HeldAction) error {
	c := &e.c
	if h.Inbox < 0 || int(h.Inbox) >= len(c.H) {
		return fmt.Errorf("restore held action %d: unknown inbox %d: %w", h.ID, h.Inbox, holdfast.ErrNotFound)
	}
	cur := c.Held[h.ID]
	switch {
	case cur != nil && h.Done:
		delete(c.Held, h.ID)
		if e.heldOf[cur.Inbox] == h.ID {
			delete(e.heldOf, cur.Inbox)
			c.H[cur.Inbox].Flags &^= fHeld
		}
	case cur == nil && !h.Done:
		if _, busy := e.heldOf[h.Inbox]; busy {
			return nil
		}
		p := c.H[h.Inbox].Prov
		h.Tenant = c.H[h.Inbox].Ten
		h.HeldAt = h.HeldAt.UTC()
		c.Held[h.ID] = &h
		e.heldOf[h.Inbox] = h.ID
		c.H[h.Inbox].Flags |= fHeld
		order := &c.Provs[p].HeldOrder
		k, _ := slices.BinarySearch(*order, h.ID)
		*order = slices.Insert(*order, k, h.ID)
	}
	return nil
}

// muteIncident is a Sink that drops the changes of one incident.
type muteIncident struct {
	Sink
	id int64
}

// IncidentChanged implements Sink.
func (m muteIncident) IncidentChanged(in *Incident) {
	if in.ID != m.id {
		m.Sink.IncidentChanged(in)
	}
}

// StoredState is an inbox's state as its owner's durable record shows it.
type StoredState struct {
	State  holdfast.State
	Reason holdfast.Reason
	// Episode is the newest notice episode recorded for the inbox, and
	// Told whether a notice was recorded since it entered State.
	Episode uint32
	Told    bool
	// Since is when it entered State (zero or later than now: now). An
	// inbox that needs its owner or administrator counts as acted on then,
	// so that a retroactive incident over that time re-verifies it after a
	// restart or a change of owner as before.
	Since time.Time
}

// RestoreState makes inbox i's state the one its owner's durable record
// shows, after a Restore from a snapshot that may predate it (or none).
// It reports nothing to the sink (but a notice with PolicyNaive, which
// has no grace period). What the state needs is set up as if
// the engine had just seen it: a suspect inbox starts its confirmation
// again; one that needs its owner or an administrator is retried after
// SoftRetry and, if its owner was not told yet, its notice is queued for
// a new episode (after the grace period, as when the engine acts); a
// paused one is a member of the open incident covering it or, if none
// does, queued for its provider's recovery ramp. A connecting inbox counts
// as connected, as in AddInbox.
func (e *Engine) RestoreState(i int32, s StoredState) error {
	c := &e.c
	if i < 0 || int(i) >= len(c.H) {
		return fmt.Errorf("restore state of inbox %d: %w", i, holdfast.ErrNotFound)
	}
	c.Episode[i] = max(c.Episode[i], s.Episode)
	to := stateCode(s.State)
	if s.State == holdfast.StateConnecting {
		to = sConnected
	}
	from := c.H[i].St
	now := e.now()
	if from == to {
		if to == sPaused {
			// Already paused here, but perhaps under no incident any more,
			// or granted a recovery this engine's owner did not act on (a
			// node that did not own the inbox then): it rejoins the
			// covering incident or the recovery ramp.
			c.H[i].Flags &^= fGranted | fProbe
			e.rejoin(i, now)
		}
		return nil
	}
	p := c.H[i].Prov
	c.Counts[p][from]--
	c.Counts[p][to]++
	c.H[i].St = to
	c.Since[i] = now
	if s.Reason != "" {
		c.Reason[i] = e.reasonCode(s.Reason)
	}
	c.H[i].PermN, c.BackoffN[i] = 0, 0
	c.H[i].Flags &^= fGranted | fProbe | fAdmin
	switch to {
	case sConnected:
		c.HeldSends[i] = 0
	case sDegraded:
		c.NextTry[i] = now
	case sSuspect:
		c.H[i].PermN, c.PermFirst[i], c.NextTry[i] = 1, now, now
	case sNeedsReconnect, sNeedsAdmin:
		if to == sNeedsAdmin {
			c.H[i].Flags |= fAdmin
		}
		c.ActedAt[i] = now
		if at := s.Since.Unix(); !s.Since.IsZero() && at < now {
			c.ActedAt[i] = at
		}
		c.NextTry[i] = now + int64(e.cfg.SoftRetry/time.Second)
		if !s.Told {
			c.Episode[i]++
			e.queueNotice(i, to == sNeedsAdmin, now)
		}
	case sPaused:
		e.rejoin(i, now)
	}
	return nil
}

// rejoin makes paused inbox i a member of the open incident covering it
// or, if none does, queues it for its provider's recovery ramp.
func (e *Engine) rejoin(i int32, now int64) {
	c := &e.c
	if e.foreign(i) {
		return // its own node's engine resumes it
	}
	if in := e.coveringIncident(i); in != nil {
		if c.H[i].Flags&fMember == 0 {
			c.H[i].Flags |= fMember
			in.members = append(in.members, i)
		}
		return
	}
	e.queueOne(i, now)
}

// queueOne queues paused inbox i, covered by no incident, for its
// provider's recovery ramp, starting the ramp if it is idle.
func (e *Engine) queueOne(i int32, now int64) {
	c := &e.c
	if c.H[i].Flags&fQueued != 0 {
		return
	}
	c.H[i].Flags |= fQueued
	ps := &c.Provs[c.H[i].Prov]
	ps.Ramp.Norm = append(ps.Ramp.Norm, i)
	if !ps.Ramp.Active {
		e.startRamp(ps, now)
	}
}

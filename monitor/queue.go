package monitor

import "slices"

// decisionKind names a decision's kind, in logs and in the kind label of
// the writer's metrics.
type decisionKind string

// The kinds of decision.
const (
	kindBarrier    decisionKind = "barrier"
	kindTransition decisionKind = "transition"
	kindIncident   decisionKind = "incident"
	kindHeld       decisionKind = "held_action"
	kindNotice     decisionKind = "notice"
	kindGrant      decisionKind = "grant"
	kindState      decisionKind = "engine_state"
)

// kind returns d's kind.
func (d decision) kind() string {
	switch {
	case d.barrier != nil:
		return string(kindBarrier)
	case d.transition != nil:
		return string(kindTransition)
	case d.incident != nil:
		return string(kindIncident)
	case d.held != nil:
		return string(kindHeld)
	case d.notice != nil:
		return string(kindNotice)
	case d.grant != nil:
		return string(kindGrant)
	default:
		return string(kindState)
	}
}

// logAttrs returns the slog attributes that identify d, then more.
func (d decision) logAttrs(more ...any) []any {
	out := []any{"kind", d.kind()}
	if d.inbox != "" {
		out = append(out, "inbox_id", d.inbox)
	}
	switch {
	case d.transition != nil:
		out = append(out, "to", d.transition.To, "reason", d.transition.Reason)
	case d.incident != nil:
		out = append(out, "incident_id", d.incident.ID, "provider", d.incident.Provider)
	case d.held != nil:
		out = append(out, "held_action_id", d.held.ID, "inbox_id", d.held.InboxID)
	case d.notice != nil:
		out = append(out, "episode", d.notice.Episode)
	}
	return append(out, more...)
}

// dropStateLocked removes a queued engine state behind the last fence: a
// newer one is about to be queued, and only the newest matters. w.mu must
// be held.
func (w *writer) dropStateLocked() {
	from := w.fenceLocked()
	n := len(w.queue)
	tail := slices.DeleteFunc(w.queue[from:], func(d decision) bool { return d.state != nil })
	w.queue = w.queue[:from+len(tail)]
	if dropped := n - len(w.queue); dropped > 0 {
		w.metrics.coalesced.WithLabelValues(string(kindState)).Add(float64(dropped))
	}
}

// fenceLocked returns the index in w.queue just after the last barrier
// someone still waits on (0 if none). A call's barrier is a fence: what
// is queued before it is answered for by the call, so nothing before it
// may be dropped, or merged into a decision queued after it (which would
// be stored after the call was answered). w.mu must be held.
func (w *writer) fenceLocked() int {
	for i := len(w.queue) - 1; i >= 0; i-- {
		if b := w.queue[i].barrier; b != nil && !b.gone {
			return i + 1
		}
	}
	return 0
}

// compactLocked removes every queued decision that a later one supersedes,
// keeping the later one where it is. w.mu must be held.
//
//   - An incident or a held action is saved whole: only its latest save
//     matters, except that an incident's last save while open is kept
//     before its save as resolved, so that OnIncident hears both.
//   - A grant is superseded by the inbox's later grant.
//   - A state change is merged into the inbox's later one: the store gets
//     the inbox's latest state, and its event log one event for the run
//     of moves, from the first state left to the last reached. This is
//     the one loss of detail, and only when the queue is at its limit.
//
// Notices (one per episode) and barriers are never removed, except the
// barriers of calls nobody waits on any more. Compaction works only
// behind the last barrier still waited on (fenceLocked): a call is
// answered only once its own decisions are stored as it made them. What
// is left is then bounded by the number of inboxes, incidents, held
// actions and notices (per call still waiting, during an outage: each
// waits at most its context's time), not by the length of the outage.
func (w *writer) compactLocked() {
	w.queue = slices.DeleteFunc(w.queue, func(d decision) bool { return d.barrier != nil && d.barrier.gone })
	from := w.fenceLocked()
	type incidentSeen struct{ open, resolved bool }
	incidents := map[int64]incidentSeen{}
	held := map[int64]bool{}
	grants := map[string]bool{}
	// transitions maps an inbox to the index, in w.queue, of its latest
	// state change.
	transitions := map[string]int{}
	drop := make([]bool, len(w.queue))
	for i := len(w.queue) - 1; i >= from; i-- {
		d := &w.queue[i]
		switch {
		case d.incident != nil:
			s := incidents[d.incident.ID]
			if d.incident.Open() {
				drop[i], s.open = s.open, true
			} else {
				drop[i], s.resolved = s.resolved, true
			}
			incidents[d.incident.ID] = s
		case d.held != nil:
			drop[i], held[d.held.ID] = held[d.held.ID], true
		case d.grant != nil:
			drop[i], grants[d.inbox] = grants[d.inbox], true
		case d.transition != nil:
			later, ok := transitions[d.inbox]
			if !ok {
				transitions[d.inbox] = i
				continue
			}
			drop[i] = true
			// The later change now leaves the state this one left, and
			// expects what this one expected.
			from := d.from
			if from == "" {
				from = d.transition.From
			}
			tc := *w.queue[later].transition
			tc.From = d.transition.From
			w.queue[later].from, w.queue[later].transition = from, &tc
		}
	}
	kept := w.queue[:0]
	for i, d := range w.queue {
		if drop[i] {
			w.metrics.coalesced.WithLabelValues(d.kind()).Inc()
			continue
		}
		kept = append(kept, d)
	}
	clear(w.queue[len(kept):])
	w.queue = kept
	w.compactAt = max(w.limit, 2*len(w.queue))
}

package monitor

import (
	"context"
	"fmt"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
)

// ReasonReconnected is the reason of the state change Reconnected records.
const ReasonReconnected = "reconnected"

// Reconnected tells the engine that an inbox's owner connected it again
// (an OAuth consent completed, and its new credentials are stored): the
// inbox goes back to connected whatever its state, and the move is
// recorded as a state change with cause api and reason "reconnected" (also
// when the inbox was connected already, so that the history shows the
// reconnection). It returns once the change is stored, or ctx ends, and
// holdfast.ErrNotFound for an unknown inbox.
//
// The code exchange that got the new credentials is a successful request
// to the provider, and the engine observes it as one: that is how its held
// actions, queued notices and backoff for the inbox are cleared, through
// the engine's ordinary path.
func (m *Monitor) Reconnected(ctx context.Context, inboxID string) error {
	m.mu.Lock()
	i, err := m.index(inboxID)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("reconnected: %w", err)
	}
	from := m.eng.State(i)
	m.unverified[i] = false
	n := len(m.pending)
	m.eng.Observe(i, health.Outcome{Op: health.OpRefresh, OK: true})
	change := &holdfast.StateChange{
		To: holdfast.StateConnected, Reason: ReasonReconnected,
		Message: "Your inbox was reconnected and is syncing again.", Cause: holdfast.CauseAPI, At: m.now(),
	}
	// The engine's own move to connected, if it made one, is recorded as
	// the reconnection instead.
	kept := m.pending[:n]
	for _, d := range m.pending[n:] {
		if d.inbox == inboxID && d.transition != nil && d.transition.To == holdfast.StateConnected {
			continue
		}
		kept = append(kept, d)
	}
	m.pending = append(kept, decision{inbox: inboxID, from: from, transition: change})
	c := m.callLocked()
	m.mu.Unlock()
	return m.durable(ctx, c)
}

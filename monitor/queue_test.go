package monitor

import (
	"fmt"
	"slices"
	"testing"

	"github.com/holdfast/holdfast"
)

// TestCompactionStopsAtBarriers (issue 12, point 3): a barrier someone
// waits on is a fence. Compaction never drops, or merges into a later
// decision, a decision queued before it, so that the call it answers
// for is answered only once its own decisions are stored as made; the
// barrier of a call nobody waits on any more is no fence, and is removed.
func TestCompactionStopsAtBarriers(t *testing.T) {
	t.Parallel()
	waited := func() *call { return &call{done: make(chan struct{})} }
	gone := func() *call { return &call{done: make(chan struct{}), gone: true} }
	move := func(inbox string, from, to holdfast.State, reason string) decision {
		return decision{inbox: inbox, from: from, transition: &holdfast.StateChange{To: to, Reason: reason}}
	}
	incident := func(id int64) decision { return decision{incident: &holdfast.Incident{ID: id}} }
	held := func(id int64) decision { return decision{held: &holdfast.HeldAction{ID: id}} }
	state := func(v byte) decision { return decision{state: []byte{v}} }
	barrier := func(c *call) decision { return decision{barrier: c} }

	tests := []struct {
		name  string
		queue []decision
		// add, if set, is enqueued after compacting queue.
		add  []decision
		want []string
	}{{
		name: "a reconnection before its call's barrier is not merged into a later move",
		queue: []decision{
			move("a", holdfast.StateNeedsReconnect, holdfast.StateConnected, "reconnected"), barrier(waited()),
			move("a", holdfast.StateConnected, holdfast.StateSuspect, "token_revoked"),
			move("a", holdfast.StateSuspect, holdfast.StateNeedsReconnect, "token_revoked"),
		},
		want: []string{"a needs_reconnect→connected reconnected", "barrier", "a connected→needs_reconnect token_revoked"},
	}, {
		name:  "an incident's save before a barrier is kept",
		queue: []decision{incident(7), barrier(waited()), incident(7), incident(7)},
		want:  []string{"incident 7 open", "barrier", "incident 7 open"},
	}, {
		name:  "a held action's save before a barrier is kept",
		queue: []decision{held(3), barrier(waited()), held(3), held(3)},
		want:  []string{"held 3", "barrier", "held 3"},
	}, {
		name: "behind every barrier, moves merge as before",
		queue: []decision{
			barrier(waited()), move("a", holdfast.StateConnected, holdfast.StateSuspect, "token_revoked"),
			move("a", holdfast.StateSuspect, holdfast.StateNeedsReconnect, "token_revoked"),
		},
		want: []string{"barrier", "a connected→needs_reconnect token_revoked"},
	}, {
		name: "the barrier of a call nobody waits on is no fence, and is removed",
		queue: []decision{
			move("a", holdfast.StateNeedsReconnect, holdfast.StateConnected, "reconnected"), barrier(gone()),
			move("a", holdfast.StateConnected, holdfast.StateNeedsReconnect, "token_revoked"),
			incident(7), barrier(gone()), incident(7),
		},
		want: []string{"a needs_reconnect→needs_reconnect token_revoked", "incident 7 open"},
	}, {
		name:  "an engine state before a barrier is not replaced by a newer one behind it",
		queue: []decision{state(1), barrier(waited())},
		add:   []decision{state(2)},
		want:  []string{"state 1", "barrier", "state 2"},
	}, {
		name:  "an engine state behind every barrier is replaced",
		queue: []decision{barrier(waited()), state(1)},
		add:   []decision{state(2)},
		want:  []string{"barrier", "state 2"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWriter(&Monitor{})
			w.queue = slices.Clone(tt.queue)
			w.compactLocked()
			w.enqueue(tt.add)
			var got []string
			for _, d := range w.queue {
				got = append(got, describe(d))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("queue after compaction = %q; want %q", got, tt.want)
			}
		})
	}
}

// describe sums d up for TestCompactionStopsAtBarriers.
func describe(d decision) string {
	switch {
	case d.barrier != nil:
		return "barrier"
	case d.transition != nil:
		return fmt.Sprintf("%s %s→%s %s", d.inbox, d.from, d.transition.To, d.transition.Reason)
	case d.incident != nil:
		if d.incident.Open() {
			return fmt.Sprintf("incident %d open", d.incident.ID)
		}
		return fmt.Sprintf("incident %d resolved", d.incident.ID)
	case d.held != nil:
		return fmt.Sprintf("held %d", d.held.ID)
	case d.state != nil:
		return fmt.Sprintf("state %d", d.state[0])
	}
	return d.kind()
}

package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
)

// forgetfulMonitor is a health monitor that does not know the inbox
// until it is added; with refuse set, adding fails.
type forgetfulMonitor struct {
	sendMonitor
	mu     sync.Mutex
	known  bool
	refuse bool
	adds   int
}

func (m *forgetfulMonitor) AddInbox(in *holdfast.Inbox) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.adds++
	if m.refuse {
		return errors.New("forgetfulMonitor: cannot add")
	}
	m.known = true
	return nil
}

func (m *forgetfulMonitor) unknown(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.known {
		return fmt.Errorf("inbox %s: %w", id, holdfast.ErrNotFound)
	}
	return nil
}

func (m *forgetfulMonitor) AdmitInbox(ctx context.Context, in *holdfast.Inbox, op health.Op) (health.Admission, error) {
	if err := m.unknown(in.ID); err != nil {
		return health.Defer, err
	}
	return m.sendMonitor.AdmitInbox(ctx, in, op)
}

func (m *forgetfulMonitor) Observe(id string, o health.Outcome) (health.Decision, error) {
	if err := m.unknown(id); err != nil {
		return health.Decision{}, err
	}
	return m.sendMonitor.Observe(id, o)
}

func (m *forgetfulMonitor) State(id string) (holdfast.State, error) {
	if err := m.unknown(id); err != nil {
		return "", err
	}
	return m.sendMonitor.State(id)
}

// TestSendWorkerUnknownInbox covers a send whose inbox the health engine
// does not know (created by another node, or AddInbox failed): the worker
// has the engine load it from the store and sends; if the engine cannot,
// the send is held visibly and fails as "inbox_unknown" within a bound,
// never held for ever.
func TestSendWorkerUnknownInbox(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		refuse    bool
		late      time.Duration // how long after its due time the attempt runs
		wantState holdfast.SendState
		wantWhy   holdfast.SendReason
		wantSnz   bool
		wantSent  int
	}{
		{name: "loaded and sent", wantState: holdfast.SendSent, wantSent: 1},
		{name: "cannot be loaded: held a while", refuse: true, late: time.Minute, wantState: holdfast.SendHeld, wantWhy: "inbox_unknown", wantSnz: true},
		{name: "cannot be loaded: fails in the end", refuse: true, late: 10 * time.Minute, wantState: holdfast.SendFailed, wantWhy: "inbox_unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupSend(t)
			mon := &forgetfulMonitor{sendMonitor: sendMonitor{state: holdfast.StateConnected}, refuse: tt.refuse}
			b.worker.Monitor = mon
			t0 := time.Now().UTC().Truncate(time.Microsecond)
			s := b.newSend(t, t0)
			b.worker.Clock = fixedClock(t0.Add(tt.late))
			err := b.work(t, s, 1)
			if isSnooze(err) != tt.wantSnz || (err != nil && !isSnooze(err)) {
				t.Errorf("Work = %v, want snooze %v", err, tt.wantSnz)
			}
			got := b.get(t, s.ID)
			if got.State != tt.wantState || got.Reason != tt.wantWhy {
				t.Errorf("send is %s (%q), want %s (%q)", got.State, got.Reason, tt.wantState, tt.wantWhy)
			}
			if n, _ := b.conn.count(s.MessageID); n != tt.wantSent {
				t.Errorf("submitted %d times, want %d", n, tt.wantSent)
			}
			mon.mu.Lock()
			adds := mon.adds
			mon.mu.Unlock()
			if adds == 0 {
				t.Error("the worker never asked the engine to load the inbox")
			}
		})
	}
}

// The service's health monitor can load an inbox it does not know, which
// the send worker asks of it.
var _ interface {
	AddInbox(in *holdfast.Inbox) error
} = (*monitor.Monitor)(nil)

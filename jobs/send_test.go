package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/store/sqlite"
)

// sendConnector is a fake connector: a Sent folder in memory, and errors
// on demand.
type sendConnector struct {
	mu   sync.Mutex
	sent map[string]int // Message-ID → submissions
	// SendFunc, if set, runs before a submission; its error is Send's.
	// With accepted set, the submission counts although Send fails (an
	// unclear outcome that did go out).
	SendFunc func() (accepted bool, err error)
	finds    int
}

func (c *sendConnector) Verify(context.Context, *holdfast.Session) error { return nil }

func (c *sendConnector) Sync(context.Context, *holdfast.Session, string) (*holdfast.SyncResult, error) {
	return nil, errors.New("sendConnector: Sync is not used by the send worker")
}

func (c *sendConnector) Send(_ context.Context, _ *holdfast.Session, m *holdfast.OutgoingMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.SendFunc != nil {
		accepted, err := c.SendFunc()
		if accepted {
			c.sent[m.MessageID]++
		}
		if err != nil {
			return err
		}
		if accepted {
			return nil
		}
	}
	c.sent[m.MessageID]++
	return nil
}

func (c *sendConnector) FindSent(_ context.Context, _ *holdfast.Session, id string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finds++
	return c.sent[id] > 0, nil
}

func (c *sendConnector) count(id string) (sent, finds int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent[id], c.finds
}

// sendMonitor is a fake health monitor.
type sendMonitor struct {
	mu       sync.Mutex
	admit    health.Admission
	state    holdfast.State
	outcomes []health.Outcome
}

func (m *sendMonitor) AdmitInbox(context.Context, *holdfast.Inbox, health.Op) (health.Admission, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admit, nil
}

func (m *sendMonitor) Observe(_ string, o health.Outcome) (health.Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes = append(m.outcomes, o)
	return health.Decision{State: m.state}, nil
}

func (m *sendMonitor) State(string) (holdfast.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state, nil
}

type sendBundle struct {
	store  *sqlite.Store
	conn   *sendConnector
	mon    *sendMonitor
	worker *jobs.SendWorker
	inbox  *holdfast.Inbox
}

func setupSend(t *testing.T) *sendBundle {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "holdfast.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	in := createInbox(t, st, holdfast.ProviderIMAP, "a@example.org")
	b := &sendBundle{store: st, conn: &sendConnector{sent: map[string]int{}}, mon: &sendMonitor{state: holdfast.StateConnected}, inbox: in}
	b.worker = &jobs.SendWorker{
		SendConfig: jobs.SendConfig{
			Store: st, Monitor: b.mon,
			Connectors: map[holdfast.Provider]holdfast.Connector{holdfast.ProviderIMAP: b.conn},
			Session: func(_ context.Context, in *holdfast.Inbox) (*holdfast.Session, error) {
				return &holdfast.Session{Inbox: in, Password: "pw"}, nil
			},
			Timeout: time.Minute,
			// The outcome's event, written with it.
			Announce: func(s *holdfast.Send) ([]holdfast.OutboxEvent, error) {
				return []holdfast.OutboxEvent{{ID: "evt_" + s.ID, Type: string(s.State)}}, nil
			},
		},
		Clock: holdfast.SystemClock{}, Logger: testLogger(t),
	}
	return b
}

// announced returns the types of the outbox events of the sends, in order.
func (b *sendBundle) announced(t *testing.T) []string {
	t.Helper()
	evs, err := b.store.OutboxEvents(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	return types
}

// createInbox stores a connected inbox of provider p for email (with
// IMAP and SMTP servers for holdfast.ProviderIMAP).
func createInbox(t *testing.T, st interface {
	CreateInbox(ctx context.Context, in *holdfast.Inbox, ev holdfast.Event) error
}, p holdfast.Provider, email string) *holdfast.Inbox {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	in := &holdfast.Inbox{
		ID: holdfast.NewID("inb", now), Provider: p, Email: email, Tenant: "example.org",
		Username: email, State: holdfast.StateConnected, Since: now, CreatedAt: now, UpdatedAt: now,
	}
	if p == holdfast.ProviderIMAP {
		in.IMAP = &holdfast.ServerConfig{Host: "imap.example.org", Port: 993, Security: holdfast.SecurityTLS}
		in.SMTP = &holdfast.ServerConfig{Host: "smtp.example.org", Port: 465, Security: holdfast.SecurityTLS}
	}
	if err := st.CreateInbox(t.Context(), in, holdfast.Event{InboxID: in.ID, At: now, NewState: in.State, Cause: holdfast.CauseAPI}); err != nil {
		t.Fatal(err)
	}
	return in
}

// newSend stores a send due at sendAt.
func (b *sendBundle) newSend(t *testing.T, sendAt time.Time) *holdfast.Send {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	id := holdfast.NewID("snd", now)
	s := &holdfast.Send{
		ID: id, InboxID: b.inbox.ID, MessageID: "<" + id + "@example.org>", To: []string{"b@example.org"},
		Subject: "hi", Text: "hello", SendAt: sendAt.UTC().Truncate(time.Microsecond), State: holdfast.SendScheduled,
		CreatedAt: now, UpdatedAt: now,
	}
	stored, _, err := b.store.CreateSend(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// work runs one attempt of s's job.
func (b *sendBundle) work(t *testing.T, s *holdfast.Send, attempt int) error {
	t.Helper()
	job := &river.Job[jobs.SendArgs]{
		JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: 20},
		Args:   jobs.SendArgs{SendID: s.ID},
	}
	return b.worker.Work(t.Context(), job)
}

func (b *sendBundle) get(t *testing.T, id string) *holdfast.Send {
	t.Helper()
	s, err := b.store.SendByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func isSnooze(err error) bool {
	var sn *river.JobSnoozeError
	return errors.As(err, &sn)
}

func TestSendWorker(t *testing.T) {
	t.Parallel()
	tooLarge := &holdfast.ProviderError{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonMessageTooLarge, Scope: holdfast.ScopeOperation, Err: errors.New("552 5.3.4 too big")}
	badPassword := &holdfast.ProviderError{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonPasswordChanged, Scope: holdfast.ScopeAccount, Err: errors.New("535 5.7.8 no")}
	down := &holdfast.ProviderError{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonNetwork, Scope: holdfast.ScopeAccount, Err: errors.New("connection refused")}
	unclear := &holdfast.ProviderError{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderTimeout, Scope: holdfast.ScopeOperation, Err: fmt.Errorf("%w: i/o timeout", holdfast.ErrOutcomeUnknown)}

	tests := []struct {
		name      string
		admit     health.Admission
		engine    holdfast.State
		sendErr   error
		accepted  bool // the unclear submission did go out
		wantState holdfast.SendState
		wantWhy   holdfast.SendReason
		wantSnz   bool // the job snoozes
		wantErr   bool // the job returns an error for River to retry
		wantSent  int
		dueAgo    time.Duration       // how long before now the send was due
		heldAs    holdfast.SendReason // held before the attempt, with this reason
	}{
		{name: "sent", wantState: holdfast.SendSent, wantSent: 1},
		{name: "held by the engine", admit: health.Hold, engine: holdfast.StatePaused, wantState: holdfast.SendHeld, wantWhy: "inbox_paused", wantSnz: true},
		{name: "held past SendHoldMax fails", admit: health.Hold, engine: holdfast.StatePaused, dueAgo: health.DefaultConfig().SendHoldMax, wantState: holdfast.SendFailed, wantWhy: holdfast.SendReasonHeldTooLong},
		{name: "waits for the owner", admit: health.Fail, engine: holdfast.StateNeedsReconnect, wantState: holdfast.SendHeld, wantWhy: "inbox_needs_reconnect", wantSnz: true},
		{name: "held by an outage past SendHoldMax, then needs the owner: fails", admit: health.Fail, engine: holdfast.StateNeedsReconnect, heldAs: "inbox_paused",
			dueAgo: health.DefaultConfig().SendHoldMax, wantState: holdfast.SendFailed, wantWhy: "inbox_needs_reconnect"},
		{name: "waited for the owner past SendHoldMax: waits on", admit: health.Fail, engine: holdfast.StateNeedsReconnect, heldAs: "inbox_needs_reconnect",
			dueAgo: health.DefaultConfig().SendHoldMax, wantState: holdfast.SendHeld, wantWhy: "inbox_needs_reconnect", wantSnz: true},
		{name: "message too large", sendErr: tooLarge, wantState: holdfast.SendFailed, wantWhy: "message_too_large"},
		{name: "account trouble holds", sendErr: badPassword, wantState: holdfast.SendHeld, wantWhy: "password_changed", wantSnz: true},
		{name: "recoverable holds", sendErr: down, wantState: holdfast.SendHeld, wantWhy: "network", wantSnz: true},
		{name: "unclear, not gone", sendErr: unclear, wantState: holdfast.SendSending, wantErr: true},
		{name: "unclear, gone", sendErr: unclear, accepted: true, wantState: holdfast.SendSending, wantErr: true, wantSent: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupSend(t)
			b.mon.admit, b.mon.state = tt.admit, cmpOr(tt.engine, holdfast.StateConnected)
			if tt.sendErr != nil {
				b.conn.SendFunc = func() (bool, error) { return tt.accepted, tt.sendErr }
			}
			s := b.newSend(t, time.Now().Add(-tt.dueAgo))
			if tt.heldAs != "" {
				if _, err := b.store.ChangeSend(t.Context(), s.ID, holdfast.SendChange{From: s.State, To: holdfast.SendHeld, Reason: tt.heldAs, At: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			err := b.work(t, s, 1)
			if isSnooze(err) != tt.wantSnz || (err != nil && !isSnooze(err)) != tt.wantErr {
				t.Errorf("Work = %v, want snooze %v, error %v", err, tt.wantSnz, tt.wantErr)
			}
			got := b.get(t, s.ID)
			if got.State != tt.wantState || got.Reason != tt.wantWhy {
				t.Errorf("send is %s (%q), want %s (%q)", got.State, got.Reason, tt.wantState, tt.wantWhy)
			}
			if n, _ := b.conn.count(s.MessageID); n != tt.wantSent {
				t.Errorf("submitted %d times, want %d", n, tt.wantSent)
			}
			b.mon.mu.Lock()
			outcomes := len(b.mon.outcomes)
			b.mon.mu.Unlock()
			if wantOutcomes := map[bool]int{true: 1, false: 0}[tt.admit == health.Allow]; outcomes != wantOutcomes {
				t.Errorf("%d outcomes reported, want %d", outcomes, wantOutcomes)
			}
			var wantEvents []string
			if tt.wantState == holdfast.SendSent || tt.wantState == holdfast.SendFailed {
				wantEvents = []string{string(tt.wantState)}
			}
			if got := b.announced(t); !slices.Equal(got, wantEvents) {
				t.Errorf("outbox events %v, want %v", got, wantEvents)
			}

			if tt.wantState != holdfast.SendSending {
				return
			}
			// The retry looks in Sent first and sends only if it is not
			// there: exactly one submission either way.
			b.conn.SendFunc = nil
			if err := b.work(t, s, 2); err != nil {
				t.Fatalf("retry: Work = %v", err)
			}
			if got := b.get(t, s.ID); got.State != holdfast.SendSent || got.Attempts != 2 {
				t.Errorf("after the retry the send is %s with %d attempts, want sent with 2", got.State, got.Attempts)
			}
			if got := b.announced(t); !slices.Equal(got, []string{string(holdfast.SendSent)}) {
				t.Errorf("outbox events after the retry %v, want one sent", got)
			}
			if n, finds := b.conn.count(s.MessageID); n != 1 || finds != 1 {
				t.Errorf("submitted %d times, FindSent %d times; want 1 and 1", n, finds)
			}
		})
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func TestSendWorkerLeavesFinishedAndEarlySends(t *testing.T) {
	t.Parallel()
	b := setupSend(t)
	s := b.newSend(t, time.Now())
	if _, err := b.store.ChangeSend(t.Context(), s.ID, holdfast.SendChange{From: holdfast.SendScheduled, To: holdfast.SendCancelled, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := b.work(t, s, 1); err != nil {
		t.Errorf("Work on a cancelled send = %v, want nil", err)
	}
	early := b.newSend(t, time.Now().Add(time.Hour))
	if err := b.work(t, early, 1); !isSnooze(err) {
		t.Errorf("Work on a send due in an hour = %v, want a snooze", err)
	}
	for _, id := range []string{s.MessageID, early.MessageID} {
		if n, _ := b.conn.count(id); n != 0 {
			t.Errorf("%s submitted %d times, want 0", id, n)
		}
	}
}

// TestSendWorkerWaitsForOwner covers a due send whose inbox needs its
// owner before any attempt: it is held, not failed, while the inbox may
// still come back (by itself, or reconnected), goes out once it does, and
// fails only ownerWait after it was due.
func TestSendWorkerWaitsForOwner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		back      bool          // the inbox works again at the end
		waitFor   time.Duration // how long after its due time the last attempt runs
		admin     bool
		wantState holdfast.SendState
		wantWhy   holdfast.SendReason
		wantSent  int
	}{
		{name: "back within the grace period", back: true, waitFor: 40 * time.Second, wantState: holdfast.SendSent, wantSent: 1},
		{name: "reconnected the next morning", back: true, waitFor: 20 * time.Hour, wantState: holdfast.SendSent, wantSent: 1},
		{name: "never reconnected", waitFor: 24 * time.Hour, wantState: holdfast.SendFailed, wantWhy: "inbox_needs_reconnect"},
		{name: "admin never consented", admin: true, waitFor: 25 * time.Hour, wantState: holdfast.SendFailed, wantWhy: "inbox_needs_admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupSend(t)
			t0 := time.Now().UTC().Truncate(time.Microsecond)
			s := b.newSend(t, t0)
			needs := holdfast.StateNeedsReconnect
			if tt.admin {
				needs = holdfast.StateNeedsAdmin
			}
			b.mon.mu.Lock()
			b.mon.admit, b.mon.state = health.Fail, needs
			b.mon.mu.Unlock()

			// While it waits, each look snoozes the job, at first for
			// 30 s and never for more than 5 minutes.
			last := min(tt.waitFor, 24*time.Hour) - time.Second
			for i, late := range []time.Duration{0, 20 * time.Second, time.Hour, last} {
				b.worker.Clock = fixedClock(t0.Add(late))
				err := b.work(t, s, 1+i)
				var sn *river.JobSnoozeError
				if !errors.As(err, &sn) {
					t.Fatalf("%v late: Work = %v, want a snooze", late, err)
				}
				if want := min(max(late/10, 30*time.Second), 5*time.Minute); sn.Duration != want {
					t.Errorf("%v late: snoozed %v, want %v", late, sn.Duration, want)
				}
				if got := b.get(t, s.ID); got.State != holdfast.SendHeld || string(got.Reason) != "inbox_"+string(needs) {
					t.Errorf("%v late: send is %s (%q), want held (inbox_%s)", late, got.State, got.Reason, needs)
				}
				if late >= last {
					break
				}
			}

			b.worker.Clock = fixedClock(t0.Add(tt.waitFor))
			if tt.back {
				b.mon.mu.Lock()
				b.mon.admit, b.mon.state = health.Allow, holdfast.StateConnected
				b.mon.mu.Unlock()
			}
			if err := b.work(t, s, 9); err != nil {
				t.Fatalf("last attempt: Work = %v", err)
			}
			got := b.get(t, s.ID)
			if got.State != tt.wantState || got.Reason != tt.wantWhy {
				t.Errorf("send is %s (%q), want %s (%q)", got.State, got.Reason, tt.wantState, tt.wantWhy)
			}
			if n, _ := b.conn.count(s.MessageID); n != tt.wantSent {
				t.Errorf("submitted %d times, want %d", n, tt.wantSent)
			}
		})
	}
}

// TestSendWorkerOutcomeUnknownWhileInboxNeedsOwner covers a send left
// "sending" by an unclear attempt when the engine then fails its inbox's
// sends: it waits, visibly, without claiming a failure, looks in Sent once
// the inbox works again, and fails only after the wait.
func TestSendWorkerOutcomeUnknownWhileInboxNeedsOwner(t *testing.T) {
	t.Parallel()
	unclear := &holdfast.ProviderError{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderTimeout, Scope: holdfast.ScopeOperation, Err: fmt.Errorf("%w: i/o timeout", holdfast.ErrOutcomeUnknown)}
	tests := []struct {
		name      string
		accepted  bool          // the unclear submission did go out
		waitFor   time.Duration // how long the inbox needs its owner
		wantState holdfast.SendState
		wantWhy   holdfast.SendReason
		wantSent  int
	}{
		{name: "reconnected, had gone out", accepted: true, waitFor: time.Hour, wantState: holdfast.SendSent, wantSent: 1},
		{name: "reconnected, had not gone out", waitFor: time.Hour, wantState: holdfast.SendSent, wantSent: 1},
		{name: "never reconnected", accepted: true, waitFor: 25 * time.Hour, wantState: holdfast.SendFailed, wantWhy: "outcome_unknown", wantSent: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupSend(t)
			t0 := time.Now().UTC().Truncate(time.Microsecond)
			b.worker.Clock = fixedClock(t0)
			b.conn.SendFunc = func() (bool, error) { return tt.accepted, unclear }
			s := b.newSend(t, t0)
			if err := b.work(t, s, 1); err == nil || isSnooze(err) {
				t.Fatalf("unclear attempt: Work = %v, want an error", err)
			}
			b.conn.SendFunc = nil

			// The inbox needs its owner: wait, visibly, and do not look.
			b.mon.mu.Lock()
			b.mon.admit, b.mon.state = health.Fail, holdfast.StateNeedsReconnect
			b.mon.mu.Unlock()
			for i, at := range []time.Time{t0.Add(time.Minute), t0.Add(tt.waitFor / 2)} {
				b.worker.Clock = fixedClock(at)
				if err := b.work(t, s, 2+i); !isSnooze(err) {
					t.Errorf("attempt %d while the inbox needs its owner: Work = %v, want a snooze", 2+i, err)
				}
				if got := b.get(t, s.ID); got.State != holdfast.SendSending || got.Reason != "outcome_unknown_until_reconnect" {
					t.Errorf("while the inbox needs its owner the send is %s (%q), want sending (outcome_unknown_until_reconnect)", got.State, got.Reason)
				}
			}
			if _, finds := b.conn.count(s.MessageID); finds != 0 {
				t.Errorf("FindSent called %d times while the inbox needs its owner, want 0", finds)
			}

			b.worker.Clock = fixedClock(t0.Add(tt.waitFor))
			if tt.wantState != holdfast.SendFailed {
				b.mon.mu.Lock()
				b.mon.admit, b.mon.state = health.Allow, holdfast.StateConnected
				b.mon.mu.Unlock()
			}
			if err := b.work(t, s, 4); err != nil {
				t.Fatalf("last attempt: Work = %v", err)
			}
			got := b.get(t, s.ID)
			if got.State != tt.wantState || got.Reason != tt.wantWhy {
				t.Errorf("send is %s (%q), want %s (%q)", got.State, got.Reason, tt.wantState, tt.wantWhy)
			}
			wantFinds := 1
			if tt.wantState == holdfast.SendFailed {
				wantFinds = 0
			}
			if n, finds := b.conn.count(s.MessageID); n != tt.wantSent || finds != wantFinds {
				t.Errorf("submitted %d times, FindSent %d times; want %d and %d", n, finds, tt.wantSent, wantFinds)
			}
		})
	}
}

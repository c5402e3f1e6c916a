package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/store/sqlite"
	"github.com/holdfast/holdfast/syncer"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeConnector serves each inbox's mail from an in-memory list. The
// cursor is the number of messages already returned.
type fakeConnector struct {
	mu    sync.Mutex
	mail  map[string][]holdfast.Message
	calls map[string]int
	// batch is the most messages one Sync returns.
	batch int
	// SyncFunc, if set, runs first; an error it returns is Sync's.
	SyncFunc func(ctx context.Context, inboxID string) error
}

var _ holdfast.Connector = (*fakeConnector)(nil)

func newFakeConnector() *fakeConnector {
	return &fakeConnector{mail: map[string][]holdfast.Message{}, calls: map[string]int{}, batch: 100}
}

func (f *fakeConnector) deliver(inboxID string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		k := len(f.mail[inboxID])
		f.mail[inboxID] = append(f.mail[inboxID], holdfast.Message{
			InboxID: inboxID, ProviderID: fmt.Sprintf("INBOX/1/%d", k+1),
			InternetMessageID: fmt.Sprintf("<%d.%s@test>", k, inboxID), Subject: fmt.Sprint("message ", k),
			ReceivedAt: time.Date(2026, 1, 1, 0, 0, k, 0, time.UTC),
		})
	}
}

func (f *fakeConnector) syncs(inboxID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[inboxID]
}

func (f *fakeConnector) Verify(context.Context, *holdfast.Session) error { return nil }

func (f *fakeConnector) Sync(ctx context.Context, s *holdfast.Session, cursor string) (*holdfast.SyncResult, error) {
	id := s.Inbox.ID
	f.mu.Lock()
	f.calls[id]++
	fn := f.SyncFunc
	f.mu.Unlock()
	if fn != nil {
		if err := fn(ctx, id); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	from := 0
	if cursor != "" {
		from, _ = strconv.Atoi(cursor)
	}
	all := f.mail[id]
	to := min(from+f.batch, len(all))
	return &holdfast.SyncResult{
		Messages: append([]holdfast.Message(nil), all[from:to]...),
		Cursor:   strconv.Itoa(to), More: to < len(all),
	}, nil
}

func (f *fakeConnector) Send(context.Context, *holdfast.Session, *holdfast.OutgoingMessage) error {
	return errors.New("fake connector: Send is not used by the syncer")
}

func (f *fakeConnector) FindSent(context.Context, *holdfast.Session, string) (bool, error) {
	return false, errors.New("fake connector: FindSent is not used by the syncer")
}

// fakeMonitor records outcomes and answers admissions.
type fakeMonitor struct {
	mu       sync.Mutex
	outcomes map[string][]health.Outcome
	// AdmitFunc and ObserveFunc, if set, decide; the defaults allow and
	// decide nothing.
	AdmitFunc   func(inboxID string) health.Admission
	ObserveFunc func(inboxID string, o health.Outcome) health.Decision
}

func (m *fakeMonitor) Admit(inboxID string, _ health.Op) (health.Admission, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.AdmitFunc != nil {
		return m.AdmitFunc(inboxID), nil
	}
	return health.Allow, nil
}

func (m *fakeMonitor) Observe(inboxID string, o health.Outcome) (health.Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outcomes == nil {
		m.outcomes = map[string][]health.Outcome{}
	}
	m.outcomes[inboxID] = append(m.outcomes[inboxID], o)
	if m.ObserveFunc != nil {
		return m.ObserveFunc(inboxID, o), nil
	}
	return health.Decision{State: holdfast.StateConnected}, nil
}

func (m *fakeMonitor) observed(inboxID string) []health.Outcome {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]health.Outcome(nil), m.outcomes[inboxID]...)
}

type testBundle struct {
	store *sqlite.Store
	conn  *fakeConnector
	mon   *fakeMonitor
	cfg   syncer.Config
}

// setup opens a real SQLite store and returns the fakes around it.
func setup(t *testing.T) *testBundle {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "holdfast.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := &testBundle{store: st, conn: newFakeConnector(), mon: &fakeMonitor{}}
	b.cfg = syncer.Config{
		Store: st, Monitor: b.mon,
		Connectors: map[holdfast.Provider]holdfast.Connector{holdfast.ProviderIMAP: b.conn},
		Session: func(_ context.Context, in *holdfast.Inbox) (*holdfast.Session, error) {
			return &holdfast.Session{Inbox: in, Password: "pw"}, nil
		},
		Interval: time.Hour, Concurrency: 4, CallTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return b
}

// tWriter sends logs to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// inbox stores a new inbox of provider p.
func (b *testBundle) inbox(t *testing.T, p holdfast.Provider) *holdfast.Inbox {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	id := holdfast.NewID("inb", now)
	in := &holdfast.Inbox{
		ID: id, Provider: p, Email: id + "@example.org", Tenant: "example.org",
		State: holdfast.StateConnecting, Reason: "created", Since: now, CreatedAt: now, UpdatedAt: now,
	}
	if p == holdfast.ProviderIMAP {
		in.Username = in.Email
		in.IMAP = &holdfast.ServerConfig{Host: "imap.example.org", Port: 993, Security: holdfast.SecurityTLS}
		in.SMTP = &holdfast.ServerConfig{Host: "smtp.example.org", Port: 465, Security: holdfast.SecurityTLS}
	}
	if err := b.store.CreateInbox(t.Context(), in, holdfast.Event{InboxID: id, At: now, NewState: in.State, Reason: "created", Cause: holdfast.CauseAPI}); err != nil {
		t.Fatal(err)
	}
	return in
}

// start starts a syncer with b.cfg and stops it at the test's end.
func (b *testBundle) start(t *testing.T) *syncer.Syncer {
	t.Helper()
	s, err := syncer.New(b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

// eventually polls cond every 10 ms until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stored returns the number of messages the store holds for an inbox.
func (b *testBundle) stored(t *testing.T, inboxID string) int {
	t.Helper()
	msgs, err := b.store.Messages(t.Context(), inboxID, holdfast.MessageFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(msgs)
}

func TestCadence(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := b.inbox(t, holdfast.ProviderIMAP)
	b.cfg.Interval = 200 * time.Millisecond
	b.start(t)
	time.Sleep(1100 * time.Millisecond)
	// The first sync comes within one interval, the next every
	// 180 to 220 ms: 5 or 6 in 1.1 s.
	if n := b.conn.syncs(in.ID); n < 4 || n > 7 {
		t.Errorf("%d syncs in 1.1 s at a 200 ms interval, want 5 or 6", n)
	}
	for _, o := range b.mon.observed(in.ID) {
		if !o.OK || o.Op != health.OpSync {
			t.Errorf("outcome %+v, want OK sync", o)
		}
	}
}

func TestSyncNowAndIncremental(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Each batch's new messages are announced in its transaction.
	b.cfg.AnnounceMessages = func(inboxID string, msgs []holdfast.Message) ([]holdfast.OutboxEvent, error) {
		var evs []holdfast.OutboxEvent
		for _, m := range msgs {
			if m.Added {
				evs = append(evs, holdfast.OutboxEvent{ID: "evt_" + m.ID, Type: "message.received", Payload: []byte(inboxID)})
			}
		}
		return evs, nil
	}
	s := b.start(t)
	in := b.inbox(t, holdfast.ProviderIMAP)
	b.conn.deliver(in.ID, 3)
	// A new inbox syncs at once, though the interval is an hour.
	s.Add(in)
	eventually(t, "3 messages stored after Add", func() bool { return b.stored(t, in.ID) == 3 })

	b.conn.deliver(in.ID, 2)
	if err := s.Now(in.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "5 messages stored after Now", func() bool { return b.stored(t, in.ID) == 5 })
	if n := b.conn.syncs(in.ID); n != 2 {
		t.Errorf("%d syncs, want 2", n)
	}
	got, err := b.store.Inbox(t.Context(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SyncCursor != "5" {
		t.Errorf("stored cursor = %q, want 5", got.SyncCursor)
	}
	msgs, err := b.store.Messages(t.Context(), in.ID, holdfast.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := b.store.OutboxEvents(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	announced := map[string]bool{}
	for _, ev := range evs {
		announced[ev.ID] = string(ev.Payload) == in.ID
	}
	for _, m := range msgs {
		if !announced["evt_"+m.ID] {
			t.Errorf("message %s stored but not announced in the outbox", m.ID)
		}
	}
	if len(evs) != len(msgs) {
		t.Errorf("%d events in the outbox for %d messages", len(evs), len(msgs))
	}
}

func TestMoreLoopIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.conn.batch = 10
	b.cfg.MaxRounds = 3
	in := b.inbox(t, holdfast.ProviderIMAP)
	b.conn.deliver(in.ID, 45) // 5 batches: 3 rounds, then 2 more at once
	s := b.start(t)
	if err := s.Now(in.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "45 messages stored", func() bool { return b.stored(t, in.ID) == 45 })
	// Five batches and no more, though the interval is an hour.
	time.Sleep(100 * time.Millisecond)
	if n := b.conn.syncs(in.ID); n != 5 {
		t.Errorf("%d connector calls for 5 batches, want 5", n)
	}
	if n := len(b.mon.observed(in.ID)); n != 5 {
		t.Errorf("%d outcomes reported, want one per call, 5", n)
	}
}

func TestErrorsAreReportedAndRescheduled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := b.inbox(t, holdfast.ProviderIMAP)
	var mu sync.Mutex
	fail := true
	b.conn.SyncFunc = func(context.Context, string) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return &holdfast.ProviderError{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonNetwork,
				Scope: holdfast.ScopeAccount, Action: holdfast.ActionRetry, Err: errors.New("connection refused")}
		}
		return nil
	}
	b.mon.ObserveFunc = func(_ string, o health.Outcome) health.Decision {
		if o.OK {
			return health.Decision{State: holdfast.StateConnected}
		}
		return health.Decision{State: holdfast.StateDegraded, RetryAt: time.Now().Add(300 * time.Millisecond)}
	}
	b.conn.deliver(in.ID, 1)
	s := b.start(t)
	start := time.Now()
	if err := s.Now(in.ID); err != nil {
		t.Fatal(err)
	}
	// Retried at the engine's RetryAt, not after the hour's interval.
	eventually(t, "the message stored after the retry", func() bool { return b.stored(t, in.ID) == 1 })
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("retried after %v, want at RetryAt, 300 ms", took)
	}
	out := b.mon.observed(in.ID)
	if len(out) != 2 {
		t.Fatalf("outcomes = %+v, want a failure then a success", out)
	}
	if v := out[0].Verdict; out[0].OK || v == nil || v.Class != holdfast.ClassRecoverable || v.Reason != holdfast.ReasonNetwork {
		t.Errorf("first outcome = %+v (verdict %+v), want recoverable network", out[0], v)
	}
	if !out[1].OK {
		t.Errorf("second outcome = %+v, want OK", out[1])
	}
}

func TestDeferredByTheEngine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := b.inbox(t, holdfast.ProviderIMAP)
	var mu sync.Mutex
	adm := health.Defer
	b.mon.AdmitFunc = func(string) health.Admission {
		mu.Lock()
		defer mu.Unlock()
		return adm
	}
	s := b.start(t)
	if err := s.Now(in.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := b.conn.syncs(in.ID); n != 0 {
		t.Errorf("%d syncs of a deferred inbox, want 0", n)
	}
	// A grant (monitor.Config.OnGrant → Now) brings it back at once.
	mu.Lock()
	adm = health.Allow
	mu.Unlock()
	if err := s.Now(in.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a sync after the grant", func() bool { return b.conn.syncs(in.ID) == 1 })
}

func TestInboxDeletedMidSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := b.inbox(t, holdfast.ProviderIMAP)
	other := b.inbox(t, holdfast.ProviderIMAP)
	b.conn.deliver(in.ID, 1)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.conn.SyncFunc = func(ctx context.Context, id string) error {
		if id == in.ID {
			once.Do(func() { close(entered) })
			<-release
		}
		return nil
	}
	b.cfg.Interval = 50 * time.Millisecond
	s := b.start(t)
	<-entered
	// Deleted while its sync runs.
	if err := b.store.DeleteInbox(t.Context(), in.ID, holdfast.Event{InboxID: in.ID, At: time.Now().UTC(), Reason: "deleted", Cause: holdfast.CauseAPI}); err != nil {
		t.Fatal(err)
	}
	s.Remove(in.ID)
	close(release)
	eventually(t, "the other inbox synced again", func() bool { return b.conn.syncs(other.ID) >= 3 })
	if n := b.conn.syncs(in.ID); n != 1 {
		t.Errorf("%d syncs of the deleted inbox, want 1", n)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("Len() = %d, want 1", n)
	}
	if err := s.Now(in.ID); !errors.Is(err, syncer.ErrNotScheduled) {
		t.Errorf("Now(deleted) = %v, want ErrNotScheduled", err)
	}

	// Deleted from the store without Remove: its next sync drops it.
	if err := b.store.DeleteInbox(t.Context(), other.ID, holdfast.Event{InboxID: other.ID, At: time.Now().UTC(), Reason: "deleted", Cause: holdfast.CauseAPI}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the schedule empty", func() bool { return s.Len() == 0 })
}

func TestProvidersWithoutConnectorAreNotScheduled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inbox(t, holdfast.ProviderIMAP)
	ms := b.inbox(t, holdfast.ProviderMicrosoft)
	s := b.start(t)
	s.Add(ms)
	if n := s.Len(); n != 1 {
		t.Errorf("Len() = %d, want 1 (the IMAP inbox only)", n)
	}
	if err := s.Now(ms.ID); !errors.Is(err, syncer.ErrNotScheduled) {
		t.Errorf("Now(microsoft inbox) = %v, want ErrNotScheduled", err)
	}
}

func TestStopBeforeStartAndTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, err := syncer.New(b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Stop(t.Context()); err != nil {
			t.Errorf("Stop = %v", err)
		}
	}
}

// TestManyInboxes checks the heap under churn: every inbox syncs, deleted
// ones stop.
func TestManyInboxes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.Interval = 100 * time.Millisecond
	b.cfg.Concurrency = 8
	var ins []*holdfast.Inbox
	for range 200 {
		ins = append(ins, b.inbox(t, holdfast.ProviderIMAP))
	}
	s := b.start(t)
	for _, in := range ins[:100] {
		s.Remove(in.ID)
	}
	eventually(t, "every remaining inbox synced twice", func() bool {
		for _, in := range ins[100:] {
			if b.conn.syncs(in.ID) < 2 {
				return false
			}
		}
		return true
	})
	for _, in := range ins[:100] {
		if n := b.conn.syncs(in.ID); n > 1 {
			t.Errorf("removed inbox %s synced %d times", in.ID, n)
		}
	}
	if n := s.Len(); n != 100 {
		t.Errorf("Len() = %d, want 100", n)
	}
}

// writeCounter counts the store writes of syncs.
type writeCounter struct {
	syncer.Store
	saves, touches atomic.Int32
}

func (c *writeCounter) SaveSync(ctx context.Context, id string, msgs []holdfast.Message, cursor string, at time.Time, a holdfast.Announce[[]holdfast.Message]) (int, error) {
	c.saves.Add(1)
	return c.Store.SaveSync(ctx, id, msgs, cursor, at, a)
}

func (c *writeCounter) TouchSynced(ctx context.Context, synced map[string]time.Time) error {
	c.touches.Add(1)
	return c.Store.TouchSynced(ctx, synced)
}

// TestEmptySyncsWriteTogether: a sync that finds nothing (no message, the
// same cursor) writes no transaction of its own; its time is written with
// the others' every TouchEvery, and at Stop. A sync that finds mail still
// stores it with its cursor at once.
func TestEmptySyncsWriteTogether(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cs := &writeCounter{Store: b.store}
	b.cfg.Store = cs
	b.cfg.Interval, b.cfg.TouchEvery = 50*time.Millisecond, time.Hour
	in := b.inbox(t, holdfast.ProviderIMAP)
	s := b.start(t)
	eventually(t, "ten syncs", func() bool { return b.conn.syncs(in.ID) >= 10 })
	if n := cs.saves.Load(); n != 1 {
		t.Errorf("%d SaveSync calls for ten syncs of an empty inbox, want 1 (the first cursor)", n)
	}
	b.conn.deliver(in.ID, 2)
	eventually(t, "the new mail stored", func() bool { return b.stored(t, in.ID) == 2 })
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := cs.touches.Load(); n != 1 {
		t.Errorf("%d TouchSynced calls, want 1 (at Stop)", n)
	}
	got, err := b.store.Inbox(t.Context(), in.ID)
	if err != nil || got.LastSyncAt.IsZero() || got.SyncCursor != "2" {
		t.Errorf("inbox after Stop: last sync %v, cursor %q, %v; want a last sync time and cursor 2", got.LastSyncAt, got.SyncCursor, err)
	}
}

// TestSyncOutcomesCounted: holdfast_syncs_total counts each sync by its
// outcome, the empty ones too (they write no SaveSync of their own).
func TestSyncOutcomesCounted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.Interval = 40 * time.Millisecond
	in := b.inbox(t, holdfast.ProviderIMAP)
	s := b.start(t)
	eventually(t, "five syncs", func() bool { return b.conn.syncs(in.ID) >= 5 })
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "holdfast_syncs_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["stored"] < 1 || got["nothing_new"] < 3 {
		t.Errorf("holdfast_syncs_total = %v, want the first sync stored and the later ones nothing_new", got)
	}
}

package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// countingMailer counts the messages per recipient.
type countingMailer struct {
	mu   sync.Mutex
	sent map[string]int
}

func (m *countingMailer) Send(_ context.Context, _ string, to []string, _ []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range to {
		m.sent[r]++
	}
	return nil
}

func (m *countingMailer) count(to string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sent[to]
}

// TestNotifyJobs runs the notify job through River on each engine: a
// notice enqueued twice (the writer, then the sweep) goes out once, and a
// notice stored without a job is found by the sweep; the owner of both
// inboxes gets one message.
func TestNotifyJobs(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			mailer := &countingMailer{sent: map[string]int{}}
			links, err := notify.NewLinks([]byte(strings.Repeat("k", 32)), "https://h.example.test", 0)
			if err != nil {
				t.Fatal(err)
			}
			var st holdfast.Store
			lazy := &lazyNotifyStore{p: &st}
			n, err := notify.New(notify.Config{
				Store: lazy, Mailer: mailer, Links: links, From: "no-reply@h.example.test",
				GroupWait: 500 * time.Millisecond, Logger: testLogger(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			var r *jobs.Runner
			st, r = e.setup(t, jobs.WithNotify(jobs.NotifyConfig{Store: lazy, Notifier: n}))
			ctx := t.Context()
			now := time.Now().UTC()
			var notices []*holdfast.Notice
			for i, p := range []holdfast.Provider{holdfast.ProviderMicrosoft, holdfast.ProviderGoogle} {
				id := []string{"inb_jobs_a", "inb_jobs_b"}[i]
				in := &holdfast.Inbox{ID: id, Email: "owner@example.test", Provider: p, State: holdfast.StateNeedsReconnect,
					Reason: "invalid_grant", Credentials: []byte("x"), Since: now, CreatedAt: now, UpdatedAt: now}
				if err := st.CreateInbox(ctx, in, holdfast.Event{InboxID: id, At: now, NewState: in.State, Cause: holdfast.CauseAPI}); err != nil {
					t.Fatal(err)
				}
				no := &holdfast.Notice{InboxID: id, Episode: 1, Reason: "invalid_grant", At: now}
				if err := st.AppendNotice(ctx, no); err != nil {
					t.Fatal(err)
				}
				notices = append(notices, no)
			}
			for range 2 {
				if err := r.EnqueueNotice(ctx, notices[0]); err != nil {
					t.Fatalf("EnqueueNotice = %v", err)
				}
			}
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Stop(context.Background()) })
			deadline := time.Now().Add(20 * time.Second)
			for {
				recs, err := st.NoticeRecords(ctx, holdfast.NoticeFilter{Recipient: "owner@example.test"})
				if err != nil {
					t.Fatal(err)
				}
				done := len(recs) == 2
				for _, rec := range recs {
					done = done && rec.Status == holdfast.NoticeSent
				}
				if done {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("notices not sent in time: %+v", recs)
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(time.Second) // any duplicate would go out by now
			if got := mailer.count("owner@example.test"); got != 1 {
				t.Errorf("%d messages to the owner; want 1", got)
			}
		})
	}
}

// lazyNotifyStore lets the notifier be made before the store it uses.
type lazyNotifyStore struct {
	// The aggregates' other methods are not called: they would panic.
	holdfast.NoticeStore
	holdfast.InboxStore
	holdfast.HealthStore
	holdfast.LockStore
	p *holdfast.Store
}

func (s *lazyNotifyStore) TryLock(ctx context.Context, name string) (func(), bool, error) {
	return (*s.p).TryLock(ctx, name)
}

func (s *lazyNotifyStore) Inbox(ctx context.Context, id string) (*holdfast.Inbox, error) {
	return (*s.p).Inbox(ctx, id)
}

func (s *lazyNotifyStore) Events(ctx context.Context, id string, f holdfast.EventFilter) ([]holdfast.Event, error) {
	return (*s.p).Events(ctx, id, f)
}

func (s *lazyNotifyStore) Incidents(ctx context.Context, openOnly bool, limit int) ([]*holdfast.Incident, error) {
	return (*s.p).Incidents(ctx, openOnly, limit)
}

func (s *lazyNotifyStore) NoticeRecords(ctx context.Context, f holdfast.NoticeFilter) ([]*holdfast.NoticeRecord, error) {
	return (*s.p).NoticeRecords(ctx, f)
}

func (s *lazyNotifyStore) ChangeNotice(ctx context.Context, id int64, c holdfast.NoticeChange) (*holdfast.NoticeRecord, error) {
	return (*s.p).ChangeNotice(ctx, id, c)
}

// TestNotifyResolvedWaitsForConnected covers the follow-up of an inbox a
// retroactive incident paused after its notice went out: the job snoozes
// while the inbox is paused, sends once it is connected, and gives up a
// day after the inbox left needs_reconnect.
func TestNotifyResolvedWaitsForConnected(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		after    time.Duration // when the job runs again, after Since
		back     bool          // connected by then
		wantSnz  bool
		wantSent int
	}{
		{name: "still paused", after: time.Hour, wantSnz: true, wantSent: 1},
		{name: "connected", after: time.Hour, back: true, wantSent: 2},
		{name: "paused for a day", after: 24 * time.Hour, wantSent: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := sqlitetest.Open(t)
			mailer := &countingMailer{sent: map[string]int{}}
			links, err := notify.NewLinks([]byte(strings.Repeat("k", 32)), "https://h.example.test", 0)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now().UTC().Truncate(time.Second)
			n, err := notify.New(notify.Config{
				Store: st, Mailer: mailer, Links: links, From: "no-reply@h.example.test",
				Resolved: true, Logger: testLogger(t), Clock: fixedClock(t0.Add(-30 * time.Minute)),
			})
			if err != nil {
				t.Fatal(err)
			}
			const id, owner = "inb_follow", "owner@example.test"
			at := t0.Add(-time.Hour)
			in := &holdfast.Inbox{ID: id, Email: owner, Provider: holdfast.ProviderMicrosoft, State: holdfast.StateNeedsReconnect,
				Reason: "token_revoked", Credentials: []byte("x"), Since: at, CreatedAt: at, UpdatedAt: at}
			if err := st.CreateInbox(ctx, in, holdfast.Event{InboxID: id, At: at, NewState: in.State, Cause: holdfast.CauseHealth}); err != nil {
				t.Fatal(err)
			}
			no := &holdfast.Notice{InboxID: id, Episode: 1, Reason: "token_revoked", At: at}
			if err := st.AppendNotice(ctx, no); err != nil {
				t.Fatal(err)
			}
			// Its notice went out half an hour later.
			if wait, err := n.Deliver(ctx, no.ID); err != nil || wait > 0 || mailer.count(owner) != 1 {
				t.Fatalf("Deliver = %v, %v; %d messages", wait, err, mailer.count(owner))
			}
			// A retroactive incident pauses it (Since is t0).
			move := func(to holdfast.State, at time.Time) {
				t.Helper()
				if _, err := st.ChangeState(ctx, id, holdfast.StateChange{To: to, Reason: "incident", Cause: holdfast.CauseHealth, At: at}); err != nil {
					t.Fatal(err)
				}
			}
			move(holdfast.StatePaused, t0)
			if tt.back {
				move(holdfast.StateConnected, t0.Add(tt.after-time.Minute))
			}
			w := &jobs.NotifyResolvedWorker{Notifier: n, Clock: fixedClock(t0.Add(tt.after))}
			err = w.Work(ctx, &river.Job[jobs.NotifyResolvedArgs]{JobRow: &rivertype.JobRow{Attempt: 1},
				Args: jobs.NotifyResolvedArgs{InboxID: id, Since: t0}})
			var sn *river.JobSnoozeError
			if errors.As(err, &sn) != tt.wantSnz || (err != nil && sn == nil) {
				t.Errorf("Work = %v, want snooze %v", err, tt.wantSnz)
			}
			if got := mailer.count(owner); got != tt.wantSent {
				t.Errorf("%d messages to the owner, want %d", got, tt.wantSent)
			}
		})
	}
}

// TestNotifySweepFlagsStranded covers a notice claimed (sending) by a node
// that then died: once it has been sending for longer than the stranded
// timeout, the sweep cancels it with reason stranded, once, and warns; it
// never enqueues it to be mailed again. A notice claimed recently is left
// alone.
func TestNotifySweepFlagsStranded(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st, _ := e.setup(t)
			t0 := time.Now().UTC().Truncate(time.Second)
			const id = "inb_stranded"
			in := &holdfast.Inbox{ID: id, Email: "owner@example.test", Provider: holdfast.ProviderMicrosoft, State: holdfast.StateNeedsReconnect,
				Reason: "invalid_grant", Credentials: []byte("x"), Since: t0, CreatedAt: t0, UpdatedAt: t0}
			if err := st.CreateInbox(ctx, in, holdfast.Event{InboxID: id, At: t0, NewState: in.State, Cause: holdfast.CauseAPI}); err != nil {
				t.Fatal(err)
			}
			// Two notices claimed by a node that died: one claimed at t0,
			// one claimed just before the sweep runs.
			claim := map[string]time.Time{"old": t0, "recent": t0.Add(jobs.NoticeStrandedAfter)}
			ids := map[string]int64{}
			for i, name := range []string{"old", "recent"} {
				no := &holdfast.Notice{InboxID: id, Episode: int64(i + 1), Reason: "invalid_grant", At: t0}
				if err := st.AppendNotice(ctx, no); err != nil {
					t.Fatal(err)
				}
				if _, err := st.ChangeNotice(ctx, no.ID, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeSending, At: claim[name]}); err != nil {
					t.Fatal(err)
				}
				ids[name] = no.ID
			}
			var logs strings.Builder
			var inserted int
			w := &jobs.NotifySweepWorker{
				Store:  st,
				Insert: func(context.Context, jobs.NotifyArgs) (bool, error) { inserted++; return false, nil },
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
				Clock:  fixedClock(t0.Add(jobs.NoticeStrandedAfter + time.Second)),
			}
			for range 2 {
				if err := w.Work(ctx, &river.Job[jobs.NotifySweepArgs]{}); err != nil {
					t.Fatalf("Work = %v", err)
				}
			}
			for name, want := range map[string]struct {
				status holdfast.NoticeStatus
				reason holdfast.NoticeStatusReason
			}{
				"old":    {holdfast.NoticeCancelled, holdfast.NoticeReasonStranded},
				"recent": {holdfast.NoticeSending, ""},
			} {
				recs, err := st.NoticeRecords(ctx, holdfast.NoticeFilter{ID: ids[name]})
				if err != nil || len(recs) != 1 {
					t.Fatalf("NoticeRecords(%d) = %v, %v", ids[name], recs, err)
				}
				if recs[0].Status != want.status || recs[0].StatusReason != want.reason {
					t.Errorf("%s notice is %s (%q); want %s (%q)", name, recs[0].Status, recs[0].StatusReason, want.status, want.reason)
				}
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
				t.Errorf("%d warnings about a stranded notice; want 1:\n%s", n, logs.String())
			}
			if inserted != 0 {
				t.Errorf("sweep enqueued %d notify jobs; want none (a claimed notice is never mailed again)", inserted)
			}
		})
	}
}

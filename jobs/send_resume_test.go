package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/store/postgres"
	"github.com/holdfast/holdfast/store/sqlite"
)

// executor returns River's executor on st's database, and its schema.
func executor(t *testing.T, st holdfast.Store) (riverdriver.Executor, string) {
	t.Helper()
	switch st := st.(type) {
	case *sqlite.Store:
		return riversqlite.New(st.DB()).GetExecutor(), ""
	case *postgres.Store:
		return riverpgxv5.New(st.Pool()).GetExecutor(), st.Schema()
	}
	t.Fatalf("no River executor for %T", st)
	return nil, ""
}

// TestSendResumedAfterCrash covers a send whose attempt died with its
// process: a node took its job (River's job is "running", attempted by a
// client that is gone) and marked it "sending" a minute ago, then died
// without a word since. A runner started on the same database (a
// restart, or another node) resumes it within seconds, not after River's
// rescue (twice the send timeout): it looks in Sent first, sends it once,
// and the dead attempt's job is never run again. A send whose attempt is
// alive (its lease renewed just now) is left alone.
func TestSendResumedAfterCrash(t *testing.T) {
	t.Parallel()
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			for _, alive := range []bool{false, true} {
				name := map[bool]string{false: "dead attempt", true: "live attempt"}[alive]
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					conn := &sendConnector{sent: map[string]int{}}
					cfg := jobs.SendConfig{
						Monitor:    &sendMonitor{admit: health.Allow, state: holdfast.StateConnected},
						Connectors: map[holdfast.Provider]holdfast.Connector{holdfast.ProviderIMAP: conn},
						Session: func(_ context.Context, in *holdfast.Inbox) (*holdfast.Session, error) {
							return &holdfast.Session{Inbox: in, Password: "pw"}, nil
						},
						Timeout: time.Minute, // River would rescue the job after 2 minutes
						Lease:   time.Second,
					}
					st, _ := eng.setup(t)
					cfg.Store = st
					r := runnerOn(t, st, jobs.WithSends(cfg))
					ctx := t.Context()
					s := storeSend(t, st)
					if err := r.Enqueue(ctx, s); err != nil {
						t.Fatal(err)
					}

					// Another node took the job and marked the send
					// "sending". A dead one did so a minute ago and was
					// not heard of since; a live one renews its lease.
					exec, schema := executor(t, st)
					res, err := exec.JobGetAvailable(ctx, &riverdriver.JobGetAvailableParams{
						ClientID: "other-node", MaxAttemptedBy: 100, MaxToLock: 1, Queue: "default", Schema: schema,
					})
					if err != nil || len(res.Jobs) != 1 {
						t.Fatalf("JobGetAvailable = %v, %v; want the send's job", res, err)
					}
					if _, err := st.ChangeSend(ctx, s.ID, holdfast.SendChange{From: holdfast.SendScheduled, To: holdfast.SendSending, Attempt: true, At: time.Now().Add(-time.Minute)}); err != nil {
						t.Fatal(err)
					}
					if alive {
						renew := func() {
							if _, err := st.ChangeSend(context.WithoutCancel(ctx), s.ID, holdfast.SendChange{From: holdfast.SendSending, To: holdfast.SendSending, At: time.Now()}); err != nil {
								t.Error(err)
							}
						}
						renew()
						stop := make(chan struct{})
						done := make(chan struct{})
						go func() {
							defer close(done)
							for {
								select {
								case <-stop:
									return
								case <-time.After(200 * time.Millisecond):
									renew()
								}
							}
						}()
						t.Cleanup(func() { close(stop); <-done })
					}
					time.Sleep(1100 * time.Millisecond) // the job began more than a lease ago

					start := time.Now()
					if err := r.Start(ctx); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() {
						if err := r.Stop(context.WithoutCancel(ctx)); err != nil {
							t.Errorf("Stop = %v", err)
						}
					})
					deadline := start.Add(20 * time.Second)
					if alive {
						deadline = start.Add(3 * time.Second)
					}
					var got *holdfast.Send
					for time.Now().Before(deadline) {
						if got, err = st.SendByID(ctx, s.ID); err != nil {
							t.Fatal(err)
						}
						if got.State != holdfast.SendSending {
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
					n, finds := conn.count(s.MessageID)
					if alive {
						if got.State != holdfast.SendSending || n != 0 || finds != 0 {
							t.Errorf("a send whose attempt is alive is %s, submitted %d times, looked for %d times; want it left sending", got.State, n, finds)
						}
						return
					}
					t.Logf("resumed and sent %v after the restart", time.Since(start).Round(100*time.Millisecond))
					if got.State != holdfast.SendSent || n != 1 || finds != 1 {
						t.Errorf("%v after the restart the send is %s, submitted %d times, looked for %d times; want sent, 1 and 1", time.Since(start).Round(time.Second), got.State, n, finds)
					}
				})
			}
		})
	}
}

// runnerOn returns a runner on st's database, made with opts.
func runnerOn(t *testing.T, st holdfast.Store, opts ...jobs.Option) *jobs.Runner {
	t.Helper()
	var r *jobs.Runner
	var err error
	switch st := st.(type) {
	case *sqlite.Store:
		r, err = jobs.NewSQLite(st.DB(), st, testLogger(t), opts...)
	case *postgres.Store:
		r, err = jobs.NewPostgres(st.Pool(), st.Schema(), st, testLogger(t), opts...)
	default:
		t.Fatalf("no runner on %T", st)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// storeSend stores an IMAP inbox and a send from it due now.
func storeSend(t *testing.T, st holdfast.Store) *holdfast.Send {
	t.Helper()
	in := createInbox(t, st, holdfast.ProviderIMAP, "a@example.org")
	now := time.Now().UTC().Truncate(time.Microsecond)
	id := holdfast.NewID("snd", now)
	s, _, err := st.CreateSend(t.Context(), &holdfast.Send{
		ID: id, InboxID: in.ID, MessageID: "<" + id + "@example.org>", To: []string{"b@example.org"},
		Subject: "hi", Text: "hello", SendAt: now, State: holdfast.SendScheduled, CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSendWorkerRenewsLease: while an attempt submits a send, it renews
// the send's lease, so that send_sweep does not take it for dead.
func TestSendWorkerRenewsLease(t *testing.T) {
	t.Parallel()
	b := setupSend(t)
	b.worker.Lease = 300 * time.Millisecond
	s := b.newSend(t, time.Now())
	var marked, renewed time.Time
	b.conn.SendFunc = func() (bool, error) {
		marked = b.get(t, s.ID).UpdatedAt
		time.Sleep(450 * time.Millisecond)
		renewed = b.get(t, s.ID).UpdatedAt
		return true, nil
	}
	if err := b.work(t, s, 1); err != nil {
		t.Fatalf("Work = %v", err)
	}
	if !renewed.After(marked) {
		t.Errorf("during a submission of 450 ms with a lease of 300 ms the send's UpdatedAt stayed %v, want it renewed", marked)
	}
	if got := b.get(t, s.ID); got.State != holdfast.SendSent {
		t.Errorf("send is %s, want sent", got.State)
	}
}

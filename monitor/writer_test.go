package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
)

// pgError is a PostgreSQL error as pgconn.PgError reports it: by SQLSTATE.
type pgError struct{ code string }

func (e *pgError) Error() string    { return "ERROR: database error (SQLSTATE " + e.code + ")" }
func (e *pgError) SQLState() string { return e.code }

// faultyStore is a fake store in front of a real one: its writes can be
// made slow, fail (failFunc), and it counts writes that come after Close.
type faultyStore struct {
	monitor.Store

	mu sync.Mutex // guards everything below
	// failFunc, if set, returns the error of a write (kind names the
	// method) before it reaches the store; nil lets it through.
	failFunc func(kind string, arg any) error
	delay    time.Duration
	closed   bool
	// late counts the writes attempted after close: they would be lost.
	late int
}

func (s *faultyStore) setFail(f func(kind string, arg any) error) {
	s.mu.Lock()
	s.failFunc = f
	s.mu.Unlock()
}

func (s *faultyStore) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *faultyStore) lateWrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.late
}

// write runs one write through the fault plan.
func (s *faultyStore) write(ctx context.Context, kind string, arg any) error {
	s.mu.Lock()
	f, delay, closed := s.failFunc, s.delay, s.closed
	if closed {
		s.late++
	}
	s.mu.Unlock()
	if closed {
		return errors.New("sql: database is closed")
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f != nil {
		return f(kind, arg)
	}
	return nil
}

func (s *faultyStore) ChangeState(ctx context.Context, id string, c holdfast.StateChange) (*holdfast.Inbox, error) {
	if err := s.write(ctx, "transition", c); err != nil {
		return nil, err
	}
	return s.Store.ChangeState(ctx, id, c)
}

func (s *faultyStore) SaveIncident(ctx context.Context, in *holdfast.Incident, announce holdfast.Announce[*holdfast.Incident]) error {
	if err := s.write(ctx, "incident", in); err != nil {
		return err
	}
	return s.Store.SaveIncident(ctx, in, announce)
}

func (s *faultyStore) SaveHeldAction(ctx context.Context, h *holdfast.HeldAction) error {
	if err := s.write(ctx, "held", h); err != nil {
		return err
	}
	return s.Store.SaveHeldAction(ctx, h)
}

func (s *faultyStore) AppendNotice(ctx context.Context, n *holdfast.Notice) error {
	if err := s.write(ctx, "notice", n); err != nil {
		return err
	}
	return s.Store.AppendNotice(ctx, n)
}

func (s *faultyStore) SaveEngineState(ctx context.Context, at time.Time, state []byte) error {
	if err := s.write(ctx, "state", nil); err != nil {
		return err
	}
	return s.Store.SaveEngineState(ctx, at, state)
}

// openWith starts a Monitor on st.
func openWith(t *testing.T, b *testBundle, st monitor.Store, save time.Duration) *monitor.Monitor {
	t.Helper()
	m, err := monitor.New(context.Background(), monitor.Config{
		Store: st, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		TickEvery: time.Hour, SaveEvery: save,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// metricValue returns the value of the metric name with labels among what
// c collects, and whether it is there.
func metricValue(t *testing.T, c prometheus.Collector, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			n := 0
			for _, l := range mt.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
					n++
				}
			}
			if n != len(labels) {
				continue
			}
			switch {
			case mt.GetCounter() != nil:
				return mt.GetCounter().GetValue(), true
			case mt.GetGauge() != nil:
				return mt.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestPermanentWriteFailureDoesNotBlock (issue 12, point 2): an incident
// the store refuses for good (SQLSTATE 22021, a NUL byte) is logged,
// counted and skipped; the decisions after it are written.
func TestPermanentWriteFailureDoesNotBlock(t *testing.T) {
	t.Parallel()
	b, m := refusingNUL(t)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if _, err := m.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderMicrosoft, Note: "a\x00b"}); err != nil {
		t.Logf("Declare(note with NUL) = %v", err)
	}
	if _, err := m.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderGoogle, Note: "fine"}); err != nil {
		t.Fatalf("Declare after a refused incident = %v; want it stored", err)
	}
	open, err := b.store.Incidents(t.Context(), true, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Provider != holdfast.ProviderGoogle {
		t.Fatalf("stored open incidents = %+v; want the google one only", open)
	}
	got, ok := metricValue(t, m.Collector(), "holdfast_monitor_write_failures_total",
		map[string]string{"kind": "incident", "reason": "data_exception"})
	if !ok || got < 1 {
		t.Fatalf("holdfast_monitor_write_failures_total{kind=incident,reason=data_exception} = %v (present %v); want >= 1", got, ok)
	}
}

// revocation drives b's inboxes through a virtual hour: all healthy for a
// minute, then inbox 1 revoked for good.
func revocation(t *testing.T, b *testBundle, m *monitor.Monitor) {
	t.Helper()
	ok := &health.Outcome{Op: health.OpSync, OK: true}
	bad := &health.Outcome{Op: health.OpRefresh, Verdict: &revoked}
	for s := range 3600 {
		second(t, b, m, func(i int) *health.Outcome {
			if s%30 != i%30 {
				return nil
			}
			if i == 1 && s > 60 {
				return bad
			}
			return ok
		})
	}
}

// history is every inbox's event log, as (state, reason) pairs.
func history(t *testing.T, b *testBundle) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, id := range b.ids {
		evs, err := b.store.Events(t.Context(), id, holdfast.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			out[id] = append(out[id], string(e.NewState)+"/"+e.Reason)
		}
	}
	return out
}

// TestOutageBoundsQueue (issue 12, point 3): while the store is down, the
// engine's state saved every millisecond does not pile up: the writer's
// queue stays short; once the store is back every decision is written, the
// same as without an outage.
func TestOutageBoundsQueue(t *testing.T) {
	t.Parallel()
	// The same run without an outage is the reference.
	ref := setup(t, 12, 3)
	m := openWith(t, ref, ref.store, time.Hour)
	revocation(t, ref, m)
	if err := m.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := history(t, ref)

	b := setup(t, 12, 3)
	fs := &faultyStore{Store: b.store}
	down := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	fs.setFail(func(string, any) error { return down })
	m = openWith(t, b, fs, time.Millisecond)
	revocation(t, b, m)
	maxQueue := 0.0
	for range 40 {
		time.Sleep(10 * time.Millisecond)
		n, ok := metricValue(t, m.Collector(), "holdfast_monitor_write_queue", nil)
		if !ok {
			t.Fatal("no holdfast_monitor_write_queue metric")
		}
		maxQueue = max(maxQueue, n)
	}
	st, _ := metricValue(t, m.Collector(), "holdfast_monitor_decisions_coalesced_total", map[string]string{"kind": "engine_state"})
	t.Logf("queue at most %v decisions during the outage; %v engine states coalesced", maxQueue, st)
	if maxQueue > 100 {
		t.Errorf("writer queue reached %v decisions during the outage; want at most 100", maxQueue)
	}
	fs.setFail(nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := m.Sync(ctx); err != nil {
		t.Fatalf("Sync after the outage = %v", err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	got := history(t, b)
	for i, id := range b.ids {
		if !slices.Equal(got[id], want[ref.ids[i]]) {
			t.Errorf("inbox %d history after the outage = %v; want %v", i, got[id], want[ref.ids[i]])
		}
		ns, err := b.store.Notices(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if wantN := map[bool]int{true: 1, false: 0}[i == 1]; len(ns) != wantN {
			t.Errorf("inbox %d has %d notices; want %d", i, len(ns), wantN)
		}
	}
}

// TestStopWritesQueue (issue 12, point 4): Stop writes every queued
// decision and the final state through a slow store before it returns;
// when its budget ends first, the writer stops with it, and nothing is
// written to the store once it is closed.
func TestStopWritesQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		budget time.Duration
		// all says whether every decision fits in the budget.
		all bool
	}{
		{name: "in budget", budget: 20 * time.Second, all: true},
		{name: "budget too short", budget: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 30, 3)
			fs := &faultyStore{Store: b.store, delay: 20 * time.Millisecond}
			m := openWith(t, b, fs, time.Hour)
			ok := &health.Outcome{Op: health.OpSync, OK: true}
			for _, id := range b.ids {
				if _, err := m.Observe(id, *ok); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), tt.budget)
			defer cancel()
			err := m.Stop(ctx)
			fs.close()
			if tt.all && err != nil {
				t.Fatalf("Stop = %v", err)
			}
			time.Sleep(100 * time.Millisecond) // a writer left running would write now
			if n := fs.lateWrites(); n != 0 {
				t.Errorf("%d writes reached the store after Stop returned and it closed", n)
			}
			if !tt.all {
				return
			}
			if got := countStates(t, b.store)[holdfast.StateConnected]; got != 30 {
				t.Errorf("%d inboxes connected in the store after Stop; want 30", got)
			}
			if _, _, err := b.store.EngineState(t.Context()); err != nil {
				t.Errorf("EngineState after Stop = %v; want the final state saved", err)
			}
		})
	}
}

// TestOutageCoalescesAtLimit (issue 12, point 3): at its limit the queue
// keeps each inbox's latest state change, incident and held action; once
// the store is back, it holds the engine's view of every inbox.
func TestOutageCoalescesAtLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, 12, 3)
	fs := &faultyStore{Store: b.store}
	fs.setFail(func(string, any) error { return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused") })
	m, err := monitor.New(context.Background(), monitor.Config{
		Store: fs, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		TickEvery: time.Hour, SaveEvery: time.Millisecond, QueueLimit: 8, RetryEvery: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	maxQueue := 0.0
	// Every inbox flaps: permanent-looking errors, then success, for
	// hours, far more state changes than the limit.
	ok := &health.Outcome{Op: health.OpSync, OK: true}
	bad := &health.Outcome{Op: health.OpRefresh, Verdict: &revoked}
	for s := range 4 * 3600 {
		second(t, b, m, func(i int) *health.Outcome {
			if s%30 != i%30 {
				return nil
			}
			if (s/900)%2 == 1 && i%2 == 0 {
				return bad
			}
			return ok
		})
		if s%600 == 0 {
			n, _ := metricValue(t, m.Collector(), "holdfast_monitor_write_queue", nil)
			maxQueue = max(maxQueue, n)
		}
	}
	fs.setFail(nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := m.Sync(ctx); err != nil {
		t.Fatalf("Sync after the outage = %v", err)
	}
	// What may stay queued is one state change and one grant per inbox,
	// one state, two saves per incident (open, resolved), each held action
	// and notice; the queue is compacted when it doubles.
	incidents, err := b.store.Incidents(t.Context(), false, 1000)
	if err != nil {
		t.Fatal(err)
	}
	held, err := b.store.FindHeldActions(t.Context(), holdfast.HeldActionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	records := 2*len(b.ids) + 1 + 2*len(incidents) + len(held)
	for _, id := range b.ids {
		ns, err := b.store.Notices(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		records += len(ns)
	}
	made, _ := metricValue(t, m.Collector(), "holdfast_monitor_decisions_coalesced_total", map[string]string{"kind": "transition"})
	t.Logf("queue at most %v decisions; %d records; %v state changes coalesced", maxQueue, records, made)
	if maxQueue > float64(2*records+1) {
		t.Errorf("writer queue reached %v decisions; want at most %d, twice the records it may hold", maxQueue, 2*records+1)
	}
	for i, id := range b.ids {
		in, err := b.store.Inbox(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.State(id)
		if err != nil {
			t.Fatal(err)
		}
		if in.State != want {
			t.Errorf("inbox %d stored %s after the outage; the engine says %s", i, in.State, want)
		}
	}
	if made == 0 {
		t.Error("no state change coalesced; want the queue to have reached its limit")
	}
}

// refusingNUL opens a monitor on a store that refuses, as PostgreSQL does
// (SQLSTATE 22021), every incident whose evidence holds a NUL byte.
func refusingNUL(t *testing.T) (*testBundle, *monitor.Monitor) {
	t.Helper()
	b := setup(t, 4, 2)
	fs := &faultyStore{Store: b.store}
	fs.setFail(func(kind string, arg any) error {
		if in, ok := arg.(*holdfast.Incident); ok && strings.Contains(in.Evidence, "\x00") {
			return fmt.Errorf("save incident %d: %w", in.ID, &pgError{code: "22021"})
		}
		return nil
	})
	m := openWith(t, b, fs, time.Hour)
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	return b, m
}

// TestRefusedDeclarationIsNotAcknowledged: a declaration the store refuses
// for good is answered with ErrRefused, not as a success, and the next one
// is answered as stored.
func TestRefusedDeclarationIsNotAcknowledged(t *testing.T) {
	t.Parallel()
	_, m := refusingNUL(t)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if in, err := m.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderMicrosoft, Note: "a\x00b"}); !errors.Is(err, monitor.ErrRefused) {
		t.Fatalf("Declare(note the store refuses) = %+v, %v; want ErrRefused", in, err)
	}
	if _, err := m.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderGoogle, Note: "fine"}); err != nil {
		t.Fatalf("Declare after a refused incident = %v; want it stored", err)
	}
}

package monitor_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
)

// idOutageStore is a faultyStore whose ReserveIDs fails while down.
type idOutageStore struct {
	*faultyStore
	down atomic.Bool
}

func (s *idOutageStore) ReserveIDs(ctx context.Context, n int) (int64, error) {
	if s.down.Load() {
		return 0, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	return s.faultyStore.Store.ReserveIDs(ctx, n)
}

// within runs f and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s has not returned after %v", what, d)
	}
}

// TestIDsRunOutDuringOutage (issue 12, review point 1): during a database
// outage, once the reserved incident and held action IDs are used up, the
// engine goes on deciding without blocking: Declare fails at once with
// health.ErrNoID, Observe, Admit and Tick answer, and Stop ends within its
// budget. Once the store is back, IDs are reserved again.
func TestIDsRunOutDuringOutage(t *testing.T) {
	t.Parallel()
	down := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	tests := []struct {
		name string
		then func(t *testing.T, b *testBundle, st *idOutageStore, m *monitor.Monitor)
	}{{
		name: "Stop ends within its budget",
		then: func(t *testing.T, _ *testBundle, _ *idOutageStore, m *monitor.Monitor) {
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			within(t, 3*time.Second, "Stop with a 500 ms budget", func() {
				if err := m.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Stop during the outage = %v; want its context's deadline (decisions left unwritten)", err)
				}
			})
		},
	}, {
		name: "IDs are reserved again once the store is back",
		then: func(t *testing.T, b *testBundle, st *idOutageStore, m *monitor.Monitor) {
			st.down.Store(false)
			st.setFail(nil)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			for {
				start := b.clock.Now().Add(-time.Hour)
				in, err := m.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderGoogle, Start: start, End: start.Add(time.Minute)})
				if err == nil {
					if stored, err := b.store.IncidentByID(ctx, in.ID); err != nil || stored.Provider != holdfast.ProviderGoogle {
						t.Errorf("incident %d once the store is back: %+v, %v; want it stored", in.ID, stored, err)
					}
					break
				}
				if !errors.Is(err, health.ErrNoID) {
					t.Fatalf("Declare once the store is back = %v; want it stored", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := m.Stop(ctx); err != nil {
				t.Errorf("Stop = %v", err)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 2, 1)
			st := &idOutageStore{faultyStore: &faultyStore{Store: b.store}}
			m, err := monitor.New(context.Background(), monitor.Config{
				Store: st, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
				TickEvery: time.Hour, SaveEvery: time.Hour, RetryEvery: 5 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = m.Stop(ctx)
			})

			st.down.Store(true)
			st.setFail(func(string, any) error { return down })
			// Each retroactive declaration takes an ID; its caller gives
			// up waiting for the store after a millisecond.
			declared := 0
			within(t, 10*time.Second, "declaring until the IDs run out", func() {
				for ; declared < 250; declared++ {
					ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
					start := b.clock.Now().Add(-time.Duration(declared+2) * time.Hour)
					_, err := m.Declare(ctx, monitor.Declaration{Provider: holdfast.ProviderMicrosoft, Start: start, End: start.Add(time.Minute)})
					cancel()
					if errors.Is(err, health.ErrNoID) {
						return
					}
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Declare %d during the outage = %v; want its context's deadline, or ErrNoID", declared, err)
						return
					}
				}
				t.Errorf("%d declarations during the outage all got an ID; want them to run out", declared)
			})
			if declared < 100 {
				t.Errorf("IDs ran out after %d declarations; want the first block of 100 used", declared)
			}
			within(t, 2*time.Second, "the engine with no ID at hand", func() {
				b.clock.advance(time.Second)
				m.Tick()
				if _, err := m.Observe(b.ids[0], health.Outcome{Op: health.OpRefresh, Verdict: &revoked}); err != nil {
					t.Errorf("Observe = %v", err)
				}
				if _, err := m.Admit(b.ids[1], health.OpSync); err != nil {
					t.Errorf("Admit = %v", err)
				}
			})
			tt.then(t, b, st, m)
		})
	}
}

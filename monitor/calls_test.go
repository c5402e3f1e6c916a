package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
)

// TestCallAnswersForItsOwnDecisions (issue 12, point 2): an operator's
// call answers ErrRefused for its own decisions the store refused, and
// only for those: not for an engine decision refused before it, nor for
// the refused decision of another call waiting at the same time (each
// call's barrier is queued with its decisions, under one lock).
func TestCallAnswersForItsOwnDecisions(t *testing.T) {
	t.Parallel()
	declare := func(m *monitor.Monitor, p holdfast.Provider, note string, ago int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC).Add(-time.Duration(ago+2) * time.Hour)
		_, err := m.Declare(ctx, monitor.Declaration{Provider: p, Start: start, End: start.Add(time.Minute), Note: note})
		return err
	}
	tests := []struct {
		name string
		run  func(t *testing.T, b *testBundle, m *monitor.Monitor)
	}{{
		name: "an engine decision refused before the call is not the call's",
		run: func(t *testing.T, b *testBundle, m *monitor.Monitor) {
			// The first success of a connecting inbox records its move to
			// connected; the store refuses it (see refusingNUL).
			if _, err := m.Observe(b.ids[0], health.Outcome{Op: health.OpSync, OK: true}); err != nil {
				t.Fatal(err)
			}
			if err := declare(m, holdfast.ProviderGoogle, "fine", 0); err != nil {
				t.Errorf("Declare after a refused move of an inbox = %v; want nil", err)
			}
			if err := declare(m, holdfast.ProviderGoogle, "a\x00b", 1); !errors.Is(err, monitor.ErrRefused) {
				t.Errorf("Declare(note the store refuses) = %v; want ErrRefused", err)
			}
		},
	}, {
		name: "two calls at once each answer for their own decision",
		run: func(t *testing.T, _ *testBundle, m *monitor.Monitor) {
			var refusedOK, storedFailed int
			for i := range 300 {
				var wg sync.WaitGroup
				var errRefused, errFine error
				wg.Go(func() { errRefused = declare(m, holdfast.ProviderMicrosoft, "a\x00b", 2*i) })
				wg.Go(func() { errFine = declare(m, holdfast.ProviderGoogle, "fine", 2*i+1) })
				wg.Wait()
				if !errors.Is(errRefused, monitor.ErrRefused) {
					refusedOK++
				}
				if errFine != nil {
					storedFailed++
				}
			}
			if refusedOK > 0 || storedFailed > 0 {
				t.Errorf("of 300 pairs: the refused declaration answered other than ErrRefused %d times, the stored one answered an error %d times; want 0 and 0", refusedOK, storedFailed)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 4, 2)
			fs := &faultyStore{Store: b.store}
			fs.setFail(func(kind string, arg any) error {
				if in, ok := arg.(*holdfast.Incident); ok && strings.Contains(in.Evidence, "\x00") {
					return fmt.Errorf("save incident %d: %w", in.ID, &pgError{code: "22021"})
				}
				if c, ok := arg.(holdfast.StateChange); ok && c.Reason == "verified" {
					return fmt.Errorf("change state: %w", &pgError{code: "22021"})
				}
				return nil
			})
			m := openWith(t, b, fs, time.Hour)
			t.Cleanup(func() { _ = m.Stop(context.Background()) })
			tt.run(t, b, m)
		})
	}
}

package health

import (
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

// TestFlappingOutageIsOneIncident: the provider fails for two thirds of
// every 4 minutes for 40 minutes. The engine keeps one incident through
// the whole episode (it settles when the probes succeed, and the failures
// that return continue it), resolves it Settle after the last failure, and
// leaves no inbox paused, suspect or held.
func TestFlappingOutageIsOneIncident(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	const start, end, period = time.Hour, time.Hour + 40*time.Minute, 240
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, start, end) && (sec-int64(start/time.Second))%period < period*2/3 {
			return revoked
		}
		return nil
	}
	w.runTo(end + 30*time.Minute)
	inc := w.providerIncidents()
	if len(inc) != 1 {
		for _, in := range inc {
			t.Logf("incident %d: %v", in.ID, in.Timeline)
		}
		t.Fatalf("At(2h10m): provider incidents = %d, want 1", len(inc))
	}
	if inc[0].Open() {
		t.Errorf("At(2h10m): incident still open: %v", inc[0].Timeline)
	}
	if got := w.count(holdfast.StateConnected); got != 3000 {
		t.Errorf("At(2h10m): connected = %d, want 3000 (%v)", got, w.e.Counts(holdfast.ProviderMicrosoft))
	}
	if n := w.acted(0, 3*time.Hour); n != 0 {
		t.Errorf("Between(0, 2h10m): %d inboxes asked for action, want 0", n)
	}
}

// TestIncidentEscalates: an incident of each kind that stays open past its
// kind's bound is escalated once (EscalatedAt set, reported to the sink),
// and one that closes before is not.
func TestIncidentEscalates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		outage  time.Duration
		declare bool
		want    time.Duration // escalation after opening; 0 for none
	}{
		{"outage longer than the bound", 3 * time.Hour, false, DefaultConfig().EscalateOutage},
		{"short outage", 30 * time.Minute, false, 0},
		{"declaration over a long outage", 5 * time.Hour, true, DefaultConfig().EscalateDeclared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, DefaultConfig(), 1000, 50)
			w.outcome = func(i int32, sec int64) *classify.Verdict {
				if between(sec, time.Hour, time.Hour+tt.outage) {
					return revoked
				}
				return nil
			}
			if tt.declare {
				w.runTo(59 * time.Minute)
				if _, err := w.e.Declare(Declaration{Provider: holdfast.ProviderMicrosoft, Tenant: -1, Note: "test"}); err != nil {
					t.Fatal(err)
				}
			}
			w.runTo(6 * time.Hour)
			inc := w.providerIncidents()
			if len(inc) != 1 {
				t.Fatalf("incidents = %d, want 1", len(inc))
			}
			in := inc[0]
			if tt.want == 0 {
				if !in.EscalatedAt.IsZero() {
					t.Errorf("EscalatedAt = %v, want none", in.EscalatedAt)
				}
				return
			}
			got := in.EscalatedAt.Sub(in.OpenedAt)
			if in.EscalatedAt.IsZero() || got < tt.want || got > tt.want+time.Minute {
				t.Errorf("escalated %v after opening, want %v (within a minute)", got, tt.want)
			}
			if rec := w.rec.incidents[in.ID]; !rec.EscalatedAt.Equal(in.EscalatedAt) {
				t.Errorf("sink saw EscalatedAt %v, want %v", rec.EscalatedAt, in.EscalatedAt)
			}
		})
	}
}

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

// TestEscalateEveryKind: the generic rule, kind by kind: an open incident
// escalates once at its kind's bound (Config.EscalateAfter), not before,
// not twice, and a resolved one never.
func TestEscalateEveryKind(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	for _, kind := range holdfast.IncidentKinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			bound := cfg.EscalateAfter(kind)
			if bound <= 0 {
				t.Fatalf("EscalateAfter(%s) = %v, want a bound", kind, bound)
			}
			rec := &recorder{incidents: map[int64]Incident{}, probesAt: map[time.Time]int{}}
			opened := time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)
			e := New(cfg, &fakeClock{t: opened}, nil, rec)
			open := &Incident{ID: 1, Kind: kind, Provider: holdfast.ProviderGoogle, Tenant: -1, OpenedAt: opened}
			done := &Incident{ID: 2, Kind: kind, Provider: holdfast.ProviderGoogle, Tenant: -1, OpenedAt: opened, ResolvedAt: opened.Add(time.Minute)}
			e.c.Incidents = append(e.c.Incidents, open, done)
			at := opened.Unix() + int64(bound/time.Second)
			e.escalate(at - 1)
			if !open.EscalatedAt.IsZero() || len(rec.incidents) != 0 {
				t.Fatalf("escalated before its bound: %v", open.EscalatedAt)
			}
			e.escalate(at)
			e.escalate(at + 3600)
			if got := open.EscalatedAt.Unix(); got != at {
				t.Errorf("EscalatedAt = %v, want %v after opening", open.EscalatedAt, bound)
			}
			if _, ok := rec.incidents[1]; !ok || len(rec.incidents) != 1 {
				t.Errorf("sink saw %d incidents, want incident 1 once", len(rec.incidents))
			}
			if !done.EscalatedAt.IsZero() {
				t.Errorf("a resolved incident escalated at %v", done.EscalatedAt)
			}
			if n := len(open.Timeline); n != 1 {
				t.Errorf("timeline has %d entries, want the escalation once", n)
			}
		})
	}
}

// TestFailuresReturnTakeBackQueued: failures return while an incident
// settles, before its recovery granted every paused inbox. Those not
// granted yet are its members again, to be probed and queued again when
// it settles again. (They stayed queued behind the failing incident,
// neither probed nor resumed: with no member left to probe, the incident
// then settled only once the provider's failing share fell under the
// elevated floor, which background errors can keep it above for ever.)
func TestFailuresReturnTakeBackQueued(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, time.Hour, time.Hour+20*time.Minute) {
			return revoked
		}
		return nil
	}
	var in *Incident
	for in == nil && w.sec < int64(2*time.Hour/time.Second) {
		w.runTo(time.Duration(w.sec+1) * time.Second)
		for _, x := range w.e.c.Incidents {
			if x.Open() && x.settleAt != 0 {
				in = x
			}
		}
	}
	if in == nil {
		t.Fatal("no incident settling by 2h")
	}
	e := w.e
	stranded := func() (n, paused int) {
		for i := range e.c.H {
			h := &e.c.H[i]
			if h.St != sPaused {
				continue
			}
			paused++
			if h.Flags&(fGranted|fMember) == 0 {
				n++
			}
		}
		return n, paused
	}
	if _, paused := stranded(); paused == 0 {
		t.Fatal("no paused inbox left when the incident began to settle: nothing to test")
	}
	e.settleTick(in, e.now(), false) // the failures return
	if n, paused := stranded(); n != 0 {
		t.Errorf("%d of %d paused inboxes neither granted nor members of the incident after the failures returned", n, paused)
	}
}

package health

import (
	"errors"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

// TestRestoreFromRecord: the engine takes what its owner's durable record
// shows over its snapshot, and issues IDs from the injected source.
func TestRestoreFromRecord(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*Engine, *recorder) {
		t.Helper()
		clk := &fakeClock{t: time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)}
		rec := &recorder{incidents: map[int64]Incident{}, probesAt: map[time.Time]int{}}
		e := New(DefaultConfig(), clk, nil, rec)
		ten, err := e.AddTenant(holdfast.ProviderMicrosoft)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := e.AddInbox(ten); err != nil {
				t.Fatal(err)
			}
		}
		next := int64(500)
		e.SetIDFunc(func() (int64, bool) { next++; return next, true })
		return e, rec
	}
	opened := time.Date(2025, 3, 1, 19, 0, 0, 0, time.UTC)
	stored := Incident{ID: 42, Kind: holdfast.IncidentDeclared, Provider: holdfast.ProviderMicrosoft, Tenant: -1, OpenedAt: opened}
	tests := []struct {
		name string
		run  func(t *testing.T, e *Engine, rec *recorder)
	}{
		{"AdoptedIncidentPausesAndResolves", func(t *testing.T, e *Engine, rec *recorder) {
			if err := e.RestoreIncident(stored, []int32{1}); err != nil {
				t.Fatalf("RestoreIncident = %v", err)
			}
			if got := e.State(1); got != holdfast.StatePaused {
				t.Errorf("State(1) = %s, want paused", got)
			}
			if got := e.Counts(holdfast.ProviderMicrosoft)[holdfast.StatePaused]; got != 1 {
				t.Errorf("paused count = %d, want 1", got)
			}
			if len(rec.trans)+len(rec.incidents) != 0 {
				t.Errorf("restore reported %d transitions and %d incidents, want none", len(rec.trans), len(rec.incidents))
			}
			if err := e.RestoreIncident(Incident{ID: 43, Kind: holdfast.IncidentDeclared, Provider: holdfast.ProviderMicrosoft, Tenant: -1, OpenedAt: opened}, nil); !errors.Is(err, holdfast.ErrConflict) {
				t.Errorf("RestoreIncident over a covered scope = %v, want ErrConflict", err)
			}
			if err := e.Resolve(42); err != nil {
				t.Errorf("Resolve(42) = %v", err)
			}
		}},
		{"AdoptedEscalationIsNotRepeated", func(t *testing.T, e *Engine, rec *recorder) {
			esc := stored
			esc.EscalatedAt = opened.Add(4 * time.Hour)
			if err := e.RestoreIncident(esc, nil); err != nil {
				t.Fatalf("RestoreIncident = %v", err)
			}
			e.escalate(opened.Add(5 * time.Hour).Unix())
			got, err := e.Incident(42)
			if err != nil {
				t.Fatal(err)
			}
			if !got.EscalatedAt.Equal(esc.EscalatedAt) || len(rec.incidents) != 0 {
				t.Errorf("EscalatedAt = %v with %d incidents reported, want %v and none", got.EscalatedAt, len(rec.incidents), esc.EscalatedAt)
			}
		}},
		{"ResolvedInRecord", func(t *testing.T, e *Engine, rec *recorder) {
			in, err := e.Declare(Declaration{Provider: holdfast.ProviderMicrosoft, Tenant: -1})
			if err != nil {
				t.Fatal(err)
			}
			if in.ID != 501 {
				t.Errorf("declared incident ID %d, want 501 from the ID source", in.ID)
			}
			done := in
			done.ResolvedAt = opened.Add(2 * time.Hour)
			if err := e.RestoreIncident(done, nil); err != nil {
				t.Fatal(err)
			}
			if err := e.Resolve(in.ID); !errors.Is(err, holdfast.ErrConflict) {
				t.Errorf("Resolve(%d) = %v, want ErrConflict", in.ID, err)
			}
			if _, err := e.Declare(Declaration{Provider: holdfast.ProviderMicrosoft, Tenant: -1}); err != nil {
				t.Errorf("Declare after the restored resolution = %v", err)
			}
		}},
		{"HeldActionAdoptedThenDone", func(t *testing.T, e *Engine, rec *recorder) {
			if err := e.RestoreState(2, StoredState{State: holdfast.StateSuspect}); err != nil {
				t.Fatal(err)
			}
			h := HeldAction{ID: 7, Inbox: 2, Provider: holdfast.ProviderMicrosoft, To: holdfast.StateNeedsReconnect, HeldAt: opened, Why: holdfast.HeldForBudget}
			if err := e.RestoreHeld(h); err != nil {
				t.Fatal(err)
			}
			if got := e.HeldActions(); len(got) != 1 || got[0].ID != 7 {
				t.Fatalf("HeldActions = %+v, want 7", got)
			}
			h.Done = true
			if err := e.RestoreHeld(h); err != nil {
				t.Fatal(err)
			}
			if got := e.HeldActions(); len(got) != 0 {
				t.Errorf("HeldActions after the record says done = %+v, want none", got)
			}
			if err := e.ReleaseHeld(7); !errors.Is(err, holdfast.ErrNotFound) {
				t.Errorf("ReleaseHeld(7) = %v, want ErrNotFound", err)
			}
		}},
		{"NoticeUnlessTold", func(t *testing.T, e *Engine, rec *recorder) {
			clk := e.clock.(*fakeClock)
			e.Tick()
			if err := e.RestoreState(0, StoredState{State: holdfast.StateNeedsReconnect, Episode: 4}); err != nil {
				t.Fatal(err)
			}
			if err := e.RestoreState(1, StoredState{State: holdfast.StateNeedsAdmin, Episode: 2, Told: true}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				clk.t = clk.t.Add(e.cfg.NoticeGrace)
				e.Tick()
			}
			if len(rec.notices) != 1 || rec.notices[0].Inbox != 0 || rec.notices[0].Episode != 5 {
				t.Errorf("notices = %+v, want one for inbox 0, episode 5", rec.notices)
			}
		}},
		{"StateFromRecord", func(t *testing.T, e *Engine, rec *recorder) {
			for i, st := range []holdfast.State{holdfast.StateNeedsReconnect, holdfast.StateConnecting, holdfast.StatePaused} {
				if err := e.RestoreState(int32(i), StoredState{State: st}); err != nil {
					t.Fatal(err)
				}
			}
			want := map[holdfast.State]int64{holdfast.StateNeedsReconnect: 1, holdfast.StateConnected: 1, holdfast.StatePaused: 1}
			for st, n := range want {
				if got := e.Counts(holdfast.ProviderMicrosoft)[st]; got != n {
					t.Errorf("count of %s = %d, want %d", st, got, n)
				}
			}
			if a := e.Admit(0, OpSend); a != Fail {
				t.Errorf("Admit(send) for needs_reconnect = %v, want Fail", a)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, rec := setup(t)
			tt.run(t, e, rec)
		})
	}
}

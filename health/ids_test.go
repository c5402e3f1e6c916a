package health

import (
	"errors"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

// TestNoIDAtHandFailsClosed (issue 12, review point 1): while the ID
// source has no ID at hand (its owner cannot reserve more, the store being
// down), the engine does not block and puts off what needs an ID, failing
// closed: Declare fails with ErrNoID, a destructive action that must be
// held is neither held nor taken, and none is taken while an incident may
// have gone unopened; the inbox stays suspect and is tried again once IDs
// are at hand.
func TestNoIDAtHandFailsClosed(t *testing.T) {
	t.Parallel()
	type bundle struct {
		e     *Engine
		clk   *fakeClock
		rec   *recorder
		avail *bool
	}
	setup := func(t *testing.T, cfg Config) bundle {
		t.Helper()
		clk := &fakeClock{t: time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)}
		rec := &recorder{incidents: map[int64]Incident{}, probesAt: map[time.Time]int{}}
		e := New(cfg, clk, nil, rec)
		ten, err := e.AddTenant(holdfast.ProviderMicrosoft)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := e.AddInbox(ten); err != nil {
				t.Fatal(err)
			}
		}
		avail, next := new(bool), int64(500)
		e.SetIDFunc(func() (int64, bool) {
			if !*avail {
				return 0, false
			}
			next++
			return next, true
		})
		return bundle{e: e, clk: clk, rec: rec, avail: avail}
	}
	// revoke has inbox 0 fail permanent-class, one ConfirmStep apart, n
	// times; it returns the engine's state of it.
	revoke := func(b bundle, n int) holdfast.State {
		for range n {
			b.clk.t = b.clk.t.Add(b.e.cfg.ConfirmStep)
			b.e.Tick()
			b.e.Observe(0, Outcome{Op: OpRefresh, Verdict: revoked})
		}
		return b.e.State(0)
	}
	noBudget := blind()
	noBudget.ProviderBudgetPerHour, noBudget.ProviderBudgetShare = 0, 0
	confirm := blind().ConfirmCount + 2

	tests := []struct {
		name string
		cfg  Config
		run  func(t *testing.T, b bundle)
	}{{
		name: "Declare fails with ErrNoID and declares nothing",
		cfg:  blind(),
		run: func(t *testing.T, b bundle) {
			start := b.clk.t.Add(-2 * time.Hour)
			for _, d := range []Declaration{
				{Provider: holdfast.ProviderMicrosoft, Tenant: -1},
				{Provider: holdfast.ProviderMicrosoft, Tenant: -1, Start: start, End: start.Add(time.Minute)},
			} {
				if _, err := b.e.Declare(d); !errors.Is(err, ErrNoID) {
					t.Errorf("Declare(%+v) with no ID at hand = %v; want ErrNoID", d, err)
				}
			}
			if len(b.rec.incidents) != 0 || len(b.e.Incidents()) != 0 {
				t.Fatalf("incidents after failed declarations: reported %v, engine %v; want none", b.rec.incidents, b.e.Incidents())
			}
			*b.avail = true
			if in, err := b.e.Declare(Declaration{Provider: holdfast.ProviderMicrosoft, Tenant: -1}); err != nil || in.ID != 501 {
				t.Errorf("Declare once IDs are at hand = %d, %v; want incident 501", in.ID, err)
			}
		},
	}, {
		name: "an action to hold is neither held nor taken, until an ID is at hand",
		cfg:  noBudget,
		run: func(t *testing.T, b bundle) {
			if st := revoke(b, confirm); st != holdfast.StateSuspect || len(b.rec.held) != 0 {
				t.Fatalf("confirmed revocation with no ID at hand: state %s, held %+v; want suspect, none held", st, b.rec.held)
			}
			*b.avail = true
			if st := revoke(b, 1); st != holdfast.StateSuspect || len(b.rec.held) != 1 || b.rec.held[0].ID != 501 {
				t.Errorf("next failure once IDs are at hand: state %s, held %+v; want suspect, held action 501", st, b.rec.held)
			}
		},
	}, {
		name: "no action is taken while an incident could not be opened",
		cfg:  blind(),
		run: func(t *testing.T, b bundle) {
			if _, err := b.e.Declare(Declaration{Provider: holdfast.ProviderMicrosoft, Tenant: -1}); !errors.Is(err, ErrNoID) {
				t.Fatalf("Declare with no ID at hand = %v; want ErrNoID", err)
			}
			if st := revoke(b, confirm); st != holdfast.StateSuspect {
				t.Fatalf("confirmed revocation after an incident went unopened: state %s; want suspect", st)
			}
			*b.avail = true
			if st := revoke(b, 1); st != holdfast.StateNeedsReconnect {
				t.Errorf("next failure once IDs are at hand: state %s; want needs_reconnect", st)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, setup(t, tt.cfg))
		})
	}
}

package monitor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

// TestRebuildReadsAllPending (issue 12, review point 4): at start, every
// open incident and every pending held action in the store is rebuilt,
// however many: more than one page of the store (1,000) of each, the
// newest included, can be resolved and released after a restart.
func TestRebuildReadsAllPending(t *testing.T) {
	t.Parallel()
	const n = 1003 // one page of the store and a few more
	b := setup(t, n, n)
	ctx := t.Context()
	first, err := b.store.ReserveIDs(ctx, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	// Inbox i, alone in tenant i and suspect, has a held action under its
	// tenant's open incident.
	for i, id := range b.ids {
		tenant := fmt.Sprintf("t%d.example", i)
		if _, err := b.store.ChangeState(ctx, id, holdfast.StateChange{From: holdfast.StateConnecting, To: holdfast.StateSuspect,
			Reason: "token_revoked", Cause: holdfast.CauseHealth, At: b.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		in := &holdfast.Incident{ID: first + int64(i), Kind: holdfast.IncidentTenantOutage, Provider: holdfast.ProviderMicrosoft,
			Tenant: tenant, OpenedAt: b.clock.Now(), Evidence: "seeded"}
		if err := b.store.SaveIncident(ctx, in, nil); err != nil {
			t.Fatal(err)
		}
		h := &holdfast.HeldAction{ID: first + n + int64(i), InboxID: id, Provider: holdfast.ProviderMicrosoft, Tenant: tenant,
			To: holdfast.StateNeedsReconnect, Reason: "token_revoked", Why: holdfast.HeldForIncident, HeldAt: b.clock.Now()}
		if err := b.store.SaveHeldAction(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	m := b.open(t, nil)
	t.Cleanup(func() { _ = m.Stop(context.Background()) })

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tests := []struct {
		name string
		call func() error
	}{
		{"Resolve the oldest open incident", func() error { _, err := m.Resolve(ctx, first); return err }},
		{"Resolve the newest open incident", func() error { _, err := m.Resolve(ctx, first+n-1); return err }},
		{"Release the oldest pending held action", func() error { return m.Release(ctx, first+n) }},
		{"Release the newest pending held action", func() error { return m.Release(ctx, first+2*n-1) }},
	}
	for _, tt := range tests {
		if err := tt.call(); err != nil {
			t.Errorf("%s = %v; want it rebuilt at start", tt.name, err)
		}
	}
}

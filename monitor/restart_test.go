package monitor_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/monitor"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
)

// engines opens a fresh, migrated store of each engine.
var engines = []struct {
	name string
	open func(t *testing.T) monitor.Store
}{
	{"sqlite", func(t *testing.T) monitor.Store { return sqlitetest.Open(t) }},
	{"postgres", func(t *testing.T) monitor.Store { return pgtest.NewStore(t) }},
}

// seed stores one connected inbox of each provider given.
func seed(t *testing.T, st monitor.Store, now time.Time, providers ...holdfast.Provider) {
	t.Helper()
	for i, p := range providers {
		in := &holdfast.Inbox{
			ID: holdfast.NewID("inb", now.Add(time.Duration(i)*time.Millisecond)), Provider: p,
			Email: fmt.Sprintf("u%d@t%d.example", i, i), Tenant: fmt.Sprintf("t%d.example", i),
			State: holdfast.StateConnected, Reason: "created", Since: now, CreatedAt: now, UpdatedAt: now,
		}
		if err := st.CreateInbox(t.Context(), in, holdfast.Event{InboxID: in.ID, At: now, NewState: in.State, Reason: "created", Cause: holdfast.CauseAPI}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreIsTruthAfterRestart abandons a Monitor after a declaration,
// without Stop (a kill -9: its last saved state predates the incident),
// and starts another on the same store: the incident the store lists open
// is the new engine's to resolve, and a new incident never takes its ID.
func TestStoreIsTruthAfterRestart(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			st := e.open(t)
			c := &clock{t: time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)}
			seed(t, st, c.Now(), holdfast.ProviderMicrosoft, holdfast.ProviderGoogle)
			open := func() *monitor.Monitor {
				m, err := monitor.New(t.Context(), monitor.Config{
					Store: st, Clock: c, Logger: slog.New(slog.DiscardHandler),
					TickEvery: time.Hour, SaveEvery: time.Hour,
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				// Stopped when the test ends, before the store closes.
				t.Cleanup(func() { _ = m.Stop(context.Background()) })
				return m
			}

			first := open()
			ms, err := first.Declare(t.Context(), monitor.Declaration{Provider: holdfast.ProviderMicrosoft, Note: "Entra ID down"})
			if err != nil {
				t.Fatalf("Declare(microsoft) = %v", err)
			}
			// first is abandoned here, as by kill -9.

			c.advance(time.Minute)
			second := open()
			gg, err := second.Declare(t.Context(), monitor.Declaration{Provider: holdfast.ProviderGoogle, Note: "Gmail down"})
			if err != nil {
				t.Fatalf("Declare(google) after restart = %v", err)
			}
			if gg.ID == ms.ID {
				t.Errorf("Declare(google) after restart got ID %d, the ID of the open Microsoft incident", gg.ID)
			}
			got, err := st.IncidentByID(t.Context(), ms.ID)
			if err != nil {
				t.Fatalf("IncidentByID(%d) = %v", ms.ID, err)
			}
			if got.Provider != holdfast.ProviderMicrosoft || !got.Open() {
				t.Errorf("IncidentByID(%d) = %s open=%v after restart, want the open microsoft incident", ms.ID, got.Provider, got.Open())
			}
			res, err := second.Resolve(t.Context(), ms.ID)
			if err != nil {
				t.Fatalf("Resolve(%d) after restart = %v, want the open microsoft incident resolved", ms.ID, err)
			}
			if res.Provider != holdfast.ProviderMicrosoft || res.Open() {
				t.Errorf("Resolve(%d) = %s open=%v, want microsoft resolved", ms.ID, res.Provider, res.Open())
			}
			if got, err := st.IncidentByID(t.Context(), ms.ID); err != nil || got.Open() {
				t.Errorf("IncidentByID(%d) after Resolve = %+v, %v; want resolved", ms.ID, got, err)
			}
		})
	}
}

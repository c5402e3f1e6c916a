package monitor_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
	"github.com/holdfast/holdfast/monitor"
	"github.com/holdfast/holdfast/webhook"
)

// TestEscalationAnnouncedOnce: a declared incident left open past its
// kind's bound is stored escalated, its incident.escalated event is
// written to the outbox once (not again at later saves, nor at its
// resolution), OnIncident hears of it, and the metrics count it.
func TestEscalationAnnouncedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, 4, 2)
	cfg := health.DefaultConfig()
	cfg.EscalateDeclared = time.Minute
	var mu sync.Mutex
	var calls []bool
	m, err := monitor.New(context.Background(), monitor.Config{
		Store: b.store, Clock: b.clock, Logger: slog.New(slog.DiscardHandler), Engine: &cfg,
		TickEvery: time.Hour, SaveEvery: time.Hour,
		OnIncident: func(_ context.Context, _ *holdfast.Incident, opened bool) {
			mu.Lock()
			calls = append(calls, opened)
			mu.Unlock()
		},
		AnnounceIncident: func(in *holdfast.Incident, opened bool) ([]holdfast.OutboxEvent, error) {
			return webhook.IncidentEvents(in, opened, b.clock.Now())
		},
		AnnounceEscalation: func(in *holdfast.Incident) ([]holdfast.OutboxEvent, error) {
			return webhook.EscalationEvents(in, b.clock.Now())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	in, err := m.Declare(t.Context(), monitor.Declaration{Provider: holdfast.ProviderMicrosoft, Note: "maintenance"})
	if err != nil {
		t.Fatalf("Declare = %v", err)
	}
	for range 30 * 60 { // well past the bound, and past its resolution
		b.clock.advance(time.Second)
		m.Tick()
	}
	if err := m.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := b.store.IncidentByID(t.Context(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Escalated() || got.EscalatedAt.Sub(got.OpenedAt) < time.Minute || got.EscalatedAt.Sub(got.OpenedAt) > 2*time.Minute {
		t.Errorf("stored EscalatedAt = %v (opened %v), want a minute or so after opening", got.EscalatedAt, got.OpenedAt)
	}
	evs, err := b.store.OutboxEvents(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	want := []string{webhook.IncidentOpened, webhook.IncidentEscalated}
	if !got.Open() {
		want = append(want, webhook.IncidentResolved)
	}
	if !slices.Equal(types, want) {
		t.Errorf("outbox event types = %v, want %v", types, want)
	}
	mu.Lock()
	if n := len(calls); n != len(want) {
		t.Errorf("OnIncident calls = %v, want %d", calls, len(want))
	}
	mu.Unlock()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() == "holdfast_incidents_escalated_total" {
			for _, mt := range mf.GetMetric() {
				total += mt.GetCounter().GetValue()
			}
		}
	}
	if total != 1 {
		t.Errorf("holdfast_incidents_escalated_total = %v, want 1", total)
	}
}

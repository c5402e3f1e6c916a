package monitor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast/holdfast"
)

var (
	engineInboxesDesc = prometheus.NewDesc("holdfast_health_inboxes",
		"Inboxes by provider and state, in the health engine's live view.", []string{"provider", "state"}, nil)
	openIncidentsDesc = prometheus.NewDesc("holdfast_incidents_open",
		"Open incidents, by provider and kind.", []string{"provider", "kind"}, nil)
	escalatedOpenDesc = prometheus.NewDesc("holdfast_incidents_escalated_open",
		"Open incidents escalated to the operators (open longer than their kind's bound), by provider and kind: page on any.", []string{"provider", "kind"}, nil)
	heldActionsDesc = prometheus.NewDesc("holdfast_held_actions_pending",
		"Destructive actions held by the guard, by provider.", []string{"provider"}, nil)
	writeQueueDesc = prometheus.NewDesc("holdfast_monitor_write_queue",
		"Health decisions waiting to be written to the store.", nil, nil)
)

// writerMetrics are the writer's own counters.
type writerMetrics struct {
	failures  *prometheus.CounterVec
	coalesced *prometheus.CounterVec
	escalated *prometheus.CounterVec
}

func newWriterMetrics() writerMetrics {
	return writerMetrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_monitor_write_failures_total",
			Help: "Health decisions the store refused for good and the writer skipped, by kind and reason.",
		}, []string{"kind", "reason"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_monitor_decisions_coalesced_total",
			Help: "Queued health decisions superseded by a later one of the same record before they were written, by kind.",
		}, []string{"kind"}),
		escalated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_incidents_escalated_total",
			Help: "Incidents escalated to the operators, counted once each when stored escalated by this node, by provider and kind.",
		}, []string{"provider", "kind"}),
	}
}

// Collector returns a Prometheus collector of the engine's live view
// (inboxes by state per provider, open incidents and pending held actions)
// and of its writer: the decisions queued, coalesced, and refused by the
// store.
func (m *Monitor) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Monitor }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- engineInboxesDesc
	ch <- openIncidentsDesc
	ch <- heldActionsDesc
	ch <- writeQueueDesc
	ch <- escalatedOpenDesc
	c.m.w.metrics.failures.Describe(ch)
	c.m.w.metrics.coalesced.Describe(ch)
	c.m.w.metrics.escalated.Describe(ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	ch <- prometheus.MustNewConstMetric(writeQueueDesc, prometheus.GaugeValue, float64(m.w.length()))
	m.w.metrics.failures.Collect(ch)
	m.w.metrics.coalesced.Collect(ch)
	m.w.metrics.escalated.Collect(ch)
	m.mu.Lock()
	type key struct{ p, k string }
	open, escalated := map[key]int{}, map[key]int{}
	for _, in := range m.eng.Incidents() {
		if in.Open() {
			open[key{string(in.Provider), string(in.Kind)}]++
			if !in.EscalatedAt.IsZero() {
				escalated[key{string(in.Provider), string(in.Kind)}]++
			}
		}
	}
	held := map[holdfast.Provider]int{}
	for _, h := range m.eng.HeldActions() {
		if !h.Done {
			held[h.Provider]++
		}
	}
	counts := map[holdfast.Provider]map[holdfast.State]int64{}
	for _, p := range holdfast.Providers {
		counts[p] = m.eng.Counts(p)
	}
	m.mu.Unlock()
	for _, p := range holdfast.Providers {
		for _, s := range holdfast.States {
			ch <- prometheus.MustNewConstMetric(engineInboxesDesc, prometheus.GaugeValue, float64(counts[p][s]), string(p), string(s))
		}
		ch <- prometheus.MustNewConstMetric(heldActionsDesc, prometheus.GaugeValue, float64(held[p]), string(p))
	}
	for k, n := range open {
		ch <- prometheus.MustNewConstMetric(openIncidentsDesc, prometheus.GaugeValue, float64(n), k.p, k.k)
	}
	for k, n := range escalated {
		ch <- prometheus.MustNewConstMetric(escalatedOpenDesc, prometheus.GaugeValue, float64(n), k.p, k.k)
	}
}

package syncer

import "github.com/prometheus/client_golang/prometheus"

// SyncOutcome is how one sync ended, as holdfast_syncs_total counts it.
type SyncOutcome string

// The outcomes of a sync.
const (
	// SyncNewMail: it stored messages or a new cursor.
	SyncNewMail SyncOutcome = "stored"
	// SyncNothingNew: the provider had nothing new and the cursor did not
	// change; only the last sync time is written, with others'.
	SyncNothingNew SyncOutcome = "nothing_new"
	// SyncFailed: the provider or the store failed it.
	SyncFailed SyncOutcome = "failed"
	// SyncDeferred: the health engine or the partition's lease deferred it.
	SyncDeferred SyncOutcome = "deferred"
)

// metrics are the Syncer's counters.
type metrics struct {
	syncs *prometheus.CounterVec
	// seconds is the time syncs took, by outcome (deferred ones excluded).
	seconds *prometheus.HistogramVec
}

func newMetrics() metrics {
	m := metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_syncs_total",
			Help: "Syncs this node ran, by outcome: stored, nothing_new, failed, deferred.",
		}, []string{"outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "holdfast_sync_duration_seconds",
			Help:    "Time one sync took (provider calls and store writes), by outcome.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120},
		}, []string{"outcome"}),
	}
	for _, o := range []SyncOutcome{SyncNewMail, SyncNothingNew, SyncFailed, SyncDeferred} {
		m.syncs.WithLabelValues(string(o))
	}
	return m
}

// Collector returns a Prometheus collector of the Syncer's counters
// (holdfast_syncs_total, holdfast_sync_duration_seconds).
func (s *Syncer) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Syncer }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	c.s.metrics.syncs.Describe(ch)
	c.s.metrics.seconds.Describe(ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.s.metrics.syncs.Collect(ch)
	c.s.metrics.seconds.Collect(ch)
}

// Package metrics exposes holdfast's Prometheus metrics: HTTP requests,
// inboxes by provider and state, and the latency and count of every store
// operation. Every series is named holdfast_*.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/holdfast/holdfast"
)

// Metrics owns a Prometheus registry and holdfast's own collectors.
type Metrics struct {
	// Registry holds every collector; other packages register theirs here.
	Registry *prometheus.Registry

	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	storeLatency *prometheus.HistogramVec
	storeOps     *prometheus.CounterVec
	cluster      *clusterCollector
}

// New returns a registry with the Go and process collectors and holdfast's
// HTTP and store metrics.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "holdfast_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "holdfast_store_latency_seconds",
			Help:    "Time taken by store operations, by operation and outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op", "outcome"}),
		storeOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_store_operations_total",
			Help: "Store operations, by aggregate (inbox, mail, send, health, notice, webhook, api_key, oauth, signing_key, lease, lock, store), operation and outcome.",
		}, []string{"aggregate", "op", "outcome"}),
		cluster: &clusterCollector{},
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.storeLatency, m.storeOps, m.cluster,
	)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Middleware counts and times the requests next serves. It labels them with
// the ServeMux pattern that matched, so the label set stays small.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WatchInboxes registers the gauge holdfast_inboxes{provider,state}, read
// from the store at scrape time and cached for ttl so that frequent scrapes
// do not load the database.
func (m *Metrics) WatchInboxes(s holdfast.InboxStore, ttl time.Duration, log *slog.Logger) {
	m.Registry.MustRegister(&inboxCollector{store: s, ttl: ttl, log: log})
}

var inboxesDesc = prometheus.NewDesc("holdfast_inboxes",
	"Connected inboxes, by provider and connection state.", []string{"provider", "state"}, nil)

// inboxCollector reports inbox counts per provider and state.
type inboxCollector struct {
	store holdfast.InboxStore
	ttl   time.Duration
	log   *slog.Logger

	mu     sync.Mutex // guards the fields below
	at     time.Time
	counts []holdfast.InboxCount
}

func (c *inboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- inboxesDesc }

func (c *inboxCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if time.Since(c.at) > c.ttl {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		counts, err := c.store.CountInboxes(ctx)
		cancel()
		if err != nil {
			c.log.Warn("count inboxes for metrics", "err", err)
		} else {
			c.counts, c.at = counts, time.Now()
		}
	}
	counts := c.counts
	c.mu.Unlock()
	// Every provider and state appears, zero or not, so series do not vanish.
	n := map[[2]string]int64{}
	for _, x := range counts {
		n[[2]string{string(x.Provider), string(x.State)}] += x.Count
	}
	for _, p := range holdfast.Providers {
		for _, s := range holdfast.States {
			ch <- prometheus.MustNewConstMetric(inboxesDesc, prometheus.GaugeValue,
				float64(n[[2]string{string(p), string(s)}]), string(p), string(s))
		}
	}
}

// The series of SetClusterInfo.
var (
	nodeInfoDesc = prometheus.NewDesc("holdfast_node_info",
		"Always 1, labelled with the cluster node this process is.", []string{"node"}, nil)
	leaderDesc = prometheus.NewDesc("holdfast_cluster_leader",
		"1 while this node is the cluster's leader, 0 otherwise.", nil, nil)
)

// SetClusterInfo makes every scrape say which cluster node this process is
// (holdfast_node_info{node}, always 1), whether it is the leader
// (holdfast_cluster_leader, 1 or 0, from leader). leader is called at
// scrape time and must not block; a nil one leaves its series out. Until
// it is called neither is exported; calling it again replaces what it
// set. (The partitions a node holds are the Membership's collector's:
// holdfast_cluster_partitions_owned.)
func (m *Metrics) SetClusterInfo(node string, leader func() bool) {
	m.cluster.mu.Lock()
	defer m.cluster.mu.Unlock()
	m.cluster.node, m.cluster.leader, m.cluster.set = node, leader, true
}

// clusterCollector reports the node's identity and leadership.
type clusterCollector struct {
	mu     sync.Mutex // guards the fields below
	set    bool
	node   string
	leader func() bool
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- nodeInfoDesc
	ch <- leaderDesc
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	set, node, leader := c.set, c.node, c.leader
	c.mu.Unlock()
	if !set {
		return
	}
	ch <- prometheus.MustNewConstMetric(nodeInfoDesc, prometheus.GaugeValue, 1, node)
	if leader != nil {
		v := 0.0
		if leader() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(leaderDesc, prometheus.GaugeValue, v)
	}
}

package metrics

import (
	"time"

	"github.com/holdfast/holdfast"
)

//go:generate go run ./internal/storegen -src .. -out store_gen.go

// InstrumentStore returns s with every call timed in
// holdfast_store_latency_seconds{op,outcome} and counted in
// holdfast_store_operations_total{aggregate,op,outcome}, where op is the
// method's name in snake case (save_sync) and aggregate the interface of
// holdfast.Store that declares it (mail). The wrappers are generated from
// holdfast.Store (store_gen.go), so none is missing or stale.
func (m *Metrics) InstrumentStore(s holdfast.Store) holdfast.Store {
	for _, o := range storeOps {
		for _, outcome := range []string{"ok", "error"} {
			m.storeOps.WithLabelValues(o.aggregate, o.op, outcome)
		}
	}
	return &store{next: s, m: m}
}

// storeOp is one operation of holdfast.Store and its aggregate.
type storeOp struct {
	aggregate, op string
}

// store times and counts the calls it forwards to next.
type store struct {
	next holdfast.Store
	m    *Metrics
}

// observe records a call of op, of aggregate, that started at start and
// failed if *err is set (err nil: the method returns no error). Use it as
// defer s.observe(aggregate, op, time.Now(), &err).
func (s *store) observe(aggregate, op string, start time.Time, err *error) {
	outcome := "ok"
	if err != nil && *err != nil {
		outcome = "error"
	}
	s.m.storeLatency.WithLabelValues(op, outcome).Observe(time.Since(start).Seconds())
	s.m.storeOps.WithLabelValues(aggregate, op, outcome).Inc()
}

package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
)

// FleetConfig makes a Monitor one node of several on one store
// (docs/health-engine.md §7): its engine judges the outcomes of the
// inboxes this node syncs, ships its bucket counters to the store, and
// runs the fleet detectors only while this node leads.
type FleetConfig struct {
	Store holdfast.FleetStore
	// Node names this node (cluster.Membership.Node).
	Node string
	// Leading reports whether this node leads now (cluster.Leader.IsLeader).
	Leading func() bool
	// LeaderKnown reports whether some node leads now, by this node's last
	// reading of the store; without one, destructive actions are held.
	LeaderKnown func() bool
}

// fleetCallTimeout bounds each store call of the fleet loop.
const fleetCallTimeout = 10 * time.Second

// fleetNode is a Monitor's state as one node of several. Guarded by m.mu,
// except merged, which only the fleet goroutine touches.
type fleetNode struct {
	cfg FleetConfig
	// merged is the last bucket merged from each other node.
	merged map[string]int64
	// stock holds the fleet budget permits taken ahead, per provider (at
	// most one each), and rate the provider's last hourly budget asked.
	stock  map[holdfast.Provider]int
	rate   map[holdfast.Provider]float64
	refill chan struct{}
	// operator is set during an operator's Declare or Resolve: a follower
	// writes the incidents those change.
	operator bool
	// missing holds the engine's open incidents the store does not have,
	// with when each was first missed (syncIncidents).
	missing map[int64]time.Time
	// reverified holds the retroactive incidents applied here, and
	// lastReverify when the store was last read for new ones
	// (reverifyRetroactive).
	reverified   map[int64]bool
	lastReverify time.Time
}

// reverifyEvery is how often a node reads the store for retroactive
// incidents declared on another node; reverifyWithin how long after its
// declaration one is still applied (a node that restarts within it
// applies it again, which finds nothing more to do).
const (
	reverifyEvery  = 5 * time.Second
	reverifyWithin = 30 * time.Minute
)

// phantomAfter is how long a follower keeps an open incident of its own
// engine that the store does not have before it ends it: one this node
// opened as leader whose write was dropped once it no longer led.
const phantomAfter = 30 * time.Second

// initFleet prepares the engine for a fleet; New calls it before loading.
func (m *Monitor) initFleet() {
	f := m.cfg.Fleet
	m.fleet = &fleetNode{cfg: *f, merged: map[string]int64{}, stock: map[holdfast.Provider]int{}, missing: map[int64]time.Time{},
		reverified: map[int64]bool{}, rate: map[holdfast.Provider]float64{}, refill: make(chan struct{}, 1)}
	m.eng.EnableCounters()
	// A follower until the first reading says this node leads.
	m.eng.SetFollower(true)
	m.eng.SetPermitFunc(m.permit)
}

// foreign reports whether engine inbox i is another node's to judge
// (Config.Owns); called by the engine with m.mu held.
func (m *Monitor) foreign(i int32) bool {
	return int(i) < len(m.ids) && !m.owns(m.ids[i])
}

// writesIncidents reports whether the engine's incident changes are this
// node's to store: the leader's, and a follower's during an operator's
// call. m.mu must be held.
func (m *Monitor) writesIncidents() bool {
	return m.fleet == nil || m.fleet.operator || !m.eng.Follower() && m.fleet.cfg.Leading()
}

// permit is the engine's permit function: a destructive action goes ahead
// only with a permit of the fleet's budget taken ahead from the store, and
// while some node leads. Called with m.mu held.
func (m *Monitor) permit(p holdfast.Provider, _ int32, provRate, _ float64) bool {
	f := m.fleet
	f.rate[p] = provRate
	ok := f.stock[p] > 0 && f.cfg.LeaderKnown()
	if ok {
		f.stock[p]--
	}
	select {
	case f.refill <- struct{}{}:
	default:
	}
	return ok
}

// fleetLoop runs the node's part in the fleet every TickEvery until ctx
// ends, and refills the permits when asked.
func (m *Monitor) fleetLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.FleetTick(ctx)
		case <-m.fleet.refill:
			m.refillPermits(ctx)
		}
	}
}

// FleetTick follows the leadership, ships the ended buckets' counters,
// merges the other nodes' on the leader, and brings the store's
// incidents into the engine. Start calls it every TickEvery with
// Config.Fleet set; tests may call it directly. Without Fleet it does
// nothing.
func (m *Monitor) FleetTick(ctx context.Context) {
	f := m.fleet
	if f == nil {
		return
	}
	leading := f.cfg.Leading()
	m.mu.Lock()
	if m.eng.Follower() == leading {
		m.eng.SetFollower(!leading)
		m.log.Info("health engine role", "leader", leading)
	}
	shipped := m.eng.TakeCounters()
	blobs := make([][]byte, len(shipped))
	for k, c := range shipped {
		blobs[k] = m.encodeCounters(c)
	}
	m.mu.Unlock()
	for k, c := range shipped {
		cctx, cancel := context.WithTimeout(ctx, fleetCallTimeout)
		err := f.cfg.Store.ShipCounters(cctx, f.cfg.Node, c.Bucket, blobs[k])
		cancel()
		if err != nil {
			m.log.Warn("ship health counters; the leader judges without them", "bucket", c.Bucket, "err", err)
		}
	}
	if leading {
		if err := m.mergeFleet(ctx); err != nil {
			m.log.Warn("read the other nodes' health counters", "err", err)
		}
	}
	if err := m.syncIncidents(ctx); err != nil {
		m.log.Warn("read the store's incidents", "err", err)
	}
	if err := m.reverifyRetroactive(ctx); err != nil {
		m.log.Warn("read the store's incidents for retroactive ones declared on another node", "err", err)
	}
	m.refillPermits(ctx)
}

// reverifyRetroactive applies the retroactive incidents declared on other
// nodes in the last reverifyWithin: the engine re-verifies this node's
// inboxes acted on inside each one's window (health.Engine.Reverify), as
// the declaring node did for its own. It reads the store every
// reverifyEvery.
func (m *Monitor) reverifyRetroactive(ctx context.Context) error {
	f := m.fleet
	now := m.clock.Now()
	if !f.lastReverify.IsZero() && now.Sub(f.lastReverify) < reverifyEvery {
		return nil
	}
	f.lastReverify = now
	cctx, cancel := context.WithTimeout(ctx, fleetCallTimeout)
	recent, err := m.store.Incidents(cctx, false, 50)
	cancel()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, in := range recent {
		if !in.Retroactive() || f.reverified[in.ID] || now.Sub(in.Timeline[0].At) > reverifyWithin {
			continue
		}
		f.reverified[in.ID] = true
		t := int32(-1)
		if in.Tenant != "" {
			ti, ok := m.tidx[string(in.Provider)+"/"+in.Tenant]
			if !ok {
				continue // no inbox of that tenant here
			}
			t = ti
		}
		n, err := m.eng.Reverify(in.ID, health.Declaration{Provider: in.Provider, Tenant: t, Start: in.OpenedAt, End: in.ResolvedAt})
		if err != nil {
			m.log.Warn("apply a retroactive incident declared on another node", "incident", in.ID, "err", err)
			continue
		}
		if n > 0 {
			m.log.Info("retroactive incident declared on another node: inboxes acted on inside its window are re-verified", "incident", in.ID, "inboxes", n)
		}
	}
	m.flushLocked()
	return nil
}

// shippedCounters is health.Counters as stored: tenants by name.
type shippedCounters struct {
	Provs   [3]health.ProvCounters  `json:"p"`
	Tenants []shippedTenant         `json:"t,omitempty"`
	Probes  []health.IncidentProbes `json:"i,omitempty"`
}

type shippedTenant struct {
	Key             string `json:"k"`
	Att, Fail, Perm int32
}

// encodeCounters encodes c with its tenants' names. m.mu must be held.
func (m *Monitor) encodeCounters(c health.Counters) []byte {
	s := shippedCounters{Provs: c.Provs, Probes: c.Probes}
	for _, t := range c.Tenants {
		if t.Tenant >= 0 && int(t.Tenant) < len(m.tenants) {
			s.Tenants = append(s.Tenants, shippedTenant{Key: m.tenants[t.Tenant], Att: t.Att, Fail: t.Fail, Perm: t.Perm})
		}
	}
	b, _ := json.Marshal(s) // plain values: cannot fail
	return b
}

// mergeFleet adds the other nodes' counters not merged yet to the
// engine's windows.
func (m *Monitor) mergeFleet(ctx context.Context) error {
	f := m.fleet
	bucket := max(1, int64(m.eng.Config().Bucket/time.Second))
	from := m.clock.Now().Unix()/bucket - int64(m.eng.Config().LongWindow)
	cctx, cancel := context.WithTimeout(ctx, fleetCallTimeout)
	rows, err := f.cfg.Store.FleetCounters(cctx, from)
	cancel()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ahead := map[string]bool{}
	for _, r := range rows {
		if r.Node == f.cfg.Node || r.Bucket <= f.merged[r.Node] || ahead[r.Node] {
			continue
		}
		var s shippedCounters
		if err := json.Unmarshal(r.Data, &s); err != nil {
			f.merged[r.Node] = r.Bucket
			m.log.Warn("undecodable health counters skipped", "node", r.Node, "bucket", r.Bucket, "err", err)
			continue
		}
		c := health.Counters{Bucket: r.Bucket, Provs: s.Provs, Probes: s.Probes}
		for _, t := range s.Tenants {
			if ti, ok := m.tidx[t.Key]; ok {
				c.Tenants = append(c.Tenants, health.TenantCounters{Tenant: ti, Att: t.Att, Fail: t.Fail, Perm: t.Perm})
			}
		}
		if !m.eng.MergeCounters(c) {
			// A bucket this engine has not reached (its clock or tick
			// behind the other node's): merged at a later tick, with that
			// node's later ones.
			ahead[r.Node] = true
			continue
		}
		f.merged[r.Node] = r.Bucket
	}
	m.flushLocked()
	return nil
}

// syncIncidents makes the engine's incidents agree with the store's: it
// adopts open ones it does not know (opened by the leader, or declared on
// another node) and ends those the store shows resolved (by the leader,
// or an operator on another node).
func (m *Monitor) syncIncidents(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, fleetCallTimeout)
	defer cancel()
	open, err := m.openIncidents(cctx)
	if err != nil {
		return err
	}
	stored := make(map[int64]bool, len(open))
	for _, in := range open {
		stored[in.ID] = true
	}
	m.mu.Lock()
	var gone []int64
	for _, in := range m.eng.Incidents() {
		if in.Open() && !stored[in.ID] {
			gone = append(gone, in.ID)
		}
	}
	m.mu.Unlock()
	var ended []*holdfast.Incident
	var phantoms []int64
	now := m.clock.Now()
	seen := map[int64]bool{}
	for _, id := range gone {
		in, err := m.store.IncidentByID(cctx, id)
		if errors.Is(err, holdfast.ErrNotFound) {
			// This engine's own, not written yet; or, on a follower for a
			// while, never to be written (see phantomAfter).
			seen[id] = true
			first, ok := m.fleet.missing[id]
			if !ok {
				m.fleet.missing[id] = now
			} else if now.Sub(first) >= phantomAfter {
				phantoms = append(phantoms, id)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("load incident %d: %w", id, err)
		}
		if !in.Open() {
			ended = append(ended, in)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, in := range open {
		hi, ok := m.fromIncident(in)
		if !ok {
			continue
		}
		if err := m.eng.AdoptIncident(hi); err != nil && !errors.Is(err, holdfast.ErrConflict) {
			m.log.Warn("incident not adopted", "incident_id", in.ID, "err", err)
		}
	}
	for _, in := range ended {
		m.restoreIncident(in, nil)
	}
	for id := range m.fleet.missing {
		if !seen[id] {
			delete(m.fleet.missing, id)
		}
	}
	if m.eng.Follower() {
		for _, id := range phantoms {
			in, err := m.eng.Incident(id)
			if err != nil || !in.Open() {
				continue
			}
			m.log.Warn("incident the store never got ended here: another node leads", "incident_id", id)
			in.ResolvedAt = now
			if err := m.eng.RestoreIncident(in, nil); err != nil {
				m.log.Warn("end an incident the store never got", "incident_id", id, "err", err)
			}
			delete(m.fleet.missing, id)
		}
	}
	m.flushLocked()
	return nil
}

// refillPermits takes a permit of the fleet's budget for each provider
// whose stock is empty and whose rate is known.
func (m *Monitor) refillPermits(ctx context.Context) {
	f := m.fleet
	m.mu.Lock()
	var want []holdfast.Provider
	rates := map[holdfast.Provider]float64{}
	for p, r := range f.rate {
		if f.stock[p] == 0 && r > 0 {
			want = append(want, p)
			rates[p] = r
		}
	}
	m.mu.Unlock()
	for _, p := range want {
		cctx, cancel := context.WithTimeout(ctx, fleetCallTimeout)
		r := rates[p]
		ok, err := f.cfg.Store.TakePermit(cctx, "provider/"+string(p), r, max(1, r/10), m.clock.Now())
		cancel()
		if err != nil {
			m.log.Warn("take a permit of the fleet's budget; destructive actions are held meanwhile", "provider", p, "err", err)
			continue
		}
		if ok {
			m.mu.Lock()
			f.stock[p]++
			m.mu.Unlock()
		}
	}
}

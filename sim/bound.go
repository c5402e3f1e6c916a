package sim

import "math"

// The capacity bound on recovery (docs/health-engine.md §8): the shortest
// time in which the provider could answer the requests that recovering an
// outage's inboxes takes, with the capacity its normal traffic leaves.

// quietAfter is how long after an outage's end a provider's seconds stay
// out of its baseline: its recovery is not normal traffic.
const quietAfter = 30 * 60

// stormShare and stormWindow: a second in which a provider has throttled
// more than stormShare of its requests over the last stormWindow seconds
// counts towards throttle_storm_s. A ramp that probes capacity touches it
// now and then (a few requests in a second); a storm is sustained.
const (
	stormShare  = 0.10
	stormWindow = 10
)

// minPre is the fewest quiet seconds before a provider's first outage
// that its baseline is taken from alone.
const minPre = 600

// boundHorizon is how far past an outage's end the bound is looked for.
const boundHorizon = 30 * 86400

// window is a provider's requests and throttled ones over the last
// stormWindow seconds.
type window struct {
	ns, ts [stormWindow]int64
	n, t   int64
}

// recoveryWork is what recovering one outage's inboxes costs: the affected
// inboxes whose credential is valid at the outage's end, and the requests
// their recovery takes (a sync each, and a token refresh or a login for
// those whose token has expired by then).
type recoveryWork struct {
	inboxes, calls int64
	recorded       bool
}

// countSecond scores the second that just ended per provider: throttling,
// the baseline request rate, and, at an outage's last second, its
// recovery work. It resets the per-provider counters of the second.
func (r *run) countSecond() {
	storm := false
	for k := range r.provs {
		n, t := r.reqBy[k], r.thrBy[k]
		w := &r.stormWin[k]
		slot := r.now % stormWindow
		w.n += n - w.ns[slot]
		w.t += t - w.ts[slot]
		w.ns[slot], w.ts[slot] = n, t
		if w.n > 0 && float64(w.t) > stormShare*float64(w.n) {
			storm = true
		}
		if r.quiet(k) {
			r.quietSecs[k]++
			r.quietReq[k] += n
			if r.lastEnd[k] < 0 {
				r.preSecs[k]++
				r.preReq[k] += n
			}
		}
		r.reqBy[k], r.thrBy[k] = 0, 0
	}
	if storm {
		r.rep.ProviderRequests.ThrottleStormS++
	}
	for x, o := range r.outages {
		if r.now == o.end-1 {
			r.recordWork(x)
		}
		if r.now >= o.end && o.end > r.lastEnd[o.prov] {
			r.lastEnd[o.prov] = o.end
		}
	}
}

// quiet reports whether provider k's traffic this second is normal: no
// outage or throttle of it is on, and its last outage ended quietAfter
// ago or more.
func (r *run) quiet(k int) bool {
	if r.lastEnd[k] >= 0 && r.now < r.lastEnd[k]+quietAfter {
		return false
	}
	for _, x := range r.provs[k].outages {
		if o := r.outages[x]; r.now >= o.start && r.now < o.end {
			return false
		}
	}
	name := r.provs[k].spec.Name
	for e := range r.sc.Events {
		ev := &r.sc.Events[e]
		if ev.Kind == "throttle" && ev.Provider == name && r.now >= ev.Start.Seconds() && r.now < ev.End.Seconds() {
			return false
		}
	}
	return true
}

// recordWork counts outage x's recovery work at its last second.
func (r *run) recordWork(x int) {
	o := r.outages[x]
	p := r.provs[o.prov]
	w := &r.work[x]
	w.recorded = true
	for i := p.first; i < p.end; i++ {
		in := &r.in[i]
		if int(in.affEvt) != o.idx || int64(in.invalidAt) <= o.end {
			continue
		}
		w.inboxes++
		w.calls++ // the sync
		if p.lifetime == 0 || o.end-int64(in.tokenAt) >= int64(p.lifetime) {
			w.calls++ // the refresh, or the login
		}
	}
}

// baseline returns provider k's normal request rate: its mean over the
// quiet seconds before its first outage, or, when there were fewer than
// minPre of them, over every quiet second (after an outage, the policy
// may have changed the fleet: naive disconnects it).
func (r *run) baseline(k int) float64 {
	if r.preSecs[k] >= minPre {
		return float64(r.preReq[k]) / float64(r.preSecs[k])
	}
	if r.quietSecs[k] > 0 {
		return float64(r.quietReq[k]) / float64(r.quietSecs[k])
	}
	return 0
}

// bounds fills the report's recovery bounds and ratios.
func (r *run) bounds() {
	rep := &r.rep
	rep.RecoveryByOutage = []OutageRecovery{}
	all := r.recH.clone()
	for x, o := range r.outages {
		w := r.work[x]
		if !w.recorded || w.inboxes == 0 {
			continue
		}
		p := r.provs[o.prov]
		b := r.baseline(o.prov)
		// An inbox of the work still unrecovered at the end counts with
		// its wait at the end, as an undetected loss does.
		h := r.recO[x].clone()
		for k := h.n; k < w.inboxes; k++ {
			h.add(r.dur - o.end)
			all.add(r.dur - o.end)
		}
		or := OutageRecovery{Event: o.idx, Provider: p.spec.Name, Inboxes: w.inboxes, Calls: w.calls,
			BaselinePerS: round2(b), RecoveryP999S: h.q(0.999)}
		// The shortest T with the spare capacity over [end, end+T) at
		// least the work; capacity follows throttle events.
		var acc float64
		for t := o.end; t < o.end+boundHorizon; t++ {
			sp := r.capacityAt(p, t) - b
			if sp <= 0 {
				continue
			}
			if acc+sp >= float64(w.calls) {
				v := math.Round(10*(float64(t-o.end)+(float64(w.calls)-acc)/sp)) / 10
				v = max(v, 0.1)
				or.BoundS = &v
				spare := round2(float64(w.calls) / v)
				or.SparePerS = spare
				break
			}
			acc += sp
		}
		if or.BoundS != nil && or.RecoveryP999S != nil {
			v := math.Round(1000**or.RecoveryP999S / *or.BoundS) / 1000
			or.Ratio = &v
		}
		rep.RecoveryByOutage = append(rep.RecoveryByOutage, or)
		if or.BoundS != nil && (rep.RecoveryBoundS == nil || *or.BoundS > *rep.RecoveryBoundS) {
			rep.RecoveryBoundS = or.BoundS
		}
	}
	if p999 := all.q(0.999); rep.RecoveryBoundS != nil && p999 != nil {
		v := math.Round(1000**p999 / *rep.RecoveryBoundS) / 1000
		rep.RecoveryRatio = &v
	}
	if n := rep.RecoveryRequests.Total; n > 0 {
		rep.RecoveryRequests.ThrottledShare = math.Round(1e4*float64(rep.RecoveryRequests.Throttled)/float64(n)) / 1e4
	}
}

func (h *hist) clone() hist { return hist{b: append([]int64(nil), h.b...), n: h.n} }

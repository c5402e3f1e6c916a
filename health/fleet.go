package health

import (
	"slices"
	"time"

	"github.com/holdfast/holdfast"
)

// With several nodes (docs/health-engine.md §7), every node runs an engine
// over the inboxes it syncs and one elected leader runs the fleet
// detectors:
//
//   - Each engine counts its outcomes per detector bucket, as always, and
//     also keeps what it counted in the bucket apart (EnableCounters), for
//     its owner to ship to the store (TakeCounters).
//   - The leader adds every other node's counters to its own windows
//     (MergeCounters), so that its detectors judge the whole fleet, and
//     opens and closes incidents.
//   - A follower (SetFollower) opens and closes no incident itself: it
//     adopts the ones in the store (AdoptIncident, which pauses and undoes
//     in its own inboxes as opening would have) and ends them when the
//     store says they ended (RestoreIncident).
//   - Every destructive action also needs a permit from the fleet's
//     budget (SetPermitFunc), taken from the store by compare-and-set.

// Counters is what one engine counted during one detector bucket: the
// same counts its windows hold, for the provider detector and the tenant
// rule of another node's engine.
type Counters struct {
	// Bucket is the detector bucket (Unix seconds over Config.Bucket).
	Bucket int64
	// Provs holds each provider's counts, in holdfast.Providers order.
	Provs [numProviders]ProvCounters
	// Tenants holds the counts of the tenants with an outcome in the
	// bucket, in the order first seen.
	Tenants []TenantCounters
	// Probes holds, for each open incident that pauses inboxes, the
	// results of this engine's probes in the bucket and its paused
	// members at the bucket's end: the leader judges them with its own.
	Probes []IncidentProbes
}

// IncidentProbes is one engine's part in an incident's probing during one
// bucket.
type IncidentProbes struct {
	Incident int64
	OK, N    int32
	Paused   int32
	// CanaryHold: a canary of this engine's holds the incident open
	// (canariesHold).
	CanaryHold bool `json:",omitempty"`
}

// ProvCounters is one provider's counts in one bucket: distinct inboxes
// attempting, failing, failing permanent-class, succeeding and throttled,
// and inboxes attempting for the first time in the tenant epoch.
type ProvCounters struct {
	Att, Fail, Perm, OK, Thr, EpochAtt int32
	// Canaries is this engine's canaries failing at the bucket's end
	// (canariesFailing): the leader adds them to its own for the canary
	// rule.
	Canaries int32 `json:",omitempty"`
}

// TenantCounters is one tenant's counts in one bucket: inboxes attempting,
// failing and failing permanent-class for the first time in the tenant
// epoch. Tenant is the engine's index; the owner ships its name.
type TenantCounters struct {
	Tenant          int32
	Att, Fail, Perm int32
}

// fleetState is an engine's part in a fleet; none of it is saved.
type fleetState struct {
	follower bool
	// counting is set by EnableCounters.
	counting bool
	cur      Counters
	curTen   map[int32]int // tenant → index in cur.Tenants
	curProbe map[int64]int // incident → index in cur.Probes
	done     []Counters
	// permit, if set, must grant every destructive action too.
	permit func(p holdfast.Provider, tenant int32, provRate, tenRate float64) bool
	// foreignFn, if set, tells the inboxes another node syncs.
	foreignFn func(i int32) bool
	// canaries holds, per provider, the other nodes' failing canaries
	// in the latest buckets merged (MergeCounters), summed per bucket.
	canaries [numProviders][canaryBuckets]bucketCount
	// merged is set once another node's counters were merged: the
	// tenant windows then hold inboxes this engine keeps no marks for.
	merged bool
}

// canaryBuckets is how many recent buckets of the other nodes' canary
// counts the leader keeps: their counts of one bucket reach it a tick or
// two apart.
const canaryBuckets = 4

// bucketCount is a count summed over the nodes for one bucket.
type bucketCount struct {
	bucket int64
	n      int32
}

// remoteCanaries returns the other nodes' failing canaries of provider p:
// the largest sum over the buckets merged that ended at most
// canaryBuckets ago (a node's count already spans CanaryWindow).
func (e *Engine) remoteCanaries(p uint8) int {
	var n int32
	for _, bc := range e.fl.canaries[p] {
		if bc.bucket > 0 && e.c.CurBucket-bc.bucket <= canaryBuckets {
			n = max(n, bc.n)
		}
	}
	return int(n)
}

// mergeCanaries adds another node's failing canaries of bucket b.
func (e *Engine) mergeCanaries(p int, b int64, n int32) {
	if n == 0 {
		return
	}
	ring := &e.fl.canaries[p]
	slot := &ring[b%canaryBuckets]
	if slot.bucket != b {
		*slot = bucketCount{bucket: b}
	}
	slot.n += n
}

// SetFollower makes the engine a follower (true) or the leader (false, the
// default): a follower opens, verifies, probes and closes no incident of
// its own, nor notice storm; it adopts those of the store instead. An
// operator's Declare and Resolve still work on a follower.
func (e *Engine) SetFollower(follower bool) { e.fl.follower = follower }

// Follower reports whether the engine is a follower (SetFollower).
func (e *Engine) Follower() bool { return e.fl.follower }

// EnableCounters makes the engine keep each bucket's counts apart, for
// TakeCounters.
func (e *Engine) EnableCounters() {
	e.fl.counting = true
	e.fl.curTen = map[int32]int{}
	e.fl.curProbe = map[int64]int{}
}

// TakeCounters returns the counts of the buckets that ended since the
// last call, oldest first, and forgets them.
func (e *Engine) TakeCounters() []Counters {
	out := e.fl.done
	e.fl.done = nil
	return out
}

// shipTenant returns tenant t's counts in the current bucket, added if new.
func (e *Engine) shipTenant(t int32) *TenantCounters {
	k, ok := e.fl.curTen[t]
	if !ok {
		k = len(e.fl.cur.Tenants)
		e.fl.curTen[t] = k
		e.fl.cur.Tenants = append(e.fl.cur.Tenants, TenantCounters{Tenant: t})
	}
	return &e.fl.cur.Tenants[k]
}

// shipProbes returns incident id's probe counts in the current bucket,
// added if new.
func (e *Engine) shipProbes(id int64) *IncidentProbes {
	k, ok := e.fl.curProbe[id]
	if !ok {
		k = len(e.fl.cur.Probes)
		e.fl.curProbe[id] = k
		e.fl.cur.Probes = append(e.fl.cur.Probes, IncidentProbes{Incident: id})
	}
	return &e.fl.cur.Probes[k]
}

// endBucket closes the current bucket's counts: called as the bucket
// rotates, before its slot is reused.
func (e *Engine) endBucket() {
	if !e.fl.counting {
		return
	}
	now := e.now()
	for p := range e.c.Provs {
		e.fl.cur.Provs[p].Canaries = int32(e.canariesFailingHere(uint8(p), now))
	}
	for _, in := range e.c.Incidents {
		if !in.Open() || !in.Kind.Effects().PausesInboxes {
			continue
		}
		var paused int32
		for _, i := range in.members {
			if e.c.H[i].St == sPaused {
				paused++
			}
		}
		pr := e.shipProbes(in.ID)
		pr.Paused = paused
		pr.CanaryHold = in.Tenant < 0 && e.canariesHoldHere(in)
	}
	e.fl.cur.Bucket = e.c.CurBucket
	e.fl.done = append(e.fl.done, e.fl.cur)
	// A leader that stops taking them keeps at most a window's worth.
	if n := len(e.fl.done); n > e.cfg.LongWindow {
		e.fl.done = e.fl.done[n-e.cfg.LongWindow:]
	}
	e.fl.cur = Counters{}
	clear(e.fl.curTen)
	clear(e.fl.curProbe)
}

// MergeCounters adds another node's counts of one bucket to the engine's
// windows, so that its detectors judge the whole fleet. Counts of a bucket
// outside the long window, of the future, or from before the provider's
// last incident closed (its windows were cleared then) are dropped;
// tenants unknown to the engine (index out of range) are skipped. A
// permanent-class failure added to a tenant applies the tenant rule, as
// an own outcome would. It returns false, having added nothing, for a
// bucket the engine has not reached yet (its last Tick was before the
// bucket began): the caller merges it again later.
func (e *Engine) MergeCounters(x Counters) bool {
	c := &e.c
	lw := int64(e.cfg.LongWindow)
	if !c.Started || x.Bucket > c.CurBucket {
		return false
	}
	if c.CurBucket-x.Bucket >= lw {
		return true
	}
	e.fl.merged = true
	slot := x.Bucket % lw
	if slot < 0 {
		slot += lw
	}
	start := x.Bucket * e.bucketS
	ep := start / e.epochS
	curEp := c.CurEpoch
	for p := range c.Provs {
		ps := &c.Provs[p]
		if ps.LastClose > 0 && start < ps.LastClose {
			continue
		}
		pc := x.Provs[p]
		e.mergeCanaries(p, x.Bucket, pc.Canaries)
		ps.Att[slot] += pc.Att
		ps.Fail[slot] += pc.Fail
		ps.Perm[slot] += pc.Perm
		ps.OK[slot] += pc.OK
		ps.Thr[slot] += pc.Thr
		if ep == curEp || ep == curEp-1 {
			k := ep & 1
			if ps.TAttEp[k] != int32(ep) {
				ps.TAttEp[k], ps.TAtt[k] = int32(ep), 0
			}
			ps.TAtt[k] += pc.EpochAtt
		}
	}
	e.mergeProbes(x)
	if ep != curEp && ep != curEp-1 {
		return true
	}
	k := int32(ep & 1)
	for _, tc := range x.Tenants {
		t := tc.Tenant
		if t < 0 || int(t) >= len(c.TProv) {
			continue
		}
		ps := &c.Provs[c.TProv[t]]
		if ps.LastClose > 0 && start < ps.LastClose {
			continue
		}
		w := c.TWin[t*8+k*4 : t*8+k*4+4]
		if w[0] != int32(ep) {
			if w[0] > int32(ep) {
				continue
			}
			w[0], w[1], w[2], w[3] = int32(ep), 0, 0, 0
		}
		w[1] += tc.Att
		w[2] += tc.Fail
		w[3] += tc.Perm
		if tc.Fail > 0 && ep == curEp && c.TListed[t] != int32(ep) {
			c.TListed[t] = int32(ep)
			ps.TenCur = append(ps.TenCur, t)
			ps.FailTen[slot]++
		}
		if tc.Perm > 0 && ep == curEp {
			e.checkTenant(t)
		}
	}
	return true
}

// mergeProbes adds another node's probe results to the open incidents'
// current probe slots and records its paused members.
func (e *Engine) mergeProbes(x Counters) {
	if len(x.Probes) == 0 {
		return
	}
	now := e.now()
	for _, pr := range x.Probes {
		for _, in := range e.c.Incidents {
			if in.ID != pr.Incident || !in.Open() {
				continue
			}
			slot := (now / max(1, int64(e.cfg.ProbeEvery/time.Second))) % in.closeWin
			in.probeOK[slot] += pr.OK
			in.probeN[slot] += pr.N
			switch {
			case x.Bucket > in.remoteBucket:
				in.remoteBucket, in.remotePaused = x.Bucket, pr.Paused
			case x.Bucket == in.remoteBucket:
				in.remotePaused += pr.Paused
			}
			if pr.CanaryHold {
				in.canaryHeldBucket = max(in.canaryHeldBucket, x.Bucket)
			}
		}
	}
}

// SetPermitFunc makes every destructive action need f's permit too, after
// the engine's own budget allows it: f is given the provider, the tenant
// and the engine's hourly budgets for both, and a false holds the action
// (a held action is tried again as the engine drains them). With several
// nodes, f takes the permit from the fleet's budget in the store, and
// fails closed when it cannot.
func (e *Engine) SetPermitFunc(f func(p holdfast.Provider, tenant int32, provRate, tenRate float64) bool) {
	e.fl.permit = f
}

// permitted asks the permit function, if any.
func (e *Engine) permitted(p uint8, t int32, pr, tr float64) bool {
	return e.fl.permit == nil || e.fl.permit(holdfast.Providers[p], t, pr, tr)
}

// AdoptIncident makes open incident in, opened by another node's engine
// (or read from the store), cover its scope in this engine as if it had
// opened it here: inboxes in its scope that fail are paused under it, and
// those the engine acted on since the incident's look-back (its start, for
// a declared one) are undone. It reports nothing about the incident to the
// sink (its opener stored it); the inboxes' moves are reported as usual.
// An incident the engine knows already, or a resolved one, changes
// nothing (RestoreIncident ends one); it returns holdfast.ErrConflict when
// another open incident covers the scope.
func (e *Engine) AdoptIncident(in Incident) error {
	c := &e.c
	p, ok := provIndex(in.Provider)
	if !ok {
		return holdfast.Invalidf("provider", "adopt incident %d: unknown provider %q", in.ID, in.Provider)
	}
	if in.Tenant >= int32(len(c.TProv)) || in.Tenant >= 0 && c.TProv[in.Tenant] != p {
		return holdfast.Invalidf("tenant", "adopt incident %d: unknown tenant %d for provider %s", in.ID, in.Tenant, in.Provider)
	}
	for _, x := range c.Incidents {
		if x.ID == in.ID {
			if e.fl.follower && x.Open() && in.Open() {
				e.followIncident(x, in)
			}
			return nil
		}
	}
	if !in.Open() {
		return nil
	}
	if err := e.adoptIncident(in, p, nil); err != nil {
		return err
	}
	a := c.Incidents[len(c.Incidents)-1]
	fx := a.Kind.Effects()
	now := e.now()
	undoFrom := a.OpenedAt.Unix()
	if a.Kind != holdfast.IncidentDeclared {
		undoFrom -= int64(e.cfg.Lookback.Seconds())
	}
	sink := e.sink
	e.sink = muteIncident{Sink: sink, id: a.ID}
	defer func() { e.sink = sink }()
	switch {
	case fx.HoldsNotices:
	case a.Tenant < 0:
		for i := int32(0); i < int32(len(c.H)); i++ {
			if c.H[i].Prov == p {
				e.undo(i, a, now, undoFrom)
			}
		}
	case fx.PausesInboxes:
		for i := c.THead[a.Tenant]; i >= 0; i = c.NextInTenant[i] {
			e.undo(i, a, now, undoFrom)
		}
	default:
		for i := c.THead[a.Tenant]; i >= 0; i = c.NextInTenant[i] {
			if s := c.H[i].St; s != sNeedsReconnect && s != sNeedsAdmin {
				e.cancelHeld(i, holdfast.HeldCancelledTenantEvent)
			}
		}
	}
	return nil
}

// followIncident brings a follower's copy of open incident x in line with
// the leader's, in: its timeline, evidence and counts (so that the follower
// writes the leader's view should it lead next), and its kind: a tenant
// event the leader found to be an outage pauses the tenant's failing
// inboxes here too.
func (e *Engine) followIncident(x *Incident, in Incident) {
	c := &e.c
	defer func() {
		x.Timeline = slices.Clone(in.Timeline)
		x.Evidence, x.Affected, x.Recovered = in.Evidence, in.Affected, in.Recovered
	}()
	if in.Kind == x.Kind {
		return
	}
	pausesNow := in.Kind.Effects().PausesInboxes && !x.Kind.Effects().PausesInboxes
	x.Kind = in.Kind
	if !pausesNow || x.Tenant < 0 {
		return
	}
	c.TLastAbn[x.Tenant] = max(c.TLastAbn[x.Tenant], e.now())
	sink := e.sink
	e.sink = muteIncident{Sink: sink, id: x.ID}
	defer func() { e.sink = sink }()
	for i := c.THead[x.Tenant]; i >= 0; i = c.NextInTenant[i] {
		if s := c.H[i].St; s == sSuspect || s == sDegraded {
			e.pauseUnder(i, x)
		}
	}
}

// SetForeignFunc tells the engine which inboxes another node syncs and
// judges (their partition is leased elsewhere): the engine keeps them in
// its fleet view but never pauses, undoes, probes nor resumes them, which
// their own node's engine does (its recovery grants here would go
// nowhere, and slow this node's ramp down by the others' share).
func (e *Engine) SetForeignFunc(f func(i int32) bool) { e.fl.foreignFn = f }

// foreign reports whether inbox i is another node's (SetForeignFunc).
func (e *Engine) foreign(i int32) bool { return e.fl.foreignFn != nil && e.fl.foreignFn(i) }

// ForgetHeld forgets inbox i's pending held action, if any, without
// closing it or reporting anything: another node took the inbox over and
// holds the action now (it stays pending in the store). The inbox's
// confirmation starts again should it come back.
func (e *Engine) ForgetHeld(i int32) {
	c := &e.c
	if i < 0 || int(i) >= len(c.H) {
		return
	}
	c.H[i].Flags &^= fHeld
	c.H[i].PermN = 0
	if id, ok := e.heldOf[i]; ok {
		delete(c.Held, id)
		delete(e.heldOf, i)
	}
}

// Reverify applies on this node retroactive incident id, which another
// node declared for the window [d.Start, d.End] of d's scope and stored:
// the inboxes of the scope this engine judges that went to needs_reconnect
// or needs_admin inside the window are re-verified and restored if their
// credential works, as Declare does on the declaring node for its own. It
// keeps a resolved copy of the incident, which it never reports (the
// declarer stored it), and returns the number of inboxes re-verified. An
// incident it knows already changes nothing. Applied again (after a
// restart), it finds nothing more to do: each inbox it re-verified is back,
// or was moved again after the window.
func (e *Engine) Reverify(id int64, d Declaration) (int, error) {
	c := &e.c
	p, ok := provIndex(d.Provider)
	if !ok {
		return 0, holdfast.Invalidf("provider", "re-verify incident %d: unknown provider %q", id, d.Provider)
	}
	if d.Tenant >= int32(len(c.TProv)) || d.Tenant >= 0 && c.TProv[d.Tenant] != p {
		return 0, holdfast.Invalidf("tenant", "re-verify incident %d: unknown tenant %d for provider %s", id, d.Tenant, d.Provider)
	}
	if d.Start.IsZero() || d.End.Before(d.Start) {
		return 0, holdfast.Invalidf("end", "re-verify incident %d: the window %v to %v is not one", id, d.Start, d.End)
	}
	for _, x := range c.Incidents {
		if x.ID == id {
			return 0, nil
		}
	}
	now := e.now()
	in := &Incident{ID: id, Kind: holdfast.IncidentDeclared, Provider: d.Provider, Tenant: d.Tenant,
		OpenedAt: d.Start.UTC(), ResolvedAt: e.tm(now), Evidence: "declared on another node", prov: p, closeWin: 1,
		probeOK: make([]int32, 1), probeN: make([]int32, 1), copy: true}
	c.Incidents = append(c.Incidents, in)
	e.reverify(in, d.Start.Unix(), d.End.Unix(), now)
	e.queueRecovery(in, now)
	return in.Affected, nil
}

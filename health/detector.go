package health

import (
	"fmt"
	"math"
	"time"

	"github.com/holdfast/holdfast"
)

// Tick advances the engine to the clock's current time: it rotates the
// detector windows, opens and closes incidents, probes, grants recoveries,
// drains held actions and delivers due notices. Call it about once a second
// (the simulator calls it every virtual second, before that second's
// outcomes).
func (e *Engine) Tick() {
	c := &e.c
	now := e.now()
	if !c.Started {
		c.Started = true
		c.LastSec = now
		c.CurBucket = now / e.bucketS
		c.CurEpoch = now / e.epochS
		return
	}
	if now <= c.LastSec {
		return
	}
	// Per second: baseline request rate.
	for p := range c.Provs {
		ps := &c.Provs[p]
		if ps.Inc == 0 && !ps.Elevated && !ps.Ramp.Active {
			ps.BaseReq = 0.995*ps.BaseReq + 0.005*float64(ps.ReqSec)/float64(now-c.LastSec)
		}
		ps.ReqSec = 0
	}
	c.LastSec = now
	if b := now / e.bucketS; b != c.CurBucket {
		e.endBucket()
		e.evaluate(now)
		if e.cfg.Policy == PolicyHoldfast && !e.fl.follower {
			e.openCandidates()
		}
		c.CurBucket = b
		slot := b % int64(e.cfg.LongWindow)
		for p := range c.Provs {
			ps := &c.Provs[p]
			ps.Att[slot], ps.Fail[slot], ps.Perm[slot], ps.OK[slot], ps.Thr[slot], ps.FailTen[slot] = 0, 0, 0, 0, 0, 0
		}
		if !e.fl.follower {
			e.tenantIncidents(now)
		}
		e.learnLoss(now)
		if e.cfg.Policy == PolicyHoldfast {
			e.drainHeld(now)
			if !e.fl.follower {
				e.escalate(now)
			}
		}
	}
	if ep := now / e.epochS; ep != c.CurEpoch {
		c.CurEpoch = ep
		for p := range c.Provs {
			ps := &c.Provs[p]
			ps.TenPrev, ps.TenCur = ps.TenCur, ps.TenPrev[:0]
		}
	}
	if e.cfg.Policy != PolicyHoldfast {
		return
	}
	pe := max(1, int64(e.cfg.ProbeEvery/time.Second))
	if now%pe == 0 {
		for _, in := range c.Incidents {
			if in.Open() && in.Kind.Effects().PausesInboxes {
				e.probeTick(in, now)
			}
		}
	}
	if ce := int64(e.cfg.CanaryEvery / time.Second); ce > 0 && now%ce == 0 {
		e.canaryTick(now)
	}
	for p := range c.Provs {
		e.rampTick(uint8(p), now)
		// Recoveries counted after the incident closed reach the store
		// at most once a second.
		if in := e.rampIncident(uint8(p)); in != nil && in.dirty && !in.copy {
			in.dirty = false
			e.sink.IncidentChanged(in)
		}
	}
	e.noticeTick(now)
}

// evaluate runs the provider detectors on the bucket that just ended.
func (e *Engine) evaluate(now int64) {
	c := &e.c
	lw := int64(e.cfg.LongWindow)
	for p := range c.Provs {
		ps := &c.Provs[p]
		if ps.Inboxes == 0 {
			continue
		}
		var attL, failL, attS, failS int64
		for k := int64(0); k < lw; k++ {
			slot := (c.CurBucket - k) % lw
			if slot < 0 {
				slot += lw
			}
			attL += int64(ps.Att[slot])
			failL += int64(ps.Fail[slot])
			if k < int64(e.cfg.ShortWindow) {
				attS += int64(ps.Att[slot])
				failS += int64(ps.Fail[slot])
			}
		}
		shareL, shareS := ratio(failL, attL), ratio(failS, attS)
		ps.LastShare, ps.LastShortShare, ps.LastShortFail = shareL, shareS, failS
		thr := max(e.cfg.MinShare, e.cfg.BaselineMult*ps.Baseline)
		ps.LastThr = thr

		// Breadth and concentration over the tenant window.
		var tenFailing, top, topAtt, sum int64
		for k, list := range [2][]int32{ps.TenCur, ps.TenPrev} {
			for _, t := range list {
				if k == 1 && c.TListed[t] == int32(c.CurEpoch) {
					continue // also in the current list
				}
				a, f, _ := e.tenantWindow(t)
				if f > 0 {
					tenFailing++
					sum += int64(f)
					if int64(f) > top {
						top, topAtt = int64(f), int64(a)
					}
				}
			}
		}
		minTen := int64(max(2, min(e.cfg.MinTenants, ps.Tenants/10)))
		// Concentration: the biggest failing tenant holds at most
		// MaxTopTenantShare of the failures, or, without it, the rest of
		// the provider still fails well above its baseline in enough
		// tenants (a regional outage that happens to include a huge
		// tenant is still an outage; one tenant's revocation is not).
		restAtt := e.provTenantAtt(ps) - topAtt
		restShare := ratio(sum-top, restAtt)
		broad := tenFailing >= minTen && (float64(top) <= e.cfg.MaxTopTenantShare*float64(sum) ||
			tenFailing-1 >= minTen && restShare >= thr/e.cfg.ElevatedFactor && sum-top >= int64(e.cfg.MinFailing))
		// Both windows: the short one at the threshold, the long one at
		// the elevated level (requests fall during an outage: push stops
		// and failing inboxes back off, so the long window lags).
		spike := shareS >= thr && shareL >= thr/e.cfg.ElevatedFactor && failL >= int64(e.cfg.MinFailing) && broad
		held := c.Counts[p][sSuspect]
		panicked := held >= int64(e.cfg.MinFailing) && float64(held) >= e.cfg.PanicShare*float64(ps.Inboxes)
		canaries := e.canariesFailing(uint8(p), now)
		canaried := e.cfg.CanaryMinFailing > 0 && canaries >= e.cfg.CanaryMinFailing
		ps.Elevated = shareL >= thr/e.cfg.ElevatedFactor && failL >= int64(e.cfg.MinFailing) && broad
		if e.cfg.DisableDetectors {
			spike, panicked, canaried, ps.Elevated = false, false, false, false
		}
		if ps.Elevated || e.activeIncident(ps.Inc) != nil {
			ps.LastAbn = now
		}
		if ps.Inc == 0 && (spike || panicked || canaried) && !e.fl.follower {
			ev := fmt.Sprintf("failing share %.1f%% (long) %.1f%% (short) vs threshold %.1f%% (baseline %.2f%%); %d failing inboxes in %d tenants, top tenant %.0f%%",
				100*shareL, 100*shareS, 100*thr, 100*ps.Baseline, failL, tenFailing, 100*ratio(top, sum))
			switch {
			case spike:
			case panicked:
				ev = fmt.Sprintf("panic: %d of %d inboxes suspect", held, ps.Inboxes)
			default:
				ev = fmt.Sprintf("canaries: %d of %d canaries failing permanent-class within %v (fleet failing share %.1f%%, threshold %.1f%%)",
					canaries, len(ps.Canaries), e.cfg.CanaryWindow, 100*shareS, 100*thr)
			}
			e.openIncident(uint8(p), -1, holdfast.IncidentProviderOutage, now, now-int64(e.cfg.Lookback/time.Second), ev)
		}
		if ps.Inc == 0 && !ps.Elevated && attS > 0 {
			slot := c.CurBucket % lw
			if slot < 0 {
				slot += lw
			}
			// Learn only from buckets that look normal, so that the onset
			// of an outage does not raise its own threshold.
			if a := ps.Att[slot]; a > 0 {
				if s := float64(ps.Fail[slot]) / float64(a); s < thr/e.cfg.ElevatedFactor {
					ps.Baseline = max(e.cfg.BaselineFloor, (1-e.cfg.BaselineAlpha)*ps.Baseline+e.cfg.BaselineAlpha*s)
				}
			}
		}
	}
}

func (e *Engine) tenantFailing(t int32) int32 {
	_, f, _ := e.tenantWindow(t)
	return f
}

// provTenantAtt returns the provider's distinct attempting inboxes over the
// tenant window.
func (e *Engine) provTenantAtt(ps *ProvState) int64 {
	ep := int32(e.c.CurEpoch)
	var n int64
	for k := 0; k < 2; k++ {
		if ps.TAttEp[k] == ep || ps.TAttEp[k] == ep-1 {
			n += int64(ps.TAtt[k])
		}
	}
	return n
}

func ratio(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// checkTenant opens a tenant incident when most of tenant t fails.
func (e *Engine) checkTenant(t int32) { e.checkTenantOpen(t, false) }

// checkTenantOpen applies the tenant rule to t; with open it opens the
// incident, otherwise it records t as a candidate.
func (e *Engine) checkTenantOpen(t int32, open bool) {
	c := &e.c
	if c.TInc[t] != 0 || c.Provs[c.TProv[t]].Inc != 0 || e.fl.follower || e.cfg.Policy != PolicyHoldfast || e.cfg.DisableDetectors || e.tenantVerified(t, e.now()) {
		return
	}
	att, fail, _ := e.tenantWindow(t)
	if fail < int32(e.cfg.TenantMinFailing) || float64(fail) < e.cfg.TenantShare*float64(att) {
		// The current epoch alone, so that an onset is not diluted by
		// the successes of the previous epoch.
		w := c.TWin[t*8+int32(c.CurEpoch&1)*4 : t*8+int32(c.CurEpoch&1)*4+4]
		if w[0] != int32(c.CurEpoch) || w[2] < int32(e.cfg.TenantMinFailing) || float64(w[2]) < e.cfg.TenantShare*float64(w[1]) {
			return
		}
	}
	if !open {
		// Decided after the provider detector's next evaluation, so that
		// a provider-wide failure is not reported as hundreds of tenants.
		ps := &c.Provs[c.TProv[t]]
		if c.TCand[t] != int32(c.CurBucket) {
			c.TCand[t] = int32(c.CurBucket)
			ps.Cand = append(ps.Cand, t)
		}
		return
	}
	// The significance test, on the tenant's distinct inboxes: failures
	// that background losses explain open nothing.
	att, fail, perm, pv, sig := e.tenantSignificant(t)
	if !sig {
		return
	}
	now := e.now()
	kind := holdfast.IncidentTenantEvent
	if float64(perm) < 0.9*float64(fail) {
		kind = holdfast.IncidentTenantOutage
	}
	e.openIncident(c.TProv[t], t, kind, now, now-int64(e.cfg.Lookback/time.Second),
		fmt.Sprintf("%d of %d attempting inboxes of the tenant failing (%d permanent-class); chance under background losses %.1e", fail, att, perm, pv))
}

// openCandidates opens the tenant incidents whose tenants met the tenant
// rule during the last bucket, unless the provider detector took over.
func (e *Engine) openCandidates() {
	c := &e.c
	for p := range c.Provs {
		ps := &c.Provs[p]
		for _, t := range ps.Cand {
			e.checkTenantOpen(t, true)
		}
		ps.Cand = ps.Cand[:0]
	}
}

// tenantIncidents verifies or converts tenant events and closes tenant
// incidents whose failures stopped without probes to judge them.
func (e *Engine) tenantIncidents(now int64) {
	c := &e.c
	for _, in := range c.Incidents {
		if !in.Open() || in.Tenant < 0 || e.escalateTenant(in, now) || !in.Kind.Effects().AwaitsVerification {
			continue
		}
		t := in.Tenant
		ps := &c.Provs[in.prov]
		switch {
		case in.okSeen+in.recSeen >= max(3, int(e.tenantFailing(t))/20):
			in.Kind = holdfast.IncidentTenantOutage
			e.timeline(in, now, fmt.Sprintf("successes (%d) or recoverable errors (%d) among failing inboxes: an outage, pausing the tenant", in.okSeen, in.recSeen))
			c.TLastAbn[t] = now
			for i := c.THead[t]; i >= 0; i = c.NextInTenant[i] {
				if s := c.H[i].St; s == sSuspect || s == sDegraded {
					e.pauseUnder(i, in)
				}
			}
			e.sink.IncidentChanged(in)
		case now-in.OpenedAt.Unix() >= int64(e.cfg.TenantVerify/time.Second) && ps.Inc == 0 && !ps.Elevated:
			if float64(c.TSize[t]) > e.cfg.MaxVerifiedTenantShare*float64(ps.Inboxes) || in.prov == 2 {
				// Too big to accept automatically, or an IMAP server (where
				// every user failing at once is server trouble, not every
				// user changing their password): held for an operator.
				continue
			}
			c.TVerifiedAt[t] = now
			c.TEpisode[t]++
			e.timeline(in, now, "verified: only permanent-class errors, no success, provider normal; releasing held actions")
			e.resolve(in, now, false)
		}
	}
}

// openIncident opens an incident over provider p (t < 0) or tenant t, and
// undoes what the health engine did in its scope since undoFrom. It
// returns nil, having changed nothing, when no ID is at hand: a detector
// opens it at its next evaluation, if the evidence holds.
func (e *Engine) openIncident(p uint8, t int32, kind holdfast.IncidentKind, now, undoFrom int64, evidence string) *Incident {
	c := &e.c
	ps := &c.Provs[p]
	id, ok := e.newID()
	if !ok {
		return nil
	}
	in := &Incident{ID: id, Kind: kind, Provider: holdfast.Providers[p], Tenant: t, OpenedAt: e.tm(now),
		Evidence: evidence, prov: p}
	win := e.cfg.CloseWindow
	if ps.LastClose > 0 && now-ps.LastClose < int64(e.cfg.ReopenMemory/time.Second) {
		ps.ReopenN++
		win = min(e.cfg.MaxCloseWindow, win<<min(ps.ReopenN, 8))
	} else {
		ps.ReopenN = 0
	}
	in.closeWin = max(1, int64(win/e.cfg.ProbeEvery))
	in.probeOK = make([]int32, in.closeWin)
	in.probeN = make([]int32, in.closeWin)
	c.Incidents = append(c.Incidents, in)
	idx := int32(len(c.Incidents))
	e.timeline(in, now, "opened: "+evidence)
	e.log.Info("incident opened", "incident_id", in.ID, "kind", in.Kind, "provider", in.Provider, "tenant", t, "evidence", evidence)
	if t < 0 {
		ps.Inc = idx
		ps.LastAbn = now
		// Freeze and undo (Kubernetes markNodeAsReachable).
		for i := int32(0); i < int32(len(c.H)); i++ {
			if c.H[i].Prov == p {
				e.undo(i, in, now, undoFrom)
			}
		}
		// The provider incident supersedes its open tenant incidents.
		for _, o := range c.Incidents {
			if o.Open() && o.prov == p && o.Tenant >= 0 {
				e.timeline(o, now, fmt.Sprintf("superseded by provider incident %d", in.ID))
				e.resolve(o, now, false)
				for _, i := range o.members {
					c.H[i].Flags &^= fMember
					if c.H[i].St == sPaused {
						c.H[i].Flags |= fMember
						in.members = append(in.members, i)
						in.Affected++
					}
				}
				o.members = nil
			}
		}
	} else {
		c.TInc[t] = idx
		pauses := kind.Effects().PausesInboxes
		if pauses {
			c.TLastAbn[t] = now
		}
		for i := c.THead[t]; i >= 0; i = c.NextInTenant[i] {
			if !pauses {
				if c.H[i].St == sNeedsReconnect || c.H[i].St == sNeedsAdmin {
					continue
				}
				e.cancelHeld(i, holdfast.HeldCancelledTenantEvent)
				continue
			}
			e.undo(i, in, now, undoFrom)
		}
	}
	e.sink.IncidentChanged(in)
	return in
}

// undo pauses inbox i under in if it is failing, and restores it if the
// engine acted on it since undoFrom.
func (e *Engine) undo(i int32, in *Incident, now, undoFrom int64) {
	c := &e.c
	if e.foreign(i) {
		return // its own node's engine undoes it
	}
	switch c.H[i].St {
	case sSuspect, sDegraded:
		e.pauseUnder(i, in)
	case sNeedsReconnect, sNeedsAdmin:
		if c.ActedAt[i] >= undoFrom {
			c.Episode[i]++ // cancels its notice
			e.pauseUnder(i, in)
		}
	}
}

// probeTick probes paused members of an open incident and closes it when
// they succeed again.
func (e *Engine) probeTick(in *Incident, now int64) {
	c := &e.c
	slot := (now / max(1, int64(e.cfg.ProbeEvery/time.Second))) % in.closeWin
	if e.fl.follower {
		// A follower probes its own paused members; the leader judges
		// their results (shipped with the counters) and closes.
		in.probeOK[slot], in.probeN[slot] = 0, 0
		e.grantProbes(in, now)
		return
	}
	// Judge the window before reusing its oldest slot.
	var ok, n int64
	for k := range in.probeN {
		ok += int64(in.probeOK[k])
		n += int64(in.probeN[k])
	}
	open := now - in.OpenedAt.Unix()
	paused := 0
	// A provider incident waits for its canaries (anchors §2.2: FROZEN →
	// RECOVERING needs every canary OK).
	canaryHold := in.Tenant < 0 && e.canariesHold(in)
	healthy := e.scopeHealthy(in)
	if !healthy {
		in.lastBad = now
	}
	if in.settleAt != 0 {
		if e.settleTick(in, now, healthy) {
			return
		}
	} else if open >= int64(e.cfg.MinHold/time.Second) && !canaryHold {
		if n >= int64(e.cfg.CloseMinProbes) && float64(ok) >= e.cfg.CloseOKShare*float64(n) && open >= in.closeWin*int64(e.cfg.ProbeEvery/time.Second) {
			e.settle(in, now, fmt.Sprintf("probes succeed again: %d of %d", ok, n))
			return
		}
	}
	in.probeOK[slot], in.probeN[slot] = 0, 0
	paused = e.grantProbes(in, now)
	// Other nodes' paused members count as this node's own: they probe
	// them, and their results reach this engine with their counters.
	if in.remotePaused > 0 && in.remoteBucket >= c.CurBucket-2 {
		paused += int(in.remotePaused)
	}
	if paused > 0 && !canaryHold && e.stalled(in, now, open, ok, n) {
		e.timeline(in, now, fmt.Sprintf("stalled: failures confined to %d paused inboxes while the rest of the scope works; they go back to per-inbox confirmation under the budget", len(in.members)))
		for _, i := range in.members {
			if c.H[i].St == sPaused {
				c.H[i].Flags |= fKnownBad
			}
		}
		e.resolve(in, now, true)
		return
	}
	if paused == 0 && !canaryHold && open >= int64(e.cfg.MinHold/time.Second) && in.settleAt == 0 {
		ps := &c.Provs[in.prov]
		if in.Tenant >= 0 || ps.LastShortShare < e.cfg.MinShare/e.cfg.ElevatedFactor {
			e.settle(in, now, "no paused inbox left to probe and failures stopped")
		}
	}
}

// scopeHealthy reports whether the rest of in's scope (the inboxes not
// paused under it) works: for a provider, a short-window failing share
// under the elevated level's floor; for a tenant, fewer than a fifth of
// its attempting inboxes failing.
func (e *Engine) scopeHealthy(in *Incident) bool {
	if in.Tenant < 0 {
		ps := &e.c.Provs[in.prov]
		if in.settleAt != 0 {
			// Settling: only a failing share at the opening threshold,
			// over enough inboxes, is the outage coming back; a few lone
			// losses are judged on their own.
			return ps.LastShortShare < ps.LastThr || ps.LastShortFail < int64(max(3, e.cfg.MinFailing/2))
		}
		return ps.LastShortShare < e.cfg.MinShare/e.cfg.ElevatedFactor
	}
	att, fail, _ := e.tenantWindow(in.Tenant)
	if in.settleAt != 0 {
		// Settling: only failures that would open the tenant's incident
		// (TenantMinFailing inboxes and TenantShare of those attempting)
		// are the outage coming back. A lone loss in a small tenant is
		// judged on its own; counted here, its catch-up sync failing
		// every settle kept a 3-inbox tenant's incident from ever ending.
		return fail < int32(e.cfg.TenantMinFailing) || float64(fail) < e.cfg.TenantShare*float64(att)
	}
	return float64(fail) < 0.2*float64(att)
}

// settle starts the end of incident in: the evidence says it is over, so
// its paused members go to the recovery ramp now, but it stays open for
// Config.Settle. Failures that return meanwhile continue it (settleTick):
// a flapping provider is one incident, one episode to the owners, not a
// string of them. With Settle zero it resolves at once.
func (e *Engine) settle(in *Incident, now int64, why string) {
	if e.cfg.Settle <= 0 {
		e.timeline(in, now, why)
		e.resolve(in, now, true)
		return
	}
	in.settleAt = now
	e.timeline(in, now, why+fmt.Sprintf("; recovering, open %v more in case the failures return", e.cfg.Settle))
	e.queueRecovery(in, now)
	e.queueCatchUp(in, now)
	e.sink.IncidentChanged(in)
}

// settleTick judges a settling incident: failures in its scope again end
// the settling (its later pauses are probed, and it settles again when
// they succeed); Settle of health resolves it. It reports whether it
// resolved.
func (e *Engine) settleTick(in *Incident, now int64, healthy bool) bool {
	if !healthy {
		in.settleAt = 0
		in.healthySince = 0
		e.unqueue(in)
		// The close window stays as it is: the settling already keeps the
		// incident open through the next failing phase, and a longer
		// window would only delay the recovery after the last one.
		clear(in.probeOK)
		clear(in.probeN)
		e.timeline(in, now, "failures returned while recovering: the same incident goes on")
		e.sink.IncidentChanged(in)
		return false
	}
	if now-in.settleAt < int64(e.cfg.Settle/time.Second) {
		return false
	}
	e.timeline(in, now, fmt.Sprintf("healthy for %v since recovery began", time.Duration(now-in.settleAt)*time.Second))
	e.resolve(in, now, true)
	return true
}

// unqueue takes the paused inboxes of in's scope that its recovery
// queued and has not granted yet back as its members, as failures return
// while it settles: they are probed and counted with the rest, and queued
// again when it settles again. Left in the queue, which the failing
// incident blocks, they were neither probed nor resumed, and an incident
// with no member to probe settles only once the provider's failing share
// falls under the elevated floor: in a flapping outage with background
// errors, never.
func (e *Engine) unqueue(in *Incident) {
	c := &e.c
	r := &c.Provs[in.prov].Ramp
	take := func(q []int32, hd int) []int32 {
		kept := q[:hd]
		for _, i := range q[hd:] {
			h := &c.H[i]
			if h.St == sPaused && h.Flags&(fQueued|fGranted) == fQueued && (in.Tenant < 0 || h.Ten == in.Tenant) {
				h.Flags &^= fQueued
				if h.Flags&fMember == 0 {
					h.Flags |= fMember
					in.members = append(in.members, i)
				}
				continue
			}
			kept = append(kept, i)
		}
		return kept
	}
	r.Prio = take(r.Prio, r.PrioHd)
	r.Norm = take(r.Norm, r.NormHd)
}

// escalate marks every open incident that has been open longer than its
// kind's bound (Config.EscalateAfter) as escalated, once: it is logged,
// added to its timeline and reported to the sink, which stores it and
// tells the operators (webhook incident.escalated, metric, dashboard
// banner). The incident keeps what it does; held sends are bounded apart
// (Config.SendHoldMax).
func (e *Engine) escalate(now int64) {
	for _, in := range e.c.Incidents {
		if !in.Open() || !in.EscalatedAt.IsZero() {
			continue
		}
		b := int64(e.cfg.EscalateAfter(in.Kind) / time.Second)
		if b <= 0 || now-in.OpenedAt.Unix() < b {
			continue
		}
		in.EscalatedAt = e.tm(now)
		e.timeline(in, now, fmt.Sprintf("escalated: open %v, longer than the %v bound of a %s incident; an operator decides", time.Duration(now-in.OpenedAt.Unix())*time.Second, time.Duration(b)*time.Second, in.Kind))
		e.log.Warn("incident escalated", "incident_id", in.ID, "kind", in.Kind, "provider", in.Provider, "tenant", in.Tenant, "opened_at", in.OpenedAt)
		e.sink.IncidentChanged(in)
	}
}

// grantProbes grants a probe to up to ProbeCount paused members of in
// that have none, and returns how many it granted.
func (e *Engine) grantProbes(in *Incident, now int64) int {
	c := &e.c
	paused := 0
	for tries := 0; tries < len(in.members) && paused < e.cfg.ProbeCount; tries++ {
		if in.cursor >= len(in.members) {
			in.cursor = 0
		}
		i := in.members[in.cursor]
		in.cursor++
		if c.H[i].St != sPaused || c.H[i].Flags&(fProbe|fGranted) != 0 || e.foreign(i) {
			continue
		}
		c.H[i].Flags |= fProbe
		paused++
		e.sink.Grant(Grant{Inbox: i, Probe: true, At: e.tm(now)})
	}
	return paused
}

// stalled reports whether an incident has been open StallAfter, its probes
// still fail, and the rest of its scope (inboxes not paused under it) has
// been healthy for StallFor. Such failures are confined to the inboxes it
// holds (a scattered mass revocation, or our own bug on some tokens): the
// incident is closed and those inboxes are confirmed one by one, under the
// guard's budget, instead of being frozen for ever.
func (e *Engine) stalled(in *Incident, now, open, ok, n int64) bool {
	if in.Kind.Effects().EndsByOperator {
		return false // an operator's incident ends on the operator's word
	}
	if float64(len(in.members)) > e.cfg.StallMaxShare*float64(e.c.Provs[in.prov].Inboxes) {
		// Too many to be a scattered revocation: our own bug, or a
		// provider fault. Stay frozen; on-call decides.
		return false
	}
	var healthy bool
	if in.Tenant < 0 {
		healthy = e.c.Provs[in.prov].LastShortShare < e.cfg.MinShare/e.cfg.ElevatedFactor
	} else {
		att, fail, _ := e.tenantWindow(in.Tenant)
		healthy = att > 0 && float64(fail) < 0.2*float64(att)
	}
	if !healthy {
		in.healthySince = 0
		return false
	}
	if in.healthySince == 0 {
		in.healthySince = now
	}
	return open >= int64(e.cfg.StallAfter/time.Second) && now-in.healthySince >= int64(e.cfg.StallFor/time.Second) &&
		n >= int64(e.cfg.CloseMinProbes) && float64(ok) < e.cfg.CloseOKShare*float64(n)
}

// probeResult records one probe outcome for the incident covering i. A
// member that fails with a permanent-class error while most probes of its
// incident succeed is released from the incident: its own credential is
// in doubt, and it is confirmed like any other inbox once the incident
// closes. Without this, one truly revoked member would keep its incident
// open for ever.
func (e *Engine) probeResult(i int32, ok, permanent bool) {
	in := e.coveringIncident(i)
	if in == nil {
		return
	}
	slot := (e.now() / max(1, int64(e.cfg.ProbeEvery/time.Second))) % in.closeWin
	in.probeN[slot]++
	if e.fl.counting {
		pc := e.shipProbes(in.ID)
		pc.N++
		if ok {
			pc.OK++
		}
	}
	if ok {
		in.probeOK[slot]++
		return
	}
	in.probeFail++
	if !permanent {
		return
	}
	in.probePerm++
	var okN, n int32
	for k := range in.probeN {
		okN += in.probeOK[k]
		n += in.probeN[k]
	}
	if n >= int32(e.cfg.CloseMinProbes) && float64(okN) >= e.cfg.ReleaseOKShare*float64(n) {
		e.c.H[i].Flags |= fReleased
	}
}

// resolve closes an incident; with recover, its paused members are queued
// for the recovery ramp.
func (e *Engine) resolve(in *Incident, now int64, recover bool) {
	c := &e.c
	if !in.Open() {
		return
	}
	if in.Kind.Effects().HoldsNotices {
		e.resolveStorm(in, now, "resolved")
		return
	}
	in.ResolvedAt = e.tm(now)
	ps := &c.Provs[in.prov]
	if in.Tenant < 0 {
		if ps.Inc != 0 && c.Incidents[ps.Inc-1] == in {
			ps.Inc = 0
			ps.LastClose = now
			// Start the detector afresh: the windows hold the incident's
			// own failures.
			ps.Att, ps.Fail, ps.Perm, ps.OK, ps.Thr, ps.FailTen = [64]int32{}, [64]int32{}, [64]int32{}, [64]int32{}, [64]int32{}, [64]int32{}
			ps.TenCur, ps.TenPrev = ps.TenCur[:0], ps.TenPrev[:0]
			ps.TAtt, ps.TAttEp = [2]int32{}, [2]int32{-1, -1}
			for t := range c.TProv {
				if c.TProv[t] == in.prov {
					e.forgetTenant(int32(t))
				}
			}
		}
	} else if k := c.TInc[in.Tenant]; k != 0 && c.Incidents[k-1] == in {
		c.TInc[in.Tenant] = 0
		if in.Kind.Effects().PausesInboxes {
			e.forgetTenant(in.Tenant)
		}
	}
	switch {
	case in.Tenant < 0:
		ps.LastAbn = max(ps.LastAbn, now)
	case in.Kind.Effects().PausesInboxes:
		c.TLastAbn[in.Tenant] = max(c.TLastAbn[in.Tenant], now)
	}
	e.log.Info("incident resolved", "incident_id", in.ID, "provider", in.Provider, "tenant", in.Tenant)
	e.timeline(in, now, "resolved")
	if recover {
		e.queueRecovery(in, now)
		if in.Kind.Effects().PausesInboxes && in.settleAt == 0 {
			// Not settling: the catch-up was not queued when its recovery
			// began (settle).
			e.queueCatchUp(in, now)
		}
	}
	e.sink.IncidentChanged(in)
}

// queueCatchUp grants, through the recovery ramp after every paused inbox,
// one sync to each inbox of in's scope that came back to connected during
// it (so it was paused, degraded or suspect in it) before the last time
// its scope failed: push was lost while the scope failed, and such an
// inbox made no request since to find the mail that arrived then. A
// flapping provider leaves many of them (resumed in one up phase, silent
// through the next down phase). An inbox still degraded from the outage's
// errors, backing off for up to BackoffCap, is tried with them.
func (e *Engine) queueCatchUp(in *Incident, now int64) {
	c := &e.c
	if in.lastBad == 0 || in.lastBad == in.caughtTo {
		return // nothing failed since the last catch-up
	}
	in.caughtTo = in.lastBad
	r := &c.Provs[in.prov].Ramp
	from := in.OpenedAt.Unix()
	n := 0
	for i := int32(0); i < int32(len(c.H)); i++ {
		h := &c.H[i]
		if h.Prov != in.prov || in.Tenant >= 0 && h.Ten != in.Tenant || h.St != sConnected && h.St != sDegraded ||
			h.Flags&(fQueued|fGranted) != 0 || c.Since[i] < from || c.Since[i] >= in.lastBad || e.foreign(i) {
			continue
		}
		h.Flags |= fQueued
		r.Catch = append(r.Catch, i)
		n++
	}
	if n == 0 {
		return
	}
	if !r.Active {
		e.startRamp(&c.Provs[in.prov], now)
	}
	e.timeline(in, now, fmt.Sprintf("catch-up syncs queued: %d inboxes resumed before the scope's last failure", n))
}

// forgetTenant clears tenant t's window and its inboxes' marks in it, as
// when an incident over it closes: the failures counted there are the
// incident's own. Left in place, the failures of an outage's first
// minutes would meet the tenant rule again right after the outage, open
// tenant incidents over a healthy tenant and hold the confirmation of its
// really revoked inboxes.
func (e *Engine) forgetTenant(t int32) {
	c := &e.c
	w := c.TWin[t*8 : t*8+8]
	for k := range w {
		w[k] = 0
	}
	w[0], w[4] = -1, -1
	c.TListed[t] = -1
	for i := c.THead[t]; i >= 0; i = c.NextInTenant[i] {
		c.H[i].AttB, c.H[i].AttE = -1, -1
		c.FailB[i], c.FailE[i] = -1, -1
	}
}

func (e *Engine) timeline(in *Incident, now int64, what string) {
	in.Timeline = append(in.Timeline, TimelineEntry{At: e.tm(now), What: what})
}

// queueRecovery puts the incident's paused members into the provider's
// recovery ramp, inboxes with held sends first.
func (e *Engine) queueRecovery(in *Incident, now int64) {
	c := &e.c
	r := &c.Provs[in.prov].Ramp
	for _, i := range in.members {
		c.H[i].Flags &^= fMember | fProbe | fReleased
		if c.H[i].St != sPaused || c.H[i].Flags&fQueued != 0 || e.foreign(i) {
			continue
		}
		c.H[i].Flags |= fQueued
		if c.HeldSends[i] > 0 {
			r.Prio = append(r.Prio, i)
		} else {
			r.Norm = append(r.Norm, i)
		}
	}
	in.members = nil
	if !r.Active && len(r.Prio)+len(r.Norm)-r.PrioHd-r.NormHd > 0 {
		e.startRamp(&c.Provs[in.prov], now)
	}
	r.Inc = in.ID
	e.timeline(in, now, fmt.Sprintf("recovery queued: %d inboxes", len(r.Prio)+len(r.Norm)-r.PrioHd-r.NormHd))
}

// startRamp starts provider ps's idle recovery ramp at its slow start,
// from about the load the provider carried before the outage.
func (e *Engine) startRamp(ps *ProvState, now int64) {
	r := &ps.Ramp
	r.Active = true
	r.Rate = e.rampCap(ps, max(e.cfg.RampStart, e.cfg.RampStartShare*ps.BaseReq))
	r.Tok = 0
	r.Slow = true
	r.Cap = 0
	r.LastAdjust, r.LastTick = now, now
	r.N, r.Thr, r.Sec = 0, 0, 0
	ps.RampReq, ps.RampThr = 0, 0
}

// rampCap bounds a recovery rate: at least RampStart, at most
// RampMaxFactor times the learned baseline request rate.
func (e *Engine) rampCap(ps *ProvState, rate float64) float64 {
	return max(e.cfg.RampStart, min(rate, e.cfg.RampMaxFactor*ps.BaseReq))
}

// rampAdjust sets provider ps's recovery rate from what the provider did
// with the requests of the last dt seconds: n requests, thr of them
// throttled, rn of them made by granted inboxes. It is a capacity probe:
//
//   - Congestion (at least RampThrottleShare of n throttled): the provider
//     accepted n−thr, which is its capacity for us now. The rate is cut
//     so that all of the provider's requests come to the target
//     (rampTarget): the recoveries get what the rest of the traffic
//     leaves.
//   - Slow start (no throttling yet): ×RampGrowth every RampEvery.
//   - Otherwise the capacity estimate grows by RampProbe every RampEvery
//     (probing for capacity the provider regains) and the rate tracks the
//     same target as the rest of the traffic changes, by at most
//     ×RampGrowth up and ×RampBackoff down per step.
func (e *Engine) rampAdjust(ps *ProvState, now, n, thr, rn, dt int64) {
	r := &ps.Ramp
	every := max(1, int64(e.cfg.RampEvery/time.Second))
	sec := float64(dt)
	// Requests per grant over the last tick (refresh, sync, and their
	// throttled attempts); 2 before the first grant.
	per := 2.0
	if r.Sec > 0 && rn > 0 {
		per = float64(rn) / float64(r.Sec)
	}
	// toward returns the rate at which the provider's requests would come
	// to target: the recoveries get what the rest of the traffic leaves.
	rest := float64(n-rn) / sec
	toward := func(target float64) float64 { return (target - rest) / per }
	switch {
	case n > 0 && float64(thr) >= e.cfg.RampThrottleShare*float64(n):
		r.Cap = float64(n-thr) / sec
		r.Slow = false
		r.Rate = max(r.Rate*e.cfg.RampBackoff, min(r.Rate*e.cfg.RampHeadroom, toward(e.rampTarget(r.Cap, rest))))
		r.LastAdjust = now
	case now-r.LastAdjust < every:
		return
	case r.Slow:
		r.Rate *= e.cfg.RampGrowth
		r.LastAdjust = now
	default:
		r.LastAdjust = now
		if r.Sec == 0 {
			return // no grant to measure: keep the rate and the estimate
		}
		r.Cap *= 1 + e.cfg.RampProbe
		r.Rate = max(r.Rate*e.cfg.RampBackoff, min(r.Rate*e.cfg.RampGrowth, toward(e.rampTarget(r.Cap, rest))))
	}
	r.Rate = e.rampCap(ps, r.Rate)
}

// recTag is the tag of second now in Hot.RecAt: never 0, so that an inbox
// never granted matches no second.
func recTag(now int64) uint8 { return uint8(now%255) + 1 }

// rampTarget is the request rate the ramp aims all of a provider's
// requests at, given its capacity estimate and the rate of the rest of its
// traffic: the capacity less a margin of 1−RampHeadroom of it or RampNoise
// standard deviations of the rest (Poisson), whichever is larger, so that
// the rest's ordinary ups and downs do not cross the capacity.
func (e *Engine) rampTarget(capacity, rest float64) float64 {
	return capacity - max((1-e.cfg.RampHeadroom)*capacity, e.cfg.RampNoise*math.Sqrt(max(rest, 0)))
}

// rampTick adjusts provider p's recovery rate to the last tick's outcomes
// and grants recoveries at that rate.
func (e *Engine) rampTick(p uint8, now int64) {
	c := &e.c
	ps := &c.Provs[p]
	r := &ps.Ramp
	n, thr, rn := ps.RampReq, ps.RampThr, int64(r.N)
	ps.RampReq, ps.RampThr, r.N, r.Thr = 0, 0, 0, 0
	if !r.Active {
		return
	}
	if in := e.rampIncident(p); in != nil && in.Open() && in.settleAt == 0 {
		// Its incident fails again: the provider's answers now say
		// nothing about its capacity, and the ramp grants nothing (a
		// covered inbox waits). It measures again when it settles.
		r.LastTick, r.LastAdjust = now, now
	} else {
		e.rampAdjust(ps, now, n, thr, rn, max(1, now-r.LastTick))
	}
	r.LastTick = now
	granted := r.Granted
	r.Tok = min(r.Rate, r.Tok+r.Rate)
	for r.DelayedHd < len(r.Delayed) && r.Delayed[r.DelayedHd].At <= now && r.Tok >= 1 {
		i := r.Delayed[r.DelayedHd].Inbox
		r.DelayedHd++
		if s := c.H[i].St; s == sPaused || s == sConnected {
			e.grant(i, now)
			r.Tok--
		}
	}
	for r.Tok >= 1 {
		var i int32
		var hd *int
		switch {
		case r.PrioHd < len(r.Prio):
			i, hd = r.Prio[r.PrioHd], &r.PrioHd
		case r.NormHd < len(r.Norm):
			i, hd = r.Norm[r.NormHd], &r.NormHd
		case r.CatchHd < len(r.Catch):
			i, hd = r.Catch[r.CatchHd], &r.CatchHd
		}
		if hd == nil {
			r.Tok = 0
			break
		}
		if in := e.coveringIncident(i); in != nil && in.settleAt == 0 {
			break // a new incident covers the scope: wait, keep the queue
		}
		*hd++
		c.H[i].Flags &^= fQueued
		// A catch-up may find its inbox paused again (it failed after it
		// was queued, and being queued it was not queued again): then it
		// is its recovery.
		st := c.H[i].St
		if (st != sPaused && (hd != &r.CatchHd || st != sConnected && st != sDegraded)) || c.H[i].Flags&fGranted != 0 || e.foreign(i) {
			continue
		}
		if st == sDegraded {
			// Backing off from the outage's errors (up to BackoffCap):
			// it is tried now, with the others.
			c.NextTry[i] = min(c.NextTry[i], now)
		}
		e.grant(i, now)
		r.Tok--
	}
	r.Sec = r.Granted - granted
	if r.PrioHd >= len(r.Prio) && r.NormHd >= len(r.Norm) && r.DelayedHd >= len(r.Delayed) && r.CatchHd >= len(r.Catch) {
		r.Active = false
		r.Prio, r.Norm, r.Delayed, r.Catch = r.Prio[:0], r.Norm[:0], r.Delayed[:0], r.Catch[:0]
		r.PrioHd, r.NormHd, r.DelayedHd, r.CatchHd = 0, 0, 0, 0
		if r.Inc > 0 {
			for _, in := range c.Incidents {
				if in.ID == r.Inc {
					e.timeline(in, now, fmt.Sprintf("recovery done: %d recovery grants", r.Granted))
					e.sink.IncidentChanged(in)
				}
			}
		}
	}
}

// rampIncident returns the incident whose recovery provider p's ramp ran
// last (its grants may still be succeeding after the ramp is done), or nil.
func (e *Engine) rampIncident(p uint8) *Incident {
	r := &e.c.Provs[p].Ramp
	if r.Inc <= 0 {
		return nil
	}
	for k := len(e.c.Incidents) - 1; k >= 0; k-- {
		if in := e.c.Incidents[k]; in.ID == r.Inc {
			return in
		}
	}
	return nil
}

func (e *Engine) grant(i int32, now int64) {
	e.c.H[i].Flags |= fGranted
	e.c.H[i].RecAt = recTag(now)
	e.c.Provs[e.c.H[i].Prov].Ramp.Granted++
	e.sink.Grant(Grant{Inbox: i, At: e.tm(now)})
}

// Incidents returns every incident, oldest first.
func (e *Engine) Incidents() []Incident {
	out := make([]Incident, 0, len(e.c.Incidents))
	for _, in := range e.c.Incidents {
		cp := *in
		cp.Timeline = append([]TimelineEntry(nil), in.Timeline...)
		out = append(out, cp)
	}
	return out
}

// Incident returns incident id with its timeline, or holdfast.ErrNotFound.
func (e *Engine) Incident(id int64) (Incident, error) {
	for _, in := range e.c.Incidents {
		if in.ID == id {
			cp := *in
			cp.Timeline = append([]TimelineEntry(nil), in.Timeline...)
			return cp, nil
		}
	}
	return Incident{}, fmt.Errorf("incident %d: %w", id, holdfast.ErrNotFound)
}

// Declare records an operator's incident. An open declaration freezes its
// scope like a detected incident; a start in the past, or an end
// (retroactive incident), re-verifies every inbox of the scope that went to
// needs_reconnect or needs_admin inside the window and restores it if its
// credential still works. An open declaration over a tenant supersedes the
// tenant's detected incident, if any (so that an operator can hold a
// tenant past the tenant escalation); over a scope an operator's or a
// provider incident already covers it returns holdfast.ErrConflict. It
// returns a *holdfast.InvalidError naming the bad field, and ErrNoID,
// having changed nothing, when no incident ID is at hand (SetIDFunc).
func (e *Engine) Declare(d Declaration) (Incident, error) {
	c := &e.c
	p, ok := provIndex(d.Provider)
	if !ok {
		return Incident{}, holdfast.Invalidf("provider", "unknown provider %q", d.Provider)
	}
	if d.Tenant >= int32(len(c.TProv)) || d.Tenant >= 0 && c.TProv[d.Tenant] != p {
		return Incident{}, holdfast.Invalidf("tenant", "unknown tenant %d for provider %s", d.Tenant, d.Provider)
	}
	now := e.now()
	start := now
	if !d.Start.IsZero() {
		start = d.Start.Unix()
	}
	if start > now {
		return Incident{}, holdfast.Invalidf("start", "start is in the future")
	}
	if !d.End.IsZero() && d.End.Unix() < start {
		return Incident{}, holdfast.Invalidf("end", "end is before start")
	}
	ev := "declared by operator"
	if d.Note != "" {
		ev += ": " + d.Note
	}
	if d.End.IsZero() || d.End.Unix() > now {
		var old *Incident
		if d.Tenant >= 0 && c.TInc[d.Tenant] != 0 {
			// A detected tenant incident gives way to the operator's
			// declaration: it is how an operator holds a tenant past the
			// tenant escalation's bound.
			if o := c.Incidents[c.TInc[d.Tenant]-1]; !o.Kind.Effects().EndsByOperator {
				old = o
			}
		}
		if d.Tenant < 0 && c.Provs[p].Inc != 0 || d.Tenant >= 0 && c.TInc[d.Tenant] != 0 && old == nil {
			return Incident{}, fmt.Errorf("declare incident: %w: an incident already covers this scope", holdfast.ErrConflict)
		}
		in := e.openIncident(p, d.Tenant, holdfast.IncidentDeclared, now, start, ev)
		if in == nil {
			return Incident{}, fmt.Errorf("declare incident: %w", ErrNoID)
		}
		if old != nil {
			e.supersede(old, in, now)
		}
		if start != now {
			// openIncident reported it opened now; it opened at start.
			in.OpenedAt = e.tm(start)
			e.sink.IncidentChanged(in)
		}
		return *in, nil
	}
	// Retroactive: record it resolved and re-verify what was acted on.
	id, ok := e.newID()
	if !ok {
		return Incident{}, fmt.Errorf("declare incident: %w", ErrNoID)
	}
	in := &Incident{ID: id, Kind: holdfast.IncidentDeclared, Provider: d.Provider, Tenant: d.Tenant,
		OpenedAt: e.tm(start), Evidence: ev, prov: p, closeWin: 1, probeOK: make([]int32, 1), probeN: make([]int32, 1)}
	c.Incidents = append(c.Incidents, in)
	e.reverify(in, start, d.End.Unix(), now)
	e.timeline(in, now, fmt.Sprintf("%s%d inboxes acted on inside the window are re-verified", holdfast.TimelineRetroactive, in.Affected))
	// Resolved at the window's end, which the other nodes read to
	// re-verify their own inboxes (Reverify).
	in.ResolvedAt = e.tm(d.End.Unix())
	e.queueRecovery(in, now)
	e.sink.IncidentChanged(in)
	return *in, nil
}

// reverify applies retroactive incident in, whose window is [start, end]:
// evidence gathered in the window no longer counts, a suspect inbox of its
// scope loses its held action, and the inboxes of its scope this engine
// judges that went to needs_reconnect or needs_admin inside the window are
// paused under it, to be re-verified by its recovery (queueRecovery).
// Another node's inboxes are left to it (Reverify).
func (e *Engine) reverify(in *Incident, start, end, now int64) {
	c := &e.c
	p := in.prov
	// The window was not normal: evidence gathered in it no longer counts.
	if in.Tenant < 0 {
		c.Provs[p].LastAbn = max(c.Provs[p].LastAbn, end)
	} else {
		c.TLastAbn[in.Tenant] = max(c.TLastAbn[in.Tenant], end)
	}
	for i := int32(0); i < int32(len(c.H)); i++ {
		if c.H[i].Prov != p || in.Tenant >= 0 && c.H[i].Ten != in.Tenant || e.foreign(i) {
			continue
		}
		if c.H[i].St == sSuspect && c.PermFirst[i] <= end {
			e.cancelHeld(i, holdfast.HeldCancelledRetroactive)
			c.H[i].PermN = 0
		}
		if s := c.H[i].St; (s == sNeedsReconnect || s == sNeedsAdmin) && c.ActedAt[i] >= start && c.ActedAt[i] <= end {
			c.Episode[i]++
			c.H[i].Flags |= fMember
			in.members = append(in.members, i)
			in.Affected++
			e.move(i, sPaused, c.Reasons[c.Reason[i]], holdfast.CauseOperator, in.ID)
		}
	}
}

// Resolve closes incident id on an operator's word and starts the recovery
// of its scope. It returns holdfast.ErrNotFound or, if it is already
// resolved, holdfast.ErrConflict.
func (e *Engine) Resolve(id int64) error {
	for _, in := range e.c.Incidents {
		if in.ID == id {
			if !in.Open() {
				return fmt.Errorf("resolve incident %d: %w", id, holdfast.ErrConflict)
			}
			now := e.now()
			if in.Kind.Effects().HoldsNotices {
				// The operator accepts the notices counted so far: the
				// meta-guard starts counting afresh.
				ps := &e.c.Provs[in.prov]
				ps.NoticeRing, ps.NoticeSum = [60]int32{}, 0
				e.resolveStorm(in, now, "resolved by operator: held notices go out at their next re-check")
				return nil
			}
			e.timeline(in, now, "resolved by operator")
			e.resolve(in, now, true)
			return nil
		}
	}
	return fmt.Errorf("resolve incident %d: %w", id, holdfast.ErrNotFound)
}

// canaryTick grants every canary a probe, so that the canary window always
// holds fresh evidence (constant work: a handful of requests per minute).
// Canaries that need their owner are left to their soft retry.
func (e *Engine) canaryTick(now int64) {
	c := &e.c
	for p := range c.Provs {
		for _, cn := range c.Provs[p].Canaries {
			i := cn.Inbox
			if s := c.H[i].St; s == sNeedsReconnect || s == sNeedsAdmin {
				continue
			}
			c.H[i].Flags |= fProbe
			e.sink.Grant(Grant{Inbox: i, Probe: true, At: e.tm(now)})
		}
	}
}

// canariesFailing counts provider p's canaries whose last outcome was a
// permanent-class failure within CanaryWindow, on this node and, merged
// from their counters, on the others. A canary that needs its owner (its
// own credential is gone) does not count.
func (e *Engine) canariesFailing(p uint8, now int64) int {
	return e.canariesFailingHere(p, now) + e.remoteCanaries(p)
}

// canariesFailingHere is canariesFailing over the canaries whose outcomes
// this engine sees.
func (e *Engine) canariesFailingHere(p uint8, now int64) int {
	win := int64(e.cfg.CanaryWindow / time.Second)
	n := 0
	for _, cn := range e.c.Provs[p].Canaries {
		if s := e.c.H[cn.Inbox].St; cn.Failing && now-cn.FailAt <= win && s != sNeedsReconnect && s != sNeedsAdmin && !e.foreign(cn.Inbox) {
			n++
		}
	}
	return n
}

// canariesHold reports whether a canary of in's provider still fails since
// around the incident's opening: the incident may not close before every
// such canary succeeds again. A canary that was already failing Lookback
// before the incident opened, or that needs its owner, is broken on its
// own and holds nothing.
func (e *Engine) canariesHold(in *Incident) bool {
	return e.canariesHoldHere(in) || in.canaryHeldBucket > 0 && e.c.CurBucket-in.canaryHeldBucket <= canaryBuckets
}

// canariesHoldHere is canariesHold over the canaries whose outcomes this
// engine sees.
func (e *Engine) canariesHoldHere(in *Incident) bool {
	from := in.OpenedAt.Unix() - int64(e.cfg.Lookback/time.Second)
	for _, cn := range e.c.Provs[in.prov].Canaries {
		if s := e.c.H[cn.Inbox].St; cn.Failing && cn.FailSince >= from && s != sNeedsReconnect && s != sNeedsAdmin && !e.foreign(cn.Inbox) {
			return true
		}
	}
	return false
}

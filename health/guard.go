package health

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/holdfast/holdfast"
)

// tryAct is called when inbox i's lost credential is confirmed. It acts if
// the guard allows, or records a held action. While no ID is at hand
// (SetIDFunc) it fails closed: it neither acts (an incident may have gone
// unopened) nor holds (a held action needs an ID), and the inbox stays
// suspect, to be tried again at its next permanent-class failure.
func (e *Engine) tryAct(i int32) {
	c := &e.c
	var (
		id   int64
		have bool
	)
	if e.idStarved {
		// Take the ID now, to learn whether IDs are at hand again; if
		// the action goes ahead unheld, it is skipped, never reused.
		if id, have = e.newID(); !have {
			return
		}
	}
	to := sNeedsReconnect
	if c.H[i].Flags&fAdmin != 0 {
		to = sNeedsAdmin
	}
	t := c.H[i].Ten
	p := c.H[i].Prov
	ps := &c.Provs[p]
	now := e.now()
	var why holdfast.HeldReason
	switch {
	case e.activeIncident(ps.Inc) != nil:
		why = holdfast.HeldForIncident
	case e.activeIncident(c.TInc[t]) != nil:
		why = holdfast.HeldForIncident
	case e.tenantVerified(t, now):
		e.act(i, to, holdfast.CauseHealth)
		return
	case !e.takeBudget(p, t, now):
		why = holdfast.HeldForBudget
	}
	if why == "" {
		e.act(i, to, holdfast.CauseHealth)
		return
	}
	if !have {
		if id, have = e.newID(); !have {
			return
		}
	}
	c.H[i].Flags |= fHeld
	h := &HeldAction{ID: id, Inbox: i, Provider: holdfast.Providers[p], Tenant: t,
		To: holdfast.States[to], Reason: c.Reasons[c.Reason[i]], HeldAt: e.tm(now), Why: why}
	c.Held[h.ID] = h
	e.heldOf[i] = h.ID
	ps.HeldOrder = append(ps.HeldOrder, h.ID)
	e.sink.HeldChanged(*h)
}

func (e *Engine) tenantVerified(t int32, now int64) bool {
	v := e.c.TVerifiedAt[t]
	return v >= 0 && now-v < 6*3600
}

// budgetRates returns the provider's and tenant's hourly budgets.
func (e *Engine) budgetRates(p uint8, t int32) (prov, ten float64) {
	ps := &e.c.Provs[p]
	prov = max(float64(e.cfg.ProviderBudgetPerHour), e.cfg.ProviderBudgetShare*float64(ps.Inboxes))
	if ps.Elevated {
		prov /= 10
	}
	ten = max(float64(e.cfg.TenantBudgetPerHour), e.cfg.TenantBudgetShare*float64(e.c.TSize[t]))
	return
}

// takeBudget takes one permit from the provider's and the tenant's token
// buckets (burst a tenth of the hourly rate, at least one), or none. It
// fails closed: a rate that is not a positive number (a zero budget, a
// broken parameter) or a bucket that is not a number gives no permit, so
// the action is held, never applied.
func (e *Engine) takeBudget(p uint8, t int32, now int64) bool {
	c := &e.c
	ps := &c.Provs[p]
	pr, tr := e.budgetRates(p, t)
	if !(pr > 0) || !(tr > 0) || math.IsInf(pr, 0) || math.IsInf(tr, 0) {
		return false
	}
	pb, tb := max(1, pr/10), max(1, tr/10)
	if ps.BudAt == 0 {
		ps.BudTok, ps.BudAt = pb, now
	}
	ps.BudTok = min(pb, ps.BudTok+float64(now-ps.BudAt)*pr/3600)
	ps.BudAt = now
	if c.TBudTok[t] < 0 {
		c.TBudTok[t], c.TBudAt[t] = float32(tb), now
	}
	tt := min(tb, float64(c.TBudTok[t])+float64(now-c.TBudAt[t])*tr/3600)
	c.TBudAt[t] = now
	c.TBudTok[t] = float32(tt)
	if !(ps.BudTok >= 1) || !(tt >= 1) { // NaN holds too
		return false
	}
	if !e.permitted(p, t, pr, tr) {
		return false
	}
	ps.BudTok--
	c.TBudTok[t] = float32(tt - 1)
	return true
}

// cancelHeld cancels inbox i's pending held action, if any, with outcome
// (one of the holdfast.HeldCancelled outcomes).
func (e *Engine) cancelHeld(i int32, outcome holdfast.HeldOutcome) {
	c := &e.c
	if c.H[i].Flags&fHeld == 0 {
		return
	}
	c.H[i].Flags &^= fHeld
	if h := c.Held[e.heldOf[i]]; h != nil && !h.Done && h.Inbox == i {
		e.closeHeld(h, outcome)
	}
}

func (e *Engine) closeHeld(h *HeldAction, outcome holdfast.HeldOutcome) {
	h.Done = true
	h.Outcome = outcome
	h.ClosedAt = e.tm(e.now())
	e.sink.HeldChanged(*h)
	delete(e.c.Held, h.ID)
	if e.heldOf[h.Inbox] == h.ID {
		delete(e.heldOf, h.Inbox)
	}
}

// drainHeld takes held actions of every provider, oldest first, as far as
// the budget allows and no incident covers them.
func (e *Engine) drainHeld(now int64) {
	c := &e.c
	for p := range c.Provs {
		ps := &c.Provs[p]
		if len(ps.HeldOrder) == 0 || ps.Inc != 0 {
			continue
		}
		keep := ps.HeldOrder[:0]
		for _, id := range ps.HeldOrder {
			h := c.Held[id]
			if h == nil || h.Done {
				continue
			}
			i := h.Inbox
			switch {
			case c.H[i].St != sSuspect:
				e.closeHeld(h, holdfast.HeldCancelledLeftSuspect)
				c.H[i].Flags &^= fHeld
				continue
			case max(ps.LastAbn, c.TLastAbn[h.Tenant]) >= c.PermFirst[i]:
				// The evidence overlaps a time the provider or tenant was
				// not normal: confirmation starts again.
				e.closeHeld(h, holdfast.HeldCancelledEvidenceOverlaps)
				c.H[i].Flags &^= fHeld
				c.H[i].PermN = 0
				continue
			case c.TInc[h.Tenant] != 0:
			case e.tenantVerified(h.Tenant, now) || e.takeBudget(uint8(p), h.Tenant, now):
				e.closeHeld(h, holdfast.HeldTaken)
				e.act(i, stateCode(h.To), holdfast.CauseHealth)
				continue
			}
			keep = append(keep, id)
		}
		ps.HeldOrder = keep
	}
}

func stateCode(s holdfast.State) uint8 {
	for k, x := range holdfast.States {
		if x == s {
			return uint8(k)
		}
	}
	return sConnected
}

// HeldActions returns the pending held actions, oldest first.
func (e *Engine) HeldActions() []HeldAction {
	out := make([]HeldAction, 0, len(e.c.Held))
	for _, h := range e.c.Held {
		out = append(out, *h)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// ReleaseHeld carries out held action id now, on an operator's word. It
// returns holdfast.ErrNotFound if there is no such pending action and
// holdfast.ErrConflict if its inbox is no longer suspect (the action is
// then cancelled).
func (e *Engine) ReleaseHeld(id int64) error {
	h := e.c.Held[id]
	if h == nil {
		return fmt.Errorf("release held action %d: %w", id, holdfast.ErrNotFound)
	}
	if e.c.H[h.Inbox].St != sSuspect {
		e.c.H[h.Inbox].Flags &^= fHeld
		e.closeHeld(h, holdfast.HeldCancelledLeftSuspect)
		return fmt.Errorf("release held action %d: %w", id, holdfast.ErrConflict)
	}
	e.closeHeld(h, holdfast.HeldReleased)
	e.act(h.Inbox, stateCode(h.To), holdfast.CauseOperator)
	return nil
}

// noticeTick delivers the notices whose grace period is over and that pass
// the delivery-time re-check.
func (e *Engine) noticeTick(now int64) {
	c := &e.c
	ttl := int64(e.cfg.NoticeTTL / time.Second)
	for p := range c.Provs {
		e.metaGuard(uint8(p), now)
	}
	for granted := 0; granted < e.cfg.RecheckPerSec && c.RecheckHd < len(c.Rechecks) && c.Rechecks[c.RecheckHd].Due <= now; {
		r := c.Rechecks[c.RecheckHd]
		c.RecheckHd++
		i := r.Inbox
		if st := c.H[i].St; (st == sNeedsReconnect || st == sNeedsAdmin) && c.Episode[i] == r.Episode {
			c.NextTry[i] = min(c.NextTry[i], now)
			e.sink.Grant(Grant{Inbox: i, Probe: true, At: e.tm(now)})
			granted++
		}
	}
	c.Rechecks, c.RecheckHd = compactQueue(c.Rechecks, c.RecheckHd)
	for c.NoticeHd < len(c.Notices) && c.Notices[c.NoticeHd].Due <= now {
		n := c.Notices[c.NoticeHd]
		c.NoticeHd++
		i := n.Inbox
		st := c.H[i].St
		if st != sNeedsReconnect && st != sNeedsAdmin || c.Episode[i] != n.Episode || c.NoticeEp[i] == n.Episode {
			continue // recovered, re-verified or already sent: cancelled
		}
		if now-n.First > ttl {
			continue
		}
		t := c.H[i].Ten
		ps := &c.Provs[c.H[i].Prov]
		abn := max(ps.LastAbn, c.TLastAbn[t])
		if e.coveringIncident(i) != nil || c.TInc[t] != 0 && !e.tenantVerified(t, now) ||
			abn >= c.ActedAt[i] && now-abn < int64(e.cfg.NoticeGrace/time.Second) {
			// An incident covers it, or the fleet was not normal since the
			// act: inhibited for now, re-checked after another grace
			// period (until its TTL).
			n.Due = now + int64(e.cfg.NoticeGrace/time.Second)
			c.Notices = append(c.Notices, n)
			continue
		}
		if k := ps.Storm; k != 0 {
			// The meta-guard holds every notice of the provider: re-checked
			// after another grace period. Its inbox is re-verified now
			// instead of in SoftRetry: a storm of notices means these
			// disconnects are in doubt, and one that was wrong comes back
			// by itself as soon as the provider works.
			if !n.Held {
				n.Held = true
				c.Incidents[k-1].Affected++
			}
			n.Due = now + int64(e.cfg.NoticeGrace/time.Second)
			c.Notices = append(c.Notices, n)
			c.NextTry[i] = min(c.NextTry[i], now)
			e.sink.Grant(Grant{Inbox: i, Probe: true, At: e.tm(now)})
			continue
		}
		c.NoticeEp[i] = n.Episode
		if n.Admin {
			ep := c.TEpisode[t]
			if e.tenantVerified(t, now) {
				if c.TAdminEp[t] == ep+1 {
					continue // one admin notice per tenant event
				}
				c.TAdminEp[t] = ep + 1
			}
		}
		e.sink.Notice(Notice{Inbox: i, Tenant: t, Admin: n.Admin, Episode: n.Episode, At: e.tm(now), Reason: c.Reasons[c.Reason[i]]})
	}
	c.Notices, c.NoticeHd = compactQueue(c.Notices, c.NoticeHd)
}

// compactQueue drops the consumed head (q[:hd]) of a FIFO queue once it
// is large and most of the queue, and returns the queue and its new head.
func compactQueue[T any](q []T, hd int) ([]T, int) {
	if hd > 4096 && hd*2 > len(q) {
		return append(q[:0], q[hd:]...), 0
	}
	return q, hd
}

// noticeQueued counts one notice queued for delivery for the meta-guard.
func (e *Engine) noticeQueued(ps *ProvState, now int64) {
	noticeRotate(ps, now/60)
	ps.NoticeRing[ps.NoticeMin%60]++
	ps.NoticeSum++
}

// noticeRotate moves the meta-guard's hourly ring to minute m.
func noticeRotate(ps *ProvState, m int64) {
	if m <= ps.NoticeMin {
		return
	}
	for k := max(ps.NoticeMin+1, m-59); k <= m; k++ {
		ps.NoticeSum -= ps.NoticeRing[k%60]
		ps.NoticeRing[k%60] = 0
	}
	ps.NoticeMin = m
}

// noticeBaseAlpha is the per-minute weight of the meta-guard's baseline: an
// EWMA of the sliding hourly count with a time constant of about an hour.
const noticeBaseAlpha = 1.0 / 60

// metaGuardThreshold is the hourly count of queued notices above which
// provider p's notices are held.
func (e *Engine) metaGuardThreshold(ps *ProvState) float64 {
	return max(float64(e.cfg.MetaGuardMin), e.cfg.MetaGuardFactor*ps.NoticeBase)
}

// metaGuard is the notice meta-guard (anchors §2.5): when more notices were
// queued for provider p in the last hour than max(MetaGuardMin,
// MetaGuardFactor × baseline), it opens a notice_storm incident, and every
// notice of p is held until the rate falls back or an operator resolves
// it. It covers the detector's misses and our own bugs: the disconnects
// then go on at the budget's pace, but nobody is told to reconnect.
func (e *Engine) metaGuard(p uint8, now int64) {
	c := &e.c
	ps := &c.Provs[p]
	if e.cfg.MetaGuardMin <= 0 && e.cfg.MetaGuardFactor <= 0 {
		return
	}
	m := now / 60
	learn := m > ps.NoticeMin
	noticeRotate(ps, m)
	thr := e.metaGuardThreshold(ps)
	sum := float64(ps.NoticeSum)
	if learn && ps.Storm == 0 && ps.Inc == 0 && !ps.Elevated && sum <= thr {
		// Learn once a minute, only while the provider and the notices
		// look normal, so that neither an outage's silence nor a storm
		// moves the baseline.
		ps.NoticeBase = (1-noticeBaseAlpha)*ps.NoticeBase + noticeBaseAlpha*sum
	}
	switch {
	case ps.Storm == 0 && sum > thr && !e.fl.follower:
		id, ok := e.newID()
		if !ok {
			break // opened at the next check, if the storm goes on
		}
		in := &Incident{ID: id, Kind: holdfast.IncidentNoticeStorm, Provider: holdfast.Providers[p], Tenant: -1, OpenedAt: e.tm(now),
			Evidence: fmt.Sprintf("notice storm: %d notices queued in the last hour vs threshold %.0f (max(%d, %g × baseline %.1f/h)); every notice of the provider is held",
				ps.NoticeSum, thr, e.cfg.MetaGuardMin, e.cfg.MetaGuardFactor, ps.NoticeBase),
			prov: p, closeWin: 1, probeOK: make([]int32, 1), probeN: make([]int32, 1)}
		c.Incidents = append(c.Incidents, in)
		ps.Storm = int32(len(c.Incidents))
		e.timeline(in, now, "opened: "+in.Evidence)
		e.log.Warn("notice storm: notices held", "incident_id", in.ID, "provider", in.Provider, "queued_last_hour", ps.NoticeSum, "threshold", thr)
		e.sink.IncidentChanged(in)
	case ps.Storm != 0 && sum <= thr && !e.fl.follower:
		e.resolveStorm(c.Incidents[ps.Storm-1], now, fmt.Sprintf("notice rate fell back: %d queued in the last hour vs threshold %.0f; held notices go out at their next re-check", ps.NoticeSum, thr))
	}
}

// resolveStorm closes a notice_storm incident.
func (e *Engine) resolveStorm(in *Incident, now int64, why string) {
	ps := &e.c.Provs[in.prov]
	if ps.Storm != 0 && e.c.Incidents[ps.Storm-1] == in {
		ps.Storm = 0
	}
	in.ResolvedAt = e.tm(now)
	e.timeline(in, now, why)
	e.log.Info("notice storm resolved", "incident_id", in.ID, "provider", in.Provider)
	e.sink.IncidentChanged(in)
}

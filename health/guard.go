package health

import (
	"fmt"
	"sort"
	"time"

	"github.com/holdfast/holdfast"
)

// tryAct is called when inbox i's lost credential is confirmed. It acts if
// the guard allows, or records a held action.
func (e *Engine) tryAct(i int32) {
	c := &e.c
	to := sNeedsReconnect
	if c.H[i].Flags&fAdmin != 0 {
		to = sNeedsAdmin
	}
	t := c.H[i].Ten
	p := c.H[i].Prov
	ps := &c.Provs[p]
	now := e.now()
	why := ""
	switch {
	case ps.Inc != 0:
		why = "incident"
	case c.TInc[t] != 0:
		why = "incident"
	case e.tenantVerified(t, now):
		e.act(i, to, holdfast.CauseHealth)
		return
	case !e.takeBudget(p, t, now):
		why = "budget"
	}
	if why == "" {
		e.act(i, to, holdfast.CauseHealth)
		return
	}
	c.H[i].Flags |= fHeld
	h := &HeldAction{ID: c.NextID, Inbox: i, Provider: holdfast.Providers[p], Tenant: t,
		To: holdfast.States[to], Reason: c.Reasons[c.Reason[i]], HeldAt: e.tm(now), Why: why}
	c.NextID++
	c.Held[h.ID] = h
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
// buckets (burst a tenth of the hourly rate, at least one), or none.
func (e *Engine) takeBudget(p uint8, t int32, now int64) bool {
	c := &e.c
	ps := &c.Provs[p]
	pr, tr := e.budgetRates(p, t)
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
	if ps.BudTok < 1 || tt < 1 {
		return false
	}
	ps.BudTok--
	c.TBudTok[t] = float32(tt - 1)
	return true
}

// cancelHeld cancels inbox i's pending held action, if any.
func (e *Engine) cancelHeld(i int32, why string) {
	c := &e.c
	if c.H[i].Flags&fHeld == 0 {
		return
	}
	c.H[i].Flags &^= fHeld
	ps := &c.Provs[c.H[i].Prov]
	for _, id := range ps.HeldOrder {
		if h := c.Held[id]; h != nil && !h.Done && h.Inbox == i {
			e.closeHeld(h, "cancelled: "+why)
		}
	}
}

func (e *Engine) closeHeld(h *HeldAction, outcome string) {
	h.Done = true
	h.Outcome = outcome
	h.ClosedAt = e.tm(e.now())
	e.sink.HeldChanged(*h)
	delete(e.c.Held, h.ID)
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
				e.closeHeld(h, "cancelled: inbox left suspect")
				c.H[i].Flags &^= fHeld
				continue
			case max(ps.LastAbn, c.TLastAbn[h.Tenant]) >= c.PermFirst[i]:
				// The evidence overlaps a time the provider or tenant was
				// not normal: confirmation starts again.
				e.closeHeld(h, "cancelled: evidence overlaps an incident")
				c.H[i].Flags &^= fHeld
				c.H[i].PermN = 0
				continue
			case c.TInc[h.Tenant] != 0:
			case e.tenantVerified(h.Tenant, now) || e.takeBudget(uint8(p), h.Tenant, now):
				e.closeHeld(h, "taken")
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
		e.closeHeld(h, "cancelled: inbox left suspect")
		return fmt.Errorf("release held action %d: %w", id, holdfast.ErrConflict)
	}
	e.closeHeld(h, "released by operator")
	e.act(h.Inbox, stateCode(h.To), holdfast.CauseOperator)
	return nil
}

// noticeTick delivers the notices whose grace period is over and that pass
// the delivery-time re-check.
func (e *Engine) noticeTick(now int64) {
	c := &e.c
	ttl := int64(e.cfg.NoticeTTL / time.Second)
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
	if c.NoticeHd > 4096 && c.NoticeHd*2 > len(c.Notices) {
		c.Notices = append(c.Notices[:0], c.Notices[c.NoticeHd:]...)
		c.NoticeHd = 0
	}
}

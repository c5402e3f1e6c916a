package health

import (
	"fmt"
	"math"
	"time"
)

// tenantCounts are one tenant's distinct inboxes over a window:
// attempting, failing, failing permanent-class, and failing among those
// that can still lose their credential (fresh: not already waiting for
// their owner in needs_reconnect or needs_admin, not known to fail), in
// all and permanent-class.
type tenantCounts struct {
	att, fail, perm, fresh, freshPerm int32
}

// tenantDistinct counts tenant t's distinct inboxes over the tenant
// window (the last two epochs, win) and over the current epoch alone
// (cur), by their own marks, and how many of its inboxes can still lose
// their credential (atRisk). remote reports that another node owns some
// of the tenant's inboxes (or, without SetForeignFunc, that other nodes'
// counters were merged): their marks are not kept here.
//
// The window's counters sum two epochs of per-epoch distinct counts, so
// one inbox failing in both counts twice: harmless for the share of a
// big tenant, but in a three-inbox tenant two losses read as three
// failing inboxes, and the tenant rule's floor (TenantMinFailing) meant
// nothing. It scans the tenant, so it runs only when a tenant is about to
// be opened (once per bucket and candidate), never on the hot path.
func (e *Engine) tenantDistinct(t int32) (win, cur tenantCounts, atRisk int32, remote bool) {
	c := &e.c
	if e.fl.merged && e.fl.foreignFn == nil {
		remote = true
		return
	}
	ep := int32(c.CurEpoch)
	for i := c.THead[t]; i >= 0; i = c.NextInTenant[i] {
		if e.fl.foreignFn != nil && e.foreign(i) {
			remote = true
			return
		}
		h := &c.H[i]
		judged := h.St == sNeedsReconnect || h.St == sNeedsAdmin || h.Flags&fKnownBad != 0
		if !judged {
			atRisk++
		}
		if h.AttE != ep && h.AttE != ep-1 {
			continue
		}
		// AttE is the last epoch attempted: an inbox that attempted in
		// the previous epoch and the current one counts in both.
		now := h.AttE == ep
		win.att++
		if now {
			cur.att++
		}
		if c.FailE[i] != ep && c.FailE[i] != ep-1 {
			continue
		}
		perm := h.St == sSuspect || h.St == sNeedsReconnect || h.St == sNeedsAdmin
		for k, w := range [2]*tenantCounts{&win, &cur} {
			if k == 1 && c.FailE[i] != ep {
				break
			}
			w.fail++
			if perm {
				w.perm++
			}
			if !judged {
				w.fresh++
				if perm {
					w.freshPerm++
				}
			}
		}
	}
	return
}

// tenantPValue is the significance test of the tenant rule: the
// probability that the tenant's fresh failures happen together by chance
// among its atRisk inboxes, each failing independently. Two tests, the
// smaller chance wins: the permanent-class failures against qLoss, the
// chance that one inbox lost its credential within TenantCoincidence at
// the provider's background loss rate; and every failure against qLoss
// plus the provider's learned failing share (a transient error is as
// likely as that share).
func (e *Engine) tenantPValue(p uint8, w tenantCounts, atRisk int32) float64 {
	ps := &e.c.Provs[p]
	perDay := max(e.cfg.TenantBackgroundLoss, ps.LossRate)
	qLoss := -math.Expm1(-perDay * e.cfg.TenantCoincidence.Hours() / 24)
	return min(binomialTail(int(atRisk), int(w.freshPerm), qLoss),
		binomialTail(int(atRisk), int(w.fresh), min(1, qLoss+ps.Baseline)))
}

// binomialTail returns P(X ≥ k) for X ~ Binomial(n, q), summed upwards
// from k in log space (exact enough for tails far below 1e-300, no
// allocation).
func binomialTail(n, k int, q float64) float64 {
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	case q <= 0:
		return 0
	case q >= 1:
		return 1
	}
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	logTerm := lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(q) + float64(n-k)*math.Log1p(-q)
	term := math.Exp(logTerm)
	sum := term
	r := q / (1 - q)
	for j := k; j < n; j++ {
		term *= float64(n-j) / float64(j+1) * r
		sum += term
		if term < sum*1e-16 {
			break
		}
	}
	return min(1, sum)
}

// learnLoss updates each provider's learned background loss rate once an
// hour: the inboxes the guard moved to a state that asks someone to act
// in the last hour, per inbox and day, as an EWMA with a time constant of
// a day. Hours with an incident over the provider, or with losses from a
// verified tenant event, teach nothing: those are not the background.
func (e *Engine) learnLoss(now int64) {
	h := now / 3600
	for p := range e.c.Provs {
		ps := &e.c.Provs[p]
		if ps.LossHour == 0 {
			ps.LossHour, ps.LossN = h, 0
			continue
		}
		if h == ps.LossHour {
			continue
		}
		if ps.Inc == 0 && !ps.Elevated && ps.Inboxes > 0 {
			rate := float64(ps.LossN) / float64(ps.Inboxes) * 24
			ps.LossRate += (rate - ps.LossRate) / 24
		}
		ps.LossHour, ps.LossN = h, 0
	}
}

// countLoss counts one background loss of inbox i's provider for
// learnLoss: an act on a single inbox, outside any incident or verified
// tenant event.
func (e *Engine) countLoss(i int32, now int64) {
	c := &e.c
	ps := &c.Provs[c.H[i].Prov]
	if ps.Inc == 0 && c.TInc[c.H[i].Ten] == 0 && !e.tenantVerified(c.H[i].Ten, now) {
		ps.LossN++
	}
}

// escalateTenant applies the escalation rule to the open tenant incident
// in: once it has been open TenantEscalateAfter while the rest of its
// provider is healthy (no provider incident, not elevated), it is no
// longer an outage of the kind the engine waits out. It is closed, the
// tenant is marked verified, and its inboxes are re-verified one by one:
// the paused ones go through the recovery ramp (each gets one request),
// those whose credential works resume, and those that fail with a
// permanent-class error go to needs_reconnect at that failure (the
// incident's probes already confirmed them for TenantEscalateAfter), with
// one notice per owner after the usual grace and re-check. Their held
// sends fail then. Held actions of a tenant event are taken at once. A
// pausing tenant outage whose probes fail mostly with recoverable errors
// is a long outage, not a reset: it is not escalated (its inboxes stay
// paused, nothing destructive happens). It reports whether it escalated.
func (e *Engine) escalateTenant(in *Incident, now int64) bool {
	c := &e.c
	eff := in.Kind.Effects()
	after := int64(e.cfg.TenantEscalateAfter / time.Second)
	if after <= 0 || in.Tenant < 0 || eff.EndsByOperator || eff.HoldsNotices || now-in.OpenedAt.Unix() < after {
		return false
	}
	ps := &c.Provs[in.prov]
	if ps.Inc != 0 || ps.Elevated {
		return false // the provider is not healthy: not a tenant's own trouble
	}
	if eff.PausesInboxes && (in.probeFail == 0 || float64(in.probePerm) < 0.9*float64(in.probeFail)) {
		return false // no probe evidence, or an outage's recoverable errors
	}
	t := in.Tenant
	c.TVerifiedAt[t] = now
	c.TEpisode[t]++
	paused := 0
	for _, i := range in.members {
		if c.H[i].St == sPaused {
			c.H[i].Flags |= fKnownBad
			paused++
		}
	}
	e.timeline(in, now, fmt.Sprintf("escalated: open %v while the rest of the provider is healthy; the tenant is re-verified inbox by inbox (%d paused inboxes re-tried through the recovery ramp): those still failing permanent-class go to needs_reconnect and their held sends fail",
		e.cfg.TenantEscalateAfter, paused))
	e.log.Warn("tenant incident escalated", "incident_id", in.ID, "provider", in.Provider, "tenant", t, "open_for", e.cfg.TenantEscalateAfter)
	e.resolve(in, now, eff.PausesInboxes)
	return true
}

// escalatedConfirm reports whether inbox i's permanent-class failure
// confirms its loss at once: it left an escalated tenant incident still
// failing (fKnownBad in a verified tenant), so the incident's probes were
// its confirmation.
func (e *Engine) escalatedConfirm(i int32, now int64) bool {
	h := &e.c.H[i]
	return h.Flags&fKnownBad != 0 && e.tenantVerified(h.Ten, now)
}

// tenantCapped is tenantDistinct for a tenant some of whose inboxes
// other nodes own: the leader knows those only as the counts shipped per
// epoch (fleet.go), so it takes the window's counts, capped at the
// tenant's size; every failure counts as fresh (nodes do not count
// inboxes already waiting for their owner).
func (e *Engine) tenantCapped(t int32) (win, cur tenantCounts, atRisk int32) {
	c := &e.c
	n := c.TSize[t]
	capped := func(att, fail, perm int32) tenantCounts {
		att = min(att, n)
		fail = min(fail, att)
		perm = min(perm, fail)
		return tenantCounts{att: att, fail: fail, perm: perm, fresh: fail, freshPerm: perm}
	}
	win = capped(e.tenantWindow(t))
	k := int32(c.CurEpoch&1) * 4
	if w := c.TWin[t*8+k : t*8+k+4]; w[0] == int32(c.CurEpoch) {
		cur = capped(w[1], w[2], w[3])
	}
	return win, cur, n
}

// tenantSignificant applies the significance test to tenant t before a
// tenant incident opens over it, with the tenant's distinct counts. It
// returns the distinct counts and false if the failures are within what
// background losses explain.
func (e *Engine) tenantSignificant(t int32) (att, fail, perm int32, pv float64, ok bool) {
	win, cur, atRisk, remote := e.tenantDistinct(t)
	if remote {
		win, cur, atRisk = e.tenantCapped(t)
	}
	meets := func(w tenantCounts) bool {
		return w.fail >= int32(e.cfg.TenantMinFailing) && float64(w.fail) >= e.cfg.TenantShare*float64(w.att)
	}
	w := win
	if !meets(w) {
		// The current epoch alone, so that an onset is not diluted by
		// the successes of the previous epoch.
		if w = cur; !meets(w) {
			return win.att, win.fail, win.perm, 1, false
		}
	}
	pv = e.tenantPValue(e.c.TProv[t], w, atRisk)
	return w.att, w.fail, w.perm, pv, pv <= e.cfg.TenantMaxPValue
}

// supersede closes the detected tenant incident old in favour of the
// operator's declared incident in over the same tenant, which adopts its
// paused members (openIncident already paused the tenant's failing
// inboxes under in). Nothing is recovered or acted on.
func (e *Engine) supersede(old, in *Incident, now int64) {
	c := &e.c
	e.timeline(old, now, fmt.Sprintf("superseded by the operator's incident %d", in.ID))
	e.resolve(old, now, false)
	for _, i := range old.members {
		c.H[i].Flags &^= fMember
		if c.H[i].St == sPaused {
			c.H[i].Flags |= fMember
			in.members = append(in.members, i)
			in.Affected++
		}
	}
	old.members = nil
	e.sink.IncidentChanged(in)
}

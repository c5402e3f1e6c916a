package holdfast

import (
	"strings"
	"time"
)

// Incident is trouble on a provider's side, opened by the health engine or
// declared by an operator, as stored and shown by the API. While an
// incident covers an inbox, nothing destructive happens to it.
type Incident struct {
	ID int64
	// Kind says what the incident is, and so what it does
	// (IncidentKind.Effects).
	Kind     IncidentKind
	Provider Provider
	// Tenant is the tenant (organisation or IMAP server) it covers, or
	// empty for the whole provider.
	Tenant     string
	OpenedAt   time.Time
	ResolvedAt time.Time // zero while open
	// EscalatedAt is when it had been open longer than its kind's bound
	// and was escalated to the operators (webhook incident.escalated,
	// metric holdfast_incidents_escalated, dashboard banner); zero while
	// it was not. Once set, it stays.
	EscalatedAt time.Time
	// Evidence says why it opened.
	Evidence string
	// Affected counts inboxes paused or held under it; Recovered counts
	// inboxes the recovery resumed after it closed.
	Affected  int
	Recovered int
	Timeline  []IncidentEntry
}

// Open reports whether the incident is still open.
func (in *Incident) Open() bool { return in.ResolvedAt.IsZero() }

// TimelineRetroactive begins the first timeline entry of a retroactive
// incident: one declared for a past window already over.
const TimelineRetroactive = "retroactive: "

// Retroactive reports whether the incident was declared for a past window
// already over, and so was stored resolved at once: the nodes that did not
// declare it re-verify their inboxes acted on inside the window.
func (in *Incident) Retroactive() bool {
	return in.Kind == IncidentDeclared && !in.Open() && len(in.Timeline) > 0 &&
		strings.HasPrefix(in.Timeline[0].What, TimelineRetroactive)
}

// Escalated reports whether the incident was escalated to the operators.
func (in *Incident) Escalated() bool { return !in.EscalatedAt.IsZero() }

// InScope reports whether inbox ib is in the incident's scope, open or
// resolved: same provider, and same tenant unless the incident is
// provider-wide. Tenants compare exactly, as the health engine groups
// them.
func (in *Incident) InScope(ib *Inbox) bool {
	return in.Provider == ib.Provider && (in.Tenant == "" || in.Tenant == ib.Tenant)
}

// Covers reports whether the incident, open, acts on inbox ib and its
// notices now: ib is in its scope and its kind mutes or holds the notices
// of ib's audience. admin asks for the inbox's administrator (an admin
// notice, or an inbox that needs its administrator): a tenant event does
// not cover those, they are what it asks for. It is the one rule by which
// notify mutes or holds a notice and the owners' status page says
// "nothing to do" (with IncidentEffects.NothingToDo); the dashboard's
// review of an incident takes InScope. The health engine, which works on
// indices, applies the same scope and kind table: an open incident pauses
// the inboxes of its scope when its kind's PausesInboxes is set.
func (in *Incident) Covers(ib *Inbox, admin bool) bool {
	if !in.Open() || !in.InScope(ib) {
		return false
	}
	e := in.Kind.Effects()
	if e.HoldsNotices {
		return true
	}
	if admin {
		return e.MutesAdminNotices
	}
	return e.MutesOwnerNotices
}

// Covering returns the first incident of incidents that covers inbox ib
// (see Incident.Covers), or nil.
func Covering(incidents []*Incident, ib *Inbox, admin bool) *Incident {
	for _, in := range incidents {
		if in.Covers(ib, admin) {
			return in
		}
	}
	return nil
}

// IncidentKind says what an incident is; IncidentKind.Effects says what
// it does. The values are stored and shown by the API as they are.
type IncidentKind string

// The incident kinds.
const (
	// IncidentProviderOutage: a provider-wide (or regional) failure.
	IncidentProviderOutage IncidentKind = "provider_outage"
	// IncidentTenantOutage: failures concentrated in one tenant (or IMAP
	// server) that also show successes or recoverable errors.
	IncidentTenantOutage IncidentKind = "tenant_outage"
	// IncidentTenantEvent: one tenant failing with permanent-class errors
	// only; held until verified as a real tenant-wide credential event.
	IncidentTenantEvent IncidentKind = "tenant_event"
	// IncidentDeclared: declared by an operator.
	IncidentDeclared IncidentKind = "declared"
	// IncidentNoticeStorm: the notice meta-guard tripped: more notices
	// were queued in the last hour than the provider's baseline allows.
	// Every notice of the provider is held (not delivered, re-checked
	// later) until the rate falls back or an operator resolves it. It
	// pauses no inbox and does not stop the budget. It reaches the service
	// like every incident (stored, listed, published); page on-call on it.
	IncidentNoticeStorm IncidentKind = "notice_storm"
)

// IncidentKinds lists the incident kinds.
var IncidentKinds = []IncidentKind{
	IncidentProviderOutage, IncidentTenantOutage, IncidentTenantEvent, IncidentDeclared, IncidentNoticeStorm,
}

// IncidentEffects is what an incident of one kind does while it is open.
type IncidentEffects struct {
	// PausesInboxes: the inboxes of its scope are paused (nothing
	// destructive happens to them), probed while it lasts and resumed by
	// the recovery ramp after; its scope counts as abnormal for the
	// guard's evidence.
	PausesInboxes bool
	// AwaitsVerification: the tenant's failures are only permanent-class;
	// it pauses nothing, holds the tenant's destructive actions, and turns
	// into a tenant outage once successes or recoverable errors show.
	AwaitsVerification bool
	// EndsByOperator: only an operator resolves it; the engine never
	// closes it as stalled.
	EndsByOperator bool
	// MutesOwnerNotices: the notices asking the owners of its inboxes to
	// reconnect are cancelled.
	MutesOwnerNotices bool
	// MutesAdminNotices: the notices asking its inboxes' administrators to
	// act are cancelled.
	MutesAdminNotices bool
	// HoldsNotices: the notices of its inboxes are held (kept pending and
	// tried again) rather than cancelled.
	HoldsNotices bool
	// NothingToDo: the owners' status page tells the owners of its inboxes
	// that nothing is needed, it resumes by itself.
	NothingToDo bool
}

// incidentEffects is the table of what each kind does.
var incidentEffects = map[IncidentKind]IncidentEffects{
	IncidentProviderOutage: {PausesInboxes: true, MutesOwnerNotices: true, MutesAdminNotices: true, NothingToDo: true},
	IncidentTenantOutage:   {PausesInboxes: true, MutesOwnerNotices: true, MutesAdminNotices: true, NothingToDo: true},
	IncidentDeclared:       {PausesInboxes: true, EndsByOperator: true, MutesOwnerNotices: true, MutesAdminNotices: true, NothingToDo: true},
	IncidentTenantEvent:    {AwaitsVerification: true, MutesOwnerNotices: true},
	IncidentNoticeStorm:    {HoldsNotices: true},
}

// Effects returns what an incident of kind k does; an unknown kind does
// nothing.
func (k IncidentKind) Effects() IncidentEffects { return incidentEffects[k] }

// Valid reports whether k is a known incident kind.
func (k IncidentKind) Valid() bool {
	_, ok := incidentEffects[k]
	return ok
}

// IncidentEntry is one step of an incident's timeline.
type IncidentEntry struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// HeldAction is a destructive move (to needs_reconnect or needs_admin) the
// guard did not allow, waiting for the budget, the end of an incident or an
// operator's release.
type HeldAction struct {
	ID       int64
	InboxID  string
	Provider Provider
	Tenant   string
	To       State
	Reason   string
	// Why says what held it.
	Why    HeldReason
	HeldAt time.Time
	// Done is set once the action was taken, released or cancelled;
	// Outcome says which.
	Done     bool
	Outcome  HeldOutcome
	ClosedAt time.Time
}

// HeldReason says why the guard held a destructive action. The values are
// stored and shown by the API as they are.
type HeldReason string

// The held-action reasons.
const (
	// HeldForBudget: the provider's or the tenant's budget of destructive
	// actions is spent.
	HeldForBudget HeldReason = "budget"
	// HeldForIncident: an incident covers the inbox.
	HeldForIncident HeldReason = "incident"
)

// HeldOutcome says how a held action ended. The values are stored and
// shown by the API as they are.
type HeldOutcome string

// The held-action outcomes.
const (
	// HeldTaken: the budget allowed it and no incident covered the inbox
	// any more: the engine took it.
	HeldTaken HeldOutcome = "taken"
	// HeldReleased: an operator released it; the engine took it.
	HeldReleased HeldOutcome = "released by operator"
	// HeldCancelledLeftSuspect: the inbox was no longer suspect.
	HeldCancelledLeftSuspect HeldOutcome = "cancelled: inbox left suspect"
	// HeldCancelledEvidenceOverlaps: the evidence overlaps a time the
	// provider or tenant was not normal; confirmation starts again.
	HeldCancelledEvidenceOverlaps HeldOutcome = "cancelled: evidence overlaps an incident"
	// HeldCancelledRecovered: the inbox recovered.
	HeldCancelledRecovered HeldOutcome = "cancelled: recovered"
	// HeldCancelledIncident: an incident paused the inbox.
	HeldCancelledIncident HeldOutcome = "cancelled: incident"
	// HeldCancelledTenantEvent: a tenant event opened over the inbox's
	// tenant; it holds the tenant's actions itself.
	HeldCancelledTenantEvent HeldOutcome = "cancelled: tenant event"
	// HeldCancelledRetroactive: a retroactive incident covers the time
	// the evidence was gathered.
	HeldCancelledRetroactive HeldOutcome = "cancelled: retroactive incident"
)

// Notice is a decision of the health engine that an inbox's owner (or,
// with Admin, its administrator) must be told to act. (InboxID, Episode) is
// its idempotency key: one episode of trouble gets one notice.
type Notice struct {
	ID      int64
	InboxID string
	Episode int64
	Admin   bool
	Reason  string
	At      time.Time
}

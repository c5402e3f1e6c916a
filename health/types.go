package health

import (
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

// Op is the kind of request an outcome comes from.
type Op uint8

// The request kinds.
const (
	// OpSync fetches new mail (after refreshing the access token if needed).
	OpSync Op = iota
	// OpSend sends one message.
	OpSend
	// OpProbe is a cheap authenticated request that only checks access.
	OpProbe
	// OpRefresh refreshes an access token or logs in.
	OpRefresh
)

// Outcome is the result of one provider request for one inbox.
type Outcome struct {
	Op Op
	OK bool
	// Verdict is the classifier's verdict on the error; nil when OK. The
	// engine only reads it, so callers may share one verdict between
	// outcomes (classify.Classify is pure).
	Verdict *classify.Verdict
}

// Decision is what the engine concluded from one outcome.
type Decision struct {
	State holdfast.State
	// RetryAt is when the caller should try the inbox again (backoff,
	// confirmation check, Retry-After); zero means "on its normal schedule,
	// or when the engine grants it".
	RetryAt time.Time
}

// Admission says whether a request may be made for an inbox now.
type Admission uint8

// The admissions.
const (
	// Allow: make the request.
	Allow Admission = iota
	// Defer: not now; the engine will ask for it (RetryAt, a Grant) later.
	Defer
	// Hold: keep the send queued; it goes out when the inbox is back
	// (the caller releases held sends when the inbox returns to connected).
	Hold
	// Fail: report the send as failed to its author (the inbox needs its
	// owner or an administrator).
	Fail
)

// String returns the admission's name.
func (a Admission) String() string {
	return [...]string{"allow", "defer", "hold", "fail"}[a]
}

// Transition is one move of an inbox between states, to be written to the
// inbox event log.
type Transition struct {
	Inbox    int32
	At       time.Time
	From, To holdfast.State
	Reason   holdfast.Reason
	Cause    holdfast.Cause
	// Incident is the incident that caused the move, or 0.
	Incident int64
}

// Notice is a "please reconnect" (or, with Admin, a "please restore the
// app's access") notification that passed its delivery-time re-check and
// must be delivered now. (Inbox, Episode) is its idempotency key.
type Notice struct {
	Inbox   int32
	Tenant  int32
	Admin   bool
	Episode uint32
	At      time.Time
	Reason  holdfast.Reason
}

// Grant lets the caller make requests for a paused inbox now: a recovery
// (refresh and sync, then resume) or, with Probe, one probe: an incident
// probe, a canary's probe, or the re-verification of an inbox whose notice
// the meta-guard holds (any state: make one cheap authenticated request
// and Observe it).
type Grant struct {
	Inbox int32
	Probe bool
	At    time.Time
}

// HeldAction is a destructive move (to needs_reconnect or needs_admin) that
// the guard did not allow: the budget was spent or an incident covers the
// inbox. Operators list and release them; the engine drains them by itself
// when the budget allows and no incident covers the inbox.
type HeldAction struct {
	ID       int64
	Inbox    int32
	Provider holdfast.Provider
	Tenant   int32
	To       holdfast.State
	Reason   holdfast.Reason
	HeldAt   time.Time
	// Why says what held it.
	Why holdfast.HeldReason
	// Done is set when the action was taken, released or cancelled;
	// Outcome says which.
	Done     bool
	Outcome  holdfast.HeldOutcome
	ClosedAt time.Time
}

// Sink receives the engine's decisions, for the owner to persist and act
// on. Calls happen synchronously inside Observe, Tick and the operator
// methods; implementations must not call back into the engine.
type Sink interface {
	Transition(Transition)
	// IncidentChanged reports an incident that opened, changed or resolved.
	// The pointer is the engine's; copy what you keep.
	IncidentChanged(*Incident)
	HeldChanged(HeldAction)
	Notice(Notice)
	Grant(Grant)
}

// NopSink discards every decision.
type NopSink struct{}

// Transition implements Sink.
func (NopSink) Transition(Transition) {}

// IncidentChanged implements Sink.
func (NopSink) IncidentChanged(*Incident) {}

// HeldChanged implements Sink.
func (NopSink) HeldChanged(HeldAction) {}

// Notice implements Sink.
func (NopSink) Notice(Notice) {}

// Grant implements Sink.
func (NopSink) Grant(Grant) {}

// Incident is trouble on the provider's side that the engine (or an
// operator) declared.
type Incident struct {
	ID       int64
	Kind     holdfast.IncidentKind
	Provider holdfast.Provider
	// Tenant is the tenant index, or -1 for the whole provider.
	Tenant     int32
	OpenedAt   time.Time
	ResolvedAt time.Time // zero while open
	// EscalatedAt is when it had been open longer than its kind's bound
	// (Config.EscalateAfter) and was escalated to the operators; zero
	// while it has not.
	EscalatedAt time.Time
	// Evidence explains why it opened.
	Evidence string
	Timeline []TimelineEntry
	// Affected counts inboxes paused (or held) under it; for a
	// notice_storm, the notices it held.
	Affected int
	// Recovered counts inboxes back to connected from paused under it:
	// by a probe while it is open, or through its recovery ramp after it
	// closed.
	Recovered int

	prov    uint8
	members []int32
	cursor  int
	// probe ring: results per ProbeEvery slot
	probeOK, probeN []int32
	okSeen, recSeen int
	// probeFail and probePerm count its failed probes since it opened,
	// and the permanent-class ones among them (escalateTenant).
	probeFail, probePerm int
	closeWin             int64
	healthySince         int64
	// settleAt is when the evidence said it was over (Config.Settle), or
	// 0; lastBad is the last probe tick its scope was not healthy.
	// caughtTo is the lastBad the last catch-up covered (queueCatchUp).
	settleAt, lastBad, caughtTo int64
	// dirty: Recovered grew after it closed; Tick reports it once.
	dirty bool
	// copy: another node stored the incident (Reverify); its changes are
	// never reported.
	copy bool
	// remotePaused is the other nodes' paused members in the latest bucket
	// of their counters merged (remoteBucket), on the leader.
	remotePaused int32
	remoteBucket int64
	// canaryHeldBucket is the latest bucket in which another node's
	// canary held it open (IncidentProbes.CanaryHold), on the leader.
	canaryHeldBucket int64
}

// Open reports whether the incident is still open.
func (in *Incident) Open() bool { return in.ResolvedAt.IsZero() }

// TimelineEntry is one step of an incident's life.
type TimelineEntry struct {
	At   time.Time
	What string
}

// Declaration is an operator's incident declaration.
type Declaration struct {
	Provider holdfast.Provider
	// Tenant is the tenant index, or -1 for the whole provider.
	Tenant int32
	// Start defaults to now. A start in the past re-verifies every inbox of
	// the scope that was moved to needs_reconnect or needs_admin since then.
	Start time.Time
	// End, if set, declares a past window that is already over
	// (retroactive incident): it is recorded resolved, and the inboxes acted
	// on inside it are re-verified and restored if their credential works.
	End  time.Time
	Note string
}

package health

import (
	"time"

	"github.com/holdfast/holdfast"
)

// Policy selects how the engine treats permanent-class verdicts.
type Policy uint8

// The policies.
const (
	// PolicyHoldfast confirms permanent-class verdicts over time and across
	// the fleet, guards destructive actions and recovers by itself.
	PolicyHoldfast Policy = iota
	// PolicyNaive reproduces the 2025-03-01 incident: any permanent-class
	// error disconnects the inbox at once and notifies its owner at once; no
	// outage detection, no budget, nothing reconnects by itself. It exists
	// for the simulator's comparison only.
	PolicyNaive
)

// Config holds the engine's parameters. DefaultConfig documents why each
// default was chosen; docs/health-engine.md has the full rationale.
type Config struct {
	Policy Policy
	// Seed seeds the engine's own random numbers (backoff jitter, probe
	// choice), so that runs are reproducible.
	Seed uint64
	// DisableDetectors turns off every automatic incident: the provider
	// detector (share, panic, elevated tier), the tenant detector and the
	// canaries. Only the guard's budget, the notice meta-guard and the
	// operators remain. It exists for tests of those last defences
	// (anchors test 7); never set it in production.
	DisableDetectors bool

	// KeepAlive is how long an inbox may go without any request before the
	// owner should make a cheap authenticated probe. It bounds how long a
	// lost credential stays unnoticed.
	KeepAlive time.Duration
	// BackoffBase and BackoffCap shape the full-jitter backoff of degraded
	// inboxes: sleep = rand(0, min(cap, base·2^attempt)).
	BackoffBase, BackoffCap time.Duration
	// ConfirmCount permanent-class failures in a row, spanning at least
	// ConfirmSpan, with the provider and tenant normal throughout, confirm a
	// lost credential. ConfirmStep spaces the confirmation checks.
	ConfirmCount int
	ConfirmSpan  time.Duration
	ConfirmStep  time.Duration
	// SoftRetry is how often an inbox that needs its owner is re-verified
	// (soft disconnect: tokens are kept, it reconnects by itself if the
	// credential works again).
	SoftRetry time.Duration

	// Bucket is the detector's time resolution; Windows is the long window
	// in buckets and ShortWindow the short one.
	Bucket      time.Duration
	LongWindow  int
	ShortWindow int
	// MinShare is the lowest share of attempting inboxes that must fail
	// (permanent-class or recoverable, not throttled) in both windows to
	// open a provider incident; the threshold is max(MinShare,
	// BaselineMult × learned baseline).
	MinShare     float64
	BaselineMult float64
	// BaselineFloor floors the learned baseline; BaselineAlpha is its EWMA
	// weight per bucket.
	BaselineFloor, BaselineAlpha float64
	// MinFailing is the least number of failing inboxes in the long window.
	MinFailing int
	// MinTenants is the breadth test: failing tenants in the short window
	// (capped at a tenth of the provider's tenants).
	MinTenants int
	// MaxTopTenantShare is the concentration test: the biggest failing
	// tenant may hold at most this share of the failures.
	MaxTopTenantShare float64
	// PanicShare of a provider's inboxes suspect or paused freezes it.
	PanicShare float64
	// ElevatedFactor: a long-window share above threshold/ElevatedFactor
	// marks the provider elevated (not normal): confirmations restart and
	// the budget is cut tenfold.
	ElevatedFactor float64

	// TenantEpoch is the tenant window's half length (the window is two
	// epochs). TenantMinFailing inboxes and TenantShare of the attempting
	// ones must fail to open a tenant incident.
	TenantEpoch      time.Duration
	TenantMinFailing int
	TenantShare      float64
	// TenantVerify is how long a tenant incident with only permanent-class
	// errors, no success and no recoverable error is watched before it is
	// accepted as a real tenant-wide credential event.
	TenantVerify time.Duration
	// MaxVerifiedTenantShare: a tenant larger than this share of its
	// provider is never accepted as a tenant event automatically; it stays
	// held for an operator.
	MaxVerifiedTenantShare float64
	// TenantBackgroundLoss is the least background rate of real
	// credential losses assumed per inbox and day (the learned rate is
	// used when higher); TenantCoincidence is the time within which
	// independent losses are taken to coincide. The tenant rule opens an
	// incident only when the tenant's distinct failing inboxes are
	// unlikely under that background: P(Binomial(n, q) ≥ k) ≤
	// TenantMaxPValue, with n the tenant's inboxes that can still lose
	// their credential, k those failing now and q the chance that one of
	// them lost it within TenantCoincidence (or failed by the provider's
	// learned failing share). Coincident losses in a small tenant are not
	// a tenant outage.
	TenantBackgroundLoss float64
	TenantCoincidence    time.Duration
	TenantMaxPValue      float64
	// TenantEscalateAfter bounds a tenant incident while the rest of its
	// provider is healthy: at that age it is closed and its tenant is
	// re-verified inbox by inbox; those still failing permanent-class go
	// to needs_reconnect and their held sends fail (docs/health-engine.md,
	// "Tenant escalation"). Zero turns the rule off.
	TenantEscalateAfter time.Duration

	// ProbeEvery and ProbeCount: during an incident, ProbeCount paused
	// inboxes of its scope are probed every ProbeEvery.
	ProbeEvery time.Duration
	ProbeCount int
	// CloseWindow of probes with at least CloseMinProbes and CloseOKShare
	// successes closes an incident that has been open MinHold. Each reopen
	// within ReopenMemory doubles the window, up to MaxCloseWindow.
	CloseWindow, MaxCloseWindow time.Duration
	CloseMinProbes              int
	CloseOKShare                float64
	MinHold                     time.Duration
	// StallAfter and StallFor: an incident open StallAfter whose probes
	// still fail while the rest of its scope has been healthy for StallFor
	// is closed, and its inboxes are confirmed one by one under the budget.
	StallAfter, StallFor time.Duration
	// StallMaxShare: only an incident holding at most this share of its
	// provider's inboxes can stall; a bigger one stays frozen for on-call.
	StallMaxShare float64
	// ReleaseOKShare: a member whose probe fails permanently while at
	// least this share of its incident's probes succeed is released and
	// judged on its own.
	ReleaseOKShare float64
	ReopenMemory   time.Duration
	// Settle is how long an incident stays open, its scope healthy, after
	// the evidence says it is over (probes succeed, or nothing is left to
	// probe): its inboxes are resumed at once by the recovery ramp, but
	// failures that return within Settle continue the same incident (one
	// episode to the owners, one incident ID) instead of opening a new one.
	// At the end, the inboxes resumed before the last failure of the
	// episode are synced once more (push was lost while the scope failed).
	Settle time.Duration
	// EscalateOutage, EscalateDeclared and EscalateNoticeStorm are the
	// longest an incident of each kind stays open before it escalates:
	// detected provider and tenant incidents (tenant_outage, tenant_event),
	// operators' declarations, and notice storms. An escalated incident
	// keeps what it does; it is marked (EscalatedAt), logged, stored and
	// announced, so that an operator sees it and decides. Zero never
	// escalates.
	EscalateOutage, EscalateDeclared, EscalateNoticeStorm time.Duration
	// SendHoldMax is the longest a send is held past its due time while
	// its inbox is paused, degraded or suspect: its holder then fails it
	// with a reason (holdfast.SendReasonHeldTooLong) rather than holding
	// it for ever.
	SendHoldMax time.Duration
	// Lookback: when an incident opens, actions taken since start −
	// Lookback inside its scope are undone.
	Lookback time.Duration

	// CanaryMinFailing canaries of a provider failing permanent-class
	// within CanaryWindow open a provider incident (anchors §2.2 (B)).
	// Every CanaryEvery each canary is granted a probe, so that the window
	// always holds fresh evidence. A provider incident does not close while
	// a canary that started failing around it still fails.
	CanaryMinFailing int
	CanaryWindow     time.Duration
	CanaryEvery      time.Duration

	// MetaGuardMin and MetaGuardFactor: when the notices queued for
	// delivery in the last hour for a provider exceed max(MetaGuardMin,
	// MetaGuardFactor × learned hourly baseline), every notice of the
	// provider is held and a notice_storm incident opens (anchors §2.5).
	MetaGuardMin    int
	MetaGuardFactor float64

	// ProviderBudgetPerHour is the floor of the provider's hourly budget of
	// moves to a state that asks someone to act; ProviderBudgetShare of its
	// inboxes per hour raises it for large fleets.
	ProviderBudgetPerHour int
	ProviderBudgetShare   float64
	// TenantBudgetPerHour and TenantBudgetShare are the same per tenant.
	TenantBudgetPerHour int
	TenantBudgetShare   float64

	// The recovery ramp grants recoveries at a rate (inboxes per second)
	// that probes the provider's capacity, as TCP's slow start and BBR do;
	// docs/health-engine.md §5 has the rules and why.
	//
	// RampStart floors the first rate; RampStartShare of the provider's
	// learned baseline request rate raises it (a recovery costs about two
	// requests, so a half starts at about the load the provider carried
	// before the outage, which it is known to accept).
	RampStart      float64
	RampStartShare float64
	// RampEvery is the step of the ramp: the rate grows ×RampGrowth every
	// RampEvery until the first throttling (slow start).
	RampEvery  time.Duration
	RampGrowth float64
	// RampThrottleShare: a second in which at least this share of all the
	// provider's requests were throttled is congestion. The provider
	// accepted what was not throttled: that is its capacity for us now,
	// and the rate is cut so that all of the provider's requests come to
	// the target (by at most ×RampBackoff at once). The target leaves a
	// margin below the capacity: 1−RampHeadroom of it, or RampNoise
	// standard deviations of the rest of the traffic (Poisson: the
	// square root of its rate), whichever is larger.
	RampThrottleShare float64
	RampHeadroom      float64
	RampNoise         float64
	RampBackoff       float64
	// RampProbe: after the first throttling, the capacity estimate grows
	// by this share every RampEvery without throttling, and the rate
	// follows it, so that the ramp finds capacity the provider regains.
	RampProbe float64
	// RampMaxFactor caps the recovery rate (inboxes per second) at this
	// multiple of the provider's learned baseline request rate: a guard
	// for a provider that slows down instead of throttling.
	RampMaxFactor float64

	// NoticeGrace is how long a reconnect notice waits before its
	// delivery-time re-check; NoticeTTL drops it if it could not go out.
	NoticeGrace, NoticeTTL time.Duration
	// RecheckPerSec caps the re-verifications granted half-way through
	// the grace period, per second over all providers, so that a tenant's
	// verified mass revocation is not re-tried in one burst.
	RecheckPerSec int
}

// DefaultConfig returns the parameters holdfast runs with.
func DefaultConfig() Config {
	t := holdfast.DefaultHealthTuning()
	return Config{
		Policy:       PolicyHoldfast,
		Seed:         1,
		KeepAlive:    t.KeepAlive,
		BackoffBase:  15 * time.Second,
		BackoffCap:   15 * time.Minute,
		ConfirmCount: 3,
		ConfirmSpan:  t.ConfirmSpan,
		ConfirmStep:  4 * time.Minute,
		SoftRetry:    24 * time.Hour,

		Bucket:            t.Bucket,
		LongWindow:        30,
		ShortWindow:       holdfast.HealthShortWindow,
		MinShare:          0.03,
		BaselineMult:      10,
		BaselineFloor:     0.002,
		BaselineAlpha:     0.02,
		MinFailing:        20,
		MinTenants:        10,
		MaxTopTenantShare: 0.5,
		PanicShare:        0.5,
		ElevatedFactor:    3,

		TenantEpoch:            2 * time.Minute,
		TenantMinFailing:       3,
		TenantShare:            0.55,
		TenantVerify:           15 * time.Minute,
		MaxVerifiedTenantShare: 0.25,
		TenantBackgroundLoss:   0.01,
		TenantCoincidence:      time.Hour,
		TenantMaxPValue:        1e-9,
		TenantEscalateAfter:    90 * time.Minute,

		ProbeEvery:     5 * time.Second,
		ProbeCount:     10,
		CloseWindow:    t.CloseWindow,
		MaxCloseWindow: 10 * time.Minute,
		CloseMinProbes: 20,
		CloseOKShare:   0.9,
		ReleaseOKShare: 0.8,
		StallAfter:     45 * time.Minute,
		StallFor:       15 * time.Minute,
		StallMaxShare:  0.05,
		MinHold:        2 * time.Minute,
		ReopenMemory:   time.Hour,
		Settle:         t.Settle,

		EscalateOutage:      2 * time.Hour,
		EscalateDeclared:    4 * time.Hour,
		EscalateNoticeStorm: time.Hour,
		SendHoldMax:         2 * time.Hour,
		Lookback:            15 * time.Minute,

		CanaryMinFailing: 2,
		CanaryWindow:     2 * time.Minute,
		CanaryEvery:      30 * time.Second,

		MetaGuardMin:    50,
		MetaGuardFactor: 5,

		ProviderBudgetPerHour: 60,
		ProviderBudgetShare:   0.002,
		TenantBudgetPerHour:   5,
		TenantBudgetShare:     0.10,

		RampStart:         5,
		RampStartShare:    0.5,
		RampEvery:         time.Second,
		RampGrowth:        1.25,
		RampThrottleShare: 0.02,
		RampHeadroom:      0.95,
		RampNoise:         2,
		RampBackoff:       0.5,
		RampProbe:         0.01,
		RampMaxFactor:     10,

		NoticeGrace: t.NoticeGrace,
		NoticeTTL:   24 * time.Hour,

		RecheckPerSec: 20,
	}
}

// Tune returns c with an operator's tuning applied. ConfirmStep follows
// ConfirmSpan (2/5 of it, 4 min of the default 10), and MaxCloseWindow is
// at least CloseWindow. Validate t first (config does).
func (c Config) Tune(t holdfast.HealthTuning) Config {
	c.ConfirmSpan = t.ConfirmSpan
	c.ConfirmStep = t.ConfirmSpan * 2 / 5
	c.NoticeGrace = t.NoticeGrace
	c.KeepAlive = t.KeepAlive
	c.Bucket = t.Bucket
	c.CloseWindow = t.CloseWindow
	c.MaxCloseWindow = max(c.MaxCloseWindow, t.CloseWindow)
	c.Settle = t.Settle
	return c
}

// EscalateAfter returns how long an incident of kind k stays open before it
// escalates, or 0 for never.
func (c Config) EscalateAfter(k holdfast.IncidentKind) time.Duration {
	switch k {
	case holdfast.IncidentProviderOutage, holdfast.IncidentTenantOutage, holdfast.IncidentTenantEvent:
		return c.EscalateOutage
	case holdfast.IncidentDeclared:
		return c.EscalateDeclared
	case holdfast.IncidentNoticeStorm:
		return c.EscalateNoticeStorm
	}
	return c.EscalateOutage
}

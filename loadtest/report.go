package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// ReportVersion is the version of the JSON report's shape; it changes when
// a field is renamed or removed.
const ReportVersion = 1

// Report is what a load test found: its parameters, the phases, the
// measures, the criteria and the time series. Its JSON field names are
// stable.
type Report struct {
	Version   int         `json:"version"`
	Params    Params      `json:"params"`
	StartedAt time.Time   `json:"started_at"`
	Phases    []PhaseSpan `json:"phases"`
	Measures  Measures    `json:"measures"`
	Criteria  []Criterion `json:"criteria"`
	// Pass is true when every criterion passed.
	Pass    bool         `json:"pass"`
	Nodes   []NodeReport `json:"nodes"`
	Samples []Sample     `json:"samples"`
	// Notes says what could not be measured, and why.
	Notes []string `json:"notes"`
	// LogDir holds the processes' logs when they were kept.
	LogDir string `json:"log_dir,omitempty"`
}

// Params are the test's parameters as reported.
type Params struct {
	Nodes            int     `json:"nodes"`
	Inboxes          int     `json:"inboxes"`
	Microsoft        int     `json:"microsoft"`
	Google           int     `json:"google"`
	Tenants          int     `json:"tenants"`
	IntervalS        float64 `json:"interval_s"`
	SteadyS          float64 `json:"steady_s"`
	OutageS          float64 `json:"outage_s"`
	RecoveryMaxS     float64 `json:"recovery_max_s"`
	KillNode         int     `json:"kill_node"`
	KillAfterS       float64 `json:"kill_after_s"`
	MailRate         float64 `json:"mail_rate"`
	SendRate         float64 `json:"send_rate"`
	EmulatorRate     float64 `json:"emulator_rate"`
	CallsPerRecovery float64 `json:"calls_per_recovery"`
	CapEmulator      bool    `json:"cap_emulator"`
	LeasePeriodS     float64 `json:"lease_period_s"`
	Seed             uint64  `json:"seed"`
}

// paramsOf reports c.
func paramsOf(c Config) Params {
	ms, g := c.counts()
	return Params{Nodes: c.Nodes, Inboxes: c.Inboxes, Microsoft: ms, Google: g, Tenants: c.Tenants,
		IntervalS: c.Interval.Seconds(), SteadyS: c.Steady.Seconds(), OutageS: c.Outage.Seconds(),
		RecoveryMaxS: c.Recovery.Seconds(), KillNode: c.KillNode, KillAfterS: c.KillAfter.Seconds(),
		MailRate: c.MailRate, SendRate: c.SendRate, EmulatorRate: c.EmulatorRate,
		CallsPerRecovery: c.CallsPerRecovery, CapEmulator: c.CapEmulator, LeasePeriodS: c.LeasePeriod.Seconds(), Seed: c.Seed}
}

// Phase names a part of the timeline.
type Phase string

// The phases.
const (
	PhaseSetup    Phase = "setup"
	PhaseSteady   Phase = "steady"
	PhaseOutage   Phase = "outage"
	PhaseRecovery Phase = "recovery"
	PhaseDrain    Phase = "drain"
)

// PhaseSpan is when a phase ran, in seconds from the start of the steady
// phase.
type PhaseSpan struct {
	Name   Phase   `json:"name"`
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
}

// Measures are the numbers a run produced. A pointer is nil when the
// quantity could not be measured (see Report.Notes).
type Measures struct {
	// SyncsPerSecond is the incremental syncs per second the fleet did in
	// steady state; SyncsPerSecondTarget is inboxes ÷ interval.
	SyncsPerSecond       float64 `json:"syncs_per_second"`
	SyncsPerSecondTarget float64 `json:"syncs_per_second_target"`
	SteadySyncs          int64   `json:"steady_syncs"`
	// StaleInboxesMax is the most inboxes seen, at one time in steady
	// state, whose last sync was more than two intervals old.
	StaleInboxesMax int `json:"stale_inboxes_max"`
	// SyncLagP50S and SyncLagP99S: mail arrival at the provider to its
	// message.received webhook, over the steady phase's mail.
	SyncLagP50S *float64 `json:"sync_lag_p50_s"`
	SyncLagP99S *float64 `json:"sync_lag_p99_s"`
	LagSamples  int      `json:"lag_samples"`
	// CPUSecondsPer1000Syncs is the nodes' CPU time in steady state per
	// thousand syncs.
	CPUSecondsPer1000Syncs *float64 `json:"cpu_seconds_per_1000_syncs"`
	// PGWritesPerSync is the rows inserted, updated and deleted in the
	// run's schema per sync in steady state; PGCommitsPerSync the
	// database's commits per sync.
	PGWritesPerSync  *float64 `json:"pg_writes_per_sync"`
	PGCommitsPerSync *float64 `json:"pg_commits_per_sync"`
	// DuplicateSyncs is the syncs of an inbox by two nodes in one
	// interval; DuplicateSyncsExact is false when it is estimated from
	// the sync counts (syncs beyond inboxes × steady ÷ interval) because
	// the emulator does not count them.
	DuplicateSyncs      int64 `json:"duplicate_syncs"`
	DuplicateSyncsExact bool  `json:"duplicate_syncs_exact"`
	// ExpectedSyncs is inboxes × steady ÷ interval.
	ExpectedSyncs int64 `json:"expected_syncs"`
	// TakeoverS is the kill to no partition leased to the dead node.
	TakeoverS *float64 `json:"takeover_s"`
	// DetectionS is the outage start to the first incident opened.
	DetectionS *float64 `json:"detection_s"`
	// WrongfulDisconnects is the inboxes ever seen in needs_reconnect or
	// needs_admin (no grant is revoked in a load test).
	WrongfulDisconnects int `json:"wrongful_disconnects"`
	// AffectedInboxes is the most inboxes not connected at one time
	// during or after the outage.
	AffectedInboxes int `json:"affected_inboxes"`
	// RecoveryS is the outage's end to every inbox connected again;
	// CapacityBoundS is affected inboxes × calls per recovery ÷ the
	// emulator's rate, and at least one interval.
	RecoveryS      *float64 `json:"recovery_s"`
	CapacityBoundS float64  `json:"capacity_bound_s"`
	// Notices is the notice emails the relay received; NoticeEvents the
	// notice.sent webhook events.
	Notices      int `json:"notices"`
	NoticeEvents int `json:"notice_events"`
	// WebhookEvents is the distinct events received, WebhookDuplicates
	// the deliveries of an event already received, WebhookLost the
	// messages delivered to the provider without a message.received
	// event by the end of the drain.
	WebhookEvents     int `json:"webhook_events"`
	WebhookDuplicates int `json:"webhook_duplicates"`
	WebhookLost       int `json:"webhook_lost"`
	// MessagesDelivered is the mail delivered to the emulator;
	// MessagesDoubled the messages announced under two event IDs.
	MessagesDelivered int `json:"messages_delivered"`
	MessagesDoubled   int `json:"messages_doubled"`
	// SendsAccepted is the sends holdfast answered 202; SendsLost those
	// not at the emulator after the drain; SendsDuplicated the
	// Message-IDs the emulator received more than once.
	SendsAccepted   int `json:"sends_accepted"`
	SendsLost       int `json:"sends_lost"`
	SendsDuplicated int `json:"sends_duplicated"`
	// SendStates counts the accepted sends by their state in holdfast at
	// the end ("sent", "held/inbox_paused", ...): where the lost ones are.
	SendStates map[string]int `json:"send_states"`
}

// NodeReport is one node's steady-state figures.
type NodeReport struct {
	Index int    `json:"index"`
	ID    string `json:"id"`
	// Killed is true for the node killed mid-outage.
	Killed bool `json:"killed"`
	// RSSBytes is its resident memory at the end of the steady phase.
	RSSBytes float64 `json:"rss_bytes"`
	// OwnedInboxes is the inboxes of the partitions it leased then (all
	// of them when no partition was leased).
	OwnedInboxes int `json:"owned_inboxes"`
	// RSSPerInboxBytes is RSSBytes ÷ OwnedInboxes.
	RSSPerInboxBytes float64 `json:"rss_per_inbox_bytes"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	Syncs            int64   `json:"syncs"`
	// PartitionsOwned is holdfast_cluster_partitions_owned, -1 when the
	// node does not export it.
	PartitionsOwned float64 `json:"partitions_owned"`
}

// Sample is the fleet at one moment.
type Sample struct {
	// T is seconds from the start of the steady phase.
	T float64 `json:"t"`
	// SyncsPerSecond over the last sampling period, all nodes.
	SyncsPerSecond float64 `json:"syncs_per_second"`
	// LagP50S is the median sync lag of the messages announced in the
	// last sampling period, 0 when none.
	LagP50S float64 `json:"lag_p50_s"`
	// States counts the inboxes per state.
	States map[string]int `json:"states"`
	// RSSBytes per node index; 0 for a dead node.
	RSSBytes   []float64 `json:"rss_bytes"`
	NodesAlive int       `json:"nodes_alive"`
}

// Op is how a criterion compares its measure with its target.
type Op string

// The comparisons.
const (
	AtMost  Op = "<="
	AtLeast Op = ">="
)

// Criterion is one pass/fail check of a run.
type Criterion struct {
	Name   string  `json:"name"`
	Op     Op      `json:"op"`
	Target float64 `json:"target"`
	// Measured is nil when the quantity could not be measured, which
	// fails the criterion.
	Measured *float64 `json:"measured"`
	Unit     string   `json:"unit"`
	Pass     bool     `json:"pass"`
	// Why explains the target, or why it failed.
	Why string `json:"why"`
}

// check builds a criterion.
func check(name string, op Op, target float64, measured *float64, unit, why string) Criterion {
	c := Criterion{Name: name, Op: op, Target: target, Measured: measured, Unit: unit, Why: why}
	if measured != nil {
		switch op {
		case AtMost:
			c.Pass = *measured <= target
		case AtLeast:
			c.Pass = *measured >= target
		}
	} else {
		c.Why += " (not measured)"
	}
	return c
}

func ptr(v float64) *float64 { return &v }

// Evaluate checks the measures of a run of p against the criteria of
// issue 13. Criteria about the outage or the kill are left out when the
// run had none.
func Evaluate(p Params, m Measures) []Criterion {
	var out []Criterion
	out = append(out,
		check("syncs_per_second", AtLeast, round3(0.9*m.SyncsPerSecondTarget), ptr(round3(m.SyncsPerSecond)), "1/s",
			"at least 90% of inboxes ÷ interval in steady state"),
		check("inboxes_synced_every_two_intervals", AtMost, 0, ptr(float64(m.StaleInboxesMax)), "inboxes",
			"no inbox's last sync older than two intervals in steady state"))
	if m.DuplicateSyncsExact {
		out = append(out, check("duplicate_syncs", AtMost, 0, ptr(float64(m.DuplicateSyncs)), "syncs",
			"no inbox synced by two nodes in one interval (emulator's count)"))
	} else {
		out = append(out, check("duplicate_syncs", AtMost, math.Ceil(0.05*float64(m.ExpectedSyncs)), ptr(float64(m.DuplicateSyncs)), "syncs",
			"estimated: syncs beyond inboxes × steady ÷ interval, at most 5% of those"))
	}
	out = append(out, check("wrongful_disconnects", AtMost, 0, ptr(float64(m.WrongfulDisconnects)), "inboxes",
		"no inbox ever in needs_reconnect or needs_admin: no grant is revoked"))
	if p.OutageS > 0 {
		out = append(out,
			check("detection_s", AtMost, 60, m.DetectionS, "s", "an incident opened within 60 s of the outage's start"),
			check("recovery_s", AtMost, round3(1.25*m.CapacityBoundS), m.RecoveryS, "s",
				"every inbox connected within 1.25 × the capacity bound after the outage"),
			check("notices", AtMost, 0, ptr(float64(m.Notices+m.NoticeEvents)), "notices", "no owner told about the outage"))
	}
	if p.KillNode >= 0 {
		out = append(out, check("takeover_s", AtMost, 2*p.LeasePeriodS, m.TakeoverS, "s",
			"the dead node's partitions leased by others within two lease periods"))
	}
	out = append(out,
		check("sends_lost", AtMost, 0, ptr(float64(m.SendsLost)), "sends", "every accepted send at the provider after the drain"),
		check("sends_duplicated", AtMost, 0, ptr(float64(m.SendsDuplicated)), "sends", "no Message-ID sent twice"),
		check("webhook_events_lost", AtMost, 0, ptr(float64(m.WebhookLost)), "events", "every delivered message announced by message.received"))
	return out
}

// capacityBound is the seconds the emulator needs to serve the calls that
// bring affected inboxes back, and at least one sync interval (an inbox
// is only tried again on its next sync).
func capacityBound(affected int, callsPerRecovery, rate, interval float64) float64 {
	return round3(max(float64(affected)*callsPerRecovery/rate, interval))
}

// allPass reports whether every criterion passed.
func allPass(cs []Criterion) bool {
	for _, c := range cs {
		if !c.Pass {
			return false
		}
	}
	return true
}

// percentile returns the q-quantile (0 to 1) of xs by the nearest-rank
// method, or nil for no data. It sorts xs.
func percentile(xs []float64, q float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	slices.Sort(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	i = min(max(i, 0), len(xs)-1)
	return ptr(round3(xs[i]))
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// Summary writes one line per criterion, and the verdict.
func (r *Report) Summary(w io.Writer) {
	for _, c := range r.Criteria {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
		}
		measured := "n/a"
		if c.Measured != nil {
			measured = fmt.Sprintf("%g", *c.Measured)
		}
		fmt.Fprintf(w, "%s  %-36s %10s %s %g %s  (%s)\n", verdict, c.Name, measured, c.Op, c.Target, c.Unit, c.Why)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Pass {
		fmt.Fprintln(w, "loadtest: PASS")
	} else {
		fmt.Fprintln(w, "loadtest: FAIL")
	}
}

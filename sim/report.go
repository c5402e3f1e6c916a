package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast"
)

// Report is the simulator's output; see /work/shared/scenarios/README.md.
type Report struct {
	Scenario               string            `json:"scenario"`
	Policy                 string            `json:"policy"`
	Seed                   uint64            `json:"seed"`
	Inboxes                int               `json:"inboxes"`
	WrongfulDisconnects    int64             `json:"wrongful_disconnects"`
	TrueInvalidations      int64             `json:"true_invalidations"`
	DetectedInvalidations  int64             `json:"detected_invalidations"`
	InvalidationDetectionS Quantiles3        `json:"invalidation_detection_s"`
	NotificationsSent      int64             `json:"notifications_sent"`
	StaleNotifications     int64             `json:"stale_notifications"`
	Incidents              []*IncidentReport `json:"incidents"`
	FalseIncidents         int64             `json:"false_incidents"`
	// IncidentsLongestS is the longest an incident stayed open, in
	// seconds (one still open at the end counts to the end).
	IncidentsLongestS float64 `json:"incidents_longest_s"`
	// IncidentsEscalated counts incidents escalated to the operators
	// (open longer than their kind's bound).
	IncidentsEscalated int64      `json:"incidents_escalated"`
	MissedOutages      int64      `json:"missed_outages"`
	DetectionLatencyS  Quantiles2 `json:"detection_latency_s"`
	RecoveryS          Quantiles4 `json:"recovery_s"`
	Unrecovered        int64      `json:"unrecovered"`
	// RecoveryBoundS is the capacity bound of the outage with the largest
	// one, RecoveryRatio is recovery_s.p999 over it (an inbox of the
	// bound's work not recovered by the end counts with its wait at the
	// end), and RecoveryByOutage has both per outage
	// (docs/health-engine.md §8).
	RecoveryBoundS   *float64               `json:"recovery_bound_s"`
	RecoveryRatio    *float64               `json:"recovery_ratio"`
	RecoveryByOutage []OutageRecovery       `json:"recovery_by_outage"`
	RecoveryRequests RecoveryRequestsReport `json:"recovery_requests"`
	Sends            SendsReport            `json:"sends"`
	Mail             MailReport             `json:"mail"`
	ProviderRequests RequestsReport         `json:"provider_requests"`
	EventsProcessed  int64                  `json:"events_processed"`
	WallS            float64                `json:"wall_s"`
	PeakRSSMB        float64                `json:"peak_rss_mb"`
}

// Quantiles3 is {p50, p99, max}; null when there were no samples.
type Quantiles3 struct {
	P50 *float64 `json:"p50"`
	P99 *float64 `json:"p99"`
	Max *float64 `json:"max"`
}

// Quantiles2 is {p50, max}.
type Quantiles2 struct {
	P50 *float64 `json:"p50"`
	Max *float64 `json:"max"`
}

// Quantiles4 is {p50, p99, p999, max}.
type Quantiles4 struct {
	P50  *float64 `json:"p50"`
	P99  *float64 `json:"p99"`
	P999 *float64 `json:"p999"`
	Max  *float64 `json:"max"`
}

// IncidentReport is one incident the engine declared.
type IncidentReport struct {
	Provider     string   `json:"provider"`
	Scope        string   `json:"scope"`
	Kind         string   `json:"-"`
	OpenedAtS    float64  `json:"opened_at_s"`
	ResolvedAtS  *float64 `json:"resolved_at_s"`
	MatchedEvent *int     `json:"matched_event"`
	tenant       int32
	escalated    bool
}

// SendsReport scores sends.
type SendsReport struct {
	Due            int64 `json:"due"`
	OnTime         int64 `json:"on_time"`
	Late           int64 `json:"late"`
	Lost           int64 `json:"lost"`
	Duplicated     int64 `json:"duplicated"`
	FailedReported int64 `json:"failed_reported"`
	// HeldAtEnd counts sends due by the end, neither delivered nor
	// reported failed (still held or queued).
	HeldAtEnd int64      `json:"held_at_end"`
	LateS     Quantiles3 `json:"late_s"`
}

// MailReport scores incoming mail.
type MailReport struct {
	Arrived int64      `json:"arrived"`
	Synced  int64      `json:"synced"`
	Lost    int64      `json:"lost"`
	LagS    Quantiles3 `json:"lag_s"`
}

// RequestsReport counts provider requests.
type RequestsReport struct {
	Total             int64   `json:"total"`
	PeakPerS          int64   `json:"peak_per_s"`
	DuringOutagesPerS float64 `json:"during_outages_per_s"`
	BaselinePerS      float64 `json:"baseline_per_s"`
	// Throttled counts the requests a provider refused over its capacity;
	// ThrottleStormS the seconds in which a provider had throttled more
	// than 10% of its requests over the last 10 seconds.
	Throttled      int64 `json:"throttled"`
	ThrottleStormS int64 `json:"throttle_storm_s"`
}

// OutageRecovery is one outage's recovery against its capacity bound: the
// affected inboxes with a valid credential at its end, the requests their
// recovery takes (a sync each, and a refresh or login for an expired
// token), the provider's baseline request rate, the mean spare capacity
// over the bound, the bound (the shortest time the spare capacity answers
// those requests in), this outage's recovery p999 (an inbox not recovered
// by the end counting with its wait at the end) and their ratio.
type OutageRecovery struct {
	Event         int      `json:"event"`
	Provider      string   `json:"provider"`
	Inboxes       int64    `json:"inboxes"`
	Calls         int64    `json:"calls"`
	BaselinePerS  float64  `json:"baseline_per_s"`
	SparePerS     float64  `json:"spare_per_s"`
	BoundS        *float64 `json:"bound_s"`
	RecoveryP999S *float64 `json:"recovery_p999_s"`
	Ratio         *float64 `json:"ratio"`
}

// RecoveryRequestsReport counts the requests made for recovery grants and
// the throttled ones.
type RecoveryRequestsReport struct {
	Total          int64   `json:"total"`
	Throttled      int64   `json:"throttled"`
	ThrottledShare float64 `json:"throttled_share"`
}

// inFlight is how recent an unfinished mail or send may be at the end of
// the run and still count as in flight rather than lost.
const inFlight = 15 * 60

// finish computes the report from the run's counters.
func (r *run) finish() {
	rep := &r.rep
	rep.Scenario, rep.Policy, rep.Seed, rep.Inboxes = r.sc.Name, r.policy, r.sc.Seed, len(r.in)
	end := r.dur
	for i := range r.in {
		if int64(r.in[i].invalidAt) >= end {
			continue
		}
		rep.TrueInvalidations++
		if r.in[i].actedOn&2 != 0 {
			rep.DetectedInvalidations++
			r.detH.add(int64(r.detectedAt[i] - r.in[i].invalidAt))
		} else {
			r.detH.add(end - int64(r.in[i].invalidAt))
		}
	}
	rep.InvalidationDetectionS = Quantiles3{r.detH.q(0.5), r.detH.q(0.99), r.detH.q(1)}
	// Incidents: match to ground-truth events on the same provider that
	// overlap in time and scope.
	firstOpen := map[int]float64{}
	covered := map[int]bool{}
	for _, id := range r.incOrder {
		ir := r.incidents[id]
		rep.Incidents = append(rep.Incidents, ir)
		closeAt := float64(end)
		if ir.ResolvedAtS != nil {
			closeAt = *ir.ResolvedAtS
		}
		rep.IncidentsLongestS = max(rep.IncidentsLongestS, closeAt-ir.OpenedAtS)
		if ir.escalated {
			rep.IncidentsEscalated++
		}
		best := -1
		for k := range r.sc.Events {
			ev := &r.sc.Events[k]
			if ev.Provider != ir.Provider {
				continue
			}
			var s, e float64
			switch ev.Kind {
			case "outage", "throttle":
				s, e = float64(ev.Start.Seconds()), float64(ev.End.Seconds())
			case "revocation":
				s, e = float64(ev.At.Seconds()), float64(end)+1
			}
			if ir.OpenedAtS > e || closeAt < s || !r.scopeOverlaps(ir, k) {
				continue
			}
			if best < 0 || r.sc.Events[best].Kind != "outage" && ev.Kind == "outage" {
				best = k
			}
			if ev.Kind == "outage" {
				covered[k] = true
				if f, ok := firstOpen[k]; !ok || ir.OpenedAtS < f {
					firstOpen[k] = ir.OpenedAtS
				}
			}
		}
		if best >= 0 {
			b := best
			ir.MatchedEvent = &b
		} else {
			rep.FalseIncidents++
		}
	}
	if rep.Incidents == nil {
		rep.Incidents = []*IncidentReport{}
	}
	var lat hist
	for _, o := range r.outages {
		affected := false
		for i := range r.in {
			if r.in[i].affEvt >= 0 && int(r.in[i].affEvt) == o.idx {
				affected = true
				break
			}
		}
		if !affected {
			continue
		}
		if !covered[o.idx] {
			rep.MissedOutages++
			continue
		}
		lat.add(int64(firstOpen[o.idx]) - o.start)
	}
	rep.DetectionLatencyS = Quantiles2{lat.q(0.5), lat.q(1)}
	for i := range r.in {
		if r.in[i].affEvt < 0 || int64(r.in[i].invalidAt) < end {
			continue
		}
		if st := r.eng.State(int32(i)); !r.in[i].recovered || st != holdfast.StateConnected && st != holdfast.StateDegraded {
			rep.Unrecovered++
		}
	}
	rep.RecoveryS = Quantiles4{r.recH.q(0.5), r.recH.q(0.99), r.recH.q(0.999), r.recH.q(1)}
	held := make(map[int32]bool)
	for i := range r.in {
		for s := r.in[i].hHead; s >= 0; s = r.sNext[s] {
			held[s] = true
		}
	}
	for s := range r.sDue {
		if int64(r.sDue[s]) > end {
			continue
		}
		rep.Sends.Due++
		if r.sDeliv[s] == 0 && !r.sFailed[s] {
			rep.Sends.HeldAtEnd++
		}
		s := int32(s)
		switch {
		case r.sDeliv[s] > 0 && !r.sLate[s]:
		case r.sDeliv[s] > 0:
			// Delivered, but held past its deadline (SendHoldMax after it
			// was due): its author was neither served nor told in time.
			rep.Sends.Lost++
		case r.sFailed[s]:
			rep.Sends.FailedReported++
		case held[s] && int64(r.sDue[s])+r.holdMax > end:
			// Held for its inbox, its deadline still ahead: in flight.
		case !held[s] && int64(r.sDue[s]) > end-inFlight:
		default:
			// Held past its deadline, or neither held nor sent nor failed.
			rep.Sends.Lost++
		}
	}
	rep.Sends.LateS = Quantiles3{r.lateH.q(0.5), r.lateH.q(0.99), r.lateH.q(1)}
	for i := range r.in {
		for m := r.in[i].mHead; m >= 0; m = r.mNext[m] {
			// Mail of an inbox whose credential is gone waits in the
			// mailbox for the owner to reconnect: not lost.
			if int64(r.in[i].invalidAt) >= end && int64(r.mAt[m]) <= end-inFlight {
				rep.Mail.Lost++
			}
		}
	}
	rep.Mail.LagS = Quantiles3{r.lagH.q(0.5), r.lagH.q(0.99), r.lagH.q(1)}
	if r.outageSecs > 0 {
		rep.ProviderRequests.DuringOutagesPerS = round2(float64(r.outageReq) / float64(r.outageSecs))
	}
	if r.baseSecs > 0 {
		rep.ProviderRequests.BaselinePerS = round2(float64(r.baseReq) / float64(r.baseSecs))
	}
	rep.EventsProcessed = r.events
	r.bounds()
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// scopeOverlaps reports whether incident ir's scope meets event k's.
func (r *run) scopeOverlaps(ir *IncidentReport, k int) bool {
	if ir.tenant < 0 {
		return true
	}
	ev := &r.sc.Events[k]
	p := r.provByName(ev.Provider)
	// Any inbox of the tenant in the event's scope.
	for i := p.first; i < p.end; i++ {
		if r.eng.Tenant(i) != ir.tenant {
			continue
		}
		switch ev.Kind {
		case "outage":
			if r.outages[r.outOf[k]].member[i>>6]&(1<<(i&63)) != 0 {
				return true
			}
		case "revocation":
			if int64(r.in[i].invalidAt) <= ev.At.Seconds() {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// peakRSSMB reads the process's peak resident set size.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return round2(kb / 1024)
			}
		}
	}
	return 0
}

// lookup returns the numeric value of a report field path.
func lookup(rep *Report, path string) (*float64, error) {
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	var cur any = m
	for _, part := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not a report field", path)
		}
		cur, ok = mm[part]
		if !ok {
			return nil, fmt.Errorf("%s: not a report field", path)
		}
	}
	switch v := cur.(type) {
	case nil:
		return nil, nil
	case float64:
		return &v, nil
	}
	return nil, fmt.Errorf("%s: not a number", path)
}

// check prints each expect check and reports whether all passed.
func check(sc *Scenario, rep *Report, w io.Writer) bool {
	ok := true
	for _, path := range sortedKeys(sc.Expect) {
		b := sc.Expect[path]
		v, err := lookup(rep, path)
		if err != nil {
			fmt.Fprintf(w, "FAIL %s: %v\n", path, err)
			ok = false
			continue
		}
		bound := ""
		pass := true
		if b.Max != nil {
			bound += fmt.Sprintf(" max %g", *b.Max)
			pass = pass && (v == nil || *v <= *b.Max)
		}
		if b.Min != nil {
			bound += fmt.Sprintf(" min %g", *b.Min)
			pass = pass && v != nil && *v >= *b.Min
		}
		val := "null (no samples)"
		if v != nil {
			val = strconv.FormatFloat(*v, 'f', -1, 64)
		}
		word := "ok  "
		if !pass {
			word = "FAIL"
			ok = false
		}
		fmt.Fprintf(w, "%s %s = %s (want%s)\n", word, path, val, bound)
	}
	return ok
}

func fmtQ(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

// summary writes a readable summary of rep.
func summary(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "scenario %s, policy %s, seed %d, %d inboxes\n", rep.Scenario, rep.Policy, rep.Seed, rep.Inboxes)
	fmt.Fprintf(w, "  wrongful disconnects %d; invalidations %d true, %d detected (p50 %ss, p99 %ss, max %ss)\n",
		rep.WrongfulDisconnects, rep.TrueInvalidations, rep.DetectedInvalidations,
		fmtQ(rep.InvalidationDetectionS.P50), fmtQ(rep.InvalidationDetectionS.P99), fmtQ(rep.InvalidationDetectionS.Max))
	fmt.Fprintf(w, "  notifications %d sent, %d stale\n", rep.NotificationsSent, rep.StaleNotifications)
	fmt.Fprintf(w, "  incidents %d (%d false), missed outages %d, detection latency p50 %ss max %ss; longest %gs, %d escalated\n",
		len(rep.Incidents), rep.FalseIncidents, rep.MissedOutages, fmtQ(rep.DetectionLatencyS.P50), fmtQ(rep.DetectionLatencyS.Max),
		rep.IncidentsLongestS, rep.IncidentsEscalated)
	for k, in := range rep.Incidents {
		if k == 20 {
			fmt.Fprintf(w, "    ... and %d more (see the JSON report)\n", len(rep.Incidents)-20)
			break
		}
		res := "open"
		if in.ResolvedAtS != nil {
			res = strconv.FormatFloat(*in.ResolvedAtS, 'f', -1, 64)
		}
		m := "none"
		if in.MatchedEvent != nil {
			m = strconv.Itoa(*in.MatchedEvent)
		}
		fmt.Fprintf(w, "    %s %s %s: %gs → %ss, event %s\n", in.Provider, in.Scope, in.Kind, in.OpenedAtS, res, m)
	}
	fmt.Fprintf(w, "  recovery p50 %ss p99 %ss p999 %ss max %ss; unrecovered %d\n",
		fmtQ(rep.RecoveryS.P50), fmtQ(rep.RecoveryS.P99), fmtQ(rep.RecoveryS.P999), fmtQ(rep.RecoveryS.Max), rep.Unrecovered)
	fmt.Fprintf(w, "  recovery bound %ss, ratio %s (p999 / bound); recovery requests %d, %d throttled (%.2f%%)\n",
		fmtQ(rep.RecoveryBoundS), fmtQ(rep.RecoveryRatio), rep.RecoveryRequests.Total, rep.RecoveryRequests.Throttled,
		100*rep.RecoveryRequests.ThrottledShare)
	for _, o := range rep.RecoveryByOutage {
		fmt.Fprintf(w, "    event %d %s: %d inboxes, %d requests, baseline %.1f/s, spare %.1f/s: bound %ss, p999 %ss, ratio %s\n",
			o.Event, o.Provider, o.Inboxes, o.Calls, o.BaselinePerS, o.SparePerS, fmtQ(o.BoundS), fmtQ(o.RecoveryP999S), fmtQ(o.Ratio))
	}
	s := rep.Sends
	fmt.Fprintf(w, "  sends %d due: %d on time, %d late (p99 %ss), %d lost, %d duplicated, %d reported failed, %d held at the end\n",
		s.Due, s.OnTime, s.Late, fmtQ(s.LateS.P99), s.Lost, s.Duplicated, s.FailedReported, s.HeldAtEnd)
	fmt.Fprintf(w, "  mail %d arrived, %d synced, %d lost, lag p50 %ss p99 %ss max %ss\n",
		rep.Mail.Arrived, rep.Mail.Synced, rep.Mail.Lost, fmtQ(rep.Mail.LagS.P50), fmtQ(rep.Mail.LagS.P99), fmtQ(rep.Mail.LagS.Max))
	pr := rep.ProviderRequests
	fmt.Fprintf(w, "  requests %d, peak %d/s, during outages %.1f/s, baseline %.1f/s; %d throttled, throttle storm %d s\n",
		pr.Total, pr.PeakPerS, pr.DuringOutagesPerS, pr.BaselinePerS, pr.Throttled, pr.ThrottleStormS)
	fmt.Fprintf(w, "  %d events in %.1fs, peak RSS %.0f MB\n", rep.EventsProcessed, rep.WallS, rep.PeakRSSMB)
}

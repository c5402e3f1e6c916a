package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sampleEvery is the sampling period of the fleet's state.
const sampleEvery = 2 * time.Second

// counters are the fleet's cumulative counters at one moment.
type counters struct {
	at           time.Time
	syncs, cpu   float64
	tuples       int64
	commits      int64
	emuDup       int64
	emuDupOK     bool
	emuTopDup    []string
	perNodeSyncs []float64
	perNodeCPU   []float64
	pgOK         bool
}

// clock is the run's timeline: when each phase starts and ends.
type clock struct {
	steadyEnd, outageStart, outageEnd, killAt, recoveryDeadline time.Time
}

// timeline is the state of the phases while they run.
type timeline struct {
	f   *fleet
	hc  *http.Client
	rep *Report
	m   *Measures
	at  clock

	phase         Phase
	begin, end    counters // of the steady phase
	prev          counters // at the last sample
	steadyRSS     []float64
	faultIDs      []string
	faulted       bool
	killed        bool
	killedAt      time.Time
	deadLeases    int // the killed node's leases at the kill; -1 unknown
	leasesBefore  int // every live lease at the kill
	everNeeds     map[string]bool
	recovered     bool
	lagCursor     int
	nextSample    time.Time
	nextProgress  time.Time
	nextIncidents time.Time
}

// timeline runs the phases and measures them.
func (f *fleet) timeline(ctx context.Context) (*Report, error) {
	cfg := f.cfg
	// One node syncs an inbox every interval ±10%: two syncs closer than
	// 80% of it are two nodes' (or a sync asked for by hand).
	if err := f.emu.setDupWindow(ctx, cfg.Interval*8/10); err != nil && !errors.Is(err, errMissing) {
		return nil, err
	}
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	sendCtx, stopSends := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopTraffic()
		stopSends()
		wg.Wait()
	}()
	if cfg.CapEmulator {
		if err := f.capEmulator(ctx); err != nil {
			return nil, err
		}
	}
	f.t0 = time.Now()
	tl := f.newTimeline()
	switch err := f.emu.startTraffic(ctx, cfg.MailRate, cfg.Seed); {
	case err == nil:
		f.emuTraffic = true
	case errors.Is(err, errMissing):
		f.note("mail delivered by the load test, one POST /_emulator/mail each: the emulator has no traffic generator")
		wg.Go(func() { f.mail(trafficCtx) })
	default:
		return nil, fmt.Errorf("start traffic: %w", err)
	}
	wg.Go(func() { f.send(sendCtx) })

	tl.begin = f.counters(ctx, tl.hc)
	tl.prev = tl.begin
	for done := false; !done; {
		var err error
		if done, err = tl.step(ctx, stopSends); err != nil {
			return nil, err
		}
		if !done {
			if err := sleep(ctx, 250*time.Millisecond); err != nil {
				return nil, fmt.Errorf("loadtest: %w", err)
			}
		}
	}
	tl.notes()
	stopSends()
	stopTraffic()
	wg.Wait()
	if f.emuTraffic {
		if err := f.emu.stopTraffic(ctx); err != nil {
			return nil, fmt.Errorf("stop traffic: %w", err)
		}
	}
	if err := tl.drain(ctx); err != nil {
		return nil, err
	}
	return tl.finish(ctx)
}

// newTimeline sets the phases' times from f.t0.
func (f *fleet) newTimeline() *timeline {
	cfg := f.cfg
	tl := &timeline{f: f, hc: &http.Client{Timeout: 5 * time.Second}, phase: PhaseSteady, deadLeases: -1, everNeeds: map[string]bool{}}
	tl.at.steadyEnd = f.t0.Add(cfg.Steady)
	tl.at.outageStart, tl.at.outageEnd = tl.at.steadyEnd, tl.at.steadyEnd.Add(cfg.Outage)
	tl.at.killAt = tl.at.outageStart.Add(cfg.KillAfter)
	tl.at.recoveryDeadline = tl.at.outageEnd.Add(cfg.Recovery)
	tl.rep = &Report{Version: ReportVersion, Params: paramsOf(cfg), StartedAt: f.t0.UTC()}
	tl.m = &tl.rep.Measures
	tl.m.SyncsPerSecondTarget = round3(float64(len(f.inboxes)) / cfg.Interval.Seconds())
	tl.m.ExpectedSyncs = int64(float64(len(f.inboxes)) * cfg.Steady.Seconds() / cfg.Interval.Seconds())
	return tl
}

// since is t in seconds from the start of the steady phase.
func (tl *timeline) since(t time.Time) float64 { return round3(t.Sub(tl.f.t0).Seconds()) }

// step moves the timeline on: a phase change, the kill, the polls, a
// sample. It reports whether the recovery phase is over.
func (tl *timeline) step(ctx context.Context, stopSends func()) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("loadtest: %w", err)
	}
	cfg, now := tl.f.cfg, time.Now()
	switch {
	case tl.phase == PhaseSteady && !now.Before(tl.at.steadyEnd):
		if err := tl.endSteady(ctx, now); err != nil {
			return false, err
		}
	case tl.phase == PhaseOutage && cfg.KillNode >= 0 && !tl.killed && !now.Before(tl.at.killAt):
		tl.kill(ctx)
	case tl.phase == PhaseOutage && !now.Before(tl.at.outageEnd):
		if err := tl.endOutage(ctx, now); err != nil {
			return false, err
		}
		stopSends()
	}
	tl.pollTakeover(ctx)
	tl.pollDetection(ctx, now)
	if now.After(tl.nextSample) {
		tl.nextSample = now.Add(sampleEvery)
		if err := tl.sample(ctx, now); err != nil {
			return false, err
		}
		tl.checkRecovered(now)
	}
	if tl.phase != PhaseRecovery || !tl.recovered && !now.After(tl.at.recoveryDeadline) {
		return false, nil
	}
	// Keep going until the takeover is seen, within the deadline.
	if tl.killed && tl.deadLeases > 0 && tl.m.TakeoverS == nil && !now.After(tl.at.recoveryDeadline) {
		return false, nil
	}
	tl.rep.Phases = append(tl.rep.Phases, PhaseSpan{Name: PhaseRecovery, StartS: tl.since(tl.at.outageEnd), EndS: tl.since(now)})
	return true, nil
}

// endSteady reads the steady phase's counters and starts the outage, if
// there is one.
func (tl *timeline) endSteady(ctx context.Context, now time.Time) error {
	f := tl.f
	tl.end = f.counters(ctx, tl.hc)
	for _, n := range f.nodes {
		tl.steadyRSS = append(tl.steadyRSS, n.last.RSS)
	}
	tl.rep.Phases = append(tl.rep.Phases, PhaseSpan{Name: PhaseSteady, EndS: tl.since(now)})
	if f.cfg.Outage <= 0 {
		tl.phase = PhaseRecovery
		return nil
	}
	tl.phase = PhaseOutage
	for _, flt := range []map[string]any{
		{"provider": "microsoft", "surfaces": []string{"token", "graph"}, "http_status": 400, "body": outageBodyMicrosoft},
		{"provider": "google", "surfaces": []string{"google_token", "gmail"}, "http_status": 400, "body": outageBodyGoogle},
	} {
		id, err := f.emu.addFault(ctx, flt)
		if err != nil {
			return fmt.Errorf("start outage: %w", err)
		}
		tl.faultIDs = append(tl.faultIDs, id)
	}
	tl.faulted = true
	f.logf("outage starts: Microsoft token+graph AADSTS50173, Google token+gmail invalid_grant")
	return nil
}

// kill kills the node, noting the partition leases it held.
func (tl *timeline) kill(ctx context.Context) {
	n := tl.f.nodes[tl.f.cfg.KillNode]
	if l, err := tl.f.db.leasesOf(ctx, n.id); err == nil {
		tl.deadLeases = l
	}
	tl.leasesBefore, _ = tl.f.db.liveLeases(ctx)
	n.proc.kill()
	n.killed, tl.killed, tl.killedAt = true, true, time.Now()
	tl.f.logf("node %d (%s) killed; it held %d partition leases", n.index, n.id, tl.deadLeases)
}

// endOutage removes the faults.
func (tl *timeline) endOutage(ctx context.Context, now time.Time) error {
	for _, id := range tl.faultIDs {
		if err := tl.f.emu.removeFault(ctx, id); err != nil {
			return fmt.Errorf("end outage: %w", err)
		}
	}
	tl.faultIDs = nil
	tl.rep.Phases = append(tl.rep.Phases, PhaseSpan{Name: PhaseOutage, StartS: tl.since(tl.at.outageStart), EndS: tl.since(now)})
	tl.phase = PhaseRecovery
	tl.f.logf("outage ends")
	return nil
}

// pollTakeover sees whether the killed node's partitions are all leased
// by others.
func (tl *timeline) pollTakeover(ctx context.Context) {
	if !tl.killed || tl.m.TakeoverS != nil || tl.deadLeases <= 0 {
		return
	}
	held, err1 := tl.f.db.leasesOf(ctx, tl.f.nodes[tl.f.cfg.KillNode].id)
	all, err2 := tl.f.db.liveLeases(ctx)
	if err1 == nil && err2 == nil && held == 0 && all >= tl.leasesBefore {
		tl.m.TakeoverS = ptr(round3(time.Since(tl.killedAt).Seconds()))
		tl.f.logf("takeover: the dead node's partitions leased again after %.1fs", *tl.m.TakeoverS)
	}
}

// pollDetection looks for the first incident, every 2 s.
func (tl *timeline) pollDetection(ctx context.Context, now time.Time) {
	if !tl.faulted || tl.m.DetectionS != nil || now.Before(tl.nextIncidents) {
		return
	}
	tl.nextIncidents = now.Add(2 * time.Second)
	if at, ok := tl.f.firstIncident(ctx, tl.at.outageStart); ok {
		tl.m.DetectionS = ptr(round3(max(0, at.Sub(tl.at.outageStart).Seconds())))
		tl.f.logf("detection: first incident %.1fs after the outage's start", *tl.m.DetectionS)
	}
}

// checkRecovered notes when every inbox is connected in the recovery.
func (tl *timeline) checkRecovered(now time.Time) {
	if tl.phase != PhaseRecovery || tl.recovered {
		return
	}
	if last := tl.rep.Samples[len(tl.rep.Samples)-1]; last.States["connected"] != len(tl.f.inboxes) {
		return
	}
	tl.recovered = true
	if tl.f.cfg.Outage > 0 {
		tl.m.RecoveryS = ptr(round3(max(0, now.Sub(tl.at.outageEnd).Seconds())))
		tl.f.logf("recovery: every inbox connected %.1fs after the outage", *tl.m.RecoveryS)
	}
}

// sample records the fleet now, and prints the progress line every 5 s.
func (tl *timeline) sample(ctx context.Context, now time.Time) error {
	f, m := tl.f, tl.m
	c := f.counters(ctx, tl.hc)
	states, err := f.db.states(ctx)
	if err != nil {
		return err
	}
	ids, err := f.db.needsOwner(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		tl.everNeeds[id] = true
	}
	s := Sample{T: tl.since(now), States: states, NodesAlive: len(f.live())}
	if dt := c.at.Sub(tl.prev.at).Seconds(); dt > 0 {
		s.SyncsPerSecond = round3(max(0, c.syncs-tl.prev.syncs) / dt)
	}
	for _, n := range f.nodes {
		rss := 0.0
		if !n.killed {
			rss = n.last.RSS
		}
		s.RSSBytes = append(s.RSSBytes, rss)
	}
	lags := f.hooks.counts().lags
	var window []float64
	for _, l := range lags[tl.lagCursor:] {
		window = append(window, l.lag)
	}
	tl.lagCursor = len(lags)
	if p := percentile(window, 0.5); p != nil {
		s.LagP50S = *p
	}
	tl.rep.Samples = append(tl.rep.Samples, s)
	tl.prev = c
	switch tl.phase {
	case PhaseSteady:
		stale, err := f.db.stale(ctx, now.Add(-2*f.cfg.Interval))
		if err != nil {
			return err
		}
		m.StaleInboxesMax = max(m.StaleInboxesMax, stale)
	case PhaseOutage, PhaseRecovery:
		m.AffectedInboxes = max(m.AffectedInboxes, len(f.inboxes)-states["connected"])
	}
	if now.After(tl.nextProgress) {
		tl.nextProgress = now.Add(5 * time.Second)
		f.logf("%-8s t=%4.0fs syncs/s=%.1f (target %.1f) lag_p50=%.1fs nodes=%d/%d states %s",
			tl.phase, s.T, s.SyncsPerSecond, m.SyncsPerSecondTarget, s.LagP50S, s.NodesAlive, len(f.nodes), fmtStates(states))
	}
	return nil
}

// notes says what the phases could not measure.
func (tl *timeline) notes() {
	f := tl.f
	if !tl.recovered && f.cfg.Outage > 0 {
		f.note("not every inbox was connected %v after the outage", f.cfg.Recovery)
	}
	switch {
	case tl.killed && tl.deadLeases == 0:
		f.note("the killed node held no partition lease: serve does not lease partitions (not partition-aware)")
	case tl.killed && tl.deadLeases < 0:
		f.note("the partition leases could not be read")
	}
}

// drain waits, with no new mail or sends, for every message to be
// announced and every send to reach the emulator.
func (tl *timeline) drain(ctx context.Context) error {
	f, m := tl.f, tl.m
	tl.phase = PhaseDrain
	start := time.Now()
	limit := max(90*time.Second, 3*f.cfg.Interval)
	f.logf("drain: waiting up to %v for mail to be announced and sends to go out", limit)
	// It gives up early when nothing moved for stall, twice a held send's
	// retry (30 s) and at least an interval: what is missing then is lost
	// for good, or waits for something the drain will not see.
	stall := max(time.Minute, f.cfg.Interval)
	lastLost, lastUnannounced, moved := -1, -1, time.Now()
	for time.Since(start) < limit {
		lost, dup, err := f.checkSends(ctx)
		if err != nil {
			return err
		}
		m.SendsLost, m.SendsDuplicated = lost, dup
		unannounced := f.unannounced(ctx)
		if lost == 0 && unannounced == 0 {
			break
		}
		if lost != lastLost || unannounced != lastUnannounced {
			lastLost, lastUnannounced, moved = lost, unannounced, time.Now()
		} else if time.Since(moved) > stall {
			f.note("the drain stopped after %v without progress: %d sends missing, %d messages not announced", stall, lost, unannounced)
			break
		}
		if err := sleep(ctx, 3*time.Second); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
	}
	if err := tl.sample(ctx, time.Now()); err != nil {
		return err
	}
	tl.rep.Phases = append(tl.rep.Phases, PhaseSpan{Name: PhaseDrain, StartS: tl.since(start), EndS: tl.since(time.Now())})
	return nil
}

// finish computes the measures and the criteria.
func (tl *timeline) finish(ctx context.Context) (*Report, error) {
	f, m, cfg := tl.f, tl.m, tl.f.cfg
	begin, end := tl.begin, tl.end
	if dt := end.at.Sub(begin.at).Seconds(); dt > 0 {
		m.SyncsPerSecond = round3((end.syncs - begin.syncs) / dt)
	}
	syncs := end.syncs - begin.syncs
	m.SteadySyncs = int64(syncs)
	if syncs > 0 {
		m.CPUSecondsPer1000Syncs = ptr(round3((end.cpu - begin.cpu) / syncs * 1000))
		if begin.pgOK && end.pgOK {
			m.PGWritesPerSync = ptr(round3(float64(end.tuples-begin.tuples) / syncs))
			m.PGCommitsPerSync = ptr(round3(float64(end.commits-begin.commits) / syncs))
		}
	}
	if begin.emuDupOK && end.emuDupOK {
		m.DuplicateSyncs, m.DuplicateSyncsExact = end.emuDup-begin.emuDup, true
		if m.DuplicateSyncs > 0 {
			f.note("accounts with the most duplicate syncs over the run: %s", strings.Join(end.emuTopDup, "; "))
		}
	} else {
		m.DuplicateSyncs = max(0, m.SteadySyncs-m.ExpectedSyncs)
		f.note("duplicate syncs estimated from the sync counts: the emulator does not count them (GET /_emulator/stats)")
	}
	var lags []float64
	for _, l := range f.hooks.counts().lags {
		if !l.arrived.Before(f.t0) && l.arrived.Before(tl.at.steadyEnd) {
			lags = append(lags, l.lag)
		}
	}
	m.LagSamples = len(lags)
	m.SyncLagP50S, m.SyncLagP99S = percentile(slices.Clone(lags), 0.5), percentile(lags, 0.99)
	m.WrongfulDisconnects = len(tl.everNeeds)
	m.CapacityBoundS = capacityBound(m.AffectedInboxes, cfg.CallsPerRecovery, cfg.EmulatorRate, cfg.Interval.Seconds())
	hc := f.hooks.counts()
	m.WebhookEvents, m.WebhookDuplicates, m.WebhookLost, m.MessagesDoubled = hc.events, hc.dups, f.unannounced(ctx), hc.doubled
	m.NoticeEvents, m.Notices = hc.notices, f.relay.notices()
	m.MessagesDelivered = int(f.mailN.Load())
	if f.emuTraffic {
		if s, err := f.emu.stats(ctx); err == nil {
			m.MessagesDelivered += int(s.Generated - s.Dropped)
		}
	}
	m.SendsAccepted = len(f.sends)
	m.SendStates = f.sendStates(ctx)
	// Counted again after the states were read, so that a send that went
	// out after the drain's last look is neither lost nor shown unsent
	// (the 100,000-inbox run reported 4 lost with only 2 not sent).
	if lost, dup, err := f.checkSends(ctx); err == nil {
		m.SendsLost, m.SendsDuplicated = lost, dup
	}
	if e := f.sendErrs.Load(); e > 0 {
		f.note("%d sends were refused by the API (not counted)", e)
	}
	if err := tl.nodeReports(ctx); err != nil {
		return nil, err
	}
	tl.rep.Criteria = Evaluate(tl.rep.Params, *m)
	tl.rep.Pass = allPass(tl.rep.Criteria)
	tl.rep.Notes = f.notes
	return tl.rep, nil
}

// nodeReports reports each node's steady-state figures.
func (tl *timeline) nodeReports(ctx context.Context) error {
	f := tl.f
	owned, err := f.db.owned(ctx)
	if err != nil {
		return err
	}
	if len(owned) == 0 {
		f.note("no partition leased at the end: each node is taken to own every inbox")
	}
	for i, n := range f.nodes {
		nr := NodeReport{Index: n.index, ID: n.id, Killed: n.killed, PartitionsOwned: n.last.PartitionsOwned,
			CPUSeconds: round3(tl.end.perNodeCPU[i] - tl.begin.perNodeCPU[i]), Syncs: int64(tl.end.perNodeSyncs[i] - tl.begin.perNodeSyncs[i])}
		if i < len(tl.steadyRSS) {
			nr.RSSBytes = tl.steadyRSS[i]
		}
		nr.OwnedInboxes = owned[n.id]
		if len(owned) == 0 {
			nr.OwnedInboxes = len(f.inboxes)
		}
		if nr.OwnedInboxes > 0 {
			nr.RSSPerInboxBytes = round3(nr.RSSBytes / float64(nr.OwnedInboxes))
		}
		tl.rep.Nodes = append(tl.rep.Nodes, nr)
	}
	return nil
}

// counters reads the fleet's cumulative counters now.
func (f *fleet) counters(ctx context.Context, hc *http.Client) counters {
	c := counters{at: time.Now()}
	for _, n := range f.nodes {
		if !n.killed && n.proc.alive() {
			if nm, err := scrape(ctx, hc, n.metric); err == nil {
				// A counter read from a node that died keeps its last value.
				n.last = nm
			}
		}
		c.syncs += n.last.Syncs
		c.cpu += n.last.CPU
		c.perNodeSyncs = append(c.perNodeSyncs, n.last.Syncs)
		c.perNodeCPU = append(c.perNodeCPU, n.last.CPU)
	}
	if t, cm, err := f.db.writes(ctx); err == nil {
		c.tuples, c.commits, c.pgOK = t, cm, true
	}
	if s, err := f.emu.stats(ctx); err == nil && s.HasDuplicates {
		c.emuDup, c.emuDupOK, c.emuTopDup = s.DuplicateSyncs, true, s.TopDuplicates
	}
	return c
}

// firstIncident returns when the first incident opened at or after from.
func (f *fleet) firstIncident(ctx context.Context, from time.Time) (time.Time, bool) {
	var body struct {
		Data []struct {
			OpenedAt time.Time `json:"opened_at"`
		} `json:"data"`
	}
	if _, err := f.api.call(ctx, http.MethodGet, f.pick().api+"/v1/incidents?state=all&limit=100", nil, &body); err != nil {
		return time.Time{}, false
	}
	var first time.Time
	for _, d := range body.Data {
		if !d.OpenedAt.Before(from) && (first.IsZero() || d.OpenedAt.Before(first)) {
			first = d.OpenedAt
		}
	}
	return first, !first.IsZero()
}

// checkSends compares the accepted sends with the emulator's: lost are
// accepted and not sent, duplicated sent more than once. It asks the
// emulator's summary when it has one, else each sender's list.
func (f *fleet) checkSends(ctx context.Context) (lost, duplicated int, err error) {
	f.sendsMu.Lock()
	sends := slices.Clone(f.sends)
	f.sendsMu.Unlock()
	if s, err := f.emu.summary(ctx); err == nil {
		return max(0, len(sends)-s.DistinctMessageIDs), s.Duplicates, nil
	} else if !errors.Is(err, errMissing) {
		return 0, 0, err
	}
	senders := map[string]bool{}
	for _, s := range sends {
		senders[s.from] = true
	}
	seen := map[string]int{}
	for from := range senders {
		ids, err := f.emu.sentMessageIDs(ctx, from)
		if err != nil {
			return 0, 0, err
		}
		for _, id := range ids {
			seen[id]++
		}
	}
	for _, s := range sends {
		switch n := seen[s.messageID]; {
		case n == 0:
			lost++
		case n > 1:
			duplicated++
		}
	}
	return lost, duplicated, nil
}

// unannounced counts the messages delivered to the provider without a
// message.received event yet: those the load test delivered, and the
// emulator generator's (generated, not dropped) beyond those announced.
func (f *fleet) unannounced(ctx context.Context) int {
	c := f.hooks.counts()
	n := c.lost
	if f.emuTraffic {
		if s, err := f.emu.stats(ctx); err == nil {
			n += max(0, int(s.Generated-s.Dropped)-c.generated)
		}
	}
	return n
}

// capEmulator caps each provider's requests at its share of the
// emulator rate.
func (f *fleet) capEmulator(ctx context.Context) error {
	ms, g := f.cfg.counts()
	for _, p := range []struct {
		name string
		n    int
	}{{"microsoft", ms}, {"google", g}} {
		if p.n == 0 {
			continue
		}
		err := f.emu.setCapacity(ctx, p.name, f.cfg.EmulatorRate*float64(p.n)/float64(f.cfg.Inboxes))
		if errors.Is(err, errMissing) {
			f.note("the emulator has no provider capacity: the emulator rate was not enforced")
			return nil
		}
		if err != nil {
			return fmt.Errorf("cap the emulator: %w", err)
		}
	}
	return nil
}

// sendStates counts the accepted sends by their state in holdfast now.
func (f *fleet) sendStates(ctx context.Context) map[string]int {
	f.sendsMu.Lock()
	sends := slices.Clone(f.sends)
	f.sendsMu.Unlock()
	out := map[string]int{}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sends) || ctx.Err() != nil {
					return
				}
				var snd struct {
					State  string `json:"state"`
					Reason string `json:"reason"`
				}
				key := "unknown"
				if _, err := f.api.call(ctx, http.MethodGet, f.pick().api+"/v1/sends/"+sends[i].id, nil, &snd); err == nil {
					key = snd.State
					if snd.Reason != "" {
						key += "/" + snd.Reason
					}
				}
				mu.Lock()
				out[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

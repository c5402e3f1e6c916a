package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
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
	perNodeSyncs []float64
	perNodeCPU   []float64
	pgOK         bool
}

// timeline runs the phases and measures them.
func (f *fleet) timeline(ctx context.Context) (*Report, error) {
	cfg := f.cfg
	if err := f.emu.setDupWindow(ctx, cfg.Interval); err != nil && !errors.Is(err, errMissing) {
		return nil, err
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	sendCtx, stopSends := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopTraffic()
		stopSends()
		wg.Wait()
	}()

	f.t0 = time.Now()
	steadyEnd := f.t0.Add(cfg.Steady)
	outageStart, outageEnd := steadyEnd, steadyEnd.Add(cfg.Outage)
	killAt := outageStart.Add(cfg.KillAfter)
	recoveryDeadline := outageEnd.Add(cfg.Recovery)
	rep := &Report{Version: ReportVersion, Params: paramsOf(cfg), StartedAt: f.t0.UTC()}
	m := &rep.Measures
	m.SyncsPerSecondTarget = round3(float64(len(f.inboxes)) / cfg.Interval.Seconds())
	m.ExpectedSyncs = int64(float64(len(f.inboxes)) * cfg.Steady.Seconds() / cfg.Interval.Seconds())

	wg.Go(func() { f.mail(trafficCtx) })
	wg.Go(func() { f.send(sendCtx) })

	var (
		begin, end      counters
		prev            counters
		faultIDs        []string
		faulted, killed bool
		killedAt        time.Time
		deadLeases      = -1
		leasesBefore    int
		everNeeds       = map[string]bool{}
		recovered       bool
		nextSample      time.Time
		nextProgress    time.Time
		nextIncidents   time.Time
		phase           = PhaseSteady
		lagCursor       int
		steadyRSS       []float64
	)
	begin = f.counters(ctx, hc)
	prev = begin
	sample := func(now time.Time) error {
		c := f.counters(ctx, hc)
		states, err := f.db.states(ctx)
		if err != nil {
			return err
		}
		ids, err := f.db.needsOwner(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			everNeeds[id] = true
		}
		s := Sample{T: round3(now.Sub(f.t0).Seconds()), States: states, NodesAlive: len(f.live())}
		if dt := c.at.Sub(prev.at).Seconds(); dt > 0 {
			s.SyncsPerSecond = round3(max(0, c.syncs-prev.syncs) / dt)
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
		for _, l := range lags[lagCursor:] {
			window = append(window, l.lag)
		}
		lagCursor = len(lags)
		if p := percentile(window, 0.5); p != nil {
			s.LagP50S = *p
		}
		rep.Samples = append(rep.Samples, s)
		prev = c
		if phase == PhaseSteady {
			stale, err := f.db.stale(ctx, now.Add(-2*cfg.Interval))
			if err != nil {
				return err
			}
			m.StaleInboxesMax = max(m.StaleInboxesMax, stale)
		}
		if phase == PhaseOutage || phase == PhaseRecovery {
			m.AffectedInboxes = max(m.AffectedInboxes, len(f.inboxes)-states["connected"])
		}
		if now.After(nextProgress) {
			nextProgress = now.Add(5 * time.Second)
			f.logf("%-8s t=%4.0fs syncs/s=%.1f (target %.1f) lag_p50=%.1fs nodes=%d/%d states %s",
				phase, now.Sub(f.t0).Seconds(), s.SyncsPerSecond, m.SyncsPerSecondTarget, s.LagP50S, s.NodesAlive, len(f.nodes), fmtStates(states))
		}
		return nil
	}

	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
		now := time.Now()
		switch {
		case phase == PhaseSteady && !now.Before(steadyEnd):
			end = f.counters(ctx, hc)
			for _, n := range f.nodes {
				steadyRSS = append(steadyRSS, n.last.RSS)
			}
			rep.Phases = append(rep.Phases, PhaseSpan{Name: PhaseSteady, EndS: round3(now.Sub(f.t0).Seconds())})
			if cfg.Outage > 0 {
				phase = PhaseOutage
				for _, flt := range []map[string]any{
					{"provider": "microsoft", "surfaces": []string{"token", "graph"}, "http_status": 400, "body": outageBodyMicrosoft},
					{"provider": "google", "surfaces": []string{"google_token", "gmail"}, "http_status": 400, "body": outageBodyGoogle},
				} {
					id, err := f.emu.addFault(ctx, flt)
					if err != nil {
						return nil, fmt.Errorf("start outage: %w", err)
					}
					faultIDs = append(faultIDs, id)
				}
				faulted = true
				f.logf("outage starts: Microsoft token+graph AADSTS50173, Google token+gmail invalid_grant")
			} else {
				phase = PhaseRecovery
			}
		case phase == PhaseOutage && cfg.KillNode >= 0 && !killed && !now.Before(killAt):
			n := f.nodes[cfg.KillNode]
			if l, err := f.db.leasesOf(ctx, n.id); err == nil {
				deadLeases = l
			}
			leasesBefore, _ = f.db.liveLeases(ctx)
			n.proc.kill()
			n.killed, killed, killedAt = true, true, time.Now()
			f.logf("node %d (%s) killed; it held %d partition leases", n.index, n.id, deadLeases)
		case phase == PhaseOutage && !now.Before(outageEnd):
			for _, id := range faultIDs {
				if err := f.emu.removeFault(ctx, id); err != nil {
					return nil, fmt.Errorf("end outage: %w", err)
				}
			}
			faultIDs = nil
			stopSends()
			rep.Phases = append(rep.Phases, PhaseSpan{Name: PhaseOutage, StartS: round3(outageStart.Sub(f.t0).Seconds()), EndS: round3(now.Sub(f.t0).Seconds())})
			phase = PhaseRecovery
			f.logf("outage ends")
		}
		if killed && m.TakeoverS == nil && deadLeases > 0 {
			held, err1 := f.db.leasesOf(ctx, f.nodes[cfg.KillNode].id)
			all, err2 := f.db.liveLeases(ctx)
			if err1 == nil && err2 == nil && held == 0 && all >= leasesBefore {
				m.TakeoverS = ptr(round3(time.Since(killedAt).Seconds()))
				f.logf("takeover: the dead node's partitions leased again after %.1fs", *m.TakeoverS)
			}
		}
		if faulted && m.DetectionS == nil && now.After(nextIncidents) {
			nextIncidents = now.Add(2 * time.Second)
			if at, ok := f.firstIncident(ctx, outageStart); ok {
				m.DetectionS = ptr(round3(max(0, at.Sub(outageStart).Seconds())))
				f.logf("detection: first incident %.1fs after the outage's start", *m.DetectionS)
			}
		}
		if now.After(nextSample) {
			nextSample = now.Add(sampleEvery)
			if err := sample(now); err != nil {
				return nil, err
			}
			if phase == PhaseRecovery {
				last := rep.Samples[len(rep.Samples)-1]
				if last.States["connected"] == len(f.inboxes) {
					recovered = true
					if cfg.Outage > 0 {
						m.RecoveryS = ptr(round3(max(0, now.Sub(outageEnd).Seconds())))
						f.logf("recovery: every inbox connected %.1fs after the outage", *m.RecoveryS)
					}
				}
			}
		}
		if phase == PhaseRecovery && (recovered || now.After(recoveryDeadline)) {
			// Keep going until the takeover is seen, within the deadline.
			if !killed || deadLeases <= 0 || m.TakeoverS != nil || now.After(recoveryDeadline) {
				rep.Phases = append(rep.Phases, PhaseSpan{Name: PhaseRecovery, StartS: round3(outageEnd.Sub(f.t0).Seconds()), EndS: round3(now.Sub(f.t0).Seconds())})
				break
			}
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
	}
	if !recovered && cfg.Outage > 0 {
		f.note("not every inbox was connected %v after the outage", cfg.Recovery)
	}
	if killed && deadLeases == 0 {
		f.note("the killed node held no partition lease: serve does not lease partitions (not partition-aware)")
	}
	if killed && deadLeases < 0 {
		f.note("the partition leases could not be read")
	}

	// Drain: no new sends; mail until the drain starts; then wait for every
	// message to be announced and every send to reach the emulator.
	stopSends()
	stopTraffic()
	wg.Wait()
	phase = PhaseDrain
	drainStart := time.Now()
	drainMax := max(90*time.Second, 3*cfg.Interval)
	f.logf("drain: waiting up to %v for mail to be announced and sends to go out", drainMax)
	for time.Since(drainStart) < drainMax {
		lost, dup, err := f.checkSends(ctx)
		if err != nil {
			return nil, err
		}
		if f.hooks.allAnnounced() && lost == 0 {
			m.SendsLost, m.SendsDuplicated = lost, dup
			break
		}
		m.SendsLost, m.SendsDuplicated = lost, dup
		if err := sleep(ctx, 3*time.Second); err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
	}
	if err := sample(time.Now()); err != nil {
		return nil, err
	}
	rep.Phases = append(rep.Phases, PhaseSpan{Name: PhaseDrain, StartS: round3(drainStart.Sub(f.t0).Seconds()), EndS: round3(time.Since(f.t0).Seconds())})

	// Steady-state figures.
	dt := end.at.Sub(begin.at).Seconds()
	syncs := end.syncs - begin.syncs
	m.SteadySyncs = int64(syncs)
	if dt > 0 {
		m.SyncsPerSecond = round3(syncs / dt)
	}
	if syncs > 0 {
		m.CPUSecondsPer1000Syncs = ptr(round3((end.cpu - begin.cpu) / syncs * 1000))
		if begin.pgOK && end.pgOK {
			m.PGWritesPerSync = ptr(round3(float64(end.tuples-begin.tuples) / syncs))
			m.PGCommitsPerSync = ptr(round3(float64(end.commits-begin.commits) / syncs))
		}
	}
	if begin.emuDupOK && end.emuDupOK {
		m.DuplicateSyncs, m.DuplicateSyncsExact = end.emuDup-begin.emuDup, true
	} else {
		m.DuplicateSyncs = max(0, m.SteadySyncs-m.ExpectedSyncs)
		f.note("duplicate syncs estimated from the sync counts: the emulator does not count them (GET /_emulator/stats)")
	}
	var lags []float64
	for _, l := range f.hooks.counts().lags {
		if !l.arrived.Before(f.t0) && l.arrived.Before(steadyEnd) {
			lags = append(lags, l.lag)
		}
	}
	m.LagSamples = len(lags)
	m.SyncLagP50S, m.SyncLagP99S = percentile(slices.Clone(lags), 0.5), percentile(lags, 0.99)
	m.WrongfulDisconnects = len(everNeeds)
	m.CapacityBoundS = capacityBound(m.AffectedInboxes, cfg.CallsPerRecovery, cfg.EmulatorRate, cfg.Interval.Seconds())
	hc2 := f.hooks.counts()
	m.WebhookEvents, m.WebhookDuplicates, m.WebhookLost, m.MessagesDoubled = hc2.events, hc2.dups, hc2.lost, hc2.doubled
	m.NoticeEvents, m.Notices = hc2.notices, f.relay.notices()
	m.MessagesDelivered = int(f.mailN.Load())
	m.SendsAccepted = len(f.sends)
	if e := f.sendErrs.Load(); e > 0 {
		f.note("%d sends were refused by the API (not counted)", e)
	}

	owned, err := f.db.owned(ctx)
	if err != nil {
		return nil, err
	}
	if len(owned) == 0 {
		f.note("no partition leased at the end: each node is taken to own every inbox")
	}
	for i, n := range f.nodes {
		nr := NodeReport{Index: n.index, ID: n.id, Killed: n.killed, PartitionsOwned: n.last.PartitionsOwned,
			CPUSeconds: round3(end.perNodeCPU[i] - begin.perNodeCPU[i]), Syncs: int64(end.perNodeSyncs[i] - begin.perNodeSyncs[i])}
		if i < len(steadyRSS) {
			nr.RSSBytes = steadyRSS[i]
		}
		nr.OwnedInboxes = owned[n.id]
		if len(owned) == 0 {
			nr.OwnedInboxes = len(f.inboxes)
		}
		if nr.OwnedInboxes > 0 {
			nr.RSSPerInboxBytes = round3(nr.RSSBytes / float64(nr.OwnedInboxes))
		}
		rep.Nodes = append(rep.Nodes, nr)
	}
	rep.Criteria = Evaluate(rep.Params, *m)
	rep.Pass = allPass(rep.Criteria)
	rep.Notes = f.notes
	return rep, nil
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
		c.emuDup, c.emuDupOK = s.DuplicateSyncs, true
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

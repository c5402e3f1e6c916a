package health

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/holdfast/holdfast"
)

// Internal state codes, in the order of holdfast.States.
const (
	sConnecting uint8 = iota
	sConnected
	sDegraded
	sSuspect
	sPaused
	sNeedsReconnect
	sNeedsAdmin
	numStates
)

// Per-inbox flags.
const (
	fGranted  uint8 = 1 << iota // a recovery grant is outstanding
	fProbe                      // an incident probe is outstanding
	fQueued                     // in a recovery queue
	fHeld                       // a held action is pending
	fAdmin                      // the last permanent verdict asks an administrator
	fMember                     // listed in the covering incident's members
	fReleased                   // failed alone while its incident's probes succeed: judged on its own
	fKnownBad                   // left a stalled incident still failing: not new evidence for the detector
)

const numProviders = 3

func provIndex(p holdfast.Provider) (uint8, bool) {
	switch p {
	case holdfast.ProviderMicrosoft:
		return 0, true
	case holdfast.ProviderGoogle:
		return 1, true
	case holdfast.ProviderIMAP:
		return 2, true
	}
	return 0, false
}

// core is the engine's whole mutable state. Its fields are exported only
// so that encoding/gob can snapshot it; it is not part of the API.
type core struct {
	// Per inbox (struct of arrays, indexed by inbox).
	// H holds the fields the hot path touches, together, so that one
	// outcome costs one cache line of per-inbox state.
	H                         []Hot
	BackoffN, Reason          []uint8
	Since, PermFirst, NextTry []int64
	ActedAt                   []int64
	FailB, FailE              []int32
	Episode, NoticeEp         []uint32
	HeldSends                 []uint16
	NextInTenant              []int32

	// Per tenant.
	TProv                         []uint8
	TSize, THead                  []int32
	TWin                          []int32 // 2 epochs × {epoch, att, fail, perm}
	TInc                          []int32 // open incident index+1
	TLastAbn, TVerifiedAt, TBudAt []int64
	TBudTok                       []float32
	TAdminEp, TEpisode            []uint32
	TListed                       []int32
	TCand                         []int32

	Provs     [numProviders]ProvState
	Incidents []*Incident
	Held      map[int64]*HeldAction
	NextID    int64
	Notices   []queuedNotice
	NoticeHd  int
	// Rechecks are the in-grace re-verifications of inboxes just moved to
	// a state that asks someone to act, oldest first.
	Rechecks  []queuedRecheck
	RecheckHd int
	Reasons   []holdfast.Reason
	CurBucket int64
	CurEpoch  int64
	LastSec   int64
	Started   bool
	Counts    [numProviders][numStates]int64
}

type queuedNotice struct {
	Inbox   int32
	Due     int64
	First   int64
	Episode uint32
	Admin   bool
	// Held: held at least once by the notice meta-guard.
	Held bool
}

// queuedRecheck is one in-grace re-verification: at Due, inbox Inbox is
// probed once more if it is still in the episode it was acted on in.
type queuedRecheck struct {
	Inbox   int32
	Due     int64
	Episode uint32
}

// Hot is the per-inbox state the hot path reads and writes. Exported for
// snapshots only.
type Hot struct {
	LastReq    int64
	Ten        int32
	AttB, AttE int32
	St, Flags  uint8
	PermN      uint8
	Prov       uint8
	// Canary is 1 for an operator's canary account (SetCanary).
	Canary uint8
	// RecAt tags the second of the inbox's last recovery grant
	// (recTag): its requests in that second are its recovery's, which the
	// ramp counts apart from the rest of the provider's traffic.
	RecAt uint8
	// Pad to 32 bytes so that no element straddles two cache lines.
	// Unexported: gob skips it, and snapshots from before Canary (with an
	// 8-byte Pad) still restore.
	_ [6]byte
}

// ProvState is one provider's fleet view. Exported for snapshots only.
type ProvState struct {
	Inboxes, Tenants         int
	Att, Fail, Perm, OK, Thr [64]int32
	FailTen                  [64]int32
	TenCur, TenPrev          []int32
	Baseline                 float64
	BaseReq                  float64
	ReqSec                   int32
	Inc                      int32
	Elevated                 bool
	LastAbn                  int64
	BudTok                   float64
	BudAt                    int64
	ReopenN                  int
	LastClose                int64
	HeldOrder                []int64
	Ramp                     Ramp
	// RampReq and RampThr count the provider's requests and the throttled
	// ones since the last tick: the ramp's congestion signal.
	RampReq, RampThr          int64
	TAtt, TAttEp              [2]int32
	Cand                      []int32
	LastShare, LastShortShare float64
	// LossRate is the learned background rate of real credential losses
	// per inbox and day; LossN counts the losses of the hour LossHour
	// (learnLoss).
	LossRate float64
	LossN    int32
	LossHour int64
	// LastShortFail is the failing inboxes in the short window at the
	// last evaluation.
	LastShortFail int64
	// LastThr is the opening threshold at the last evaluation.
	LastThr float64

	// Canaries are the provider's canary accounts.
	Canaries []Canary

	// Notice meta-guard: notices queued per minute over the last hour
	// (NoticeRing, its sum, the minute last written), the learned hourly
	// baseline and the open notice_storm incident (index+1).
	NoticeRing [60]int32
	NoticeSum  int32
	NoticeMin  int64
	NoticeBase float64
	Storm      int32
}

// Canary is one canary account's recent outcomes. Exported for snapshots
// only.
type Canary struct {
	Inbox int32
	// Failing: its last outcome was a permanent-class failure, at FailAt;
	// the failures began at FailSince.
	Failing           bool
	FailAt, FailSince int64
}

// Ramp is a provider's recovery ramp. Exported for snapshots only.
type Ramp struct {
	Prio, Norm     []int32
	PrioHd, NormHd int
	// Catch lists connected inboxes granted one catch-up sync after the
	// incident closed (Config.Settle), after every paused one.
	Catch     []int32
	CatchHd   int
	Delayed   []delayed
	DelayedHd int
	Rate, Tok float64
	Slow      bool
	// Cap is the provider's capacity for us (requests per second) as the
	// ramp last measured it: what the provider accepted in a second it
	// throttled, grown by RampProbe per step since. 0 before the first
	// throttling.
	Cap float64
	// N and Thr count the requests of granted inboxes since the last
	// tick, and the throttled ones; Sec counts the grants of the last
	// tick.
	N, Thr     int
	Sec        int
	LastAdjust int64
	LastTick   int64
	Active     bool
	// Inc is the ID of the incident whose recovery the ramp runs. (It was
	// an int32; gob restores old snapshots into int64.)
	Inc     int64
	Granted int
}

type delayed struct {
	At    int64
	Inbox int32
}

// Engine is the health engine. Create it with New.
type Engine struct {
	cfg   Config
	clock holdfast.Clock
	log   *slog.Logger
	sink  Sink
	rng   *rand.Rand
	pcg   *rand.PCG
	c     core

	bucketS, epochS int64
	keepAliveS      int64
	reasonIdx       map[holdfast.Reason]uint8
	// heldOf indexes the pending held action of each inbox (rebuilt from
	// c.Held on Restore), so that cancelling one costs no scan.
	heldOf map[int32]int64
	// idFunc, if set, issues incident and held action IDs (SetIDFunc).
	idFunc func() (int64, bool)
	// idStarved is set while the last ID asked of idFunc was not at hand:
	// an incident may then have gone unopened, so no destructive action
	// is taken until an ID is at hand again (tryAct). It is not saved: a
	// restarted owner reserves IDs before the engine runs.
	idStarved bool
	// fl is the engine's part in a fleet of nodes (fleet.go).
	fl fleetState
}

// New returns an engine with the given parameters, clock, logger and sink
// (nil means NopSink).
func New(cfg Config, clock holdfast.Clock, log *slog.Logger, sink Sink) *Engine {
	if sink == nil {
		sink = NopSink{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.LongWindow > 64 {
		cfg.LongWindow = 64
	}
	if cfg.ShortWindow > cfg.LongWindow {
		cfg.ShortWindow = cfg.LongWindow
	}
	pcg := rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)
	e := &Engine{cfg: cfg, clock: clock, log: log, sink: sink, pcg: pcg, rng: rand.New(pcg),
		reasonIdx: map[holdfast.Reason]uint8{}}
	e.bucketS = max(1, int64(cfg.Bucket/time.Second))
	e.epochS = max(1, int64(cfg.TenantEpoch/time.Second))
	e.keepAliveS = int64(cfg.KeepAlive / time.Second)
	e.c.Held = map[int64]*HeldAction{}
	e.heldOf = map[int32]int64{}
	e.c.Reasons = []holdfast.Reason{holdfast.ReasonUnknown}
	e.reasonIdx[holdfast.ReasonUnknown] = 0
	e.c.NextID = 1
	return e
}

// Config returns the engine's parameters.
func (e *Engine) Config() Config { return e.cfg }

// Grow reserves room for n more inboxes and tenants, so that a bulk load
// does not reallocate.
func (e *Engine) Grow(inboxes, tenants int) {
	c := &e.c
	n := len(c.H) + inboxes
	if cap(c.H) < n {
		h := make([]Hot, len(c.H), n)
		copy(h, c.H)
		c.H = h
	}
	c.BackoffN = growU8(c.BackoffN, n)
	c.Reason = growU8(c.Reason, n)
	c.NextInTenant = growI32(c.NextInTenant, n)
	c.FailB = growI32(c.FailB, n)
	c.FailE = growI32(c.FailE, n)
	for _, p := range []*[]int64{&c.Since, &c.PermFirst, &c.NextTry, &c.ActedAt} {
		if cap(*p) < n {
			s := make([]int64, len(*p), n)
			copy(s, *p)
			*p = s
		}
	}
	for _, p := range []*[]uint32{&c.Episode, &c.NoticeEp} {
		if cap(*p) < n {
			s := make([]uint32, len(*p), n)
			copy(s, *p)
			*p = s
		}
	}
	if cap(c.HeldSends) < n {
		s := make([]uint16, len(c.HeldSends), n)
		copy(s, c.HeldSends)
		c.HeldSends = s
	}
	_ = tenants
}

func growU8(s []uint8, n int) []uint8 {
	if cap(s) >= n {
		return s
	}
	t := make([]uint8, len(s), n)
	copy(t, s)
	return t
}

func growI32(s []int32, n int) []int32 {
	if cap(s) >= n {
		return s
	}
	t := make([]int32, len(s), n)
	copy(t, s)
	return t
}

// AddTenant registers a tenant (an organisation, or for IMAP a mail server)
// of provider p and returns its index.
func (e *Engine) AddTenant(p holdfast.Provider) (int32, error) {
	pi, ok := provIndex(p)
	if !ok {
		return 0, fmt.Errorf("add tenant: unknown provider %q", p)
	}
	c := &e.c
	t := int32(len(c.TProv))
	c.TProv = append(c.TProv, pi)
	c.TSize = append(c.TSize, 0)
	c.THead = append(c.THead, -1)
	c.TWin = append(c.TWin, -1, 0, 0, 0, -1, 0, 0, 0)
	c.TInc = append(c.TInc, 0)
	c.TLastAbn = append(c.TLastAbn, -1)
	c.TVerifiedAt = append(c.TVerifiedAt, -1)
	c.TBudAt = append(c.TBudAt, 0)
	c.TBudTok = append(c.TBudTok, -1)
	c.TAdminEp = append(c.TAdminEp, 0)
	c.TEpisode = append(c.TEpisode, 0)
	c.TListed = append(c.TListed, -1)
	c.TCand = append(c.TCand, -1)
	c.Provs[pi].Tenants++
	return t, nil
}

// AddInbox registers a connected inbox of tenant t and returns its index.
func (e *Engine) AddInbox(t int32) (int32, error) {
	c := &e.c
	if t < 0 || int(t) >= len(c.TProv) {
		return 0, fmt.Errorf("add inbox: unknown tenant %d", t)
	}
	now := e.now()
	i := int32(len(c.H))
	p := c.TProv[t]
	c.H = append(c.H, Hot{LastReq: now, Ten: t, AttB: -1, AttE: -1, St: sConnected, Prov: p})
	c.BackoffN = append(c.BackoffN, 0)
	c.Reason = append(c.Reason, 0)
	c.NextInTenant = append(c.NextInTenant, c.THead[t])
	c.THead[t] = i
	c.FailB = append(c.FailB, -1)
	c.FailE = append(c.FailE, -1)
	c.Since = append(c.Since, now)
	c.PermFirst = append(c.PermFirst, 0)
	c.NextTry = append(c.NextTry, 0)
	c.ActedAt = append(c.ActedAt, -1)
	c.Episode = append(c.Episode, 0)
	c.NoticeEp = append(c.NoticeEp, 0)
	c.HeldSends = append(c.HeldSends, 0)
	c.TSize[t]++
	c.Provs[p].Inboxes++
	c.Counts[p][sConnected]++
	return i, nil
}

// Len returns the number of inboxes.
func (e *Engine) Len() int { return len(e.c.H) }

// State returns inbox i's state.
func (e *Engine) State(i int32) holdfast.State { return holdfast.States[e.c.H[i].St] }

// Tenant returns inbox i's tenant.
func (e *Engine) Tenant(i int32) int32 { return e.c.H[i].Ten }

// Counts returns the number of inboxes of provider p in each state.
func (e *Engine) Counts(p holdfast.Provider) map[holdfast.State]int64 {
	pi, ok := provIndex(p)
	m := map[holdfast.State]int64{}
	if !ok {
		return m
	}
	for s, n := range e.c.Counts[pi] {
		m[holdfast.States[s]] = n
	}
	return m
}

// NextKeepAlive returns when inbox i should be probed if it makes no other
// request before then.
func (e *Engine) NextKeepAlive(i int32) time.Time {
	return e.tm(e.c.H[i].LastReq + int64(e.cfg.KeepAlive/time.Second))
}

// Touch reads inbox i's hot state and returns a byte of it. Callers that
// know which inboxes they will observe next call it a few outcomes ahead,
// so that the memory loads overlap (a software prefetch).
func (e *Engine) Touch(i int32) uint8 {
	h := &e.c.H[i]
	return h.St + uint8(e.c.TWin[h.Ten*8])
}

// KeepAliveUnix is NextKeepAlive in Unix seconds, for callers that
// schedule millions of inboxes.
func (e *Engine) KeepAliveUnix(i int32) int64 {
	return e.c.H[i].LastReq + e.keepAliveS
}

func (e *Engine) now() int64 { return e.clock.Now().Unix() }

func (e *Engine) tm(s int64) time.Time { return time.Unix(s, 0).UTC() }

func (e *Engine) reasonCode(r holdfast.Reason) uint8 {
	if k, ok := e.reasonIdx[r]; ok {
		return k
	}
	if len(e.c.Reasons) >= 255 {
		return 0
	}
	k := uint8(len(e.c.Reasons))
	e.c.Reasons = append(e.c.Reasons, r)
	e.reasonIdx[r] = k
	return k
}

// Admit says whether a request of kind op may be made for inbox i now. A
// send that gets Hold is counted as held; the caller keeps it and releases
// it when a Transition brings the inbox back to connected.
func (e *Engine) Admit(i int32, op Op) Admission {
	c := &e.c
	switch c.H[i].St {
	case sConnected, sConnecting:
		return Allow
	case sNeedsReconnect, sNeedsAdmin:
		if op == OpSend {
			return Fail
		}
		if e.cfg.Policy == PolicyHoldfast && e.now() >= c.NextTry[i] {
			return Allow
		}
		return Defer
	case sPaused:
		if op == OpSend {
			c.HeldSends[i]++
			return Hold
		}
		if c.H[i].Flags&(fGranted|fProbe) != 0 {
			return Allow
		}
		return Defer
	default: // degraded, suspect
		if op == OpSend {
			c.HeldSends[i]++
			return Hold
		}
		if e.now() >= c.NextTry[i] || c.H[i].Flags&fProbe != 0 {
			return Allow
		}
		return Defer
	}
}

// AdmitStored says whether a request of kind op may be made for an inbox
// in stored state st, by the same table as Admit for its state, on a node
// whose engine does not judge the inbox (another node owns it): a send is
// allowed on a connected or connecting inbox, fails on one that needs its
// owner or administrator, and is held otherwise; any other request is
// deferred to the owner unless the inbox is connected.
func AdmitStored(st holdfast.State, op Op) Admission {
	switch st {
	case holdfast.StateConnected, holdfast.StateConnecting:
		return Allow
	case holdfast.StateNeedsReconnect, holdfast.StateNeedsAdmin:
		if op == OpSend {
			return Fail
		}
		return Defer
	default:
		if op == OpSend {
			return Hold
		}
		return Defer
	}
}

// outcome kinds for counting
const (
	okOK = iota
	okThrottled
	okRecoverable
	okPermanent
)

// Observe feeds the outcome of one request for inbox i and returns what the
// engine concluded. It is the hot path: no allocation unless the inbox
// changes state into one that needs bookkeeping.
func (e *Engine) Observe(i int32, o Outcome) Decision {
	c := &e.c
	now := e.now()
	c.H[i].LastReq = now
	p := c.H[i].Prov
	ps := &c.Provs[p]
	t := c.H[i].Ten
	ps.ReqSec++
	ps.RampReq++

	kind := okOK
	if !o.OK {
		switch {
		case o.Verdict == nil:
			kind = okRecoverable
		case o.Verdict.Reason == holdfast.ReasonThrottled || o.Verdict.Action == holdfast.ActionRetryAfter && o.Verdict.Class != holdfast.ClassPermanent:
			kind = okThrottled
		case o.Verdict.Class == holdfast.ClassPermanent:
			kind = okPermanent
		default:
			kind = okRecoverable
		}
	}

	if kind == okThrottled {
		ps.RampThr++
	}
	if e.cfg.Policy == PolicyNaive {
		return e.observeNaive(i, kind, o)
	}
	if c.H[i].Canary != 0 {
		e.canaryOutcome(i, kind, now)
	}
	if st := c.H[i].St; st != sPaused && st != sNeedsReconnect && st != sNeedsAdmin && c.H[i].Flags&fKnownBad == 0 {
		// Paused inboxes (probes) and inboxes already known to fail are
		// not new evidence: the windows measure the rest of the fleet.
		// Nor are inboxes already waiting for their owner (their soft
		// retries and re-checks): over weeks of background losses they
		// become a share of the fleet, and their failures, counted,
		// opened provider and tenant incidents over nothing new.
		e.count(i, p, t, kind)
	}

	fl := c.H[i].Flags
	if c.H[i].RecAt == recTag(now) {
		ps.Ramp.N++
		if kind == okThrottled {
			ps.Ramp.Thr++
		}
	}
	if fl&fProbe != 0 && kind != okThrottled {
		c.H[i].Flags &^= fProbe
		e.probeResult(i, kind == okOK, kind == okPermanent)
	}
	if ti := c.TInc[t]; ti != 0 {
		in := c.Incidents[ti-1]
		if in.Kind.Effects().AwaitsVerification && (c.H[i].PermN > 0 || c.H[i].St == sSuspect) {
			if kind == okOK {
				in.okSeen++
			} else if kind == okRecoverable {
				in.recSeen++
			}
		}
	}

	st := c.H[i].St
	switch kind {
	case okOK:
		c.H[i].PermN = 0
		c.BackoffN[i] = 0
		// fGranted too: a catch-up grant of a connected inbox is done.
		c.H[i].Flags &^= fReleased | fKnownBad | fGranted
		if st != sConnected {
			c.H[i].Flags &^= fGranted | fProbe
			if st == sPaused {
				// Back while its incident is open (a probe), or after it
				// closed, through the recovery ramp it queued.
				if ii := e.coveringIncident(i); ii != nil {
					ii.Recovered++
				} else if ii := e.rampIncident(c.H[i].Prov); ii != nil {
					ii.Recovered++
					ii.dirty = true
				}
			}
			e.cancelHeld(i, holdfast.HeldCancelledRecovered)
			e.move(i, sConnected, holdfast.ReasonUnknown, holdfast.CauseHealth, 0)
		}
		return Decision{State: holdfast.StateConnected}
	case okThrottled:
		ra := int64(1)
		if o.Verdict != nil && o.Verdict.RetryAfter > 0 {
			ra = int64((o.Verdict.RetryAfter + time.Second - 1) / time.Second)
		}
		if fl&fGranted != 0 {
			c.H[i].Flags &^= fGranted
			r := &ps.Ramp
			r.Delayed = append(r.Delayed, delayed{At: now + ra, Inbox: i})
			return Decision{State: holdfast.States[st]}
		}
		if st != sPaused {
			// Throttled inside an open incident's scope while it fails: part
			// of the outage (a flapping provider answers 429 among its
			// errors). Paused under it, the inbox is probed and resumed
			// with the rest, and caught up after, instead of retrying on
			// its own.
			if in := e.coveringIncident(i); in != nil && in.settleAt == 0 && in.Kind.Effects().PausesInboxes {
				e.pauseUnder(i, in)
				return Decision{State: holdfast.StatePaused}
			}
		}
		// Spread over another half of the Retry-After: the requests
		// throttled in one second would otherwise all come back in one
		// second and be throttled again (a retry echo).
		ra += e.rng.Int64N(ra/2 + 1)
		c.NextTry[i] = max(c.NextTry[i], now+ra)
		return Decision{State: holdfast.States[st], RetryAt: e.tm(now + ra)}
	}

	// A failure.
	c.H[i].Flags &^= fGranted
	if o.Verdict != nil {
		c.Reason[i] = e.reasonCode(o.Verdict.Reason)
	}
	if st == sNeedsReconnect || st == sNeedsAdmin {
		c.NextTry[i] = now + int64(e.cfg.SoftRetry/time.Second)
		return Decision{State: holdfast.States[st], RetryAt: e.tm(c.NextTry[i])}
	}
	if in := e.coveringIncident(i); in != nil && (in.settleAt == 0 || !e.scopeHealthy(in)) {
		// A settling incident whose scope is healthy does not take a
		// lone failure: the inbox is judged on its own.
		if st != sPaused || c.H[i].Flags&fMember == 0 {
			// Also a paused inbox that is no member of it: one granted its
			// recovery from an earlier incident just before this one
			// opened. Left out, nothing would ever resume it.
			e.pauseUnder(i, in)
		}
		return Decision{State: holdfast.StatePaused}
	}
	if kind == okRecoverable {
		c.H[i].PermN = 0
		n := c.BackoffN[i]
		if n < 30 {
			c.BackoffN[i]++
		}
		ceil := min(int64(e.cfg.BackoffCap/time.Second), int64(e.cfg.BackoffBase/time.Second)<<min(n, 20))
		d := 1 + e.rng.Int64N(max(ceil, 1))
		c.NextTry[i] = now + d
		if st != sDegraded {
			e.move(i, sDegraded, e.c.Reasons[c.Reason[i]], holdfast.CauseHealth, 0)
		}
		return Decision{State: holdfast.StateDegraded, RetryAt: e.tm(c.NextTry[i])}
	}

	// Permanent-class.
	if o.Verdict != nil && (o.Verdict.Scope == holdfast.ScopeApp || o.Verdict.Action == holdfast.ActionAdminConsent ||
		o.Verdict.Action == holdfast.ActionContactAdmin || o.Verdict.Action == holdfast.ActionOperator) {
		c.H[i].Flags |= fAdmin
	} else {
		c.H[i].Flags &^= fAdmin
	}
	abn := max(ps.LastAbn, c.TLastAbn[t])
	if st != sSuspect || c.H[i].PermN == 0 || abn >= c.PermFirst[i] {
		c.H[i].PermN = 1
		c.PermFirst[i] = now
		if st != sSuspect {
			e.move(i, sSuspect, e.c.Reasons[c.Reason[i]], holdfast.CauseHealth, 0)
		}
	} else if c.H[i].PermN < 255 {
		c.H[i].PermN++
	}
	if (int(c.H[i].PermN) >= e.cfg.ConfirmCount && now-c.PermFirst[i] >= int64(e.cfg.ConfirmSpan/time.Second) || e.escalatedConfirm(i, now)) && c.H[i].Flags&fHeld == 0 {
		e.tryAct(i)
		if s := c.H[i].St; s != sSuspect {
			return Decision{State: holdfast.States[s], RetryAt: e.tm(c.NextTry[i])}
		}
	}
	step := int64(e.cfg.ConfirmStep / time.Second)
	c.NextTry[i] = now + step*3/4 + e.rng.Int64N(max(step/2, 1))
	return Decision{State: holdfast.StateSuspect, RetryAt: e.tm(c.NextTry[i])}
}

func (e *Engine) observeNaive(i int32, kind int, o Outcome) Decision {
	c := &e.c
	st := c.H[i].St
	switch kind {
	case okOK:
		if st == sDegraded {
			e.move(i, sConnected, holdfast.ReasonUnknown, holdfast.CauseHealth, 0)
		}
		return Decision{State: holdfast.States[c.H[i].St]}
	case okThrottled:
		ra := int64(1)
		if o.Verdict != nil && o.Verdict.RetryAfter > 0 {
			ra = int64(o.Verdict.RetryAfter / time.Second)
		}
		return Decision{State: holdfast.States[st], RetryAt: e.tm(e.now() + ra)}
	case okRecoverable:
		if st == sConnected {
			e.move(i, sDegraded, holdfast.ReasonUnknown, holdfast.CauseHealth, 0)
		}
		c.NextTry[i] = e.now() + 30
		return Decision{State: holdfast.States[c.H[i].St], RetryAt: e.tm(c.NextTry[i])}
	}
	if st == sNeedsReconnect || st == sNeedsAdmin {
		return Decision{State: holdfast.States[st]}
	}
	to := sNeedsReconnect
	if o.Verdict != nil && (o.Verdict.Scope == holdfast.ScopeApp || o.Verdict.Action == holdfast.ActionAdminConsent) {
		to = sNeedsAdmin
	}
	if o.Verdict != nil {
		c.Reason[i] = e.reasonCode(o.Verdict.Reason)
	}
	e.act(i, to, holdfast.CauseHealth)
	c.NextTry[i] = 1 << 62
	return Decision{State: holdfast.States[to]}
}

// count updates the provider and tenant windows for one outcome.
func (e *Engine) count(i int32, p uint8, t int32, kind int) {
	c := &e.c
	ps := &c.Provs[p]
	b := int32(c.CurBucket)
	slot := c.CurBucket % int64(e.cfg.LongWindow)
	var sc *ProvCounters
	if e.fl.counting {
		sc = &e.fl.cur.Provs[p]
	}
	if c.H[i].AttB != b {
		c.H[i].AttB = b
		ps.Att[slot]++
		if sc != nil {
			sc.Att++
		}
	}
	ep := int32(c.CurEpoch)
	w := c.TWin[t*8+int32(ep&1)*4 : t*8+int32(ep&1)*4+4]
	if w[0] != ep {
		w[0], w[1], w[2], w[3] = ep, 0, 0, 0
	}
	if c.H[i].AttE != ep {
		c.H[i].AttE = ep
		w[1]++
		k := ep & 1
		if ps.TAttEp[k] != ep {
			ps.TAttEp[k], ps.TAtt[k] = ep, 0
		}
		ps.TAtt[k]++
		if sc != nil {
			sc.EpochAtt++
			e.shipTenant(t).Att++
		}
	}
	switch kind {
	case okOK:
		ps.OK[slot]++
		if sc != nil {
			sc.OK++
		}
		return
	case okThrottled:
		ps.Thr[slot]++
		if sc != nil {
			sc.Thr++
		}
		return
	}
	if c.FailB[i] != b {
		c.FailB[i] = b
		ps.Fail[slot]++
		if kind == okPermanent {
			ps.Perm[slot]++
		}
		if sc != nil {
			sc.Fail++
			if kind == okPermanent {
				sc.Perm++
			}
		}
	}
	if c.FailE[i] != ep {
		c.FailE[i] = ep
		w[2]++
		if kind == okPermanent {
			w[3]++
		}
		if sc != nil {
			tc := e.shipTenant(t)
			tc.Fail++
			if kind == okPermanent {
				tc.Perm++
			}
		}
		if c.TListed[t] != ep {
			c.TListed[t] = ep
			ps.TenCur = append(ps.TenCur, t)
			ps.FailTen[slot]++
		}
		if kind == okPermanent {
			e.checkTenant(t)
		}
	}
}

// tenantWindow returns distinct attempting, failing and permanent-failing
// inboxes of tenant t over the last two epochs.
func (e *Engine) tenantWindow(t int32) (att, fail, perm int32) {
	c := &e.c
	ep := int32(c.CurEpoch)
	for k := int32(0); k < 2; k++ {
		w := c.TWin[t*8+k*4 : t*8+k*4+4]
		if w[0] == ep || w[0] == ep-1 {
			att += w[1]
			fail += w[2]
			perm += w[3]
		}
	}
	return
}

// move changes inbox i's state and reports the transition.
func (e *Engine) move(i int32, to uint8, r holdfast.Reason, cause holdfast.Cause, inc int64) {
	c := &e.c
	from := c.H[i].St
	if from == to {
		return
	}
	p := c.H[i].Prov
	c.Counts[p][from]--
	c.Counts[p][to]++
	c.H[i].St = to
	now := e.now()
	c.Since[i] = now
	if to == sConnected {
		c.HeldSends[i] = 0
	}
	e.sink.Transition(Transition{Inbox: i, At: e.tm(now), From: holdfast.States[from], To: holdfast.States[to],
		Reason: r, Cause: cause, Incident: inc})
}

// coveringIncident returns the open outage-type incident covering inbox i.
func (e *Engine) coveringIncident(i int32) *Incident {
	c := &e.c
	if c.H[i].Flags&fReleased != 0 {
		return nil
	}
	if k := c.Provs[c.H[i].Prov].Inc; k != 0 {
		return c.Incidents[k-1]
	}
	if k := c.TInc[c.H[i].Ten]; k != 0 {
		if in := c.Incidents[k-1]; in.Kind.Effects().PausesInboxes {
			return in
		}
	}
	return nil
}

// pauseUnder pauses inbox i under incident in.
func (e *Engine) pauseUnder(i int32, in *Incident) {
	c := &e.c
	if e.foreign(i) {
		return // its own node's engine pauses it
	}
	c.H[i].PermN = 0
	c.BackoffN[i] = 0
	e.cancelHeld(i, holdfast.HeldCancelledIncident)
	if c.H[i].Flags&fMember == 0 {
		c.H[i].Flags |= fMember
		in.members = append(in.members, i)
		in.Affected++
	}
	e.move(i, sPaused, e.c.Reasons[c.Reason[i]], holdfast.CauseHealth, in.ID)
}

// act moves inbox i to a state that asks someone to act and queues the
// notice.
func (e *Engine) act(i int32, to uint8, cause holdfast.Cause) {
	c := &e.c
	now := e.now()
	c.H[i].Flags &^= fHeld
	c.ActedAt[i] = now
	c.Episode[i]++
	c.HeldSends[i] = 0
	c.NextTry[i] = now + int64(e.cfg.SoftRetry/time.Second)
	if cause == holdfast.CauseHealth {
		e.countLoss(i, now)
	}
	e.move(i, to, e.c.Reasons[c.Reason[i]], cause, 0)
	e.queueNotice(i, to == sNeedsAdmin, now)
}

// queueNotice queues the notice of inbox i's current episode, due after
// the grace period (at once with PolicyNaive).
func (e *Engine) queueNotice(i int32, admin bool, now int64) {
	c := &e.c
	if e.cfg.Policy == PolicyNaive {
		e.c.NoticeEp[i] = c.Episode[i]
		e.sink.Notice(Notice{Inbox: i, Tenant: c.H[i].Ten, Admin: admin, Episode: c.Episode[i], At: e.tm(now), Reason: e.c.Reasons[c.Reason[i]]})
		return
	}
	due := now + int64(e.cfg.NoticeGrace/time.Second)
	c.Notices = append(c.Notices, queuedNotice{Inbox: i, Due: due, First: due, Episode: c.Episode[i], Admin: admin})
	// Half-way through the grace period the credential is tried once
	// more, so that an inbox whose provider stopped refusing it comes back
	// before anyone is told (the notice is then cancelled at delivery).
	c.Rechecks = append(c.Rechecks, queuedRecheck{Inbox: i, Due: now + int64(e.cfg.NoticeGrace/time.Second)/2, Episode: c.Episode[i]})
	if !e.tenantVerified(c.H[i].Ten, now) {
		// A verified tenant event's notices are not counted by the
		// meta-guard: the tenant rule already judged them (§6).
		e.noticeQueued(&c.Provs[c.H[i].Prov], now)
	}
}

// SetCanary marks inbox i as one of its provider's canary accounts (on) or
// as an ordinary inbox again. Canaries are accounts the operator owns, on
// holdfast's own client ID, ideally in at least two regions: when
// CanaryMinFailing of them fail permanent-class within CanaryWindow, the
// provider is frozen even if the fleet detector has not fired (anchors
// §2.2 (B)). The engine grants each canary a probe every CanaryEvery.
func (e *Engine) SetCanary(i int32, on bool) error {
	c := &e.c
	if i < 0 || int(i) >= len(c.H) {
		return fmt.Errorf("set canary: unknown inbox %d: %w", i, holdfast.ErrNotFound)
	}
	ps := &c.Provs[c.H[i].Prov]
	k := slices.IndexFunc(ps.Canaries, func(x Canary) bool { return x.Inbox == i })
	switch {
	case on && k < 0:
		ps.Canaries = append(ps.Canaries, Canary{Inbox: i})
		c.H[i].Canary = 1
	case !on && k >= 0:
		ps.Canaries = slices.Delete(ps.Canaries, k, k+1)
		c.H[i].Canary = 0
	}
	return nil
}

// Canary reports whether inbox i is a canary account.
func (e *Engine) Canary(i int32) bool {
	return i >= 0 && int(i) < len(e.c.H) && e.c.H[i].Canary != 0
}

// canaryOutcome records one outcome of canary i.
func (e *Engine) canaryOutcome(i int32, kind int, now int64) {
	ps := &e.c.Provs[e.c.H[i].Prov]
	for k := range ps.Canaries {
		cn := &ps.Canaries[k]
		if cn.Inbox != i {
			continue
		}
		switch kind {
		case okOK:
			cn.Failing = false
		case okPermanent:
			if !cn.Failing {
				cn.FailSince = now
			}
			cn.Failing, cn.FailAt = true, now
		}
		return
	}
}

// activeIncident returns the open incident of index+1 k (ps.Inc, TInc)
// unless it is settling (Config.Settle), or nil: a settling incident's
// scope is healthy, so it neither marks the scope abnormal nor holds the
// confirmed losses found in it.
func (e *Engine) activeIncident(k int32) *Incident {
	if k == 0 {
		return nil
	}
	if in := e.c.Incidents[k-1]; in.settleAt == 0 {
		return in
	}
	return nil
}

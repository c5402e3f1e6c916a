package sim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"time"
	"unsafe"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/health"
)

// base is the virtual clock's instant zero.
var base = time.Date(2025, 3, 1, 18, 0, 0, 0, time.UTC)

var baseUnix = base.Unix()

type vclock struct{ t time.Time }

func (c *vclock) Now() time.Time { return c.t }

// Event kinds in the wheel.
const (
	evWake uint64 = iota + 1 // next mail arrival or keep-alive probe, whichever is first
	evSendGen
	evSendDue
	evKeepAlive
	evRetry
	evSendDeadline // a held send's deadline: SendHoldMax after it was due
)

// simError is a scenario ERROR with its verdict, classified once: Classify
// is pure, so one verdict per distinct ERROR object is exact.
type simError struct {
	spec    *ErrorSpec
	verdict classify.Verdict
	cum     float64
}

type simProv struct {
	spec                       *ProviderSpec
	pi                         uint8
	first, end                 int32 // inbox range
	firstTen                   int32
	invalid, transient, thrott *simError
	mailRate, sendRate         float64 // per second
	lifetime                   int32
	capacity                   float64
	secReq                     float64
	outages                    []int
	reqInterval, errInterval   int64
}

type simOutage struct {
	idx           int
	prov          int
	start, end    int64
	period, dutyS int64
	// lastFail is when its last failing phase ends: end, or earlier for a
	// flapping outage whose last cycle ends steady.
	lastFail int64
	rate     float64
	errs     []*simError
	total    float64
	member   []uint64 // bitmap over inboxes
}

type grantReq struct {
	i     int32
	probe bool
}

// inbox is the simulator's per-inbox state that most events touch.
type inbox struct {
	nextMail, tokenAt, invalidAt int32
	mHead, mTail, hHead          int32
	retryGen                     uint16
	affEvt                       int16
	prov                         uint8
	actedOn                      uint8 // 1 wrongful, 2 detected
	recovered                    bool
	syncedAt                     uint8 // low byte of the second of the last sync
}

// The per-inbox state is 32 bytes, two to a cache line.
var _ [32]byte = [unsafe.Sizeof(inbox{})]byte{}

// run is one simulation.
type run struct {
	sc     *Scenario
	policy string
	eng    *health.Engine
	clock  *vclock
	rng    *rand.Rand
	now    int64
	dur    int64

	provs   []*simProv
	outages []*simOutage
	outOf   []int16 // per event index → outage index or -1

	// Per inbox: the hot fields together, the cold ones apart.
	in         []inbox
	invErr     []*simError
	detectedAt []int32

	// Mail pool.
	mAt, mNext []int32
	mFree      int32

	// Sends.
	sDue, sInbox, sNext []int32
	sDeliv              []uint8
	sFailed             []bool
	// sLate: delivered more than holdMax after it was due.
	sLate   []bool
	holdMax int64

	wheel [][]uint64
	far   [][]farEvent

	// Buffered decisions from the sink.
	grants  []grantReq
	resumed []int32
	events  int64

	// Scoring.
	rep         Report
	lagH, lateH hist
	recH, detH  hist
	incidents   map[int64]*IncidentReport
	incOrder    []int64
	reqSec      int64
	reqBy       []int64 // per provider this second
	thrBy       []int64 // per provider this second: throttled
	stormWin    []window
	quietSecs   []int64 // per provider: seconds counted in its baseline
	quietReq    []int64 // per provider: requests in those seconds
	preSecs     []int64 // per provider: quiet seconds before its first outage
	preReq      []int64 // per provider: requests in those seconds
	lastEnd     []int64 // per provider: end of its last outage, or -1
	recO        []hist  // per outage: recovery seconds
	work        []recoveryWork
	granting    bool // a recovery grant's requests are being made
	outageSecs  int64
	outageReq   int64
	baseSecs    int64
	baseReq     int64
	series      *series
	noticesCum  int64
	progress    io.Writer
	peakAt      int64
	touched     uint8
}

// sink adapts the engine's decisions to the simulator.
type sink struct{ r *run }

func (s sink) Transition(t health.Transition) {
	r := s.r
	i := t.Inbox
	switch t.To {
	case holdfast.StateNeedsReconnect, holdfast.StateNeedsAdmin:
		if r.now < int64(r.in[i].invalidAt) {
			if r.in[i].actedOn&1 == 0 {
				r.in[i].actedOn |= 1
				r.rep.WrongfulDisconnects++
			}
		} else if r.in[i].actedOn&2 == 0 {
			r.in[i].actedOn |= 2
			r.detectedAt[i] = int32(r.now)
		}
		// Held sends are reported failed to their authors.
		for s := r.in[i].hHead; s >= 0; s = r.sNext[s] {
			if r.sDeliv[s] == 0 && !r.sFailed[s] {
				r.sFailed[s] = true
			}
		}
		r.in[i].hHead = -1
	case holdfast.StateConnected:
		r.resumed = append(r.resumed, i)
	}
}

func (s sink) IncidentChanged(in *health.Incident) {
	r := s.r
	ir, ok := r.incidents[in.ID]
	if !ok {
		ir = &IncidentReport{Provider: string(in.Provider), Kind: string(in.Kind)}
		ir.Scope = "provider"
		if in.Tenant >= 0 {
			ir.Scope = fmt.Sprintf("tenant rank %d", in.Tenant-r.provByName(string(in.Provider)).firstTen+1)
			ir.tenant = in.Tenant
		} else {
			ir.tenant = -1
		}
		ir.OpenedAtS = float64(in.OpenedAt.Sub(base) / time.Second)
		r.incidents[in.ID] = ir
		r.incOrder = append(r.incOrder, in.ID)
	}
	if !in.Open() {
		v := float64(in.ResolvedAt.Sub(base) / time.Second)
		ir.ResolvedAtS = &v
	}
	ir.escalated = !in.EscalatedAt.IsZero()
}

func (s sink) HeldChanged(health.HeldAction) {}

func (s sink) Notice(n health.Notice) {
	r := s.r
	r.rep.NotificationsSent++
	r.noticesCum++
	i := n.Inbox
	if r.now < int64(r.in[i].invalidAt) || r.eng.State(i) == holdfast.StateConnected {
		r.rep.StaleNotifications++
	}
}

func (s sink) Grant(g health.Grant) { s.r.grants = append(s.r.grants, grantReq{g.Inbox, g.Probe}) }

func (r *run) provByName(n string) *simProv {
	for _, p := range r.provs {
		if p.spec.Name == n {
			return p
		}
	}
	return nil
}

func classifyError(prov string, e *ErrorSpec) *simError {
	in := classify.Input{Provider: prov, Surface: classify.Surface(e.Surface), Raw: e.Raw}
	if prov == "imap" {
		in.Provider = "generic"
	}
	if e.HTTPStatus != nil {
		in.HTTPStatus = *e.HTTPStatus
	}
	if e.RetryAfterS > 0 {
		in.Header = http.Header{"Retry-After": []string{strconv.Itoa(int(math.Ceil(e.RetryAfterS)))}}
	}
	v := classify.Classify(in)
	if v.RetryAfter == 0 && e.RetryAfterS > 0 {
		v.RetryAfter = time.Duration(e.RetryAfterS * float64(time.Second))
	}
	return &simError{spec: e, verdict: v}
}

// zipfSizes splits n inboxes over t tenants with Zipf(1.1) sizes, largest
// first, every tenant at least one inbox.
func zipfSizes(n, t int) []int {
	w := make([]float64, t)
	var h float64
	for k := range w {
		w[k] = math.Pow(float64(k+1), -1.1)
		h += w[k]
	}
	sizes := make([]int, t)
	total := 0
	for k := range w {
		sizes[k] = max(1, int(math.Round(float64(n)*w[k]/h)))
		total += sizes[k]
	}
	for k := 0; total != n; k = (k + 1) % t {
		if total > n && sizes[k] > 1 {
			sizes[k]--
			total--
		} else if total < n {
			sizes[k]++
			total++
		}
	}
	return sizes
}

// tenantSizes splits n inboxes over t tenants, largest first: with hi
// set, sizes cycle through lo..hi and the rest goes to the first tenant;
// otherwise lo−1 inboxes each (when lo > 1) and the rest by zipfSizes.
func tenantSizes(n, t, lo, hi int) []int {
	if hi > 0 {
		sizes := make([]int, t)
		for k := range sizes {
			sizes[k] = lo + k%(hi-lo+1)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(sizes)))
		sizes[0] += n - cycleTotal(t, lo, hi)
		return sizes
	}
	min := lo
	if min <= 1 {
		return zipfSizes(n, t)
	}
	sizes := zipfSizes(n-t*(min-1), t)
	for k := range sizes {
		sizes[k] += min - 1
	}
	return sizes
}

func newRun(sc *Scenario, policy string, progress io.Writer) (*run, error) {
	r := &run{sc: sc, policy: policy, clock: &vclock{t: base}, dur: sc.Duration.Seconds(),
		incidents: map[int64]*IncidentReport{}, progress: progress}
	r.rng = rand.New(rand.NewPCG(sc.Seed, 0x5eed))
	cfg := health.DefaultConfig()
	cfg.Seed = sc.Seed
	if policy == "naive" {
		cfg.Policy = health.PolicyNaive
	}
	r.eng = health.New(cfg, r.clock, slog.New(slog.DiscardHandler), sink{r})
	r.holdMax = int64(cfg.SendHoldMax / time.Second)
	if r.holdMax <= 0 {
		r.holdMax = math.MaxInt32
	}
	total := 0
	for k := range sc.Providers {
		total += sc.Providers[k].Inboxes
	}
	tenants := 0
	for k := range sc.Providers {
		tenants += sc.Providers[k].Tenants
	}
	r.eng.Grow(total, tenants)
	n := total
	r.in = make([]inbox, n)
	r.invErr = make([]*simError, n)
	r.detectedAt = make([]int32, n)
	r.mFree = -1
	r.wheel = make([][]uint64, ringSize)
	r.far = make([][]farEvent, r.dur>>ringBits+2)
	r.reqBy = make([]int64, len(sc.Providers))
	r.thrBy = make([]int64, len(sc.Providers))
	r.stormWin = make([]window, len(sc.Providers))
	r.quietSecs = make([]int64, len(sc.Providers))
	r.quietReq = make([]int64, len(sc.Providers))
	r.preSecs = make([]int64, len(sc.Providers))
	r.preReq = make([]int64, len(sc.Providers))
	r.lastEnd = make([]int64, len(sc.Providers))
	for k := range r.lastEnd {
		r.lastEnd[k] = -1
	}

	var tenFirst [][]int32 // per provider: first inbox of each tenant rank, plus end
	for k := range sc.Providers {
		ps := &sc.Providers[k]
		pv, _ := holdfast.ParseProvider(ps.Name)
		p := &simProv{spec: ps, pi: uint8(k), first: int32(r.eng.Len()),
			mailRate: ps.MailPerInboxDay / 86400, sendRate: ps.SendsPerInboxDay / 86400,
			lifetime: int32(ps.TokenLifetime.Seconds()), capacity: ps.CapacityPerS}
		p.invalid = classifyError(ps.Name, ps.Errors.Invalid)
		p.transient = classifyError(ps.Name, ps.Errors.Transient)
		p.thrott = classifyError(ps.Name, ps.Errors.Throttled)
		sizes := tenantSizes(ps.Inboxes, ps.Tenants, ps.MinTenantSize, ps.MaxTenantSize)
		bounds := make([]int32, 0, len(sizes)+1)
		for rank, sz := range sizes {
			t, err := r.eng.AddTenant(pv)
			if err != nil {
				return nil, err
			}
			if rank == 0 {
				p.firstTen = t
			}
			bounds = append(bounds, int32(r.eng.Len()))
			for j := 0; j < sz; j++ {
				i, err := r.eng.AddInbox(t)
				if err != nil {
					return nil, err
				}
				r.in[i].prov = uint8(k)
			}
		}
		bounds = append(bounds, int32(r.eng.Len()))
		tenFirst = append(tenFirst, bounds)
		p.end = int32(r.eng.Len())
		r.provs = append(r.provs, p)
	}
	// Ground truth: background invalidations.
	for i := range r.in {
		p := r.provs[r.in[i].prov]
		r.in[i].invalidAt = math.MaxInt32
		r.in[i].affEvt = -1
		r.in[i].mHead, r.in[i].mTail, r.in[i].hHead = -1, -1, -1
		if rate := p.spec.Background.InvalidationsPerInboxDay / 86400; rate > 0 {
			if t := r.rng.ExpFloat64() / rate; t < float64(r.dur) {
				r.in[i].invalidAt = int32(t)
				r.invErr[i] = p.invalid
			}
		}
	}
	// Events.
	r.outOf = make([]int16, len(sc.Events))
	for k := range sc.Events {
		ev := &sc.Events[k]
		r.outOf[k] = -1
		p := r.provByName(ev.Provider)
		member := r.scope(p, tenFirst[p.pi], ev.Scope)
		switch ev.Kind {
		case "outage":
			o := &simOutage{idx: k, prov: int(p.pi), start: ev.Start.Seconds(), end: ev.End.Seconds(), rate: *ev.FailureRate, member: member}
			o.lastFail = o.end
			if ev.Period != nil {
				o.period = ev.Period.Seconds()
				o.dutyS = int64(math.Round(float64(o.period) * *ev.Duty))
				// A flapping outage last fails at the end of its last
				// failing phase; recovery is measured from there.
				if o.end > o.start {
					k := (o.end - o.start - 1) / o.period
					o.lastFail = min(o.end, o.start+k*o.period+o.dutyS)
				}
			}
			for _, es := range ev.Errors {
				se := classifyError(ev.Provider, es)
				o.total += es.Weight
				se.cum = o.total
				o.errs = append(o.errs, se)
			}
			r.outOf[k] = int16(len(r.outages))
			p.outages = append(p.outages, len(r.outages))
			r.outages = append(r.outages, o)
		case "revocation":
			se := p.invalid
			if ev.Error != nil {
				se = classifyError(ev.Provider, ev.Error)
			}
			at := int32(ev.At.Seconds())
			for i := p.first; i < p.end; i++ {
				if member[i>>6]&(1<<(i&63)) != 0 && at < r.in[i].invalidAt {
					r.in[i].invalidAt = at
					r.invErr[i] = se
				}
			}
		}
	}
	r.recO = make([]hist, len(r.outages))
	r.work = make([]recoveryWork, len(r.outages))
	// Initial per-inbox schedule, staggered.
	ka := int64(r.eng.Config().KeepAlive / time.Second)
	for i := int32(0); i < int32(n); i++ {
		p := r.provs[r.in[i].prov]
		if p.lifetime > 0 {
			r.in[i].tokenAt = -int32(r.rng.Int64N(int64(p.lifetime)))
		}
		r.in[i].nextMail = math.MaxInt32
		if p.mailRate > 0 {
			r.in[i].nextMail = int32(min(float64(math.MaxInt32), r.rng.ExpFloat64()/p.mailRate+0.5))
		}
		r.push(min(int64(r.in[i].nextMail), ka), evWake, i, 0)
		if p.sendRate > 0 {
			r.push(int64(r.rng.ExpFloat64()/p.sendRate+0.5), evSendGen, i, 0)
		}
		r.push(1+r.rng.Int64N(ka-1), evKeepAlive, i, 0)
	}
	r.series = newSeries(r)
	return r, nil
}

// scope returns the bitmap of inboxes of p selected by s.
func (r *run) scope(p *simProv, bounds []int32, s Scope) []uint64 {
	nt := len(bounds) - 1
	inT := make([]bool, nt)
	for k := range inT {
		inT[k] = true
	}
	if s.TenantFraction != nil {
		perm := r.rng.Perm(nt)
		cut := int(math.Round(*s.TenantFraction * float64(nt)))
		for k := range inT {
			inT[k] = false
		}
		for _, k := range perm[:cut] {
			inT[k] = true
		}
	}
	if s.LargestTenants != nil {
		for k := *s.LargestTenants; k < nt; k++ {
			inT[k] = false
		}
	}
	if s.TenantRank != nil {
		for k := range inT {
			if k != *s.TenantRank-1 {
				inT[k] = false
			}
		}
	}
	bm := make([]uint64, (len(r.in)+63)/64)
	for k := 0; k < nt; k++ {
		if !inT[k] {
			continue
		}
		for i := bounds[k]; i < bounds[k+1]; i++ {
			if s.InboxFraction != nil && r.rng.Float64() >= *s.InboxFraction {
				continue
			}
			bm[i>>6] |= 1 << (i & 63)
		}
	}
	return bm
}

// The event queue is a timing wheel of ringSize one-second slots covering
// the current block of ringSize seconds; events of later blocks wait in a
// per-block overflow list and are spread into the ring when their block
// starts. Slots keep their capacity from block to block.
const (
	ringBits = 10
	ringSize = 1 << ringBits
)

// prefetch is how many events ahead the loop touches state.
const prefetch = 8

type farEvent struct {
	at int64
	ev uint64
}

func (r *run) push(at int64, kind uint64, i int32, aux uint32) {
	if at < r.now {
		at = r.now
	}
	if at > r.dur {
		return
	}
	ev := kind<<60 | uint64(aux&0x0fffffff)<<32 | uint64(uint32(i))
	if at>>ringBits == r.now>>ringBits {
		r.wheel[at&(ringSize-1)] = append(r.wheel[at&(ringSize-1)], ev)
		return
	}
	blk := at >> ringBits
	r.far[blk] = append(r.far[blk], farEvent{at, ev})
}

// startBlock moves the events of the block starting now into the ring.
func (r *run) startBlock() {
	blk := r.now >> ringBits
	for _, f := range r.far[blk] {
		r.wheel[f.at&(ringSize-1)] = append(r.wheel[f.at&(ringSize-1)], f.ev)
	}
	r.far[blk] = nil
}

// outageFor returns the outage covering inbox i now and failing now, or nil.
func (r *run) outageFor(i int32) *simOutage {
	p := r.provs[r.in[i].prov]
	for _, k := range p.outages {
		o := r.outages[k]
		if r.now < o.start || r.now >= o.end || o.member[i>>6]&(1<<(i&63)) == 0 {
			continue
		}
		if o.period > 0 && (r.now-o.start)%o.period >= o.dutyS {
			continue
		}
		return o
	}
	return nil
}

// request simulates one provider request for inbox i.
func (r *run) request(i int32) (bool, *classify.Verdict) {
	pk := r.in[i].prov
	p := r.provs[pk]
	r.rep.ProviderRequests.Total++
	r.reqSec++
	r.reqBy[pk]++
	if r.granting {
		r.rep.RecoveryRequests.Total++
	}
	p.reqInterval++
	if o := r.outageFor(i); o != nil && r.rng.Float64() < o.rate {
		x := r.rng.Float64() * o.total
		e := o.errs[len(o.errs)-1]
		for _, c := range o.errs {
			if x < c.cum {
				e = c
				break
			}
		}
		if r.in[i].affEvt != int16(o.idx) {
			if r.in[i].affEvt < 0 || !r.in[i].recovered || true {
				r.in[i].affEvt = int16(o.idx)
				r.in[i].recovered = false
			}
		}
		p.errInterval++
		return false, &e.verdict
	}
	if r.now >= int64(r.in[i].invalidAt) {
		p.errInterval++
		return false, &r.invErr[i].verdict
	}
	if p.secReq++; p.secReq > r.capacity(p) {
		p.errInterval++
		r.thrBy[pk]++
		r.rep.ProviderRequests.Throttled++
		if r.granting {
			r.rep.RecoveryRequests.Throttled++
		}
		return false, &p.thrott.verdict
	}
	if rt := p.spec.Background.TransientErrorRate; rt > 0 && r.rng.Float64() < rt {
		p.errInterval++
		return false, &p.transient.verdict
	}
	return true, nil
}

func (r *run) capacity(p *simProv) float64 { return r.capacityAt(p, r.now) }

// capacityAt returns provider p's capacity at second t.
func (r *run) capacityAt(p *simProv, t int64) float64 {
	c := p.capacity
	for k := range r.sc.Events {
		ev := &r.sc.Events[k]
		if ev.Kind == "throttle" && ev.Provider == p.spec.Name && t >= ev.Start.Seconds() && t < ev.End.Seconds() {
			c = *ev.CapacityPerS
		}
	}
	return c
}

// visit makes the requests of one operation for inbox i, if the engine
// admits it. It reports whether the operation succeeded.
func (r *run) visit(i int32, op health.Op, send int32) bool {
	switch r.eng.Admit(i, op) {
	case health.Defer:
		return false
	case health.Hold:
		r.holdSend(i, send)
		return false
	case health.Fail:
		if send >= 0 {
			r.sFailed[send] = true
		}
		return false
	}
	p := r.provs[r.in[i].prov]
	if p.lifetime == 0 || int32(r.now)-r.in[i].tokenAt >= p.lifetime {
		ok, v := r.request(i)
		d := r.eng.Observe(i, health.Outcome{Op: health.OpRefresh, OK: ok, Verdict: v})
		if !ok {
			r.after(i, d, send)
			return false
		}
		if p.lifetime > 0 {
			r.in[i].tokenAt = int32(r.now)
		}
	}
	ok, v := r.request(i)
	d := r.eng.Observe(i, health.Outcome{Op: op, OK: ok, Verdict: v})
	if !ok {
		r.after(i, d, send)
		return false
	}
	switch op {
	case health.OpSync:
		r.synced(i)
	case health.OpSend:
		r.delivered(send)
	}
	return true
}

// after handles a failed operation's decision.
func (r *run) after(i int32, d health.Decision, send int32) {
	if !d.RetryAt.IsZero() {
		r.in[i].retryGen++
		r.push(int64(d.RetryAt.Sub(base)/time.Second), evRetry, i, uint32(r.in[i].retryGen))
	}
	if send < 0 {
		return
	}
	if d.State == holdfast.StateConnected && !d.RetryAt.IsZero() {
		r.push(int64(d.RetryAt.Sub(base)/time.Second), evSendDue, i, uint32(send))
		return
	}
	if a := r.eng.Admit(i, health.OpSend); a == health.Fail {
		r.sFailed[send] = true
	} else if a == health.Allow {
		r.push(r.now+1, evSendDue, i, uint32(send))
	} else {
		r.holdSend(i, send)
	}
}

func (r *run) holdSend(i, s int32) {
	if s < 0 {
		return
	}
	// The send queue fails a send held SendHoldMax past its due time
	// (jobs' send worker, SendReasonHeldTooLong).
	r.push(int64(r.sDue[s])+r.holdMax, evSendDeadline, i, uint32(s))
	r.sNext[s] = r.in[i].hHead
	r.in[i].hHead = s
}

// synced records a successful sync: every pending mail is fetched.
func (r *run) synced(i int32) {
	r.in[i].syncedAt = uint8(r.now)
	if a := r.in[i].affEvt; a >= 0 && !r.in[i].recovered && r.now >= r.outages[r.outOf[a]].lastFail {
		r.in[i].recovered = true
		r.recH.add(r.now - r.outages[r.outOf[a]].lastFail)
		r.recO[r.outOf[a]].add(r.now - r.outages[r.outOf[a]].lastFail)
	}
	for m := r.in[i].mHead; m >= 0; {
		nx := r.mNext[m]
		r.rep.Mail.Synced++
		r.lagH.add(r.now - int64(r.mAt[m]))
		r.mNext[m] = r.mFree
		r.mFree = m
		m = nx
	}
	r.in[i].mHead, r.in[i].mTail = -1, -1
}

func (r *run) delivered(s int32) {
	if s < 0 {
		return
	}
	r.sDeliv[s]++
	if r.sDeliv[s] == 1 {
		late := r.now - int64(r.sDue[s])
		r.sLate[s] = late > r.holdMax
		if late <= 120 {
			r.rep.Sends.OnTime++
		} else {
			r.rep.Sends.Late++
			r.lateH.add(late)
		}
	} else if r.sDeliv[s] == 2 {
		r.rep.Sends.Duplicated++
	}
}

func (r *run) newSend(i int32, due int64) int32 {
	s := int32(len(r.sDue))
	r.sDue = append(r.sDue, int32(due))
	r.sInbox = append(r.sInbox, i)
	r.sNext = append(r.sNext, -1)
	r.sDeliv = append(r.sDeliv, 0)
	r.sFailed = append(r.sFailed, false)
	r.sLate = append(r.sLate, false)
	return s
}

// drain carries out what the engine decided inside the last call.
func (r *run) drain() {
	for len(r.grants) > 0 || len(r.resumed) > 0 {
		for len(r.grants) > 0 {
			g := r.grants[0]
			r.grants = r.grants[1:]
			if g.probe {
				r.visit(g.i, health.OpProbe, -1)
			} else {
				r.granting = true
				r.visit(g.i, health.OpSync, -1)
				r.granting = false
			}
		}
		for len(r.resumed) > 0 {
			i := r.resumed[0]
			r.resumed = r.resumed[1:]
			if r.eng.State(i) != holdfast.StateConnected {
				continue
			}
			// Push was lost or unanswered while it was away: catch up,
			// unless the request that brought it back was that sync.
			if r.in[i].syncedAt != uint8(r.now) {
				r.visit(i, health.OpSync, -1)
			}
			h := r.in[i].hHead
			r.in[i].hHead = -1
			for s := h; s >= 0; {
				nx := r.sNext[s]
				r.sNext[s] = -1
				if r.sDeliv[s] == 0 && !r.sFailed[s] {
					r.visit(i, health.OpSend, s)
				}
				s = nx
			}
		}
	}
	r.grants = r.grants[:0]
}

func (r *run) handle(ev uint64) {
	kind := ev >> 60
	aux := uint32(ev>>32) & 0x0fffffff
	i := int32(uint32(ev))
	p := r.provs[r.in[i].prov]
	switch kind {
	case evWake:
		ka := int64(r.eng.Config().KeepAlive / time.Second)
		if r.now >= int64(r.in[i].nextMail) {
			r.mailArrives(i)
			r.in[i].nextMail = int32(min(float64(math.MaxInt32), float64(r.now)+r.rng.ExpFloat64()/p.mailRate+0.5))
			if r.outageFor(i) == nil { // push notification
				r.visit(i, health.OpSync, -1)
			}
		} else if r.eng.KeepAliveUnix(i)-baseUnix <= r.now {
			r.keepAlive(i)
		}
		next := r.eng.KeepAliveUnix(i) - baseUnix
		if next <= r.now {
			next = r.now + ka
		}
		if r.policy == "naive" && r.gone(i) {
			next = math.MaxInt64
		}
		r.push(min(next, int64(r.in[i].nextMail)), evWake, i, 0)
	case evSendGen:
		r.push(r.now+int64(r.rng.ExpFloat64()/p.sendRate+0.5), evSendGen, i, 0)
		if r.rng.Float64() < p.spec.ScheduledFraction {
			due := r.now + 600 + r.rng.Int64N(86400-600+1)
			if due <= r.dur {
				s := r.newSend(i, due)
				r.push(due, evSendDue, i, uint32(s))
			}
			return
		}
		s := r.newSend(i, r.now)
		r.visit(i, health.OpSend, s)
	case evSendDue:
		s := int32(aux)
		if r.sDeliv[s] == 0 && !r.sFailed[s] {
			r.visit(i, health.OpSend, s)
		}
	case evKeepAlive: // the first, staggered probe
		r.keepAlive(i)
	case evRetry:
		if aux == uint32(r.in[i].retryGen) {
			r.visit(i, health.OpSync, -1)
		}
	case evSendDeadline:
		if s := int32(aux); r.policy != "naive" && r.sDeliv[s] == 0 && !r.sFailed[s] {
			r.sFailed[s] = true
		}
	}
}

func (r *run) mailArrives(i int32) {
	r.rep.Mail.Arrived++
	m := r.mFree
	if m >= 0 {
		r.mFree = r.mNext[m]
		r.mAt[m] = int32(r.now)
	} else {
		m = int32(len(r.mAt))
		r.mAt = append(r.mAt, int32(r.now))
		r.mNext = append(r.mNext, -1)
	}
	r.mNext[m] = -1
	if r.in[i].mTail >= 0 {
		r.mNext[r.in[i].mTail] = m
	} else {
		r.in[i].mHead = m
	}
	r.in[i].mTail = m
}

// gone reports whether inbox i waits for its owner or an administrator.
func (r *run) gone(i int32) bool {
	st := r.eng.State(i)
	return st == holdfast.StateNeedsReconnect || st == holdfast.StateNeedsAdmin
}

func (r *run) keepAlive(i int32) {
	if r.policy == "naive" && r.gone(i) {
		return
	}
	// The keep-alive is an incremental sync: it proves the credential and
	// fetches mail whose push was lost.
	r.visit(i, health.OpSync, -1)
}

// loop runs the virtual clock to the end.
func (r *run) loop(ctx context.Context) error {
	start := time.Now()
	nextPct := int64(0)
	for r.now = 0; r.now <= r.dur; r.now++ {
		r.clock.t = base.Add(time.Duration(r.now) * time.Second)
		if r.now&(ringSize-1) == 0 {
			r.startBlock()
		}
		r.eng.Tick()
		r.drain()
		slot := r.now & (ringSize - 1)
		for k := 0; k < len(r.wheel[slot]); k++ {
			// Software prefetch: touch the state of an event a few ahead
			// so that its cache misses overlap this event's work.
			if k+prefetch < len(r.wheel[slot]) {
				j := int32(uint32(r.wheel[slot][k+prefetch]))
				r.touched += r.in[j].prov + r.eng.Touch(j)
			}
			r.handle(r.wheel[slot][k])
			r.events++
			if len(r.grants)+len(r.resumed) > 0 {
				r.drain()
			}
		}
		r.wheel[slot] = r.wheel[slot][:0]
		r.endSecond()
		if r.now*100/max(r.dur, 1) >= nextPct {
			if err := ctx.Err(); err != nil {
				return err
			}
			r.showProgress(nextPct, start)
			nextPct++
		}
	}
	if r.progress != nil {
		fmt.Fprintln(r.progress)
	}
	return nil
}

func (r *run) showProgress(pct int64, start time.Time) {
	if r.progress == nil {
		return
	}
	const w = 30
	n := int(pct * w / 100)
	bar := make([]byte, w)
	for k := range bar {
		if k < n {
			bar[k] = '#'
		} else {
			bar[k] = '.'
		}
	}
	fmt.Fprintf(r.progress, "\r%s %s [%s] %3d%% virtual %s, %d events, %.0fs",
		r.sc.Name, r.policy, bar, pct, (time.Duration(r.now) * time.Second).String(), r.events, time.Since(start).Seconds())
}

func (r *run) endSecond() {
	out := false
	for _, o := range r.outages {
		if r.now >= o.start && r.now < o.end {
			out = true
		}
	}
	if out {
		r.outageSecs++
		r.outageReq += r.reqSec
	} else {
		r.baseSecs++
		r.baseReq += r.reqSec
	}
	if r.reqSec > r.rep.ProviderRequests.PeakPerS {
		r.peakAt = r.now
		r.rep.ProviderRequests.PeakPerS = r.reqSec
	}
	r.reqSec = 0
	r.countSecond()
	for _, p := range r.provs {
		p.secReq = 0
	}
	r.series.sample(r)
}

// hist is a histogram of whole seconds.
type hist struct {
	b []int64
	n int64
}

func (h *hist) add(v int64) {
	if v < 0 {
		v = 0
	}
	if v >= int64(len(h.b)) {
		nb := make([]int64, max(v+1, int64(len(h.b))*2, 1024))
		copy(nb, h.b)
		h.b = nb
	}
	h.b[v]++
	h.n++
}

func (h *hist) q(q float64) *float64 {
	if h.n == 0 {
		return nil
	}
	want := int64(math.Ceil(q * float64(h.n)))
	want = max(want, 1)
	var acc int64
	for v, c := range h.b {
		acc += c
		if acc >= want {
			f := float64(v)
			return &f
		}
	}
	f := float64(len(h.b) - 1)
	return &f
}

func sortedKeys(m map[string]Bound) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

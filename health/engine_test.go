package health

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

var (
	revoked   = &classify.Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonTokenRevoked, Scope: holdfast.ScopeAccount, Action: holdfast.ActionReconnect}
	consent   = &classify.Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonConsentRequired, Scope: holdfast.ScopeApp, Action: holdfast.ActionAdminConsent}
	transient = &classify.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonProviderUnavailable, Scope: holdfast.ScopeAccount, Action: holdfast.ActionRetry}
	throttled = &classify.Verdict{Class: holdfast.ClassRecoverable, Reason: holdfast.ReasonThrottled, Scope: holdfast.ScopeOperation, Action: holdfast.ActionRetryAfter, RetryAfter: 30 * time.Second}
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

// recorder is a Sink that keeps everything.
type recorder struct {
	trans     []Transition
	notices   []Notice
	grants    []Grant
	incidents map[int64]Incident
	held      []HeldAction
	// probesAt counts probe grants per second.
	probesAt map[time.Time]int
}

func (r *recorder) Transition(t Transition)      { r.trans = append(r.trans, t) }
func (r *recorder) IncidentChanged(in *Incident) { r.incidents[in.ID] = *in }
func (r *recorder) HeldChanged(h HeldAction)     { r.held = append(r.held, h) }
func (r *recorder) Notice(n Notice)              { r.notices = append(r.notices, n) }
func (r *recorder) Grant(g Grant) {
	r.grants = append(r.grants, g)
	if g.Probe {
		r.probesAt[g.At]++
	}
}

// world drives an engine with a synthetic fleet of one provider: every
// inbox makes a request about every period, retries when told, and the
// outcome function says what the provider answers.
type world struct {
	t       *testing.T
	e       *Engine
	clk     *fakeClock
	rec     *recorder
	start   time.Time
	sec     int64
	next    []int64
	tenants [][]int32
	rng     *rand.Rand
	period  int64
	// wheel, when set (useWheel), schedules visits by second instead of
	// scanning every inbox every second: for large fleets.
	wheel map[int64][]int32
	// outcome returns nil for success, or the error's verdict.
	outcome func(i int32, sec int64) *classify.Verdict
}

func newWorld(t *testing.T, cfg Config, inboxes, tenants int) *world {
	t.Helper()
	return buildWorld(t, cfg, zipfSizes(inboxes, tenants))
}

// zipfSizes returns Zipf(1.1) tenant sizes for inboxes over tenants,
// largest first, at least one inbox each.
func zipfSizes(inboxes, tenants int) []int {
	var h float64
	for k := 1; k <= tenants; k++ {
		h += math.Pow(float64(k), -1.1)
	}
	sizes := make([]int, 0, tenants)
	left := inboxes
	for k := 1; k <= tenants; k++ {
		n := max(1, int(math.Round(float64(inboxes)*math.Pow(float64(k), -1.1)/h)))
		if k == tenants || n > left-(tenants-k) {
			n = max(1, left-(tenants-k))
		}
		left -= n
		sizes = append(sizes, n)
	}
	return sizes
}

// buildWorld makes a world of Microsoft tenants of the given sizes.
func buildWorld(t *testing.T, cfg Config, sizes []int) *world {
	t.Helper()
	start := time.Date(2025, 3, 1, 18, 0, 0, 0, time.UTC)
	w := &world{t: t, clk: &fakeClock{t: start}, rec: &recorder{incidents: map[int64]Incident{}, probesAt: map[time.Time]int{}}, start: start,
		rng: rand.New(rand.NewPCG(1, 2)), period: 600}
	w.e = New(cfg, w.clk, nil, w.rec)
	for _, n := range sizes {
		ten, err := w.e.AddTenant(holdfast.ProviderMicrosoft)
		if err != nil {
			t.Fatal(err)
		}
		var members []int32
		for j := 0; j < n; j++ {
			i, err := w.e.AddInbox(ten)
			if err != nil {
				t.Fatal(err)
			}
			members = append(members, i)
			w.next = append(w.next, 1+w.rng.Int64N(w.period))
		}
		w.tenants = append(w.tenants, members)
	}
	w.outcome = func(int32, int64) *classify.Verdict { return nil }
	w.e.Tick()
	return w
}

// visit makes one request for inbox i if the engine admits it.
func (w *world) visit(i int32) {
	if w.e.Admit(i, OpSync) != Allow {
		w.next[i] = w.sec + 60
		w.sched(i)
		return
	}
	v := w.outcome(i, w.sec)
	d := w.e.Observe(i, Outcome{Op: OpSync, OK: v == nil, Verdict: v})
	w.next[i] = w.sec + w.period/2 + w.rng.Int64N(w.period)
	if !d.RetryAt.IsZero() {
		w.next[i] = int64(d.RetryAt.Sub(w.start) / time.Second)
	}
	w.sched(i)
}

// useWheel switches the world to a timing wheel (map of second → inboxes).
func (w *world) useWheel() {
	w.wheel = map[int64][]int32{}
	for i := range w.next {
		w.sched(int32(i))
	}
}

// sched files inbox i under its next visit, if the wheel is in use.
func (w *world) sched(i int32) {
	if w.wheel == nil {
		return
	}
	s := max(w.next[i], w.sec+1)
	w.wheel[s] = append(w.wheel[s], i)
}

// runTo advances the world to d after the start, second by second.
func (w *world) runTo(d time.Duration) {
	end := int64(d / time.Second)
	for w.sec < end {
		w.sec++
		w.clk.t = w.start.Add(time.Duration(w.sec) * time.Second)
		w.e.Tick()
		w.drainGrants()
		if w.wheel != nil {
			due := w.wheel[w.sec]
			delete(w.wheel, w.sec)
			for _, i := range due {
				if w.next[i] <= w.sec {
					w.visit(i)
					w.drainGrants()
				}
			}
			continue
		}
		for i := range w.next {
			if w.next[i] <= w.sec {
				w.visit(int32(i))
				w.drainGrants()
			}
		}
	}
}

func (w *world) drainGrants() {
	for len(w.rec.grants) > 0 {
		g := w.rec.grants[0]
		w.rec.grants = w.rec.grants[1:]
		v := w.outcome(g.Inbox, w.sec)
		d := w.e.Observe(g.Inbox, Outcome{Op: OpSync, OK: v == nil, Verdict: v})
		if !d.RetryAt.IsZero() {
			w.next[g.Inbox] = int64(d.RetryAt.Sub(w.start) / time.Second)
			w.sched(g.Inbox)
		}
	}
}

// at is the instant d after the start.
func (w *world) at(d time.Duration) time.Time { return w.start.Add(d) }

// acted counts moves to a state that asks someone to act inside [a, b).
func (w *world) acted(a, b time.Duration) int {
	n := 0
	for _, t := range w.rec.trans {
		if t.To.ActionRequired() != holdfast.RequireNone && !t.At.Before(w.at(a)) && t.At.Before(w.at(b)) {
			n++
		}
	}
	return n
}

// providerIncidents returns the provider-wide incidents.
func (w *world) providerIncidents() []Incident {
	var out []Incident
	for _, in := range w.e.Incidents() {
		if in.Tenant < 0 {
			out = append(out, in)
		}
	}
	return out
}

func (w *world) count(s holdfast.State) int64 {
	return w.e.Counts(holdfast.ProviderMicrosoft)[s]
}

func between(sec int64, a, b time.Duration) bool {
	return sec >= int64(a/time.Second) && sec < int64(b/time.Second)
}

func TestProviderOutageFreezes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, time.Hour, time.Hour+65*time.Minute) {
			return revoked
		}
		return nil
	}
	w.runTo(time.Hour + 30*time.Second)
	inc := w.providerIncidents()
	if len(inc) != 1 || !inc[0].Open() {
		t.Fatalf("At(1h00m30s): provider incidents = %d, want 1 open", len(inc))
	}
	w.runTo(2*time.Hour + 5*time.Minute + 30*time.Minute)
	if n := w.acted(0, 3*time.Hour); n != 0 {
		t.Errorf("Between(0, 2h35m): %d inboxes moved to a state that asks someone to act, want 0", n)
	}
	if len(w.rec.notices) != 0 {
		t.Errorf("notices = %d, want 0", len(w.rec.notices))
	}
	if got := w.count(holdfast.StateConnected); got != 3000 {
		t.Errorf("At(2h35m): connected = %d, want 3000 (%v)", got, w.e.Counts(holdfast.ProviderMicrosoft))
	}
	// It resolves Settle (10 min) after its recovery began, a few minutes
	// after the outage's end.
	if in := w.providerIncidents(); in[0].Open() || in[0].ResolvedAt.After(w.at(2*time.Hour+20*time.Minute)) {
		t.Errorf("incident resolved at %v, want by 2h20m", in[0].ResolvedAt)
	}
	// The review counts every paused inbox back, by a probe or through the
	// recovery after the close, and the sink (the store) was told.
	in := w.providerIncidents()[0]
	if stored := w.rec.incidents[in.ID]; in.Affected == 0 || in.Recovered != in.Affected || stored.Recovered != in.Recovered {
		t.Errorf("incident affected %d, recovered %d (stored %d), want every affected inbox recovered", in.Affected, in.Recovered, stored.Recovered)
	}
}

func TestRegionalPartialOutage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	region := map[int32]bool{}
	for k, members := range w.tenants {
		if k%3 == 0 {
			for _, i := range members {
				region[i] = true
			}
		}
	}
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if region[i] && between(sec, time.Hour, 2*time.Hour) && w.rng.Float64() < 0.83 {
			if w.rng.IntN(2) == 0 {
				return revoked
			}
			return transient
		}
		return nil
	}
	w.runTo(time.Hour + 60*time.Second)
	if len(w.providerIncidents()) == 0 {
		t.Fatal("At(1h01m): no provider incident, want one")
	}
	w.runTo(3 * time.Hour)
	if n := w.acted(0, 3*time.Hour); n != 0 {
		t.Errorf("Between(0, 3h): %d disconnects, want 0", n)
	}
}

func TestFlapping(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, time.Hour, 2*time.Hour) && (sec-3600)%1200 < 600 {
			return revoked
		}
		return nil
	}
	w.runTo(3 * time.Hour)
	if n := w.acted(0, 3*time.Hour); n != 0 {
		t.Errorf("Between(0, 3h): %d disconnects, want 0", n)
	}
	if got := w.count(holdfast.StateConnected); got != 3000 {
		t.Errorf("At(3h): connected = %d, want 3000", got)
	}
	if len(w.rec.notices) != 0 {
		t.Errorf("notices = %d, want 0", len(w.rec.notices))
	}
}

func TestBackgroundRevocationsAreNotified(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	lost := map[int32]int64{}
	for k := 0; k < 30; k++ {
		lost[int32(w.rng.IntN(3000))] = 3600 + w.rng.Int64N(4*3600)
	}
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if at, ok := lost[i]; ok && sec >= at {
			return revoked
		}
		if w.rng.Float64() < 0.002 {
			return transient
		}
		return nil
	}
	w.runTo(7 * time.Hour)
	if in := w.e.Incidents(); len(in) != 0 {
		t.Errorf("incidents = %v, want none", in)
	}
	notified := map[int32]int{}
	for _, n := range w.rec.notices {
		notified[n.Inbox]++
	}
	for i, at := range lost {
		if w.e.State(i) != holdfast.StateNeedsReconnect {
			t.Errorf("inbox %d lost at %ds: state %s, want needs_reconnect", i, at, w.e.State(i))
		}
		if notified[i] != 1 {
			t.Errorf("inbox %d: %d notices, want 1", i, notified[i])
		}
	}
	if n := w.acted(0, 7*time.Hour); n != len(lost) {
		t.Errorf("disconnects = %d, want %d", n, len(lost))
	}
}

func TestTenantRevokesConsent(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.RecheckPerSec = 5
	w := newWorld(t, cfg, 3000, 150)
	big := map[int32]bool{}
	for _, i := range w.tenants[0] {
		big[i] = true
	}
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if big[i] && sec >= 3600 {
			return consent
		}
		return nil
	}
	w.runTo(2*time.Hour + 30*time.Minute)
	if len(w.providerIncidents()) != 0 {
		t.Errorf("provider incidents = %d, want 0", len(w.providerIncidents()))
	}
	for i := range big {
		if s := w.e.State(i); s != holdfast.StateNeedsAdmin {
			t.Fatalf("At(2h30m): inbox %d of the revoking tenant is %s, want needs_admin", i, s)
		}
	}
	admin := 0
	for _, n := range w.rec.notices {
		if !n.Admin {
			t.Errorf("user notice %+v for an admin-scope event", n)
		}
		admin++
	}
	if admin != 1 {
		t.Errorf("admin notices = %d, want 1", admin)
	}
	if n := w.acted(0, 3*time.Hour); n != len(big) {
		t.Errorf("disconnects = %d, want %d (the tenant only)", n, len(big))
	}
	// The whole tenant acted on at once is re-verified at a bounded pace.
	for at, n := range w.rec.probesAt {
		if n > cfg.RecheckPerSec {
			t.Errorf("%d probes granted at %v, want at most RecheckPerSec = %d", n, at, cfg.RecheckPerSec)
		}
	}
}

func TestOwnBugFreezes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	corrupt := map[int32]bool{}
	for i := int32(0); i < 3000; i++ {
		if w.rng.Float64() < 0.3 {
			corrupt[i] = true
		}
	}
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if corrupt[i] && sec >= 3600 {
			return revoked
		}
		return nil
	}
	w.runTo(3 * time.Hour)
	if len(w.providerIncidents()) == 0 {
		t.Fatal("no provider incident for a fleet-wide bug, want one")
	}
	if n := w.acted(0, 3*time.Hour); n != 0 {
		t.Errorf("disconnects = %d, want 0", n)
	}
	if len(w.rec.notices) != 0 {
		t.Errorf("notices = %d, want 0", len(w.rec.notices))
	}
}

// blind returns a config whose detector never fires.
func blind() Config {
	cfg := DefaultConfig()
	cfg.MinShare, cfg.PanicShare, cfg.TenantShare, cfg.ElevatedFactor = 2, 2, 2, 1
	return cfg
}

func TestGuardBoundsWhenDetectorMisses(t *testing.T) {
	t.Parallel()
	w := newWorld(t, blind(), 3000, 150)
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, time.Hour, time.Hour+65*time.Minute) {
			return revoked
		}
		return nil
	}
	w.runTo(time.Hour + 65*time.Minute)
	// Budget: max(60/h, 0.2% of 3000/h) with a burst of a tenth: at most
	// 6 + 65 moves in 65 minutes, none before confirmation (10 minutes).
	if n := w.acted(0, time.Hour+10*time.Minute); n != 0 {
		t.Errorf("Between(1h, 1h10m): %d disconnects before confirmation was possible, want 0", n)
	}
	if n := w.acted(0, 3*time.Hour); n > 71 {
		t.Errorf("Between(1h, 2h05m): %d disconnects, want at most 71", n)
	}
	if len(w.e.HeldActions()) == 0 {
		t.Error("no held actions, want the excess held")
	}
}

func TestHeldActionRelease(t *testing.T) {
	t.Parallel()
	w := newWorld(t, blind(), 3000, 150)
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if sec >= 3600 {
			return revoked
		}
		return nil
	}
	w.runTo(time.Hour + 20*time.Minute)
	held := w.e.HeldActions()
	if len(held) == 0 {
		t.Fatal("no held actions")
	}
	h := held[0]
	if err := w.e.ReleaseHeld(h.ID); err != nil {
		t.Fatalf("ReleaseHeld(%d) = %v", h.ID, err)
	}
	if s := w.e.State(h.Inbox); s != holdfast.StateNeedsReconnect {
		t.Errorf("released inbox %d is %s, want needs_reconnect", h.Inbox, s)
	}
	if err := w.e.ReleaseHeld(h.ID); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("ReleaseHeld(%d) again = %v, want ErrNotFound", h.ID, err)
	}
}

func TestRetroactiveIncidentRestoresAndCancelsNotices(t *testing.T) {
	t.Parallel()
	w := newWorld(t, blind(), 3000, 150)
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, time.Hour, time.Hour+20*time.Minute) {
			return revoked
		}
		return nil
	}
	w.runTo(time.Hour + 20*time.Minute)
	acted := w.acted(0, 2*time.Hour)
	if acted == 0 {
		t.Fatal("blind detector acted on nobody; the test needs some wrongful disconnects")
	}
	in, err := w.e.Declare(Declaration{Provider: holdfast.ProviderMicrosoft, Tenant: -1,
		Start: w.at(time.Hour), End: w.at(time.Hour + 20*time.Minute), Note: "Microsoft auth outage"})
	if err != nil {
		t.Fatalf("Declare = %v", err)
	}
	if in.Affected != acted {
		t.Errorf("retroactive incident re-verifies %d inboxes, want %d", in.Affected, acted)
	}
	w.runTo(3 * time.Hour)
	if got := w.count(holdfast.StateConnected); got != 3000 {
		t.Errorf("At(3h): connected = %d, want 3000", got)
	}
	if len(w.rec.notices) != 0 {
		t.Errorf("notices = %d, want 0 (re-checked at delivery and cancelled)", len(w.rec.notices))
	}
	got, err := w.e.Incident(in.ID)
	if err != nil || len(got.Timeline) == 0 {
		t.Errorf("Incident(%d) = %+v, %v; want its timeline", in.ID, got, err)
	}
	if _, err := w.e.Declare(Declaration{Provider: "yahoo"}); err == nil {
		t.Error("Declare(yahoo) = nil error, want one naming provider")
	}
}

func TestRestartMidIncident(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, time.Hour, 2*time.Hour) {
			return revoked
		}
		return nil
	}
	w.runTo(time.Hour + 20*time.Minute)
	var buf bytes.Buffer
	if err := w.e.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	e2 := New(DefaultConfig(), w.clk, nil, w.rec)
	if err := e2.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	w.e = e2
	if inc := w.providerIncidents(); len(inc) != 1 || !inc[0].Open() {
		t.Fatalf("after restore: provider incidents %d, want 1 open", len(inc))
	}
	w.runTo(3 * time.Hour)
	if n := w.acted(0, 3*time.Hour); n != 0 {
		t.Errorf("disconnects = %d, want 0", n)
	}
	if got := w.count(holdfast.StateConnected); got != 3000 {
		t.Errorf("At(3h): connected = %d, want 3000", got)
	}
}

func TestSendPolicy(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 100, 10)
	// Degraded: held.
	w.e.Observe(0, Outcome{Op: OpSync, Verdict: transient})
	if a := w.e.Admit(0, OpSend); a != Hold {
		t.Errorf("Admit(degraded, send) = %v, want hold", a)
	}
	// Connected again: allowed.
	w.clk.t = w.clk.t.Add(time.Hour)
	w.e.Observe(0, Outcome{Op: OpSync, OK: true})
	if a := w.e.Admit(0, OpSend); a != Allow {
		t.Errorf("Admit(connected, send) = %v, want allow", a)
	}
	// Needs its owner: reported failed.
	w.e.c.H[1].St = sNeedsReconnect
	if a := w.e.Admit(1, OpSend); a != Fail {
		t.Errorf("Admit(needs_reconnect, send) = %v, want fail", a)
	}
}

func TestNaiveDisconnectsAtOnce(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Policy = PolicyNaive
	w := newWorld(t, cfg, 100, 10)
	d := w.e.Observe(3, Outcome{Op: OpRefresh, Verdict: revoked})
	if d.State != holdfast.StateNeedsReconnect || len(w.rec.notices) != 1 {
		t.Errorf("naive: state %s, %d notices; want needs_reconnect and 1", d.State, len(w.rec.notices))
	}
}

func BenchmarkObserve(b *testing.B) {
	for _, n := range []int{100_000, 1_700_000} {
		b.Run(fmt.Sprintf("inboxes=%d", n), func(b *testing.B) {
			clk := &fakeClock{t: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
			e := New(DefaultConfig(), clk, nil, nil)
			e.Grow(n, n/10)
			for k := 0; k < n/10; k++ {
				ten, _ := e.AddTenant(holdfast.ProviderMicrosoft)
				for j := 0; j < 10; j++ {
					if _, err := e.AddInbox(ten); err != nil {
						b.Fatal(err)
					}
				}
			}
			e.Tick()
			rng := rand.New(rand.NewPCG(1, 1))
			idx := make([]int32, 1<<16)
			for k := range idx {
				idx[k] = int32(rng.IntN(n))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for k := 0; k < b.N; k++ {
				if k&1023 == 0 {
					clk.t = clk.t.Add(time.Second)
					e.Tick()
				}
				i := idx[k&(1<<16-1)]
				o := Outcome{Op: OpSync, OK: true}
				if k%500 == 0 {
					o = Outcome{Op: OpSync, Verdict: transient}
				}
				e.Observe(i, o)
			}
		})
	}
}

func TestThrottleHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 100, 10)
	d := w.e.Observe(5, Outcome{Op: OpSync, Verdict: throttled})
	if wait := d.RetryAt.Sub(w.clk.t); d.State != holdfast.StateConnected || wait < 30*time.Second || wait > 45*time.Second {
		t.Errorf("Observe(throttled) = %+v, want connected and retry after 30 to 45 s", d)
	}
}

func TestSlowOnset(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if sec < 3600 {
			return nil
		}
		p := 0.0005 + (0.05-0.0005)*math.Min(1, float64(sec-3600)/7200)
		if w.rng.Float64() < p {
			return revoked
		}
		return nil
	}
	w.runTo(3*time.Hour + 30*time.Minute)
	inc := w.providerIncidents()
	if len(inc) == 0 {
		t.Fatal("Between(1h, 3h30m): no provider incident for a slow onset to 5%, want one")
	}
	// Before the incident the guard is the only bound: the provider budget
	// (60/h, burst 6) over the time it took.
	open := inc[0].OpenedAt.Sub(w.start)
	if n, bound := w.acted(0, open), 6+int(open.Hours()*60); n > bound {
		t.Errorf("Between(0, %v): %d disconnects, want at most %d", open, n, bound)
	}
	if n := w.acted(open, 4*time.Hour); n != 0 {
		t.Errorf("Between(%v, 3h30m): %d disconnects while frozen, want 0", open, n)
	}
}

// setCanaries marks three inboxes in each of tenants 3 and 4 (two
// "regions") as canaries.
func (w *world) setCanaries() []int32 {
	w.t.Helper()
	var out []int32
	for _, k := range []int{3, 4} {
		for _, i := range w.tenants[k][:3] {
			if err := w.e.SetCanary(i, true); err != nil {
				w.t.Fatal(err)
			}
			out = append(out, i)
		}
	}
	return out
}

// TestCanariesFreezeForOurClientID is anchors test 11 (Google OAuth,
// 2016-04-19): 1.1% of token requests fail, concentrated on our client ID.
// Modelled as: the canaries (on our client ID) and a random 1.1% of inboxes
// get permanent-class errors for 70 minutes. The fleet detector sees 1.1%,
// under its threshold; the canaries freeze the provider.
func TestCanariesFreezeForOurClientID(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	ours := map[int32]bool{}
	for _, i := range w.setCanaries() {
		ours[i] = true
	}
	for i := int32(0); i < 3000; i++ {
		if w.rng.Float64() < 0.011 {
			ours[i] = true
		}
	}
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if ours[i] && between(sec, time.Hour, time.Hour+70*time.Minute) {
			return revoked
		}
		return nil
	}
	w.runTo(time.Hour + 120*time.Second)
	inc := w.providerIncidents()
	if len(inc) != 1 || !inc[0].Open() {
		t.Fatalf("At(1h02m): provider incidents = %d, want 1 open", len(inc))
	}
	if !strings.HasPrefix(inc[0].Evidence, "canaries") {
		t.Errorf("evidence = %q, want the canaries", inc[0].Evidence)
	}
	t.Logf("frozen %v after the onset: %s", inc[0].OpenedAt.Sub(w.at(time.Hour)), inc[0].Evidence)
	w.runTo(3 * time.Hour)
	if n := w.acted(0, 3*time.Hour); n != 0 {
		t.Errorf("Between(0, 3h): %d disconnects, want 0", n)
	}
	if len(w.rec.notices) != 0 {
		t.Errorf("notices = %d, want 0", len(w.rec.notices))
	}
	if got := w.count(holdfast.StateConnected); got != 3000 {
		t.Errorf("At(3h): connected = %d, want 3000 (%v)", got, w.e.Counts(holdfast.ProviderMicrosoft))
	}
	in := w.providerIncidents()[0]
	if in.Open() || in.ResolvedAt.Before(w.at(time.Hour+70*time.Minute)) {
		t.Errorf("incident resolved at %v, want after the failure ended (1h10m)", in.ResolvedAt.Sub(w.start))
	}
}

// TestIncidentWaitsForCanaries: the fleet recovers at 1h10m but the
// canaries fail until 1h30m; the incident stays open until they succeed.
func TestIncidentWaitsForCanaries(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	canary := map[int32]bool{}
	for _, i := range w.setCanaries() {
		canary[i] = true
	}
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, time.Hour, time.Hour+10*time.Minute) || canary[i] && between(sec, time.Hour, time.Hour+30*time.Minute) {
			return revoked
		}
		return nil
	}
	w.runTo(3 * time.Hour)
	inc := w.providerIncidents()
	if len(inc) != 1 {
		t.Fatalf("provider incidents = %d, want 1", len(inc))
	}
	if inc[0].Open() || inc[0].ResolvedAt.Before(w.at(time.Hour+30*time.Minute)) {
		t.Errorf("incident resolved at %v, want after the canaries succeed again (1h30m)", inc[0].ResolvedAt.Sub(w.start))
	}
	if n := w.acted(0, 3*time.Hour); n != 0 || len(w.rec.notices) != 0 {
		t.Errorf("disconnects = %d, notices = %d; want 0 and 0", n, len(w.rec.notices))
	}
}

// TestOneFailingCanaryOpensNothing: one canary whose own credential is
// revoked is not an outage; it is confirmed like any inbox. Canaries
// survive a restart.
func TestOneFailingCanaryOpensNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	canaries := w.setCanaries()
	bad := canaries[0]
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if i == bad && sec >= 3600 {
			return revoked
		}
		return nil
	}
	w.runTo(2*time.Hour + 30*time.Minute)
	if in := w.e.Incidents(); len(in) != 0 {
		t.Errorf("incidents = %+v, want none", in)
	}
	if s := w.e.State(bad); s != holdfast.StateNeedsReconnect {
		t.Errorf("revoked canary is %s, want needs_reconnect", s)
	}
	var buf bytes.Buffer
	if err := w.e.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	e2 := New(DefaultConfig(), w.clk, nil, w.rec)
	if err := e2.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	for _, i := range canaries {
		if !e2.Canary(i) {
			t.Errorf("after restore: inbox %d is no longer a canary", i)
		}
	}
	if e2.Canary(0) || e2.SetCanary(-1, true) == nil {
		t.Error("Canary(0) or SetCanary(-1) misbehave")
	}
	if err := e2.SetCanary(canaries[1], false); err != nil || e2.Canary(canaries[1]) {
		t.Errorf("SetCanary(off) = %v, still canary %v", err, e2.Canary(canaries[1]))
	}
}

// TestMetaGuardWhenDetectorDisabled is anchors test 7: the HubSpot replay
// (every inbox fails permanent-class for 65 minutes) with the detectors
// disabled, at a fleet size where the budget (0.2%/h) is above the
// meta-guard's floor. The budget bounds the disconnects, the meta-guard
// holds every notice, and each wrongful disconnect reverses itself once
// the provider is back.
func TestMetaGuardWhenDetectorDisabled(t *testing.T) {
	t.Parallel()
	const n = 100_000
	cfg := DefaultConfig()
	cfg.DisableDetectors = true
	w := newWorld(t, cfg, n, 2000)
	w.period = 1200
	w.useWheel()
	back := time.Hour + 65*time.Minute
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, time.Hour, back) {
			return revoked
		}
		return nil
	}
	w.runTo(back)
	rate := cfg.ProviderBudgetShare * n // per hour
	acts := w.acted(0, back)
	if bound := int(rate/10 + rate*back.Hours()); acts == 0 || acts > bound {
		t.Errorf("Between(0, 2h05m): %d disconnects, want 1..%d (0.2%%/h plus a burst of a tenth)", acts, bound)
	}
	var storm *Incident
	for _, in := range w.e.Incidents() {
		if in.Kind == holdfast.IncidentNoticeStorm {
			storm = &in
		} else {
			t.Errorf("incident %+v with the detectors disabled", in)
		}
	}
	if storm == nil || !storm.Open() || storm.Affected == 0 {
		t.Fatalf("At(2h05m): notice storm %+v, want one open holding notices", storm)
	}
	t.Logf("%d disconnects; %s at %v; %d notices held", acts, storm.Kind, storm.OpenedAt.Sub(w.start), storm.Affected)
	for w.count(holdfast.StateConnected) < n && w.sec < int64((back+24*time.Hour)/time.Second) {
		w.runTo(time.Duration(w.sec)*time.Second + 10*time.Minute)
	}
	if got := w.count(holdfast.StateConnected); got != n {
		t.Errorf("At(%v): connected = %d, want %d (every wrongful disconnect reversed within 24 h)", time.Duration(w.sec)*time.Second, got, n)
	}
	t.Logf("all reversed %v after the provider came back; %d disconnects in all", time.Duration(w.sec)*time.Second-back, w.acted(0, 48*time.Hour))
	w.runTo(max(time.Duration(w.sec)*time.Second, 3*time.Hour+30*time.Minute))
	if len(w.rec.notices) != 0 {
		t.Errorf("notices = %d, want 0 (held by the meta-guard, then cancelled)", len(w.rec.notices))
	}
	if in, err := w.e.Incident(storm.ID); err != nil || in.Open() {
		t.Errorf("notice storm %+v (%v): want resolved once the rate fell back", in, err)
	}
}

// TestMetaGuardOperatorResolve: an operator's resolve lets the held
// notices go and the meta-guard counts afresh.
func TestMetaGuardOperatorResolve(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.DisableDetectors = true
	cfg.MetaGuardMin = 5
	w := newWorld(t, cfg, 3000, 150)
	lost := map[int32]bool{}
	for len(lost) < 40 {
		lost[int32(w.rng.IntN(3000))] = true
	}
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if lost[i] && sec >= 3600 {
			return revoked
		}
		return nil
	}
	w.runTo(time.Hour + 40*time.Minute)
	var storm Incident
	for _, in := range w.e.Incidents() {
		if in.Kind == holdfast.IncidentNoticeStorm && in.Open() {
			storm = in
		}
	}
	if storm.ID == 0 || len(w.rec.notices) != 0 {
		t.Fatalf("At(1h40m): storm %+v, %d notices; want one open and none delivered", storm, len(w.rec.notices))
	}
	if err := w.e.Resolve(storm.ID); err != nil {
		t.Fatalf("Resolve(%d) = %v", storm.ID, err)
	}
	w.runTo(time.Hour + 60*time.Minute)
	if len(w.rec.notices) == 0 {
		t.Error("no notice delivered after the operator resolved the storm")
	}
	for _, nt := range w.rec.notices {
		if !lost[nt.Inbox] {
			t.Errorf("notice to inbox %d, which was not lost", nt.Inbox)
		}
	}
}

// TestGuardFailsClosed: the guard lives in the engine, so "guard
// unreachable" cannot happen apart from the engine itself. Its boundary is
// the budget: a budget that cannot be taken (zero, or a broken parameter)
// holds every destructive act, never applies it (anchors test 9, §2.3).
func TestGuardFailsClosed(t *testing.T) {
	t.Parallel()
	zero := DefaultConfig()
	zero.ProviderBudgetPerHour, zero.ProviderBudgetShare = 0, 0
	broken := DefaultConfig()
	broken.ProviderBudgetShare = math.NaN()
	for name, cfg := range map[string]Config{"zero": zero, "NaN": broken} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, cfg, 3000, 150)
			lost := map[int32]bool{}
			for len(lost) < 20 {
				lost[int32(w.rng.IntN(3000))] = true
			}
			w.outcome = func(i int32, sec int64) *classify.Verdict {
				if lost[i] && sec >= 3600 {
					return revoked
				}
				return nil
			}
			w.runTo(2*time.Hour + 30*time.Minute)
			if n := w.acted(0, 3*time.Hour); n != 0 {
				t.Errorf("disconnects = %d, want 0", n)
			}
			held := w.e.HeldActions()
			if len(held) != len(lost) {
				t.Fatalf("held actions = %d, want %d", len(held), len(lost))
			}
			if err := w.e.ReleaseHeld(held[0].ID); err != nil || w.e.State(held[0].Inbox) != holdfast.StateNeedsReconnect {
				t.Errorf("ReleaseHeld = %v, state %s; the operator can still act", err, w.e.State(held[0].Inbox))
			}
		})
	}
}

// TestRevokedDuringShortOutageConfirmsAfter replays the outage drill's
// timeline on the engine alone: a three-minute provider outage with the
// drill's short settings, during which one inbox in each of six tenants
// loses its grant for real. Failures counted at the outage's onset belong
// to the provider incident; once it closes they must not make the tenant
// rule open tenant incidents that hold the revoked inboxes' confirmation
// (the drill once saw them stay suspect for minutes this way).
func TestRevokedDuringShortOutageConfirmsAfter(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.ConfirmSpan, cfg.ConfirmStep = 40*time.Second, 16*time.Second
	cfg.Bucket, cfg.CloseWindow = 2*time.Second, 15*time.Second
	w := newWorld(t, cfg, 400, 40)
	w.period = 20
	for i := range w.next {
		w.next[i] = 1 + w.rng.Int64N(w.period)
	}
	lost := map[int32]bool{}
	for k := 10; len(lost) < 6; k++ {
		if len(w.tenants[k]) >= 3 {
			lost[w.tenants[k][0]] = true
		}
	}
	const outage, end = 10 * time.Minute, 13 * time.Minute
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		if between(sec, outage, end) || lost[i] && sec >= int64((outage+30*time.Second)/time.Second) {
			return revoked
		}
		return nil
	}
	w.runTo(end + 3*time.Minute)
	for i := range lost {
		if w.e.State(i) != holdfast.StateNeedsReconnect {
			t.Errorf("At(16m): revoked inbox %d (tenant %d) is %s, want needs_reconnect", i, w.e.Tenant(i), w.e.State(i))
		}
	}
	for _, in := range w.e.Incidents() {
		if in.Tenant >= 0 {
			t.Errorf("tenant incident %d over tenant %d (%s): %v", in.ID, in.Tenant, in.Kind, in.Timeline)
		}
	}
	if n := w.acted(0, end+3*time.Minute); n != len(lost) {
		t.Errorf("Between(0, 16m): %d inboxes asked for action, want the %d revoked", n, len(lost))
	}
	if got := w.count(holdfast.StateConnected); got != 400-int64(len(lost)) {
		t.Errorf("At(16m): connected = %d, want %d (%v)", got, 400-len(lost), w.e.Counts(holdfast.ProviderMicrosoft))
	}
}

// TestRecoveredWithinGraceGetsNoNotice: two inboxes fail permanent-class
// on their own until confirmed. One starts working again a minute after
// its move to needs_reconnect: the re-verification half-way through the
// grace period brings it back and its notice is cancelled. The other is
// notified once, at the end of the grace period.
func TestRecoveredWithinGraceGetsNoNotice(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 3000, 150)
	const flap, lost = int32(100), int32(200)
	var actedAt int64 = -1
	w.outcome = func(i int32, sec int64) *classify.Verdict {
		switch {
		case i == lost && sec >= 3600:
			return revoked
		case i == flap && sec >= 3600 && (actedAt < 0 || sec < actedAt+60):
			if actedAt < 0 && w.e.State(flap) == holdfast.StateNeedsReconnect {
				actedAt = sec
			}
			return revoked
		}
		return nil
	}
	for w.sec < 3*3600 && actedAt < 0 {
		w.runTo(time.Duration(w.sec+1) * time.Second)
		if w.e.State(flap) == holdfast.StateNeedsReconnect {
			actedAt = w.sec
		}
	}
	if actedAt < 0 {
		t.Fatal("the flapping inbox was never confirmed")
	}
	grace := int64(DefaultConfig().NoticeGrace / time.Second)
	w.runTo(time.Duration(actedAt+grace/2+5) * time.Second)
	if got := w.e.State(flap); got != holdfast.StateConnected {
		t.Errorf("At(act + grace/2 + 5s): flapping inbox is %s, want connected", got)
	}
	w.runTo(5 * time.Hour)
	var flapN, lostN int
	for _, n := range w.rec.notices {
		switch n.Inbox {
		case flap:
			flapN++
		case lost:
			lostN++
			if w.e.State(lost) != holdfast.StateNeedsReconnect {
				t.Errorf("lost inbox is %s, want needs_reconnect", w.e.State(lost))
			}
		}
	}
	if flapN != 0 || lostN != 1 {
		t.Errorf("notices: %d to the inbox that recovered within the grace period (want 0), %d to the lost one (want 1)", flapN, lostN)
	}
}

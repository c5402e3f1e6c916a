package health

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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
}

func (r *recorder) Transition(t Transition)      { r.trans = append(r.trans, t) }
func (r *recorder) IncidentChanged(in *Incident) { r.incidents[in.ID] = *in }
func (r *recorder) HeldChanged(h HeldAction)     { r.held = append(r.held, h) }
func (r *recorder) Notice(n Notice)              { r.notices = append(r.notices, n) }
func (r *recorder) Grant(g Grant)                { r.grants = append(r.grants, g) }

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
	// outcome returns nil for success, or the error's verdict.
	outcome func(i int32, sec int64) *classify.Verdict
}

func newWorld(t *testing.T, cfg Config, inboxes, tenants int) *world {
	t.Helper()
	start := time.Date(2025, 3, 1, 18, 0, 0, 0, time.UTC)
	w := &world{t: t, clk: &fakeClock{t: start}, rec: &recorder{incidents: map[int64]Incident{}}, start: start,
		rng: rand.New(rand.NewPCG(1, 2)), period: 600}
	w.e = New(cfg, w.clk, nil, w.rec)
	// Zipf(1.1) tenant sizes, largest first.
	var h float64
	for k := 1; k <= tenants; k++ {
		h += math.Pow(float64(k), -1.1)
	}
	left := inboxes
	for k := 1; k <= tenants; k++ {
		n := max(1, int(math.Round(float64(inboxes)*math.Pow(float64(k), -1.1)/h)))
		if k == tenants || n > left-(tenants-k) {
			n = max(1, left-(tenants-k))
		}
		left -= n
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
		return
	}
	v := w.outcome(i, w.sec)
	d := w.e.Observe(i, Outcome{Op: OpSync, OK: v == nil, Verdict: v})
	w.next[i] = w.sec + w.period/2 + w.rng.Int64N(w.period)
	if !d.RetryAt.IsZero() {
		w.next[i] = int64(d.RetryAt.Sub(w.start) / time.Second)
	}
}

// runTo advances the world to d after the start, second by second.
func (w *world) runTo(d time.Duration) {
	end := int64(d / time.Second)
	for w.sec < end {
		w.sec++
		w.clk.t = w.start.Add(time.Duration(w.sec) * time.Second)
		w.e.Tick()
		w.drainGrants()
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
	if in := w.providerIncidents(); in[0].Open() || in[0].ResolvedAt.After(w.at(2*time.Hour+10*time.Minute)) {
		t.Errorf("incident resolved at %v, want by 2h10m", in[0].ResolvedAt)
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
	w := newWorld(t, DefaultConfig(), 3000, 150)
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
	if d.State != holdfast.StateConnected || !d.RetryAt.Equal(w.clk.t.Add(30*time.Second)) {
		t.Errorf("Observe(throttled) = %+v, want connected and retry after 30s", d)
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

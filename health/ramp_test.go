package health

import (
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

// TestRampFindsCapacity runs a 65-minute outage over 20,000 inboxes whose
// provider accepts capacity(sec) requests a second and throttles the rest,
// and checks that the recovery ends within 1.25 times the capacity bound
// (the affected inboxes over the spare capacity, one request each in this
// world) after the incident closes, without a throttle storm.
func TestRampFindsCapacity(t *testing.T) {
	t.Parallel()
	const (
		outageStart = time.Hour
		outageEnd   = time.Hour + 65*time.Minute
	)
	tests := []struct {
		name string
		// capacity returns the provider's capacity s seconds after the
		// incident closed.
		capacity func(s int64) float64
	}{
		{"tight", func(int64) float64 { return 100 }},
		{"loose", func(int64) float64 { return 300 }},
		{"throttled during recovery", func(s int64) float64 {
			if s >= 20 && s < 80 {
				return 150
			}
			return 300
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Without settling, so that the ramp starts as the incident
			// closes and the bound counts from there (settling starts it
			// as the incident begins to settle, which is the same ramp).
			cfg := DefaultConfig()
			cfg.Settle = 0
			w := newWorld(t, cfg, 20000, 1000)
			w.useWheel()
			var closed int64 // second the incident closed, 0 while open
			reqs := map[int64]int{}
			thr := map[int64]int{}
			w.outcome = func(i int32, sec int64) *classify.Verdict {
				if between(sec, outageStart, outageEnd) {
					return revoked
				}
				reqs[sec]++
				c := 1e9
				if closed > 0 {
					c = tt.capacity(sec - closed)
				}
				if float64(reqs[sec]) > c {
					thr[sec]++
					return throttled
				}
				return nil
			}
			// Normal traffic before the outage: the baseline.
			w.runTo(outageStart)
			var base float64
			for s := int64(600); s < int64(outageStart/time.Second); s++ {
				base += float64(reqs[s])
			}
			base /= float64(int64(outageStart/time.Second) - 600)
			w.runTo(outageEnd)
			for w.sec < int64((outageEnd+10*time.Minute)/time.Second) && closed == 0 {
				w.runTo(time.Duration(w.sec+1) * time.Second)
				if in := w.providerIncidents(); len(in) == 1 && !in[0].Open() {
					closed = in[0].ResolvedAt.Sub(w.start).Milliseconds() / 1000
				}
			}
			if closed == 0 {
				t.Fatal("the incident did not close within 10 minutes of the outage's end")
			}
			paused := w.count(holdfast.StatePaused)
			w.runTo(outageEnd + 40*time.Minute)
			if got := w.count(holdfast.StateConnected); got != 20000 {
				t.Fatalf("connected = %d, want 20000 (%v)", got, w.e.Counts(holdfast.ProviderMicrosoft))
			}
			var last int64
			for _, tr := range w.rec.trans {
				if tr.To == holdfast.StateConnected {
					last = max(last, tr.At.Sub(w.start).Milliseconds()/1000)
				}
			}
			// The bound: the shortest time the spare capacity answers what
			// a recovery costs in this world, two requests per paused
			// inbox: its grant, and the visit it makes when its deferred
			// visit comes back (the world retries a deferred inbox every
			// minute).
			work := 2 * float64(paused)
			var acc, bound float64
			for s := int64(0); acc < work; s++ {
				sp := tt.capacity(s) - base
				if acc+sp >= work {
					bound = float64(s) + (work-acc)/sp
				}
				acc += sp
			}
			took := float64(last - closed)
			t.Logf("%d paused, baseline %.1f/s, bound %.0f s, recovered in %.0f s after the close (ratio %.2f)", paused, base, bound, took, took/bound)
			if took > 1.25*bound {
				t.Errorf("recovery took %.0f s after the close, want at most 1.25 × bound %.0f s", took, bound)
			}
			// No storm: over any 10 s, at most 10% of the requests
			// throttled, but for the 10 s after a drop in capacity (which
			// any client at capacity sees throttled).
			for s := closed; s < last; s++ {
				var n, th int
				drop := false
				for k := s; k < s+10; k++ {
					drop = drop || tt.capacity(k-closed) < tt.capacity(k-closed-1)
					n += reqs[k]
					th += thr[k]
				}
				if !drop && float64(th) > 0.1*float64(n) {
					t.Errorf("At(close+%ds): %d of %d requests throttled over 10 s, want at most 10%%", s-closed, th, n)
					break
				}
			}
		})
	}
}

// TestThrottledRetriesSpread checks that requests throttled in the same
// second do not all come back in the same second (a retry echo that the
// provider throttles again): their retries spread over half the
// Retry-After again.
func TestThrottledRetriesSpread(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultConfig(), 200, 20)
	at := map[time.Time]int{}
	for i := int32(0); i < 200; i++ {
		d := w.e.Observe(i, Outcome{Op: OpSync, Verdict: throttled})
		if wait := d.RetryAt.Sub(w.clk.t); wait < 30*time.Second || wait > 45*time.Second {
			t.Fatalf("Observe(%d, throttled).RetryAt = now+%v, want within 30 to 45 s", i, wait)
		}
		at[d.RetryAt]++
	}
	for ra, n := range at {
		if n > 40 {
			t.Errorf("%d of 200 throttled requests retry at %v, want them spread over 15 s", n, ra)
		}
	}
}

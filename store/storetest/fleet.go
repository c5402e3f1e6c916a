package storetest

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

// fleetTests are the tests of the health engine's shared fleet view.
var fleetTests = []conformanceTest{
	{"Leadership", testLeadership},
	{"FleetCounters", testFleetCounters},
	{"TakePermit", testTakePermit},
	{"TakePermitConcurrent", testTakePermitConcurrent},
	{"ResolveOnceAcrossNodes", testResolveOnceAcrossNodes},
}

func testLeadership(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	at := t0.UTC().Truncate(time.Microsecond)
	l, err := s.AcquireLeadership(ctx, "node-a", at, at.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if l.Node != "node-a" || !l.Until.Equal(at.Add(30*time.Second)) || l.Epoch != 1 {
		t.Fatalf("first acquire = %+v, want node-a until +30s, epoch 1", l)
	}
	// b cannot take it while a holds it; it learns who does.
	if l, err = s.AcquireLeadership(ctx, "node-b", at.Add(10*time.Second), at.Add(40*time.Second)); err != nil || l.Node != "node-a" {
		t.Fatalf("b acquire while a holds = %+v, %v; want node-a still", l, err)
	}
	// a renews: same epoch.
	if l, err = s.AcquireLeadership(ctx, "node-a", at.Add(20*time.Second), at.Add(50*time.Second)); err != nil || l.Node != "node-a" || l.Epoch != 1 {
		t.Fatalf("a renews = %+v, %v; want node-a, epoch 1", l, err)
	}
	// Expired: b takes it, the epoch grows.
	if l, err = s.AcquireLeadership(ctx, "node-b", at.Add(50*time.Second), at.Add(80*time.Second)); err != nil || l.Node != "node-b" || l.Epoch != 2 {
		t.Fatalf("b after a's lease ran out = %+v, %v; want node-b, epoch 2", l, err)
	}
	if !l.Held(at.Add(60*time.Second)) || l.Held(at.Add(80*time.Second)) {
		t.Errorf("Held = %v at +60s and %v at +80s, want true then false", l.Held(at.Add(60*time.Second)), l.Held(at.Add(80*time.Second)))
	}
	// Released by a non-holder: nothing changes. By b: a takes it at once.
	if err := s.ReleaseLeadership(ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	if l, err = s.AcquireLeadership(ctx, "node-c", at.Add(55*time.Second), at.Add(85*time.Second)); err != nil || l.Node != "node-b" {
		t.Fatalf("c after a non-holder's release = %+v, %v; want node-b", l, err)
	}
	if err := s.ReleaseLeadership(ctx, "node-b"); err != nil {
		t.Fatal(err)
	}
	if l, err = s.AcquireLeadership(ctx, "node-a", at.Add(56*time.Second), at.Add(86*time.Second)); err != nil || l.Node != "node-a" || l.Epoch != 3 {
		t.Fatalf("a after b released = %+v, %v; want node-a, epoch 3", l, err)
	}
	var inv *holdfast.InvalidError
	if _, err := s.AcquireLeadership(ctx, "", at, at.Add(time.Second)); !errors.As(err, &inv) {
		t.Errorf("empty node: err = %v, want InvalidError", err)
	}
	if _, err := s.AcquireLeadership(ctx, "node-a", at, at); !errors.As(err, &inv) {
		t.Errorf("until not after now: err = %v, want InvalidError", err)
	}
}

func testFleetCounters(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	for _, c := range []holdfast.NodeCounters{
		{Node: "node-b", Bucket: 100, Data: []byte("b100")},
		{Node: "node-a", Bucket: 100, Data: []byte("a100")},
		{Node: "node-a", Bucket: 101, Data: []byte("first")},
		{Node: "node-a", Bucket: 101, Data: []byte("a101")}, // replaces
	} {
		if err := s.ShipCounters(ctx, c.Node, c.Bucket, c.Data); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.FleetCounters(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"node-a/100/a100", "node-b/100/b100", "node-a/101/a101"}
	if len(got) != len(want) {
		t.Fatalf("FleetCounters(100) = %v, want %v", got, want)
	}
	for k, c := range got {
		if s := c.Node + "/" + itoa(c.Bucket) + "/" + string(c.Data); s != want[k] {
			t.Errorf("counters[%d] = %s, want %s", k, s, want[k])
		}
	}
	if got, err = s.FleetCounters(ctx, 101); err != nil || len(got) != 1 {
		t.Errorf("FleetCounters(101) = %v, %v; want a's bucket 101 alone", got, err)
	}
	// Shipping far ahead prunes the node's old buckets, not others'.
	if err := s.ShipCounters(ctx, "node-a", 1000, []byte("a1000")); err != nil {
		t.Fatal(err)
	}
	if got, err = s.FleetCounters(ctx, 0); err != nil || len(got) != 2 || got[0].Node != "node-b" || got[1].Bucket != 1000 {
		t.Errorf("after a ships bucket 1000: %v, %v; want b's 100 and a's 1000", got, err)
	}
	var inv *holdfast.InvalidError
	if err := s.ShipCounters(ctx, "", 1, nil); !errors.As(err, &inv) {
		t.Errorf("empty node: err = %v, want InvalidError", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func testTakePermit(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	at := t0.UTC().Truncate(time.Microsecond)
	// Burst 2 at 60/h: two at once, then one a minute.
	for k, want := range []bool{true, true, false} {
		got, err := s.TakePermit(ctx, "microsoft", 60, 2, at)
		if err != nil || got != want {
			t.Fatalf("take %d at once = %v, %v; want %v", k, got, err, want)
		}
	}
	if got, err := s.TakePermit(ctx, "microsoft", 60, 2, at.Add(30*time.Second)); err != nil || got {
		t.Fatalf("take after 30 s = %v, %v; want none (half a permit)", got, err)
	}
	if got, err := s.TakePermit(ctx, "microsoft", 60, 2, at.Add(61*time.Second)); err != nil || !got {
		t.Fatalf("take after 61 s = %v, %v; want one", got, err)
	}
	// Another key has its own bucket.
	if got, err := s.TakePermit(ctx, "microsoft/t1", 5, 1, at); err != nil || !got {
		t.Fatalf("other key = %v, %v; want one", got, err)
	}
	var inv *holdfast.InvalidError
	for _, c := range []struct {
		key         string
		rate, burst float64
	}{{"", 1, 1}, {"k", 0, 1}, {"k", 1, 0}, {"k", -1, 1}} {
		if _, err := s.TakePermit(ctx, c.key, c.rate, c.burst, at); !errors.As(err, &inv) {
			t.Errorf("TakePermit(%q, %v, %v) err = %v, want InvalidError", c.key, c.rate, c.burst, err)
		}
	}
}

// testTakePermitConcurrent takes permits from many goroutines at once: the
// compare-and-set never hands out more than the bucket holds.
func testTakePermitConcurrent(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	at := t0.UTC().Truncate(time.Microsecond)
	const burst = 5
	var got atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				ok, err := s.TakePermit(ctx, "google", 1, burst, at)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					got.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := got.Load(); n > burst || n == 0 {
		t.Errorf("%d permits taken from a bucket of %d", n, burst)
	}
}

// testResolveOnceAcrossNodes: nodes resolving one open incident at once
// (an operator through one, the leader's probes on another) see each
// other's save: one of them is told it resolved it, so its resolution is
// announced once.
func testResolveOnceAcrossNodes(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	for round := range 10 {
		in := newIncident(int64(100 + round))
		mustSaveIncidents(t, s, in)
		var sawOpen atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for k := range 16 {
			wg.Go(func() {
				r := *in
				r.ResolvedAt = t0.Add(time.Duration(k+1) * time.Minute)
				<-start
				err := s.SaveIncident(ctx, &r, func(prev *holdfast.Incident) ([]holdfast.OutboxEvent, error) {
					if prev != nil && prev.Open() {
						sawOpen.Add(1)
					}
					return nil, nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := sawOpen.Load(); n != 1 {
			t.Fatalf("round %d: %d of 16 concurrent resolutions saw the incident open, want 1 (announced once)", round, n)
		}
	}
}

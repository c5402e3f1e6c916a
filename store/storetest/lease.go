package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

// leaseTests are the tests of cluster nodes and partition leases.
var leaseTests = []conformanceTest{
	{"Heartbeat", testHeartbeat},
	{"PartitionLeases", testPartitionLeases},
	{"PartitionLeaseInvalid", testPartitionLeaseInvalid},
	{"PartitionLeaseConcurrentAcquire", testPartitionLeaseConcurrentAcquire},
	{"PartitionInboxes", testPartitionInboxes},
}

func testHeartbeat(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	at := t0.UTC().Truncate(time.Microsecond)
	const ttl, forget = 30 * time.Second, time.Hour
	if _, err := s.Heartbeat(ctx, "node-a", at, ttl, forget); err != nil {
		t.Fatalf("Heartbeat(a) = %v", err)
	}
	live, err := s.Heartbeat(ctx, "node-b", at.Add(10*time.Second), ttl, forget)
	if err != nil {
		t.Fatalf("Heartbeat(b) = %v", err)
	}
	if got := nodeIDs(live); !slices.Equal(got, []string{"node-a", "node-b"}) {
		t.Errorf("live nodes = %v, want a and b", got)
	}
	if !live[0].StartedAt.Equal(at) || !live[0].HeartbeatAt.Equal(at) {
		t.Errorf("node a = %+v, want started and beating at %v", live[0], at)
	}
	// a stops beating: 31 s later it is no longer live, but remembered.
	if live, err = s.Heartbeat(ctx, "node-b", at.Add(31*time.Second), ttl, forget); err != nil {
		t.Fatal(err)
	}
	if got := nodeIDs(live); !slices.Equal(got, []string{"node-b"}) {
		t.Errorf("live nodes after a's silence = %v, want only b", got)
	}
	// A later heartbeat keeps StartedAt.
	if live, err = s.Heartbeat(ctx, "node-a", at.Add(40*time.Second), ttl, forget); err != nil {
		t.Fatal(err)
	}
	if len(live) != 2 || !live[0].StartedAt.Equal(at) || !live[0].HeartbeatAt.Equal(at.Add(40*time.Second)) {
		t.Errorf("node a after a new heartbeat = %+v, want started at %v, beating at +40s", live, at)
	}
	// After forget, a silent node is gone for good.
	if _, err = s.Heartbeat(ctx, "node-b", at.Add(2*time.Hour), ttl, forget); err != nil {
		t.Fatal(err)
	}
	if live, err = s.Heartbeat(ctx, "node-a", at.Add(2*time.Hour), ttl, forget); err != nil {
		t.Fatal(err)
	}
	if live[0].StartedAt.Equal(at) {
		t.Errorf("node a silent for longer than forget kept its StartedAt: %+v", live[0])
	}
}

func nodeIDs(ns []holdfast.Node) []string {
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	return ids
}

func testPartitionLeases(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	now := t0.UTC().Truncate(time.Microsecond)
	lease := 30 * time.Second
	acquire := func(node string, parts []int, now time.Time) []int {
		t.Helper()
		got, err := s.AcquirePartitions(ctx, node, parts, now, now.Add(lease))
		if err != nil {
			t.Fatalf("AcquirePartitions(%s, %v) = %v", node, parts, err)
		}
		return got
	}
	if got := acquire("a", []int{3, 1, 2}, now); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("a acquires free 1, 2, 3: got %v", got)
	}
	if got := acquire("b", []int{2, 3, 4}, now.Add(time.Second)); !slices.Equal(got, []int{4}) {
		t.Errorf("b acquires 2, 3, 4 while a holds 2 and 3: got %v, want [4]", got)
	}
	// a renews; the held ones are extended.
	held, err := s.RenewPartitions(ctx, "a", now.Add(20*time.Second), now.Add(50*time.Second))
	if err != nil || !slices.Equal(held, []int{1, 2, 3}) {
		t.Errorf("RenewPartitions(a) = %v, %v; want [1 2 3]", held, err)
	}
	// a releases 3: b may take it at once.
	if err := s.ReleasePartitions(ctx, "a", []int{3, 4}); err != nil {
		t.Fatalf("ReleasePartitions = %v", err)
	}
	if got := acquire("b", []int{3}, now.Add(21*time.Second)); !slices.Equal(got, []int{3}) {
		t.Errorf("b acquires 3 after a released it: got %v", got)
	}
	// b stops renewing; after its lease expired a takes 4 and the epoch grows.
	if held, err := s.RenewPartitions(ctx, "b", now.Add(60*time.Second), now.Add(90*time.Second)); err != nil || len(held) != 0 {
		t.Errorf("RenewPartitions(b) after its leases expired = %v, %v; want none", held, err)
	}
	if got := acquire("a", []int{4}, now.Add(60*time.Second)); !slices.Equal(got, []int{4}) {
		t.Errorf("a acquires 4 after b's lease expired: got %v", got)
	}
	leases, err := s.PartitionLeases(ctx)
	if err != nil {
		t.Fatalf("PartitionLeases = %v", err)
	}
	byPart := map[int]holdfast.PartitionLease{}
	for _, l := range leases {
		byPart[l.Partition] = l
	}
	if len(leases) != 4 {
		t.Errorf("PartitionLeases = %+v, want 4 rows", leases)
	}
	if l := byPart[1]; l.Node != "a" || !l.Until.Equal(now.Add(50*time.Second)) || l.Epoch != 1 {
		t.Errorf("lease of 1 = %+v, want a's, renewed to +50s, epoch 1", l)
	}
	if l := byPart[4]; l.Node != "a" || l.Epoch != 2 || !l.Held(now.Add(60*time.Second)) {
		t.Errorf("lease of 4 = %+v, want a's, epoch 2 (b then a)", l)
	}
	if l := byPart[3]; l.Node != "b" || l.Epoch != 2 || l.Held(now.Add(60*time.Second)) {
		t.Errorf("lease of 3 = %+v, want b's, epoch 2, expired at +60s", l)
	}
	// Releasing another node's lease changes nothing.
	if err := s.ReleasePartitions(ctx, "b", []int{1}); err != nil {
		t.Fatal(err)
	}
	if got := acquire("b", []int{1}, now.Add(45*time.Second)); len(got) != 0 {
		t.Errorf("b released a's partition 1 and acquired it: %v", got)
	}
	// a leaves: its leases are free at once and it is no longer a node.
	for _, n := range []string{"a", "b"} {
		if _, err := s.Heartbeat(ctx, n, now.Add(46*time.Second), lease, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.LeaveCluster(ctx, "a"); err != nil {
		t.Fatalf("LeaveCluster(a) = %v", err)
	}
	if got := acquire("b", []int{1, 2, 4}, now.Add(47*time.Second)); !slices.Equal(got, []int{1, 2, 4}) {
		t.Errorf("b acquires a's 1, 2, 4 after a left: got %v", got)
	}
	live, err := s.Heartbeat(ctx, "b", now.Add(47*time.Second), lease, time.Hour)
	if err != nil || !slices.Equal(nodeIDs(live), []string{"b"}) {
		t.Errorf("live nodes after a left = %v, %v; want only b", nodeIDs(live), err)
	}
}

func testPartitionLeaseInvalid(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	now := t0.UTC()
	var inv *holdfast.InvalidError
	for name, call := range map[string]func() error{
		"empty node": func() error { _, err := s.AcquirePartitions(ctx, "", []int{1}, now, now.Add(time.Minute)); return err },
		"negative": func() error {
			_, err := s.AcquirePartitions(ctx, "a", []int{1, -1}, now, now.Add(time.Minute))
			return err
		},
		"too large": func() error {
			_, err := s.AcquirePartitions(ctx, "a", []int{holdfast.PartitionCount}, now, now.Add(time.Minute))
			return err
		},
		"until before now": func() error { _, err := s.RenewPartitions(ctx, "a", now, now.Add(-time.Second)); return err },
		"heartbeat ttl":    func() error { _, err := s.Heartbeat(ctx, "a", now, 0, time.Hour); return err },
		"release no node":  func() error { return s.ReleasePartitions(ctx, "", []int{1}) },
		"leave no node":    func() error { return s.LeaveCluster(ctx, "") },
	} {
		if err := call(); !errors.As(err, &inv) {
			t.Errorf("%s: error %v, want an *InvalidError", name, err)
		}
	}
	if leases, err := s.PartitionLeases(ctx); err != nil || len(leases) != 0 {
		t.Errorf("after refused calls the leases are %+v, %v; want none (partition 1 of the call with -1 not leased)", leases, err)
	}
}

// testPartitionLeaseConcurrentAcquire has four nodes race for every
// partition: each partition goes to exactly one.
func testPartitionLeaseConcurrentAcquire(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	now := t0.UTC()
	all := make([]int, 64)
	for i := range all {
		all[i] = i
	}
	got := make([][]int, 4)
	var wg sync.WaitGroup
	for n := range got {
		wg.Go(func() {
			parts := slices.Clone(all)
			if n%2 == 1 {
				slices.Reverse(parts)
			}
			var err error
			got[n], err = s.AcquirePartitions(ctx, string(rune('a'+n)), parts, now, now.Add(time.Minute))
			if err != nil {
				t.Errorf("node %d: AcquirePartitions = %v", n, err)
			}
		})
	}
	wg.Wait()
	owner := map[int]int{}
	for n, parts := range got {
		for _, p := range parts {
			if prev, ok := owner[p]; ok {
				t.Errorf("partition %d acquired by nodes %d and %d", p, prev, n)
			}
			owner[p] = n
		}
	}
	if len(owner) != len(all) {
		t.Errorf("%d of %d partitions acquired", len(owner), len(all))
	}
}

// testPartitionInboxes checks that every inbox is listed in its partition,
// and only there, with paging.
func testPartitionInboxes(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	want := map[int][]string{}
	for range 40 {
		in := newInbox()
		if err := s.CreateInbox(ctx, in, holdfast.Event{}); err != nil {
			t.Fatal(err)
		}
		p := holdfast.PartitionOf(in.ID)
		want[p] = append(want[p], in.ID)
	}
	for p, ids := range want {
		slices.Sort(ids)
		var got []string
		after := ""
		for {
			page, err := s.PartitionInboxes(ctx, p, after, 1)
			if err != nil {
				t.Fatalf("PartitionInboxes(%d) = %v", p, err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page[0].ID)
			after = page[0].ID
		}
		if !slices.Equal(got, ids) {
			t.Errorf("partition %d lists %v, want %v", p, got, ids)
		}
	}
	// A partition with none of them lists none.
	for p := range holdfast.PartitionCount {
		if _, ok := want[p]; ok {
			continue
		}
		if page, err := s.PartitionInboxes(ctx, p, "", 10); err != nil || len(page) != 0 {
			t.Errorf("empty partition %d lists %d inboxes, %v", p, len(page), err)
		}
		break
	}
	var inv *holdfast.InvalidError
	if _, err := s.PartitionInboxes(ctx, holdfast.PartitionCount, "", 10); !errors.As(err, &inv) {
		t.Errorf("PartitionInboxes(out of range) = %v, want an *InvalidError", err)
	}
}

package syncer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/syncer"
)

// owned is a settable set of sync partitions, as a node's Membership.
type owned struct {
	mu    sync.Mutex
	parts map[int]bool
}

func (o *owned) set(parts ...int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range parts {
		o.parts[p] = true
	}
}

func (o *owned) unset(parts ...int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range parts {
		delete(o.parts, p)
	}
}

func (o *owned) Owns(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.parts[holdfast.PartitionOf(id)]
}

func part(in *holdfast.Inbox) int { return holdfast.PartitionOf(in.ID) }

// TestOwnsFilter: a node schedules only the inboxes it owns, at Start and
// at Add.
func TestOwnsFilter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ins []*holdfast.Inbox
	for range 6 {
		ins = append(ins, b.inbox(t, holdfast.ProviderIMAP))
	}
	o := &owned{parts: map[int]bool{}}
	o.set(part(ins[0]), part(ins[1]), part(ins[2]))
	want := 0
	for _, in := range ins {
		if o.Owns(in.ID) {
			want++
		}
	}
	b.cfg.Owns = o.Owns
	s := b.start(t)
	if n := s.Len(); n != want {
		t.Errorf("Len() = %d after Start, want the %d owned", n, want)
	}
	other := b.inbox(t, holdfast.ProviderIMAP)
	for o.Owns(other.ID) {
		other = b.inbox(t, holdfast.ProviderIMAP)
	}
	s.Add(other)
	if err := s.Now(other.ID); !errors.Is(err, syncer.ErrNotScheduled) {
		t.Errorf("Now(not owned) = %v, want ErrNotScheduled", err)
	}
	if n := s.Len(); n != want {
		t.Errorf("Len() = %d after Add of an inbox not owned, want %d", n, want)
	}
}

// TestGainLose: Gain schedules a partition's stored inboxes, Lose drops
// them, and a sync running at Lose finishes without coming back.
func TestGainLose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.Interval = 50 * time.Millisecond
	a, c := b.inbox(t, holdfast.ProviderIMAP), b.inbox(t, holdfast.ProviderIMAP)
	for part(c) == part(a) {
		c = b.inbox(t, holdfast.ProviderIMAP)
	}
	o := &owned{parts: map[int]bool{}}
	b.cfg.Owns = o.Owns
	release := make(chan struct{})
	b.conn.SyncFunc = func(ctx context.Context, id string) error {
		if id == a.ID {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	s := b.start(t)
	if n := s.Len(); n != 0 {
		t.Fatalf("Len() = %d owning nothing, want 0", n)
	}
	o.set(part(a), part(c))
	if err := s.Gain(t.Context(), []int{part(a), part(c)}); err != nil {
		t.Fatal(err)
	}
	if n := s.Len(); n != 2 {
		t.Fatalf("Len() = %d after Gain, want 2", n)
	}
	eventually(t, "a's sync running", func() bool { return b.conn.syncs(a.ID) == 1 })
	eventually(t, "c synced twice", func() bool { return b.conn.syncs(c.ID) >= 2 })

	// a is mid-sync: Lose lets it finish, and drops it.
	o.unset(part(a))
	s.Lose([]int{part(a)})
	close(release)
	if err := s.Now(a.ID); !errors.Is(err, syncer.ErrNotScheduled) {
		t.Errorf("Now(lost) = %v, want ErrNotScheduled", err)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("Len() = %d after Lose, want 1", n)
	}
	// c keeps its cadence; a never syncs again.
	before := b.conn.syncs(c.ID)
	eventually(t, "c synced again", func() bool { return b.conn.syncs(c.ID) >= before+2 })
	if n := b.conn.syncs(a.ID); n != 1 {
		t.Errorf("a synced %d times, want 1: its sync ran at Lose and was not scheduled again", n)
	}
}

// TestReload: Reload schedules owned inboxes it missed and forgets those
// gone from the store.
func TestReload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	kept, gone := b.inbox(t, holdfast.ProviderIMAP), b.inbox(t, holdfast.ProviderIMAP)
	s := b.start(t)
	if n := s.Len(); n != 2 {
		t.Fatalf("Len() = %d, want 2", n)
	}
	// Created and deleted on another node: no Add, no Remove here.
	missed := b.inbox(t, holdfast.ProviderIMAP)
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := b.store.DeleteInbox(t.Context(), gone.ID, holdfast.Event{InboxID: gone.ID, At: now, Reason: "deleted", Cause: holdfast.CauseAPI}); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in        *holdfast.Inbox
		scheduled bool
	}{{kept, true}, {missed, true}, {gone, false}} {
		err := s.Now(c.in.ID)
		if got := err == nil; got != c.scheduled {
			t.Errorf("Now(%s) = %v, want scheduled %v", c.in.ID, err, c.scheduled)
		}
	}
	if n := s.Len(); n != 2 {
		t.Errorf("Len() = %d after Reload, want 2", n)
	}
}

// TestNoSyncWithoutTheLease: an inbox stays scheduled while its
// partition's lease lapses (the node cannot renew), but it is not synced
// until the lease is held again: another node may hold it meanwhile.
func TestNoSyncWithoutTheLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.Interval = 30 * time.Millisecond
	in := b.inbox(t, holdfast.ProviderIMAP)
	o := &owned{parts: map[int]bool{}}
	o.set(part(in))
	b.cfg.Owns = o.Owns
	s := b.start(t)
	eventually(t, "a first sync", func() bool { return b.conn.syncs(in.ID) > 0 })
	o.unset(part(in))
	time.Sleep(100 * time.Millisecond) // a sync running at the lapse may finish
	n := b.conn.syncs(in.ID)
	time.Sleep(200 * time.Millisecond)
	if got := b.conn.syncs(in.ID); got != n {
		t.Errorf("%d syncs while the lease had lapsed, want none", got-n)
	}
	if s.Len() != 1 {
		t.Errorf("Len() = %d while the lease lapsed, want the inbox still scheduled", s.Len())
	}
	o.set(part(in))
	eventually(t, "syncs again once the lease is back", func() bool { return b.conn.syncs(in.ID) > n })
}

// TestGainKeepsTheCadence: a gained partition's inbox synced just before
// by its previous owner is synced at its natural time after that sync,
// not at once (which made two syncs in one interval at every handover).
func TestGainKeepsTheCadence(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.Interval = time.Second
	in := b.inbox(t, holdfast.ProviderIMAP)
	o := &owned{parts: map[int]bool{}}
	b.cfg.Owns = o.Owns
	s := b.start(t)
	// The previous owner synced it 100 ms ago.
	if err := b.store.TouchSynced(t.Context(), map[string]time.Time{in.ID: time.Now().Add(-100 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	o.set(part(in))
	if err := s.Gain(t.Context(), []int{part(in)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // due 0.8 to 1 s after the gain
	if n := b.conn.syncs(in.ID); n != 0 {
		t.Errorf("%d syncs within 0.5 s of the gain, 0.6 s after the last one at a 1 s interval; want none", n)
	}
	eventually(t, "synced at its natural time", func() bool { return b.conn.syncs(in.ID) > 0 })
}

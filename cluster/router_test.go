package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
)

// calls records the calls a node's fakes received, as "Method id".
type calls struct {
	mu   sync.Mutex
	list []string
}

func (c *calls) add(format string, args ...any) {
	c.mu.Lock()
	c.list = append(c.list, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

func (c *calls) has(call string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.list, call)
}

func (c *calls) reset() {
	c.mu.Lock()
	c.list = nil
	c.mu.Unlock()
}

// fakeHealth is a HealthMonitor that records its calls.
type fakeHealth struct{ c *calls }

func (f fakeHealth) AddInbox(in *holdfast.Inbox) error { f.c.add("AddInbox %s", in.ID); return nil }
func (f fakeHealth) RemoveInbox(id string)             { f.c.add("RemoveInbox %s", id) }
func (f fakeHealth) Reconnected(_ context.Context, id string) error {
	f.c.add("Reconnected %s", id)
	return nil
}
func (f fakeHealth) Refresh(_ context.Context, id string) error {
	f.c.add("Refresh %s", id)
	return nil
}
func (f fakeHealth) Gain(_ context.Context, parts []int) error {
	f.c.add("Gain")
	return nil
}
func (f fakeHealth) Lose(parts []int) { f.c.add("Lose") }
func (f fakeHealth) Release(_ context.Context, id int64) error {
	f.c.add("Release %d", id)
	return nil
}

// fakeSyncer is a SyncScheduler that records its calls; like the real
// one, it schedules only the inboxes its node owns.
type fakeSyncer struct {
	c    *calls
	owns func(string) bool
}

func (f fakeSyncer) Add(in *holdfast.Inbox) {
	if f.owns(in.ID) {
		f.c.add("Syncer.Add %s", in.ID)
	}
}
func (f fakeSyncer) Remove(id string)    { f.c.add("Syncer.Remove %s", id) }
func (f fakeSyncer) Now(id string) error { f.c.add("Syncer.Now %s", id); return nil }
func (f fakeSyncer) Gain(_ context.Context, parts []int) error {
	f.c.add("Syncer.Gain")
	return nil
}
func (f fakeSyncer) Lose(parts []int)             { f.c.add("Syncer.Lose") }
func (f fakeSyncer) Reload(context.Context) error { f.c.add("Syncer.Reload"); return nil }

// hub joins the buses of the nodes of a test, as LISTEN/NOTIFY does:
// what one publishes reaches the subscribers of all, in order, from the
// hub's goroutine.
type hub struct {
	subs handlers
	q    chan Signal
}

func newHub(t *testing.T) *hub {
	h := &hub{q: make(chan Signal, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range h.q {
			h.subs.deliver(context.Background(), s)
		}
	}()
	t.Cleanup(func() { close(h.q); <-done })
	return h
}

// hubBus is one node's Bus on a hub.
type hubBus struct {
	h    *hub
	node string
}

func (b hubBus) Start(context.Context) error       { return nil }
func (b hubBus) Stop(context.Context) error        { return nil }
func (b hubBus) Subscribe(k SignalKind, f Handler) { b.h.subs.subscribe(k, f) }
func (b hubBus) Publish(_ context.Context, s Signal) error {
	if err := checkPublish(s); err != nil {
		return err
	}
	s.From = b.node
	b.h.q <- s
	return nil
}

// resync delivers a Resync to every node, as each bus does after its
// listener connected again.
func (h *hub) resync() { h.q <- Signal{Kind: Resync} }

// routed is one node of the router test.
type routed struct {
	m *Membership
	r *Router
	c *calls
}

// TestRouter runs two nodes, each a Membership and a Router with fake
// engines and syncers, on one SQLite store and a hub joining their buses
// (as LISTEN/NOTIFY does). Partitions split and the changes reach
// the syncers; create, sync-now, reconnect and delete through the node
// that does not own an inbox reach the owner; a state change reaches the
// other node's engine; a resync reloads; a signal about an inbox not in
// the store is ignored.
func TestRouter(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	ctx := t.Context()
	h := newHub(t)
	var deleted calls
	node := func(name string) *routed {
		n := &routed{c: &calls{}}
		var err error
		n.m, err = New(Config{Store: st, Logger: quiet(), Node: name, Lease: time.Second,
			OnChange: func(gained, lost []int) { n.r.OnChange(gained, lost) }})
		if err != nil {
			t.Fatal(err)
		}
		n.r, err = NewRouter(RouterConfig{Bus: hubBus{h: h, node: name}, Membership: n.m, Store: st, Logger: quiet(),
			Health: fakeHealth{n.c}, Syncer: fakeSyncer{c: n.c, owns: n.m.Owns},
			OnDeleted: func(id string) { deleted.add("%s %s", name, id) }})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, b := node("a"), node("b")
	for _, n := range []*routed{a, b} {
		if err := n.r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.r.Stop(context.Background()) })
	}
	if n := len(a.m.Partitions()); n != holdfast.PartitionCount {
		t.Fatalf("a alone holds %d partitions", n)
	}
	wait(t, "the partitions split", func() bool {
		return len(a.m.Partitions()) == holdfast.PartitionCount/2 && len(b.m.Partitions()) == holdfast.PartitionCount/2
	})
	wait(t, "a lost and b gained partitions", func() bool { return a.c.has("Syncer.Lose") && b.c.has("Syncer.Gain") && b.c.has("Gain") })

	// An inbox b owns, created through a.
	var in *holdfast.Inbox
	for i := 0; in == nil || !b.m.Owns(in.ID); i++ {
		in = storeInbox(t, st, i)
	}
	a.c.reset()
	b.c.reset()
	if err := a.r.AddInbox(in); err != nil {
		t.Fatal(err)
	}
	a.r.Add(in)
	wait(t, "both engines know the inbox, b schedules it", func() bool {
		return a.c.has("AddInbox "+in.ID) && b.c.has("AddInbox "+in.ID) && b.c.has("Syncer.Add "+in.ID)
	})
	if a.c.has("Syncer.Add " + in.ID) {
		t.Error("a scheduled an inbox it does not own")
	}

	if err := a.r.Now(in.ID); err != nil {
		t.Fatal(err)
	}
	wait(t, "sync-now reaches b", func() bool { return b.c.has("Syncer.Now " + in.ID) })
	if a.c.has("Syncer.Now " + in.ID) {
		t.Error("a ran sync-now for an inbox it does not own")
	}

	b.c.reset()
	if err := a.r.Reconnected(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	wait(t, "b refreshes the reconnected inbox, then syncs it", func() bool {
		return b.c.has("Refresh "+in.ID) && b.c.has("Syncer.Now "+in.ID)
	})
	if !a.c.has("Reconnected " + in.ID) {
		t.Error("a's engine did not record the reconnection")
	}

	// A state change stored by a: b's engine re-reads the inbox, a's not.
	a.c.reset()
	b.c.reset()
	a.r.StateChanged(in.ID)
	wait(t, "b refreshes the inbox whose state a changed", func() bool { return b.c.has("Refresh " + in.ID) })
	if a.c.has("Refresh " + in.ID) {
		t.Error("a refreshed the inbox whose state it changed itself")
	}

	// A held action of b's inbox released through a: b's engine lets it
	// go; one unknown to the store is not found.
	a.c.reset()
	b.c.reset()
	held := &holdfast.HeldAction{ID: 77, InboxID: in.ID, Provider: in.Provider, Tenant: in.Tenant,
		To: holdfast.StateNeedsReconnect, Reason: "token_revoked", Why: holdfast.HeldForBudget, HeldAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := st.SaveHeldAction(ctx, held); err != nil {
		t.Fatal(err)
	}
	if err := a.r.Release(ctx, held.ID); err != nil {
		t.Fatal(err)
	}
	wait(t, "b releases the held action asked through a", func() bool { return b.c.has("Release 77") })
	if a.c.has("Release 77") {
		t.Error("a released a held action of an inbox it does not own")
	}
	if err := a.r.Release(ctx, 78); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("Release of an unknown held action = %v, want ErrNotFound", err)
	}

	// After the bus missed signals, both nodes reload from the store.
	a.c.reset()
	b.c.reset()
	h.resync()
	wait(t, "a resync reloads the schedule and refreshes the engine", func() bool {
		return a.c.has("Syncer.Reload") && a.c.has("Gain") && b.c.has("Syncer.Reload") && b.c.has("Gain")
	})

	// A signal about an inbox that is not stored is ignored.
	b.c.reset()
	if err := (hubBus{h: h, node: "a"}).Publish(ctx, Signal{Kind: InboxCreated, ID: "inb_missing"}); err != nil {
		t.Fatal(err)
	}
	a.r.RemoveInbox(in.ID)
	a.r.Remove(in.ID)
	wait(t, "b forgets the deleted inbox", func() bool {
		return b.c.has("RemoveInbox "+in.ID) && b.c.has("Syncer.Remove "+in.ID) && deleted.has("b "+in.ID)
	})
	if b.c.has("AddInbox inb_missing") {
		t.Error("b registered an inbox that is not in the store")
	}
}

// wait polls cond every 10 ms for up to 10 s.
func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// storeInbox stores IMAP inbox number i.
func storeInbox(t *testing.T, st interface {
	CreateInbox(context.Context, *holdfast.Inbox, holdfast.Event) error
}, i int) *holdfast.Inbox {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	id := holdfast.NewID("inb", now)
	email := fmt.Sprintf("u%d@example.org", i)
	in := &holdfast.Inbox{
		ID: id, Provider: holdfast.ProviderIMAP, Email: email, Tenant: "example.org", Username: email,
		IMAP:  &holdfast.ServerConfig{Host: "imap.example.org", Port: 993, Security: holdfast.SecurityTLS},
		SMTP:  &holdfast.ServerConfig{Host: "smtp.example.org", Port: 465, Security: holdfast.SecurityTLS},
		State: holdfast.StateConnecting, Reason: "created", Since: now, CreatedAt: now, UpdatedAt: now,
	}
	if err := st.CreateInbox(context.Background(), in, holdfast.Event{InboxID: id, At: now, NewState: in.State, Reason: "created", Cause: holdfast.CauseAPI}); err != nil {
		t.Fatal(err)
	}
	return in
}

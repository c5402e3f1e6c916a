package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/lifecycle"
)

// HealthMonitor is the health engine as a Router drives it
// (monitor.Monitor).
type HealthMonitor interface {
	AddInbox(in *holdfast.Inbox) error
	RemoveInbox(id string)
	Reconnected(ctx context.Context, inboxID string) error
	Refresh(ctx context.Context, inboxID string) error
	Gain(ctx context.Context, parts []int) error
	Lose(parts []int)
	Release(ctx context.Context, id int64) error
}

// SyncScheduler is the sync scheduler as a Router drives it
// (syncer.Syncer, whose Config.Owns is the Membership's).
type SyncScheduler interface {
	Add(in *holdfast.Inbox)
	Remove(id string)
	Now(id string) error
	Gain(ctx context.Context, parts []int) error
	Lose(parts []int)
	Reload(ctx context.Context) error
}

// RouterStore is the store as a Router reads it.
type RouterStore interface {
	Inbox(ctx context.Context, id string) (*holdfast.Inbox, error)
	FindHeldActions(ctx context.Context, f holdfast.HeldActionFilter) ([]*holdfast.HeldAction, error)
}

// RouterConfig holds a Router's dependencies.
type RouterConfig struct {
	Bus        Bus
	Membership *Membership
	Store      RouterStore
	Health     HealthMonitor
	Syncer     SyncScheduler
	Logger     *slog.Logger
	// Synced, if set, says whether inboxes of provider p are synced at all
	// (they have a connector); nil means every provider. Now refuses the
	// others with ErrNotSynced, on any node, as the syncer does.
	Synced func(p holdfast.Provider) bool
	// OnDeleted, if set, is called on every node when an inbox is deleted,
	// on whichever node (to drop its cached access token).
	OnDeleted func(inboxID string)
}

// ErrNotSynced is returned by Router.Now for an inbox that is not synced:
// of a provider without a connector.
var ErrNotSynced = errors.New("inboxes of this provider are not synced")

// handlerTimeout bounds the store calls of one signal's handling, and
// of one partition change.
const handlerTimeout = 30 * time.Second

// Router makes the API's calls on any node reach the node that owns the
// inbox, and keeps every node's health engine knowing every inbox. It is
// the API's sync scheduler (httpapi.Syncer), and its AddInbox, RemoveInbox
// and Reconnected stand in for the health monitor's:
//
//   - a created inbox is registered with this node's engine and, if this
//     node owns it, scheduled; InboxCreated tells the others, whose
//     engines register it and whose owner schedules it;
//   - a deleted inbox is forgotten here and, through InboxDeleted,
//     everywhere;
//   - sync-now runs on this node if it owns the inbox, else SyncNow asks
//     the owner;
//   - a reconnection is recorded by this node's engine (it is stored
//     before the call returns); if another node owns the inbox,
//     Reconnected makes every node refresh the inbox's engine state from
//     the store and the owner sync it;
//   - a state change the owner stored (StateChanged) makes the other
//     nodes' engines re-read the inbox, since they drop their own
//     decisions about it.
//
// Signals about an inbox that is no longer in the store are ignored.
// After the bus missed signals (Resync), the syncer reloads its schedule
// and the engine refreshes the owned partitions' inboxes from the store.
//
// The Router also follows the Membership's partition changes (OnChange):
// it starts the Membership in its own Start, so that the partitions the
// first tick takes, which the syncer loads at its start and the monitor
// read when made, are not loaded twice; later changes are applied by its
// goroutine, lost ones first. Start it before the health monitor and the
// syncer, and stop it after them.
type Router struct {
	cfg RouterConfig
	log *slog.Logger

	mu sync.Mutex // guards everything below
	// joined is set once the Membership's Start returned: changes before
	// are the first tick's.
	joined  bool
	changes []change
	// states holds the inboxes whose stored state changed here, to be
	// announced (StateChanged).
	states map[string]bool
	// resync is set when the bus asks for a Resync, which the goroutine
	// runs.
	resync bool
	// refresh holds the inboxes whose state another node changed, for the
	// goroutine to re-read (off the bus's goroutine, which must stay
	// quick for the signals behind them).
	refresh map[string]bool
	// releases holds the held actions other nodes asked this node to
	// release (HeldRelease), for the goroutine: a release waits for the
	// health monitor's writer, which the bus's goroutine must not.
	releases []int64
	wake     chan struct{}

	owner lifecycle.Owner
}

// change is one OnChange call's gains, waiting for the Router's goroutine;
// healthOnly gains are the engine's alone (the first tick's).
type change struct {
	gained     []int
	healthOnly bool
}

var _ lifecycle.Service = (*Router)(nil)

// NewRouter returns a Router and subscribes it to the bus, which must not
// have started.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if cfg.Bus == nil || cfg.Membership == nil || cfg.Store == nil || cfg.Health == nil || cfg.Syncer == nil || cfg.Logger == nil {
		return nil, errors.New("cluster: Bus, Membership, Store, Health, Syncer and Logger are required")
	}
	r := &Router{cfg: cfg, log: cfg.Logger.With("component", "cluster", "node", cfg.Membership.Node()),
		states: map[string]bool{}, refresh: map[string]bool{}, wake: make(chan struct{}, 1)}
	cfg.Bus.Subscribe(InboxCreated, r.created)
	cfg.Bus.Subscribe(InboxDeleted, r.deleted)
	cfg.Bus.Subscribe(SyncNow, r.syncNow)
	cfg.Bus.Subscribe(Reconnected, r.reconnected)
	cfg.Bus.Subscribe(InboxStateChanged, r.stateChanged)
	cfg.Bus.Subscribe(HeldRelease, r.heldRelease)
	cfg.Bus.Subscribe(Resync, func(context.Context, Signal) {
		r.mu.Lock()
		r.resync = true
		r.mu.Unlock()
		r.nudge()
	})
	return r, nil
}

// Start implements lifecycle.Service: it starts the Membership (joining
// the cluster) and the goroutine that applies partition changes.
func (r *Router) Start(ctx context.Context) error {
	return r.owner.Start(ctx, func(run context.Context) error {
		if err := r.cfg.Membership.Start(ctx); err != nil {
			return err
		}
		r.mu.Lock()
		r.joined = true
		// The engine learned every inbox before this node held a
		// partition: it takes the first tick's over now (restoring their
		// paused inboxes into their incidents and the recovery ramp), the
		// syncer at its own Start.
		if first := r.cfg.Membership.Partitions(); len(first) > 0 {
			r.changes = append(r.changes, change{gained: first, healthOnly: true})
		}
		r.mu.Unlock()
		r.nudge()
		r.owner.Go(func() { r.apply(run) })
		return nil
	})
}

// Stop implements lifecycle.Service: it leaves the cluster (the
// Membership releases its partitions), then ends the goroutine.
func (r *Router) Stop(ctx context.Context) error {
	err := r.cfg.Membership.Stop(ctx)
	return errors.Join(err, r.owner.Stop(ctx, nil))
}

// OnChange is the Membership's Config.OnChange: lost partitions stop
// syncing at once (before the Membership releases them), gained ones are
// loaded by the Router's goroutine.
func (r *Router) OnChange(gained, lost []int) {
	r.mu.Lock()
	joined := r.joined
	r.mu.Unlock()
	if !joined {
		return // the first tick: loaded by the monitor's New and the syncer's Start
	}
	if len(lost) > 0 {
		r.cfg.Syncer.Lose(lost)
		r.cfg.Health.Lose(lost)
	}
	if len(gained) > 0 {
		r.mu.Lock()
		r.changes = append(r.changes, change{gained: gained})
		r.mu.Unlock()
		r.nudge()
	}
}

// StateChanged announces that this node stored a change of the inbox's
// state, so that the other nodes' engines re-read it (InboxStateChanged).
// It does not block: the Router's goroutine publishes, once for several
// changes of one inbox in a row. It is for monitor.Config.OnStateChange.
func (r *Router) StateChanged(inboxID string) {
	r.mu.Lock()
	r.states[inboxID] = true
	r.mu.Unlock()
	r.nudge()
}

func (r *Router) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// apply loads gained partitions, in order, and announces state changes,
// until ctx ends.
func (r *Router) apply(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for ctx.Err() == nil {
			r.mu.Lock()
			var c *change
			if len(r.changes) > 0 {
				c = &r.changes[0]
				r.changes = r.changes[1:]
			}
			// Taken whole, empty or not: the maps are written under r.mu
			// while this goroutine reads what it took.
			states, refresh, releases := r.states, r.refresh, r.releases
			r.states, r.refresh, r.releases = map[string]bool{}, map[string]bool{}, nil
			resync := r.resync
			r.resync = false
			r.mu.Unlock()
			if c == nil && len(states) == 0 && !resync && len(refresh) == 0 && len(releases) == 0 {
				break
			}
			for _, id := range releases {
				r.releaseOne(ctx, id)
			}
			for id := range refresh {
				r.refreshOne(ctx, id)
			}
			switch {
			case c != nil && c.healthOnly:
				if err := r.cfg.Health.Gain(ctx, c.gained); err != nil {
					r.log.Warn("refresh the health engine for the partitions held at start", "partitions", len(c.gained), "err", err)
				}
			case c != nil:
				r.gain(ctx, c.gained)
			}
			if resync {
				r.reload(ctx)
			}
			for id := range states {
				r.publish(ctx, Signal{Kind: InboxStateChanged, ID: id})
			}
		}
	}
}

// gain brings the engine in line with the store for the gained
// partitions, then schedules their inboxes; each bounds its own store
// calls.
func (r *Router) gain(ctx context.Context, parts []int) {
	if err := r.cfg.Health.Gain(ctx, parts); err != nil {
		r.log.Warn("refresh the health engine for gained partitions", "partitions", len(parts), "err", err)
	}
	if err := r.cfg.Syncer.Gain(ctx, parts); err != nil {
		r.log.Error("schedule the inboxes of gained partitions; the next resync retries", "partitions", len(parts), "err", err)
	}
}

// publish sends s, logging a failure: the other nodes then learn of it
// at their next resync or partition change.
func (r *Router) publish(ctx context.Context, s Signal) {
	if err := r.cfg.Bus.Publish(context.WithoutCancel(ctx), s); err != nil {
		r.log.Warn("signal the other nodes", "kind", s.Kind, "inbox_id", s.ID, "err", err)
	}
}

// AddInbox registers a new inbox with this node's health engine and tells
// the other nodes (httpapi.Health).
func (r *Router) AddInbox(in *holdfast.Inbox) error {
	err := r.cfg.Health.AddInbox(in)
	r.publish(context.Background(), Signal{Kind: InboxCreated, ID: in.ID})
	return err
}

// RemoveInbox forgets a deleted inbox in this node's health engine and
// tells the other nodes (httpapi.Health).
func (r *Router) RemoveInbox(id string) {
	r.cfg.Health.RemoveInbox(id)
	r.publish(context.Background(), Signal{Kind: InboxDeleted, ID: id})
}

// Add schedules a new inbox if this node owns it (httpapi.Syncer); its
// owner elsewhere schedules it on InboxCreated (AddInbox).
func (r *Router) Add(in *holdfast.Inbox) { r.cfg.Syncer.Add(in) }

// Remove forgets a deleted inbox in this node's syncer (httpapi.Syncer);
// the others forget it on InboxDeleted (RemoveInbox).
func (r *Router) Remove(id string) {
	r.cfg.Syncer.Remove(id)
	if r.cfg.OnDeleted != nil {
		r.cfg.OnDeleted(id)
	}
}

// Now asks the inbox's owner for a sync at once (httpapi.Syncer): this
// node's syncer if it owns the inbox, else the owner through SyncNow. It
// returns ErrNotSynced for an inbox of a provider that is not synced.
func (r *Router) Now(id string) error {
	if r.cfg.Membership.Owns(id) {
		return r.cfg.Syncer.Now(id)
	}
	if r.cfg.Synced != nil {
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		in, err := r.cfg.Store.Inbox(ctx, id)
		cancel()
		if err != nil {
			return fmt.Errorf("sync inbox %s now: %w", id, err)
		}
		if !r.cfg.Synced(in.Provider) {
			return fmt.Errorf("sync inbox %s now: %w", id, ErrNotSynced)
		}
	}
	return r.cfg.Bus.Publish(context.Background(), Signal{Kind: SyncNow, ID: id})
}

// Reconnected records an inbox's reconnection through this node's health
// engine, and returns once it is stored (httpapi.Reconnector); if another
// node owns the inbox, Reconnected tells it to refresh the inbox's state
// and sync it.
func (r *Router) Reconnected(ctx context.Context, inboxID string) error {
	if err := r.cfg.Health.Reconnected(ctx, inboxID); err != nil {
		return err
	}
	if !r.cfg.Membership.Owns(inboxID) {
		r.publish(ctx, Signal{Kind: Reconnected, ID: inboxID})
	}
	return nil
}

// storedInbox reads the signal's inbox, or nil when it is gone (the
// signal is then ignored) or cannot be read.
func (r *Router) storedInbox(ctx context.Context, s Signal) *holdfast.Inbox {
	ctx, cancel := context.WithTimeout(ctx, handlerTimeout)
	defer cancel()
	in, err := r.cfg.Store.Inbox(ctx, s.ID)
	if err != nil {
		if !errors.Is(err, holdfast.ErrNotFound) {
			r.log.Warn("signal not handled: load its inbox", "kind", s.Kind, "inbox_id", s.ID, "err", err)
		}
		return nil
	}
	return in
}

// created handles InboxCreated: every node's engine registers the inbox,
// its owner schedules it.
func (r *Router) created(ctx context.Context, s Signal) {
	in := r.storedInbox(ctx, s)
	if in == nil {
		return
	}
	if err := r.cfg.Health.AddInbox(in); err != nil {
		r.log.Error("register inbox with the health engine", "inbox_id", in.ID, "err", err)
	}
	r.cfg.Syncer.Add(in)
}

// deleted handles InboxDeleted: every node forgets the inbox.
func (r *Router) deleted(_ context.Context, s Signal) {
	r.cfg.Health.RemoveInbox(s.ID)
	r.Remove(s.ID)
}

// syncNow handles SyncNow: the owner syncs the inbox.
func (r *Router) syncNow(_ context.Context, s Signal) {
	if !r.cfg.Membership.Owns(s.ID) {
		return
	}
	if err := r.cfg.Syncer.Now(s.ID); err != nil {
		r.log.Debug("sync now from another node not run", "inbox_id", s.ID, "from", s.From, "err", err)
	}
}

// reconnected handles Reconnected: every node's engine refreshes the
// inbox from the store (the publisher's already agrees), and its owner
// syncs it.
func (r *Router) reconnected(ctx context.Context, s Signal) {
	if s.From == r.cfg.Membership.Node() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, handlerTimeout)
	defer cancel()
	if err := r.cfg.Health.Refresh(ctx, s.ID); err != nil {
		if !errors.Is(err, holdfast.ErrNotFound) {
			r.log.Warn("refresh a reconnected inbox's health state", "inbox_id", s.ID, "err", err)
		}
		return
	}
	r.syncNow(ctx, s)
}

// stateChanged handles InboxStateChanged: the nodes other than the one
// that stored the change re-read the inbox's state, on the Router's
// goroutine (once for several changes in a row).
func (r *Router) stateChanged(_ context.Context, s Signal) {
	if s.From == r.cfg.Membership.Node() {
		return
	}
	r.mu.Lock()
	r.refresh[s.ID] = true
	r.mu.Unlock()
	r.nudge()
}

// refreshOne re-reads one inbox's state into the engine.
func (r *Router) refreshOne(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, handlerTimeout)
	defer cancel()
	if err := r.cfg.Health.Refresh(ctx, id); err != nil && !errors.Is(err, holdfast.ErrNotFound) {
		r.log.Warn("refresh an inbox whose state changed on another node", "inbox_id", id, "err", err)
	}
}

// Release lets a held destructive action go ahead (httpapi.Health): on
// this node if it owns the action's inbox, else on the owner, through
// HeldRelease, which acts within a second. It returns ErrNotFound for an
// action the store does not have.
func (r *Router) Release(ctx context.Context, id int64) error {
	h, err := r.heldAction(ctx, id)
	if err != nil {
		return err
	}
	if r.cfg.Membership.Owns(h.InboxID) {
		return r.cfg.Health.Release(ctx, id)
	}
	if h.Done {
		return fmt.Errorf("release held action %d: %w", id, holdfast.ErrConflict)
	}
	return r.cfg.Bus.Publish(ctx, Signal{Kind: HeldRelease, ID: strconv.FormatInt(id, 10)})
}

// heldAction reads held action id from the store.
func (r *Router) heldAction(ctx context.Context, id int64) (*holdfast.HeldAction, error) {
	ctx, cancel := context.WithTimeout(ctx, handlerTimeout)
	defer cancel()
	hs, err := r.cfg.Store.FindHeldActions(ctx, holdfast.HeldActionFilter{ID: id, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("release held action %d: %w", id, err)
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("release held action %d: %w", id, holdfast.ErrNotFound)
	}
	return hs[0], nil
}

// heldRelease handles HeldRelease: the owner of the action's inbox lets
// it go ahead, on the Router's goroutine.
func (r *Router) heldRelease(ctx context.Context, s Signal) {
	id, err := strconv.ParseInt(s.ID, 10, 64)
	if err != nil {
		r.log.Warn("held release signal with a bad ID ignored", "id", s.ID, "from", s.From)
		return
	}
	r.mu.Lock()
	r.releases = append(r.releases, id)
	r.mu.Unlock()
	r.nudge()
}

// releaseOne releases held action id if this node owns its inbox.
func (r *Router) releaseOne(ctx context.Context, id int64) {
	h, err := r.heldAction(ctx, id)
	if err != nil || !r.cfg.Membership.Owns(h.InboxID) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, handlerTimeout)
	defer cancel()
	if err := r.cfg.Health.Release(ctx, id); err != nil {
		r.log.Warn("release a held action asked by another node", "held_action_id", id, "err", err)
	}
}

// reload handles Resync: signals may have been missed, so the syncer
// reloads its schedule and the engine refreshes the owned partitions'
// inboxes; each bounds its own store calls.
func (r *Router) reload(ctx context.Context) {
	if err := r.cfg.Syncer.Reload(ctx); err != nil {
		r.log.Warn("reload the sync schedule after the bus reconnected", "err", err)
	}
	if err := r.cfg.Health.Gain(ctx, r.cfg.Membership.Partitions()); err != nil {
		r.log.Warn("refresh the health engine after the bus reconnected", "err", err)
	}
}

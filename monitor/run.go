package monitor

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
)

// Start runs the engine: a goroutine, owned by the Monitor, ticks it every
// TickEvery and saves its state every SaveEvery; another persists its
// decisions; a third reserves the next block of incident and held action
// IDs when the current one runs low. They run until Stop
// (lifecycle.Service).
func (m *Monitor) Start(ctx context.Context) error {
	return m.owner.Start(ctx, func(run context.Context) error {
		// The writer persists what is queued at Stop within drainCtx,
		// which ends once it is done, or when Stop's context ends (then
		// the writer stops touching a store about to be closed).
		drainCtx, drainCancel := context.WithCancel(context.WithoutCancel(run))
		m.w.abandon = drainCancel
		m.owner.Go(func() {
			defer drainCancel()
			m.w.run(run, drainCtx)
		})
		m.owner.Go(func() { m.tick(run) })
		m.owner.Go(func() { m.idSrc.run(run, m.w.retryEvery) })
		if m.fleet != nil {
			m.owner.Go(func() { m.fleetLoop(run) })
		}
		m.mu.Lock()
		m.w.enqueue(nil) // wake the writer for decisions made before Start
		m.mu.Unlock()
		return nil
	})
}

// tick ticks the engine and saves its state until ctx ends.
func (m *Monitor) tick(ctx context.Context) {
	tick := time.NewTicker(m.cfg.TickEvery)
	save := time.NewTicker(m.cfg.SaveEvery)
	defer tick.Stop()
	defer save.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			m.Tick()
		case <-save.C:
			if err := m.save(); err != nil {
				m.log.Error("save health engine state", "err", err)
			}
		}
	}
}

// Stop saves the engine's state, persists every queued decision and ends
// the Monitor's goroutines, within ctx. When ctx ends first, the writer
// stops at once, logging how many decisions it did not persist, so that
// nothing is written after Stop returns and the store closes. It is safe
// to call before Start and more than once.
func (m *Monitor) Stop(ctx context.Context) error {
	return m.owner.Stop(ctx, func(ctx context.Context) error {
		context.AfterFunc(ctx, m.w.abandon)
		if err := m.save(); err != nil {
			return err
		}
		err := m.Sync(ctx)
		if err != nil {
			m.w.abandon() // before the run context ends: no write starts after
		}
		return err
	})
}

// save queues the engine's whole state for the writer, behind the
// decisions made before it, so the saved state never runs ahead of them.
func (m *Monitor) save() error {
	if m.cfg.Fleet != nil {
		return nil // rebuilt from the store at start (Config.Fleet)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var eng bytes.Buffer
	if err := m.eng.Snapshot(&eng); err != nil {
		return fmt.Errorf("snapshot health engine: %w", err)
	}
	var out bytes.Buffer
	err := gob.NewEncoder(&out).Encode(savedState{
		Version: stateVersion, IDs: m.ids, Dead: m.dead, Unverified: m.unverified,
		Tenants: m.tenants, Engine: eng.Bytes(),
	})
	if err != nil {
		return fmt.Errorf("encode health engine state: %w", err)
	}
	m.w.enqueue([]decision{{state: out.Bytes()}})
	return nil
}

// Declaration is an operator's incident declaration.
type Declaration struct {
	Provider holdfast.Provider
	// Tenant limits the incident to one tenant; empty means the whole
	// provider.
	Tenant string
	// Start defaults to now; a past start re-verifies the inboxes acted on
	// since then. End, if set, declares a past window that is over: a
	// retroactive incident.
	Start, End time.Time
	Note       string
}

// Declare opens (or, with End, records) an incident and returns it once it
// is stored. A retroactive incident, stored resolved, is announced (by the
// writer, in its first save) as opened and then resolved, as if it had
// been seen live. It fails at once with health.ErrNoID when no incident ID
// is at hand (the store was down long enough for the reserved ones to run
// out).
func (m *Monitor) Declare(ctx context.Context, d Declaration) (*holdfast.Incident, error) {
	if !d.Provider.Valid() {
		return nil, holdfast.Invalidf("provider", "unknown provider %q (want microsoft, google or imap)", d.Provider)
	}
	m.mu.Lock()
	t := int32(-1)
	if d.Tenant != "" {
		ti, ok := m.tidx[string(d.Provider)+"/"+d.Tenant]
		if !ok {
			m.mu.Unlock()
			return nil, holdfast.Invalidf("tenant", "no %s inbox has tenant %q", d.Provider, d.Tenant)
		}
		t = ti
	}
	m.operating(true)
	in, err := m.eng.Declare(health.Declaration{Provider: d.Provider, Tenant: t, Start: d.Start, End: d.End, Note: strings.TrimSpace(d.Note)})
	m.operating(false)
	if err != nil {
		m.flushLocked()
		m.mu.Unlock()
		return nil, err
	}
	out := m.toIncident(&in)
	c := m.callLocked()
	m.mu.Unlock()
	if err := m.durable(ctx, c); err != nil {
		return out, err
	}
	return out, nil
}

// Resolve closes an open incident: the recovery ramp then resumes its
// inboxes. It returns the incident once stored, ErrNotFound for an unknown
// one, and ErrConflict for one already resolved.
func (m *Monitor) Resolve(ctx context.Context, id int64) (*holdfast.Incident, error) {
	m.mu.Lock()
	m.operating(true)
	err := m.eng.Resolve(id)
	m.operating(false)
	if err != nil {
		m.flushLocked()
		m.mu.Unlock()
		return nil, err
	}
	var out *holdfast.Incident
	if in, err := m.eng.Incident(id); err == nil {
		out = m.toIncident(&in)
	}
	c := m.callLocked()
	m.mu.Unlock()
	return out, m.durable(ctx, c)
}

// Release lets a held destructive action go ahead now. It returns
// ErrNotFound for an unknown action.
func (m *Monitor) Release(ctx context.Context, id int64) error {
	m.mu.Lock()
	if err := m.eng.ReleaseHeld(id); err != nil {
		m.flushLocked()
		m.mu.Unlock()
		return err
	}
	c := m.callLocked()
	m.mu.Unlock()
	return m.durable(ctx, c)
}

// operating marks an operator's call on the engine: a follower stores the
// incidents it changes. m.mu must be held while on.
func (m *Monitor) operating(on bool) {
	if m.fleet != nil {
		m.fleet.operator = on
	}
}

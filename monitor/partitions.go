package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/health"
)

// On several nodes (package cluster) every node's engine knows every
// inbox, so that fleet-wide detectors see the whole fleet, but only the
// node that holds an inbox's sync partition acts on it: the engine's
// per-inbox decisions about the others (state changes, held actions,
// notices, grants) are dropped, not written (Config.Owns, applied in the
// sink), so that two nodes never notify one owner. An inbox's engine state
// on the other nodes drifts from the store meanwhile; Gain and Refresh
// bring it back in line when this node takes the inbox over or another
// node changed it.
//
// Incidents are not per inbox: with Config.Fleet, the elected leader's
// engine decides them and every other node's follows the store (fleet.go).

// partitionPage is how many inboxes Gain reads from the store at a time.
const partitionPage = 1000

// refreshTimeout bounds each store call of Gain and Refresh.
const refreshTimeout = 30 * time.Second

// owns reports whether this node acts on inbox id (Config.Owns). m.mu
// must be held or not: Owns takes no lock of the Monitor's.
func (m *Monitor) owns(id string) bool { return m.cfg.Owns == nil || m.cfg.Owns(id) }

// Gain brings the engine's per-inbox state in line with the store for
// the inboxes of the sync partitions parts, which this node now holds:
// each stored inbox is registered if the engine does not know it, and its
// state (and, for one that needs its owner or an administrator, its last
// notice episode) is restored from the stored one, as New does at start.
// Each store call is bounded. It stops at the first store error; the
// inboxes done so far stay done.
func (m *Monitor) Gain(ctx context.Context, parts []int) error {
	n := 0
	for _, p := range parts {
		after := ""
		for {
			cctx, cancel := context.WithTimeout(ctx, refreshTimeout)
			page, err := m.store.PartitionInboxes(cctx, p, after, partitionPage)
			cancel()
			if err != nil {
				return fmt.Errorf("load inboxes of sync partition %d for the health engine: %w", p, err)
			}
			for _, in := range page {
				if err := m.restore(ctx, in); err != nil {
					return err
				}
			}
			n += len(page)
			if len(page) < partitionPage {
				break
			}
			after = page[len(page)-1].ID
		}
	}
	m.log.Debug("health engine refreshed for gained partitions", "partitions", len(parts), "inboxes", n)
	return nil
}

// Lose tells the monitor that this node no longer holds the sync
// partitions parts. Config.Owns, which already answers false for their
// inboxes, makes the engine's later decisions about them dropped; the
// pending held actions of their inboxes are forgotten here, so that this
// engine neither spends the fleet's budget draining them nor closes them
// (the new owner holds them: Gain).
func (m *Monitor) Lose(parts []int) {
	lost := make(map[int]bool, len(parts))
	for _, p := range parts {
		lost[p] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, h := range m.eng.HeldActions() {
		if int(h.Inbox) < len(m.ids) && lost[holdfast.PartitionOf(m.ids[h.Inbox])] {
			m.eng.ForgetHeld(h.Inbox)
			n++
		}
	}
	m.log.Debug("health engine: partitions lost", "partitions", len(parts), "held_actions_forgotten", n)
}

// Refresh re-reads one inbox from the store and restores its state in
// the engine from the stored one (see Gain), for example after another
// node recorded its reconnection. An inbox gone from the store is
// forgotten (RemoveInbox), and Refresh returns holdfast.ErrNotFound.
func (m *Monitor) Refresh(ctx context.Context, inboxID string) error {
	cctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	in, err := m.store.Inbox(cctx, inboxID)
	cancel()
	if errors.Is(err, holdfast.ErrNotFound) {
		m.RemoveInbox(inboxID)
		return fmt.Errorf("refresh inbox %s: %w", inboxID, err)
	}
	if err != nil {
		return fmt.Errorf("refresh inbox %s: %w", inboxID, err)
	}
	return m.restore(ctx, in)
}

// restore registers in if needed and sets its engine state to the stored
// one.
func (m *Monitor) restore(ctx context.Context, in *holdfast.Inbox) error {
	rec := health.StoredState{State: in.State, Reason: holdfast.Reason(in.Reason), Since: in.Since}
	if in.State == holdfast.StateNeedsReconnect || in.State == holdfast.StateNeedsAdmin {
		cctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		err := m.noticesSince(cctx, in.ID, in.Since, &rec)
		cancel()
		if err != nil {
			return err
		}
	}
	// A suspect inbox's pending held action, held by the node that owned
	// it before: the engine holds it again, so that an operator's release
	// reaches it here.
	var held []*holdfast.HeldAction
	if in.State == holdfast.StateSuspect {
		cctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		var err error
		held, err = m.store.FindHeldActions(cctx, holdfast.HeldActionFilter{InboxID: in.ID, PendingOnly: true, Limit: 1})
		cancel()
		if err != nil {
			return fmt.Errorf("load the pending held action of inbox %s: %w", in.ID, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.idx[in.ID]
	if !ok {
		if err := m.addLocked(in); err != nil {
			return err
		}
		i = m.idx[in.ID]
	}
	m.unverified[i] = in.State == holdfast.StateConnecting
	if err := m.eng.RestoreState(i, rec); err != nil {
		return fmt.Errorf("restore state of inbox %s: %w", in.ID, err)
	}
	for _, h := range held {
		m.restoreHeld(health.HeldAction{ID: h.ID, Inbox: i, Provider: h.Provider, To: h.To,
			Reason: holdfast.Reason(h.Reason), HeldAt: h.HeldAt, Why: h.Why})
	}
	m.flushLocked()
	return nil
}

// AdmitInbox is Admit for inbox in as just read from the store. An inbox
// this node does not own is judged by its stored state, which its owner
// wrote (health.AdmitStored), not by this engine's copy: only a signal
// from the owner refreshes that copy, and a missed one (a bus reconnect,
// a node that started after it was sent) would hold the inbox's sends on
// this node for good. The copy is brought in line when they differ.
func (m *Monitor) AdmitInbox(ctx context.Context, in *holdfast.Inbox, op health.Op) (health.Admission, error) {
	if m.owns(in.ID) {
		return m.Admit(in.ID, op)
	}
	if st, err := m.State(in.ID); err != nil || !sameState(st, in.State) {
		if err := m.restore(ctx, in); err != nil {
			m.log.Warn("health engine: bring an inbox owned elsewhere in line with the store", "inbox_id", in.ID, "err", err)
		}
	}
	return health.AdmitStored(in.State, op), nil
}

// sameState reports whether the engine's state a and the stored state b
// agree (the engine counts a connecting inbox as connected).
func sameState(a, b holdfast.State) bool {
	if b == holdfast.StateConnecting {
		b = holdfast.StateConnected
	}
	if a == holdfast.StateConnecting {
		a = holdfast.StateConnected
	}
	return a == b
}

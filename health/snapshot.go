package health

import (
	"encoding/gob"
	"fmt"
	"io"

	"github.com/holdfast/holdfast"
)

// snapshot is the engine's whole state on disk.
type snapshot struct {
	Core      core
	Incidents []incState
	RNG       []byte
}

// incState is the unexported part of an incident.
type incState struct {
	Members         []int32
	Cursor          int
	ProbeOK, ProbeN []int32
	OKSeen, RecSeen int
	CloseWin        int64
	HealthySince    int64
	Prov            uint8
	// SettleAt, LastBad and CaughtTo: the settling (Config.Settle) and
	// its catch-up.
	SettleAt, LastBad, CaughtTo int64
}

// Snapshot writes the engine's whole state to w (encoding/gob). The owner
// persists it and passes it to Restore after a restart, so that open
// incidents, held actions, queued notices and the recovery queue survive.
func (e *Engine) Snapshot(w io.Writer) error {
	s := snapshot{Core: e.c}
	for _, in := range e.c.Incidents {
		s.Incidents = append(s.Incidents, incState{Members: in.members, Cursor: in.cursor, ProbeOK: in.probeOK,
			ProbeN: in.probeN, OKSeen: in.okSeen, RecSeen: in.recSeen, CloseWin: in.closeWin, HealthySince: in.healthySince, Prov: in.prov,
			SettleAt: in.settleAt, LastBad: in.lastBad, CaughtTo: in.caughtTo})
	}
	rng, err := e.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("snapshot health engine: %w", err)
	}
	s.RNG = rng
	if err := gob.NewEncoder(w).Encode(&s); err != nil {
		return fmt.Errorf("snapshot health engine: %w", err)
	}
	return nil
}

// Restore replaces the engine's state with a snapshot written by Snapshot.
// The detector windows restart from the snapshot's buckets; an incident that
// was open stays open (the guard stays at zero) until probes close it, so a
// restart never causes a burst of destructive actions.
func (e *Engine) Restore(r io.Reader) error {
	var s snapshot
	if err := gob.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("restore health engine: %w", err)
	}
	if len(s.Incidents) != len(s.Core.Incidents) {
		return fmt.Errorf("restore health engine: %d incidents but %d incident states", len(s.Core.Incidents), len(s.Incidents))
	}
	for k, in := range s.Core.Incidents {
		st := s.Incidents[k]
		in.members, in.cursor, in.probeOK, in.probeN = st.Members, st.Cursor, st.ProbeOK, st.ProbeN
		in.okSeen, in.recSeen, in.closeWin, in.prov = st.OKSeen, st.RecSeen, st.CloseWin, st.Prov
		in.healthySince = st.HealthySince
		in.settleAt, in.lastBad, in.caughtTo = st.SettleAt, st.LastBad, st.CaughtTo
		if !in.EscalatedAt.IsZero() {
			in.EscalatedAt = in.EscalatedAt.UTC()
		}
		if in.closeWin <= 0 {
			in.closeWin = 1
		}
		if len(in.probeOK) != int(in.closeWin) {
			in.probeOK, in.probeN = make([]int32, in.closeWin), make([]int32, in.closeWin)
		}
		if !in.ResolvedAt.IsZero() {
			in.ResolvedAt = in.ResolvedAt.UTC()
		}
		in.OpenedAt = in.OpenedAt.UTC()
	}
	if s.Core.Held == nil {
		s.Core.Held = map[int64]*HeldAction{}
	}
	if err := e.pcg.UnmarshalBinary(s.RNG); err != nil {
		return fmt.Errorf("restore health engine: %w", err)
	}
	e.c = s.Core
	e.heldOf = map[int32]int64{}
	for id, h := range e.c.Held {
		if !h.Done {
			e.heldOf[h.Inbox] = id
		}
	}
	e.reasonIdx = map[holdfast.Reason]uint8{}
	for k, r := range e.c.Reasons {
		e.reasonIdx[r] = uint8(k)
	}
	return nil
}

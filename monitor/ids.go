package monitor

import (
	"context"
	"sync"
	"time"
)

// idBlockSize is how many incident and held action IDs the Monitor
// reserves from the store at a time. IDs of a block not used before a
// restart are skipped, never issued.
const idBlockSize = 100

// idSource issues incident and held action IDs from blocks reserved in the
// store (ReserveIDs, a durable sequence), so that no ID is issued twice,
// across restarts and nodes. The tick goroutine reserves the next block
// while half of the current one is left (refill); take reserves one
// itself only when that did not happen in time.
type idSource struct {
	m *Monitor

	mu        sync.Mutex // guards everything below
	next, end int64      // the current block: next up to end (excluded)
	spare     int64      // first ID of a reserved block not yet used, or 0
}

// take returns a new ID. It is the engine's ID function, called with m.mu
// held. When no ID is left it reserves a block at once, retrying until
// the store answers: an ID must never be made up.
func (s *idSource) take() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == s.end {
		if s.spare == 0 {
			s.spare = s.reserve()
		}
		s.next, s.end, s.spare = s.spare, s.spare+idBlockSize, 0
	}
	id := s.next
	s.next++
	return id
}

// reserve reserves a block, retrying every second until it succeeds.
func (s *idSource) reserve() int64 {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		first, err := s.m.store.ReserveIDs(ctx, idBlockSize)
		cancel()
		if err == nil {
			return first
		}
		s.m.log.Error("reserve incident and held action IDs; retrying", "err", err)
		time.Sleep(time.Second)
	}
}

// refill reserves the next block if half of the current one is used and
// none is reserved yet. The tick goroutine calls it, without m.mu.
func (s *idSource) refill(ctx context.Context) error {
	s.mu.Lock()
	low := s.spare == 0 && s.end-s.next < idBlockSize/2
	s.mu.Unlock()
	if !low {
		return nil
	}
	first, err := s.m.store.ReserveIDs(ctx, idBlockSize)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spare == 0 {
		s.spare = first
	}
	return nil
}

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

// reserveTimeout bounds one ReserveIDs call of the reserver.
const reserveTimeout = 10 * time.Second

// idSource issues incident and held action IDs from blocks reserved in the
// store (ReserveIDs, a durable sequence), so that no ID is issued twice,
// across restarts and nodes. It never blocks on the store: take is called
// with m.mu held. Once half of the current block is used, take wakes the
// reserver goroutine (run), which reserves the next block ahead, retrying
// with backoff while the store fails. If the block runs out before that
// succeeds (a long database outage), take reports that no ID is at hand,
// and the engine puts off what needs one (health.Engine.SetIDFunc).
type idSource struct {
	m *Monitor
	// kick wakes the reserver; buffered, so take never waits on it.
	kick chan struct{}

	mu        sync.Mutex // guards everything below
	next, end int64      // the current block: next up to end (excluded)
	spare     int64      // first ID of a reserved block not yet used, or 0
}

func newIDSource(m *Monitor) *idSource {
	return &idSource{m: m, kick: make(chan struct{}, 1)}
}

// take returns a new ID, or false when none is at hand. It is the
// engine's ID function, called with m.mu held; it does not block.
func (s *idSource) take() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == s.end && s.spare != 0 {
		s.next, s.end, s.spare = s.spare, s.spare+idBlockSize, 0
	}
	if s.lowLocked() {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	if s.next == s.end {
		return 0, false
	}
	id := s.next
	s.next++
	return id, true
}

// lowLocked reports whether the next block is to be reserved: half of the
// current one is used and none is reserved yet. s.mu must be held.
func (s *idSource) lowLocked() bool {
	return s.spare == 0 && s.end-s.next < idBlockSize/2
}

// run reserves the next block each time take asks for it, until ctx
// ends. A failed reservation is retried with the writer's backoff (from
// retryEvery, doubling up to 32 times it), each attempt bounded by
// reserveTimeout and ctx: it runs in its own goroutine, owned by the
// Monitor, so that neither the engine nor Stop waits on the store for it.
func (s *idSource) run(ctx context.Context, retryEvery time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		delay := retryEvery
		for attempt := 0; ; attempt++ {
			err := s.refill(ctx)
			if err == nil || ctx.Err() != nil {
				break
			}
			s.m.log.Warn("reserve incident and held action IDs; retrying", "attempt", attempt+1, "retry_in", delay, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			if attempt < maxRetrySteps {
				delay *= 2
			}
		}
	}
}

// refill reserves the next block if the current one runs low and none is
// reserved yet. New calls it, then only run.
func (s *idSource) refill(ctx context.Context) error {
	s.mu.Lock()
	low := s.lowLocked()
	s.mu.Unlock()
	if !low {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
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

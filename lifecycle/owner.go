package lifecycle

import (
	"context"
	"fmt"
	"sync"
)

// Owner does the bookkeeping of one Service: it starts the service once,
// owns its goroutines, and on Stop cancels them and waits for them. A
// service holds an Owner in a field (the zero value is ready) and calls
// it from its own Start and Stop:
//
//	func (s *Svc) Start(ctx context.Context) error {
//		return s.owner.Start(ctx, func(run context.Context) error {
//			s.owner.Go(func() { s.loop(run) })
//			return nil
//		})
//	}
//
//	func (s *Svc) Stop(ctx context.Context) error { return s.owner.Stop(ctx, nil) }
type Owner struct {
	mu     sync.Mutex // guards state, cancel and done; held during start
	state  ownerState
	cancel context.CancelCauseFunc
	// done is closed once the goroutines have ended after a stop.
	done chan struct{}
	wg   sync.WaitGroup
}

// ownerState is where an Owner is in its life.
type ownerState int

const (
	idle ownerState = iota
	running
	stopped
)

// Start runs start, once: later calls, and calls after Stop, return nil
// without running it. A Stop meanwhile waits for start to return. start gets the run context, which carries ctx's
// values, is not cancelled by ctx, and is cancelled with cause ErrStopped
// at Stop; it starts the service's goroutines with Go. When start returns
// an error, Start cancels the run context, waits for the goroutines start
// had started, and returns the error; the service is then stopped.
func (o *Owner) Start(ctx context.Context, start func(run context.Context) error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state != idle {
		return nil
	}
	run, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	o.cancel = cancel
	if err := start(run); err != nil {
		o.state = stopped
		cancel(ErrStopped)
		o.wg.Wait()
		o.done = make(chan struct{})
		close(o.done)
		return err
	}
	o.state = running
	return nil
}

// Go runs f in a goroutine the service owns: Stop waits for it. f must
// return once the run context is cancelled. Call Go from start, or from a
// goroutine that Go started.
func (o *Owner) Go(f func()) { o.wg.Go(f) }

// Stop stops the service. The first Stop of a running service calls flush,
// if not nil, while the goroutines still run (to save or hand over what
// they hold), then cancels the run context and waits for the goroutines
// within ctx. Before Start it only keeps Start from running; a later Stop
// waits for the first one to end, within ctx. Stop returns flush's error,
// else an error wrapping ctx's if the goroutines outlive it.
func (o *Owner) Stop(ctx context.Context, flush func(context.Context) error) error {
	o.mu.Lock()
	switch o.state {
	case idle:
		o.state = stopped
		o.mu.Unlock()
		return nil
	case stopped:
		done := o.done
		o.mu.Unlock()
		return wait(ctx, done)
	}
	o.state = stopped
	done := make(chan struct{})
	o.done = done
	o.mu.Unlock()

	var err error
	if flush != nil {
		err = flush(ctx)
	}
	o.cancel(ErrStopped)
	go func() {
		o.wg.Wait()
		close(done)
	}()
	if werr := wait(ctx, done); err == nil {
		err = werr
	}
	return err
}

// wait waits until done is closed (a nil done means nothing ever ran) or
// ctx ends.
func wait(ctx context.Context, done <-chan struct{}) error {
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("goroutines still running: %w", ctx.Err())
	}
}

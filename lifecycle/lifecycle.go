// Package lifecycle is the one way holdfast's long-running parts start and
// stop: the health monitor, the syncer, the webhook relay, the job
// runner and the HTTP server each implement Service, and holdfast serve
// runs them as one Group, started in order and stopped in reverse.
//
// The contract is River's startstop (rivershared/startstop) with one
// difference: a Service runs until Stop, not until the context given to
// Start ends. Stopping is then always an explicit, ordered step, so the
// owner decides what stops first (the HTTP server) and what last (the
// webhook relay, which enqueues the events the parts stopped before it
// wrote to the outbox),
// and the store is closed only once every part is done with it.
//
// Owner does the bookkeeping a Service needs: one start, one stop, every
// goroutine tracked and waited for.
//
// The Go API is not stable.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrStopped is the cause of a service's run context once Stop has begun
// (context.Cause), telling a stop from other cancellations.
var ErrStopped = errors.New("service stopped")

// Service is a long-running part of the process.
//
// Start starts the service and returns once it runs, or with an error once
// it has released whatever it started: a failed Start leaves no goroutine
// behind. ctx bounds the start and lends its values; cancelling it after
// Start returned does not stop the service, Stop does. Start after an
// earlier Start or a Stop starts nothing and returns nil.
//
// Stop ends every goroutine the service owns and waits for them, within
// ctx; when ctx ends first it returns an error wrapping ctx's. Stop is safe
// before Start, after a failed Start and more than once; a Stop before
// Start keeps a later Start from starting anything.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// DefaultStopTimeout bounds the stop that follows a failed Group start,
// unless Group.StopTimeout says otherwise.
const DefaultStopTimeout = 10 * time.Second

// Group runs services as one: Start starts them in the order they were
// added, and Stop stops them in reverse. When one fails to start, Start
// stops them all in reverse (Stop is a no-op on those that never started)
// and returns the error. A Group starts at most once.
type Group struct {
	// StopTimeout bounds the stop that follows a failed start; zero means
	// DefaultStopTimeout.
	StopTimeout time.Duration

	mu       sync.Mutex // guards everything below
	services []named
	started  bool
}

// named is a service with the name its errors carry.
type named struct {
	name string
	svc  Service
}

// Add appends s to the group under name, which the group's errors carry
// ("start syncer: …"). Add every service before Start.
func (g *Group) Add(name string, s Service) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.services = append(g.services, named{name: name, svc: s})
}

// Start starts every service in order. When one fails, it stops every
// service in reverse, within StopTimeout even if ctx has ended, and
// returns that service's error, wrapped with its name, joined with any
// error of the stops. A second Start returns an error.
func (g *Group) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return errors.New("lifecycle: group already started")
	}
	g.started = true
	for _, s := range g.services {
		if err := s.svc.Start(ctx); err != nil {
			return errors.Join(fmt.Errorf("start %s: %w", s.name, err), g.abortLocked(ctx))
		}
	}
	return nil
}

// abortLocked stops every service after a failed start, within
// StopTimeout even if ctx has ended.
func (g *Group) abortLocked(ctx context.Context) error {
	timeout := g.StopTimeout
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	return g.stopLocked(ctx)
}

// Stop stops every service in reverse order, all within ctx, and returns
// their errors, each wrapped with its service's name. It goes on past a
// service that fails to stop. Stop is safe before Start and more than
// once (Services' Stop is idempotent); it waits for a Start in progress.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.started = true // a stopped group does not start
	return g.stopLocked(ctx)
}

// stopLocked stops every service in reverse order.
func (g *Group) stopLocked(ctx context.Context) error {
	var errs []error
	for i := len(g.services) - 1; i >= 0; i-- {
		s := g.services[i]
		if err := s.svc.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

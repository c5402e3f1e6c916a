package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/lifecycle"

	"go.uber.org/goleak"
)

// failingStart is a service whose Start fails, with nothing to stop.
type failingStart struct{ err error }

func (f failingStart) Start(context.Context) error { return f.err }
func (failingStart) Stop(context.Context) error    { return nil }

// TestServeFailedStartStopsStarted: when the syncer fails to start, serve
// stops what had started before it, in reverse, and returns the error.
// Before issue 11 the webhook publisher's goroutine was left running.
// Not parallel: goleak counts every goroutine of the process.
func TestServeFailedStartStopsStarted(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newTestEnv(t, sqliteEngine)
	var logs syncBuffer
	a, err := newApp(t.Context(), []string{"--listen", freeAddr(t)}, e.getenv, &logs)
	if err != nil {
		t.Fatalf("newApp = %v\n%s", err, logs.String())
	}
	defer a.close()
	errBoom := errors.New("boom")
	replaced := false
	for i, s := range a.services {
		if s.name == "syncer" {
			a.services[i].Service, replaced = failingStart{errBoom}, true
		}
	}
	if !replaced {
		t.Fatal("serve has no service named syncer")
	}
	err = a.run(t.Context())
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "start syncer: boom") {
		t.Fatalf("run = %v, want start syncer: boom", err)
	}
}

// budgetEater is a service whose Stop uses the whole of its budget, as the
// job runner may while a send runs; then it stops the service it stands
// for.
type budgetEater struct{ lifecycle.Service }

func (s budgetEater) Stop(ctx context.Context) error {
	<-ctx.Done()
	return errors.Join(s.Service.Stop(context.Background()), ctx.Err())
}

// TestServeStopFlushesMonitor (issue 12, point 4): when the job runner
// uses the whole shutdown budget, the health monitor still gets time to
// write its queue and its final state before the store closes.
func TestServeStopFlushesMonitor(t *testing.T) {
	e := newTestEnv(t, sqliteEngine)
	var logs syncBuffer
	a, err := newApp(t.Context(), []string{"--listen", freeAddr(t), "--shutdown-timeout", "2s"}, e.getenv, &logs)
	if err != nil {
		t.Fatalf("newApp = %v\n%s", err, logs.String())
	}
	defer a.close()
	replaced := false
	for i, s := range a.services {
		if s.name == "background jobs" {
			a.services[i].Service, replaced = budgetEater{s.Service}, true
		}
	}
	if !replaced {
		t.Fatal("serve has no service named background jobs")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "holdfast serving"); {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := time.Now().UTC().Truncate(time.Second)
	cancel()
	err = <-done
	if err == nil || strings.Contains(err.Error(), "health monitor") {
		t.Fatalf("run = %v; want only the job runner's stop to fail", err)
	}
	at, _, err := a.store.EngineState(context.Background())
	if err != nil || at.Before(stopped) {
		t.Fatalf("EngineState = saved at %v, %v; want the state saved at shutdown (%v)", at, err, stopped)
	}
}

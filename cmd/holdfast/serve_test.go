package main

import (
	"context"
	"errors"
	"strings"
	"testing"

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

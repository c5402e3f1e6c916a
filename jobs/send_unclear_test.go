package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/provider/gmail"
	"github.com/holdfast/holdfast/provider/graph"
	"github.com/holdfast/holdfast/provider/providertest"
)

// TestSendExactlyOnceWhenProviderFailsAfterAccepting sends 50 messages
// through each emulated provider while every send is taken and then
// answered 503, and the sent copy takes up to 58 s to show (Graph: in the
// Outbox meanwhile; Gmail: not found by search). The worker's attempts
// run as River would run them, on the emulator's clock: an error retries
// after NextRetry's backoff, a snooze after its duration. Each message
// must go out exactly once and end "sent".
func TestSendExactlyOnceWhenProviderFailsAfterAccepting(t *testing.T) {
	t.Parallel()
	const trials = 50
	for _, p := range []holdfast.Provider{holdfast.ProviderMicrosoft, holdfast.ProviderGoogle} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			for i := range trials {
				delay := time.Duration(i%30) * 2 * time.Second
				t.Run(fmt.Sprintf("%02d delay %v", i, delay), func(t *testing.T) {
					t.Parallel()
					sendThroughUnclearFault(t, p, delay)
				})
			}
		})
	}
}

// sendThroughUnclearFault sends one message from a mailbox of an emulator
// whose sends take delay to reach Sent and are all answered 503 after
// being taken, and checks it went out once.
func sendThroughUnclearFault(t *testing.T, p holdfast.Provider, delay time.Duration) {
	b := setupSend(t)
	emu := providertest.StartEmulator(t, providertest.EmulatorOptions{Provider: p, Email: "a@example.org", SentDelay: delay})
	// FindSent's second look waits on the wall clock, which does not move
	// the emulator's: the worker's window is what must cover the delay.
	var conn holdfast.Connector
	var err error
	ep := emulator.Microsoft
	if p == holdfast.ProviderGoogle {
		ep = emulator.Google
		conn, err = gmail.New(gmail.Config{BaseURL: emu.URLs.Gmail, Tokens: emu.Tokens, FindSentWait: -1})
	} else {
		conn, err = graph.New(graph.Config{BaseURL: emu.URLs.Graph, Tokens: emu.Tokens, FindSentWait: -1})
	}
	if err != nil {
		t.Fatal(err)
	}
	surface := map[emulator.Provider]emulator.Surface{emulator.Microsoft: emulator.SurfaceGraph, emulator.Google: emulator.SurfaceGmail}[ep]
	if _, err := emu.AddFault(emulator.Fault{Provider: ep, Surfaces: []emulator.Surface{surface}, AfterAccept: true}); err != nil {
		t.Fatal(err)
	}
	b.inbox = createInbox(t, b.store, p, emu.Email)
	b.worker.Connectors = map[holdfast.Provider]holdfast.Connector{p: conn}
	b.worker.Session = func(_ context.Context, in *holdfast.Inbox) (*holdfast.Session, error) {
		s := emu.Session(in.ID)
		s.Inbox = in
		return s, nil
	}
	b.worker.Clock = emu.Clock

	s := b.newSend(t, emu.Clock.Now())
	job := &river.Job[jobs.SendArgs]{
		JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 20},
		Args:   jobs.SendArgs{SendID: s.ID},
	}
	for runs := 0; ; runs++ {
		if runs > 100 {
			t.Fatal("the send never ended")
		}
		err := b.worker.Work(t.Context(), job)
		if err == nil {
			break
		}
		if sn, ok := errors.AsType[*river.JobSnoozeError](err); ok {
			emu.Clock.Advance(sn.Duration)
			continue
		}
		if job.Attempt >= job.MaxAttempts {
			t.Fatalf("attempt %d: %v", job.Attempt, err)
		}
		job.Errors = append(job.Errors, rivertype.AttemptError{At: emu.Clock.Now(), Attempt: job.Attempt, Error: err.Error()})
		emu.Clock.Advance(time.Until(b.worker.NextRetry(job)).Round(time.Second))
		job.Attempt++
	}
	if got := b.get(t, s.ID); got.State != holdfast.SendSent {
		t.Errorf("send is %s (%q), want sent", got.State, got.Reason)
	}
	sent, err := emu.Sent(emu.Email)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range sent {
		if m.MessageID == s.MessageID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("sent %d times with a Sent delay of %v, want once", n, delay)
	}
}

package health_test

import (
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/health"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// printSink prints what the service would persist.
type printSink struct{ health.NopSink }

func (printSink) Transition(t health.Transition) {
	fmt.Printf("inbox %d: %s -> %s (%s)\n", t.Inbox, t.From, t.To, t.Reason)
}

// The service registers tenants and inboxes, asks Admit before each
// request, feeds every outcome to Observe, calls Tick every second and
// persists what the Sink receives.
func Example() {
	clk := &clock{t: time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)}
	e := health.New(health.DefaultConfig(), clk, nil, printSink{})
	tenant, _ := e.AddTenant(holdfast.ProviderMicrosoft)
	inbox, _ := e.AddInbox(tenant)
	e.Tick()

	if e.Admit(inbox, health.OpSync) == health.Allow {
		v := classify.Verdict{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonTokenRevoked,
			Scope: holdfast.ScopeAccount, Action: holdfast.ActionReconnect}
		d := e.Observe(inbox, health.Outcome{Op: health.OpSync, Verdict: &v})
		fmt.Println("state:", d.State, "check again in", d.RetryAt.Sub(clk.t) > 0)
	}
	fmt.Println("send:", e.Admit(inbox, health.OpSend))
	// Output:
	// inbox 0: connected -> suspect (token_revoked)
	// state: suspect check again in true
	// send: hold
}

package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/holdfast/holdfast/emulator"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	const body503 = `{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred. Please try again."}`
	// Each case starts a fault, then checks which of four requests fail:
	// Microsoft token and Graph for ada (tenant contoso) and for bob (tenant
	// fabrikam), Google token and Gmail for gus.
	type probe struct{ msToken, graph, bobToken, bobGraph, gToken, gmail bool }
	tests := []struct {
		name  string
		fault emulator.Fault
		fails probe
	}{
		{"microsoft token everywhere", emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{"token"}, HTTPStatus: 503, Body: body503},
			probe{msToken: true, bobToken: true}},
		{"microsoft both surfaces", emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{"token", "graph"}, HTTPStatus: 503},
			probe{msToken: true, graph: true, bobToken: true, bobGraph: true}},
		{"one tenant", emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{"token", "graph"}, Tenant: "contoso", HTTPStatus: 500},
			probe{msToken: true, graph: true}},
		{"one mailbox", emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{"graph"}, Email: "bob@fabrikam.com", HTTPStatus: 429, RetryAfterS: 7},
			probe{bobGraph: true}},
		{"google token named token", emulator.Fault{Provider: emulator.Google, Surfaces: []emulator.Surface{"token"}, HTTPStatus: 400},
			probe{gToken: true}},
		{"gmail", emulator.Fault{Provider: emulator.Google, Surfaces: []emulator.Surface{"gmail", "google_token"}, HTTPStatus: 503, RetryAfterS: 2.5},
			probe{gToken: true, gmail: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{})
			adaRT, adaAT := b.account(t, emulator.Microsoft, "ada@contoso.com", "contoso")
			bobRT, bobAT := b.account(t, emulator.Microsoft, "bob@fabrikam.com", "fabrikam")
			gusRT, gusAT := b.account(t, emulator.Google, "gus@gmail.com", "")
			id, err := b.e.AddFault(tt.fault)
			if err != nil {
				t.Fatal(err)
			}
			probes := func() (probe, map[string]response) {
				rs := map[string]response{
					"msToken":  b.refresh(t, emulator.Microsoft, adaRT),
					"graph":    b.get(t, b.u.Graph+"/v1.0/me", adaAT),
					"bobToken": b.refresh(t, emulator.Microsoft, bobRT),
					"bobGraph": b.get(t, b.u.Graph+"/v1.0/me", bobAT),
					"gToken":   b.refresh(t, emulator.Google, gusRT),
					"gmail":    b.get(t, b.u.Gmail+"/gmail/v1/users/me/profile", gusAT),
				}
				failed := func(k string) bool { return rs[k].status != http.StatusOK }
				return probe{failed("msToken"), failed("graph"), failed("bobToken"), failed("bobGraph"), failed("gToken"), failed("gmail")}, rs
			}
			got, rs := probes()
			if diff := cmp.Diff(tt.fails, got, cmp.AllowUnexported(probe{})); diff != "" {
				t.Errorf("failing requests (-want +got):\n%s", diff)
			}
			for k, r := range rs {
				if r.status == http.StatusOK {
					continue
				}
				if r.status != tt.fault.HTTPStatus {
					t.Errorf("%s: status %d; want %d", k, r.status, tt.fault.HTTPStatus)
				}
				if tt.fault.Body != "" && string(r.body) != tt.fault.Body {
					t.Errorf("%s: body %q; want exactly %q", k, r.body, tt.fault.Body)
				}
				wantRA := ""
				if tt.fault.RetryAfterS > 0 {
					wantRA = strings.TrimSuffix(fmt.Sprint(tt.fault.RetryAfterS), ".0")
				}
				if ra := r.header.Get("Retry-After"); ra != wantRA {
					t.Errorf("%s: Retry-After %q; want %q", k, ra, wantRA)
				}
			}
			if err := b.e.RemoveFault(id); err != nil {
				t.Fatal(err)
			}
			if got, _ := probes(); got != (probe{}) {
				t.Errorf("after removal, failing: %+v", got)
			}
		})
	}
}

func TestFaultDefaultBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	msRT, msAT := b.account(t, emulator.Microsoft, "ada@contoso.com", "")
	gRT, gAT := b.account(t, emulator.Google, "gus@gmail.com", "")
	tests := []struct {
		surface emulator.Surface
		status  int
		do      func() response
		check   func(r response) bool
	}{
		{"token", 503, func() response { return b.refresh(t, emulator.Microsoft, msRT) },
			func(r response) bool { return errorField(t, r) == "temporarily_unavailable" }},
		{"graph", 503, func() response { return b.get(t, b.u.Graph+"/v1.0/me", msAT) },
			func(r response) bool { return apiErrorCode(t, r) == "serviceNotAvailable" }},
		{"google_token", 400, func() response { return b.refresh(t, emulator.Google, gRT) },
			func(r response) bool { return errorField(t, r) == "invalid_grant" }},
		{"google_token", 503, func() response { return b.refresh(t, emulator.Google, gRT) },
			func(r response) bool { return len(r.body) == 0 }},
		{"gmail", 429, func() response { return b.get(t, b.u.Gmail+"/gmail/v1/users/me/profile", gAT) },
			func(r response) bool { return r.json(t)["error"].(map[string]any)["status"] == "RESOURCE_EXHAUSTED" }},
	}
	for _, tt := range tests {
		p := emulator.Microsoft
		if tt.surface == "google_token" || tt.surface == "gmail" {
			p = emulator.Google
		}
		id, err := b.e.AddFault(emulator.Fault{Provider: p, Surfaces: []emulator.Surface{tt.surface}, HTTPStatus: tt.status})
		if err != nil {
			t.Fatal(err)
		}
		if r := tt.do(); r.status != tt.status || !tt.check(r) {
			t.Errorf("%s %d: got %d %s", tt.surface, tt.status, r.status, r.body)
		}
		if err := b.e.RemoveFault(id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFaultRateIsSeeded(t *testing.T) {
	t.Parallel()
	pattern := func(seed uint64) string {
		b := setup(t, emulator.Config{Seed: seed})
		_, at := b.account(t, emulator.Microsoft, "ada@contoso.com", "")
		if _, err := b.e.AddFault(emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{"graph"}, FailureRate: 0.5}); err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for range 200 {
			if b.get(t, b.u.Graph+"/v1.0/me", at).status == http.StatusOK {
				sb.WriteByte('.')
			} else {
				sb.WriteByte('x')
			}
		}
		return sb.String()
	}
	a, again, other := pattern(42), pattern(42), pattern(7)
	if a != again {
		t.Errorf("same seed, different failures:\n%s\n%s", a, again)
	}
	if a == other {
		t.Errorf("different seeds, same failures: %s", a)
	}
	if n := strings.Count(a, "x"); n < 70 || n > 130 {
		t.Errorf("%d of 200 requests failed at rate 0.5", n)
	}
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider emulator.Provider
		url      func(emulator.URLs) string
		check    func(t *testing.T, r response)
	}{
		{emulator.Microsoft, func(u emulator.URLs) string { return u.Graph + "/v1.0/me" }, func(t *testing.T, r response) {
			e := r.json(t)["error"].(map[string]any)
			inner := e["innerError"].(map[string]any)
			if e["code"] != "TooManyRequests" || e["message"] != "Please retry again later." || inner["status"] != "429" || inner["message"] != "Please retry after" {
				t.Errorf("429 body = %s", r.body)
			}
		}},
		{emulator.Google, func(u emulator.URLs) string { return u.Gmail + "/gmail/v1/users/me/profile" }, func(t *testing.T, r response) {
			e := r.json(t)["error"].(map[string]any)
			if e["code"] != 429.0 || e["status"] != "RESOURCE_EXHAUSTED" || e["errors"].([]any)[0].(map[string]any)["reason"] != "rateLimitExceeded" {
				t.Errorf("429 body = %s", r.body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider), func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{RateLimit: 2})
			_, at := b.account(t, tt.provider, "ada@contoso.com", "")
			_, other := b.account(t, tt.provider, "bob@contoso.com", "")
			for i := range 2 {
				if r := b.get(t, tt.url(b.u), at); r.status != http.StatusOK {
					t.Fatalf("request %d: %d %s", i, r.status, r.body)
				}
			}
			r := b.get(t, tt.url(b.u), at)
			if r.status != http.StatusTooManyRequests {
				t.Fatalf("third request in a second: %d; want 429", r.status)
			}
			if ra := r.header.Get("Retry-After"); ra != "1" {
				t.Errorf("Retry-After = %q; want 1", ra)
			}
			tt.check(t, r)
			// The limit is per mailbox.
			if r := b.get(t, tt.url(b.u), other); r.status != http.StatusOK {
				t.Errorf("another mailbox: %d; want 200", r.status)
			}
			b.clock.Advance(time.Second)
			if r := b.get(t, tt.url(b.u), at); r.status != http.StatusOK {
				t.Errorf("after Retry-After: %d; want 200", r.status)
			}
		})
	}
}

// TestConcurrentUse runs deliveries, syncs, sends and faults at once under
// the race detector.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{Now: time.Now})
	const workers, each = 8, 10
	ats := make([]string, workers)
	for i := range workers {
		_, ats[i] = b.account(t, emulator.Microsoft, fmt.Sprintf("u%d@contoso.com", i), "")
	}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			email := fmt.Sprintf("u%d@contoso.com", i)
			for j := range each {
				if _, err := b.e.Deliver(emulator.Mail{To: email, From: "x@example.net", Subject: fmt.Sprint(j)}); err != nil {
					t.Error(err)
				}
				id, err := b.e.AddFault(emulator.Fault{Provider: emulator.Google, Surfaces: []emulator.Surface{"gmail"}})
				if err != nil {
					t.Error(err)
				}
				b.get(t, b.u.Graph+"/v1.0/me/mailFolders/inbox/messages/delta", ats[i])
				_ = b.e.RemoveFault(id)
			}
		})
	}
	wg.Wait()
	for i := range workers {
		ids, _, _ := b.deltaRound(t, b.u.Graph+"/v1.0/me/mailFolders/inbox/messages/delta", ats[i], 3)
		if len(ids) != each {
			t.Errorf("mailbox %d: %d messages; want %d", i, len(ids), each)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{MaxMessages: 2, MaxAccounts: 2})
	_, at := b.account(t, emulator.Microsoft, "ada@contoso.com", "")
	b.deliver(t, "ada@contoso.com", 2)
	if _, err := b.e.Deliver(emulator.Mail{To: "ada@contoso.com", From: "x@example.net"}); !errors.Is(err, emulator.ErrFull) {
		t.Errorf("delivery into a full mailbox: %v; want ErrFull", err)
	}
	r := b.postJSON(t, b.u.Graph+"/v1.0/me/sendMail", at, map[string]any{"message": map[string]any{
		"toRecipients": []any{map[string]any{"emailAddress": map[string]string{"address": "x@example.net"}}}}})
	if r.status != http.StatusForbidden || apiErrorCode(t, r) != "ErrorQuotaExceeded" {
		t.Errorf("send from a full mailbox: %d %s", r.status, r.body)
	}
	b.account(t, emulator.Google, "g@example.com", "")
	if _, err := b.e.CreateAccount(emulator.Account{Provider: emulator.Google, Email: "h@example.com"}); !errors.Is(err, emulator.ErrFull) {
		t.Errorf("third account: %v; want ErrFull", err)
	}
	if r := b.postJSON(t, b.u.Control+"/mail", "", map[string]string{"to": "ada@contoso.com", "from": "x@example.net"}); r.status != http.StatusInsufficientStorage {
		t.Errorf("POST /mail into a full mailbox: %d %s; want 507", r.status, r.body)
	}
	big := strings.Repeat("x", 70<<10)
	if r := b.postJSON(t, b.u.Control+"/accounts", "", map[string]string{"provider": "google", "email": big}); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized control body: %d; want 413", r.status)
	}
}

func TestRunShutsDownOnCancel(t *testing.T) {
	t.Parallel()
	e := emulator.New(emulator.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/_emulator/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

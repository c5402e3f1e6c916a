package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/provider/mailtest"
	"github.com/holdfast/holdfast/webhook"
)

// The crash campaign (issue 12, point 12) runs a live drill on real
// processes, a `holdfast emulator` and a private Dovecot and Postfix, with
// Microsoft, Google and Dovecot inboxes, sends, a webhook receiver, a
// Microsoft outage whose errors look permanent and one Google grant revoked
// for real, while `holdfast serve` is killed with SIGKILL at random moments
// and restarted on the same data, again and again. Once the service has
// settled after its last restart the test checks from outside (the API,
// the receiver, the emulator's and Dovecot's mailboxes, and the store read
// beside the service) that nothing a crash could lose or double was lost
// or doubled, and prints the figures.
//
// -campaign.scale=N (or HOLDFAST_CAMPAIGN_SCALE=N) multiplies its inboxes,
// sends and kills; HOLDFAST_CAMPAIGN_SEED=S replays a run's random
// choices; HOLDFAST_CAMPAIGN_ENGINE=postgres runs it on PostgreSQL.

var campaignScaleFlag = flag.Int("campaign.scale", 0, "multiplies TestCrashCampaign's inboxes, sends and kills (default HOLDFAST_CAMPAIGN_SCALE, else 1)")

// campaignSpec sizes one campaign.
type campaignSpec struct {
	microsoft, google int // emulated inboxes, over tenants domains each
	tenants           int
	imap              int // Dovecot inboxes
	sends             int
	kills             int
	syncInterval      time.Duration
}

// campaignSpecFor returns the campaign's size at scale.
func campaignSpecFor(scale int) campaignSpec {
	// At least 20 Microsoft inboxes over several tenants fail together,
	// so that the outage detector sees a provider outage.
	// Larger fleets sync less often, so that the emulator keeps up.
	return campaignSpec{microsoft: 24 * scale, google: 6 * scale, tenants: 4, imap: 2, sends: 40 * scale, kills: 20 * scale,
		syncInterval: time.Duration(2*scale) * time.Second}
}

// The campaign's health settings: short enough for a test, with the confirm
// span well beyond the detector's reaction (as docs/operations.md asks).
const (
	campaignBucket      = time.Second
	campaignConfirmSpan = 15 * time.Second
	campaignNoticeGrace = 10 * time.Second
)

// campaignInbox is one inbox of the campaign.
type campaignInbox struct {
	id, email, provider string
	revoked             bool
}

// campaignSend is one accepted send.
type campaignSend struct {
	id, messageID string
	from          *campaignInbox
	to            string
}

// identity is what must never change about an incident or a held action
// once it has been seen under its ID.
type identity string

// campaign is one run of the crash campaign.
type campaign struct {
	t     *testing.T
	spec  campaignSpec
	seed  uint64
	srv   *mailtest.Server
	ctl   string
	e     *testEnv
	key   string
	addr  string
	api   string
	hooks *receiver

	mu       sync.Mutex
	p        *process   // the running serve
	procs    []*process // every serve run, in order
	sends    []*campaignSend
	seenInc  map[int64]identity
	seenHeld map[int64]identity
	changed  []string // identities seen to change, or IDs listed twice

	inboxes  []*campaignInbox
	revoked  *campaignInbox
	start    time.Time
	kills    int
	killedAt []time.Time   // when each kill took effect
	downs    time.Duration // time without a serve process
}

// The Dovecot users the campaign needs besides its inboxes.
const (
	campaignRelay, campaignRelayPW = "relay@dovecot.test", "relay pw 4k"
	campaignSink                   = "sink@dovecot.test"
	campaignElsewhere              = "someone@elsewhere.test"
)

// TestCrashCampaign does not run in parallel: it loads the machine's two
// cores for a minute and a half, which would skew the timings of the
// outage drill beside it, and its own.
func TestCrashCampaign(t *testing.T) {
	scale := *campaignScaleFlag
	if scale == 0 {
		scale = 1
		if v := os.Getenv("HOLDFAST_CAMPAIGN_SCALE"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("HOLDFAST_CAMPAIGN_SCALE=%q: want a whole number from 1", v)
			}
			scale = n
		}
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HOLDFAST_CAMPAIGN_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("HOLDFAST_CAMPAIGN_SEED: %v", err)
		}
	}
	eng := sqliteEngine
	switch v := os.Getenv("HOLDFAST_CAMPAIGN_ENGINE"); v {
	case "", "sqlite":
	case "postgres":
		eng = postgresEngine
	default:
		t.Fatalf("HOLDFAST_CAMPAIGN_ENGINE=%q: want sqlite or postgres", v)
	}
	spec := campaignSpecFor(scale)
	t.Logf("scale %d on %s: %d Microsoft and %d Google inboxes over %d tenants each, %d Dovecot, %d sends, %d kills, syncs every %v; seed %d (HOLDFAST_CAMPAIGN_SEED=%d replays the random choices)",
		scale, eng.name, spec.microsoft, spec.google, spec.tenants, spec.imap, spec.sends, spec.kills, spec.syncInterval, seed, seed)
	c := newCampaign(t, eng, spec, seed)
	c.connect()
	c.run()
	c.settle()
	c.check()
}

func newCampaign(t *testing.T, eng engine, spec campaignSpec, seed uint64) *campaign {
	c := &campaign{t: t, spec: spec, seed: seed, seenInc: map[int64]identity{}, seenHeld: map[int64]identity{}}
	c.srv = mailtest.Start(t)
	c.srv.AddUser(t, campaignRelay, campaignRelayPW)
	c.srv.AddUser(t, campaignSink, "sink pw")
	var emuEnv map[string]string
	c.ctl, emuEnv = emulatorProcess(t, "--token-lifetime", "2m")
	c.e = newTestEnv(t, eng)
	useEmulator(c.e, emuEnv)
	for k, v := range map[string]string{
		"HOLDFAST_LOG_LEVEL": "info", "HOLDFAST_ALLOW_PRIVATE_WEBHOOKS": "true",
		"HOLDFAST_MAIL_CA_FILE": c.srv.CAFile, "HOLDFAST_SYNC_INTERVAL": spec.syncInterval.String(),
		"HOLDFAST_HEALTH_CONFIRM_SPAN": campaignConfirmSpan.String(), "HOLDFAST_HEALTH_BUCKET": campaignBucket.String(),
		"HOLDFAST_HEALTH_CLOSE_WINDOW": "10s", "HOLDFAST_HEALTH_NOTICE_GRACE": campaignNoticeGrace.String(),
		"HOLDFAST_HEALTH_KEEPALIVE": "1m",
		// A send whose process died is resumed by the send sweep within
		// a minute, or retried 2 × 10 s after its attempt began. An
		// attempt, its look in Sent included, has 10 s on a loaded
		// machine.
		"HOLDFAST_SEND_TIMEOUT":    "10s",
		"HOLDFAST_NOTIFY_SMTP_URL": "smtp://" + url.UserPassword(campaignRelay, campaignRelayPW).String() + "@" + c.srv.SMTPAddr,
		"HOLDFAST_NOTIFY_FROM":     "holdfast <" + campaignRelay + ">",
	} {
		c.e.env[k] = v
	}
	c.key = c.e.createAPIKey("campaign")
	c.addr = freeAddr(t)
	c.api = "http://" + c.addr
	c.hooks = newReceiver(t, seed)
	c.p = c.e.startProcess(c.addr)
	c.procs = []*process{c.p}
	t.Cleanup(func() {
		if t.Failed() {
			c.mu.Lock()
			p := c.p
			c.mu.Unlock()
			t.Logf("logs of the last serve (last 16 kB):\n%s", tail(p.logs.String(), 16384))
		}
	})
	return c
}

// useEmulator points e's serve at the emulator whose environment emuEnv
// is (emulatorProcess), with the emulator's client credentials for both
// providers.
func useEmulator(e *testEnv, emuEnv map[string]string) {
	for k, v := range emuEnv {
		e.env[k] = v
	}
	for k, v := range map[string]string{
		"HOLDFAST_MICROSOFT_CLIENT_ID": emulator.DefaultClientID, "HOLDFAST_MICROSOFT_CLIENT_SECRET": emulator.DefaultClientSecret,
		"HOLDFAST_GOOGLE_CLIENT_ID": emulator.DefaultClientID, "HOLDFAST_GOOGLE_CLIENT_SECRET": emulator.DefaultClientSecret,
	} {
		e.env[k] = v
	}
}

// connect registers the webhook and connects every inbox, and waits until
// all are connected.
func (c *campaign) connect() {
	t := c.t
	code, hook := call(t, "POST", c.api+"/v1/webhooks", c.key, map[string]any{"url": c.hooks.srv.URL, "events": []string{"*"}})
	if code != http.StatusCreated {
		t.Fatalf("POST webhook = %d %v", code, hook)
	}
	c.hooks.setSecret(hook["secret"].(string))
	for _, pv := range []struct {
		provider emulator.Provider
		prefix   string
		n        int
	}{{emulator.Microsoft, "ms", c.spec.microsoft}, {emulator.Google, "g", c.spec.google}} {
		var emails []string
		for i := range pv.n {
			emails = append(emails, fmt.Sprintf("u%03d@%s-t%02d.test", i, pv.prefix, i%c.spec.tenants))
		}
		for email, id := range connectGrants(t, c.api, c.key, c.ctl, pv.provider, emails) {
			c.inboxes = append(c.inboxes, &campaignInbox{id: id, email: email, provider: string(pv.provider)})
		}
	}
	for i := range c.spec.imap {
		email, pw := fmt.Sprintf("box%02d@dovecot.test", i), fmt.Sprintf("box pw %02d", i)
		c.srv.AddUser(t, email, pw)
		code, in := call(t, "POST", c.api+"/v1/inboxes", c.key, mailInbox(t, c.srv, email, pw))
		if code != http.StatusCreated {
			t.Fatalf("POST /v1/inboxes %s = %d %v", email, code, in)
		}
		c.inboxes = append(c.inboxes, &campaignInbox{id: in["id"].(string), email: email, provider: "imap"})
	}
	sort.Slice(c.inboxes, func(i, j int) bool { return c.inboxes[i].email < c.inboxes[j].email })
	// The grant revoked for real: a Google one. Its owner (the inbox's
	// address) has a mailbox on the relay, so that the notice can be read.
	for _, in := range c.inboxes {
		if in.provider == string(emulator.Google) {
			c.revoked, in.revoked = in, true
			break
		}
	}
	c.srv.AddUser(t, c.revoked.email, "owner pw")
	start := time.Now()
	waitFor(t, 90*time.Second, "every inbox connected before the campaign", func() bool {
		time.Sleep(500 * time.Millisecond)
		n := 0
		for _, st := range c.states() {
			if st == "connected" {
				n++
			}
		}
		return n == len(c.inboxes)
	})
	t.Logf("%d inboxes (%d Microsoft and %d Google over %d tenants each, %d Dovecot) connected in %v",
		len(c.inboxes), c.spec.microsoft, c.spec.google, c.spec.tenants, c.spec.imap, time.Since(start).Round(100*time.Millisecond))
}

// states returns every inbox's state by ID.
func (c *campaign) states() map[string]string {
	states := map[string]string{}
	for _, m := range allInboxes(c.t, c.api, c.key) {
		states[m["id"].(string)] = m["state"].(string)
	}
	return states
}

// try makes one API request; unlike call, a service that is down is an
// error, not a failure.
func (c *campaign) try(method, path string, body any) (int, map[string]any, error) {
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.api+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp.StatusCode, m, nil
}

// run is the campaign proper: kills at random moments, with the workload
// (sends), the observer (incidents and held actions), the outage and the
// revocation around them.
func (c *campaign) run() {
	t := c.t
	rng := rand.New(rand.NewPCG(c.seed, 1))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { c.sendAll(rand.New(rand.NewPCG(c.seed, 2))) })
	wg.Go(func() { c.observe(done) })

	msBody := errorBody(t, "ms-token-50173")
	var faultID string
	faultOn, faultOff, revokeAt := 1, c.spec.kills*3/5, c.spec.kills/4
	c.start = time.Now()
	at := func() string { return time.Since(c.start).Round(100 * time.Millisecond).String() }
	for k := range c.spec.kills {
		switch k {
		case faultOn:
			// Every Microsoft token and Graph request fails the way the
			// 2025-03-01 outage did: AADSTS50173, "the grant has expired
			// because it was revoked". The next life is long enough for
			// the outage detector to see it.
			var r struct {
				ID string `json:"id"`
			}
			control(t, "POST", c.ctl+"/faults", map[string]any{"provider": "microsoft", "surfaces": []string{"token", "graph"}, "http_status": 400, "body": msBody}, &r)
			faultID = r.ID
			t.Logf("%s outage starts: Microsoft token and Graph answer AADSTS50173", at())
		case revokeAt:
			control(t, "POST", c.ctl+"/accounts/"+url.PathEscape(c.revoked.email)+"/revoke", nil, nil)
			t.Logf("%s the grant of %s (%s) is revoked", at(), c.revoked.email, c.revoked.id)
		case faultOff:
			control(t, "DELETE", c.ctl+"/faults/"+faultID, nil, nil)
			t.Logf("%s outage ends", at())
		}
		life := time.Duration(300+rng.IntN(1400)) * time.Millisecond
		if k == faultOn {
			life = 6 * time.Second
		}
		time.Sleep(life)
		c.kill(life)
	}
	t.Logf("%s %d kills done", at(), c.kills)
	close(done)
	wg.Wait()
}

// kill kills the running serve with SIGKILL and starts another on the
// same data and address.
func (c *campaign) kill(life time.Duration) {
	c.mu.Lock()
	p := c.p
	c.mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	<-p.exited
	down := time.Now()
	c.kills++
	c.killedAt = append(c.killedAt, down)
	np := c.e.startProcess(c.addr)
	c.mu.Lock()
	c.p = np
	c.procs = append(c.procs, np)
	c.downs += time.Since(down)
	c.mu.Unlock()
	c.t.Logf("kill %d: SIGKILL %v after ready; restarted in %v", c.kills, life, time.Since(down).Round(10*time.Millisecond))
}

// sendAll posts the campaign's sends one after another from random
// inboxes (never the revoked one), a third of them due a few seconds
// later; a request the kill interrupts is repeated, with its idempotency
// key, until answered.
func (c *campaign) sendAll(rng *rand.Rand) {
	var from []*campaignInbox
	for _, in := range c.inboxes {
		if !in.revoked {
			from = append(from, in)
		}
	}
	for i := range c.spec.sends {
		in := from[rng.IntN(len(from))]
		to := campaignElsewhere
		if in.provider == "imap" {
			to = campaignSink
		}
		at := time.Now()
		if i%3 == 0 {
			at = at.Add(time.Duration(1000+rng.IntN(4000)) * time.Millisecond)
		}
		body := map[string]any{
			"to": []string{to}, "subject": fmt.Sprint("campaign ", i), "text": "Exactly once, please.",
			"send_at": at.UTC().Format(time.RFC3339Nano), "idempotency_key": fmt.Sprint("campaign-", i),
		}
		for try := 0; ; try++ {
			if try == 600 {
				c.t.Errorf("send %d never answered", i)
				return
			}
			code, snd, err := c.try("POST", "/v1/inboxes/"+in.id+"/send", body)
			if err == nil && code == http.StatusAccepted {
				c.mu.Lock()
				c.sends = append(c.sends, &campaignSend{id: snd["id"].(string), messageID: snd["message_id"].(string), from: in, to: to})
				c.mu.Unlock()
				break
			}
			if err == nil && code != http.StatusServiceUnavailable && code/100 != 5 {
				c.t.Errorf("POST send %d = %d %v", i, code, snd)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
	}
}

// observe lists the incidents and held actions every half second until
// done, recording each under its ID.
func (c *campaign) observe(done <-chan struct{}) {
	for {
		c.record()
		select {
		case <-done:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// record lists the incidents and held actions once (if the service
// answers) and records their identities; it returns whether it could.
func (c *campaign) record() bool {
	code, incs, err := c.try("GET", "/v1/incidents?limit=1000", nil)
	if err != nil || code != http.StatusOK {
		return false
	}
	code, held, err := c.try("GET", "/v1/held-actions?state=all&limit=1000", nil)
	if err != nil || code != http.StatusOK {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remember("incident", c.seenInc, incs, func(m map[string]any) identity {
		return incidentIdentity(m["kind"], m["provider"], m["tenant"], m["opened_at"])
	})
	c.remember("held action", c.seenHeld, held, func(m map[string]any) identity {
		return identity(fmt.Sprintf("%v → %v (%v) held %v", m["inbox_id"], m["to"], m["reason"], m["held_at"]))
	})
	return true
}

// remember records the items of one listing in seen by ID, and notes an
// ID listed twice or whose identity changed. c.mu must be held.
func (c *campaign) remember(what string, seen map[int64]identity, list map[string]any, id func(map[string]any) identity) {
	once := map[int64]bool{}
	for _, d := range list["data"].([]any) {
		m := d.(map[string]any)
		n := int64(m["id"].(float64))
		if once[n] {
			c.changed = append(c.changed, fmt.Sprintf("%s %d listed twice in one answer", what, n))
		}
		once[n] = true
		got := id(m)
		if was, ok := seen[n]; ok && was != got {
			c.changed = append(c.changed, fmt.Sprintf("%s %d was %q, is now %q", what, n, was, got))
		}
		if _, ok := seen[n]; !ok {
			seen[n] = got
		}
	}
}

// settle waits, after the last restart, until every send is sent, every
// inbox but the revoked one is connected, the revoked one needs its owner
// and its owner's notice has been mailed.
func (c *campaign) settle() {
	t := c.t
	start := time.Now()
	var last string
	deadline := start.Add(5 * time.Minute)
	pending := slices.Clone(c.sends)
	for {
		c.record()
		states := c.states()
		var waiting []string
		for _, in := range c.inboxes {
			want := "connected"
			if in.revoked {
				want = "needs_reconnect"
			}
			if states[in.id] != want {
				waiting = append(waiting, fmt.Sprintf("%s %s", in.email, states[in.id]))
			}
		}
		var unsent []string
		pending = slices.DeleteFunc(pending, func(s *campaignSend) bool {
			_, got := call(t, "GET", c.api+"/v1/sends/"+s.id, c.key, nil)
			switch got["state"] {
			case "sent":
				return true
			case "failed", "cancelled":
				t.Fatalf("send %s from %s (%s) ended %v", s.id, s.from.email, s.from.provider, got)
			}
			unsent = append(unsent, fmt.Sprintf("%s from %s %v (%v, %v attempts)", s.id, s.from.email, got["state"], got["reason"], got["attempts"]))
			return false
		})
		mailed := len(c.srv.MessageIDs(t, c.revoked.email, "INBOX"))
		if len(waiting) == 0 && len(unsent) == 0 && mailed > 0 {
			break
		}
		now := fmt.Sprintf("%d inboxes not as they should be (%s), %d sends not sent (%s), %d notices mailed",
			len(waiting), strings.Join(first(waiting, 5), ", "), len(unsent), strings.Join(first(unsent, 5), ", "), mailed)
		if now != last {
			t.Logf("%v after the last restart: %s", time.Since(start).Round(time.Second), now)
			last = now
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled 5 min after the last restart: %s", now)
		}
		time.Sleep(time.Second)
	}
	t.Logf("settled %v after the last restart", time.Since(start).Round(100*time.Millisecond))
}

func first(l []string, n int) []string { return l[:min(n, len(l))] }

// check asserts the campaign's invariants and prints its figures.
func (c *campaign) check() {
	t := c.t
	if !c.record() {
		t.Fatal("the service does not answer after settling")
	}
	incidents, held := c.checkIdentities()
	sendsOut := c.checkSends()
	notices := c.checkNotices()
	c.checkStates()
	facts := c.facts()
	delivered := c.checkEvents(facts)

	byType, factsBy, lostBy := map[string]int{}, map[string]int{}, map[string]int{}
	for _, ev := range c.hooks.events() {
		byType[ev.Type]++
	}
	for _, f := range facts {
		factsBy[f.event]++
		if _, ok := delivered[f]; !ok {
			lostBy[f.event]++
		}
	}
	deliveries, distinct := c.hooks.counts()
	found, resent := 0, 0
	for _, p := range c.procs {
		found += strings.Count(p.logs.String(), "send found in Sent after an unclear attempt")
		resent += strings.Count(p.logs.String(), "send not found in Sent; sending again")
	}
	t.Logf("figures: %d kills, %d restarts, %v without a serve; wall time %v",
		c.kills, len(c.procs)-1, c.downs.Round(100*time.Millisecond), time.Since(c.start).Round(time.Second))
	t.Logf("figures: events: %d distinct delivered %v, %d deliveries accepted, %d duplicate deliveries, %d answered 500 on purpose",
		distinct, byType, deliveries, deliveries-distinct, c.hooks.refused())
	t.Logf("figures: facts in the store that an event announces: %d %v; without a delivered event (lost): %d %v",
		len(facts), factsBy, len(facts)-len(delivered), lostBy)
	t.Logf("figures: sends: %d accepted, %s; %d left unclear by a kill found in Sent, %d sent again", len(c.sends), sendsOut, found, resent)
	t.Logf("figures: %d incidents, %d held actions, notices: %s", incidents, held, notices)
}

// checkIdentities checks that every incident and held action observed is
// still there with its identity, and that no ID was listed twice; it
// returns how many of each there are.
func (c *campaign) checkIdentities() (incidents, held int) {
	t := c.t
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.changed {
		t.Errorf("overwritten or doubled: %s", s)
	}
	_, incs := call(t, "GET", c.api+"/v1/incidents?limit=1000", c.key, nil)
	_, hs := call(t, "GET", c.api+"/v1/held-actions?state=all&limit=1000", c.key, nil)
	for what, l := range map[string]struct {
		seen map[int64]identity
		list map[string]any
	}{"incident": {c.seenInc, incs}, "held action": {c.seenHeld, hs}} {
		now := map[int64]bool{}
		for _, d := range l.list["data"].([]any) {
			now[int64(d.(map[string]any)["id"].(float64))] = true
		}
		for id, ident := range l.seen {
			if !now[id] {
				t.Errorf("lost: %s %d (%s) was listed during the campaign and is gone", what, id, ident)
			}
		}
	}
	return len(c.seenInc), len(c.seenHeld)
}

// checkSends checks that every accepted send went out exactly once:
// counted by Message-ID in the emulator's record of sends, and in the
// Dovecot recipient's INBOX.
func (c *campaign) checkSends() string {
	t := c.t
	sentBy := map[string]map[string]int{}
	copies := func(s *campaignSend) int {
		if s.from.provider == "imap" {
			return c.srv.Count(t, s.to, "INBOX", s.messageID)
		}
		if sentBy[s.from.email] == nil {
			var out struct {
				Data []emulator.SentMessage `json:"data"`
			}
			control(t, "GET", c.ctl+"/sent?from="+url.QueryEscape(s.from.email), nil, &out)
			sentBy[s.from.email] = map[string]int{}
			for _, m := range out.Data {
				sentBy[s.from.email][m.MessageID]++
			}
		}
		return sentBy[s.from.email][s.messageID]
	}
	// Postfix delivers a moment after it accepts.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if !slices.ContainsFunc(c.sends, func(s *campaignSend) bool {
			return s.from.provider == "imap" && c.srv.Count(t, s.to, "INBOX", s.messageID) == 0
		}) {
			break
		}
	}
	delivered, dups, lost := 0, 0, 0
	by := map[string]int{}
	for _, s := range c.sends {
		by[s.from.provider]++
		switch n := copies(s); {
		case n == 0:
			lost++
			t.Errorf("lost: send %s from %s (%s, %s) was accepted and never went out", s.id, s.from.email, s.from.provider, s.messageID)
		case n > 1:
			dups++
			t.Errorf("doubled: send %s from %s (%s, %s) went out %d times", s.id, s.from.email, s.from.provider, s.messageID, n)
		default:
			delivered++
		}
	}
	return fmt.Sprintf("%d delivered once, %d duplicated, %d lost (by provider %v)", delivered, dups, lost, by)
}

// checkNotices checks that no owner was notified twice for one episode,
// and that only the revoked owner was, once. It returns the figures.
func (c *campaign) checkNotices() string {
	t := c.t
	st := c.e.openStore()
	recs, err := st.NoticeRecords(t.Context(), holdfast.NoticeFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	episodes := map[string]int{}
	sent := 0
	for _, n := range recs {
		k := fmt.Sprintf("%s episode %d", n.InboxID, n.Episode)
		if episodes[k]++; episodes[k] > 1 {
			t.Errorf("doubled: %d notices for inbox %s", episodes[k], k)
		}
		if n.Status == holdfast.NoticeSent {
			sent++
		}
		if n.InboxID != c.revoked.id {
			t.Errorf("notice %d (%s) for inbox %s, which was never revoked", n.ID, n.Status, n.InboxID)
		}
	}
	got, mailed := noticesSubmitted(t, c.srv, campaignRelay)
	for owner, n := range got {
		if owner != c.revoked.email {
			t.Errorf("%s got %d notices, want none", owner, n)
		}
	}
	if n := got[c.revoked.email]; n != 1 {
		t.Errorf("%s, whose grant was revoked, got %d notices, want exactly 1", c.revoked.email, n)
	}
	return fmt.Sprintf("%d recorded, %d sent, %d mailed by the relay", len(recs), sent, mailed)
}

// checkStates checks that the outage left nobody in needs_reconnect, now
// or at any time in the inboxes' event logs, and that the revoked inbox
// needs its owner.
func (c *campaign) checkStates() {
	t := c.t
	for _, in := range c.inboxes {
		got := inboxState(t, c.api, c.key, in.id)["state"]
		if in.revoked && got != "needs_reconnect" {
			t.Errorf("revoked inbox %s is %v, want needs_reconnect", in.email, got)
		}
		if !in.revoked && got != "connected" {
			t.Errorf("inbox %s (%s) is %v, want connected", in.email, in.provider, got)
		}
		for _, ev := range c.eventLog(in) {
			if ev["new_state"] == "needs_reconnect" && !in.revoked {
				t.Errorf("inbox %s (%s) was in needs_reconnect, not revoked: %v", in.email, in.provider, ev)
			}
		}
	}
}

// eventLog returns an inbox's event log.
func (c *campaign) eventLog(in *campaignInbox) []map[string]any {
	code, body := call(c.t, "GET", c.api+"/v1/inboxes/"+in.id+"/events?limit=1000", c.key, nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET events of %s = %d %v", in.id, code, body)
	}
	var out []map[string]any
	for _, d := range body["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// fact is something the store shows happened, and the event that
// announces it.
type fact struct {
	event string // event type
	key   string // what identifies it in the event's data
}

// facts lists what the store shows happened that a webhook event
// announces: each incident opened (and resolved), each send sent, each
// state change the health engine made, each notice sent.
func (c *campaign) facts() []fact {
	t := c.t
	var out []fact
	_, incs := call(t, "GET", c.api+"/v1/incidents?limit=1000", c.key, nil)
	for _, d := range incs["data"].([]any) {
		m := d.(map[string]any)
		id := int64(m["id"].(float64))
		out = append(out, fact{webhook.IncidentOpened, fmt.Sprint(id)})
		if m["resolved_at"] != nil {
			out = append(out, fact{webhook.IncidentResolved, fmt.Sprint(id)})
		}
	}
	for _, s := range c.sends {
		out = append(out, fact{webhook.SendSent, s.id})
	}
	for _, in := range c.inboxes {
		for _, ev := range c.eventLog(in) {
			if ev["cause"] == string(holdfast.CauseAPI) || ev["old_state"] == ev["new_state"] {
				continue
			}
			out = append(out, fact{webhook.InboxStateChanged, stateKey(in.id, ev["new_state"].(string), ev["at"].(string))})
		}
	}
	st := c.e.openStore()
	recs, err := st.NoticeRecords(t.Context(), holdfast.NoticeFilter{Status: holdfast.NoticeSent, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range recs {
		out = append(out, fact{webhook.NoticeSent, fmt.Sprint(n.ID)})
	}
	return out
}

// nextKill says, for a fact whose time is known (a state change, a send
// sent), how soon after it the process that stored it was killed.
func (c *campaign) nextKill(f fact) string {
	var at time.Time
	switch f.event {
	case webhook.InboxStateChanged:
		at, _ = time.Parse(time.RFC3339Nano, f.key[strings.LastIndexByte(f.key, ' ')+1:])
	case webhook.SendSent:
		_, snd := call(c.t, "GET", c.api+"/v1/sends/"+f.key, c.key, nil)
		at, _ = time.Parse(time.RFC3339Nano, fmt.Sprint(snd["sent_at"]))
	}
	if at.IsZero() {
		return ""
	}
	for k, killed := range c.killedAt {
		// A state change's time is the engine's, to the second.
		if !killed.Before(at) {
			return fmt.Sprintf(" (stored at %s; kill %d came %v later)", at.Format("15:04:05.000"), k+1, killed.Sub(at).Round(time.Millisecond))
		}
	}
	return fmt.Sprintf(" (stored at %s, after the last kill)", at.Format("15:04:05.000"))
}

// stateKey identifies one state change: inbox, new state and time.
func stateKey(inbox, to, at string) string {
	ts, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return inbox + " " + to + " " + at
	}
	return inbox + " " + to + " " + ts.UTC().Format(time.RFC3339Nano)
}

// keysOf returns the facts an event announces.
func keysOf(ev webhook.Event) []fact {
	var d struct {
		ID      json.RawMessage `json:"id"`
		InboxID string          `json:"inbox_id"`
		To      json.RawMessage `json:"to"`
		At      string          `json:"at"`
		Inboxes []struct {
			NoticeID int64 `json:"notice_id"`
		} `json:"inboxes"`
	}
	raw, _ := json.Marshal(ev.Data)
	_ = json.Unmarshal(raw, &d)
	id := strings.Trim(string(d.ID), `"`)
	switch ev.Type {
	case webhook.InboxStateChanged:
		var to string
		_ = json.Unmarshal(d.To, &to)
		return []fact{{ev.Type, stateKey(d.InboxID, to, d.At)}}
	case webhook.NoticeSent:
		var out []fact
		for _, in := range d.Inboxes {
			out = append(out, fact{ev.Type, fmt.Sprint(in.NoticeID)})
		}
		return out
	case webhook.IncidentOpened, webhook.IncidentResolved, webhook.SendSent:
		return []fact{{ev.Type, id}}
	}
	return nil
}

// checkEvents waits up to a minute for every fact to have reached the
// receiver, then fails for each that did not; it also fails for a notice
// announced under two event IDs (its owner told twice). It returns the
// delivered events that announce a fact, by fact.
func (c *campaign) checkEvents(facts []fact) map[fact]webhook.Event {
	t := c.t
	var missing []fact
	var delivered map[fact]webhook.Event
	var repeated map[fact][]string
	start := time.Now()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		delivered, repeated = map[fact]webhook.Event{}, map[fact][]string{}
		for _, ev := range c.hooks.events() {
			for _, f := range keysOf(ev) {
				delivered[f] = ev
				repeated[f] = append(repeated[f], ev.ID)
			}
		}
		missing = missing[:0]
		for _, f := range facts {
			if _, ok := delivered[f]; !ok {
				missing = append(missing, f)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("events compared with the store's facts %v after settling", time.Since(start).Round(100*time.Millisecond))
	lostBy := map[string]int{}
	for _, f := range missing {
		lostBy[f.event]++
		t.Errorf("lost event: the store shows %s %s, the receiver never got it%s", f.event, f.key, c.nextKill(f))
	}
	if len(missing) > 0 {
		t.Errorf("lost events: %d of %d (%v)", len(missing), len(facts), lostBy)
	}
	c.checkIncidentEvents()
	twice := 0
	for f, ids := range repeated {
		if len(ids) > 1 {
			twice++
			if f.event == webhook.NoticeSent {
				t.Errorf("doubled: notice %s announced by %d events %v", f.key, len(ids), ids)
			}
		}
	}
	if twice > 0 {
		t.Logf("%d facts were announced by more than one event ID", twice)
	}
	out := map[fact]webhook.Event{}
	for _, f := range facts {
		if ev, ok := delivered[f]; ok {
			out[f] = ev
		}
	}
	return out
}

// checkIncidentEvents checks that each incident announced to the
// receiver is, in the store, the incident the event announced: kind,
// provider, tenant and opening time under its ID (an ID issued again
// would overwrite it).
func (c *campaign) checkIncidentEvents() {
	t := c.t
	_, incs := call(t, "GET", c.api+"/v1/incidents?limit=1000", c.key, nil)
	stored := map[int64]identity{}
	for _, d := range incs["data"].([]any) {
		m := d.(map[string]any)
		stored[int64(m["id"].(float64))] = incidentIdentity(m["kind"], m["provider"], m["tenant"], m["opened_at"])
	}
	for _, ev := range c.hooks.events() {
		if ev.Type != webhook.IncidentOpened && ev.Type != webhook.IncidentResolved {
			continue
		}
		m, _ := ev.Data.(map[string]any)
		id := int64(m["id"].(float64))
		got, ok := stored[id]
		switch want := incidentIdentity(m["kind"], m["provider"], m["tenant"], m["opened_at"]); {
		case !ok:
			t.Errorf("lost: incident %d (%s) announced by %s %s is not in the store", id, want, ev.Type, ev.ID)
		case got != want:
			t.Errorf("overwritten: incident %d was announced by %s %s as %s, the store has %s", id, ev.Type, ev.ID, want, got)
		}
	}
}

// incidentIdentity is an incident's identity from its JSON fields, with
// the opening time read as a time.
func incidentIdentity(kind, provider, tenant, openedAt any) identity {
	at, _ := openedAt.(string)
	if ts, err := time.Parse(time.RFC3339Nano, at); err == nil {
		at = ts.UTC().Format(time.RFC3339Nano)
	}
	return identity(fmt.Sprintf("%v %v %v opened %s", kind, provider, tenant, at))
}

// receiver is the host application's webhook endpoint: it checks each
// delivery's signature and records it by event ID; the first delivery of
// about one event in eight is answered 500, so that deliveries are retried.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	rng      *rand.Rand
	secret   []byte
	byID     map[string]webhook.Event
	count    map[string]int
	refusedN int
	attempts int
}

func newReceiver(t *testing.T, seed uint64) *receiver {
	r := &receiver{t: t, rng: rand.New(rand.NewPCG(seed, 3)), byID: map[string]webhook.Event{}, count: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setSecret(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = []byte(s)
}

func (r *receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if err := webhook.Verify(r.secret, req.Header.Get(webhook.SignatureHeader), body, 0, time.Now()); err != nil {
		r.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.ID != req.Header.Get(webhook.EventIDHeader) {
		r.t.Errorf("receiver: body %s (%v) does not match its header ID", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if _, ok := r.byID[ev.ID]; !ok && r.count[ev.ID] == 0 && r.rng.IntN(8) == 0 {
		r.count[ev.ID] = -1 // refused once
		r.refusedN++
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	r.byID[ev.ID] = ev
	r.count[ev.ID] = max(r.count[ev.ID], 0) + 1
}

// events returns the distinct events accepted.
func (r *receiver) events() []webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]webhook.Event, 0, len(r.byID))
	for _, ev := range r.byID {
		out = append(out, ev)
	}
	slices.SortFunc(out, func(a, b webhook.Event) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// counts returns how many deliveries were accepted, and of how many
// distinct events.
func (r *receiver) counts() (deliveries, distinct int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.count {
		deliveries += max(n, 0)
	}
	return deliveries, len(r.byID)
}

func (r *receiver) refused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refusedN
}

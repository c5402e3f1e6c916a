package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/provider/mailtest"
)

// The outage drill replays the 2025-03-01 incident on real processes: a
// `holdfast emulator` and a `holdfast serve` child process, and a private
// Dovecot and Postfix. For minutes every token and mail request fails with
// errors that normally mean "the password changed" while mail and due
// sends keep coming; no inbox may ever need its owner, all must be back
// within a minute of the end, and no message or send may be lost or
// doubled. Notices go out through the private Postfix, a real SMTP relay:
// nobody may get one for the outage. A second run revokes a handful of
// grants for real during the outage: exactly those end in needs_reconnect,
// and each owner gets exactly one email after the grace period, linking to
// a status page that says so; an inbox refused for a while after the
// outage, which works again inside the grace period, gets nothing.

// drillSpec sizes one drill run.
type drillSpec struct {
	name                string
	microsoft, google   int // OAuth inboxes, spread over tenants domains each
	imap                int // Dovecot inboxes
	tenants             int
	revoke              int  // grants revoked for real during the fault
	flap                bool // one more inbox is refused after the fault until confirmed, then works again
	preFault, fault     time.Duration
	recoverWithin       time.Duration // every inbox connected this soon after the fault
	reconnectWithin     time.Duration // every revoked inbox needs its owner this soon after the fault
	syncInterval        string
	confirmSpan, bucket string
	noticeGrace         time.Duration
}

func TestOutageDrill(t *testing.T) {
	t.Parallel()
	base := drillSpec{
		tenants: 20, preFault: 20 * time.Second, fault: 3 * time.Minute,
		recoverWithin: time.Minute, reconnectWithin: 4 * time.Minute,
		syncInterval: "20s", confirmSpan: "40s", bucket: "2s", noticeGrace: 20 * time.Second,
	}
	outage := base
	outage.name, outage.microsoft, outage.google, outage.imap = "outage", 150, 150, 30
	revocations := base
	revocations.name, revocations.microsoft, revocations.google, revocations.imap = "revocations", 100, 100, 10
	revocations.revoke, revocations.flap = 6, true
	// The runs go side by side, so that the drill fits go test's default
	// 10-minute timeout. HOLDFAST_DRILL=outage or =revocations runs just
	// one.
	specs := []drillSpec{outage, revocations}
	if only := os.Getenv("HOLDFAST_DRILL"); only != "" {
		specs = slices.DeleteFunc(specs, func(s drillSpec) bool { return s.name != only })
		if len(specs) == 0 {
			t.Fatalf("HOLDFAST_DRILL=%s: no such run (outage, revocations)", only)
		}
	}
	for _, spec := range specs {
		t.Run(spec.name, func(t *testing.T) {
			t.Parallel()
			runDrill(t, spec)
		})
	}
}

// drillInbox is one inbox of the drill and what happened to it.
type drillInbox struct {
	id, email, provider, password string
	revoked                       bool
	delivered                     []string // Message-IDs delivered to it
}

// drillSend is one send of the drill.
type drillSend struct {
	id, messageID string
	from          *drillInbox
}

// errorBody returns the raw answer of an error vector of
// classify/testdata/vectors.jsonl.
func errorBody(t *testing.T, id string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "classify", "testdata", "vectors.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v struct {
			ID  string `json:"id"`
			Raw string `json:"raw"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err == nil && v.ID == id {
			return v.Raw
		}
	}
	t.Fatalf("error vector %s not found", id)
	return ""
}

// emulatorProcess runs `holdfast emulator` as a child process and returns
// its control URL and the environment that points serve at it.
func emulatorProcess(t *testing.T, args ...string) (control string, env map[string]string) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], append([]string{"emulator", "--listen", addr}, args...)...)
	cmd.Env = append(os.Environ(), "HOLDFAST_TEST_MAIN=1")
	out, logs := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("emulator logs (last 4 kB):\n%s", tail(logs.String(), 4096))
		}
	})
	control = "http://" + addr + "/_emulator"
	waitFor(t, 30*time.Second, "emulator ready", func() bool {
		resp, err := http.Get(control + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	env = map[string]string{}
	for line := range strings.Lines(out.String()) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			env[k] = v
		}
	}
	if len(env) != 4 {
		t.Fatalf("emulator printed %q, want the four provider URLs", out.String())
	}
	return control, env
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// control calls the emulator's control API and decodes a JSON answer into
// out (if not nil).
func control(t *testing.T, method, u string, body, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s = %d %s", method, u, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, u, err, raw)
		}
	}
}

func runDrill(t *testing.T, spec drillSpec) {
	rng := rand.New(rand.NewPCG(1, uint64(len(spec.name))))
	srv := mailtest.Start(t)
	const relay, relayPW, sink = "relay@dovecot.test", "relay pw 9z", "sink@dovecot.test"
	srv.AddUser(t, relay, relayPW)
	srv.AddUser(t, sink, "sink pw")
	ctl, emuEnv := emulatorProcess(t, "--token-lifetime", "2m")

	e := newTestEnv(t, sqliteEngine)
	e.env["HOLDFAST_LOG_LEVEL"] = "info"
	useEmulator(e, emuEnv)
	for k, v := range map[string]string{
		"HOLDFAST_MAIL_CA_FILE": srv.CAFile, "HOLDFAST_SYNC_INTERVAL": spec.syncInterval,
		"HOLDFAST_HEALTH_CONFIRM_SPAN": spec.confirmSpan, "HOLDFAST_HEALTH_BUCKET": spec.bucket,
		"HOLDFAST_HEALTH_CLOSE_WINDOW": "15s", "HOLDFAST_HEALTH_SETTLE": "15s",
		"HOLDFAST_HEALTH_NOTICE_GRACE": spec.noticeGrace.String(), "HOLDFAST_HEALTH_KEEPALIVE": "1m",
		"HOLDFAST_NOTIFY_SMTP_URL": "smtp://" + url.UserPassword(relay, relayPW).String() + "@" + srv.SMTPAddr,
		"HOLDFAST_NOTIFY_FROM":     "holdfast <" + relay + ">",
	} {
		e.env[k] = v
	}
	key := e.createAPIKey("drill")
	addr := freeAddr(t)
	p := e.startProcess(addr)
	api := "http://" + addr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve logs (last 16 kB):\n%s", tail(p.logs.String(), 16384))
		}
	})

	// Connect the inboxes: OAuth grants made in the emulator and imported,
	// Dovecot accounts with their passwords.
	var inboxes []*drillInbox
	byID := map[string]*drillInbox{}
	add := func(in *drillInbox, req map[string]any) {
		code, body := call(t, "POST", api+"/v1/inboxes", key, req)
		if code != http.StatusCreated {
			t.Fatalf("POST /v1/inboxes %s = %d %v", in.email, code, body)
		}
		in.id = body["id"].(string)
		inboxes = append(inboxes, in)
		byID[in.id] = in
	}
	for _, pv := range []struct {
		provider emulator.Provider
		prefix   string
		n        int
	}{{emulator.Microsoft, "ms", spec.microsoft}, {emulator.Google, "g", spec.google}} {
		for i := range pv.n {
			email := fmt.Sprintf("u%03d@%s-t%02d.test", i, pv.prefix, i%spec.tenants)
			var grant struct {
				RefreshToken string `json:"refresh_token"`
			}
			control(t, "POST", ctl+"/accounts", emulator.Account{Provider: pv.provider, Email: email}, &grant)
			add(&drillInbox{email: email, provider: string(pv.provider)},
				map[string]any{"provider": string(pv.provider), "email": email, "refresh_token": grant.RefreshToken})
		}
	}
	for i := range spec.imap {
		email, pw := fmt.Sprintf("u%02d@dovecot.test", i), fmt.Sprintf("pw %02d", i)
		srv.AddUser(t, email, pw)
		add(&drillInbox{email: email, provider: "imap", password: pw}, mailInbox(t, srv, email, pw))
	}
	// The grants revoked for real: one per tenant, alternating providers.
	// Their owners, and the flapping inbox's, have mailboxes on the relay
	// so that their notices are delivered and can be read.
	var revoked []*drillInbox
	for i := range spec.revoke {
		in := inboxes[(i%2)*spec.microsoft+i/2*(spec.tenants+1)%spec.microsoft]
		in.revoked = true
		revoked = append(revoked, in)
		srv.AddUser(t, in.email, "owner pw")
	}
	var flap *drillInbox
	if spec.flap {
		flap = inboxes[spec.microsoft+spec.tenants/2]
		if flap.revoked {
			t.Fatalf("the flapping inbox %s is also revoked", flap.email)
		}
		srv.AddUser(t, flap.email, "owner pw")
	}

	list := func() map[string]string {
		t.Helper()
		states := map[string]string{}
		for _, m := range allInboxes(t, api, key) {
			states[m["id"].(string)] = m["state"].(string)
		}
		return states
	}
	count := func(states map[string]string, want string) int {
		n := 0
		for _, s := range states {
			if s == want {
				n++
			}
		}
		return n
	}
	setupStart := time.Now()
	waitFor(t, 2*time.Minute, "every inbox connected before the drill", func() bool {
		time.Sleep(time.Second)
		return count(list(), "connected") == len(inboxes)
	})
	t.Logf("%d inboxes (%d Microsoft, %d Google over %d tenants each, %d Dovecot) connected in %v",
		len(inboxes), spec.microsoft, spec.google, spec.tenants, spec.imap, time.Since(setupStart).Round(time.Second))

	// The drill's timeline.
	start := time.Now()
	faultStart := start.Add(spec.preFault)
	faultEnd := faultStart.Add(spec.fault)
	trafficEnd := faultEnd.Add(10 * time.Second)
	at := func(ts time.Time) string { return ts.Sub(start).Round(100 * time.Millisecond).String() }

	var (
		sends          []*drillSend
		delivered      int
		seq            int
		faultIDs       []string
		faulted        bool
		revokedDone    bool
		firstIncident  time.Time
		everNeeds      = map[string]time.Time{}
		lastNotOK      time.Time
		peak           = map[string]int{}
		msBody, gBody  = errorBody(t, "ms-token-50173"), errorBody(t, "g-token-expired-or-revoked")
		traffic        []*drillInbox
		tick           int
		nextCheck      time.Time
		nextIncidentsQ time.Time
		flapStart      time.Time    // the flapping inbox's own fault starts
		waiting        []*drillSend // sends from revoked grants
	)
	for _, in := range inboxes {
		if !in.revoked {
			traffic = append(traffic, in)
		}
	}
	imapPasswords := func(outage bool) {
		for _, in := range inboxes {
			if in.provider == "imap" {
				pw := in.password
				if outage {
					pw = "changed " + pw
				}
				srv.SetPassword(t, in.email, pw)
			}
		}
	}
	pollIncidents := func() {
		if !firstIncident.IsZero() {
			return
		}
		code, body := call(t, "GET", api+"/v1/incidents?limit=100", key, nil)
		if code != http.StatusOK {
			t.Fatalf("GET /v1/incidents = %d %v", code, body)
		}
		for _, d := range body["data"].([]any) {
			opened, _ := time.Parse(time.RFC3339Nano, d.(map[string]any)["opened_at"].(string))
			if !opened.Before(faultStart) && (firstIncident.IsZero() || opened.Before(firstIncident)) {
				firstIncident = opened
			}
		}
	}
	checkStates := func(now time.Time) map[string]string {
		states := list()
		for id, s := range states {
			if s == "needs_reconnect" {
				if _, ok := everNeeds[id]; !ok {
					everNeeds[id] = now
					if !byID[id].revoked && byID[id] != flap {
						t.Errorf("at %s inbox %s (%s, %s) is in needs_reconnect", at(now), id, byID[id].provider, byID[id].email)
					}
				}
			}
			if s != "connected" && !byID[id].revoked && now.After(faultStart) && (flap == nil || byID[id] != flap || flapStart.IsZero()) {
				lastNotOK = now
			}
		}
		for s, n := range peakOf(states) {
			if s != "connected" {
				peak[s] = max(peak[s], n)
			}
		}
		return states
	}

	for now := time.Now(); now.Before(trafficEnd); now = time.Now() {
		switch {
		case !faulted && !now.Before(faultStart):
			faulted = true
			for _, f := range []map[string]any{
				{"provider": "microsoft", "surfaces": []string{"token", "graph"}, "http_status": 400, "body": msBody},
				{"provider": "google", "surfaces": []string{"google_token", "gmail"}, "http_status": 400, "body": gBody},
			} {
				var r struct {
					ID string `json:"id"`
				}
				control(t, "POST", ctl+"/faults", f, &r)
				faultIDs = append(faultIDs, r.ID)
			}
			imapPasswords(true)
			t.Logf("%s fault starts: token+graph AADSTS50173, google_token+gmail invalid_grant, Dovecot AUTHENTICATIONFAILED", at(now))
		case !revokedDone && len(revoked) > 0 && now.After(faultStart.Add(30*time.Second)):
			revokedDone = true
			for _, in := range revoked {
				control(t, "POST", ctl+"/accounts/"+url.PathEscape(in.email)+"/revoke", nil, nil)
				// Each revoked owner has a send falling due: it must wait
				// for a reconnection, neither sent nor failed.
				code, body := call(t, "POST", api+"/v1/inboxes/"+in.id+"/send", key, map[string]any{
					"to": []string{"someone@elsewhere.test"}, "subject": "drill send of a revoked grant", "text": "Waits for its owner.",
					"send_at": now.Add(15 * time.Second).UTC().Format(time.RFC3339Nano),
				})
				if code != http.StatusAccepted {
					t.Fatalf("POST send = %d %v", code, body)
				}
				waiting = append(waiting, &drillSend{id: body["id"].(string), messageID: body["message_id"].(string), from: in})
			}
			t.Logf("%s %d grants revoked for real", at(now), len(revoked))
		case faulted && faultIDs != nil && !now.Before(faultEnd):
			for _, id := range faultIDs {
				control(t, "DELETE", ctl+"/faults/"+id, nil, nil)
			}
			faultIDs = nil
			imapPasswords(false)
			t.Logf("%s fault ends", at(now))
		}

		// Mail keeps arriving: one OAuth message per tick, one Dovecot
		// message every other tick.
		seq++
		in := traffic[rng.IntN(len(traffic)-spec.imap)]
		mid := fmt.Sprintf("<drill-%s-%d@sender.test>", spec.name, seq)
		control(t, "POST", ctl+"/mail", emulator.Mail{To: in.email, From: "sender@sender.test", Subject: fmt.Sprintf("drill %d", seq), Text: "Hello.", MessageID: mid}, nil)
		in.delivered = append(in.delivered, mid)
		delivered++
		if tick%2 == 0 && spec.imap > 0 {
			in := traffic[len(traffic)-spec.imap+rng.IntN(spec.imap)]
			raw, mid := rawMessage("sender@sender.test", in.email, fmt.Sprintf("drill %s %d", spec.name, seq))
			srv.Deliver(t, in.email, raw)
			in.delivered = append(in.delivered, mid)
			delivered++
		}
		// Sends keep falling due: one every other tick, due 15 s later,
		// until the fault ends.
		if tick%2 == 1 && now.Before(faultEnd) {
			from := traffic[rng.IntN(len(traffic))]
			to := "someone@elsewhere.test"
			if from.provider == "imap" {
				to = sink
			}
			code, body := call(t, "POST", api+"/v1/inboxes/"+from.id+"/send", key, map[string]any{
				"to": []string{to}, "subject": fmt.Sprintf("drill send %d", seq), "text": "Sent during the drill.",
				"send_at": now.Add(15 * time.Second).UTC().Format(time.RFC3339Nano),
			})
			if code != http.StatusAccepted {
				t.Fatalf("POST send = %d %v", code, body)
			}
			sends = append(sends, &drillSend{id: body["id"].(string), messageID: body["message_id"].(string), from: from})
		}
		if now.After(nextCheck) {
			checkStates(now)
			nextCheck = now.Add(time.Second)
		}
		if faulted && now.After(nextIncidentsQ) {
			pollIncidents()
			nextIncidentsQ = now.Add(2 * time.Second)
		}
		tick++
		time.Sleep(500*time.Millisecond - time.Since(now))
	}

	// Recovery: every inbox but the revoked ones back to connected.
	var recovered time.Time
	for deadline := faultEnd.Add(spec.recoverWithin + 30*time.Second); ; {
		now := time.Now()
		states := checkStates(now)
		pollIncidents()
		ok := true
		for id, s := range states {
			if s != "connected" && !byID[id].revoked {
				ok = false
			}
		}
		if ok {
			recovered = lastNotOK
			if recovered.Before(faultEnd) {
				recovered = faultEnd
			}
			break
		}
		if now.After(deadline) {
			t.Fatalf("%v after the fault, %d inboxes are not connected: %v", now.Sub(faultEnd).Round(time.Second), len(inboxes)-count(states, "connected"), peakOf(states))
		}
		time.Sleep(time.Second)
	}
	if d := recovered.Sub(faultEnd); d > spec.recoverWithin {
		t.Errorf("last inbox connected %v after the fault ended, want within %v", d.Round(time.Second), spec.recoverWithin)
	}

	// The flapping inbox: after the outage the provider refuses its grant
	// alone, permanent-looking, until holdfast confirms the loss; then it
	// works again, inside the grace period.
	var flapActed, flapBack time.Time
	var flapFault string
	if flap != nil {
		var r struct {
			ID string `json:"id"`
		}
		control(t, "POST", ctl+"/faults", map[string]any{"provider": flap.provider, "email": flap.email,
			"surfaces": []string{"google_token", "gmail"}, "http_status": 400, "body": gBody}, &r)
		flapFault, flapStart = r.ID, time.Now()
		t.Logf("%s %s refused on its own (invalid_grant)", at(flapStart), flap.email)
	}

	// The revoked grants, and only they, end up needing their owner; the
	// flapping inbox needs it for a moment and comes back by itself.
	for deadline := faultEnd.Add(spec.reconnectWithin); ; {
		time.Sleep(time.Second)
		now := time.Now()
		states := checkStates(now)
		done := true
		for _, in := range revoked {
			if states[in.id] != "needs_reconnect" {
				done = false
			}
		}
		if flap != nil {
			switch {
			case flapActed.IsZero() && states[flap.id] == "needs_reconnect":
				flapActed = now
				control(t, "DELETE", ctl+"/faults/"+flapFault, nil, nil)
				t.Logf("%s %s in needs_reconnect; the provider accepts its grant again", at(now), flap.email)
			case !flapActed.IsZero() && flapBack.IsZero() && states[flap.id] == "connected":
				flapBack = now
				t.Logf("%s %s connected again, %v after needing its owner", at(now), flap.email, now.Sub(flapActed).Round(time.Second))
			}
			done = done && !flapBack.IsZero()
		}
		if done {
			break
		}
		if now.After(deadline) {
			for _, in := range append(slices.Clone(revoked), flap) {
				if in == nil {
					continue
				}
				_, ev := call(t, "GET", api+"/v1/inboxes/"+in.id+"/events?limit=1000", key, nil)
				t.Logf("%s (%s) is %s; events: %v", in.email, in.id, states[in.id], ev["data"])
			}
			_, inc := call(t, "GET", api+"/v1/incidents?limit=100", key, nil)
			t.Logf("incidents: %v", inc["data"])
			t.Fatalf("%v after the fault, the revoked inboxes are not all in needs_reconnect, or the flapping inbox not back", now.Sub(faultEnd).Round(time.Second))
		}
	}
	if flap != nil && flapBack.Sub(flapActed) >= spec.noticeGrace {
		t.Errorf("%s came back %v after needing its owner, not inside the %v grace period", flap.email, flapBack.Sub(flapActed).Round(time.Second), spec.noticeGrace)
	}

	// Each revoked owner's notice arrives after the grace period.
	mailed := map[string]time.Time{}
	if len(revoked) > 0 {
		waitFor(t, 2*spec.noticeGrace+time.Minute, "a notice in every revoked owner's mailbox", func() bool {
			time.Sleep(500 * time.Millisecond)
			for _, in := range revoked {
				if _, ok := mailed[in.id]; !ok && len(srv.MessageIDs(t, in.email, "INBOX")) > 0 {
					mailed[in.id] = time.Now()
				}
			}
			return len(mailed) == len(revoked)
		})
		for _, in := range revoked {
			// everNeeds is when the test saw the move, at most a poll
			// (about a second) after it happened.
			if d := mailed[in.id].Sub(everNeeds[in.id]); d < spec.noticeGrace-2*time.Second {
				t.Errorf("%s's notice arrived %v after its inbox needed it, inside the %v grace period", in.email, d.Round(100*time.Millisecond), spec.noticeGrace)
			}
		}
	}

	// Every message that arrived is synced, once.
	missing := 0
	waitFor(t, 90*time.Second, "every delivered message synced", func() bool {
		missing = 0
		for _, in := range traffic {
			if len(in.delivered) == 0 {
				continue
			}
			code, page := call(t, "GET", api+"/v1/inboxes/"+in.id+"/messages?limit=1000", key, nil)
			if code != http.StatusOK {
				t.Fatalf("GET messages = %d %v", code, page)
			}
			seen := map[string]int{}
			for _, d := range page["data"].([]any) {
				seen[d.(map[string]any)["internet_message_id"].(string)]++
			}
			for _, mid := range in.delivered {
				if seen[mid] == 0 {
					missing++
				} else if seen[mid] > 1 {
					t.Fatalf("inbox %s lists %s %d times", in.email, mid, seen[mid])
				}
			}
		}
		if missing > 0 {
			time.Sleep(2 * time.Second)
		}
		return missing == 0
	})
	synced := time.Now()

	// Every send went out exactly once, and says so.
	waitFor(t, 90*time.Second, "every send sent", func() bool {
		for _, s := range sends {
			_, got := call(t, "GET", api+"/v1/sends/"+s.id, key, nil)
			if got["state"] != "sent" {
				if got["state"] == "failed" || got["state"] == "cancelled" {
					t.Fatalf("send %s from %s ended %v", s.id, s.from.email, got)
				}
				time.Sleep(time.Second)
				return false
			}
		}
		return true
	})
	sentBy := map[string]map[string]int{}
	for _, s := range sends {
		if s.from.provider == "imap" {
			continue
		}
		if sentBy[s.from.email] == nil {
			var out struct {
				Data []emulator.SentMessage `json:"data"`
			}
			control(t, "GET", ctl+"/sent?from="+url.QueryEscape(s.from.email), nil, &out)
			sentBy[s.from.email] = map[string]int{}
			for _, m := range out.Data {
				sentBy[s.from.email][m.MessageID]++
			}
		}
	}
	for _, s := range sends {
		var n int
		if s.from.provider == "imap" {
			n = srv.Count(t, sink, "INBOX", s.messageID)
			if c := srv.Count(t, s.from.email, "Sent", s.messageID); c != 1 {
				t.Errorf("send %s: %s's Sent holds %d copies, want 1", s.id, s.from.email, c)
			}
		} else {
			n = sentBy[s.from.email][s.messageID]
		}
		if n != 1 {
			t.Errorf("send %s from %s (%s) went out %d times, want once", s.id, s.from.email, s.from.provider, n)
		}
	}

	// The revoked owners' sends wait for them: held, not failed, not sent.
	for _, s := range waiting {
		_, got := call(t, "GET", api+"/v1/sends/"+s.id, key, nil)
		if got["state"] != "held" || got["reason"] != "inbox_needs_reconnect" {
			t.Errorf("send %s from revoked %s is %v (%v), want held (inbox_needs_reconnect)", s.id, s.from.email, got["state"], got["reason"])
		}
		var out struct {
			Data []emulator.SentMessage `json:"data"`
		}
		control(t, "GET", ctl+"/sent?from="+url.QueryEscape(s.from.email), nil, &out)
		for _, m := range out.Data {
			if m.MessageID == s.messageID {
				t.Errorf("send %s from revoked %s went out", s.id, s.from.email)
			}
		}
	}

	// The event logs agree: nobody but the revoked ever needed their owner.
	for _, in := range inboxes {
		code, body := call(t, "GET", api+"/v1/inboxes/"+in.id+"/events?limit=1000", key, nil)
		if code != http.StatusOK {
			t.Fatalf("GET events = %d %v", code, body)
		}
		for _, d := range body["data"].([]any) {
			if ev := d.(map[string]any); ev["new_state"] == "needs_reconnect" && !in.revoked && in != flap {
				t.Errorf("inbox %s (%s) event log: %v", in.email, in.provider, ev)
			}
		}
	}
	for _, in := range revoked {
		if _, ok := everNeeds[in.id]; !ok {
			t.Errorf("revoked inbox %s never seen in needs_reconnect", in.email)
		}
	}

	// The relay keeps a copy of everything holdfast submitted (its Sent
	// mailbox): exactly one notice per revoked owner, none for anyone
	// else, each linking to a status page that says "Needs reconnect".
	// Looked at once any notice decided during the fault would have gone
	// out: the grace period and the notifier's group wait after its end.
	time.Sleep(time.Until(faultEnd.Add(spec.noticeGrace + notify.DefaultGroupWait + 10*time.Second)))
	want := map[string]bool{}
	for _, in := range revoked {
		want[in.email] = true
	}
	got, submitted := noticesSubmitted(t, srv, relay)
	others := 0
	for owner, n := range got {
		if !want[owner] {
			others += n
			t.Errorf("%s got %d notices, want none", owner, n)
		}
	}
	for _, in := range revoked {
		if got[in.email] != 1 {
			t.Errorf("%s got %d notices, want exactly 1", in.email, got[in.email])
		}
		box := srv.Messages(t, in.email, "INBOX")
		if len(box) != 1 {
			t.Errorf("%s's mailbox holds %d messages, want its one notice", in.email, len(box))
			continue
		}
		link := statusLink(box[0])
		if link == "" {
			t.Errorf("%s's notice has no status link:\n%s", in.email, box[0])
			continue
		}
		resp, err := http.Get(api + link)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Needs reconnect") || !strings.Contains(string(page), in.email) {
			t.Errorf("%s's status page %s = %d, want it to say %s needs reconnect:\n%s", in.email, link, resp.StatusCode, in.email, page)
		}
	}
	if flap != nil {
		if n := len(srv.Messages(t, flap.email, "INBOX")); n != 0 {
			t.Errorf("%s, back inside the grace period, got %d messages, want none", flap.email, n)
		}
	}

	// Figures.
	notices := strings.Count(p.logs.String(), `msg="notice sent"`)
	detect := "none"
	if !firstIncident.IsZero() {
		detect = firstIncident.Sub(faultStart).Round(100 * time.Millisecond).String()
	}
	t.Logf("timeline: fault %s → %s (%v); first incident at %s (time to detect %s); last inbox connected at %s (%v after the fault)",
		at(faultStart), at(faultEnd), spec.fault, func() string {
			if firstIncident.IsZero() {
				return "-"
			}
			return at(firstIncident)
		}(), detect, at(recovered), recovered.Sub(faultEnd).Round(time.Second))
	t.Logf("peak states during the drill: %v", peak)
	t.Logf("messages: %d delivered, %d synced (all synced at %s); sends: %d scheduled, %d sent, each once", delivered, delivered-missing, at(synced), len(sends), len(sends))
	var rev []string
	for _, in := range revoked {
		rev = append(rev, fmt.Sprintf("%s %v after the fault", in.email, everNeeds[in.id].Sub(faultEnd).Round(time.Second)))
	}
	slices.Sort(rev)
	t.Logf("needs_reconnect: %d inboxes, %d grants revoked %v; notices: %d sent, %d submitted to the relay, %d of them to the revoked owners",
		len(everNeeds), len(revoked), rev, notices, submitted, submitted-others)
	for _, in := range revoked {
		t.Logf("notice to %s arrived %v after its inbox needed its owner (grace %v)", in.email, mailed[in.id].Sub(everNeeds[in.id]).Round(100*time.Millisecond), spec.noticeGrace)
	}
	if flap != nil {
		t.Logf("%s: needed its owner at %s, connected again %v later, notices: 0", flap.email, at(flapActed), flapBack.Sub(flapActed).Round(time.Second))
	}
}

// noticesSubmitted counts the notices holdfast submitted to the relay (a
// copy of each is in the relay's Sent mailbox) by recipient, and in all.
func noticesSubmitted(t *testing.T, srv *mailtest.Server, relay string) (byOwner map[string]int, total int) {
	t.Helper()
	byOwner = map[string]int{}
	for _, m := range srv.Messages(t, relay, "Sent") {
		total++
		msg, err := mail.ReadMessage(bytes.NewReader(m))
		if err != nil {
			t.Fatalf("a message the relay sent: %v", err)
		}
		to, err := msg.Header.AddressList("To")
		if err != nil || len(to) != 1 {
			t.Errorf("a notice with To %q (%v), want one owner", msg.Header.Get("To"), err)
			continue
		}
		byOwner[to[0].Address]++
	}
	return byOwner, total
}

// peakOf counts the inboxes in each state.
func peakOf(states map[string]string) map[string]int {
	out := map[string]int{}
	for _, s := range states {
		out[s]++
	}
	return out
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast/provider/mailtest"
)

// TestCrashSendsExactlyOnce accepts 100 sends, now and over the next few
// seconds, while the service is killed with SIGKILL at random moments and
// restarted, several times. In the end every send is sent and its message
// is in the recipient's INBOX exactly once. HOLDFAST_CRASH_SEED replays a
// run.
func TestCrashSendsExactlyOnce(t *testing.T) {
	t.Parallel()
	const sends, kills = 100, 4
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HOLDFAST_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("HOLDFAST_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (HOLDFAST_CRASH_SEED=%d replays the kill times)", seed, seed)
	// One generator for the kills, one for the client's send times.
	rng, sendRng := rand.New(rand.NewPCG(seed, 1)), rand.New(rand.NewPCG(seed, 2))

	srv := mailtest.Start(t)
	const alice, bob, pw = "alice@example.test", "bob@example.test", "the pw"
	srv.AddUser(t, alice, pw)
	srv.AddUser(t, bob, pw)
	e := mailEnv(t, srv)
	e.env["HOLDFAST_LOG_LEVEL"] = "info"
	// A send whose process died is retried 2 × 2 s after its attempt began.
	e.env["HOLDFAST_SEND_TIMEOUT"] = "2s"
	e.env["HOLDFAST_SYNC_INTERVAL"] = "1m"
	key := e.createAPIKey("crash-send-test")
	addr := freeAddr(t)
	base := "http://" + addr
	p := e.startProcess(addr)
	procs := []*process{p}
	code, in := call(t, "POST", base+"/v1/inboxes", key, mailInbox(t, srv, alice, pw))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/inboxes = %d %v", code, in)
	}
	sendURL := base + "/v1/inboxes/" + in["id"].(string) + "/send"

	// The client posts the sends one after another; a request the kill
	// interrupts is repeated, with its idempotency key, until answered.
	var (
		mu  sync.Mutex
		ids = map[int]string{} // send index → send ID
	)
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		for i := range sends {
			// Most go at once, a quarter over the next 5 s.
			at := time.Now()
			if i%4 == 0 {
				at = at.Add(time.Duration(sendRng.Int64N(int64(5 * time.Second))))
			}
			body, _ := json.Marshal(map[string]any{
				"to": []string{bob}, "subject": fmt.Sprint("crash ", i), "text": "Exactly once, please.",
				"send_at": at.UTC().Format(time.RFC3339Nano), "idempotency_key": fmt.Sprint("crash-", i),
			})
			for try := 0; ; try++ {
				if try == 400 {
					t.Errorf("send %d never answered", i)
					return
				}
				req, _ := http.NewRequest("POST", sendURL, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(50 * time.Millisecond) // the service is down
					continue
				}
				var snd struct{ ID string }
				err = json.NewDecoder(resp.Body).Decode(&snd)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted && err == nil {
					mu.Lock()
					ids[i] = snd.ID
					mu.Unlock()
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(40 * time.Millisecond) // a steady flow across the kills
		}
	}()

	for k := range kills {
		wait := time.Duration(200+rng.IntN(1000)) * time.Millisecond
		time.Sleep(wait)
		mu.Lock()
		n := len(ids)
		mu.Unlock()
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		t.Logf("kill %d: SIGKILL %v after the process started, %d sends accepted so far", k+1, wait, n)
		p = e.startProcess(addr)
		procs = append(procs, p)
	}
	<-posted
	if t.Failed() {
		return
	}

	// Every send ends sent.
	pending := map[string]bool{}
	mu.Lock()
	for _, id := range ids {
		pending[id] = true
	}
	mu.Unlock()
	msgIDs := map[string]string{}
	deadline := time.Now().Add(45 * time.Second)
	for len(pending) > 0 && time.Now().Before(deadline) {
		for id := range pending {
			code, snd := call(t, "GET", base+"/v1/sends/"+id, key, nil)
			if code != http.StatusOK {
				t.Fatalf("GET send %s = %d %v", id, code, snd)
			}
			switch snd["state"] {
			case "sent":
				msgIDs[id] = snd["message_id"].(string)
				delete(pending, id)
			case "failed", "cancelled":
				t.Fatalf("send %s ended %v", id, snd)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(pending) > 0 {
		t.Fatalf("%d of %d sends not sent after 45 s; logs of the last run:\n%s", len(pending), sends, p.logs)
	}

	// Each is in bob's INBOX exactly once.
	var last string
	for _, m := range msgIDs {
		last = m
	}
	srv.WaitCount(t, bob, "INBOX", last, 1)
	time.Sleep(time.Second) // Postfix delivers a moment after accepting
	inbox := map[string]int{}
	for _, m := range srv.MessageIDs(t, bob, "INBOX") {
		inbox[m]++
	}
	dups, lost := 0, 0
	for id, m := range msgIDs {
		switch n := inbox[m]; {
		case n == 0:
			lost++
			t.Errorf("send %s (%s) is not in the recipient's INBOX", id, m)
		case n > 1:
			dups++
			t.Errorf("send %s (%s) is %d times in the recipient's INBOX", id, m, n)
		}
	}
	// How often a kill left a send "sending": the retry looked in Sent.
	found, resent := 0, 0
	for _, p := range procs {
		found += strings.Count(p.logs.String(), "send found in Sent after an unclear attempt")
		resent += strings.Count(p.logs.String(), "send not found in Sent; sending again")
	}
	t.Logf("%d sends, %d SIGKILLs, all sent in %v: %d duplicates, %d lost, %d messages in the INBOX; "+
		"%d sends left sending by a kill were found in Sent, %d were not and went again",
		len(msgIDs), kills, time.Since(start).Round(100*time.Millisecond), dups, lost, len(srv.MessageIDs(t, bob, "INBOX")), found, resent)
}

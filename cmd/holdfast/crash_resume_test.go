package main

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
)

// TestCrashResumesSendWithinAMinute kills `holdfast serve` with SIGKILL
// while a Microsoft send hangs in sendMail (Graph took the message; the
// answer never comes), and restarts it at once. The send, left "sending"
// by the dead process, must be resumed with the default lease and sweep
// (not after River's rescue at twice --send-timeout, 12 minutes) and go
// out once: the resuming attempt finds the message and does not send it
// again.
func TestCrashResumesSendWithinAMinute(t *testing.T) {
	t.Parallel()
	emu, urls := emulatortest.Start(t)
	target, err := url.Parse(urls.Base)
	if err != nil {
		t.Fatal(err)
	}
	// A proxy in front of the emulator that, while holding, passes
	// sendMail on and then keeps the answer back.
	rp := httputil.NewSingleHostReverseProxy(target)
	var holding atomic.Bool
	holding.Store(true)
	held := make(chan struct{}, 1)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if holding.Load() && r.Method == http.MethodPost && strings.HasSuffix(strings.ToLower(r.URL.Path), "/sendmail") {
			rp.ServeHTTP(httptest.NewRecorder(), r)
			select {
			case held <- struct{}{}:
			default:
			}
			<-r.Context().Done() // the process dies
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	e := newTestEnv(t, sqliteEngine)
	e.env["HOLDFAST_LOG_LEVEL"] = "info"
	maps.Copy(e.env, emulator.URLsFor(proxy.URL).Env())
	maps.Copy(e.env, map[string]string{
		"HOLDFAST_MICROSOFT_CLIENT_ID": emulator.DefaultClientID, "HOLDFAST_MICROSOFT_CLIENT_SECRET": emulator.DefaultClientSecret,
		"HOLDFAST_GOOGLE_CLIENT_ID": emulator.DefaultClientID, "HOLDFAST_GOOGLE_CLIENT_SECRET": emulator.DefaultClientSecret,
		"HOLDFAST_SYNC_INTERVAL": "1h",
	})
	key := e.createAPIKey("crash-resume-test")
	addr := freeAddr(t)
	base := "http://" + addr
	p := e.startProcess(addr)
	const alice = "alice@example.test"
	in := connectGrants(t, base, key, urls.Control, emulator.Microsoft, []string{alice})[alice]
	waitFor(t, 30*time.Second, "inbox connected", func() bool { return inboxState(t, base, key, in)["state"] == "connected" })

	code, snd := call(t, "POST", base+"/v1/inboxes/"+in+"/send", key, map[string]any{"to": []string{"bob@example.test"}, "subject": "Crash", "text": "Once, please."})
	if code != http.StatusAccepted {
		t.Fatalf("POST send = %d %v", code, snd)
	}
	id := snd["id"].(string)
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatalf("the send never reached sendMail; logs:\n%s", tail(p.logs.String(), 4096))
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	killed := time.Now()
	holding.Store(false)
	p = e.startProcess(addr)
	restarted := time.Now()

	var state string
	for time.Since(restarted) < 150*time.Second {
		code, got := call(t, "GET", base+"/v1/sends/"+id, key, nil)
		if code != http.StatusOK {
			t.Fatalf("GET send = %d %v", code, got)
		}
		if state, _ = got["state"].(string); state != "sending" {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("send %s after the restart: %s %v after the kill, %v after the restart", id, state,
		time.Since(killed).Round(100*time.Millisecond), time.Since(restarted).Round(100*time.Millisecond))
	if state != "sent" {
		t.Errorf("send is %s %v after the restart, want sent; logs:\n%s", state, time.Since(restarted).Round(time.Second), tail(p.logs.String(), 4096))
	}
	sent, err := emu.Sent(alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 {
		t.Errorf("Graph took %d sendMail calls, want 1", len(sent))
	}
}

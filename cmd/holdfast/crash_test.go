package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the holdfast binary: with
// HOLDFAST_TEST_MAIN=1 it runs main instead of the tests, so the crash test
// can kill a real process without building one.
func TestMain(m *testing.M) {
	if os.Getenv("HOLDFAST_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is a `holdfast serve` child process.
type process struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	// exited is closed when the process has exited; err is then its Wait error.
	exited chan struct{}
	err    error
}

// startProcess runs `holdfast serve` as a child process and waits until it
// is ready.
func (e *testEnv) startProcess(addr string) *process {
	e.t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--listen", addr)
	cmd.Env = append(os.Environ(), "HOLDFAST_TEST_MAIN=1")
	for k, v := range e.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: logs, exited: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
		done <- p.err
	}()
	e.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	waitReady(e.t, "http://"+addr, done, logs)
	return p
}

// TestCrashKeepsAcknowledgedInboxes kills the service with SIGKILL during a
// burst of inbox creations and checks that every creation answered 201 is
// there after a restart.
func TestCrashKeepsAcknowledgedInboxes(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, eng)
			e.env["HOLDFAST_LOG_LEVEL"] = "warn"
			key := e.createAPIKey("crash-test")
			addr := freeAddr(t)
			p := e.startProcess(addr)
			cmd, logs := p.cmd, p.logs
			base := "http://" + addr

			var (
				mu    sync.Mutex
				acked []string
				wg    sync.WaitGroup
			)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			client := &http.Client{Timeout: 5 * time.Second}
			for w := range 8 {
				wg.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						body, _ := json.Marshal(imapInbox(fmt.Sprintf("w%d-%d@example.org", w, i), "pw"))
						req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/inboxes", bytes.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+key)
						resp, err := client.Do(req)
						if err != nil {
							return // the server is gone
						}
						var in struct{ ID string }
						err = json.NewDecoder(resp.Body).Decode(&in)
						resp.Body.Close()
						if resp.StatusCode == http.StatusCreated && err == nil {
							mu.Lock()
							acked = append(acked, in.ID)
							mu.Unlock()
						}
					}
				})
			}
			// Kill once a good number of creations have been answered.
			deadline := time.Now().Add(20 * time.Second)
			for {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n >= 150 || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			mu.Lock()
			ids := append([]string(nil), acked...)
			mu.Unlock()
			if len(ids) < 50 {
				t.Fatalf("only %d creations answered before the kill; logs:\n%s", len(ids), logs)
			}

			s := e.serve()
			stored := map[string]bool{}
			cursor := ""
			for {
				code, page := call(t, "GET", s.base+"/v1/inboxes?limit=1000&cursor="+cursor, key, nil)
				if code != http.StatusOK {
					t.Fatalf("list after restart = %d %v", code, page)
				}
				for _, d := range page["data"].([]any) {
					stored[d.(map[string]any)["id"].(string)] = true
				}
				if cursor = page["next_cursor"].(string); cursor == "" {
					break
				}
			}
			var lost []string
			for _, id := range ids {
				if !stored[id] {
					lost = append(lost, id)
				}
			}
			sort.Strings(lost)
			if len(lost) > 0 {
				t.Errorf("%d of %d acknowledged inboxes lost after SIGKILL: %v", len(lost), len(ids), lost)
			}
			t.Logf("%s: %d creations acknowledged before SIGKILL, %d stored after restart, none lost", eng.name, len(ids), len(stored))
		})
	}
}

// TestSIGTERMStopsCleanly sends SIGTERM and SIGINT to a running service and
// expects a clean exit, status 0, well within the 10 s shutdown bound.
func TestSIGTERMStopsCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, sqliteEngine)
			e.env["HOLDFAST_LOG_LEVEL"] = "info"
			p := e.startProcess(freeAddr(t))
			logs := p.logs
			start := time.Now()
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10 s after %v; logs:\n%s", sig, logs)
			}
			if p.err != nil {
				t.Fatalf("exit after %v: %v, want status 0; logs:\n%s", sig, p.err, logs)
			}
			if !strings.Contains(logs.String(), "holdfast stopped") {
				t.Errorf("logs lack the clean stop line:\n%s", logs)
			}
			t.Logf("%v: stopped in %v", sig, time.Since(start).Round(time.Millisecond))
		})
	}
}

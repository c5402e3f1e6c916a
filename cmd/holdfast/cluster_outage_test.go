package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/holdfast/holdfast/emulator"
)

// TestClusterOutage (issue 13, points 2 to 4) runs three `holdfast serve`
// processes on one PostgreSQL schema against the emulator, with 60
// Microsoft inboxes over 12 tenants, and replays the 2025-03-01 outage:
// every token refresh answers AADSTS50173. Exactly one node leads; the
// outage opens one incident (not one per node), which every node's API
// shows alike; no inbox is disconnected. The leader is then killed
// (SIGKILL) mid-outage: another node leads within two leases, with the
// same open incident, and takes over the dead node's partitions. When the
// provider is back, the incident closes and every inbox is connected
// again, with still one incident in all.
func TestClusterOutage(t *testing.T) {
	t.Parallel()
	const (
		lease    = 3 * time.Second
		interval = 4 * time.Second
		inboxes  = 60
		tenants  = 12
	)
	ctl, emuEnv := emulatorProcess(t, "--token-lifetime", "1m")
	env := postgresEngine.env(t)
	for k, v := range map[string]string{
		"HOLDFAST_CLUSTER_LEASE": lease.String(), "HOLDFAST_SYNC_INTERVAL": interval.String(),
		"HOLDFAST_HEALTH_BUCKET": "2s", "HOLDFAST_HEALTH_CLOSE_WINDOW": "15s", "HOLDFAST_HEALTH_SETTLE": "15s",
		"HOLDFAST_HEALTH_CONFIRM_SPAN": "40s", "HOLDFAST_HEALTH_KEEPALIVE": "1m",
		"HOLDFAST_LOG_LEVEL": "info",
	} {
		env[k] = v
	}
	names := []string{"node-a", "node-b", "node-c"}
	nodes := map[string]*server{}
	procs := map[string]*process{}
	var key string
	for _, name := range names {
		e := newTestEnv(t, engine{name: "postgres", env: func(*testing.T) map[string]string { return maps.Clone(env) }})
		useEmulator(e, emuEnv)
		e.env["HOLDFAST_NODE"] = name
		if key == "" {
			key = e.createAPIKey("cluster")
		}
		addr := freeAddr(t)
		procs[name] = e.startProcess(addr)
		nodes[name] = &server{base: "http://" + addr, logs: procs[name].logs}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range names {
				t.Logf("%s logs (last 6 kB):\n%s", name, tail(procs[name].logs.String(), 6144))
			}
		}
	})
	api := func(name string) string { return nodes[name].base }
	leaders := func(alive []string) []string {
		var out []string
		for _, name := range alive {
			if gauge(t, nodes[name], "holdfast_cluster_leader") == 1 {
				out = append(out, name)
			}
		}
		return out
	}
	eventually(t, 3*lease, "one leader among three nodes", func() (bool, string) {
		l := leaders(names)
		return len(l) == 1, fmt.Sprintf("leaders %v", l)
	})

	for i := range inboxes {
		email := fmt.Sprintf("u%03d@t%02d.test", i, i%tenants)
		var grant struct {
			RefreshToken string `json:"refresh_token"`
		}
		control(t, "POST", ctl+"/accounts", emulator.Account{Provider: emulator.Microsoft, Email: email}, &grant)
		code, body := call(t, "POST", api(names[i%3])+"/v1/inboxes", key,
			map[string]any{"provider": "microsoft", "email": email, "refresh_token": grant.RefreshToken})
		if code != http.StatusCreated {
			t.Fatalf("create %s = %d %v", email, code, body)
		}
	}
	states := func(name string) map[string]int {
		out := map[string]int{}
		for _, in := range allInboxes(t, api(name), key) {
			out[in["state"].(string)]++
		}
		return out
	}
	eventually(t, time.Minute, "every inbox connected", func() (bool, string) {
		s := states("node-a")
		return s["connected"] == inboxes, fmt.Sprint(s)
	})

	incidents := func(name string, open bool) []map[string]any {
		q := ""
		if open {
			q = "?state=open"
		}
		code, body := call(t, "GET", api(name)+"/v1/incidents"+q, key, nil)
		if code != http.StatusOK {
			t.Fatalf("GET /v1/incidents on %s = %d %v", name, code, body)
		}
		var out []map[string]any
		for _, x := range body["data"].([]any) {
			out = append(out, x.(map[string]any))
		}
		return out
	}
	ids := func(list []map[string]any) []float64 {
		var out []float64
		for _, in := range list {
			out = append(out, in["id"].(float64))
		}
		return out
	}
	needsOwner := func(alive []string) {
		t.Helper()
		s := states(alive[0])
		if s["needs_reconnect"]+s["needs_admin"] != 0 {
			t.Fatalf("inboxes disconnected during the outage: %v", s)
		}
	}

	var fault struct {
		ID string `json:"id"`
	}
	control(t, "POST", ctl+"/faults", map[string]any{"provider": "microsoft", "surfaces": []string{"token", "graph"},
		"http_status": 400, "body": errorBody(t, "ms-token-50173")}, &fault)
	start := time.Now()
	eventually(t, time.Minute, "an incident opened", func() (bool, string) {
		needsOwner(names)
		return len(incidents("node-a", true)) > 0, ""
	})
	t.Logf("incident opened %v after the outage began", time.Since(start).Round(100*time.Millisecond))
	// Every node answers the same: one incident.
	time.Sleep(2 * lease)
	want := ids(incidents("node-a", false))
	if len(want) != 1 {
		t.Fatalf("incidents = %v, want one for the outage (not one per node)", incidents("node-a", false))
	}
	for _, name := range names[1:] {
		if got := ids(incidents(name, false)); !slices.Equal(got, want) {
			t.Errorf("incidents on %s = %v, on node-a %v: want the same answer on every node", name, got, want)
		}
	}
	needsOwner(names)

	// The leader dies mid-outage.
	dead := leaders(names)[0]
	alive := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == dead })
	_ = procs[dead].cmd.Process.Kill()
	<-procs[dead].exited
	killed := time.Now()
	eventually(t, 2*lease+2*time.Second, "another node leads", func() (bool, string) {
		l := leaders(alive)
		return len(l) == 1, fmt.Sprintf("leaders %v", l)
	})
	eventually(t, 2*lease+2*time.Second, "the dead node's partitions taken over", func() (bool, string) {
		n := gauge(t, nodes[alive[0]], "holdfast_cluster_partitions_owned") + gauge(t, nodes[alive[1]], "holdfast_cluster_partitions_owned")
		return n == 1024, fmt.Sprintf("%d partitions held", n)
	})
	t.Logf("%s killed; leadership and partitions taken over in %v", dead, time.Since(killed).Round(100*time.Millisecond))
	if got := ids(incidents(alive[0], true)); !slices.Equal(got, want) {
		t.Fatalf("open incidents after the leader died = %v, want the same %v", got, want)
	}
	time.Sleep(2 * interval)
	needsOwner(alive)

	// The provider is back: the incident closes, every inbox recovers.
	control(t, "DELETE", ctl+"/faults/"+fault.ID, nil, nil)
	back := time.Now()
	eventually(t, 2*time.Minute, "incident resolved and every inbox connected", func() (bool, string) {
		s := states(alive[0])
		return len(incidents(alive[0], true)) == 0 && s["connected"] == inboxes, fmt.Sprint(s)
	})
	t.Logf("recovered %v after the provider was back", time.Since(back).Round(100*time.Millisecond))
	for _, name := range alive {
		if got := ids(incidents(name, false)); !slices.Equal(got, want) {
			t.Errorf("incidents on %s at the end = %v, want %v", name, got, want)
		}
	}
}

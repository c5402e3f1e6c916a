package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/imap/imaptest"
)

// TestClusterSyncPartitions (issue 13, point 1) runs three `holdfast
// serve` nodes on one fresh PostgreSQL schema, with a 2 s partition lease
// and a 3 s sync interval, and IMAP inboxes on an in-memory IMAP server.
// The partitions split evenly; an inbox created through one node is synced
// by exactly one node (its owner); sync-now on another node reaches the
// owner within a second; a deletion through any node stops the sync
// everywhere; and a node that stops hands its partitions to the others
// within two leases, whose inboxes are then synced again.
func TestClusterSyncPartitions(t *testing.T) {
	t.Parallel()
	const (
		lease    = 2 * time.Second
		interval = 3 * time.Second
		inboxes  = 12
	)
	env := postgresEngine.env(t)
	env["HOLDFAST_CLUSTER_LEASE"] = lease.String()
	env["HOLDFAST_SYNC_INTERVAL"] = interval.String()
	is := imaptest.Start(t, imaptest.Options{})

	names := []string{"node-a", "node-b", "node-c"}
	nodes := map[string]*server{}
	var key string
	for _, name := range names {
		e := newTestEnv(t, engine{name: "postgres", env: func(*testing.T) map[string]string { return maps.Clone(env) }})
		e.env["HOLDFAST_NODE"] = name
		nodes[name] = e.serve()
		if key == "" {
			key = e.createAPIKey("cluster")
		}
	}

	// The partitions split evenly: 342, 342 and 340.
	eventually(t, 3*lease, "partitions split among the three nodes", func() (bool, string) {
		return splitEvenly(t, nodes, names)
	})

	// Inboxes created through node-a are each synced by exactly one node.
	a := nodes["node-a"]
	var ids []string
	for i := range inboxes {
		email := fmt.Sprintf("user%d@example.org", i)
		is.AddUser(t, email, "pw")
		body := map[string]any{
			"provider": "imap", "email": email, "username": email, "password": "pw",
			"imap": map[string]any{"host": is.Host, "port": is.Port, "security": "none"},
			"smtp": map[string]any{"host": is.Host, "port": 1, "security": "none"},
		}
		code, got := call(t, "POST", a.base+"/v1/inboxes", key, body)
		if code != http.StatusCreated {
			t.Fatalf("create inbox through node-a = %d %v", code, got)
		}
		ids = append(ids, got["id"].(string))
	}
	owner := map[string]string{}
	eventually(t, 2*interval, "every inbox synced", func() (bool, string) {
		for _, id := range ids {
			if synced(nodes, id) == "" {
				return false, id + " not synced yet"
			}
		}
		return true, ""
	})
	time.Sleep(2 * interval)
	for _, id := range ids {
		var by []string
		for _, name := range names {
			if n := syncs(nodes[name], id); n > 0 {
				by = append(by, fmt.Sprintf("%s (%d)", name, n))
				owner[id] = name
			}
		}
		if len(by) != 1 {
			t.Errorf("inbox %s (partition %d) synced by %v, want exactly one node", id, holdfast.PartitionOf(id), by)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Sync-now through a node that does not own the inbox: its owner
	// syncs it within a second, right after a regular sync (so that the
	// next regular one is 2.7 s away at least).
	id := ids[0]
	o := nodes[owner[id]]
	other := nodes[names[(indexOf(names, owner[id])+1)%len(names)]]
	before := syncs(o, id)
	eventually(t, 2*interval, "a regular sync", func() (bool, string) { return syncs(o, id) > before, "" })
	before = syncs(o, id)
	asked := time.Now()
	if code, got := call(t, "POST", other.base+"/v1/inboxes/"+id+"/sync", key, nil); code != http.StatusAccepted {
		t.Fatalf("sync now through a node that does not own the inbox = %d %v, want 202", code, got)
	}
	eventually(t, time.Second, "sync-now reached the owner within a second", func() (bool, string) { return syncs(o, id) > before, "" })
	t.Logf("sync-now through %s synced by %s after %v", other.base, owner[id], time.Since(asked))

	// Deleted through a node: nobody syncs it any more.
	gone := ids[1]
	if code, got := call(t, "DELETE", nodes[names[(indexOf(names, owner[gone])+2)%len(names)]].base+"/v1/inboxes/"+gone, key, nil); code != http.StatusNoContent {
		t.Fatalf("delete = %d %v", code, got)
	}
	time.Sleep(500 * time.Millisecond)
	after := map[string]int{}
	for _, name := range names {
		after[name] = syncs(nodes[name], gone)
	}
	time.Sleep(interval + interval/2)
	for _, name := range names {
		if n := syncs(nodes[name], gone); n != after[name] {
			t.Errorf("%s synced the deleted inbox %d times after its deletion", name, n-after[name])
		}
	}

	// Stop the node that owns the most inboxes: the two others hold every
	// partition within two leases, and sync its inboxes again.
	count := map[string]int{}
	for _, id := range ids[2:] {
		count[owner[id]]++
	}
	victim := names[0]
	for _, name := range names {
		if count[name] > count[victim] {
			victim = name
		}
	}
	var left []string
	for _, name := range names {
		if name != victim {
			left = append(left, name)
		}
	}
	marks := map[string]map[string]int{}
	for _, name := range left {
		marks[name] = map[string]int{}
		for _, id := range ids[2:] {
			marks[name][id] = syncs(nodes[name], id)
		}
	}
	stopped := time.Now()
	if err := nodes[victim].stop(); err != nil {
		t.Fatal(err)
	}
	delete(nodes, victim)
	eventually(t, 2*lease, "the two nodes left hold every partition", func() (bool, string) {
		return splitEvenly(t, nodes, left)
	})
	t.Logf("%s's partitions taken over in %v", victim, time.Since(stopped))
	eventually(t, 2*lease+2*interval, victim+"'s inboxes synced again", func() (bool, string) {
		for _, id := range ids[2:] {
			if owner[id] != victim {
				continue
			}
			again := false
			for _, name := range left {
				again = again || syncs(nodes[name], id) > marks[name][id]
			}
			if !again {
				return false, id + " not synced again"
			}
		}
		return true, ""
	})
	t.Logf("%d inboxes of %s synced again %v after it stopped", count[victim], victim, time.Since(stopped))
}

// eventually polls cond every 50 ms until it holds, failing t after
// within with cond's last explanation.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s (%s)", within, what, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// splitEvenly reports whether the named nodes hold every partition, each
// its fair share or one less than the others.
func splitEvenly(t *testing.T, nodes map[string]*server, names []string) (bool, string) {
	t.Helper()
	total, held := 0, map[string]int{}
	share := (holdfast.PartitionCount + len(names) - 1) / len(names)
	for _, name := range names {
		n := gauge(t, nodes[name], "holdfast_cluster_partitions_owned")
		held[name] = n
		total += n
		if n < holdfast.PartitionCount-share*(len(names)-1) || n > share {
			return false, fmt.Sprint(held)
		}
		if live := gauge(t, nodes[name], "holdfast_cluster_nodes_live"); live != len(names) {
			return false, fmt.Sprintf("%s sees %d live nodes", name, live)
		}
	}
	return total == holdfast.PartitionCount, fmt.Sprint(held)
}

// gauge reads one unlabelled gauge from a node's /metrics.
func gauge(t *testing.T, s *server, name string) int {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return int(f)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return -1
}

// syncs counts the successful syncs of inbox id a node logged.
func syncs(s *server, id string) int {
	n := 0
	for line := range strings.SplitSeq(s.logs.String(), "\n") {
		if strings.Contains(line, "msg=synced ") && strings.Contains(line, "inbox_id="+id+" ") {
			n++
		}
	}
	return n
}

// synced returns the base URL of a node that synced inbox id, if any.
func synced(nodes map[string]*server, id string) string {
	for _, s := range nodes {
		if syncs(s, id) > 0 {
			return s.base
		}
	}
	return ""
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

// TestClusterSingleNode: on either engine a lone node holds every
// partition, so it syncs every inbox, as before there were clusters.
func TestClusterSingleNode(t *testing.T) {
	t.Parallel()
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			s := newTestEnv(t, e).serve()
			if n := gauge(t, s, "holdfast_cluster_partitions_owned"); n != holdfast.PartitionCount {
				t.Errorf("a lone node holds %d partitions, want %d", n, holdfast.PartitionCount)
			}
			if n := gauge(t, s, "holdfast_cluster_nodes_live"); n != 1 {
				t.Errorf("a lone node sees %d live nodes, want 1", n)
			}
		})
	}
}

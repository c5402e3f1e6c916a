package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// nodeMetrics are the figures read from one node's /metrics.
type nodeMetrics struct {
	RSS, CPU        float64
	Syncs           float64 // holdfast_syncs_total{outcome="stored"|"nothing_new"}: the syncs that succeeded
	PartitionsOwned float64 // -1 when not exported
	NodesLive       float64 // -1 when not exported
}

// scrape reads a node's metrics.
func scrape(ctx context.Context, hc *http.Client, url string) (nodeMetrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nodeMetrics{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nodeMetrics{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nodeMetrics{}, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	m := nodeMetrics{PartitionsOwned: -1, NodesLive: -1}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, labels, v, ok := parseSample(sc.Text())
		if !ok {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			m.RSS = v
		case "process_cpu_seconds_total":
			m.CPU = v
		case "holdfast_syncs_total":
			if strings.Contains(labels, `outcome="stored"`) || strings.Contains(labels, `outcome="nothing_new"`) {
				m.Syncs += v
			}
		case "holdfast_cluster_partitions_owned":
			m.PartitionsOwned = v
		case "holdfast_cluster_nodes_live":
			m.NodesLive = v
		}
	}
	return m, sc.Err()
}

// parseSample splits one line of the Prometheus text format into its
// metric name, label block and value.
func parseSample(line string) (name, labels string, v float64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", "", 0, false
	}
	rest := line
	if i := strings.IndexByte(line, '{'); i >= 0 {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return "", "", 0, false
		}
		name, labels, rest = line[:i], line[i+1:j], strings.TrimSpace(line[j+1:])
	} else {
		f := strings.Fields(line)
		if len(f) < 2 {
			return "", "", 0, false
		}
		name, rest = f[0], f[1]
	}
	if f := strings.Fields(rest); len(f) > 0 {
		rest = f[0]
	}
	v, err := strconv.ParseFloat(rest, 64)
	return name, labels, v, err == nil
}

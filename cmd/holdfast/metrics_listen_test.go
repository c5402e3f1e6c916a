package main

import (
	"net/http"
	"testing"
)

// TestMetricsListen serves /metrics on its own listener with
// HOLDFAST_METRICS_LISTEN, and no longer on the API's.
func TestMetricsListen(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	addr := freeAddr(t)
	e.env["HOLDFAST_METRICS_LISTEN"] = addr
	s := e.serve()
	defer s.stop()
	for _, tt := range []struct {
		url  string
		want int
	}{
		{"http://" + addr + "/metrics", http.StatusOK},
		{s.base + "/metrics", http.StatusNotFound},
		{"http://" + addr + "/v1/inboxes", http.StatusNotFound},
	} {
		resp, err := http.Get(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s = %d; want %d", tt.url, resp.StatusCode, tt.want)
		}
	}
}

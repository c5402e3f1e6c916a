package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/metrics"
)

// fakeStore answers the few calls these tests make; any other call panics
// through the nil embedded interface.
type fakeStore struct {
	holdfast.Store
	counts []holdfast.InboxCount
	calls  int
}

func (f *fakeStore) CountInboxes(context.Context) ([]holdfast.InboxCount, error) {
	f.calls++
	return f.counts, nil
}

func (f *fakeStore) Inbox(_ context.Context, id string) (*holdfast.Inbox, error) {
	if id == "missing" {
		return nil, holdfast.ErrNotFound
	}
	return &holdfast.Inbox{ID: id}, nil
}

func (f *fakeStore) SaveSync(context.Context, string, []holdfast.Message, string, time.Time, holdfast.Announce[[]holdfast.Message]) (int, error) {
	return 0, nil
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestStoreLatencyAndInboxGauges(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	fake := &fakeStore{counts: []holdfast.InboxCount{
		{Provider: holdfast.ProviderMicrosoft, State: holdfast.StatePaused, Count: 1200},
		{Provider: holdfast.ProviderIMAP, State: holdfast.StateConnected, Count: 7},
	}}
	s := m.InstrumentStore(fake)
	m.WatchInboxes(s, time.Hour, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if _, err := s.Inbox(ctx, "inb_x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inbox(ctx, "missing"); !errors.Is(err, holdfast.ErrNotFound) {
		t.Fatalf("Inbox(missing) = %v, want ErrNotFound through the decorator", err)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`holdfast_store_latency_seconds_count{op="inbox",outcome="ok"} 1`,
		`holdfast_store_latency_seconds_count{op="inbox",outcome="error"} 1`,
		`holdfast_inboxes{provider="microsoft",state="paused"} 1200`,
		`holdfast_inboxes{provider="imap",state="connected"} 7`,
		`holdfast_inboxes{provider="google",state="needs_reconnect"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	scrape(t, m)
	// One CountInboxes for the scrapes (cached), one counted by the decorator.
	if fake.calls != 1 {
		t.Errorf("CountInboxes called %d times for two scrapes within the TTL, want 1", fake.calls)
	}
}

// TestStoreOperationsCounted checks that a call no hand-written wrapper
// ever timed, SaveSync, is timed and counted by aggregate and operation,
// and that every operation's counters exist before its first call.
func TestStoreOperationsCounted(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	s := m.InstrumentStore(&fakeStore{})
	if _, err := s.SaveSync(context.Background(), "inb_x", nil, "c1", time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`holdfast_store_latency_seconds_count{op="save_sync",outcome="ok"} 1`,
		`holdfast_store_operations_total{aggregate="mail",op="save_sync",outcome="ok"} 1`,
		`holdfast_store_operations_total{aggregate="oauth",op="take_oauth_state",outcome="error"} 0`,
		`holdfast_store_operations_total{aggregate="api_key",op="api_key_by_hash",outcome="ok"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestMiddlewareLabelsByPattern(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/inboxes/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	h := m.Middleware(mux)
	for _, id := range []string{"a", "b", "c"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/inboxes/"+id, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nowhere", nil))
	out := scrape(t, m)
	for _, want := range []string{
		`holdfast_http_requests_total{code="418",method="GET",route="GET /v1/inboxes/{id}"} 3`,
		`holdfast_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s\n%s", want, out)
		}
	}
}

// TestClusterInfo: a scrape says which node it is, whether it leads and
// how many partitions it holds, as the funcs given say at scrape time.
func TestClusterInfo(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	if body := scrape(t, m); strings.Contains(body, "holdfast_node_info") || strings.Contains(body, "holdfast_cluster_") {
		t.Errorf("cluster series before SetClusterInfo:\n%s", body)
	}
	var leader atomic.Bool
	m.SetClusterInfo("node-a", leader.Load)
	for _, tt := range []struct {
		name   string
		leader bool
		want   []string
	}{
		{"follower", false, []string{`holdfast_node_info{node="node-a"} 1`, "holdfast_cluster_leader 0"}},
		{"leader", true, []string{`holdfast_node_info{node="node-a"} 1`, "holdfast_cluster_leader 1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			leader.Store(tt.leader)
			body := scrape(t, m)
			for _, w := range tt.want {
				if !strings.Contains(body, w+"\n") {
					t.Errorf("scrape lacks %q:\n%s", w, body)
				}
			}
		})
	}
}

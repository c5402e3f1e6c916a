package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/holdfast/holdfast/store/postgres"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
)

// recorder subscribes to every kind of a bus and hands the signals on.
func recorder(b Bus) <-chan Signal {
	out := make(chan Signal, 64)
	for _, k := range []SignalKind{InboxCreated, InboxDeleted, SyncNow, Reconnected, Resync} {
		b.Subscribe(k, func(_ context.Context, s Signal) { out <- s })
	}
	return out
}

// next returns the next signal on c, failing t after within.
func next(t *testing.T, c <-chan Signal, within time.Duration) Signal {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(within):
		t.Fatalf("no signal within %v", within)
		return Signal{}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestLocalBus(t *testing.T) {
	t.Parallel()
	b := NewLocalBus("node_a", quiet())
	got := recorder(b)
	// Published before Start: delivered once it starts.
	if err := b.Publish(t.Context(), Signal{Kind: InboxCreated, ID: "inb_1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), Signal{Kind: SyncNow, ID: "inb_2"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Signal{{Kind: InboxCreated, ID: "inb_1", From: "node_a"}, {Kind: SyncNow, ID: "inb_2", From: "node_a"}} {
		if s := next(t, got, 5*time.Second); s != want {
			t.Errorf("got %+v, want %+v", s, want)
		}
	}
	if err := b.Publish(t.Context(), Signal{Kind: Resync}); err == nil {
		t.Error("Publish(Resync) = nil, want an error: Resync is local only")
	}
	if err := b.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), Signal{Kind: SyncNow, ID: "inb_3"}); !errors.Is(err, ErrBusStopped) {
		t.Errorf("Publish after Stop = %v, want ErrBusStopped", err)
	}
}

// openSchema opens a store on the schema of databaseURL, unmigrated: the
// bus needs no table.
func openSchema(t *testing.T, databaseURL string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startBus starts a ChannelBus of node on st, stopped at cleanup.
func startBus(t *testing.T, st *postgres.Store, node string) (*ChannelBus, <-chan Signal) {
	t.Helper()
	b := NewChannelBus(st, node, quiet())
	b.MinBackoff = 10 * time.Millisecond
	got := recorder(b)
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return b, got
}

// TestChannelBus runs two nodes on one schema and one on another: a
// signal reaches both nodes of its schema (the publisher included) within
// a second, and not the other schema's; a listener whose connection is
// terminated listens again and delivers a Resync.
func TestChannelBus(t *testing.T) {
	t.Parallel()
	url1, schema1 := pgtest.Schema(t)
	url2, _ := pgtest.Schema(t)
	a, gotA := startBus(t, openSchema(t, url1), "node_a")
	_, gotB := startBus(t, openSchema(t, url1), "node_b")
	c, gotC := startBus(t, openSchema(t, url2), "node_c")

	sent := time.Now()
	if err := a.Publish(t.Context(), Signal{Kind: SyncNow, ID: "inb_1"}); err != nil {
		t.Fatal(err)
	}
	want := Signal{Kind: SyncNow, ID: "inb_1", From: "node_a"}
	for name, got := range map[string]<-chan Signal{"node_a": gotA, "node_b": gotB} {
		if s := next(t, got, time.Second); s != want {
			t.Errorf("%s got %+v, want %+v", name, s, want)
		}
	}
	t.Logf("delivered to both nodes in %v", time.Since(sent))
	// The other schema's node hears only its own.
	if err := c.Publish(t.Context(), Signal{Kind: InboxDeleted, ID: "inb_2"}); err != nil {
		t.Fatal(err)
	}
	if s := next(t, gotC, time.Second); s.From != "node_c" {
		t.Errorf("node_c got %+v from another schema", s)
	}

	// Terminate node_a's listener (node_b's too: they share the schema's
	// application name): both listen again and resync.
	conn, err := pgx.Connect(t.Context(), pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		postgres.ListenerApplication+schema1).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("terminated %d listeners, want 2", n)
	}
	for name, got := range map[string]<-chan Signal{"node_a": gotA, "node_b": gotB} {
		if s := next(t, got, 5*time.Second); s.Kind != Resync || s.From != name {
			t.Errorf("%s got %+v after its listener was terminated, want a Resync", name, s)
		}
	}
	// And hear again.
	if err := a.Publish(t.Context(), Signal{Kind: Reconnected, ID: "inb_3"}); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]<-chan Signal{"node_a": gotA, "node_b": gotB} {
		if s := next(t, got, time.Second); s.Kind != Reconnected || s.ID != "inb_3" {
			t.Errorf("%s got %+v after the resync, want the Reconnected", name, s)
		}
	}
}

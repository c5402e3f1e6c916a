package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
)

// slowGain is a fakeHealth whose Gain takes a while (a takeover's store
// reads).
type slowGain struct{ fakeHealth }

func (s slowGain) Gain(context.Context, []int) error { time.Sleep(300 * time.Millisecond); return nil }

// TestRouterStateChangesDuringGain: while the Router's goroutine runs a gain
// with no state change pending, the writer goroutine reports state
// changes (StateChanged, as during a mass pause). The goroutine once
// ranged over the very map StateChanged kept writing to, without the
// lock, which could end the process with "fatal error: concurrent map
// iteration and map write" (and -race reported it).
func TestRouterStateChangesDuringGain(t *testing.T) {
	s := sqlitetest.Open(t)
	h := newHub(t)
	cs := &calls{}
	m, err := New(Config{Store: s, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Node: "a", Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRouter(RouterConfig{Bus: hubBus{h: h, node: "a"}, Membership: m, Store: s,
		Health: slowGain{fakeHealth{cs}}, Syncer: fakeSyncer{c: cs, owns: m.Owns}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	for round := range 5 {
		r.OnChange([]int{1}, nil) // a gain, with r.states empty at the snapshot
		time.Sleep(50 * time.Millisecond)
		var stop atomic.Bool
		done := make(chan struct{})
		go func() { // the monitor's writer during a mass pause
			defer close(done)
			for n := 0; !stop.Load(); n++ {
				r.StateChanged(fmt.Sprintf("inb_%d_%d", round, n))
			}
		}()
		time.Sleep(700 * time.Millisecond)
		stop.Store(true)
		<-done
		time.Sleep(500 * time.Millisecond) // let the goroutine drain
	}
}

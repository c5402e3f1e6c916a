package lifecycle_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/lifecycle"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// journal records what the fake services do, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, s)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.lines...)
}

// fakeService is a Service with one goroutine, which runs until Stop. Its
// start fails with startErr and its stop with stopErr, when set.
type fakeService struct {
	name              string
	j                 *journal
	startErr, stopErr error
	owner             lifecycle.Owner
	// running is closed while the goroutine runs.
	running chan struct{}
}

func newFake(name string, j *journal) *fakeService {
	return &fakeService{name: name, j: j, running: make(chan struct{})}
}

func (f *fakeService) Start(ctx context.Context) error {
	return f.owner.Start(ctx, func(run context.Context) error {
		if f.startErr != nil {
			f.j.add("fail " + f.name)
			return f.startErr
		}
		f.owner.Go(func() {
			close(f.running)
			<-run.Done()
			f.j.add("end " + f.name)
		})
		f.j.add("start " + f.name)
		return nil
	})
}

func (f *fakeService) Stop(ctx context.Context) error {
	f.j.add("stop " + f.name)
	if err := f.owner.Stop(ctx, nil); err != nil {
		return err
	}
	return f.stopErr
}

var (
	errStart = errors.New("cannot start")
	errStop  = errors.New("cannot stop")
)

// step is one call on a Group, and what it must return: nil when is and
// say are unset, else an error that errors.Is is (when set) and that says
// say.
type step struct {
	do  string // "start" or "stop"
	is  error
	say string
}

func TestGroup(t *testing.T) {
	t.Parallel()
	var (
		start, stop = step{do: "start"}, step{do: "stop"}
		fullRun     = []string{"start a", "start b", "start c", "stop c", "end c", "stop b", "end b", "stop a", "end a"}
	)
	tests := []struct {
		name string
		// failStart and failStop name the services whose Start or Stop fail.
		failStart, failStop string
		steps               []step
		want                []string
	}{
		{name: "starts in order, stops in reverse", steps: []step{start, stop}, want: fullRun},
		{
			name: "second stop is a no-op for the services", steps: []step{start, stop, stop},
			want: slices.Concat(fullRun, []string{"stop c", "stop b", "stop a"}),
		},
		{
			name: "starts once", steps: []step{start, {do: "start", say: "already started"}, stop},
			want: fullRun,
		},
		{
			name: "stop before start", steps: []step{stop, {do: "start", say: "already started"}},
			want: []string{"stop c", "stop b", "stop a"},
		},
		{
			name: "failed start stops every service in reverse", failStart: "b",
			steps: []step{{do: "start", is: errStart, say: "start b: cannot start"}, stop},
			want:  []string{"start a", "fail b", "stop c", "stop b", "stop a", "end a", "stop c", "stop b", "stop a"},
		},
		{
			name: "failed first start stops them all", failStart: "a",
			steps: []step{{do: "start", is: errStart, say: "start a: cannot start"}},
			want:  []string{"fail a", "stop c", "stop b", "stop a"},
		},
		{
			name: "stop goes on past a failed stop", failStop: "b",
			steps: []step{start, {do: "stop", is: errStop, say: "stop b: cannot stop"}},
			want:  fullRun,
		},
		{
			name: "failed start reports failed stops too", failStart: "c", failStop: "a",
			steps: []step{{do: "start", is: errStop, say: "stop a: cannot stop"}},
			want:  []string{"start a", "start b", "fail c", "stop c", "stop b", "end b", "stop a", "end a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := &journal{}
			var g lifecycle.Group
			for _, name := range []string{"a", "b", "c"} {
				f := newFake(name, j)
				if name == tt.failStart {
					f.startErr = errStart
				}
				if name == tt.failStop {
					f.stopErr = errStop
				}
				g.Add(name, f)
			}
			for i, st := range tt.steps {
				var err error
				if st.do == "start" {
					err = g.Start(t.Context())
				} else {
					err = g.Stop(t.Context())
				}
				wantErr := st.is != nil || st.say != ""
				if (err != nil) != wantErr || st.is != nil && !errors.Is(err, st.is) || err != nil && !strings.Contains(err.Error(), st.say) {
					t.Errorf("step %d: %s = %v, want an error %v saying %q", i+1, st.do, err, st.is, st.say)
				}
			}
			if diff := cmp.Diff(tt.want, j.get()); diff != "" {
				t.Errorf("journal (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGroupCancelledContext: cancelling Start's context stops nothing (Stop
// does), and a start that fails because of it still stops what started.
func TestGroupCancelledContext(t *testing.T) {
	t.Parallel()
	t.Run("after start", func(t *testing.T) {
		t.Parallel()
		j := &journal{}
		var g lifecycle.Group
		a := newFake("a", j)
		g.Add("a", a)
		ctx, cancel := context.WithCancel(t.Context())
		if err := g.Start(ctx); err != nil {
			t.Fatalf("Start = %v", err)
		}
		cancel()
		<-a.running
		time.Sleep(10 * time.Millisecond)
		if diff := cmp.Diff([]string{"start a"}, j.get()); diff != "" {
			t.Errorf("journal after cancel (-want +got):\n%s", diff)
		}
		if err := g.Stop(t.Context()); err != nil {
			t.Errorf("Stop = %v", err)
		}
		if diff := cmp.Diff([]string{"start a", "stop a", "end a"}, j.get()); diff != "" {
			t.Errorf("journal (-want +got):\n%s", diff)
		}
	})
	t.Run("during start", func(t *testing.T) {
		t.Parallel()
		j := &journal{}
		var g lifecycle.Group
		g.Add("a", newFake("a", j))
		ctx, cancel := context.WithCancel(t.Context())
		g.Add("b", startFunc(func(ctx context.Context) error {
			cancel()
			return ctx.Err()
		}))
		err := g.Start(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Start = %v, want context.Canceled", err)
		}
		if diff := cmp.Diff([]string{"start a", "stop a", "end a"}, j.get()); diff != "" {
			t.Errorf("journal (-want +got):\n%s", diff)
		}
	})
}

// startFunc is a Service whose Start is the function, with nothing to stop.
type startFunc func(ctx context.Context) error

func (f startFunc) Start(ctx context.Context) error { return f(ctx) }
func (startFunc) Stop(context.Context) error        { return nil }

// TestGroupFailedStartLeaksNothing is the bug of issue 11 in small: a
// service with a goroutine starts, the next one fails to start, and the
// goroutine must be gone when Start returns.
func TestGroupFailedStartLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	j := &journal{}
	var g lifecycle.Group
	g.Add("publisher", newFake("publisher", j))
	g.Add("syncer", startFunc(func(context.Context) error { return errStart }))
	if err := g.Start(context.Background()); !errors.Is(err, errStart) {
		t.Fatalf("Start = %v, want %v", err, errStart)
	}
}

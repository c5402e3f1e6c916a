package lifecycle_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast/lifecycle"
)

// ownerBundle is an Owner with a record of what its start and flush saw.
type ownerBundle struct {
	owner lifecycle.Owner
	j     journal
	// run is the run context start got.
	run context.Context
}

// start starts b's owner with one goroutine that journals its end and the
// cause of its run context's end.
func (b *ownerBundle) start(ctx context.Context, err error) error {
	return b.owner.Start(ctx, func(run context.Context) error {
		b.run = run
		b.j.add("start")
		b.owner.Go(func() {
			<-run.Done()
			b.j.add("end: " + context.Cause(run).Error())
		})
		return err
	})
}

func (b *ownerBundle) flush(context.Context) error {
	b.j.add("flush")
	return nil
}

func TestOwner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// steps run in order: "start", "fail" (a start that fails), "stop".
		steps []string
		want  []string
	}{
		{"start then stop", []string{"start", "stop"}, []string{"start", "flush", "end: service stopped"}},
		{"stop twice", []string{"start", "stop", "stop"}, []string{"start", "flush", "end: service stopped"}},
		{"start twice", []string{"start", "start", "stop"}, []string{"start", "flush", "end: service stopped"}},
		{"stop before start", []string{"stop", "start", "stop"}, nil},
		{"failed start", []string{"fail", "stop"}, []string{"start", "end: service stopped"}},
		{"start after failed start", []string{"fail", "start", "stop"}, []string{"start", "end: service stopped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b ownerBundle
			for _, step := range tt.steps {
				var err error
				switch step {
				case "start":
					err = b.start(t.Context(), nil)
				case "fail":
					if err = b.start(t.Context(), errStart); errors.Is(err, errStart) {
						err = nil
					}
				case "stop":
					err = b.owner.Stop(t.Context(), b.flush)
				}
				if err != nil {
					t.Fatalf("%s = %v", step, err)
				}
			}
			if diff := cmp.Diff(tt.want, b.j.get()); diff != "" {
				t.Errorf("journal (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOwnerRunContext: the run context keeps the start context's values
// and outlives it.
func TestOwnerRunContext(t *testing.T) {
	t.Parallel()
	type key struct{}
	var b ownerBundle
	ctx, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
	if err := b.start(ctx, nil); err != nil {
		t.Fatalf("Start = %v", err)
	}
	cancel()
	if got := b.run.Value(key{}); got != "v" {
		t.Errorf("run context value = %v, want v", got)
	}
	if err := b.run.Err(); err != nil {
		t.Errorf("run context ended with its start context: %v", err)
	}
	if err := b.owner.Stop(t.Context(), nil); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if !errors.Is(context.Cause(b.run), lifecycle.ErrStopped) {
		t.Errorf("cause of the run context's end = %v, want ErrStopped", context.Cause(b.run))
	}
}

// TestOwnerStopTimeout: Stop gives up waiting for a goroutine at its
// context's end, and a later Stop waits for it again.
func TestOwnerStopTimeout(t *testing.T) {
	t.Parallel()
	var o lifecycle.Owner
	release := make(chan struct{})
	err := o.Start(t.Context(), func(context.Context) error {
		o.Go(func() { <-release }) // ignores its run context
		return nil
	})
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := o.Stop(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop with a stuck goroutine = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := o.Stop(t.Context(), nil); err != nil {
		t.Errorf("Stop after the goroutine ended = %v", err)
	}
}

// TestOwnerFlushError: Stop returns flush's error and still stops.
func TestOwnerFlushError(t *testing.T) {
	t.Parallel()
	var b ownerBundle
	if err := b.start(t.Context(), nil); err != nil {
		t.Fatalf("Start = %v", err)
	}
	err := b.owner.Stop(t.Context(), func(context.Context) error { return errStop })
	if !errors.Is(err, errStop) {
		t.Errorf("Stop = %v, want %v", err, errStop)
	}
	if diff := cmp.Diff([]string{"start", "end: service stopped"}, b.j.get()); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
}

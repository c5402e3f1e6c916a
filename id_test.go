package holdfast_test

import (
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

func TestNewIDSortsByTime(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 3, 1, 20, 40, 0, 0, time.UTC)
	prev := ""
	for i := range 100 {
		id := holdfast.NewID("inb", t0.Add(time.Duration(i)*time.Millisecond))
		if !holdfast.ValidID("inb", id) {
			t.Fatalf("ValidID(%q) = false, want true", id)
		}
		if id <= prev {
			t.Fatalf("NewID at +%dms = %q, not after %q", i, id, prev)
		}
		prev = id
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	good := holdfast.NewID("inb", time.Now())
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"good", good, true},
		{"other prefix", "key" + good[3:], false},
		{"short", good[:len(good)-1], false},
		{"bad alphabet", good[:len(good)-1] + "u", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := holdfast.ValidID("inb", tt.in); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

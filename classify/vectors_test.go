package classify_test

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

// vector is one line of testdata/vectors.jsonl.
type vector struct {
	ID              string          `json:"id"`
	Provider        string          `json:"provider"`
	Surface         string          `json:"surface"`
	HTTPStatus      *int            `json:"http_status"`
	Raw             string          `json:"raw"`
	Operation       string          `json:"operation"`
	Class           holdfast.Class  `json:"class"`
	Reason          holdfast.Reason `json:"reason"`
	Scope           holdfast.Scope  `json:"scope"`
	OutageSensitive bool            `json:"outage_sensitive"`
}

// testNow is the fixed time tests classify at, so that Retry-After dates
// give the same wait on every run.
var testNow = time.Date(2020, 1, 21, 12, 0, 0, 0, time.UTC)

func (v vector) input() classify.Input {
	in := classify.Input{
		Provider:  v.Provider,
		Surface:   classify.Surface(v.Surface),
		Raw:       v.Raw,
		Operation: v.Operation,
		Now:       testNow,
	}
	if v.HTTPStatus != nil {
		in.HTTPStatus = *v.HTTPStatus
	}
	return in
}

// loadVectors reads testdata/vectors.jsonl.
func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	f, err := os.Open("testdata/vectors.jsonl")
	if err != nil {
		tb.Fatalf("open vectors: %v", err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var v vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			tb.Fatalf("vector %d: %v", len(vs)+1, err)
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read vectors: %v", err)
	}
	return vs
}

// verdictKey is the part of a verdict the vectors state.
type verdictKey struct {
	Class           holdfast.Class
	Reason          holdfast.Reason
	Scope           holdfast.Scope
	OutageSensitive bool
}

func TestVectors(t *testing.T) {
	t.Parallel()
	vs := loadVectors(t)
	if len(vs) != 123 {
		t.Errorf("loaded %d vectors, want 123", len(vs))
	}
	for _, v := range vs {
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			in := v.input()
			got := classify.Classify(in)
			key := verdictKey{got.Class, got.Reason, got.Scope, got.OutageSensitive}
			want := verdictKey{v.Class, v.Reason, v.Scope, v.OutageSensitive}
			if !v.OutageSensitive {
				// The vectors mark outage_sensitive where it has been
				// seen; the classifier may mark more.
				key.OutageSensitive = false
			}
			if diff := cmp.Diff(want, key); diff != "" {
				t.Errorf("Classify(%s) = %+v, want %+v (-want +got):\n%s", v.ID, key, want, diff)
			}
		})
	}
}

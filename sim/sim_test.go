package sim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCISmall(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	dir := t.TempDir()
	code := Main(context.Background(), []string{"--scenario", "testdata/ci-small.json", "--quiet",
		"--out", filepath.Join(dir, "r.json"), "--html", filepath.Join(dir, "r.html")}, &out, &errb)
	t.Log(out.String(), errb.String())
	if code != 0 {
		t.Fatalf("Main(ci-small) = %d, want 0", code)
	}
	if os.Getenv("SIM_KEEP") != "" {
		b, _ := os.ReadFile(filepath.Join(dir, "r.html"))
		_ = os.WriteFile("/tmp/ci-small.html", b, 0o644)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	sc, err := LoadScenario("testdata/ci-small.json")
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	for _, w := range []*bytes.Buffer{&a, &b} {
		rep, err := Run(context.Background(), sc, "holdfast", nil)
		if err != nil {
			t.Fatal(err)
		}
		rep.WallS, rep.PeakRSSMB = 0, 0
		summary(w, rep)
	}
	if a.String() != b.String() {
		t.Errorf("two runs differ:\n%s\n%s", a.String(), b.String())
	}
}

func TestBadScenario(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/ci-small.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"provider name", `"name": "google"`, `"name": "yahoo"`, "providers[1].name"},
		{"failure rate", `"failure_rate": 1.0`, `"failure_rate": 2`, "events[0].failure_rate"},
		{"expect path", `"wrongful_disconnects": {`, `"wrongful": {`, "expect.wrongful"},
		{"duration", `"duration": "4h"`, `"duration": "soon"`, "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := strings.Replace(string(b), tt.from, tt.to, 1)
			path := filepath.Join(t.TempDir(), "s.json")
			if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := Main(context.Background(), []string{"--scenario", path, "--quiet"}, &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("Main(%s) = %d, stderr %q; want 2 naming %s", tt.name, code, errb.String(), tt.want)
			}
		})
	}
}

// TestMixedScenario runs scenario shapes the three shared scenarios do not
// have, against the same expects.
func TestMixedScenario(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"--scenario", "testdata/mixed.json", "--quiet"}, &out, &errb)
	t.Log(out.String(), errb.String())
	if code != 0 {
		t.Fatalf("Main(mixed) = %d, want 0", code)
	}
}

// TestLifecycleScenarios runs the flapping-outage scenarios (issue 14,
// shape 1) and the long outage that escalates (shape 4) against their
// expects, and checks that each flapping outage is one provider incident
// (one episode to the owners) and that the long one was escalated.
func TestLifecycleScenarios(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		escalated bool
	}{
		{"flap-small", false},
		{"flap-google-2m", false},
		{"flap-google-5m", false},
		{"flap-google-8m", false},
		{"flap-microsoft-6m", false},
		{"flap-microsoft-4m-large", false},
		{"flap-regional-partial", false},
		{"flap-google-3m-early", false},
		{"flap-google-90s", false},
		{"long-outage-escalates", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", tt.file+".json")
			var out, errb bytes.Buffer
			if code := Main(context.Background(), []string{"--scenario", path, "--quiet"}, &out, &errb); code != 0 {
				t.Fatalf("Main(%s) = %d, want 0\n%s%s", tt.file, code, out.String(), errb.String())
			}
			sc, err := LoadScenario(path)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Run(context.Background(), sc, "holdfast", nil)
			if err != nil {
				t.Fatal(err)
			}
			// One provider incident for the whole episode. (A tenant
			// incident the provider's one supersedes at the onset is
			// the tenant detector's business.)
			provider := 0
			for _, in := range rep.Incidents {
				if in.Scope == "provider" {
					provider++
				}
			}
			if provider != 1 {
				t.Errorf("%s: %d provider incidents, want 1 (one episode)", tt.file, provider)
			}
			if got := rep.IncidentsEscalated > 0; got != tt.escalated {
				t.Errorf("%s: incidents_escalated = %d, want escalated %v", tt.file, rep.IncidentsEscalated, tt.escalated)
			}
		})
	}
}

package loadtest

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var runLoadtest = flag.Bool("loadtest", false, "run TestLoadtestSmall, a fleet of real processes (also HOLDFAST_LOADTEST=1)")

// notAsserted are the criteria the CI-size run reports but does not
// assert yet, with why: they are the work of a later issue, and the
// report shows their figures.
var notAsserted = map[string]string{
	"recovery_s": "at this size the bound (one 15 s interval) is shorter than the close window and the ramp's start; " +
		"and each node's ramp judges the emulator's capacity from its own share of the traffic (after the first half, " +
		"the rest came back at about 3 inboxes/s in the last run): issue 13 keeps this open",
}

// TestLoadtestSmall runs the CI-size fleet: 3 nodes, 600 inboxes, a
// two-minute outage with node 1 killed 30 seconds into it, with the outage
// drill's health settings, and asserts every criterion but those of
// notAsserted. It needs PostgreSQL (TEST_DATABASE_URL or the local test
// database) and takes about five minutes: it runs in CI (CI=true), or with
// -loadtest or HOLDFAST_LOADTEST=1.
func TestLoadtestSmall(t *testing.T) {
	if !*runLoadtest && os.Getenv("HOLDFAST_LOADTEST") == "" && os.Getenv("CI") != "true" {
		t.Skip("a five-minute fleet test: run with -loadtest or HOLDFAST_LOADTEST=1 (CI runs it)")
	}
	dbURL := os.Getenv("TEST_DATABASE_URL")
	if dbURL == "" {
		dbURL = DefaultDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	conn, err := pgx.Connect(ctx, dbURL)
	cancel()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is unreachable: %v", err)
		}
		t.Skipf("PostgreSQL is unreachable (%v); under CI=true this fails", err)
	}
	conn.Close(context.Background())

	bin := filepath.Join(t.TempDir(), "holdfast")
	build := exec.Command("go", "build", "-o", bin, "github.com/holdfast/holdfast/cmd/holdfast")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	cfg := Config{Binary: bin, Nodes: 3, Inboxes: 600, GoogleShare: 0.4, Tenants: 20,
		Interval: 15 * time.Second, Steady: 45 * time.Second, Outage: 2 * time.Minute,
		KillNode: 1, KillAfter: 30 * time.Second, Recovery: 2 * time.Minute,
		MailRate: 4, SendRate: 1, DatabaseURL: dbURL, WorkDir: workDir(t),
		// The outage drill's health settings (docs/operations.md): a
		// confirm span shorter than the outage, so that only the incident
		// keeps the inboxes from being disconnected.
		ServeEnv: []string{"HOLDFAST_HEALTH_CONFIRM_SPAN=40s", "HOLDFAST_HEALTH_BUCKET=2s",
			"HOLDFAST_HEALTH_CLOSE_WINDOW=10s", "HOLDFAST_HEALTH_NOTICE_GRACE=20s", "HOLDFAST_HEALTH_KEEPALIVE=1m"}}
	start := time.Now()
	rep, err := Run(t.Context(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the fleet test took %v", time.Since(start).Round(time.Second))
	for _, n := range rep.Notes {
		t.Logf("note: %s", n)
	}
	t.Logf("sends in holdfast at the end: %v", rep.Measures.SendStates)
	for _, c := range rep.Criteria {
		measured := "n/a"
		if c.Measured != nil {
			measured = fmtPtr(c.Measured)
		}
		switch why, skip := notAsserted[c.Name]; {
		case !c.Pass && skip:
			t.Logf("criterion %s: measured %s %s, want %s %g: NOT MET, not asserted yet (%s)", c.Name, measured, c.Unit, c.Op, c.Target, why)
		case !c.Pass:
			t.Errorf("criterion %s: measured %s %s, want %s %g (%s)", c.Name, measured, c.Unit, c.Op, c.Target, c.Why)
		default:
			t.Logf("criterion %s: measured %s %s %s %g: pass", c.Name, measured, c.Unit, c.Op, c.Target)
		}
	}
	if t.Failed() {
		if out := os.Getenv("HOLDFAST_LOADTEST_REPORT"); out != "" {
			f, err := os.Create(out)
			if err == nil {
				_ = rep.WriteHTML(f)
				f.Close()
			}
		}
	}
}

// testWriter sends the progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// workDir is where the run's logs go: kept when the test fails, so that
// they can be read, and removed when it passes.
func workDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "holdfast-loadtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

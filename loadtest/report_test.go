package loadtest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// passing is a run of the small CI size that meets every criterion.
func passing() (Params, Measures) {
	p := Params{Nodes: 3, Inboxes: 3000, Microsoft: 1800, Google: 1200, Tenants: 100, IntervalS: 30, SteadyS: 60,
		OutageS: 120, RecoveryMaxS: 300, KillNode: 1, KillAfterS: 30, MailRate: 5, SendRate: 1, EmulatorRate: 200,
		CallsPerRecovery: 2, LeasePeriodS: 30, Seed: 1}
	m := Measures{SyncsPerSecond: 99, SyncsPerSecondTarget: 100, SteadySyncs: 5940, ExpectedSyncs: 6000,
		DuplicateSyncsExact: true, TakeoverS: ptr(41), DetectionS: ptr(12), RecoveryS: ptr(30),
		AffectedInboxes: 3000, CapacityBoundS: 30}
	return p, m
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(p *Params, m *Measures)
		failed []string
	}{
		{"all pass", func(*Params, *Measures) {}, nil},
		{"slow syncs", func(_ *Params, m *Measures) { m.SyncsPerSecond = 89.9 }, []string{"syncs_per_second"}},
		{"exactly 90%", func(_ *Params, m *Measures) { m.SyncsPerSecond = 90 }, nil},
		{"one stale inbox", func(_ *Params, m *Measures) { m.StaleInboxesMax = 1 }, []string{"inboxes_synced_every_two_intervals"}},
		{"exact duplicates", func(_ *Params, m *Measures) { m.DuplicateSyncs = 1 }, []string{"duplicate_syncs"}},
		{"estimated duplicates within 5%", func(_ *Params, m *Measures) {
			m.DuplicateSyncsExact, m.DuplicateSyncs = false, 300
		}, nil},
		{"estimated duplicates of three nodes", func(_ *Params, m *Measures) {
			m.DuplicateSyncsExact, m.DuplicateSyncs = false, 12000
		}, []string{"duplicate_syncs"}},
		{"wrongful disconnect", func(_ *Params, m *Measures) { m.WrongfulDisconnects = 2 }, []string{"wrongful_disconnects"}},
		{"late detection", func(_ *Params, m *Measures) { m.DetectionS = ptr(60.5) }, []string{"detection_s"}},
		{"no incident", func(_ *Params, m *Measures) { m.DetectionS = nil }, []string{"detection_s"}},
		{"recovery at 1.25 bound", func(_ *Params, m *Measures) { m.RecoveryS = ptr(37.5) }, nil},
		{"slow recovery", func(_ *Params, m *Measures) { m.RecoveryS = ptr(37.6) }, []string{"recovery_s"}},
		{"never recovered", func(_ *Params, m *Measures) { m.RecoveryS = nil }, []string{"recovery_s"}},
		{"a notice", func(_ *Params, m *Measures) { m.NoticeEvents = 1 }, []string{"notices"}},
		{"slow takeover", func(_ *Params, m *Measures) { m.TakeoverS = ptr(61) }, []string{"takeover_s"}},
		{"no leases", func(_ *Params, m *Measures) { m.TakeoverS = nil }, []string{"takeover_s"}},
		{"no kill: no takeover criterion", func(p *Params, m *Measures) { p.KillNode, m.TakeoverS = -1, nil }, nil},
		{"no outage: no outage criteria", func(p *Params, m *Measures) {
			p.OutageS, p.KillNode, m.DetectionS, m.RecoveryS, m.TakeoverS, m.Notices = 0, -1, nil, nil, nil, 3
		}, nil},
		{"sends", func(_ *Params, m *Measures) { m.SendsLost, m.SendsDuplicated = 1, 1 }, []string{"sends_lost", "sends_duplicated"}},
		{"webhook lost", func(_ *Params, m *Measures) { m.WebhookLost = 1 }, []string{"webhook_events_lost"}},
		{"webhook duplicate deliveries are allowed", func(_ *Params, m *Measures) { m.WebhookDuplicates = 5 }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, m := passing()
			tt.change(&p, &m)
			cs := Evaluate(p, m)
			var failed []string
			for _, c := range cs {
				if !c.Pass {
					failed = append(failed, c.Name)
				}
			}
			if diff := cmp.Diff(tt.failed, failed); diff != "" {
				t.Errorf("failed criteria (-want +got):\n%s", diff)
			}
			if got, want := allPass(cs), len(tt.failed) == 0; got != want {
				t.Errorf("allPass = %v, want %v", got, want)
			}
		})
	}
}

func TestCapacityBound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		affected         int
		calls, rate, ivl float64
		want             float64
	}{
		{100000, 2, 200, 60, 1000},
		{3000, 2, 200, 30, 30},
		{0, 2, 200, 30, 30}, // at least one interval
		{1000, 3, 7, 1, 428.571},
	}
	for _, tt := range tests {
		if got := capacityBound(tt.affected, tt.calls, tt.rate, tt.ivl); got != tt.want {
			t.Errorf("capacityBound(%d, %g, %g, %g) = %g, want %g", tt.affected, tt.calls, tt.rate, tt.ivl, got, tt.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		xs   []float64
		q    float64
		want *float64
	}{
		{nil, 0.5, nil},
		{[]float64{3}, 0.99, ptr(3)},
		{[]float64{5, 1, 4, 2, 3}, 0.5, ptr(3)},
		{[]float64{5, 1, 4, 2, 3}, 0.99, ptr(5)},
		{[]float64{1, 2, 3, 4}, 0.5, ptr(2)},
		{[]float64{1, 2, 3, 4}, 0, ptr(1)},
	}
	for _, tt := range tests {
		if got := percentile(tt.xs, tt.q); !cmp.Equal(got, tt.want) {
			t.Errorf("percentile(%v, %g) = %v, want %v", tt.xs, tt.q, fmtPtr(got), fmtPtr(tt.want))
		}
	}
}

func TestParseSample(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line, name, labels string
		v                  float64
		ok                 bool
	}{
		{"# HELP x y", "", "", 0, false},
		{"process_resident_memory_bytes 1.2345e+07", "process_resident_memory_bytes", "", 1.2345e7, true},
		{`holdfast_store_operations_total{aggregate="mail",op="save_sync",outcome="ok"} 42`, "holdfast_store_operations_total", `aggregate="mail",op="save_sync",outcome="ok"`, 42, true},
		{`x{a="}"} 3 1700000000`, "x", `a="}"`, 3, true},
		{"broken", "", "", 0, false},
	}
	for _, tt := range tests {
		name, labels, v, ok := parseSample(tt.line)
		if name != tt.name || labels != tt.labels || v != tt.v || ok != tt.ok {
			t.Errorf("parseSample(%q) = %q, %q, %g, %v; want %q, %q, %g, %v", tt.line, name, labels, v, ok, tt.name, tt.labels, tt.v, tt.ok)
		}
	}
}

// goldenReport is a fixed report of every field.
func goldenReport() *Report {
	p, m := passing()
	m.SyncLagP50S, m.SyncLagP99S, m.LagSamples = ptr(2.5), ptr(9.1), 290
	m.CPUSecondsPer1000Syncs, m.PGWritesPerSync, m.PGCommitsPerSync = ptr(1.7), ptr(2.1), ptr(1.05)
	m.SendStates = map[string]int{"sent": 180}
	r := &Report{Version: ReportVersion, Params: p, StartedAt: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC),
		Phases:   []PhaseSpan{{PhaseSteady, 0, 60}, {PhaseOutage, 60, 180}, {PhaseRecovery, 180, 210}, {PhaseDrain, 210, 220}},
		Measures: m,
		Nodes: []NodeReport{{Index: 0, ID: "node-0", RSSBytes: 64 << 20, OwnedInboxes: 1000, RSSPerInboxBytes: 67108.864,
			CPUSeconds: 3.2, Syncs: 1980, PartitionsOwned: 86}},
		Samples: []Sample{{T: 0, SyncsPerSecond: 98.5, LagP50S: 2.4, States: map[string]int{"connected": 3000},
			RSSBytes: []float64{64 << 20, 65 << 20, 63 << 20}, NodesAlive: 3}},
		Notes: []string{"a note"}}
	r.Criteria = Evaluate(p, m)
	r.Pass = allPass(r.Criteria)
	return r
}

// TestReportJSON pins the JSON report's shape: a renamed or removed field
// must bump ReportVersion (go test ./loadtest -run TestReportJSON -update).
func TestReportJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := goldenReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.json")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("report JSON (-golden +got):\n%s", diff)
	}
}

func TestReportHTML(t *testing.T) {
	t.Parallel()
	r := goldenReport()
	r.Criteria[0].Pass, r.Pass = false, false
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "syncs per second", "inboxes by state", "takeover_s", "FAIL", "node-0"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	if strings.Contains(b.String(), "<script") || strings.Contains(b.String(), "http://") && !strings.Contains(b.String(), "xmlns") {
		t.Error("HTML report is not self-contained")
	}
}

func TestArrivalOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mid  string
		want time.Time
		ok   bool
	}{
		{"<arrived.1767322800123456789.42@emulator.invalid>", time.Unix(0, 1767322800123456789), true},
		{"<arrived.x.42@emulator.invalid>", time.Time{}, false},
		{"<lt-1-2@loadtest.example>", time.Time{}, false},
		{"<arrived.1.2@elsewhere.example>", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := arrivalOf(tt.mid)
		if !got.Equal(tt.want) || ok != tt.ok {
			t.Errorf("arrivalOf(%q) = %v, %v; want %v, %v", tt.mid, got, ok, tt.want, tt.ok)
		}
	}
}

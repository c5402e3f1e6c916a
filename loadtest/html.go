package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
)

// Chart geometry, in SVG units.
const chartW, chartH = 900, 220

// drawStates are the inbox states drawn, with their colours (as in
// package sim's report).
var drawStates = []struct{ name, color string }{
	{"connected", "#2e7d32"}, {"connecting", "#78909c"}, {"degraded", "#f9a825"}, {"suspect", "#ef6c00"},
	{"paused", "#1565c0"}, {"needs_reconnect", "#c62828"}, {"needs_admin", "#6a1b9a"},
}

var phaseColor = map[Phase]string{PhaseOutage: "#ffcdd2", PhaseRecovery: "#fff9c4", PhaseDrain: "#e3f2fd"}

var nodeColors = []string{"#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#455a64"}

// htmlChart is one SVG chart of the page.
type htmlChart struct {
	Title, YMax string
	Bands       []htmlBand
	Paths       []htmlPath
}

type htmlBand struct {
	X, W  float64
	Color string
	Label string
}

type htmlPath struct {
	D, Color, Label string
}

// WriteHTML writes r as a self-contained HTML page: the criteria, the
// measures, and charts over time (syncs per second, sync lag, RSS per
// node, inboxes by state) with the phases shaded.
func (r *Report) WriteHTML(w io.Writer) error {
	tmax := 1.0
	for _, s := range r.Samples {
		tmax = math.Max(tmax, s.T)
	}
	for _, p := range r.Phases {
		tmax = math.Max(tmax, p.EndS)
	}
	x := func(t float64) float64 { return t / tmax * chartW }
	var bands []htmlBand
	for _, p := range r.Phases {
		if c, ok := phaseColor[p.Name]; ok {
			bands = append(bands, htmlBand{X: x(p.StartS), W: math.Max(1, x(p.EndS)-x(p.StartS)), Color: c, Label: string(p.Name)})
		}
	}
	line := func(vals []float64, ymax float64) string {
		var b strings.Builder
		for i, v := range vals {
			cmd := 'L'
			if i == 0 {
				cmd = 'M'
			}
			fmt.Fprintf(&b, "%c%.1f,%.1f", cmd, x(r.Samples[i].T), chartH-v/ymax*(chartH-10))
		}
		return b.String()
	}
	chart := func(title string, series [][]float64, colors, labels []string) htmlChart {
		ymax := 1.0
		for _, s := range series {
			if len(s) > 0 {
				ymax = math.Max(ymax, slices.Max(s))
			}
		}
		c := htmlChart{Title: title, YMax: fmt.Sprintf("%.4g", ymax), Bands: bands}
		for i, s := range series {
			c.Paths = append(c.Paths, htmlPath{D: line(s, ymax), Color: colors[i%len(colors)], Label: labels[i]})
		}
		return c
	}
	var syncs, lag []float64
	for _, s := range r.Samples {
		syncs = append(syncs, s.SyncsPerSecond)
		lag = append(lag, s.LagP50S)
	}
	target := make([]float64, len(r.Samples))
	for i := range target {
		target[i] = r.Measures.SyncsPerSecondTarget
	}
	charts := []htmlChart{
		chart("syncs per second (all nodes) and the target", [][]float64{syncs, target}, []string{"#1565c0", "#9e9e9e"}, []string{"syncs/s", "target"}),
		chart("sync lag, median of the messages announced in each period (s)", [][]float64{lag}, []string{"#6a1b9a"}, []string{"lag p50"}),
	}
	var rss [][]float64
	var rssLabels []string
	for i := range r.Params.Nodes {
		var v []float64
		for _, s := range r.Samples {
			if i < len(s.RSSBytes) {
				v = append(v, s.RSSBytes[i]/(1<<20))
			} else {
				v = append(v, 0)
			}
		}
		rss = append(rss, v)
		rssLabels = append(rssLabels, fmt.Sprintf("node-%d", i))
	}
	charts = append(charts, chart("resident memory per node (MiB)", rss, nodeColors, rssLabels))
	var states [][]float64
	var stateColors, stateLabels []string
	for _, st := range drawStates {
		var v []float64
		for _, s := range r.Samples {
			v = append(v, float64(s.States[st.name]))
		}
		states = append(states, v)
		stateColors, stateLabels = append(stateColors, st.color), append(stateLabels, st.name)
	}
	charts = append(charts, chart("inboxes by state", states, stateColors, stateLabels))

	var sum strings.Builder
	r.Summary(&sum)
	var js strings.Builder
	m := r.Measures
	fmt.Fprintf(&js, "syncs/s %.2f (target %.2f), steady syncs %d, expected %d\n", m.SyncsPerSecond, m.SyncsPerSecondTarget, m.SteadySyncs, m.ExpectedSyncs)
	fmt.Fprintf(&js, "sync lag p50 %s s, p99 %s s over %d messages\n", fmtPtr(m.SyncLagP50S), fmtPtr(m.SyncLagP99S), m.LagSamples)
	fmt.Fprintf(&js, "CPU s per 1000 syncs %s, PostgreSQL rows written per sync %s, commits per sync %s\n",
		fmtPtr(m.CPUSecondsPer1000Syncs), fmtPtr(m.PGWritesPerSync), fmtPtr(m.PGCommitsPerSync))
	fmt.Fprintf(&js, "duplicate syncs %d (exact: %v), stale inboxes at worst %d\n", m.DuplicateSyncs, m.DuplicateSyncsExact, m.StaleInboxesMax)
	fmt.Fprintf(&js, "detection %s s, takeover %s s, recovery %s s (capacity bound %.1f s for %d inboxes)\n",
		fmtPtr(m.DetectionS), fmtPtr(m.TakeoverS), fmtPtr(m.RecoveryS), m.CapacityBoundS, m.AffectedInboxes)
	fmt.Fprintf(&js, "wrongful disconnects %d, notices %d (+%d notice.sent events)\n", m.WrongfulDisconnects, m.Notices, m.NoticeEvents)
	fmt.Fprintf(&js, "webhook events %d, duplicate deliveries %d, messages not announced %d, announced twice %d, delivered %d\n",
		m.WebhookEvents, m.WebhookDuplicates, m.WebhookLost, m.MessagesDoubled, m.MessagesDelivered)
	fmt.Fprintf(&js, "sends accepted %d, lost %d, duplicated %d; in holdfast at the end: %s\n", m.SendsAccepted, m.SendsLost, m.SendsDuplicated, fmtStates(m.SendStates))
	return htmlPage.Execute(w, map[string]any{"R": r, "Charts": charts, "W": chartW, "H": chartH,
		"Summary": sum.String(), "Measures": js.String()})
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%g", *p)
}

var htmlPage = template.Must(template.New("loadtest").Funcs(template.FuncMap{"div": func(b float64) float64 { return b / (1 << 20) }}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>holdfast loadtest: {{.R.Params.Nodes}} nodes, {{.R.Params.Inboxes}} inboxes</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:960px;color:#222}
h2{font-size:1.05em;margin:1.4em 0 .3em}svg{background:#fafafa;border:1px solid #ddd}
.legend span{display:inline-block;margin-right:1em;font-size:.85em}.legend i{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left}
.pass{color:#2e7d32;font-weight:bold}.fail{color:#c62828;font-weight:bold}
pre{background:#f4f4f4;padding:1em;font-size:.8em;overflow-x:auto}</style></head><body>
<h1>holdfast loadtest: {{if .R.Pass}}<span class="pass">PASS</span>{{else}}<span class="fail">FAIL</span>{{end}}</h1>
<p>{{.R.Params.Nodes}} nodes, {{.R.Params.Inboxes}} inboxes ({{.R.Params.Microsoft}} Microsoft, {{.R.Params.Google}} Google, {{.R.Params.Tenants}} domains each),
sync interval {{.R.Params.IntervalS}} s, steady {{.R.Params.SteadyS}} s, outage {{.R.Params.OutageS}} s{{if ge .R.Params.KillNode 0}}, node {{.R.Params.KillNode}} killed {{.R.Params.KillAfterS}} s into it{{end}};
started {{.R.StartedAt.Format "2006-01-02 15:04:05 UTC"}}. Time runs left to right from the start of the steady phase. Shaded: red the outage, yellow the recovery, blue the drain.</p>
<h2>Criteria</h2>
<table><tr><th>criterion</th><th>measured</th><th>target</th><th></th><th>why</th></tr>
{{range .R.Criteria}}<tr><td>{{.Name}}</td><td>{{if .Measured}}{{.Measured}}{{else}}n/a{{end}} {{.Unit}}</td><td>{{.Op}} {{.Target}}</td><td>{{if .Pass}}<span class="pass">pass</span>{{else}}<span class="fail">FAIL</span>{{end}}</td><td>{{.Why}}</td></tr>
{{end}}</table>
<h2>Measures</h2><pre>{{.Measures}}</pre>
<h2>Nodes (steady state)</h2>
<table><tr><th>node</th><th>RSS MiB</th><th>owned inboxes</th><th>RSS per inbox (bytes)</th><th>CPU s</th><th>syncs</th><th>partitions</th><th>killed</th></tr>
{{range .R.Nodes}}<tr><td>{{.ID}}</td><td>{{printf "%.1f" (div .RSSBytes)}}</td><td>{{.OwnedInboxes}}</td><td>{{printf "%.0f" .RSSPerInboxBytes}}</td><td>{{.CPUSeconds}}</td><td>{{.Syncs}}</td><td>{{.PartitionsOwned}}</td><td>{{.Killed}}</td></tr>
{{end}}</table>
{{range .Charts}}<h2>{{.Title}} <small>(y max {{.YMax}})</small></h2>
<svg width="{{$.W}}" height="{{$.H}}" viewBox="0 0 {{$.W}} {{$.H}}" role="img" aria-label="{{.Title}}">
{{range .Bands}}<rect x="{{printf "%.1f" .X}}" y="0" width="{{printf "%.1f" .W}}" height="{{$.H}}" fill="{{.Color}}" fill-opacity="0.6"><title>{{.Label}}</title></rect>{{end}}
{{range .Paths}}<path d="{{.D}}" fill="none" stroke="{{.Color}}" stroke-width="1.5"><title>{{.Label}}</title></path>{{end}}
</svg>
<div class="legend">{{range .Paths}}<span><i style="background:{{.Color}}"></i>{{.Label}}</span>{{end}}</div>
{{end}}
<h2>Summary</h2><pre>{{.Summary}}</pre>
{{if .R.LogDir}}<p>Logs: {{.R.LogDir}}</p>{{end}}
</body></html>
`))

package sim

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/holdfast/holdfast"
)

// series holds the time series the HTML report draws.
type series struct {
	step    int64
	t       []int64
	counts  [][][]int64 // provider → state → sample
	errRate [][]float64 // provider → sample
	notices []int64
}

var drawStates = []holdfast.State{holdfast.StateConnected, holdfast.StateDegraded, holdfast.StateSuspect,
	holdfast.StatePaused, holdfast.StateNeedsReconnect, holdfast.StateNeedsAdmin}

var stateColor = map[holdfast.State]string{
	holdfast.StateConnected: "#2e7d32", holdfast.StateDegraded: "#f9a825", holdfast.StateSuspect: "#ef6c00",
	holdfast.StatePaused: "#1565c0", holdfast.StateNeedsReconnect: "#c62828", holdfast.StateNeedsAdmin: "#6a1b9a",
}

func newSeries(r *run) *series {
	s := &series{step: max(60, r.dur/720)}
	s.counts = make([][][]int64, len(r.provs))
	for k := range s.counts {
		s.counts[k] = make([][]int64, len(drawStates))
	}
	s.errRate = make([][]float64, len(r.provs))
	return s
}

func (s *series) sample(r *run) {
	if r.now%s.step != 0 {
		return
	}
	s.t = append(s.t, r.now)
	for k, p := range r.provs {
		c := r.eng.Counts(holdfast.Provider(p.spec.Name))
		for j, st := range drawStates {
			s.counts[k][j] = append(s.counts[k][j], c[st])
		}
		er := 0.0
		if p.reqInterval > 0 {
			er = float64(p.errInterval) / float64(p.reqInterval)
		}
		s.errRate[k] = append(s.errRate[k], er)
		p.reqInterval, p.errInterval = 0, 0
	}
	s.notices = append(s.notices, r.noticesCum)
}

type chart struct {
	Title  string
	Paths  []pathSpec
	Bands  []band
	Legend []pathSpec
	YMax   string
}

type pathSpec struct {
	D, Color, Label string
}

type band struct {
	X, W  float64
	Color string
	Label string
}

const cw, ch = 900.0, 180.0

func (s *series) polyline(vals []float64, ymax float64) string {
	var b strings.Builder
	n := len(vals)
	for k, v := range vals {
		x := cw * float64(k) / math.Max(1, float64(n-1))
		y := ch - ch*v/math.Max(ymax, 1e-9)
		if k == 0 {
			fmt.Fprintf(&b, "M%.1f,%.1f", x, y)
		} else {
			fmt.Fprintf(&b, "L%.1f,%.1f", x, y)
		}
	}
	return b.String()
}

// writeHTML writes the self-contained HTML report.
func (r *run) writeHTML(w io.Writer) error {
	s := r.series
	var charts []chart
	xOf := func(sec float64) float64 { return cw * sec / math.Max(1, float64(r.dur)) }
	var bands []band
	for _, o := range r.outages {
		bands = append(bands, band{X: xOf(float64(o.start)), W: xOf(float64(o.end - o.start)), Color: "#ffcdd2",
			Label: fmt.Sprintf("outage (event %d)", o.idx)})
	}
	for _, in := range r.rep.Incidents {
		e := float64(r.dur)
		if in.ResolvedAtS != nil {
			e = *in.ResolvedAtS
		}
		bands = append(bands, band{X: xOf(in.OpenedAtS), W: math.Max(1, xOf(e-in.OpenedAtS)), Color: "#bbdefb",
			Label: fmt.Sprintf("incident %s %s", in.Provider, in.Scope)})
	}
	for k, p := range r.provs {
		var ymax float64
		for j := range drawStates {
			for _, v := range s.counts[k][j] {
				ymax = math.Max(ymax, float64(v))
			}
		}
		c := chart{Title: p.spec.Name + ": inboxes by state", Bands: bands, YMax: fmt.Sprintf("%.0f", ymax)}
		for j, st := range drawStates {
			vals := make([]float64, len(s.counts[k][j]))
			for x, v := range s.counts[k][j] {
				vals[x] = float64(v)
			}
			ps := pathSpec{D: s.polyline(vals, ymax), Color: stateColor[st], Label: string(st)}
			c.Paths = append(c.Paths, ps)
			c.Legend = append(c.Legend, ps)
		}
		charts = append(charts, c)
	}
	ec := chart{Title: "provider error rate (share of requests failing)", Bands: bands, YMax: "100%"}
	colors := []string{"#1565c0", "#c62828", "#2e7d32"}
	for k, p := range r.provs {
		ps := pathSpec{D: s.polyline(s.errRate[k], 1), Color: colors[k%3], Label: p.spec.Name}
		ec.Paths = append(ec.Paths, ps)
		ec.Legend = append(ec.Legend, ps)
	}
	charts = append(charts, ec)
	var nmax float64
	nv := make([]float64, len(s.notices))
	for k, v := range s.notices {
		nv[k] = float64(v)
		nmax = math.Max(nmax, nv[k])
	}
	nc := chart{Title: "notifications sent (cumulative)", Bands: bands, YMax: fmt.Sprintf("%.0f", nmax)}
	ps := pathSpec{D: s.polyline(nv, math.Max(nmax, 1)), Color: "#c62828", Label: "notifications"}
	nc.Paths, nc.Legend = []pathSpec{ps}, []pathSpec{ps}
	charts = append(charts, nc)

	var sum strings.Builder
	summary(&sum, &r.rep)
	return page.Execute(w, map[string]any{
		"Rep": &r.rep, "Charts": charts, "W": cw, "H": ch, "Summary": sum.String(),
		"Dur": fmt.Sprint(r.sc.Duration.Seconds()/3600) + " h", "Desc": r.sc.Description,
	})
}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>holdfast sim: {{.Rep.Scenario}} ({{.Rep.Policy}})</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:960px;color:#222}
h2{font-size:1.05em;margin:1.4em 0 .3em}svg{background:#fafafa;border:1px solid #ddd}
.legend span{display:inline-block;margin-right:1em;font-size:.85em}.legend i{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}
pre{background:#f4f4f4;padding:1em;font-size:.8em;overflow-x:auto}</style></head><body>
<h1>{{.Rep.Scenario}}: policy {{.Rep.Policy}}</h1>
<p>{{.Desc}}</p>
<p>Time runs left to right over {{.Dur}}. Red bands: ground-truth outages. Blue bands: incidents the engine declared.</p>
<p><b>{{.Rep.WrongfulDisconnects}}</b> wrongful disconnects, <b>{{.Rep.NotificationsSent}}</b> notifications ({{.Rep.StaleNotifications}} stale), {{len .Rep.Incidents}} incidents ({{.Rep.FalseIncidents}} false), {{.Rep.MissedOutages}} missed outages, {{.Rep.Unrecovered}} unrecovered.</p>
{{range .Charts}}<h2>{{.Title}} <small>(y max {{.YMax}})</small></h2>
<svg width="{{$.W}}" height="{{$.H}}" viewBox="0 0 {{$.W}} {{$.H}}" role="img" aria-label="{{.Title}}">
{{range .Bands}}<rect x="{{printf "%.1f" .X}}" y="0" width="{{printf "%.1f" .W}}" height="{{$.H}}" fill="{{.Color}}" fill-opacity="0.6"><title>{{.Label}}</title></rect>{{end}}
{{range .Paths}}<path d="{{.D}}" fill="none" stroke="{{.Color}}" stroke-width="1.5"><title>{{.Label}}</title></path>{{end}}
</svg>
<div class="legend">{{range .Legend}}<span><i style="background:{{.Color}}"></i>{{.Label}}</span>{{end}}</div>
{{end}}
<h2>Summary</h2><pre>{{.Summary}}</pre>
</body></html>
`))

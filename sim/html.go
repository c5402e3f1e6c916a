package sim

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// series holds the time series the HTML report draws.
type series struct {
	zooms   []*zoom
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

// zoom is a fine-grained view of one outage's provider, from shortly before
// the outage to well after its end, so that the recovery is visible.
type zoom struct {
	o        *simOutage
	from, to int64
	step     int64
	t        []int64
	counts   [][]int64
}

func newSeries(r *run) *series {
	s := &series{step: max(60, r.dur/720)}
	for _, o := range r.outages {
		z := &zoom{o: o, from: max(0, o.start-600), to: min(r.dur, o.end+1800)}
		z.step = max(5, (z.to-z.from)/360)
		z.counts = make([][]int64, len(drawStates))
		s.zooms = append(s.zooms, z)
	}
	s.counts = make([][][]int64, len(r.provs))
	for k := range s.counts {
		s.counts[k] = make([][]int64, len(drawStates))
	}
	s.errRate = make([][]float64, len(r.provs))
	return s
}

func (s *series) sample(r *run) {
	for _, z := range s.zooms {
		if r.now < z.from || r.now > z.to || (r.now-z.from)%z.step != 0 {
			continue
		}
		p := r.provs[z.o.prov]
		c := r.eng.Counts(holdfast.Provider(p.spec.Name))
		z.t = append(z.t, r.now)
		for j, st := range drawStates {
			z.counts[j] = append(z.counts[j], c[st])
		}
	}
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
	X, W, Y, H float64
	Color      string
	Label      string
}

const cw, ch = 900.0, 180.0

func (s *series) polyline(vals []float64, ymax float64) string {
	var b strings.Builder
	n := len(vals)
	for k, v := range vals {
		x := cw * float64(k) / math.Max(1, float64(n-1))
		y := ch - 0.92*ch*v/math.Max(ymax, 1e-9) // headroom for the incident strip
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
	bandsFor := func(from, to float64, prov string) []band {
		xOf := func(sec float64) float64 { return cw * (sec - from) / math.Max(1, to-from) }
		clip := func(b band) (band, bool) {
			if b.X > cw || b.X+b.W < 0 {
				return b, false
			}
			if b.X < 0 {
				b.W += b.X
				b.X = 0
			}
			b.W = math.Max(1, math.Min(b.W, cw-b.X))
			return b, true
		}
		var bands []band
		for _, o := range r.outages {
			if prov != "" && r.provs[o.prov].spec.Name != prov {
				continue
			}
			if b, ok := clip(band{X: xOf(float64(o.start)), W: xOf(float64(o.end)) - xOf(float64(o.start)), Y: 0, H: ch,
				Color: "#ffcdd2", Label: fmt.Sprintf("outage (event %d)", o.idx)}); ok {
				bands = append(bands, b)
			}
		}
		for _, in := range r.rep.Incidents {
			if prov != "" && in.Provider != prov {
				continue
			}
			e := float64(r.dur)
			if in.ResolvedAtS != nil {
				e = *in.ResolvedAtS
			}
			if b, ok := clip(band{X: xOf(in.OpenedAtS), W: xOf(e) - xOf(in.OpenedAtS), Y: 0, H: 14, Color: "#1565c0",
				Label: fmt.Sprintf("incident %s %s", in.Provider, in.Scope)}); ok {
				bands = append(bands, b)
			}
		}
		return bands
	}
	bands := bandsFor(0, float64(r.dur), "")
	for k, p := range r.provs {
		var ymax float64
		for j := range drawStates {
			for _, v := range s.counts[k][j] {
				ymax = math.Max(ymax, float64(v))
			}
		}
		c := chart{Title: p.spec.Name + ": inboxes by state", Bands: bandsFor(0, float64(r.dur), p.spec.Name), YMax: fmt.Sprintf("%.0f", ymax)}
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
	for _, z := range s.zooms {
		var ymax float64
		for j := range drawStates {
			for _, v := range z.counts[j] {
				ymax = math.Max(ymax, float64(v))
			}
		}
		name := r.provs[z.o.prov].spec.Name
		c := chart{Title: fmt.Sprintf("%s around outage %d: inboxes by state, %s to %s", name, z.o.idx,
			(time.Duration(z.from) * time.Second).String(), (time.Duration(z.to) * time.Second).String()),
			Bands: bandsFor(float64(z.from), float64(z.to), name), YMax: fmt.Sprintf("%.0f", ymax)}
		for j, st := range drawStates {
			vals := make([]float64, len(z.counts[j]))
			for x, v := range z.counts[j] {
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
<p>Time runs left to right over {{.Dur}}. Red bands: ground-truth outages. Blue strips along the top: incidents the engine declared. Each outage also gets a close-up of its provider, from 10 minutes before to 30 minutes after it.</p>
<p><b>{{.Rep.WrongfulDisconnects}}</b> wrongful disconnects, <b>{{.Rep.NotificationsSent}}</b> notifications ({{.Rep.StaleNotifications}} stale), {{len .Rep.Incidents}} incidents ({{.Rep.FalseIncidents}} false), {{.Rep.MissedOutages}} missed outages, {{.Rep.Unrecovered}} unrecovered.</p>
<p>Recovery p999 {{with .Rep.RecoveryS.P999}}{{.}} s{{else}}none{{end}} against a capacity bound of {{with .Rep.RecoveryBoundS}}{{.}} s{{else}}none{{end}} (the shortest time the provider's spare capacity answers the recovery's requests): ratio <b>{{with .Rep.RecoveryRatio}}{{.}}{{else}}none{{end}}</b>. {{.Rep.RecoveryRequests.Throttled}} of {{.Rep.RecoveryRequests.Total}} recovery requests throttled; {{.Rep.ProviderRequests.ThrottleStormS}} s of throttle storm (a provider throttling over 10% of its requests over 10 s).</p>
{{range .Charts}}<h2>{{.Title}} <small>(y max {{.YMax}})</small></h2>
<svg width="{{$.W}}" height="{{$.H}}" viewBox="0 0 {{$.W}} {{$.H}}" role="img" aria-label="{{.Title}}">
{{range .Bands}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.0f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.0f" .H}}" fill="{{.Color}}" fill-opacity="0.6"><title>{{.Label}}</title></rect>{{end}}
{{range .Paths}}<path d="{{.D}}" fill="none" stroke="{{.Color}}" stroke-width="1.5"><title>{{.Label}}</title></path>{{end}}
</svg>
<div class="legend">{{range .Legend}}<span><i style="background:{{.Color}}"></i>{{.Label}}</span>{{end}}</div>
{{end}}
<h2>Summary</h2><pre>{{.Summary}}</pre>
</body></html>
`))

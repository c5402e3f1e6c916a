package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// stateColors are the states' colours in charts, the same as the
// .st-* classes of the style sheet; each has a contrast of at least 3:1
// against white.
var stateColors = map[holdfast.State]string{
	holdfast.StateConnected:      "#1a7f37",
	holdfast.StateConnecting:     "#0969da",
	holdfast.StateDegraded:       "#9a6700",
	holdfast.StateSuspect:        "#bc4c00",
	holdfast.StatePaused:         "#8250df",
	holdfast.StateNeedsReconnect: "#cf222e",
	holdfast.StateNeedsAdmin:     "#6e2b3c",
}

// chartStates is the order in which states stack, the healthy ones at
// the bottom.
var chartStates = []holdfast.State{
	holdfast.StateConnected, holdfast.StateConnecting, holdfast.StateDegraded, holdfast.StateSuspect,
	holdfast.StatePaused, holdfast.StateNeedsReconnect, holdfast.StateNeedsAdmin,
}

// barRow is one provider's bar: its inboxes per state.
type barRow struct {
	Label  string
	Counts map[holdfast.State]int64
	Total  int64
}

// stackedBars draws one horizontal bar per row, each as wide as the
// largest row's total, split by state.
func stackedBars(title string, rows []barRow) template.HTML {
	const w, rowH, labelW, gap = 720.0, 28.0, 110.0, 10.0
	h := float64(len(rows))*(rowH+gap) + gap
	var max int64
	for _, r := range rows {
		if r.Total > max {
			max = r.Total
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	for i, r := range rows {
		y := gap + float64(i)*(rowH+gap)
		fmt.Fprintf(&b, `<text x="0" y="%.1f" class="axis-label" dominant-baseline="middle">%s</text>`, y+rowH/2, esc(r.Label))
		x := labelW
		for _, st := range chartStates {
			n := r.Counts[st]
			if n == 0 || max == 0 {
				continue
			}
			sw := (w - labelW - 70) * float64(n) / float64(max)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s: %d %s</title></rect>`,
				x, y, sw, rowH, stateColors[st], esc(r.Label), n, esc(stateLabel(st)))
			x += sw
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="axis-label" dominant-baseline="middle">%d</text>`, x+6, y+rowH/2, r.Total)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// marker is a labelled moment on a time chart.
type marker struct {
	At    time.Time
	Label string
}

// timeChart draws the inboxes per state over [from, to] as stacked areas,
// from snapshots filtered to provider (all providers when empty). A gap of
// more than three minutes between snapshots (holdfast was down) is left
// blank rather than bridged.
func timeChart(title string, snaps []holdfast.FleetSnapshot, provider holdfast.Provider, from, to time.Time, markers []marker) template.HTML {
	const w, h, left, right, top, bottom = 720.0, 252.0, 52.0, 12.0, 30.0, 30.0
	pw, ph := w-left-right, h-top-bottom
	type point struct {
		at     time.Time
		counts [7]int64 // by chartStates
		total  int64
		bad    int64
	}
	var pts []point
	for _, s := range snaps {
		if s.At.Before(from) || s.At.After(to) {
			continue
		}
		p := point{at: s.At}
		for _, c := range s.Counts {
			if provider != "" && c.Provider != provider {
				continue
			}
			for i, st := range chartStates {
				if c.State == st {
					p.counts[i] += c.Count
				}
			}
			p.total += c.Count
			if c.State != holdfast.StateConnected {
				p.bad += c.Count
			}
		}
		pts = append(pts, p)
	}
	// Split at gaps, then keep at most about 360 points: in each bucket the
	// point with the most inboxes out of the connected state, so that short
	// trouble stays visible.
	var segs [][]point
	for i, p := range pts {
		if i == 0 || p.at.Sub(pts[i-1].at) > 3*time.Minute {
			segs = append(segs, nil)
		}
		segs[len(segs)-1] = append(segs[len(segs)-1], p)
	}
	bucket := (len(pts) + 359) / 360
	if bucket > 1 {
		for si, seg := range segs {
			var out []point
			for i := 0; i < len(seg); i += bucket {
				best := seg[i]
				for _, p := range seg[i:min(i+bucket, len(seg))] {
					if p.bad > best.bad {
						best = p
					}
				}
				out = append(out, best)
			}
			segs[si] = out
		}
	}
	var max int64
	for _, p := range pts {
		if p.total > max {
			max = p.total
		}
	}
	ymax := niceCeil(max)
	span := to.Sub(from)
	if span <= 0 {
		span = time.Minute
	}
	xOf := func(t time.Time) float64 { return left + pw*float64(t.Sub(from))/float64(span) }
	yOf := func(v int64) float64 { return top + ph - ph*float64(v)/float64(ymax) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	// Axes and grid.
	for i := 0; i <= 4; i++ {
		v := ymax * int64(i) / 4
		y := yOf(v)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, left, w-right, y, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="axis-label" text-anchor="end" dominant-baseline="middle">%d</text>`, left-6, y, v)
	}
	step := tickStep(span)
	for t := from.Truncate(step).Add(step); !t.After(to); t = t.Add(step) {
		x := xOf(t)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, x, x, top, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="axis-label" text-anchor="middle">%s</text>`, x, h-10, t.UTC().Format("15:04"))
	}
	// Stacked areas, one path per state and segment.
	for _, seg := range segs {
		lower := make([]int64, len(seg))
		for si := range chartStates {
			upper := make([]int64, len(seg))
			some := false
			for i, p := range seg {
				upper[i] = lower[i] + p.counts[si]
				some = some || p.counts[si] > 0
			}
			if some {
				var d strings.Builder
				for i, p := range seg {
					x := xOf(p.at)
					cmd := "L"
					if i == 0 {
						cmd = "M"
					}
					// One-minute steps: the count holds until the next snapshot.
					fmt.Fprintf(&d, "%s%.1f %.1f", cmd, x, yOf(upper[i]))
					if i+1 < len(seg) {
						fmt.Fprintf(&d, "H%.1f", xOf(seg[i+1].at))
					} else {
						fmt.Fprintf(&d, "H%.1f", math.Min(x+pw/float64(max64(int64(span/time.Minute), 1)), left+pw))
					}
				}
				for i := len(seg) - 1; i >= 0; i-- {
					x := xOf(seg[i].at)
					if i+1 < len(seg) {
						fmt.Fprintf(&d, "L%.1f %.1fH%.1f", xOf(seg[i+1].at), yOf(lower[i]), x)
					} else {
						fmt.Fprintf(&d, "L%.1f %.1fH%.1f", math.Min(x+pw/float64(max64(int64(span/time.Minute), 1)), left+pw), yOf(lower[i]), x)
					}
				}
				d.WriteString("Z")
				fmt.Fprintf(&b, `<path d="%s" fill="%s"><title>%s</title></path>`, d.String(), stateColors[chartStates[si]], esc(stateLabel(chartStates[si])))
			}
			lower = upper
		}
	}
	if len(pts) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" class="empty">No fleet snapshots in this window</text>`, left+pw/2, top+ph/2)
	}
	// Labels go on two rows, the second when the first one's last label
	// is too close.
	lastX := [2]float64{math.Inf(-1), math.Inf(-1)}
	for _, m := range markers {
		if m.At.Before(from) || m.At.After(to) {
			continue
		}
		x := xOf(m.At)
		row := 0
		if x-lastX[0] < 110 {
			row = 1
		}
		lastX[row] = x
		y := top - 18 + 13*float64(row)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="marker"/>`, x, x, y+3, top+ph)
		anchor, lx := "start", x+3
		if x > left+pw*0.8 {
			anchor, lx = "end", x-3
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="marker-label" text-anchor="%s">%s</text>`, lx, y, anchor, esc(m.Label))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axis"/>`, left, w-right, top+ph, top+ph)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// snapshotGap is the longest time between two fleet snapshots that a
// chart bridges; a longer one means holdfast was down.
const snapshotGap = 3 * time.Minute

// withChanges returns provider p's snapshots over [from, to] with a point
// added at each of changes (state changes of p's inboxes), so that a chart
// shows what happened between the snapshots, a minute apart. A change
// moves one inbox from the counts of the point before it, provided the
// last snapshot is at most snapshotGap older; each snapshot then sets the
// counts again, making up for the changes not given (inboxes not read,
// events past a read limit). The last snapshot before from, if at most
// snapshotGap older, starts the series at from.
func withChanges(snaps []holdfast.FleetSnapshot, p holdfast.Provider, changes []holdfast.Event, from, to time.Time) []holdfast.FleetSnapshot {
	changes = slices.Clone(changes)
	slices.SortStableFunc(changes, func(a, b holdfast.Event) int { return a.At.Compare(b.At) })
	var (
		out     []holdfast.FleetSnapshot
		counts  map[holdfast.State]int64 // nil before the first snapshot
		snapped time.Time                // when counts were last set by a snapshot
	)
	emit := func(at time.Time) {
		if at.Before(from) {
			at = from
		}
		s := holdfast.FleetSnapshot{At: at}
		for _, st := range holdfast.States {
			if n := counts[st]; n > 0 {
				s.Counts = append(s.Counts, holdfast.InboxCount{Provider: p, State: st, Count: n})
			}
		}
		if n := len(out); n > 0 && out[n-1].At.Equal(at) {
			out[n-1] = s
		} else {
			out = append(out, s)
		}
	}
	ci := 0
	// apply applies the changes up to until.
	apply := func(until time.Time) {
		for ; ci < len(changes) && !changes[ci].At.After(until); ci++ {
			ev := changes[ci]
			if counts == nil || ev.At.Sub(snapped) > snapshotGap || ev.At.After(to) || ev.OldState == ev.NewState {
				continue
			}
			if ev.OldState != "" {
				if counts[ev.OldState] == 0 {
					continue // the snapshot disagrees; the next one sets it right
				}
				counts[ev.OldState]--
			}
			if ev.NewState != "" {
				counts[ev.NewState]++
			}
			emit(ev.At)
		}
	}
	for _, s := range snaps {
		if s.At.After(to) {
			break
		}
		if s.At.Before(from.Add(-snapshotGap)) {
			continue
		}
		// Changes at the time of a snapshot are in it.
		apply(s.At)
		counts, snapped = map[holdfast.State]int64{}, s.At
		for _, c := range s.Counts {
			if c.Provider == p {
				counts[c.State] += c.Count
			}
		}
		emit(s.At)
	}
	apply(to)
	return out
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// niceCeil returns the top of a value axis with four grid steps: four
// times a step of 1, 2, 2.5 or 5 times a power of ten, at least v.
func niceCeil(v int64) int64 {
	need := max64((v+3)/4, 1)
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{10, 20, 25, 50} {
			if s := m * p / 10; s >= need && s*10 == m*p {
				return 4 * s
			}
		}
	}
}

// tickStep picks a time step giving at most about eight ticks over span.
func tickStep(span time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour} {
		if span/s <= 8 {
			return s
		}
	}
	return 24 * time.Hour
}

func esc(s string) string { return html.EscapeString(s) }

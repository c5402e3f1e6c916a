package dashboard

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/monitor"
)

// fleetData feeds fleet.html.
type fleetData struct {
	Rows         []barRow
	Totals       barRow
	Bars         template.HTML
	Charts       []namedChart
	PendingHeld  int
	PendingNotes string
	LastSnapshot time.Time
	StaleSince   bool
}

// namedChart is a chart with a heading.
type namedChart struct {
	Heading string
	SVG     template.HTML
}

// fleetPage serves GET /ui/: inboxes by state per provider and the last
// 24 hours.
func (d *dash) fleetPage(r *http.Request, _ *session) (*view, error) {
	ctx := r.Context()
	now := d.cfg.Clock.Now().UTC()
	counts, err := d.cfg.Store.CountInboxes(ctx)
	if err != nil {
		return nil, err
	}
	fd := &fleetData{Totals: barRow{Label: "all providers", Counts: map[holdfast.State]int64{}}}
	for _, p := range holdfast.Providers {
		row := barRow{Label: string(p), Counts: map[holdfast.State]int64{}}
		for _, c := range counts {
			if c.Provider == p {
				row.Counts[c.State] += c.Count
				row.Total += c.Count
				fd.Totals.Counts[c.State] += c.Count
				fd.Totals.Total += c.Count
			}
		}
		fd.Rows = append(fd.Rows, row)
	}
	fd.Bars = stackedBars("Inboxes by state per provider", fd.Rows)
	from := now.Add(-24 * time.Hour)
	snaps, err := d.cfg.Store.FleetSnapshots(ctx, from)
	if err != nil {
		return nil, err
	}
	if len(snaps) > 0 {
		fd.LastSnapshot = snaps[len(snaps)-1].At
	}
	fd.StaleSince = now.Sub(fd.LastSnapshot) > 5*time.Minute
	opened, err := d.cfg.Store.Incidents(ctx, false, 100)
	if err != nil {
		return nil, err
	}
	fd.Charts = append(fd.Charts, namedChart{"All providers", timeChart("Inboxes by state over the last 24 hours, all providers", snaps, "", from, now, incidentMarkers(opened, ""))})
	for _, row := range fd.Rows {
		if row.Total == 0 {
			continue
		}
		p := holdfast.Provider(row.Label)
		fd.Charts = append(fd.Charts, namedChart{row.Label, timeChart("Inboxes by state over the last 24 hours, "+row.Label, snaps, p, from, now, incidentMarkers(opened, p))})
	}
	held, err := d.cfg.Store.FindHeldActions(ctx, holdfast.HeldActionFilter{PendingOnly: true, Limit: 1000})
	if err != nil {
		return nil, err
	}
	fd.PendingHeld = len(held)
	pending, err := d.cfg.Store.NoticeRecords(ctx, holdfast.NoticeFilter{Status: holdfast.NoticePending, Limit: 1000})
	if err != nil {
		return nil, err
	}
	fd.PendingNotes = countText(len(pending), 1000)
	return &view{Template: "fleet", Title: "Fleet", Nav: "fleet", Refresh: true, Data: fd}, nil
}

// incidentMarkers marks when each incident of provider (all when empty)
// opened and resolved.
func incidentMarkers(ins []*holdfast.Incident, p holdfast.Provider) []marker {
	var out []marker
	for _, in := range ins {
		if p != "" && in.Provider != p {
			continue
		}
		out = append(out, marker{At: in.OpenedAt, Label: fmt.Sprintf("#%d opened", in.ID)})
		if !in.Open() {
			out = append(out, marker{At: in.ResolvedAt, Label: fmt.Sprintf("#%d resolved", in.ID)})
		}
	}
	return out
}

// countText says n, or "n+" when a query capped at limit was full.
func countText(n, limit int) string {
	if n >= limit {
		return strconv.Itoa(n) + "+"
	}
	return strconv.Itoa(n)
}

// incidentsData feeds incidents.html.
type incidentsData struct {
	Providers []providerRow
	Open      []*holdfast.Incident
	Recent    []*holdfast.Incident
	Form      declareForm
}

// providerRow sums up one provider.
type providerRow struct {
	Provider   holdfast.Provider
	Total      int64
	Connected  int64
	Paused     int64
	Trouble    int64
	NeedAction int64
	Incidents  []*holdfast.Incident
}

// declareForm is the declare form's values and what was wrong with them.
type declareForm struct {
	Provider, Tenant, Start, End, Note string
	Problem                            string
}

// incidentsPage serves GET /ui/incidents: providers, open and recent
// incidents, and the form to declare one.
func (d *dash) incidentsPage(r *http.Request, _ *session) (*view, error) {
	return d.incidentsView(r.Context(), declareForm{})
}

func (d *dash) incidentsView(ctx context.Context, form declareForm) (*view, error) {
	counts, err := d.cfg.Store.CountInboxes(ctx)
	if err != nil {
		return nil, err
	}
	all, err := d.cfg.Store.Incidents(ctx, false, 50)
	if err != nil {
		return nil, err
	}
	open, err := d.cfg.Store.Incidents(ctx, true, 100)
	if err != nil {
		return nil, err
	}
	data := &incidentsData{Open: open, Form: form}
	for _, in := range all {
		if !in.Open() {
			data.Recent = append(data.Recent, in)
		}
	}
	for _, p := range holdfast.Providers {
		row := providerRow{Provider: p}
		for _, c := range counts {
			if c.Provider != p {
				continue
			}
			row.Total += c.Count
			switch c.State {
			case holdfast.StateConnected:
				row.Connected += c.Count
			case holdfast.StatePaused:
				row.Paused += c.Count
			case holdfast.StateNeedsReconnect, holdfast.StateNeedsAdmin:
				row.NeedAction += c.Count
			default:
				row.Trouble += c.Count
			}
		}
		for _, in := range open {
			if in.Provider == p {
				row.Incidents = append(row.Incidents, in)
			}
		}
		data.Providers = append(data.Providers, row)
	}
	return &view{Template: "incidents", Title: "Providers and incidents", Nav: "incidents", Refresh: form == (declareForm{}), Data: data, OpenIncidents: open}, nil
}

// timelineEntry is one step of an incident's review.
type timelineEntry struct {
	At   time.Time
	Kind string
	What string
	// Link, if set, is the dashboard page of what the entry is about.
	Link string
}

// incidentData feeds incident.html.
type incidentData struct {
	Incident *holdfast.Incident
	Duration time.Duration
	Timeline []timelineEntry
	Chart    template.HTML
	// ChartWindow says what the chart spans, as "from 5 minutes before
	// the opening to 5 minutes after the resolution".
	ChartWindow string
	// Paused and Resumed count the scope's inboxes the event log shows
	// paused and resumed in the window.
	Paused, Resumed int
	Held            int
	Suppressed      int
	// Scanned is how many of the scope's inboxes were read, and Capped
	// says the scan stopped at its limit.
	Scanned int
	Capped  bool
}

// maxIncidentInboxes bounds how many inboxes an incident page reads the
// event log of.
const maxIncidentInboxes = 1000

// maxIncidentRows bounds how many held actions, and how many suppressed
// notices, an incident page reads: the newest of the incident's.
const maxIncidentRows = 1000

// incidentPage serves GET /ui/incidents/{id}: a post-incident review.
func (d *dash) incidentPage(r *http.Request, _ *session) (*view, error) {
	ctx := r.Context()
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	in, err := d.cfg.Store.IncidentByID(ctx, id)
	if err != nil {
		return nil, err
	}
	now := d.cfg.Clock.Now().UTC()
	end := now
	if !in.Open() {
		end = in.ResolvedAt
	}
	data := &incidentData{Incident: in, Duration: end.Sub(in.OpenedAt)}
	// The review looks a little before the opening (detection lags) and
	// after the resolution (the recovery ramp).
	winFrom, winTo := in.OpenedAt.Add(-30*time.Minute), end.Add(2*time.Hour)
	if winTo.After(now) {
		winTo = now
	}
	// The chart fits the incident: as long again before the opening and
	// after the resolution, at least 5 minutes and at most 6 hours, so that
	// a 20-second incident is not a sliver and a long one keeps its context.
	pad := chartPad(data.Duration)
	chartFrom, chartTo := in.OpenedAt.Add(-pad), end.Add(pad)
	data.ChartWindow = fmt.Sprintf("from %s before the opening to %[1]s after the resolution", padText(pad))
	if in.Open() || !chartTo.Before(now) {
		chartTo = now
		data.ChartWindow = fmt.Sprintf("from %s before the opening until now", padText(pad))
	}
	for _, e := range in.Timeline {
		data.Timeline = append(data.Timeline, timelineEntry{At: e.At, Kind: timelineKind(e.What), What: e.What})
	}

	// The scope's inboxes, for their pauses and resumptions.
	scope := map[string]*holdfast.Inbox{}
	f := holdfast.InboxFilter{Provider: in.Provider, Limit: 500}
	for data.Scanned < maxIncidentInboxes {
		page, err := d.cfg.Store.Inboxes(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, ib := range page {
			data.Scanned++
			if in.InScope(ib) {
				scope[ib.ID] = ib
			}
		}
		if len(page) < f.Limit {
			break
		}
		f.After = page[len(page)-1].ID
		data.Capped = data.Scanned >= maxIncidentInboxes
	}
	type minuteKey struct {
		at   time.Time
		kind string
	}
	grouped := map[minuteKey][]string{}
	first := map[minuteKey]time.Time{}
	note := func(k minuteKey, at time.Time, email string) {
		grouped[k] = append(grouped[k], email)
		if f, ok := first[k]; !ok || at.Before(f) {
			first[k] = at
		}
	}
	// The scope's state changes around the chart's window, which the chart
	// draws between the fleet snapshots.
	var changes []holdfast.Event
	for id, ib := range scope {
		evs, err := d.cfg.Store.Events(ctx, id, holdfast.EventFilter{Limit: 200})
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if !ev.At.Before(chartFrom.Add(-snapshotGap)) && !ev.At.After(chartTo) {
				changes = append(changes, ev)
			}
			if ev.At.Before(winFrom) || ev.At.After(winTo) {
				continue
			}
			switch {
			case ev.NewState == holdfast.StatePaused && ev.OldState != holdfast.StatePaused:
				data.Paused++
				note(minuteKey{ev.At.Truncate(time.Minute), "paused"}, ev.At, ib.Email)
			case ev.OldState == holdfast.StatePaused && ev.NewState != holdfast.StatePaused:
				data.Resumed++
				note(minuteKey{ev.At.Truncate(time.Minute), "resumed"}, ev.At, ib.Email)
			}
		}
	}
	for k, emails := range grouped {
		sort.Strings(emails)
		verb := "paused (nothing destructive while the incident lasts)"
		if k.kind == "resumed" {
			verb = "resumed (out of paused)"
		}
		data.Timeline = append(data.Timeline, timelineEntry{At: first[k], Kind: k.kind, What: fmt.Sprintf("%d %s %s: %s", len(emails), plural(len(emails), "inbox", "inboxes"), verb, listSome(emails, 3))})
	}

	// The store selects the incident's held actions and suppressed
	// notices, the newest first, so that a store holding many from other
	// incidents still shows all of this one's up to the limit. They are
	// added oldest first, so that entries at the same time keep the order
	// they were recorded in.
	held, err := d.cfg.Store.FindHeldActions(ctx, holdfast.HeldActionFilter{
		Provider: in.Provider, Tenant: in.Tenant, Since: winFrom, Until: winTo, Newest: true, Limit: maxIncidentRows,
	})
	if err != nil {
		return nil, err
	}
	for _, h := range slices.Backward(held) {
		who := h.InboxID
		if ib := scope[h.InboxID]; ib != nil {
			who = ib.Email
		}
		if !h.HeldAt.Before(winFrom) && !h.HeldAt.After(winTo) {
			data.Held++
			data.Timeline = append(data.Timeline, timelineEntry{At: h.HeldAt, Kind: "held", Link: "/ui/inboxes/" + h.InboxID,
				What: fmt.Sprintf("held #%d: %s to %s (%s), held by %s", h.ID, who, stateLabel(h.To), h.Reason, h.Why)})
		}
		if h.Done && !h.ClosedAt.Before(winFrom) && !h.ClosedAt.After(winTo) {
			data.Timeline = append(data.Timeline, timelineEntry{At: h.ClosedAt, Kind: "held", Link: "/ui/inboxes/" + h.InboxID,
				What: fmt.Sprintf("held #%d closed: %s", h.ID, h.Outcome)})
		}
	}

	cancelled, err := d.cfg.Store.NoticeRecords(ctx, holdfast.NoticeFilter{
		Status: holdfast.NoticeCancelled, StatusReason: holdfast.NoticeReasonIncident, UpdatedSince: winFrom, UpdatedUntil: winTo, Newest: true, Limit: maxIncidentRows,
	})
	if err != nil {
		return nil, err
	}
	for _, n := range slices.Backward(cancelled) {
		ib := scope[n.InboxID]
		if ib == nil {
			continue
		}
		data.Suppressed++
		data.Timeline = append(data.Timeline, timelineEntry{At: n.UpdatedAt, Kind: "notice", Link: "/ui/inboxes/" + n.InboxID,
			What: fmt.Sprintf("notice #%d to %s suppressed (%s): the incident covers the inbox", n.ID, ib.Email, n.Reason)})
	}
	sort.SliceStable(data.Timeline, func(i, j int) bool { return data.Timeline[i].At.Before(data.Timeline[j].At) })

	snaps, err := d.cfg.Store.FleetSnapshots(ctx, chartFrom.Add(-snapshotGap))
	if err != nil {
		return nil, err
	}
	marks := []marker{{At: in.OpenedAt, Label: "opened"}}
	if !in.Open() {
		marks = append(marks, marker{At: in.ResolvedAt, Label: "resolved"})
	}
	data.Chart = timeChart(fmt.Sprintf("%s inboxes by state over incident %d", in.Provider, in.ID),
		withChanges(snaps, in.Provider, changes, chartFrom, chartTo), in.Provider, chartFrom, chartTo, marks)
	return &view{Template: "incident", Title: fmt.Sprintf("Incident %d", in.ID), Nav: "incidents", Refresh: true, Data: data}, nil
}

// chartPad is how far an incident's chart reaches before its opening and
// after its resolution: its duration, rounded up to a minute, at least 5
// minutes and at most 6 hours.
func chartPad(d time.Duration) time.Duration {
	if r := d.Truncate(time.Minute); r < d {
		d = r + time.Minute
	}
	return min(max(d, 5*time.Minute), 6*time.Hour)
}

// padText says a whole number of minutes as people read it: "5 minutes",
// "1 hour", "2 hours 13 minutes".
func padText(d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	var parts []string
	if h > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", h, plural(h, "hour", "hours")))
	}
	if m > 0 || h == 0 {
		parts = append(parts, fmt.Sprintf("%d %s", m, plural(m, "minute", "minutes")))
	}
	return strings.Join(parts, " ")
}

// timelineKind sorts the engine's timeline sentences into the phases of
// a review.
func timelineKind(what string) string {
	switch w := strings.ToLower(what); {
	case strings.HasPrefix(w, "opened"), strings.HasPrefix(w, "retroactive"), strings.Contains(w, "declared"):
		return "detection"
	case strings.Contains(w, "pausing"):
		return "paused"
	case strings.Contains(w, "held"):
		return "held"
	case strings.HasPrefix(w, "resolved"):
		return "resolved"
	case strings.Contains(w, "recovery"), strings.Contains(w, "probes succeed"):
		return "recovery"
	}
	return "note"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// listSome lists the first n items and says how many more there are.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

// pathID reads a numeric {id}; anything else cannot exist.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, holdfast.ErrNotFound
	}
	return id, nil
}

// heldRow is a held action with its inbox's email.
type heldRow struct {
	*holdfast.HeldAction
	Email string
}

// The held actions page's bounds.
const (
	heldPendingLimit = 1000
	heldClosedLimit  = 50
)

// heldData feeds held.html.
type heldData struct {
	Pending []heldRow
	Closed  []heldRow
}

// heldPage serves GET /ui/held: the newest pending held actions (up to
// heldPendingLimit, listed oldest first), with a release button, and the
// last ones closed.
func (d *dash) heldPage(r *http.Request, _ *session) (*view, error) {
	ctx := r.Context()
	pending, err := d.cfg.Store.FindHeldActions(ctx, holdfast.HeldActionFilter{PendingOnly: true, Newest: true, Limit: heldPendingLimit})
	if err != nil {
		return nil, err
	}
	closed, err := d.cfg.Store.FindHeldActions(ctx, holdfast.HeldActionFilter{DoneOnly: true, Newest: true, Limit: heldClosedLimit})
	if err != nil {
		return nil, err
	}
	data := &heldData{}
	emails := map[string]string{}
	email := func(id string) string {
		if e, ok := emails[id]; ok {
			return e
		}
		e := "(deleted)"
		if ib, err := d.cfg.Store.Inbox(ctx, id); err == nil {
			e = ib.Email
		}
		emails[id] = e
		return e
	}
	for _, h := range slices.Backward(pending) {
		data.Pending = append(data.Pending, heldRow{h, email(h.InboxID)})
	}
	for _, h := range closed {
		data.Closed = append(data.Closed, heldRow{h, email(h.InboxID)})
	}
	return &view{Template: "held", Title: "Held actions", Nav: "held", Refresh: true, Data: data}, nil
}

// outboxStatuses are the outbox's tabs.
var outboxStatuses = []holdfast.NoticeStatus{
	holdfast.NoticePending, holdfast.NoticeSending, holdfast.NoticeSent, holdfast.NoticeFollowedUp, holdfast.NoticeCancelled,
}

// outboxTab is one status of the outbox with how many notices are in it.
type outboxTab struct {
	Status   holdfast.NoticeStatus
	Count    string
	Selected bool
}

// outboxData feeds outbox.html.
type outboxData struct {
	Tabs    []outboxTab
	Status  holdfast.NoticeStatus
	Notices []*holdfast.NoticeRecord
	Capped  bool
}

// outboxLimit is the most notices the store returns for one status.
const outboxLimit = 1000

// outboxPage serves GET /ui/outbox?status=: the notification outbox, the
// newest notices of one status first.
func (d *dash) outboxPage(r *http.Request, _ *session) (*view, error) {
	ctx := r.Context()
	status := holdfast.NoticeStatus(r.URL.Query().Get("status"))
	if status == "" {
		status = holdfast.NoticePending
	}
	if !slices.Contains(outboxStatuses, status) {
		return nil, holdfast.Invalidf("status", "%q is not a notice status", status)
	}
	data := &outboxData{Status: status}
	for _, st := range outboxStatuses {
		ns, err := d.cfg.Store.NoticeRecords(ctx, holdfast.NoticeFilter{Status: st, Newest: true, Limit: outboxLimit})
		if err != nil {
			return nil, err
		}
		data.Tabs = append(data.Tabs, outboxTab{Status: st, Count: countText(len(ns), outboxLimit), Selected: st == status})
		if st == status {
			data.Notices, data.Capped = ns, len(ns) >= outboxLimit
		}
	}
	return &view{Template: "outbox", Title: "Notification outbox", Nav: "outbox", Refresh: true, Data: data}, nil
}

// inboxesData feeds inboxes.html.
type inboxesData struct {
	Query    string
	State    string
	Provider string
	Results  []*holdfast.Inbox
	Searched bool
	// Next continues a scan that stopped, as a query string.
	Next    string
	Scanned int
}

// Search bounds.
const (
	searchPage    = 50
	searchScanMax = 10000
)

// inboxesPage serves GET /ui/inboxes?q=&state=&provider=&after=: inbox
// search by ID, exact email or owner address (all the owner's inboxes),
// prefix of either, state and provider.
func (d *dash) inboxesPage(r *http.Request, _ *session) (*view, error) {
	ctx := r.Context()
	q := r.URL.Query()
	data := &inboxesData{Query: strings.TrimSpace(q.Get("q")), State: q.Get("state"), Provider: q.Get("provider")}
	var f holdfast.InboxFilter
	if data.State != "" {
		st, err := holdfast.ParseState(data.State)
		if err != nil {
			return nil, holdfast.Invalidf("state", "%v", err)
		}
		f.State = st
	}
	if data.Provider != "" {
		p, err := holdfast.ParseProvider(data.Provider)
		if err != nil {
			return nil, holdfast.Invalidf("provider", "%v", err)
		}
		f.Provider = p
	}
	v := &view{Template: "inboxes", Title: "Inboxes", Nav: "inboxes", Data: data}
	if data.Query == "" && f.State == "" && f.Provider == "" && !q.Has("after") {
		return v, nil
	}
	data.Searched = true
	match := func(ib *holdfast.Inbox) bool {
		return (f.State == "" || ib.State == f.State) && (f.Provider == "" || ib.Provider == f.Provider)
	}
	seen := map[string]bool{}
	add := func(ib *holdfast.Inbox) {
		if !seen[ib.ID] && match(ib) {
			seen[ib.ID] = true
			data.Results = append(data.Results, ib)
		}
	}
	after := q.Get("after")
	if after == "" && data.Query != "" {
		// Exact matches first, wherever they are.
		if holdfast.ValidID("inb", data.Query) {
			ib, err := d.cfg.Store.Inbox(ctx, data.Query)
			if err == nil {
				add(ib)
			} else if !errors.Is(err, holdfast.ErrNotFound) {
				return nil, err
			}
		}
		if strings.Contains(data.Query, "@") {
			for _, p := range holdfast.Providers {
				ib, err := d.cfg.Store.InboxByEmail(ctx, p, data.Query)
				if err == nil {
					add(ib)
				} else if !errors.Is(err, holdfast.ErrNotFound) {
					return nil, err
				}
			}
			owned, err := d.cfg.Store.InboxesByOwner(ctx, data.Query)
			if err != nil {
				return nil, err
			}
			for _, ib := range owned {
				add(ib)
			}
		}
	}
	prefix := strings.ToLower(data.Query)
	f.After, f.Limit = after, 500
	for len(data.Results) < searchPage {
		page, err := d.cfg.Store.Inboxes(ctx, f)
		if err != nil {
			return nil, err
		}
		for i, ib := range page {
			data.Scanned++
			if strings.HasPrefix(strings.ToLower(ib.Email), prefix) || (ib.OwnerEmail != "" && strings.HasPrefix(strings.ToLower(ib.OwnerEmail), prefix)) {
				add(ib)
			}
			if len(data.Results) >= searchPage || data.Scanned >= searchScanMax {
				if i < len(page)-1 || len(page) == f.Limit {
					data.Next = url.Values{"q": {data.Query}, "state": {data.State}, "provider": {data.Provider}, "after": {ib.ID}}.Encode()
				}
				break
			}
		}
		if data.Next != "" || len(page) < f.Limit || data.Scanned >= searchScanMax {
			break
		}
		f.After = page[len(page)-1].ID
	}
	return v, nil
}

// inboxData feeds inbox.html.
type inboxData struct {
	Inbox     *holdfast.Inbox
	Events    []holdfast.Event
	Older     int64
	Notices   []*holdfast.NoticeRecord
	Held      []*holdfast.HeldAction
	StatusURL string
}

// inboxPage serves GET /ui/inboxes/{id}?before=: an inbox and its full
// history.
func (d *dash) inboxPage(r *http.Request, _ *session) (*view, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	if !holdfast.ValidID("inb", id) {
		return nil, holdfast.ErrNotFound // no inbox has an ID of another shape
	}
	ib, err := d.cfg.Store.Inbox(ctx, id)
	if err != nil {
		return nil, err
	}
	var before int64
	if b := r.URL.Query().Get("before"); b != "" {
		if before, err = strconv.ParseInt(b, 10, 64); err != nil || before <= 0 {
			return nil, holdfast.Invalidf("before", "%q is not an event ID", b)
		}
	}
	const pageSize = 100
	evs, err := d.cfg.Store.Events(ctx, ib.ID, holdfast.EventFilter{Before: before, Limit: pageSize})
	if err != nil {
		return nil, err
	}
	data := &inboxData{Inbox: ib, Events: evs}
	if len(evs) == pageSize {
		data.Older = evs[len(evs)-1].ID
	}
	// The inbox's newest notices and held actions, listed oldest first.
	if data.Notices, err = d.cfg.Store.NoticeRecords(ctx, holdfast.NoticeFilter{InboxID: ib.ID, Newest: true, Limit: pageSize}); err != nil {
		return nil, err
	}
	slices.Reverse(data.Notices)
	if data.Held, err = d.cfg.Store.FindHeldActions(ctx, holdfast.HeldActionFilter{InboxID: ib.ID, Newest: true, Limit: pageSize}); err != nil {
		return nil, err
	}
	slices.Reverse(data.Held)
	if d.cfg.StatusURL != nil {
		data.StatusURL = d.cfg.StatusURL(ib.Email, d.cfg.Clock.Now())
	}
	return &view{Template: "inbox", Title: ib.Email, Nav: "inboxes", Refresh: true, Data: data}, nil
}

// handleDeclare serves POST /ui/incidents.
func (d *dash) handleDeclare(w http.ResponseWriter, r *http.Request, s *session) {
	form := declareForm{
		Provider: r.PostForm.Get("provider"), Tenant: strings.TrimSpace(r.PostForm.Get("tenant")),
		Start: strings.TrimSpace(r.PostForm.Get("start")), End: strings.TrimSpace(r.PostForm.Get("end")),
		Note: strings.TrimSpace(r.PostForm.Get("note")),
	}
	decl, err := d.parseDeclaration(form)
	var in *holdfast.Incident
	if err == nil {
		in, err = d.cfg.Health.Declare(r.Context(), decl)
	}
	var inv *holdfast.InvalidError
	switch {
	case err == nil:
		d.log.InfoContext(r.Context(), "incident declared from the dashboard", "incident_id", in.ID, "provider", in.Provider, "tenant", in.Tenant, "key_id", s.KeyID)
		http.Redirect(w, r, fmt.Sprintf("/ui/incidents/%d?done=declared", in.ID), http.StatusSeeOther)
		return
	case errors.As(err, &inv):
		form.Problem = "Check the form: " + err.Error()
	case errors.Is(err, holdfast.ErrConflict):
		form.Problem = "An open incident already covers this provider or tenant."
	default:
		d.writeError(w, r, s, err)
		return
	}
	v, verr := d.incidentsView(r.Context(), form)
	if verr != nil {
		d.writeError(w, r, s, verr)
		return
	}
	status := http.StatusBadRequest
	if errors.Is(err, holdfast.ErrConflict) {
		status = http.StatusConflict
	}
	d.writePage(w, r, status, v, s)
}

// parseDeclaration checks the declare form.
func (d *dash) parseDeclaration(f declareForm) (monitor.Declaration, error) {
	p, err := holdfast.ParseProvider(f.Provider)
	if err != nil {
		return monitor.Declaration{}, holdfast.Invalidf("provider", "choose one")
	}
	if len(f.Note) > 2000 {
		return monitor.Declaration{}, holdfast.Invalidf("note", "is longer than 2000 characters")
	}
	decl := monitor.Declaration{Provider: p, Tenant: f.Tenant, Note: f.Note}
	for _, t := range []struct {
		name, in string
		out      *time.Time
	}{{"start", f.Start, &decl.Start}, {"end", f.End, &decl.End}} {
		if t.in == "" {
			continue
		}
		v, ok := parseFormTime(t.in)
		if !ok {
			return decl, holdfast.Invalidf(t.name, "%q is not a time such as 2026-03-01T20:40 (UTC) or 2026-03-01T20:40:00+01:00", t.in)
		}
		*t.out = v
	}
	switch now := d.cfg.Clock.Now(); {
	case decl.Start.After(now):
		return decl, holdfast.Invalidf("start", "is in the future")
	case !decl.End.IsZero() && decl.Start.IsZero():
		return decl, holdfast.Invalidf("start", "is required with an end (a retroactive incident)")
	case !decl.End.IsZero() && decl.End.Before(decl.Start):
		return decl, holdfast.Invalidf("end", "is before the start")
	}
	return decl, nil
}

// parseFormTime reads an RFC 3339 time, or a date and time without zone
// (as a datetime-local field sends it) in UTC.
func parseFormTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// handleResolve serves POST /ui/incidents/{id}/resolve.
func (d *dash) handleResolve(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := pathID(r)
	if err == nil {
		_, err = d.cfg.Health.Resolve(r.Context(), id)
	}
	switch {
	case err == nil:
		d.log.InfoContext(r.Context(), "incident resolved from the dashboard", "incident_id", id, "key_id", s.KeyID)
		http.Redirect(w, r, fmt.Sprintf("/ui/incidents/%d?done=resolved", id), http.StatusSeeOther)
	case errors.Is(err, holdfast.ErrConflict):
		http.Redirect(w, r, fmt.Sprintf("/ui/incidents/%d?done=already_resolved", id), http.StatusSeeOther)
	default:
		d.writeError(w, r, s, err)
	}
}

// handleRelease serves POST /ui/held/{id}/release.
func (d *dash) handleRelease(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := pathID(r)
	if err == nil {
		err = d.cfg.Health.Release(r.Context(), id)
	}
	switch {
	case err == nil:
		d.log.InfoContext(r.Context(), "held action released from the dashboard", "held_action_id", id, "key_id", s.KeyID)
		http.Redirect(w, r, "/ui/held?done=released", http.StatusSeeOther)
	case errors.Is(err, holdfast.ErrConflict):
		http.Redirect(w, r, "/ui/held?done=not_pending", http.StatusSeeOther)
	default:
		d.writeError(w, r, s, err)
	}
}

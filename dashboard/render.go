package dashboard

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// view is what a page handler hands to its template.
type view struct {
	// Template names the page's template file, without .html.
	Template string
	Title    string
	// Nav is the navigation entry the page belongs to.
	Nav string
	// Flash is a one-line outcome of the last action, shown on top.
	Flash string
	// Refresh enables the periodic refresh of the page's content.
	Refresh bool
	Data    any

	// Filled in by render.
	CSRF    string
	KeyName string
	Now     time.Time
	// OpenIncidents feeds the banner shown on every page while an
	// incident is open.
	OpenIncidents []*holdfast.Incident
}

// pageFunc loads a page's data.
type pageFunc func(r *http.Request, s *session) (*view, error)

// render runs a page handler and writes its page, or an error page.
func (d *dash) render(h pageFunc) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		v, err := h(r, s)
		if err != nil {
			d.writeError(w, r, s, err)
			return
		}
		v.Flash = flashText(r.URL.Query().Get("done"))
		d.writePage(w, r, http.StatusOK, v, s)
	}
}

// writePage renders v into the layout.
func (d *dash) writePage(w http.ResponseWriter, r *http.Request, status int, v *view, s *session) {
	v.Now = d.cfg.Clock.Now().UTC()
	if s != nil {
		v.CSRF, v.KeyName = d.csrf(s), s.KeyName
		if v.OpenIncidents == nil {
			open, err := d.cfg.Store.Incidents(r.Context(), true, 100)
			if err != nil {
				d.log.ErrorContext(r.Context(), "dashboard: list open incidents", "err", err)
			}
			v.OpenIncidents = open
		}
	}
	t, ok := d.tmpl[v.Template]
	if !ok {
		d.log.ErrorContext(r.Context(), "dashboard: no such template", "template", v.Template)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		d.log.ErrorContext(r.Context(), "dashboard: render page", "template", v.Template, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError shows an error page: not found, bad input, or an internal
// error whose details go to the log only.
func (d *dash) writeError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong on holdfast's side; the details are in its log."
	var inv *holdfast.InvalidError
	switch {
	case errors.Is(err, holdfast.ErrNotFound):
		status, msg = http.StatusNotFound, "There is nothing here. It may have been deleted, or the address is wrong."
	case errors.As(err, &inv):
		status, msg = http.StatusBadRequest, err.Error()
	default:
		d.log.ErrorContext(r.Context(), "dashboard: page failed", "path", r.URL.Path, "err", err)
	}
	d.writePage(w, r, status, &view{Template: "error", Title: http.StatusText(status), Data: msg}, s)
}

// flashText turns the done= query parameter set by a redirect after a
// POST into a sentence.
func flashText(done string) string {
	switch done {
	case "resolved":
		return "The incident is resolved; the recovery ramp resumes its inboxes."
	case "already_resolved":
		return "The incident was already resolved."
	case "declared":
		return "The incident is declared."
	case "released":
		return "The held action was released: the engine takes it now."
	case "not_pending":
		return "The held action is no longer pending: the inbox recovered or it was already released."
	}
	return ""
}

// parseTemplates parses each page with the layout.
func parseTemplates() (map[string]*template.Template, error) {
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse %s: %w", p, err)
		}
		out[name] = t
	}
	return out, nil
}

// funcs are the template helpers.
var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return duration(now.Sub(t)) + " ago"
	},
	"duration":    duration,
	"stateLabel":  stateLabel,
	"stateClass":  func(s holdfast.State) string { return "st-" + strings.ReplaceAll(string(s), "_", "-") },
	"states":      func() []holdfast.State { return holdfast.States },
	"chartStates": func() []holdfast.State { return chartStates },
	"plural":      func(n int, one, many string) string { return strconv.Itoa(n) + " " + plural(n, one, many) },
	"providers":   func() []holdfast.Provider { return holdfast.Providers },
	"scope": func(in *holdfast.Incident) string {
		if in.Tenant == "" {
			return string(in.Provider) + " (all tenants)"
		}
		return string(in.Provider) + " / " + in.Tenant
	},
	"int64": func(i int64) string { return strconv.FormatInt(i, 10) },
}

// stateLabel is a state as people read it.
func stateLabel(s holdfast.State) string {
	switch s {
	case holdfast.StateNeedsReconnect:
		return "needs reconnect"
	case holdfast.StateNeedsAdmin:
		return "needs admin"
	}
	return string(s)
}

// duration says how long d is, to the minute (seconds under a minute).
func duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days %d h", int(d.Hours())/24, int(d.Hours())%24)
}

// handleStatic serves the embedded style sheet and script.
func (d *dash) handleStatic() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		b, err := fs.ReadFile(d.static, name)
		if err != nil || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		switch path.Ext(name) {
		case ".css":
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
		case ".js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		_, _ = w.Write(b)
	})
}

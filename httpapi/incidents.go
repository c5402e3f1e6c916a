package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/monitor"
)

// Health is the part of the health engine the API drives: incident
// declaration and resolution, held-action release, and knowing which
// inboxes exist. monitor.Monitor implements it.
type Health interface {
	Declare(ctx context.Context, d monitor.Declaration) (*holdfast.Incident, error)
	Resolve(ctx context.Context, id int64) (*holdfast.Incident, error)
	Release(ctx context.Context, id int64) error
	AddInbox(in *holdfast.Inbox) error
	RemoveInbox(id string)
}

var _ Health = (*monitor.Monitor)(nil)

// incidentJSON is an incident as the API shows it.
type incidentJSON struct {
	ID         int64                    `json:"id"`
	Kind       string                   `json:"kind"`
	Provider   holdfast.Provider        `json:"provider"`
	Tenant     string                   `json:"tenant"`
	State      string                   `json:"state"`
	OpenedAt   time.Time                `json:"opened_at"`
	ResolvedAt *time.Time               `json:"resolved_at"`
	Evidence   string                   `json:"evidence"`
	Affected   int                      `json:"affected"`
	Recovered  int                      `json:"recovered"`
	Timeline   []holdfast.IncidentEntry `json:"timeline"`
}

func toIncidentJSON(in *holdfast.Incident) incidentJSON {
	out := incidentJSON{
		ID: in.ID, Kind: string(in.Kind), Provider: in.Provider, Tenant: in.Tenant, State: "open",
		OpenedAt: in.OpenedAt, Evidence: in.Evidence, Affected: in.Affected, Recovered: in.Recovered,
		Timeline: in.Timeline,
	}
	if !in.Open() {
		out.State = "resolved"
		t := in.ResolvedAt
		out.ResolvedAt = &t
	}
	if out.Timeline == nil {
		out.Timeline = []holdfast.IncidentEntry{}
	}
	return out
}

// declareRequest declares an incident. With end it is retroactive: a past
// window whose disconnects are re-verified and undone.
type declareRequest struct {
	Provider string `json:"provider"`
	Tenant   string `json:"tenant"`
	Start    string `json:"start"`
	End      string `json:"end"`
	Note     string `json:"note"`
}

// handleDeclareIncident: POST /v1/incidents.
func (s *server) handleDeclareIncident() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[declareRequest](r, w, s.cfg.MaxBodyBytes)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if req.Provider == "" {
			s.respondErr(w, r, holdfast.Invalidf("provider", "is required (microsoft, google or imap)"))
			return
		}
		p, err := holdfast.ParseProvider(req.Provider)
		if err != nil {
			s.respondErr(w, r, holdfast.Invalidf("provider", "%v", err))
			return
		}
		if len(req.Note) > 2000 {
			s.respondErr(w, r, holdfast.Invalidf("note", "is longer than 2000 characters"))
			return
		}
		d := monitor.Declaration{Provider: p, Tenant: req.Tenant, Note: req.Note}
		for _, f := range []struct {
			name string
			in   string
			out  *time.Time
		}{{"start", req.Start, &d.Start}, {"end", req.End, &d.End}} {
			if f.in == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, f.in)
			if err != nil {
				s.respondErr(w, r, holdfast.Invalidf(f.name, "%q is not an RFC 3339 time such as 2025-03-01T20:40:00Z", f.in))
				return
			}
			*f.out = t
		}
		switch now := s.cfg.Clock.Now(); {
		case d.Start.After(now):
			s.respondErr(w, r, holdfast.Invalidf("start", "is in the future"))
			return
		case !d.End.IsZero() && d.Start.IsZero():
			s.respondErr(w, r, holdfast.Invalidf("start", "is required with end (a retroactive incident)"))
			return
		case !d.End.IsZero() && d.End.Before(d.Start):
			s.respondErr(w, r, holdfast.Invalidf("end", "is before start"))
			return
		}
		in, err := s.cfg.Health.Declare(r.Context(), d)
		if err != nil {
			if isConflict(err) {
				err = &conflictError{msg: "an open incident already covers this provider or tenant"}
			}
			s.respondErr(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "incident declared", "incident_id", in.ID, "provider", in.Provider, "tenant", in.Tenant, "retroactive", !d.End.IsZero())
		w.Header().Set("Location", "/v1/incidents/"+strconv.FormatInt(in.ID, 10))
		encode(w, http.StatusCreated, toIncidentJSON(in))
	})
}

// pathID reads a numeric {id}; anything else cannot exist.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, holdfast.ErrNotFound
	}
	return id, nil
}

// handleResolveIncident: POST /v1/incidents/{id}/resolve.
func (s *server) handleResolveIncident() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		in, err := s.cfg.Health.Resolve(r.Context(), id)
		if err != nil {
			if isConflict(err) {
				err = &conflictError{msg: "the incident is already resolved"}
			}
			s.respondErr(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "incident resolved by operator", "incident_id", id)
		encode(w, http.StatusOK, toIncidentJSON(in))
	})
}

// handleListIncidents: GET /v1/incidents?state=open|all&limit=.
func (s *server) handleListIncidents() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		openOnly := false
		switch v := r.URL.Query().Get("state"); v {
		case "", "all":
		case "open":
			openOnly = true
		default:
			s.respondErr(w, r, holdfast.Invalidf("state", "%q is not open or all", v))
			return
		}
		limit, err := pageLimit(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		ins, err := s.cfg.Store.Incidents(r.Context(), openOnly, limit)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		out := listJSON[incidentJSON]{Data: make([]incidentJSON, 0, len(ins))}
		for _, in := range ins {
			out.Data = append(out.Data, toIncidentJSON(in))
		}
		encode(w, http.StatusOK, out)
	})
}

// handleGetIncident: GET /v1/incidents/{id}, with its timeline.
func (s *server) handleGetIncident() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		in, err := s.cfg.Store.IncidentByID(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		encode(w, http.StatusOK, toIncidentJSON(in))
	})
}

// heldJSON is a held destructive action as the API shows it.
type heldJSON struct {
	ID       int64             `json:"id"`
	InboxID  string            `json:"inbox_id"`
	Provider holdfast.Provider `json:"provider"`
	Tenant   string            `json:"tenant"`
	To       holdfast.State    `json:"to"`
	Reason   string            `json:"reason"`
	Why      string            `json:"why"`
	HeldAt   time.Time         `json:"held_at"`
	State    string            `json:"state"`
	Outcome  string            `json:"outcome"`
	ClosedAt *time.Time        `json:"closed_at"`
}

func toHeldJSON(h *holdfast.HeldAction) heldJSON {
	out := heldJSON{
		ID: h.ID, InboxID: h.InboxID, Provider: h.Provider, Tenant: h.Tenant, To: h.To,
		Reason: h.Reason, Why: string(h.Why), HeldAt: h.HeldAt, State: "pending", Outcome: string(h.Outcome),
	}
	if h.Done {
		out.State = "done"
		t := h.ClosedAt
		out.ClosedAt = &t
	}
	return out
}

// handleListHeld: GET /v1/held-actions?state=pending|all&order=oldest|newest&limit=.
func (s *server) handleListHeld() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pendingOnly := true
		switch v := r.URL.Query().Get("state"); v {
		case "", "pending":
		case "all":
			pendingOnly = false
		default:
			s.respondErr(w, r, holdfast.Invalidf("state", "%q is not pending or all", v))
			return
		}
		newest := false
		switch v := r.URL.Query().Get("order"); v {
		case "", "oldest":
		case "newest":
			newest = true
		default:
			s.respondErr(w, r, holdfast.Invalidf("order", "%q is not oldest or newest", v))
			return
		}
		limit, err := pageLimit(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		hs, err := s.cfg.Store.FindHeldActions(r.Context(), holdfast.HeldActionFilter{PendingOnly: pendingOnly, Newest: newest, Limit: limit})
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		out := listJSON[heldJSON]{Data: make([]heldJSON, 0, len(hs))}
		for _, h := range hs {
			out.Data = append(out.Data, toHeldJSON(h))
		}
		encode(w, http.StatusOK, out)
	})
}

// handleReleaseHeld: POST /v1/held-actions/{id}/release lets the held
// action go ahead now.
func (s *server) handleReleaseHeld() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if err := s.cfg.Health.Release(r.Context(), id); err != nil {
			if isConflict(err) {
				err = &conflictError{msg: "the held action is no longer pending (the inbox recovered or it was already released)"}
			}
			s.respondErr(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "held action released by operator", "held_action_id", id)
		hs, err := s.cfg.Store.FindHeldActions(r.Context(), holdfast.HeldActionFilter{ID: id, Limit: 1})
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if len(hs) == 1 {
			encode(w, http.StatusOK, toHeldJSON(hs[0]))
			return
		}
		encode(w, http.StatusOK, map[string]any{"id": id, "state": "done", "outcome": "released by operator"})
	})
}

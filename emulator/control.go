package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// controlError is the control API's error body.
type controlError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

// respondErr answers a control request that failed with err.
func respondErr(w http.ResponseWriter, err error) {
	var body controlError
	var invalid *InvalidError
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &invalid):
		status, body.Error.Code, body.Error.Field = http.StatusBadRequest, "invalid", invalid.Field
	case errors.Is(err, ErrNotFound):
		status, body.Error.Code = http.StatusNotFound, "not_found"
	case errors.Is(err, ErrConflict):
		status, body.Error.Code = http.StatusConflict, "conflict"
	case errors.Is(err, ErrFull):
		status, body.Error.Code = http.StatusInsufficientStorage, "full"
	case errors.Is(err, errTooLarge):
		status, body.Error.Code = http.StatusRequestEntityTooLarge, "too_large"
	default:
		body.Error.Code = "internal"
	}
	body.Error.Message = err.Error()
	writeJSON(w, status, body)
}

var errTooLarge = errors.New("request body too large")

// decode reads one JSON object into v, rejecting unknown fields and
// trailing data, and names the bad field in the error.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var (
			syntax  *json.SyntaxError
			typ     *json.UnmarshalTypeError
			tooLong *http.MaxBytesError
		)
		switch {
		case errors.As(err, &tooLong):
			return fmt.Errorf("%w: limit is %d bytes", errTooLarge, tooLong.Limit)
		case errors.As(err, &syntax):
			return &InvalidError{Message: fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)}
		case errors.As(err, &typ):
			if typ.Field == "" {
				return &InvalidError{Message: "request body must be a JSON object"}
			}
			return invalidf(typ.Field, "must be a JSON %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
		case errors.Is(err, io.EOF):
			return &InvalidError{Message: "request body is empty"}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &InvalidError{Message: "request body is truncated JSON"}
		}
		// encoding/json reports unknown fields only as text.
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return invalidf(strings.Trim(name, `"`), "unknown field")
		}
		return &InvalidError{Message: "malformed JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &InvalidError{Message: "request body holds more than one JSON value"}
	}
	return nil
}

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	}
	return "object"
}

func (e *Emulator) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleCreateAccount serves POST /_emulator/accounts.
func (e *Emulator) handleCreateAccount(w http.ResponseWriter, r *http.Request) {
	var a Account
	if err := decode(r, &a); err != nil {
		respondErr(w, err)
		return
	}
	rt, err := e.CreateAccount(a)
	if err != nil {
		respondErr(w, err)
		return
	}
	e.mu.Lock()
	acc := e.accounts[strings.ToLower(strings.TrimSpace(a.Email))]
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"refresh_token": rt, "provider": string(acc.provider), "email": acc.email, "tenant": acc.tenant,
	})
}

// handleRevoke serves POST /_emulator/accounts/{email}/revoke.
func (e *Emulator) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := e.Revoke(r.PathValue("email")); err != nil {
		respondErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleExpireSync serves POST /_emulator/accounts/{email}/expire-sync.
func (e *Emulator) handleExpireSync(w http.ResponseWriter, r *http.Request) {
	if err := e.ExpireSyncState(r.PathValue("email")); err != nil {
		respondErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleDeliver serves POST /_emulator/mail.
func (e *Emulator) handleDeliver(w http.ResponseWriter, r *http.Request) {
	var m Mail
	if err := decode(r, &m); err != nil {
		respondErr(w, err)
		return
	}
	d, err := e.Deliver(m)
	if err != nil {
		respondErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// faultRequest is the body of POST /_emulator/faults; failure_rate is a
// pointer so that an omitted rate (every request) differs from zero.
type faultRequest struct {
	Provider    Provider  `json:"provider"`
	Surfaces    []Surface `json:"surfaces"`
	Tenant      string    `json:"tenant"`
	Email       string    `json:"email"`
	FailureRate *float64  `json:"failure_rate"`
	HTTPStatus  int       `json:"http_status"`
	Body        string    `json:"body"`
	RetryAfterS float64   `json:"retry_after_s"`
	AfterAccept bool      `json:"after_accept"`

	AccountFraction float64       `json:"account_fraction"`
	DurationS       float64       `json:"duration_s"`
	Answers         []FaultAnswer `json:"answers"`
}

// handleAddFault serves POST /_emulator/faults.
func (e *Emulator) handleAddFault(w http.ResponseWriter, r *http.Request) {
	var req faultRequest
	if err := decode(r, &req); err != nil {
		respondErr(w, err)
		return
	}
	f := Fault{Provider: req.Provider, Surfaces: req.Surfaces, Tenant: req.Tenant, Email: req.Email,
		HTTPStatus: req.HTTPStatus, Body: req.Body, RetryAfterS: req.RetryAfterS, AfterAccept: req.AfterAccept,
		AccountFraction: req.AccountFraction, DurationS: req.DurationS, Answers: req.Answers}
	if req.FailureRate != nil {
		if *req.FailureRate <= 0 {
			respondErr(w, invalidf("failure_rate", "must be above 0 and at most 1"))
			return
		}
		f.FailureRate = *req.FailureRate
	}
	id, err := e.AddFault(f)
	if err != nil {
		respondErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

// handleRemoveFault serves DELETE /_emulator/faults/{id}.
func (e *Emulator) handleRemoveFault(w http.ResponseWriter, r *http.Request) {
	if err := e.RemoveFault(r.PathValue("id")); err != nil {
		respondErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleSent serves GET /_emulator/sent?from=EMAIL.
func (e *Emulator) handleSent(w http.ResponseWriter, r *http.Request) {
	from := r.URL.Query().Get("from")
	if from == "" {
		respondErr(w, invalidf("from", "is required"))
		return
	}
	sent, err := e.Sent(from)
	if err != nil {
		respondErr(w, err)
		return
	}
	if sent == nil {
		sent = []SentMessage{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": sent})
}

// handleStats serves GET /_emulator/stats.
func (e *Emulator) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.Stats())
}

// handleStatsConfig serves POST /_emulator/stats/config {"dup_window_ms": N}.
func (e *Emulator) handleStatsConfig(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DupWindowMS *int64 `json:"dup_window_ms"`
	}
	if err := decode(r, &req); err != nil {
		respondErr(w, err)
		return
	}
	if req.DupWindowMS == nil {
		respondErr(w, invalidf("dup_window_ms", "is required"))
		return
	}
	if err := e.SetDupWindow(time.Duration(*req.DupWindowMS) * time.Millisecond); err != nil {
		respondErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"dup_window_ms": *req.DupWindowMS})
}

// handleStatsReset serves POST /_emulator/stats/reset.
func (e *Emulator) handleStatsReset(w http.ResponseWriter, _ *http.Request) {
	e.ResetStats()
	w.WriteHeader(http.StatusNoContent)
}

// handleSentSummary serves GET /_emulator/sent/summary.
func (e *Emulator) handleSentSummary(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.SentSummary())
}

// handleSetCapacity serves POST /_emulator/capacity
// {"provider","capacity_per_s","retry_after_s"}.
func (e *Emulator) handleSetCapacity(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Provider    Provider `json:"provider"`
		PerSecond   float64  `json:"capacity_per_s"`
		RetryAfterS float64  `json:"retry_after_s"`
	}
	if err := decode(r, &req); err != nil {
		respondErr(w, err)
		return
	}
	if err := e.SetCapacity(req.Provider, req.PerSecond, req.RetryAfterS); err != nil {
		respondErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// trafficRequest is the body of POST /_emulator/traffic; emails is "all"
// or a list of addresses.
type trafficRequest struct {
	RatePerSec float64         `json:"rate_per_sec"`
	Emails     json.RawMessage `json:"emails"`
	Seed       uint64          `json:"seed"`
}

// handleStartTraffic serves POST /_emulator/traffic.
func (e *Emulator) handleStartTraffic(w http.ResponseWriter, r *http.Request) {
	var req trafficRequest
	if err := decode(r, &req); err != nil {
		respondErr(w, err)
		return
	}
	t := Traffic{RatePerSec: req.RatePerSec, Seed: req.Seed}
	var all string
	switch {
	case len(req.Emails) == 0 || string(req.Emails) == "null":
	case json.Unmarshal(req.Emails, &all) == nil:
		if all != "all" {
			respondErr(w, invalidf("emails", `must be "all" or a list of addresses`))
			return
		}
	default:
		if err := json.Unmarshal(req.Emails, &t.Emails); err != nil || len(t.Emails) == 0 {
			respondErr(w, invalidf("emails", `must be "all" or a non-empty list of addresses`))
			return
		}
	}
	st, err := e.StartTraffic(t)
	if err != nil {
		respondErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleStopTraffic serves DELETE /_emulator/traffic.
func (e *Emulator) handleStopTraffic(w http.ResponseWriter, _ *http.Request) {
	e.StopTraffic()
	w.WriteHeader(http.StatusNoContent)
}

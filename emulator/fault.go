package emulator

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fault makes some requests to a provider fail with a given answer.
type Fault struct {
	Provider Provider `json:"provider"`
	// Surfaces are the endpoint groups that fail: SurfaceToken and
	// SurfaceGraph for Microsoft, SurfaceGoogleToken and SurfaceGmail for
	// Google ("token" is taken as "google_token" there).
	Surfaces []Surface `json:"surfaces"`
	// Tenant and Email, when set, restrict the fault to one tenant or one
	// mailbox.
	Tenant string `json:"tenant"`
	Email  string `json:"email"`
	// FailureRate is the share of matching requests that fail, drawn from
	// the seeded random source; 0 means 1, every request.
	FailureRate float64 `json:"failure_rate"`
	// HTTPStatus is the answer's status. Default: 503.
	HTTPStatus int `json:"http_status"`
	// Body is the exact answer body. Default: the surface's usual error
	// body for the status.
	Body string `json:"body"`
	// RetryAfterS, when above zero, is sent as Retry-After (in seconds,
	// possibly with a fraction) on 429 and 503 answers.
	RetryAfterS float64 `json:"retry_after_s"`
	// AfterAccept makes the fault strike after the request was carried
	// out: it matches only sends (Graph sendMail, Gmail messages.send),
	// which are accepted, recorded, delivered and filed as usual, and then
	// answered with the fault's status, as a provider that fails after
	// taking a message. Only the graph and gmail surfaces have sends.
	AfterAccept bool `json:"after_accept,omitempty"`
	// AccountFraction, when above zero and below one, restricts the fault
	// to that share of the mailboxes, the same ones every time: those whose
	// AccountShare is below it. FailureRate then applies to their requests.
	// Requests naming no known mailbox are never in a partial share.
	AccountFraction float64 `json:"account_fraction,omitempty"`
	// DurationS, when above zero, ends the fault that many seconds (by the
	// emulator's clock) after it was added; RemoveFault ends it sooner.
	DurationS float64 `json:"duration_s,omitempty"`
	// Answers, when set, replace HTTPStatus, Body and RetryAfterS: each
	// failing request answers one of them, drawn by Weight from the seeded
	// random source, as an outage that mixes errors.
	Answers []FaultAnswer `json:"answers,omitempty"`
}

// FaultAnswer is one of the answers of a fault that mixes errors.
type FaultAnswer struct {
	// HTTPStatus is the answer's status. Default: 503.
	HTTPStatus int `json:"http_status"`
	// Body is the exact body. Default: the surface's usual error body.
	Body string `json:"body"`
	// RetryAfterS, when above zero, is sent as Retry-After on 429 and 503.
	RetryAfterS float64 `json:"retry_after_s"`
	// Weight is the answer's relative frequency. Default: 1.
	Weight float64 `json:"weight"`
}

type fault struct {
	id    string
	until time.Time // zero: until removed
	Fault
}

// AccountShare places a mailbox in [0, 1) for Fault.AccountFraction: the
// 64-bit FNV-1a hash of its lower-cased address, modulo 1,000,000, divided
// by 1,000,000. A load test can compute which mailboxes a partial fault
// strikes.
func AccountShare(email string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(strings.ToLower(email))) // never fails
	return float64(h.Sum64()%1_000_000) / 1_000_000
}

// surfacesOf lists each provider's surfaces.
var surfacesOf = map[Provider][]Surface{
	Microsoft: {SurfaceToken, SurfaceGraph},
	Google:    {SurfaceGoogleToken, SurfaceGmail},
}

// normalize validates f and fills in its defaults.
func (f Fault) normalize() (Fault, error) {
	valid, ok := surfacesOf[f.Provider]
	if !ok {
		return f, invalidf("provider", "must be %q or %q", Microsoft, Google)
	}
	if len(f.Surfaces) == 0 {
		return f, invalidf("surfaces", "is required: one or more of %q", valid)
	}
	var surfaces []Surface
	for _, s := range f.Surfaces {
		if f.Provider == Google && s == SurfaceToken {
			s = SurfaceGoogleToken
		}
		if !slices.Contains(valid, s) {
			return f, invalidf("surfaces", "%q is not a %s surface; use %q", s, f.Provider, valid)
		}
		if !slices.Contains(surfaces, s) {
			surfaces = append(surfaces, s)
		}
	}
	f.Surfaces = surfaces
	if f.AfterAccept && slices.ContainsFunc(surfaces, func(s Surface) bool { return s != SurfaceGraph && s != SurfaceGmail }) {
		return f, invalidf("surfaces", "an after_accept fault strikes sends, which only %q and %q have", SurfaceGraph, SurfaceGmail)
	}
	f.Tenant = strings.TrimSpace(f.Tenant)
	if f.Email = strings.TrimSpace(f.Email); f.Email != "" {
		email, err := normEmail("email", f.Email)
		if err != nil {
			return f, err
		}
		f.Email = email
	}
	if f.FailureRate == 0 {
		f.FailureRate = 1
	}
	if math.IsNaN(f.FailureRate) || f.FailureRate < 0 || f.FailureRate > 1 {
		return f, invalidf("failure_rate", "must be above 0 and at most 1")
	}
	if f.HTTPStatus == 0 {
		f.HTTPStatus = http.StatusServiceUnavailable
	}
	if f.HTTPStatus < 200 || f.HTTPStatus > 599 {
		return f, invalidf("http_status", "must be an HTTP status from 200 to 599")
	}
	if math.IsNaN(f.RetryAfterS) || f.RetryAfterS < 0 || f.RetryAfterS > 7*24*3600 {
		return f, invalidf("retry_after_s", "must be from 0 to 604800 seconds")
	}
	if len(f.Body) > smallBody {
		return f, invalidf("body", "is over %d bytes", smallBody)
	}
	if math.IsNaN(f.AccountFraction) || f.AccountFraction < 0 || f.AccountFraction > 1 {
		return f, invalidf("account_fraction", "must be from 0 to 1")
	}
	if math.IsNaN(f.DurationS) || f.DurationS < 0 || f.DurationS > 30*24*3600 {
		return f, invalidf("duration_s", "must be from 0 to 2592000 seconds")
	}
	if len(f.Answers) > 100 {
		return f, invalidf("answers", "holds more than 100 answers")
	}
	answers := make([]FaultAnswer, 0, len(f.Answers))
	for _, a := range f.Answers {
		if a.HTTPStatus == 0 {
			a.HTTPStatus = http.StatusServiceUnavailable
		}
		if a.Weight == 0 {
			a.Weight = 1
		}
		switch {
		case a.HTTPStatus < 200 || a.HTTPStatus > 599:
			return f, invalidf("answers", "http_status must be an HTTP status from 200 to 599")
		case math.IsNaN(a.Weight) || a.Weight < 0 || math.IsInf(a.Weight, 0):
			return f, invalidf("answers", "weight must be above 0")
		case math.IsNaN(a.RetryAfterS) || a.RetryAfterS < 0 || a.RetryAfterS > 7*24*3600:
			return f, invalidf("answers", "retry_after_s must be from 0 to 604800 seconds")
		case len(a.Body) > smallBody:
			return f, invalidf("answers", "a body is over %d bytes", smallBody)
		}
		answers = append(answers, a)
	}
	if len(answers) > 0 {
		f.Answers = answers
	} else {
		f.Answers = nil
	}
	return f, nil
}

// answer picks the answer of a failing request: one of Answers by weight,
// or the fault's own.
func (f *fault) answer(rng *mrand.Rand) FaultAnswer {
	if len(f.Answers) == 0 {
		return FaultAnswer{HTTPStatus: f.HTTPStatus, Body: f.Body, RetryAfterS: f.RetryAfterS}
	}
	var total float64
	for _, a := range f.Answers {
		total += a.Weight
	}
	x := rng.Float64() * total
	for _, a := range f.Answers {
		if x < a.Weight {
			return a
		}
		x -= a.Weight
	}
	return f.Answers[len(f.Answers)-1]
}

// AddFault starts a fault and returns its ID. It returns an *InvalidError
// for bad input.
func (e *Emulator) AddFault(f Fault) (string, error) {
	f, err := f.normalize()
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.faults) >= 1000 {
		return "", fmt.Errorf("%w: 1000 faults", ErrFull)
	}
	id := fmt.Sprintf("flt_%d", e.newIDLocked())
	flt := &fault{id: id, Fault: f}
	if f.DurationS > 0 {
		flt.until = e.now().Add(time.Duration(f.DurationS * float64(time.Second)))
	}
	e.faults[id] = flt
	e.cfg.Logger.Info("emulator: fault started", "id", id, "provider", f.Provider, "surfaces", f.Surfaces,
		"tenant", f.Tenant, "email", f.Email, "failure_rate", f.FailureRate, "http_status", f.HTTPStatus,
		"account_fraction", f.AccountFraction, "duration_s", f.DurationS, "answers", len(f.Answers))
	return id, nil
}

// RemoveFault ends a fault. It returns ErrNotFound for an unknown ID.
func (e *Emulator) RemoveFault(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.faults[id] == nil {
		return fmt.Errorf("fault %s: %w", id, ErrNotFound)
	}
	delete(e.faults, id)
	e.cfg.Logger.Info("emulator: fault ended", "id", id)
	return nil
}

// faultLocked returns the fault that fails a request to surface s of
// provider p for the mailbox email in one of tenants, or nil. Faults are
// tried in the order they were added, each drawing from the random source
// when its rate is below one, so a seeded run repeats.
func (e *Emulator) faultLocked(p Provider, s Surface, email string, tenants ...string) *fault {
	return e.matchFaultLocked(false, p, s, email, tenants...)
}

// acceptedFaultLocked returns the AfterAccept fault that fails a send
// that acc just made through surface s of provider p, or nil.
func (e *Emulator) acceptedFaultLocked(p Provider, s Surface, acc *account) *fault {
	return e.matchFaultLocked(true, p, s, acc.email, acc.tenant)
}

// matchFaultLocked is faultLocked for the faults whose AfterAccept is
// afterAccept.
func (e *Emulator) matchFaultLocked(afterAccept bool, p Provider, s Surface, email string, tenants ...string) *fault {
	if len(e.faults) == 0 {
		return nil
	}
	now := e.now()
	fs := make([]*fault, 0, len(e.faults))
	for id, f := range e.faults {
		if !f.until.IsZero() && !now.Before(f.until) {
			delete(e.faults, id) // its duration is over
			e.cfg.Logger.Info("emulator: fault ended", "id", id, "after_s", f.DurationS)
			continue
		}
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b *fault) int { return cmpFaultID(a.id, b.id) })
	for _, f := range fs {
		if f.AfterAccept != afterAccept || f.Provider != p || !slices.Contains(f.Surfaces, s) {
			continue
		}
		if f.Email != "" && f.Email != email {
			continue
		}
		if f.Tenant != "" && !slices.ContainsFunc(tenants, func(t string) bool { return t != "" && strings.EqualFold(t, f.Tenant) }) {
			continue
		}
		if f.AccountFraction > 0 && f.AccountFraction < 1 && (e.accounts[email] == nil || AccountShare(email) >= f.AccountFraction) {
			continue
		}
		if f.FailureRate >= 1 || e.rng.Float64() < f.FailureRate {
			return f
		}
	}
	return nil
}

func cmpFaultID(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// injectFault answers a request with fault f on surface s.
// It counts the answer in Stats when f is a fault that was added.
func (e *Emulator) injectFault(w http.ResponseWriter, f *fault, s Surface) {
	if f.id != "" {
		count(&e.stats.faulted, s)
	}
	a := f.answer(e.rng)
	body := []byte(a.Body)
	if a.Body == "" {
		body = e.defaultFaultBody(s, a.HTTPStatus)
	}
	if a.RetryAfterS > 0 && (a.HTTPStatus == 429 || a.HTTPStatus == 503) {
		w.Header().Set("Retry-After", strconv.FormatFloat(a.RetryAfterS, 'f', -1, 64))
	}
	ct := "text/plain; charset=utf-8"
	if t := bytes.TrimSpace(body); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		ct = "application/json; charset=utf-8"
	} else if len(t) > 0 && t[0] == '<' {
		ct = "text/html; charset=utf-8"
	} else if len(t) == 0 {
		ct = ""
	}
	writeBody(w, a.HTTPStatus, ct, body)
}

// throttleLocked takes one request from acc's token bucket. When it is
// empty it returns false and the whole seconds until it holds one again.
func (e *Emulator) throttleLocked(acc *account) (int, bool) {
	rate := e.cfg.RateLimit
	if rate <= 0 {
		return 0, true
	}
	now := e.now()
	burst := math.Max(1, rate)
	if now.After(acc.filled) {
		acc.bucket = math.Min(burst, acc.bucket+now.Sub(acc.filled).Seconds()*rate)
		acc.filled = now
	}
	if acc.bucket >= 1 {
		acc.bucket--
		return 0, true
	}
	return max(1, int(math.Ceil((1-acc.bucket)/rate))), false
}

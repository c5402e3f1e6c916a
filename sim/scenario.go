package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Duration is a Go duration string in JSON ("20h40m").
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like \"2h40m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Seconds returns d in whole seconds.
func (d Duration) Seconds() int64 { return int64(time.Duration(d) / time.Second) }

// Scenario is one simulation input; see /work/shared/scenarios/README.md.
type Scenario struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Seed        uint64           `json:"seed"`
	Duration    Duration         `json:"duration"`
	Providers   []ProviderSpec   `json:"providers"`
	Events      []Event          `json:"events"`
	Expect      map[string]Bound `json:"expect"`
}

// ProviderSpec is one provider population.
type ProviderSpec struct {
	Name    string `json:"name"`
	Inboxes int    `json:"inboxes"`
	Tenants int    `json:"tenants"`
	// MinTenantSize, if above 1, gives every tenant at least this many
	// inboxes; the rest follow the Zipf law as usual. It expresses fleets
	// of many small tenants (2 to 6 inboxes), which the Zipf tail alone
	// makes single-inbox.
	MinTenantSize int `json:"min_tenant_size"`
	// MaxTenantSize, if set (with MinTenantSize), makes the tenants' sizes
	// cycle through MinTenantSize..MaxTenantSize instead (2, 3, 4, 5, 6,
	// 2, ...), and gives the inboxes left over to the largest tenant
	// (rank 1).
	MaxTenantSize     int        `json:"max_tenant_size"`
	MailPerInboxDay   float64    `json:"mail_per_inbox_day"`
	SendsPerInboxDay  float64    `json:"sends_per_inbox_day"`
	ScheduledFraction float64    `json:"scheduled_fraction"`
	TokenLifetime     Duration   `json:"token_lifetime"`
	CapacityPerS      float64    `json:"capacity_per_s"`
	Background        Background `json:"background"`
	Errors            Errors     `json:"errors"`
}

// Background is the provider's ground-truth noise.
type Background struct {
	InvalidationsPerInboxDay float64 `json:"invalidations_per_inbox_day"`
	TransientErrorRate       float64 `json:"transient_error_rate"`
}

// Errors are the provider's usual error bodies.
type Errors struct {
	Invalid   *ErrorSpec `json:"invalid"`
	Transient *ErrorSpec `json:"transient"`
	Throttled *ErrorSpec `json:"throttled"`
}

// ErrorSpec is one error a simulated provider returns.
type ErrorSpec struct {
	Surface     string  `json:"surface"`
	HTTPStatus  *int    `json:"http_status"`
	Raw         string  `json:"raw"`
	RetryAfterS float64 `json:"retry_after_s"`
	Weight      float64 `json:"weight"`
}

// Event is a ground-truth event.
type Event struct {
	Kind         string       `json:"kind"`
	Provider     string       `json:"provider"`
	Start        *Duration    `json:"start"`
	End          *Duration    `json:"end"`
	At           *Duration    `json:"at"`
	Scope        Scope        `json:"scope"`
	FailureRate  *float64     `json:"failure_rate"`
	Errors       []*ErrorSpec `json:"errors"`
	Period       *Duration    `json:"period"`
	Duty         *float64     `json:"duty"`
	Error        *ErrorSpec   `json:"error"`
	CapacityPerS *float64     `json:"capacity_per_s"`
}

// Scope selects inboxes of a provider; fields combine with AND.
type Scope struct {
	TenantFraction *float64 `json:"tenant_fraction"`
	LargestTenants *int     `json:"largest_tenants"`
	TenantRank     *int     `json:"tenant_rank"`
	InboxFraction  *float64 `json:"inbox_fraction"`
}

// Bound is an expect check.
type Bound struct {
	Max *float64 `json:"max"`
	Min *float64 `json:"min"`
}

// FieldError is bad scenario input, naming the field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return "scenario field " + e.Field + ": " + e.Msg }

func bad(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// LoadScenario reads and validates a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return ParseScenario(b)
}

// ParseScenario decodes and validates a scenario.
func ParseScenario(b []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		var te *json.UnmarshalTypeError
		if ok := asType(err, &te); ok {
			return nil, bad(te.Field, "want %s, got %s", te.Type, te.Value)
		}
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

func asType(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}

var surfaces = map[string]bool{"token": true, "graph": true, "gmail": true, "google_token": true, "imap": true, "smtp": true}

func validError(field string, e *ErrorSpec, weighted bool) error {
	if e == nil {
		return bad(field, "missing")
	}
	if !surfaces[e.Surface] {
		return bad(field+".surface", "unknown surface %q (want token, graph, gmail, google_token, imap or smtp)", e.Surface)
	}
	if e.HTTPStatus != nil && (*e.HTTPStatus < 100 || *e.HTTPStatus > 599) {
		return bad(field+".http_status", "%d is not an HTTP status", *e.HTTPStatus)
	}
	if e.Raw == "" {
		return bad(field+".raw", "empty")
	}
	if e.RetryAfterS < 0 {
		return bad(field+".retry_after_s", "negative")
	}
	if weighted && e.Weight <= 0 {
		return bad(field+".weight", "must be positive")
	}
	return nil
}

// Validate checks the scenario and returns a *FieldError naming the first
// bad field.
func (sc *Scenario) Validate() error {
	if sc.Name == "" {
		return bad("name", "empty")
	}
	dur := time.Duration(sc.Duration)
	if dur < time.Minute {
		return bad("duration", "must be at least 1m")
	}
	if dur > 24*400*time.Hour {
		return bad("duration", "longer than 400 days")
	}
	if len(sc.Providers) == 0 {
		return bad("providers", "empty")
	}
	seen := map[string]int{}
	for k, p := range sc.Providers {
		f := fmt.Sprintf("providers[%d]", k)
		switch p.Name {
		case "microsoft", "google", "imap":
		default:
			return bad(f+".name", "unknown provider %q (want microsoft, google or imap)", p.Name)
		}
		if _, dup := seen[p.Name]; dup {
			return bad(f+".name", "provider %q listed twice", p.Name)
		}
		seen[p.Name] = k
		switch {
		case p.Inboxes <= 0 || p.Inboxes > 50_000_000:
			return bad(f+".inboxes", "must be 1..50000000")
		case p.Tenants <= 0 || p.Tenants > p.Inboxes:
			return bad(f+".tenants", "must be 1..inboxes")
		case p.MinTenantSize < 0 || p.MinTenantSize > 1 && p.Tenants*p.MinTenantSize > p.Inboxes:
			return bad(f+".min_tenant_size", "must be 0..inboxes/tenants")
		case p.MaxTenantSize != 0 && (p.MinTenantSize < 1 || p.MaxTenantSize < p.MinTenantSize):
			return bad(f+".max_tenant_size", "needs min_tenant_size and must be at least it")
		case p.MaxTenantSize != 0 && cycleTotal(p.Tenants, p.MinTenantSize, p.MaxTenantSize) > p.Inboxes:
			return bad(f+".max_tenant_size", "the cycle of sizes needs %d inboxes, more than inboxes", cycleTotal(p.Tenants, p.MinTenantSize, p.MaxTenantSize))
		case p.MailPerInboxDay < 0:
			return bad(f+".mail_per_inbox_day", "negative")
		case p.SendsPerInboxDay < 0:
			return bad(f+".sends_per_inbox_day", "negative")
		case p.ScheduledFraction < 0 || p.ScheduledFraction > 1:
			return bad(f+".scheduled_fraction", "must be within 0..1")
		case p.TokenLifetime < 0:
			return bad(f+".token_lifetime", "negative")
		case p.CapacityPerS <= 0:
			return bad(f+".capacity_per_s", "must be positive")
		case p.Background.InvalidationsPerInboxDay < 0:
			return bad(f+".background.invalidations_per_inbox_day", "negative")
		case p.Background.TransientErrorRate < 0 || p.Background.TransientErrorRate > 1:
			return bad(f+".background.transient_error_rate", "must be within 0..1")
		}
		for _, x := range []struct {
			n string
			e *ErrorSpec
		}{{"invalid", p.Errors.Invalid}, {"transient", p.Errors.Transient}, {"throttled", p.Errors.Throttled}} {
			if err := validError(f+".errors."+x.n, x.e, false); err != nil {
				return err
			}
		}
	}
	for k, ev := range sc.Events {
		f := fmt.Sprintf("events[%d]", k)
		pk, ok := seen[ev.Provider]
		if !ok {
			return bad(f+".provider", "%q is not one of the scenario's providers", ev.Provider)
		}
		p := sc.Providers[pk]
		if err := validScope(f+".scope", ev.Scope, p.Tenants); err != nil {
			return err
		}
		window := func() error {
			if ev.Start == nil {
				return bad(f+".start", "missing")
			}
			if ev.End == nil {
				return bad(f+".end", "missing")
			}
			if *ev.Start < 0 || time.Duration(*ev.Start) > dur {
				return bad(f+".start", "outside the run")
			}
			if *ev.End <= *ev.Start {
				return bad(f+".end", "not after start")
			}
			return nil
		}
		switch ev.Kind {
		case "outage":
			if err := window(); err != nil {
				return err
			}
			if ev.FailureRate == nil || *ev.FailureRate < 0 || *ev.FailureRate > 1 {
				return bad(f+".failure_rate", "must be within 0..1")
			}
			if len(ev.Errors) == 0 {
				return bad(f+".errors", "empty")
			}
			for j, e := range ev.Errors {
				if err := validError(fmt.Sprintf("%s.errors[%d]", f, j), e, true); err != nil {
					return err
				}
			}
			if (ev.Period == nil) != (ev.Duty == nil) {
				return bad(f+".period", "period and duty go together")
			}
			if ev.Period != nil && *ev.Period < Duration(time.Second) {
				return bad(f+".period", "must be at least 1s")
			}
			if ev.Duty != nil && (*ev.Duty <= 0 || *ev.Duty > 1) {
				return bad(f+".duty", "must be within (0, 1]")
			}
		case "revocation":
			if ev.At == nil {
				return bad(f+".at", "missing")
			}
			if *ev.At < 0 || time.Duration(*ev.At) > dur {
				return bad(f+".at", "outside the run")
			}
			if ev.Error != nil {
				if err := validError(f+".error", ev.Error, false); err != nil {
					return err
				}
			}
		case "throttle":
			if err := window(); err != nil {
				return err
			}
			if ev.CapacityPerS == nil || *ev.CapacityPerS < 0 {
				return bad(f+".capacity_per_s", "missing or negative")
			}
		default:
			return bad(f+".kind", "unknown kind %q (want outage, revocation or throttle)", ev.Kind)
		}
	}
	for path, b := range sc.Expect {
		if !knownPath(path) {
			return bad("expect."+path, "not a report field")
		}
		if b.Max == nil && b.Min == nil {
			return bad("expect."+path, "needs max or min")
		}
	}
	return nil
}

func validScope(f string, s Scope, tenants int) error {
	if s.TenantFraction != nil && (*s.TenantFraction < 0 || *s.TenantFraction > 1) {
		return bad(f+".tenant_fraction", "must be within 0..1")
	}
	if s.InboxFraction != nil && (*s.InboxFraction < 0 || *s.InboxFraction > 1) {
		return bad(f+".inbox_fraction", "must be within 0..1")
	}
	if s.LargestTenants != nil && (*s.LargestTenants < 1 || *s.LargestTenants > tenants) {
		return bad(f+".largest_tenants", "must be 1..%d", tenants)
	}
	if s.TenantRank != nil && (*s.TenantRank < 1 || *s.TenantRank > tenants) {
		return bad(f+".tenant_rank", "must be 1..%d", tenants)
	}
	return nil
}

// knownPath reports whether path names a numeric report field.
func knownPath(path string) bool {
	top, sub, _ := strings.Cut(path, ".")
	switch top {
	case "inboxes", "seed", "wrongful_disconnects", "true_invalidations", "detected_invalidations",
		"notifications_sent", "stale_notifications", "false_incidents", "missed_outages", "unrecovered",
		"events_processed", "wall_s", "peak_rss_mb", "recovery_bound_s", "recovery_ratio",
		"incidents_longest_s", "incidents_escalated":
		return sub == ""
	case "recovery_requests":
		return sub == "total" || sub == "throttled" || sub == "throttled_share"
	case "invalidation_detection_s":
		return sub == "p50" || sub == "p99" || sub == "max"
	case "detection_latency_s":
		return sub == "p50" || sub == "max"
	case "recovery_s":
		return sub == "p50" || sub == "p99" || sub == "p999" || sub == "max"
	case "sends":
		switch sub {
		case "due", "on_time", "late", "lost", "duplicated", "failed_reported", "held_at_end", "late_s.p50", "late_s.p99", "late_s.max":
			return true
		}
	case "mail":
		switch sub {
		case "arrived", "synced", "lost", "lag_s.p50", "lag_s.p99", "lag_s.max":
			return true
		}
	case "provider_requests":
		switch sub {
		case "total", "peak_per_s", "during_outages_per_s", "baseline_per_s", "throttled", "throttle_storm_s":
			return true
		}
	}
	return false
}

// cycleTotal is the number of inboxes t tenants hold when their sizes
// cycle through lo..hi.
func cycleTotal(t, lo, hi int) int {
	total := 0
	for k := 0; k < t; k++ {
		total += lo + k%(hi-lo+1)
	}
	return total
}

// Package classify turns a provider error (an OAuth token endpoint body, a
// Graph or Gmail API error, an IMAP or SMTP response line, or a transport
// error) into a Verdict: recoverable or permanent, with a reason, a scope and
// the action it asks for.
//
// A verdict is not the final word on an inbox: the health engine (package
// health) confirms permanent verdicts over time and across the fleet before
// it acts, because permanent-looking errors also appear during provider
// outages.
package classify

import (
	"net/http"
	"time"

	"github.com/holdfast/holdfast"
)

// Surface is the protocol endpoint an error came from.
type Surface string

// The surfaces holdfast speaks to.
const (
	SurfaceToken       Surface = "token"        // Microsoft identity platform token endpoint
	SurfaceGraph       Surface = "graph"        // Microsoft Graph
	SurfaceGoogleToken Surface = "google_token" // Google OAuth token endpoint
	SurfaceGmail       Surface = "gmail"        // Gmail API
	SurfaceIMAP        Surface = "imap"
	SurfaceSMTP        Surface = "smtp"
)

// Input is one provider outcome to classify.
type Input struct {
	// Provider is "microsoft", "google" or "generic" (any IMAP/SMTP server).
	Provider string
	Surface  Surface
	// HTTPStatus is the response status; zero for IMAP, SMTP and transport
	// errors.
	HTTPStatus int
	// Header holds the response headers, if any (Retry-After is read).
	Header http.Header
	// Raw is the response body or the protocol line(s), as received.
	Raw string
	// Operation optionally names the call ("history.list", "messages.get"),
	// where the same body means different things on different calls.
	Operation string
	// Err is a transport error (timeout, DNS, refused, reset, TLS), if the
	// request got no response. When set it decides the verdict alone.
	Err error
	// Now is when the response arrived; Retry-After dates are measured from
	// it. Zero means time.Now().
	Now time.Time
}

// Verdict is the classification of one error.
type Verdict struct {
	Class  holdfast.Class
	Reason holdfast.Reason
	Scope  holdfast.Scope
	Action holdfast.Action
	// RetryAfter is how long the provider asked us to wait; zero if it did
	// not say.
	RetryAfter time.Duration
	// OutageSensitive is true when this error has been seen during provider
	// incidents although it looks permanent.
	OutageSensitive bool
	// UserMessage is one sentence for the inbox's owner.
	UserMessage string
	// OperatorMessage explains the verdict to an operator.
	OperatorMessage string
}

// Classify returns the verdict for one provider outcome. It is safe for
// concurrent use, does not allocate on the common paths, and never returns a
// value outside the holdfast vocabulary.
//
// A transport error (in.Err) decides on its own. Otherwise the rules of
// in.Surface read in.Raw by its documented structure; see
// docs/classification.md for the order of the rules. An outcome whose shape
// no rule knows is recoverable with reason unknown, and is counted in
// UnknownTotal.
func Classify(in Input) Verdict {
	if in.Err != nil {
		return classifyTransport(in)
	}
	var v Verdict
	switch in.Surface {
	case SurfaceToken:
		v = classifyHTTP(in, microsoftToken)
	case SurfaceGraph:
		v = classifyHTTP(in, graph)
	case SurfaceGoogleToken:
		v = classifyHTTP(in, googleToken)
	case SurfaceGmail:
		v = classifyHTTP(in, gmail)
	case SurfaceIMAP:
		v = imap(in)
	case SurfaceSMTP:
		v = smtp(in)
	default:
		v = unknown(in, "the surface is not one holdfast speaks to")
	}
	return v
}

// bodyRules reads the body of one HTTP surface. It returns false when no rule
// knows the body's shape.
type bodyRules func(in Input) (Verdict, bool)

// classifyHTTP applies the rules shared by the HTTP surfaces around the body
// rules of one surface: 5xx and 429 are recoverable whatever the body says,
// and Retry-After is honoured on recoverable verdicts.
func classifyHTTP(in Input, rules bodyRules) Verdict {
	v, known := rules(in)
	if retryableStatus(in.HTTPStatus) && (!known || v.Class == holdfast.ClassPermanent) {
		// Source: classification.md §2, "always recoverable, whatever the
		// body says". A permanent-looking body under a 5xx or 429 is itself
		// a sign of an incident, so the verdict is outage-sensitive.
		wasPermanent := known && v.Class == holdfast.ClassPermanent
		v = statusVerdict(in)
		v.OutageSensitive = wasPermanent
		known = true
	}
	if !known {
		return unknown(in, unknownBodyMessage(in.Surface))
	}
	if v.Class == holdfast.ClassRecoverable {
		if d := headerRetryAfter(in); d > 0 {
			v.RetryAfter = d
		}
		if v.RetryAfter > 0 {
			v.Action = holdfast.ActionRetryAfter
		}
	}
	return v
}

// retryableStatus reports whether an HTTP status is recoverable whatever the
// body says.
func retryableStatus(status int) bool {
	return status == 429 || (status >= 500 && status <= 599)
}

// statusVerdict classifies a 5xx or 429 on its status alone.
func statusVerdict(in Input) Verdict {
	tokenEndpoint := in.Surface == SurfaceToken || in.Surface == SurfaceGoogleToken
	scope := holdfast.ScopeOperation
	if tokenEndpoint {
		// A token endpoint answers for the whole account.
		scope = holdfast.ScopeAccount
	}
	var r rule
	switch {
	case in.HTTPStatus == 429:
		r = ruleStatus429
	case in.HTTPStatus == 500 && !tokenEndpoint:
		// Source: §4 and §6, Graph generalException and Gmail
		// backendError; a token endpoint's 500 is an outage (§5).
		r = ruleStatus500
	case in.HTTPStatus == 504:
		r = ruleStatus504
	default:
		r = ruleStatus503
	}
	r.scope = scope
	return r.verdict()
}

var (
	ruleStatus429 = rule{rec, holdfast.ReasonThrottled, "", holdfast.ActionRetry, false,
		"HTTP 429: the provider is throttling; back off and honour Retry-After."}
	ruleStatus500 = rule{rec, holdfast.ReasonServerBug, "", holdfast.ActionRetry, false,
		"HTTP 500: internal error at the provider; retry with backoff and escalate if it persists."}
	ruleStatus503 = rule{rec, holdfast.ReasonProviderUnavailable, "", holdfast.ActionRetry, false,
		"HTTP 5xx: the provider is unavailable; retry with backoff (outages mostly look like this)."}
	ruleStatus504 = rule{rec, holdfast.ReasonProviderTimeout, "", holdfast.ActionRetry, false,
		"HTTP 504: the provider's gateway timed out; retry with backoff."}
)

func unknownBodyMessage(s Surface) string {
	switch s {
	case SurfaceToken:
		return "Microsoft identity error with no known error_codes, suberror, AADSTS code or error value."
	case SurfaceGraph:
		return "Graph error with no known error.code for its status."
	case SurfaceGoogleToken:
		return "Google OAuth error with no known error value."
	case SurfaceGmail:
		return "Gmail error with no known errors[].reason or status."
	}
	return "Error body of an unknown shape."
}

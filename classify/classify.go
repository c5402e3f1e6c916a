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
	// request got no response.
	Err error
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

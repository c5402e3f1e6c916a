package emulator

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// writeJSON writes v as compact JSON, without HTML escaping.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, status, "application/json; charset=utf-8", marshal(v, false))
}

// writeGoogleJSON writes v the way Google's servers do: indented by two
// spaces.
func writeGoogleJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, status, "application/json; charset=UTF-8", marshal(v, true))
}

func marshal(v any, indent bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	_ = enc.Encode(v) // plain structs and maps: cannot fail
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away; nothing to do
}

// uuid returns a random version-4 UUID, for request and trace IDs.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// guidOf returns a stable GUID-shaped ID for s.
func guidOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// msError is the Microsoft identity platform's error body.
type msError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	Suberror         string `json:"suberror,omitempty"`
}

// newMSError builds the body for AADSTS code with the given message.
func (e *Emulator) newMSError(errorCode string, code int, text string) msError {
	ts := e.now().UTC().Format("2006-01-02 15:04:05Z")
	trace, corr := uuid(), uuid()
	return msError{
		Error: errorCode,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			code, text, trace, corr, ts),
		ErrorCodes: []int{code}, Timestamp: ts, TraceID: trace, CorrelationID: corr,
		ErrorURI: "https://login.microsoftonline.com/error?code=" + strconv.Itoa(code),
	}
}

// msTokenError writes a token-endpoint error.
func (e *Emulator) msTokenError(w http.ResponseWriter, status int, errorCode string, code int, text string) {
	writeJSON(w, status, e.newMSError(errorCode, code, text))
}

// The Microsoft token errors the emulator answers.
func (e *Emulator) msMissing(w http.ResponseWriter, param string) {
	e.msTokenError(w, 400, "invalid_request", 900144,
		fmt.Sprintf("The request body must contain the following parameter: '%s'.", param))
}

func (e *Emulator) msRevoked(w http.ResponseWriter, issued time.Time) {
	b := e.newMSError("invalid_grant", 50173, fmt.Sprintf(
		"The provided grant has expired due to it being revoked, a fresh auth token is needed. "+
			"The user might have changed or reset their password. The grant was issued on '%s' and the "+
			"TokensValidFrom date (before which tokens are not valid) for this user is '%s'.",
		issued.UTC().Format("2006-01-02T15:04:05.0000000Z"), e.now().UTC().Format("2006-01-02T15:04:05.0000000Z")))
	b.Suberror = "bad_token"
	writeJSON(w, 400, b)
}

// googleOAuthError writes a Google token-endpoint error.
func googleOAuthError(w http.ResponseWriter, status int, errorCode, description string) {
	writeGoogleJSON(w, status, struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}{errorCode, description})
}

// graphErrorBody is Graph's error envelope.
type graphErrorBody struct {
	Error graphError `json:"error"`
}

type graphError struct {
	Code       string      `json:"code"`
	Message    string      `json:"message"`
	InnerError *graphInner `json:"innerError,omitempty"`
}

type graphInner struct {
	Code            string `json:"code,omitempty"`
	Date            string `json:"date"`
	Message         string `json:"message,omitempty"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id,omitempty"`
	Status          string `json:"status,omitempty"`
}

// graphErr writes a Graph error with an innerError.
func (e *Emulator) graphErr(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	id := uuid()
	crid := r.Header.Get("client-request-id")
	if crid == "" {
		crid = id
	}
	writeJSON(w, status, graphErrorBody{graphError{Code: code, Message: message, InnerError: &graphInner{
		Date: e.now().UTC().Format("2006-01-02T15:04:05"), RequestID: id, ClientRequestID: crid,
	}}})
}

// graphUnauthorized writes Graph's 401.
func (e *Emulator) graphUnauthorized(w http.ResponseWriter, r *http.Request, message string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	e.graphErr(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", message)
}

// graphThrottled writes Graph's generic 429 with Retry-After.
func (e *Emulator) graphThrottled(w http.ResponseWriter, retryAfter int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeJSON(w, http.StatusTooManyRequests, graphErrorBody{graphError{
		Code: "TooManyRequests", Message: "Please retry again later.",
		InnerError: &graphInner{Code: "429", Date: e.now().UTC().Format("2006-01-02T15:04:05"),
			Message: "Please retry after", RequestID: uuid(), Status: "429"},
	}})
}

// gmailErrorBody is the Google API error envelope.
type gmailErrorBody struct {
	Error gmailError `json:"error"`
}

type gmailError struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Errors  []gmailErrorRow  `json:"errors"`
	Status  string           `json:"status,omitempty"`
	Details []gmailErrorInfo `json:"details,omitempty"`
}

// gmailErrorInfo is a google.rpc.ErrorInfo in an error's details.
type gmailErrorInfo struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata"`
}

type gmailErrorRow struct {
	Message      string `json:"message"`
	Domain       string `json:"domain"`
	Reason       string `json:"reason"`
	Location     string `json:"location,omitempty"`
	LocationType string `json:"locationType,omitempty"`
}

// gmailErr writes a Gmail API error.
func gmailErr(w http.ResponseWriter, status int, message, domain, reason, statusName string) {
	writeGoogleJSON(w, status, gmailErrorBody{gmailError{Code: status, Message: message,
		Errors: []gmailErrorRow{{Message: message, Domain: domain, Reason: reason}}, Status: statusName}})
}

// gmailInsufficientScope writes the 403 Google answers a token without any
// of the scopes method (the backend's name for the call, as in
// "caribou.api.proto.MailboxService.GetProfile") needs.
func gmailInsufficientScope(w http.ResponseWriter, method string) {
	writeGoogleJSON(w, http.StatusForbidden, gmailErrorBody{gmailError{
		Code: http.StatusForbidden, Message: "Request had insufficient authentication scopes.",
		Errors: []gmailErrorRow{{Message: "Insufficient Permission", Domain: "global", Reason: "insufficientPermissions"}},
		Status: "PERMISSION_DENIED",
		Details: []gmailErrorInfo{{Type: "type.googleapis.com/google.rpc.ErrorInfo", Reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
			Domain: "googleapis.com", Metadata: map[string]string{"service": "gmail.googleapis.com", "method": method}}},
	}})
}

// gmailNotFound writes Gmail's 404, the same for a missing message and a
// stale history id.
func gmailNotFound(w http.ResponseWriter) {
	gmailErr(w, http.StatusNotFound, "Requested entity was not found.", "global", "notFound", "NOT_FOUND")
}

// gmailBadRequest writes a 400 INVALID_ARGUMENT.
func gmailBadRequest(w http.ResponseWriter, reason, message string) {
	gmailErr(w, http.StatusBadRequest, message, "global", reason, "INVALID_ARGUMENT")
}

// gmailUnauthorized writes Gmail's 401; missing says whether there was no
// credential at all.
func gmailUnauthorized(w http.ResponseWriter, missing bool) {
	row := gmailErrorRow{Message: "Invalid Credentials", Domain: "global", Reason: "authError",
		Location: "Authorization", LocationType: "header"}
	msg := "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	if missing {
		row.Message, row.Reason = "Login Required.", "required"
		msg = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
	writeGoogleJSON(w, http.StatusUnauthorized, gmailErrorBody{gmailError{Code: 401, Message: msg,
		Errors: []gmailErrorRow{row}, Status: "UNAUTHENTICATED"}})
}

// gmailThrottled writes Gmail's per-user 429 with Retry-After.
func gmailThrottled(w http.ResponseWriter, retryAfter int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	gmailErr(w, http.StatusTooManyRequests, "Resource has been exhausted (e.g. check quota).",
		"global", "rateLimitExceeded", "RESOURCE_EXHAUSTED")
}

// defaultFaultBody returns the body a fault without one answers: the
// surface's usual error for the status.
func (e *Emulator) defaultFaultBody(s Surface, status int) []byte {
	switch s {
	case SurfaceToken:
		switch {
		case status == 401:
			return marshal(e.newMSError("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+e.cfg.ClientID+"'."), false)
		case status >= 500 || status == 429:
			return marshal(e.newMSError("temporarily_unavailable", 90033, "A transient error has occurred. Please try again."), false)
		default:
			return marshal(e.newMSError("invalid_grant", 70000, "Provided grant is invalid or malformed."), false)
		}
	case SurfaceGoogleToken:
		switch {
		case status >= 500:
			return nil // no body was ever captured (classification.md, g-token-5xx-outage)
		case status == 401:
			return marshal(map[string]string{"error": "invalid_client", "error_description": "Unauthorized"}, true)
		case status == 429:
			return marshal(map[string]string{"error": "rate_limit_exceeded", "error_description": "Rate Limit Exceeded"}, true)
		default:
			return marshal(map[string]string{"error": "invalid_grant", "error_description": "Bad Request"}, true)
		}
	case SurfaceGraph:
		code, msg := "generalException", "An internal server error occurred."
		switch status {
		case 401:
			code, msg = "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
		case 403:
			code, msg = "ErrorAccessDenied", "Access is denied. Check credentials and try again."
		case 404:
			code, msg = "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
		case 410:
			code, msg = "SyncStateNotFound", "The sync state generation is not found; generation=1;[highest=2][2]."
		case 429:
			code, msg = "TooManyRequests", "Please retry again later."
		case 503:
			code, msg = "serviceNotAvailable", "The service is not available. Try the request again after a delay. There may be a Retry-After header."
		case 504:
			code, msg = "UnknownError", ""
		}
		return marshal(graphErrorBody{graphError{Code: code, Message: msg, InnerError: &graphInner{
			Date: e.now().UTC().Format("2006-01-02T15:04:05"), RequestID: uuid()}}}, false)
	default: // SurfaceGmail
		msg, reason, st := "Backend Error", "backendError", "INTERNAL"
		switch status {
		case 401:
			msg, reason, st = "Invalid Credentials", "authError", "UNAUTHENTICATED"
		case 403:
			msg, reason, st = "User Rate Limit Exceeded", "userRateLimitExceeded", "PERMISSION_DENIED"
		case 404:
			msg, reason, st = "Requested entity was not found.", "notFound", "NOT_FOUND"
		case 429:
			msg, reason, st = "Resource has been exhausted (e.g. check quota).", "rateLimitExceeded", "RESOURCE_EXHAUSTED"
		case 503:
			msg, st = "The service is currently unavailable.", "UNAVAILABLE"
		}
		return marshal(gmailErrorBody{gmailError{Code: status, Message: msg,
			Errors: []gmailErrorRow{{Message: msg, Domain: "global", Reason: reason}}, Status: st}}, true)
	}
}

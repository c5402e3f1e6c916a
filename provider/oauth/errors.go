package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/oauth2"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

// OpRefresh is the classify operation of a token refresh.
const OpRefresh = "token.refresh"

// TokenError is a token endpoint's refusal, without the body's secrets: the
// status and the OAuth error fields. It is the error a *holdfast.ProviderError
// from a Source wraps when the endpoint answered.
type TokenError struct {
	Provider holdfast.Provider
	// Status is the HTTP status (400 for most refusals).
	Status int
	// Code is the OAuth "error" value, such as "invalid_grant".
	Code string
	// Description is the first line of "error_description", such as
	// "AADSTS50173: The provided grant has expired ...".
	Description string
	// Codes are Microsoft's "error_codes".
	Codes []int
}

// Error implements error.
func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s token endpoint: HTTP %d", e.Provider, e.Status)
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// maxDescription bounds the description kept in a TokenError.
const maxDescription = 300

// classify turns a token-request failure into a *holdfast.ProviderError: an
// *oauth2.RetrieveError by its status, headers and body on the Source's
// surface, anything else as a transport error. secrets (the refresh token)
// are redacted from the error text, as is the client secret.
func (s *Source) classify(inboxID string, err error, secrets ...string) error {
	if pe, ok := errors.AsType[*holdfast.ProviderError](err); ok {
		return pe
	}
	in := classify.Input{Provider: string(s.cfg.Provider), Surface: s.surface, Operation: OpRefresh}
	var wrapped error
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok && re.Response != nil {
		in.HTTPStatus = re.Response.StatusCode
		in.Header = re.Response.Header
		in.Raw = string(re.Body)
		te := &TokenError{
			Provider:    s.cfg.Provider,
			Status:      re.Response.StatusCode,
			Code:        re.ErrorCode,
			Description: firstLine(re.ErrorDescription),
		}
		var body struct {
			Codes []int `json:"error_codes"`
		}
		if json.Unmarshal(re.Body, &body) == nil {
			te.Codes = body.Codes
		}
		secrets = append(secrets, s.cfg.ClientSecret)
		te.Code = Redact(te.Code, secrets...)
		te.Description = strings.ToValidUTF8(Redact(te.Description, secrets...), "")
		wrapped = fmt.Errorf("refresh token for inbox %s: %w", inboxID, te)
	} else {
		in.Err = err
		wrapped = fmt.Errorf("refresh token for inbox %s: %w", inboxID, err)
	}
	v := classify.Classify(in)
	return v.ProviderError(wrapped)
}

// firstLine returns the first line of a Microsoft error_description
// ("AADSTS70011: ...\r\nTrace ID: ..."), at most maxDescription bytes.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > maxDescription {
		s = s[:maxDescription] + "..."
	}
	return s
}

package gmail

import (
	"encoding/json"
	"fmt"

	"github.com/holdfast/holdfast/provider/bearer"
)

// The classify operations of the Gmail calls (users.* methods).
const (
	opProfile = "getProfile"
	opHistory = "history.list"
	opList    = "messages.list"
	opGet     = "messages.get"
	opSend    = "messages.send"
)

// APIError is a Gmail error answer, without secrets: the status and the
// body's error status, first reason and message.
type APIError struct {
	Op      string
	Status  int
	Reason  string // error.errors[0].reason, or error.status
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	s := fmt.Sprintf("gmail %s: HTTP %d", e.Op, e.Status)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// apiError reads Gmail's error body of a non-2xx answer (surface gmail).
func apiError(a bearer.Answer) error {
	ae := &APIError{Op: a.Op, Status: a.Status}
	var body struct {
		Error struct {
			Status  string `json:"status"`
			Message string `json:"message"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(a.Body, &body) == nil {
		ae.Reason = body.Error.Status
		if len(body.Error.Errors) > 0 && body.Error.Errors[0].Reason != "" {
			ae.Reason = body.Error.Errors[0].Reason
		}
		ae.Reason = a.Redact(ae.Reason)
		ae.Message = a.Message(body.Error.Message)
	}
	return ae
}

package graph

import (
	"encoding/json"
	"fmt"

	"github.com/holdfast/holdfast/provider/bearer"
)

// The classify operations of the Graph calls.
const (
	opDelta      = "messages.delta"
	opSendMail   = "sendMail"
	opListSearch = "messages.list"
	opMe         = "me"
)

// APIError is a Graph error answer, without secrets: the status and the
// body's error code and message.
type APIError struct {
	Op      string
	Status  int
	Code    string
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	s := fmt.Sprintf("graph %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// apiError reads Graph's error body of a non-2xx answer (surface graph).
func apiError(a bearer.Answer) error {
	ae := &APIError{Op: a.Op, Status: a.Status}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(a.Body, &body) == nil {
		ae.Code = a.Redact(body.Error.Code)
		ae.Message = a.Message(body.Error.Message)
	}
	return ae
}

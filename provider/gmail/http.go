package gmail

import (
	"encoding/json"
)

// The classify operations of the Gmail calls (users.* methods).
const (
	opProfile = "getProfile"
	opHistory = "history.list"
	opList    = "messages.list"
	opGet     = "messages.get"
	opSend    = "messages.send"
)

// errorCode reads Gmail's error body: its first error reason (or its
// status) and its message.
func errorCode(body []byte) (code, message string) {
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Message string `json:"message"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	code = e.Error.Status
	if len(e.Error.Errors) > 0 && e.Error.Errors[0].Reason != "" {
		code = e.Error.Errors[0].Reason
	}
	return code, e.Error.Message
}

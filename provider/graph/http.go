package graph

import (
	"encoding/json"
)

// The classify operations of the Graph calls.
const (
	opDelta      = "messages.delta"
	opSendMail   = "sendMail"
	opListSearch = "messages.list"
	opMe         = "me"
)

// errorCode reads Graph's error body: {"error":{"code","message"}}.
func errorCode(body []byte) (code, message string) {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	return e.Error.Code, e.Error.Message
}

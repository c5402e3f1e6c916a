package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast"
)

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the bad input field, when there is one.
	Field string `json:"field,omitempty"`
}

// encode writes v as JSON with the given status.
func encode[T any](w http.ResponseWriter, status int, v T) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// writeError writes an error answer.
func writeError(w http.ResponseWriter, status int, code, message string) {
	encode(w, status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

// decode reads one JSON object of type T from the request body. It rejects
// unknown fields, trailing data, bodies over the size limit and text that
// is not text (checkJSONText), and names the bad field in the error. It
// is the one way request bodies enter the API.
func decode[T any](r *http.Request, w http.ResponseWriter, limit int64) (T, error) {
	var v T
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return v, decodeError(err)
	}
	maxLen := func(string) int { return holdfast.MaxText }
	if l, ok := any(&v).(longText); ok {
		maxLen = l.maxLen
	}
	if err := checkJSONText(body, maxLen); err != nil {
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, &holdfast.InvalidError{Message: "request body holds more than one JSON value"}
	}
	return v, nil
}

// errTooLarge marks a body over the size limit.
var errTooLarge = errors.New("request body too large")

// decodeError turns a JSON decoding error into an *holdfast.InvalidError
// naming the field, where there is one.
func decodeError(err error) error {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooLong *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooLong):
		return fmt.Errorf("%w: limit is %d bytes", errTooLarge, tooLong.Limit)
	case errors.As(err, &syntax):
		return &holdfast.InvalidError{Message: fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &holdfast.InvalidError{Message: "request body must be a JSON object"}
		}
		return holdfast.Invalidf(field, "must be a JSON %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.EOF):
		return &holdfast.InvalidError{Message: "request body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &holdfast.InvalidError{Message: "request body is truncated JSON"}
	}
	// encoding/json reports unknown fields only as text: `json: unknown field "x"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if key, err := strconv.Unquote(name); err == nil && key != "" {
			name = key
		}
		return holdfast.Invalidf(name, "unknown field")
	}
	return &holdfast.InvalidError{Message: "malformed JSON: " + err.Error()}
}

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	}
	return "object"
}

// respondErr maps err to an HTTP answer. Errors the client caused are
// explained; anything else is logged and answered with a generic message.
func (s *server) respondErr(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *holdfast.InvalidError
	switch {
	case errors.As(err, &invalid):
		encode(w, http.StatusBadRequest, errorBody{Error: errorDetail{Code: "invalid_request", Message: invalid.Error(), Field: invalid.Field}})
	case errors.Is(err, errTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
	case errors.Is(err, holdfast.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, holdfast.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", conflictMessage(err))
	default:
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

// conflictMessage returns the message of a conflict error that is safe to
// show: the outermost context the handler gave it.
func conflictMessage(err error) string {
	var c *conflictError
	if errors.As(err, &c) {
		return c.msg
	}
	return "conflicts with the stored state"
}

// conflictError is an ErrConflict with a message for the client.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }
func (e *conflictError) Unwrap() error { return holdfast.ErrConflict }

// recoverPanics answers 500 instead of dropping the connection when a
// handler panics, and logs the panic.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// isConflict reports whether err is a store conflict.
func isConflict(err error) bool { return errors.Is(err, holdfast.ErrConflict) }

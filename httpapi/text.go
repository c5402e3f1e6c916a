package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/holdfast/holdfast"
)

// longText is implemented by a request body whose text fields may be
// longer than holdfast.MaxText: maxLen returns the limit of the field at
// path ("text", "imap.host", "to[2]").
type longText interface {
	maxLen(path string) int
}

// checkJSONText applies holdfast.CheckText to every string of a JSON body,
// keys and values, with the limit that limit gives for its path, and
// returns the first failure naming that path. It reads the raw body, not
// the decoded value: encoding/json turns invalid UTF-8 into U+FFFD, and
// a field would then be stored other than sent. A body that is not JSON
// passes: decoding reports it.
func checkJSONText(body []byte, limit func(path string) int) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	// stack holds one frame per open object or array.
	type frame struct {
		obj     bool
		wantKey bool
		key     string
		idx     int
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			switch {
			case !f.obj:
				b.WriteString("[" + strconv.Itoa(f.idx) + "]")
			case b.Len() > 0:
				b.WriteString("." + f.key)
			default:
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	next := func() { // a value of the innermost container is done
		if n := len(stack) - 1; n >= 0 && stack[n].obj {
			stack[n].wantKey = true
		} else if n >= 0 {
			stack[n].idx++
		}
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		// The token's raw text, with the delimiters before it (ASCII).
		raw := body[start:dec.InputOffset()]
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				stack = append(stack, frame{obj: true, wantKey: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:len(stack)-1]
				next()
			}
		case string:
			if n := len(stack) - 1; n >= 0 && stack[n].wantKey {
				stack[n].wantKey, stack[n].key = false, tok
				if tok == "" {
					stack[n].key = `""` // named as decodeError names it
				}
				if !utf8.Valid(raw) || strings.IndexByte(tok, 0) >= 0 {
					stack[n].key = strconv.QuoteToASCII(tok)
					return holdfast.Invalidf(path(), "is not a valid field name")
				}
				continue
			}
			p := path()
			if !utf8.Valid(raw) {
				return holdfast.Invalidf(p, "is not valid UTF-8 text")
			}
			if err := holdfast.CheckText(p, tok, limit(p)); err != nil {
				return err
			}
			next()
		default:
			next()
		}
	}
}

// checkQuery answers 400 for a request whose query string holds a value
// that is not text (holdfast.CheckValues), naming the parameter: in the
// API's JSON format under /v1, as plain text elsewhere.
func checkQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := holdfast.CheckValues(r.URL.Query(), holdfast.MaxText)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			inv := err.(*holdfast.InvalidError)
			encode(w, http.StatusBadRequest, errorBody{Error: errorDetail{Code: "invalid_request", Message: inv.Error(), Field: inv.Field}})
			return
		}
		http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
	})
}

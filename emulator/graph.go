package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// apiHandler handles an authenticated Graph or Gmail request under e.mu;
// body is the request body, already read.
type apiHandler func(w http.ResponseWriter, r *http.Request, acc *account, body []byte)

// bearer returns the request's bearer token and whether there was one.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// readBody reads the (size-limited) request body; tooLarge reports a body
// over the limit.
func readBody(r *http.Request) (body []byte, tooLarge bool) {
	body, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	return body, errors.As(err, &mbe)
}

// graphPerm is what a Graph call needs: any one of the delegated
// permissions in anyOf, and the 403 error code and message Graph answers a
// token without them.
type graphPerm struct {
	anyOf         []string
	code, message string
}

// The permissions of the Graph calls the emulator serves (the Graph
// reference's permission tables; Mail.ReadBasic, which omits the body, is
// not emulated).
var (
	// permMe: GET /me, the signed-in user's profile. A token without one
	// of these gets the directory's error, not Exchange's.
	permMe = graphPerm{
		anyOf: []string{"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All",
			"Directory.Read.All", "Directory.ReadWrite.All"},
		code: "Authorization_RequestDenied", message: "Insufficient privileges to complete the operation.",
	}
	// permMailRead: reading messages (delta, list, get).
	permMailRead = graphPerm{
		anyOf: []string{"Mail.Read", "Mail.ReadWrite"},
		code:  "ErrorAccessDenied", message: "Access is denied. Check credentials and try again.",
	}
	// permMailSend: sendMail.
	permMailSend = graphPerm{
		anyOf: []string{"Mail.Send"},
		code:  "ErrorAccessDenied", message: "Access is denied. Check credentials and try again.",
	}
)

// graphAPI wraps a Graph handler: faults, then authentication, then
// throttling, then the token's permissions (perm), as the real service
// would meet them.
func (e *Emulator) graphAPI(perm graphPerm, h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, tooLarge := readBody(r)
		tok, hasAuth := bearer(r)
		c, scp, ok := e.parseAccess(Microsoft, tok)
		e.locked(w, func(w http.ResponseWriter) {
			if !e.admitLocked(w, Microsoft, SurfaceGraph) {
				return
			}
			var tenant string
			if acc := e.accounts[c.Email]; ok && acc != nil {
				tenant = acc.tenant
			}
			if flt := e.faultLocked(Microsoft, SurfaceGraph, c.Email, tenant); flt != nil {
				e.injectFault(w, flt, SurfaceGraph)
				return
			}
			if !hasAuth || tok == "" {
				e.graphUnauthorized(w, r, "Access token is empty.")
				return
			}
			if !ok {
				e.graphUnauthorized(w, r, "CompactToken parsing failed with error code: 80049217")
				return
			}
			acc, why := e.accessLocked(c)
			switch why {
			case "expired":
				e.graphUnauthorized(w, r, "Lifetime validation failed, the token is expired.")
				return
			case "revoked", "invalid":
				e.graphUnauthorized(w, r, "Access token has expired or is not yet valid.")
				return
			}
			if wait, ok := e.throttleLocked(acc); !ok {
				e.stats.mailboxLimit++
				e.graphThrottled(w, wait)
				return
			}
			if !slices.ContainsFunc(perm.anyOf, func(p string) bool { return hasScope(scp, p) }) {
				e.graphErr(w, r, http.StatusForbidden, perm.code, perm.message)
				return
			}
			if tooLarge {
				e.graphErr(w, r, http.StatusRequestEntityTooLarge, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.")
				return
			}
			e.fileSentLocked(acc)
			h(w, r, acc, body)
		})
	}
}

// baseURL returns the scheme and host the request was made to.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// graphFolder maps a well-known folder name to the emulator's folder.
func graphFolder(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "inbox":
		return folderInbox, true
	case "sentitems":
		return folderSent, true
	case "outbox":
		return folderOutbox, true
	}
	return "", false
}

func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func recipients(addrs []string) []map[string]any {
	out := make([]map[string]any, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, map[string]any{"emailAddress": map[string]string{"name": a, "address": a}})
	}
	return out
}

// graphMessage renders m as a Graph message resource, with only the
// $select-ed properties (and id) when sel is set.
func graphMessage(acc *account, m *message, sel string, withType bool) map[string]any {
	changeKey := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("CQAAABYAAA%012d", m.change)))
	contentType := "text"
	if m.html {
		contentType = "html"
	}
	from := map[string]any{"emailAddress": map[string]string{"name": m.from, "address": m.from}}
	v := map[string]any{
		"@odata.etag":                `W/"` + changeKey + `"`,
		"id":                         m.id,
		"createdDateTime":            graphTime(m.received),
		"lastModifiedDateTime":       graphTime(m.received),
		"changeKey":                  changeKey,
		"categories":                 []string{},
		"receivedDateTime":           graphTime(m.received),
		"sentDateTime":               graphTime(m.received),
		"hasAttachments":             false,
		"internetMessageId":          m.messageID,
		"subject":                    m.subject,
		"bodyPreview":                preview(m.text, 255),
		"importance":                 "normal",
		"parentFolderId":             graphID("AQMkADAw", acc.email+"/"+m.folder, 0),
		"conversationId":             m.thread(),
		"isDeliveryReceiptRequested": false,
		"isReadReceiptRequested":     false,
		"isRead":                     m.folder == folderSent,
		"isDraft":                    false,
		"webLink":                    "https://outlook.office365.com/owa/?ItemID=" + url.QueryEscape(m.id) + "&exvsurl=1&viewmodel=ReadMessageItem",
		"inferenceClassification":    "focused",
		"body":                       map[string]string{"contentType": contentType, "content": m.text},
		"sender":                     from,
		"from":                       from,
		"toRecipients":               recipients(m.to),
		"ccRecipients":               recipients(m.cc),
		"bccRecipients":              recipients(m.bcc),
		"replyTo":                    []any{},
		"flag":                       map[string]string{"flagStatus": "notFlagged"},
	}
	if sel != "" {
		keep := map[string]bool{"id": true, "@odata.etag": true}
		for _, s := range strings.Split(sel, ",") {
			keep[strings.ToLower(strings.TrimSpace(s))] = true
		}
		for k := range v {
			if !keep[strings.ToLower(k)] {
				delete(v, k)
			}
		}
	}
	if withType {
		v["@odata.type"] = "#microsoft.graph.message"
	}
	return v
}

// preview returns the first n characters of s with whitespace collapsed.
func preview(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// queryParam returns an OData query option, whose name Graph matches
// without regard to case.
func queryParam(q url.Values, name string) string {
	for k, v := range q {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

var preferPageSize = regexp.MustCompile(`(?i)odata\.maxpagesize\s*=\s*(\d+)`)

// pageSize returns the page size asked for by Prefer: odata.maxpagesize
// (which it confirms in Preference-Applied) or $top, else def.
func pageSize(w http.ResponseWriter, r *http.Request, def int) int {
	if m := preferPageSize.FindStringSubmatch(r.Header.Get("Prefer")); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			n = min(n, 1000)
			w.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(n))
			return n
		}
	}
	if n, err := strconv.Atoi(queryParam(r.URL.Query(), "$top")); err == nil && n > 0 {
		return min(n, 1000)
	}
	return def
}

// handleGraphMe serves GET /v1.0/me.
func (e *Emulator) handleGraphMe(w http.ResponseWriter, r *http.Request, acc *account, _ []byte) {
	name, _, _ := strings.Cut(acc.email, "@")
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context":    baseURL(r) + prefixGraph + "/v1.0/$metadata#users/$entity",
		"businessPhones":    []string{},
		"displayName":       name,
		"mail":              acc.email,
		"userPrincipalName": acc.email,
		"id":                guidOf(acc.email),
	})
}

// handleGraphDelta serves GET /v1.0/me/mailFolders/{folder}/messages/delta.
func (e *Emulator) handleGraphDelta(w http.ResponseWriter, r *http.Request, acc *account, _ []byte) {
	folder, ok := graphFolder(r.PathValue("folder"))
	if !ok {
		e.graphErr(w, r, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	q := r.URL.Query()
	gone := func(gen uint64) {
		e.graphErr(w, r, http.StatusGone, "SyncStateNotFound", fmt.Sprintf(
			"The sync state generation is not found; generation=%d;[highest=%d][%d].", gen, acc.gen, acc.gen))
	}
	var cur cursor
	delta, skip := queryParam(q, "$deltatoken"), queryParam(q, "$skiptoken")
	if skip == "" && folder == folderInbox {
		e.recordSyncLocked(acc)
	}
	switch {
	case delta != "" || skip != "":
		tok := delta
		if tok == "" {
			tok = skip
		}
		c, ok := e.openCursor(tok)
		if !ok || c.Email != acc.email || c.Folder != folder || (delta != "") != (c.Upto == 0) {
			gone(0)
			return
		}
		if c.Gen != acc.gen {
			gone(c.Gen)
			return
		}
		cur = c
		if delta != "" {
			cur.Upto = acc.change // the round's snapshot
		}
	default:
		cur = cursor{Email: acc.email, Folder: folder, Gen: acc.gen, Upto: acc.change,
			Size: 10, Select: queryParam(q, "$select")}
	}
	size := pageSize(w, r, cur.Size)
	cur.Size = size
	items := acc.folderMessages(folder, cur.After, cur.Upto, size+1)
	more := len(items) > size
	if more {
		items = items[:size]
	}
	value := make([]map[string]any, 0, len(items))
	for _, m := range items {
		value = append(value, graphMessage(acc, m, cur.Select, true))
	}
	link := baseURL(r) + prefixGraph + "/v1.0/me/mailFolders/" + url.PathEscape(r.PathValue("folder")) + "/messages/delta"
	resp := map[string]any{
		"@odata.context": baseURL(r) + prefixGraph + "/v1.0/$metadata#Collection(message)",
		"value":          value,
	}
	if more {
		next := cur
		next.After = items[len(items)-1].change
		resp["@odata.nextLink"] = link + "?$skiptoken=" + e.sealCursor(next)
	} else {
		next := cur
		next.After, next.Upto = cur.Upto, 0
		resp["@odata.deltaLink"] = link + "?$deltatoken=" + e.sealCursor(next)
	}
	writeJSON(w, http.StatusOK, resp)
}

var filterMessageID = regexp.MustCompile(`(?i)^\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*$`)

// handleGraphList serves GET /v1.0/me/mailFolders/{folder}/messages, newest
// first, with $filter=internetMessageId eq '…', $top, $skip and $select.
func (e *Emulator) handleGraphList(w http.ResponseWriter, r *http.Request, acc *account, _ []byte) {
	folder, ok := graphFolder(r.PathValue("folder"))
	if !ok {
		e.graphErr(w, r, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	q := r.URL.Query()
	var msgID string
	if f := queryParam(q, "$filter"); f != "" {
		m := filterMessageID.FindStringSubmatch(f)
		if m == nil {
			e.graphErr(w, r, http.StatusBadRequest, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
			return
		}
		msgID = strings.ReplaceAll(m[1], "''", "'")
	}
	top := pageSize(w, r, 10)
	skip, _ := strconv.Atoi(queryParam(q, "$skip"))
	skip = max(skip, 0)
	var all []*message
	for i := len(acc.messages) - 1; i >= 0; i-- {
		m := acc.messages[i]
		if m.folder == folder && (msgID == "" || m.messageID == msgID) {
			all = append(all, m)
		}
	}
	page := all[min(skip, len(all)):]
	more := len(page) > top
	page = page[:min(top, len(page))]
	value := make([]map[string]any, 0, len(page))
	for _, m := range page {
		value = append(value, graphMessage(acc, m, queryParam(q, "$select"), false))
	}
	resp := map[string]any{
		"@odata.context": baseURL(r) + prefixGraph + "/v1.0/$metadata#users('" + acc.email + "')/mailFolders('" + r.PathValue("folder") + "')/messages",
		"value":          value,
	}
	if more {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Del("$skip")
		next.Set("$skip", strconv.Itoa(skip+top))
		next.Set("$top", strconv.Itoa(top))
		resp["@odata.nextLink"] = baseURL(r) + r.URL.Path + "?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleGraphMessage serves GET /v1.0/me/messages/{id}.
func (e *Emulator) handleGraphMessage(w http.ResponseWriter, r *http.Request, acc *account, _ []byte) {
	m := acc.byID[r.PathValue("id")]
	if m == nil {
		e.graphErr(w, r, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	v := graphMessage(acc, m, queryParam(r.URL.Query(), "$select"), false)
	v["@odata.context"] = baseURL(r) + prefixGraph + "/v1.0/$metadata#users('" + acc.email + "')/messages/$entity"
	writeJSON(w, http.StatusOK, v)
}

// graphRecipient is an address in a sendMail body.
type graphRecipient struct {
	EmailAddress struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"emailAddress"`
}

// graphSendRequest is the JSON body of sendMail.
type graphSendRequest struct {
	Message *struct {
		Subject string `json:"subject"`
		Body    struct {
			ContentType string `json:"contentType"`
			Content     string `json:"content"`
		} `json:"body"`
		ToRecipients      []graphRecipient `json:"toRecipients"`
		CcRecipients      []graphRecipient `json:"ccRecipients"`
		BccRecipients     []graphRecipient `json:"bccRecipients"`
		InternetMessageID string           `json:"internetMessageId"`
	} `json:"message"`
	SaveToSentItems *bool `json:"saveToSentItems"`
}

// handleGraphSendMail serves POST /v1.0/me/sendMail: a JSON message, or a
// base64 MIME message sent as text/plain. It answers 202 with no body.
func (e *Emulator) handleGraphSendMail(w http.ResponseWriter, r *http.Request, acc *account, body []byte) {
	msg := &message{}
	save := true
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "text/plain") {
		raw, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(body), nil)))
		if err != nil || len(raw) == 0 {
			e.graphErr(w, r, http.StatusBadRequest, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
			return
		}
		p, err := parseRaw(raw)
		if err != nil {
			e.graphErr(w, r, http.StatusBadRequest, "ErrorMimeContentInvalid", "The MIME content is invalid.")
			return
		}
		msg = p.message(raw)
	} else {
		var req graphSendRequest
		if err := json.Unmarshal(body, &req); err != nil || req.Message == nil {
			e.graphErr(w, r, http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
			return
		}
		m := req.Message
		var bad bool
		addrs := func(rs []graphRecipient) []string {
			var out []string
			for _, rc := range rs {
				a, err := normEmail("address", rc.EmailAddress.Address)
				if err != nil {
					bad = true
				}
				out = append(out, a)
			}
			return out
		}
		msg.to, msg.cc, msg.bcc = addrs(m.ToRecipients), addrs(m.CcRecipients), addrs(m.BccRecipients)
		if bad {
			e.graphErr(w, r, http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient is not valid., Recipient is not valid.")
			return
		}
		msg.subject, msg.text = m.Subject, m.Body.Content
		msg.html = strings.EqualFold(m.Body.ContentType, "html")
		if validMessageID(m.InternetMessageID) {
			msg.messageID = m.InternetMessageID
		}
		if req.SaveToSentItems != nil {
			save = *req.SaveToSentItems
		}
	}
	if len(msg.to)+len(msg.cc)+len(msg.bcc) == 0 {
		e.graphErr(w, r, http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient is not valid., A message can't be sent because it contains no recipients.")
		return
	}
	if !e.canSendLocked(acc, save) {
		e.graphErr(w, r, http.StatusForbidden, "ErrorQuotaExceeded", "Mailbox has exceeded maximum mailbox size.")
		return
	}
	e.sendLocked(acc, msg, save)
	if flt := e.acceptedFaultLocked(Microsoft, SurfaceGraph, acc); flt != nil {
		e.injectFault(w, flt, SurfaceGraph)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

package emulator

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Gmail API scopes.
const (
	scopeMailGoogle    = "https://mail.google.com/"
	scopeGmailModify   = "https://www.googleapis.com/auth/gmail.modify"
	scopeGmailReadonly = "https://www.googleapis.com/auth/gmail.readonly"
	scopeGmailMetadata = "https://www.googleapis.com/auth/gmail.metadata"
	scopeGmailCompose  = "https://www.googleapis.com/auth/gmail.compose"
	scopeGmailSend     = "https://www.googleapis.com/auth/gmail.send"
)

// gmailPerm is what a Gmail call needs: any one of the scopes in anyOf.
// method is the backend's name for the call, which Google's 403 names.
// metadata, when set, limits a token whose only scope of anyOf is
// gmail.metadata: it returns the message of the 403 for a request that
// scope does not allow, or "".
type gmailPerm struct {
	method   string
	anyOf    []string
	metadata func(q url.Values) string
}

// The scopes of the Gmail calls the emulator serves (the API reference's
// authorization scopes; the add-on scopes, which only an add-on's
// per-message token carries, are not emulated).
var (
	permGmailProfile = gmailPerm{method: "caribou.api.proto.MailboxService.GetProfile",
		anyOf: []string{scopeMailGoogle, scopeGmailModify, scopeGmailCompose, scopeGmailReadonly, scopeGmailMetadata}}
	permGmailHistory = gmailPerm{method: "caribou.api.proto.MailboxService.ListHistory",
		anyOf: []string{scopeMailGoogle, scopeGmailModify, scopeGmailReadonly, scopeGmailMetadata}}
	// permGmailList: gmail.metadata does not allow a search.
	permGmailList = gmailPerm{method: "caribou.api.proto.MailboxService.ListMessages",
		anyOf: []string{scopeMailGoogle, scopeGmailModify, scopeGmailReadonly, scopeGmailMetadata},
		metadata: func(q url.Values) string {
			if q.Get("q") != "" {
				return "Metadata scope does not support 'q' parameter"
			}
			return ""
		}}
	// permGmailGet: gmail.metadata allows only format=minimal and
	// format=metadata; the default is full.
	permGmailGet = gmailPerm{method: "caribou.api.proto.MailboxService.GetMessage",
		anyOf: []string{scopeMailGoogle, scopeGmailModify, scopeGmailReadonly, scopeGmailMetadata},
		metadata: func(q url.Values) string {
			switch f := strings.ToLower(q.Get("format")); f {
			case "", "full", "raw":
				return "Metadata scope doesn't allow format " + strings.ToUpper(cmp.Or(f, "full"))
			}
			return ""
		}}
	permGmailSend = gmailPerm{method: "caribou.api.proto.MailboxService.SendMessage",
		anyOf: []string{scopeMailGoogle, scopeGmailModify, scopeGmailCompose, scopeGmailSend}}
)

// check returns false, having answered Google's 403, when a token with
// scope may not make the request r.
func (p gmailPerm) check(w http.ResponseWriter, r *http.Request, scope []string) bool {
	var allowing []string
	for _, s := range p.anyOf {
		if hasScope(scope, s) {
			allowing = append(allowing, s)
		}
	}
	if len(allowing) == 0 {
		gmailInsufficientScope(w, p.method)
		return false
	}
	if p.metadata != nil && len(allowing) == 1 && allowing[0] == scopeGmailMetadata {
		if msg := p.metadata(r.URL.Query()); msg != "" {
			gmailErr(w, http.StatusForbidden, msg, "global", "forbidden", "PERMISSION_DENIED")
			return false
		}
	}
	return true
}

// gmailAPI wraps a Gmail handler: faults, then authentication, then
// throttling, then the token's scopes (perm), then the userId check.
func (e *Emulator) gmailAPI(perm gmailPerm, h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, tooLarge := readBody(r)
		tok, hasAuth := bearer(r)
		c, scope, ok := e.parseAccess(Google, tok)
		e.locked(w, func(w http.ResponseWriter) {
			if !e.admitLocked(w, Google, SurfaceGmail) {
				return
			}
			var tenant string
			if acc := e.accounts[c.Email]; ok && acc != nil {
				tenant = acc.tenant
			}
			if flt := e.faultLocked(Google, SurfaceGmail, c.Email, tenant); flt != nil {
				e.injectFault(w, flt, SurfaceGmail)
				return
			}
			if !hasAuth || tok == "" {
				gmailUnauthorized(w, true)
				return
			}
			if !ok {
				gmailUnauthorized(w, false)
				return
			}
			acc, why := e.accessLocked(c)
			if why != "" {
				gmailUnauthorized(w, false)
				return
			}
			if wait, ok := e.throttleLocked(acc); !ok {
				e.stats.mailboxLimit++
				gmailThrottled(w, wait)
				return
			}
			if !perm.check(w, r, scope) {
				return
			}
			if user := r.PathValue("user"); user != "me" && !strings.EqualFold(user, acc.email) {
				gmailErr(w, http.StatusForbidden, "Delegation denied for "+acc.email, "global", "forbidden", "PERMISSION_DENIED")
				return
			}
			if tooLarge {
				gmailErr(w, http.StatusRequestEntityTooLarge, "Request payload size exceeds the limit.", "global", "badRequest", "INVALID_ARGUMENT")
				return
			}
			e.fileSentLocked(acc)
			h(w, r, acc, body)
		})
	}
}

// gmailLabels returns the labels of a message in folder.
func gmailLabels(folder string) []string {
	if folder == folderSent || folder == folderOutbox {
		return []string{"SENT"}
	}
	return []string{"UNREAD", "INBOX"}
}

// labelFolder maps a label to the folder holding it, or "" for none.
func labelFolder(label string) string {
	switch strings.ToUpper(label) {
	case "INBOX", "UNREAD":
		return folderInbox
	case "SENT":
		return folderSent
	}
	return ""
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// maxResults parses maxResults: default 100, at most 500.
func maxResults(q url.Values) int {
	n, err := strconv.Atoi(q.Get("maxResults"))
	if err != nil || n <= 0 {
		return 100
	}
	return min(n, 500)
}

// handleGmailProfile serves GET users/{userId}/profile.
func (e *Emulator) handleGmailProfile(w http.ResponseWriter, _ *http.Request, acc *account, _ []byte) {
	writeGoogleJSON(w, http.StatusOK, map[string]any{
		"emailAddress":  acc.email,
		"messagesTotal": len(acc.messages),
		"threadsTotal":  len(acc.messages),
		"historyId":     u64(acc.change),
	})
}

type gmailRef struct {
	ID       string   `json:"id"`
	ThreadID string   `json:"threadId"`
	LabelIDs []string `json:"labelIds,omitempty"`
}

type gmailHistory struct {
	ID            string     `json:"id"`
	Messages      []gmailRef `json:"messages"`
	MessagesAdded []struct {
		Message gmailRef `json:"message"`
	} `json:"messagesAdded,omitempty"`
}

// handleGmailHistory serves GET users/{userId}/history: messageAdded
// records after startHistoryId, one per message.
func (e *Emulator) handleGmailHistory(w http.ResponseWriter, r *http.Request, acc *account, _ []byte) {
	q := r.URL.Query()
	if q.Get("startHistoryId") == "" {
		gmailErr(w, http.StatusBadRequest, "Required parameter: startHistoryId", "global", "required", "INVALID_ARGUMENT")
		return
	}
	start, err := strconv.ParseUint(q.Get("startHistoryId"), 10, 64)
	if err != nil {
		gmailBadRequest(w, "invalidArgument", "Invalid startHistoryId: "+q.Get("startHistoryId"))
		return
	}
	if start < acc.floor {
		gmailNotFound(w)
		return
	}
	if q.Get("pageToken") == "" {
		e.recordSyncLocked(acc)
	}
	after := start
	key := q.Get("labelId") + "|" + strings.Join(q["historyTypes"], ",") + "|" + q.Get("startHistoryId")
	if pt := q.Get("pageToken"); pt != "" {
		c, ok := e.openCursor(pt)
		if !ok || c.Email != acc.email || c.Query != key {
			gmailBadRequest(w, "invalid", "Invalid pageToken")
			return
		}
		if c.Gen != acc.gen {
			gmailNotFound(w)
			return
		}
		after = c.After
	}
	folder := ""
	if l := q.Get("labelId"); l != "" {
		if folder = labelFolder(l); folder == "" {
			after = acc.change // a label no message has: nothing to report
		}
	}
	if types := q["historyTypes"]; len(types) > 0 && !slices.Contains(types, "messageAdded") {
		after = acc.change // only additions happen here
	}
	n := maxResults(q)
	items := acc.folderMessages(folder, after, acc.change, n+1)
	resp := map[string]any{"historyId": u64(acc.change)}
	if len(items) > n {
		items = items[:n]
		next := cursor{Email: acc.email, Gen: acc.gen, After: items[len(items)-1].change, Query: key}
		resp["nextPageToken"] = e.sealCursor(next)
	}
	if len(items) > 0 {
		hist := make([]gmailHistory, len(items))
		for i, m := range items {
			ref := gmailRef{ID: m.id, ThreadID: m.thread()}
			hist[i] = gmailHistory{ID: u64(m.change), Messages: []gmailRef{ref}}
			ref.LabelIDs = gmailLabels(m.folder)
			hist[i].MessagesAdded = append(hist[i].MessagesAdded, struct {
				Message gmailRef `json:"message"`
			}{ref})
		}
		resp["history"] = hist
	}
	writeGoogleJSON(w, http.StatusOK, resp)
}

// gmailMatch reports whether m matches the search query terms: rfc822msgid:,
// in:, label:, from:, to:, subject:, and bare words in subject or text.
func gmailMatch(m *message, terms []string) bool {
	for _, t := range terms {
		key, val, ok := strings.Cut(t, ":")
		if !ok {
			key, val = "", t
		}
		val = strings.ToLower(strings.Trim(val, `"`))
		switch strings.ToLower(key) {
		case "rfc822msgid":
			if strings.ToLower(strings.Trim(m.messageID, "<>")) != strings.Trim(val, "<>") {
				return false
			}
		case "in", "label":
			if labelFolder(val) != m.folder {
				return false
			}
		case "from":
			if !strings.Contains(m.from, val) {
				return false
			}
		case "to":
			if !slices.ContainsFunc(slices.Concat(m.to, m.cc, m.bcc), func(a string) bool { return strings.Contains(a, val) }) {
				return false
			}
		case "subject":
			if !strings.Contains(strings.ToLower(m.subject), val) {
				return false
			}
		default:
			if !strings.Contains(strings.ToLower(m.subject+" "+m.text), strings.ToLower(t)) {
				return false
			}
		}
	}
	return true
}

// handleGmailList serves GET users/{userId}/messages, newest first.
func (e *Emulator) handleGmailList(w http.ResponseWriter, r *http.Request, acc *account, _ []byte) {
	q := r.URL.Query()
	terms := strings.Fields(q.Get("q"))
	for _, l := range q["labelIds"] {
		terms = append(terms, "label:"+l)
	}
	key := strings.Join(terms, " ")
	if q.Get("pageToken") == "" && !strings.Contains(strings.ToLower(key), "rfc822msgid:") {
		e.recordSyncLocked(acc)
	}
	offset := 0
	if pt := q.Get("pageToken"); pt != "" {
		c, ok := e.openCursor(pt)
		if !ok || c.Email != acc.email || c.Query != key {
			gmailBadRequest(w, "invalid", "Invalid pageToken")
			return
		}
		offset = int(c.After)
	}
	var all []*message
	for i := len(acc.messages) - 1; i >= 0; i-- {
		// A message in folderOutbox is sent, but not in the search index
		// yet.
		if m := acc.messages[i]; m.folder != folderOutbox && gmailMatch(m, terms) {
			all = append(all, m)
		}
	}
	n := maxResults(q)
	page := all[min(offset, len(all)):]
	resp := map[string]any{"resultSizeEstimate": len(all)}
	if len(page) > n {
		page = page[:n]
		resp["nextPageToken"] = e.sealCursor(cursor{Email: acc.email, After: uint64(offset + n), Query: key})
	}
	if len(page) > 0 {
		refs := make([]gmailRef, len(page))
		for i, m := range page {
			refs[i] = gmailRef{ID: m.id, ThreadID: m.thread()}
		}
		resp["messages"] = refs
	}
	writeGoogleJSON(w, http.StatusOK, resp)
}

// handleGmailMessage serves GET users/{userId}/messages/{id}.
func (e *Emulator) handleGmailMessage(w http.ResponseWriter, r *http.Request, acc *account, _ []byte) {
	m := acc.byID[r.PathValue("id")]
	if m == nil {
		gmailNotFound(w)
		return
	}
	raw := m.rawBytes()
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "full"
	}
	v := map[string]any{
		"id":           m.id,
		"threadId":     m.thread(),
		"labelIds":     gmailLabels(m.folder),
		"snippet":      html.EscapeString(preview(m.text, 200)),
		"historyId":    u64(m.change),
		"internalDate": strconv.FormatInt(m.received.UnixMilli(), 10),
		"sizeEstimate": len(raw),
	}
	mimeType := "text/plain"
	if m.html {
		mimeType = "text/html"
	}
	switch format {
	case "minimal":
	case "raw":
		v["raw"] = base64.URLEncoding.EncodeToString(raw)
	case "metadata":
		headers := headerList(raw)
		if want := q["metadataHeaders"]; len(want) > 0 {
			headers = slices.DeleteFunc(headers, func(h header) bool {
				return !slices.ContainsFunc(want, func(n string) bool { return strings.EqualFold(n, h.Name) })
			})
		}
		v["payload"] = map[string]any{"partId": "", "mimeType": mimeType, "filename": "", "headers": headers}
	case "full":
		v["payload"] = map[string]any{"partId": "", "mimeType": mimeType, "filename": "", "headers": headerList(raw),
			"body": map[string]any{"size": len(m.text), "data": base64.URLEncoding.EncodeToString([]byte(m.text))}}
	default:
		gmailBadRequest(w, "invalidArgument", "Invalid value at 'format' ("+format+")")
		return
	}
	writeGoogleJSON(w, http.StatusOK, v)
}

// handleGmailSend serves POST users/{userId}/messages/send with a JSON
// body {"raw": base64url RFC 822, "threadId"?}.
func (e *Emulator) handleGmailSend(w http.ResponseWriter, _ *http.Request, acc *account, body []byte) {
	var req struct {
		Raw      string `json:"raw"`
		ThreadID string `json:"threadId"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		gmailBadRequest(w, "invalid", "Invalid JSON payload received.")
		return
	}
	if req.Raw == "" {
		gmailBadRequest(w, "invalidArgument", "'raw' RFC822 payload message string or uploading message via /upload/* URL required")
		return
	}
	raw, err := decodeBase64(req.Raw)
	if err != nil {
		gmailBadRequest(w, "invalid", "Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed.")
		return
	}
	p, err := parseRaw(raw)
	if err != nil {
		gmailBadRequest(w, "invalidArgument", "Invalid RFC822 message: "+err.Error())
		return
	}
	if len(p.to)+len(p.cc)+len(p.bcc) == 0 {
		gmailBadRequest(w, "invalidArgument", "Recipient address required")
		return
	}
	if !e.canSendLocked(acc, true) {
		gmailErr(w, http.StatusBadRequest, "Precondition check failed.", "global", "failedPrecondition", "FAILED_PRECONDITION")
		return
	}
	msg := p.message(raw)
	if msg.messageID == "" {
		// Gmail adds the Message-ID a message lacks.
		msg.messageID = "<emu." + u64(e.newIDLocked()) + "@mail.gmail.com>"
		msg.raw = append([]byte("Message-ID: "+msg.messageID+"\r\n"), raw...)
	}
	e.sendLocked(acc, msg, true)
	if old := acc.byID[req.ThreadID]; old != nil {
		msg.threadID = old.thread()
	}
	if flt := e.acceptedFaultLocked(Google, SurfaceGmail, acc); flt != nil {
		e.injectFault(w, flt, SurfaceGmail)
		return
	}
	writeGoogleJSON(w, http.StatusOK, gmailRef{ID: msg.id, ThreadID: msg.thread(), LabelIDs: []string{"SENT"}})
}

// decodeBase64 decodes base64url, padded or not, or standard base64, as
// Gmail accepts.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, base64.CorruptInputError(0)
}

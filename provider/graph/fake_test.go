package graph_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/provider/oauth/oauthtest"
)

// fakeGraph is a small Microsoft Graph mail fake at the wire level
// (provider-apis.md §2): delta on the inbox with nextLink/deltaLink and
// expiring tokens, sendMail (MIME), messages $filter by internetMessageId,
// and queued faults per operation.
type fakeGraph struct {
	URL    string
	tokens *oauthtest.Server

	mu     sync.Mutex
	seq    int // change counter
	epoch  int // delta and skip tokens from an older epoch are expired
	inbox  []*fakeMessage
	sent   []*fakeMessage
	faults map[string][]fault
	hits   map[string]int
	// outboxLooks is how many folder lookups (Sent Items or Outbox) a
	// message sent from now on waits in the Outbox before it is filed in
	// Sent Items; zero files it at once.
	outboxLooks int
}

type fakeMessage struct {
	id        string
	msgID     string
	subject   string
	from      string
	to        []string
	received  time.Time
	preview   string
	isRead    bool
	changed   int // seq of the last change
	removed   int // seq of the removal; 0 while present
	partialAt int // seq of a change that delta reports with only id and isRead
	// outboxLeft counts the folder lookups a sent message still waits in
	// the Outbox.
	outboxLeft int
}

type fault struct {
	status int
	header http.Header
	body   string
}

func startGraph(t *testing.T, tokens *oauthtest.Server) *fakeGraph {
	t.Helper()
	g := &fakeGraph{tokens: tokens, faults: map[string][]fault{}, hits: map[string]int{}, epoch: 1}
	srv := httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// deliver adds n messages to the inbox.
func (g *fakeGraph) deliver(n int) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ids []string
	for range n {
		g.seq++
		i := len(g.inbox)
		m := &fakeMessage{
			id:       fmt.Sprintf("AAMkAD%04d=", i),
			msgID:    fmt.Sprintf("<m%d@example.test>", i),
			subject:  fmt.Sprintf("Message %d", i),
			from:     "bob@example.test",
			to:       []string{"alice@example.test"},
			received: time.Date(2026, 11, 28, 10, 0, i, 0, time.UTC),
			preview:  fmt.Sprintf("Body   of\r\nmessage %d.", i),
			changed:  g.seq,
		}
		g.inbox = append(g.inbox, m)
		ids = append(ids, m.id)
	}
	return ids
}

// markRead marks an inbox message read; delta reports it as a partial
// update.
func (g *fakeGraph) markRead(i int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	g.inbox[i].isRead = true
	g.inbox[i].partialAt = g.seq
}

// remove deletes an inbox message.
func (g *fakeGraph) remove(i int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	g.inbox[i].removed = g.seq
}

// expireDeltaTokens makes every delta and skip token issued so far expire.
func (g *fakeGraph) expireDeltaTokens() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.epoch++
}

// fail queues faults for an operation: "delta", "inbox", "sendMail",
// "messages" or "outbox".
func (g *fakeGraph) fail(op string, f ...fault) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faults[op] = append(g.faults[op], f...)
}

func (g *fakeGraph) hit(op string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits[op]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]string{"request-id": "11111111-2222-3333-4444-555555555555", "date": "2026-11-28T12:00:00"},
	}})
}

func (g *fakeGraph) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	path := r.URL.Path
	var op string
	switch {
	case strings.HasSuffix(path, "/messages/delta"):
		op = "delta"
	case path == "/v1.0/me/mailFolders/inbox/messages":
		op = "inbox"
	case path == "/v1.0/me/sendMail":
		op = "sendMail"
	case path == "/v1.0/me/mailFolders/sentitems/messages":
		op = "messages"
	case path == "/v1.0/me/mailFolders/outbox/messages":
		op = "outbox"
	default:
		graphError(w, 400, "BadRequest", "Resource not found for the segment '"+path+"'.")
		return
	}
	g.hits[op]++
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if _, valid := g.tokens.User(tok); !ok || !valid {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"`)
		graphError(w, 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return
	}
	if fs := g.faults[op]; len(fs) > 0 {
		f := fs[0]
		g.faults[op] = fs[1:]
		for k, v := range f.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, strings.ReplaceAll(f.body, "{{token}}", tok))
		return
	}
	switch op {
	case "delta":
		g.delta(w, r)
	case "inbox":
		writeJSON(w, 200, map[string]any{"value": []any{}})
	case "sendMail":
		g.sendMail(w, r)
	case "messages", "outbox":
		g.messages(w, r, op == "outbox")
		// Each lookup brings the waiting messages closer to Sent Items.
		for _, m := range g.sent {
			m.outboxLeft = max(m.outboxLeft-1, 0)
		}
	}
}

// delta serves a delta page. Tokens are "<epoch>.<since>.<upto>.<offset>":
// changes after since up to upto, from offset.
func (g *fakeGraph) delta(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := 10
	if p := r.Header.Get("Prefer"); strings.HasPrefix(p, "odata.maxpagesize=") {
		size, _ = strconv.Atoi(strings.TrimPrefix(p, "odata.maxpagesize="))
	}
	since, upto, offset := 0, g.seq, 0
	initial := true
	for _, key := range []string{"$skiptoken", "$deltatoken"} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		initial = false
		var epoch int
		if _, err := fmt.Sscanf(v, "%d.%d.%d.%d", &epoch, &since, &upto, &offset); err != nil || epoch != g.epoch {
			graphError(w, 410, "SyncStateNotFound", "The sync state generation is not found; generation=149;[highest=157][157][155][156].")
			return
		}
		if key == "$deltatoken" {
			upto, offset = g.seq, 0
		}
	}
	if initial && q.Get("$select") == "" {
		graphError(w, 400, "BadRequest", "test fake: the first delta request has no $select")
		return
	}
	var changes []map[string]any
	for _, m := range g.inbox {
		switch {
		case m.removed > since && m.removed <= upto:
			if !initial {
				changes = append(changes, map[string]any{"@odata.type": "#microsoft.graph.message", "id": m.id, "@removed": map[string]string{"reason": "deleted"}})
			}
		case m.removed != 0:
		case m.changed > since && m.changed <= upto:
			changes = append(changes, m.json())
		case m.partialAt > since && m.partialAt <= upto:
			changes = append(changes, map[string]any{"@odata.type": "#microsoft.graph.message", "id": m.id, "isRead": m.isRead})
		}
	}
	link := g.URL + "/v1.0/me/mailFolders('AQMkADAwATM0MDAAMS0')/messages/delta?"
	page := map[string]any{"@odata.context": g.URL + "/v1.0/$metadata#Collection(message)"}
	end := min(offset+size, len(changes))
	page["value"] = changes[offset:end]
	if end < len(changes) {
		page["@odata.nextLink"] = link + "$skiptoken=" + fmt.Sprintf("%d.%d.%d.%d", g.epoch, since, upto, end)
	} else {
		page["@odata.deltaLink"] = link + "$deltatoken=" + fmt.Sprintf("%d.%d.%d.%d", g.epoch, upto, upto, 0)
	}
	writeJSON(w, 200, page)
}

func (m *fakeMessage) json() map[string]any {
	to := []map[string]any{}
	for _, a := range m.to {
		to = append(to, map[string]any{"emailAddress": map[string]string{"name": "", "address": a}})
	}
	return map[string]any{
		"@odata.type":       "#microsoft.graph.message",
		"@odata.etag":       `W/"CQAAABYAAAA"`,
		"id":                m.id,
		"internetMessageId": m.msgID,
		"subject":           m.subject,
		"from":              map[string]any{"emailAddress": map[string]string{"name": "Bob", "address": m.from}},
		"toRecipients":      to,
		"ccRecipients":      []any{},
		"receivedDateTime":  m.received.Format(time.RFC3339),
		"bodyPreview":       m.preview,
		"isRead":            m.isRead,
		"flag":              map[string]string{"flagStatus": "notFlagged"},
	}
}

func (g *fakeGraph) sendMail(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		graphError(w, 400, "ErrorInvalidRequest", "test fake: only MIME sends are supported")
		return
	}
	b, _ := io.ReadAll(r.Body)
	raw, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		graphError(w, 400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
		return
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		graphError(w, 400, "ErrorMimeContentInvalid", "test fake: "+err.Error())
		return
	}
	id := msg.Header.Get("Message-Id")
	g.seq++
	g.sent = append(g.sent, &fakeMessage{id: fmt.Sprintf("AAMkSENT%04d=", len(g.sent)), msgID: id, subject: msg.Header.Get("Subject"), changed: g.seq, outboxLeft: g.outboxLooks})
	w.WriteHeader(http.StatusAccepted)
}

var filterRE = regexp.MustCompile(`^internetMessageId eq '((?:[^']|'')*)'$`)

// messages serves a $filter by internetMessageId on Sent Items, or on the
// Outbox if outbox.
func (g *fakeGraph) messages(w http.ResponseWriter, r *http.Request, outbox bool) {
	f := filterRE.FindStringSubmatch(r.URL.Query().Get("$filter"))
	if f == nil {
		graphError(w, 400, "BadRequest", "test fake: unsupported $filter")
		return
	}
	want := strings.ReplaceAll(f[1], "''", "'")
	value := []map[string]any{}
	for _, m := range g.sent {
		if m.msgID == want && m.removed == 0 && (m.outboxLeft > 0) == outbox {
			value = append(value, map[string]any{"id": m.id})
		}
	}
	writeJSON(w, 200, map[string]any{"value": value})
}

// newServer runs h until the test ends and returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

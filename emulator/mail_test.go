package emulator_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/holdfast/holdfast/emulator"
)

// deltaPage is one page of a Graph delta round.
type deltaPage struct {
	Value []struct {
		Type              string `json:"@odata.type"`
		ID                string `json:"id"`
		Subject           string `json:"subject"`
		InternetMessageID string `json:"internetMessageId"`
	} `json:"value"`
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
}

// deltaRound follows a delta round from link to its deltaLink and returns
// the IDs seen, the number of pages and the deltaLink.
func (b *testBundle) deltaRound(t *testing.T, link, at string, pageSize int) (ids []string, pages int, deltaLink string) {
	t.Helper()
	for link != "" {
		h := map[string]string{"Authorization": "Bearer " + at}
		if pageSize > 0 {
			h["Prefer"] = "odata.maxpagesize=" + strconv.Itoa(pageSize)
		}
		r := b.do(t, http.MethodGet, link, nil, h)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", link, r.status, r.body)
		}
		var p deltaPage
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range p.Value {
			if m.Type != "#microsoft.graph.message" || m.InternetMessageID == "" {
				t.Errorf("delta item = %+v", m)
			}
			ids = append(ids, m.ID)
		}
		if (p.NextLink == "") == (p.DeltaLink == "") {
			t.Fatalf("page has nextLink %q and deltaLink %q; want exactly one", p.NextLink, p.DeltaLink)
		}
		link, deltaLink = p.NextLink, p.DeltaLink
		if pages > 100 {
			t.Fatal("delta round does not end")
		}
	}
	return ids, pages, deltaLink
}

func TestGraphDelta(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	_, at := b.account(t, emulator.Microsoft, "ada@contoso.com", "")
	var want []string
	for _, d := range b.deliver(t, "ada@contoso.com", 5) {
		want = append(want, d.ID)
	}
	start := b.u.Graph + "/v1.0/me/mailFolders/inbox/messages/delta"

	// First sync: every message, in pages, then a deltaLink.
	ids, pages, dl1 := b.deltaRound(t, start, at, 2)
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("first sync (-want +got):\n%s", diff)
	}
	if pages != 3 {
		t.Errorf("first sync took %d pages; want 3", pages)
	}

	// Nothing new: an empty page and a new deltaLink.
	ids, _, dl2 := b.deltaRound(t, dl1, at, 0)
	if len(ids) != 0 {
		t.Errorf("round without changes returned %v", ids)
	}

	// Incremental: only what arrived since.
	var newer []string
	for _, d := range b.deliver(t, "ada@contoso.com", 3) {
		newer = append(newer, d.ID)
	}
	ids, _, dl3 := b.deltaRound(t, dl2, at, 0)
	if diff := cmp.Diff(newer, ids); diff != "" {
		t.Errorf("incremental sync (-want +got):\n%s", diff)
	}
	// A sent message is not in the inbox's delta.
	send := map[string]any{"message": map[string]any{"subject": "out", "body": map[string]string{"contentType": "Text", "content": "x"},
		"toRecipients": []any{map[string]any{"emailAddress": map[string]string{"address": "z@example.net"}}}}}
	if r := b.postJSON(t, b.u.Graph+"/v1.0/me/sendMail", at, send); r.status != http.StatusAccepted {
		t.Fatalf("sendMail = %d %s", r.status, r.body)
	}
	if ids, _, _ := b.deltaRound(t, dl3, at, 0); len(ids) != 0 {
		t.Errorf("inbox delta after a send returned %v", ids)
	}
	if ids, _, _ := b.deltaRound(t, b.u.Graph+"/v1.0/me/mailFolders/sentitems/messages/delta", at, 0); len(ids) != 1 {
		t.Errorf("sentitems delta returned %v; want the sent message", ids)
	}
	// An old deltaLink still replays from its point.
	if ids, _, _ := b.deltaRound(t, dl2, at, 0); len(ids) != 3 {
		t.Errorf("replay of an older deltaLink returned %d messages; want 3", len(ids))
	}

	// Unknown, foreign or expired tokens: 410 SyncStateNotFound.
	_, otherAT := b.account(t, emulator.Microsoft, "bob@contoso.com", "")
	gone := []struct {
		name, link, token string
	}{
		{"garbage delta token", start + "?$deltatoken=garbage", at},
		{"garbage skip token", start + "?$skiptoken=AAAA.BBBB", at},
		{"another mailbox's token", dl3, otherAT},
		{"another folder's token", strings.Replace(dl3, "/inbox/", "/sentitems/", 1), at},
	}
	for _, g := range gone {
		r := b.get(t, g.link, g.token)
		if r.status != http.StatusGone || apiErrorCode(t, r) != "SyncStateNotFound" {
			t.Errorf("%s: %d %s; want 410 SyncStateNotFound", g.name, r.status, r.body)
		}
	}
	if err := b.e.ExpireSyncState("ada@contoso.com"); err != nil {
		t.Fatal(err)
	}
	r := b.get(t, dl3, at)
	if r.status != http.StatusGone || apiErrorCode(t, r) != "SyncStateNotFound" {
		t.Errorf("expired token: %d %s; want 410 SyncStateNotFound", r.status, r.body)
	}
	// Graph paths are case-insensitive.
	if r := b.get(t, b.u.Graph+"/v1.0/me/mailfolders/Inbox/messages/delta", at); r.status != http.StatusOK {
		t.Errorf("lower-case path: %d %s", r.status, r.body)
	}
	// After the 410, a full resync works again.
	if ids, _, _ := b.deltaRound(t, start, at, 0); len(ids) != 8 {
		t.Errorf("resync returned %d messages; want 8", len(ids))
	}
}

func TestGraphMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	_, at := b.account(t, emulator.Microsoft, "ada@contoso.com", "")
	d, err := b.e.Deliver(emulator.Mail{To: "ada@contoso.com", From: "x@example.net", Subject: "Hi", Text: "body text", MessageID: "<m1@example.net>"})
	if err != nil {
		t.Fatal(err)
	}
	r := b.get(t, b.u.Graph+"/v1.0/me/messages/"+url.PathEscape(d.ID), at)
	if r.status != http.StatusOK {
		t.Fatalf("GET message = %d %s", r.status, r.body)
	}
	v := r.json(t)
	got := map[string]any{"id": v["id"], "internetMessageId": v["internetMessageId"], "subject": v["subject"],
		"bodyPreview": v["bodyPreview"], "from": v["from"]}
	want := map[string]any{"id": d.ID, "internetMessageId": "<m1@example.net>", "subject": "Hi", "bodyPreview": "body text",
		"from": map[string]any{"emailAddress": map[string]any{"name": "x@example.net", "address": "x@example.net"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	r = b.get(t, b.u.Graph+"/v1.0/me/messages/AAMkNope", at)
	if r.status != http.StatusNotFound || apiErrorCode(t, r) != "ErrorItemNotFound" {
		t.Errorf("missing message: %d %s", r.status, r.body)
	}
}

func TestGmailHistory(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	_, at := b.account(t, emulator.Google, "bob@gmail.com", "")
	base := b.u.Gmail + "/gmail/v1/users/me"
	h0 := b.get(t, base+"/profile", at).json(t)["historyId"].(string)

	ds := b.deliver(t, "bob@gmail.com", 3)
	history := func(start string, extra string) map[string]any {
		t.Helper()
		r := b.get(t, base+"/history?startHistoryId="+start+extra, at)
		if r.status != http.StatusOK {
			t.Fatalf("history = %d %s", r.status, r.body)
		}
		return r.json(t)
	}
	v := history(h0, "")
	hist := v["history"].([]any)
	if len(hist) != 3 {
		t.Fatalf("history has %d records; want 3: %v", len(hist), v)
	}
	prev, _ := strconv.ParseUint(h0, 10, 64)
	for i, h := range hist {
		rec := h.(map[string]any)
		id, _ := strconv.ParseUint(rec["id"].(string), 10, 64)
		if id <= prev {
			t.Errorf("history ids not increasing: %d after %d", id, prev)
		}
		prev = id
		added := rec["messagesAdded"].([]any)[0].(map[string]any)["message"].(map[string]any)
		if added["id"] != ds[i].ID || added["threadId"] == "" {
			t.Errorf("record %d adds %v; want %s", i, added, ds[i].ID)
		}
	}
	last := v["historyId"].(string)
	if last != strconv.FormatUint(prev, 10) {
		t.Errorf("historyId = %s; want the last record's %d", last, prev)
	}

	// Up to date: only the historyId.
	if diff := cmp.Diff(map[string]any{"historyId": last}, history(last, "")); diff != "" {
		t.Errorf("history without changes (-want +got):\n%s", diff)
	}

	// Pages.
	p1 := history(h0, "&maxResults=2")
	if len(p1["history"].([]any)) != 2 || p1["nextPageToken"] == nil {
		t.Fatalf("first page = %v", p1)
	}
	p2 := history(h0, "&maxResults=2&pageToken="+url.QueryEscape(p1["nextPageToken"].(string)))
	if len(p2["history"].([]any)) != 1 || p2["nextPageToken"] != nil {
		t.Errorf("second page = %v", p2)
	}

	// A too-old startHistoryId: 404 notFound.
	if err := b.e.ExpireSyncState("bob@gmail.com"); err != nil {
		t.Fatal(err)
	}
	r := b.get(t, base+"/history?startHistoryId="+h0, at)
	want := `{"error":{"code":404,"message":"Requested entity was not found.","errors":[{"message":"Requested entity was not found.","domain":"global","reason":"notFound"}],"status":"NOT_FOUND"}}`
	if r.status != http.StatusNotFound || compact(t, r.body) != want {
		t.Errorf("stale startHistoryId: %d %s; want 404 %s", r.status, r.body, want)
	}
	// The profile's new historyId works.
	h1 := b.get(t, base+"/profile", at).json(t)["historyId"].(string)
	if v := history(h1, ""); v["history"] != nil {
		t.Errorf("history from the new id = %v", v)
	}
}

// compact removes the whitespace between a JSON text's tokens, keeping
// its field order, so that bodies can be compared byte for byte.
func compact(t *testing.T, b []byte) string {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("invalid JSON %q", b)
	}
	return reorder(string(b))
}

// reorder drops whitespace outside strings.
func reorder(s string) string {
	var out strings.Builder
	inString, escaped := false, false
	for _, c := range s {
		switch {
		case inString:
			out.WriteRune(c)
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
			out.WriteRune(c)
		case c == ' ' || c == '\n' || c == '\r' || c == '\t':
		default:
			out.WriteRune(c)
		}
	}
	return out.String()
}

func TestGmailMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	_, at := b.account(t, emulator.Google, "bob@gmail.com", "")
	d, err := b.e.Deliver(emulator.Mail{To: "bob@gmail.com", From: "ann@example.net", Subject: "Grüße", Text: "It's a test", MessageID: "<g1@example.net>"})
	if err != nil {
		t.Fatal(err)
	}
	r := b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages/"+d.ID, at)
	if r.status != http.StatusOK {
		t.Fatalf("messages.get = %d %s", r.status, r.body)
	}
	var m struct {
		ID, ThreadID, Snippet, InternalDate, HistoryID string
		LabelIDs                                       []string `json:"labelIds"`
		Payload                                        struct {
			Headers []struct{ Name, Value string }
			Body    struct{ Data string }
		}
	}
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{}
	for _, h := range m.Payload.Headers {
		headers[h.Name] = h.Value
	}
	got := map[string]string{"From": headers["From"], "To": headers["To"], "Subject": headers["Subject"], "Message-ID": headers["Message-ID"]}
	want := map[string]string{"From": "ann@example.net", "To": "bob@gmail.com", "Subject": "Grüße", "Message-ID": "<g1@example.net>"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if m.ID != d.ID || m.ThreadID == "" || m.InternalDate != strconv.FormatInt(b.clock.Now().UnixMilli(), 10) || m.Snippet != "It&#39;s a test" {
		t.Errorf("message = %+v", m)
	}
	if text, _ := base64.URLEncoding.DecodeString(m.Payload.Body.Data); string(text) != "It's a test" {
		t.Errorf("body = %q", text)
	}
	if diff := cmp.Diff([]string{"UNREAD", "INBOX"}, m.LabelIDs); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	r = b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages/"+d.ID+"?format=raw", at)
	raw, _ := base64.URLEncoding.DecodeString(r.json(t)["raw"].(string))
	if !strings.Contains(string(raw), "Message-ID: <g1@example.net>\r\n") {
		t.Errorf("raw = %q", raw)
	}
	if r := b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages/ffff", at); r.status != http.StatusNotFound {
		t.Errorf("missing message = %d", r.status)
	}
}

func TestSendRecordedOncePerCall(t *testing.T) {
	t.Parallel()
	rawMsg := "From: me@x\r\nTo: Carl <carl@example.com>, dee@example.com\r\nSubject: Report\r\nMessage-ID: <snd_1@holdfast.test>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nThe report.\r\n"
	tests := []struct {
		name     string
		provider emulator.Provider
		send     func(b *testBundle, at string) response
		want     emulator.SentMessage
		inSent   bool
	}{
		{"graph json", emulator.Microsoft, func(b *testBundle, at string) response {
			return b.postJSON(t, b.u.Graph+"/v1.0/me/sendMail", at, map[string]any{"message": map[string]any{
				"subject": "Report", "body": map[string]string{"contentType": "Text", "content": "The report."},
				"toRecipients":      []any{map[string]any{"emailAddress": map[string]string{"address": "carl@example.com"}}},
				"ccRecipients":      []any{map[string]any{"emailAddress": map[string]string{"address": "dee@example.com"}}},
				"internetMessageId": "<snd_1@holdfast.test>",
			}})
		}, emulator.SentMessage{To: []string{"carl@example.com"}, Cc: []string{"dee@example.com"}}, true},
		{"graph json not saved", emulator.Microsoft, func(b *testBundle, at string) response {
			return b.postJSON(t, b.u.Graph+"/v1.0/me/sendMail", at, map[string]any{"message": map[string]any{
				"subject": "Report", "body": map[string]string{"contentType": "Text", "content": "The report."},
				"toRecipients":      []any{map[string]any{"emailAddress": map[string]string{"address": "carl@example.com"}}, map[string]any{"emailAddress": map[string]string{"address": "dee@example.com"}}},
				"internetMessageId": "<snd_1@holdfast.test>",
			}, "saveToSentItems": false})
		}, emulator.SentMessage{To: []string{"carl@example.com", "dee@example.com"}}, false},
		{"graph mime", emulator.Microsoft, func(b *testBundle, at string) response {
			return b.post(t, b.u.Graph+"/v1.0/me/sendMail", at, "text/plain", []byte(base64.StdEncoding.EncodeToString([]byte(rawMsg))))
		}, emulator.SentMessage{To: []string{"carl@example.com", "dee@example.com"}}, true},
		{"gmail", emulator.Google, func(b *testBundle, at string) response {
			return b.postJSON(t, b.u.Gmail+"/gmail/v1/users/me/messages/send", at, map[string]string{"raw": base64.RawURLEncoding.EncodeToString([]byte(rawMsg))})
		}, emulator.SentMessage{To: []string{"carl@example.com", "dee@example.com"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{})
			_, at := b.account(t, tt.provider, "me@example.com", "")
			b.account(t, emulator.Google, "carl@example.com", "")
			for i := range 2 {
				r := tt.send(b, at)
				switch tt.provider {
				case emulator.Microsoft:
					if r.status != http.StatusAccepted || len(r.body) != 0 {
						t.Fatalf("sendMail = %d %q; want 202 and no body", r.status, r.body)
					}
				default:
					if r.status != http.StatusOK {
						t.Fatalf("messages.send = %d %s", r.status, r.body)
					}
					if got := r.json(t)["labelIds"]; !cmp.Equal(got, []any{"SENT"}) {
						t.Errorf("labelIds = %v", got)
					}
				}
				sent, err := b.e.Sent("me@example.com")
				if err != nil {
					t.Fatal(err)
				}
				if len(sent) != i+1 {
					t.Fatalf("after %d sends, %d records", i+1, len(sent))
				}
				want := tt.want
				want.Provider, want.From, want.Subject, want.Text, want.MessageID, want.Time = tt.provider, "me@example.com", "Report", "The report.", "<snd_1@holdfast.test>", b.clock.Now()
				got := sent[i]
				if tt.inSent != (got.ID != "") {
					t.Errorf("sent copy ID = %q; want one: %v", got.ID, tt.inSent)
				}
				got.ID = ""
				got.Text = strings.TrimSpace(got.Text)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("sent record (-want +got):\n%s", diff)
				}
			}
			// The control API answers the same records.
			r := b.get(t, b.u.Control+"/sent?from=me@example.com", "")
			var resp struct{ Data []emulator.SentMessage }
			if err := json.Unmarshal(r.body, &resp); err != nil || len(resp.Data) != 2 {
				t.Errorf("GET /sent = %d %s", r.status, r.body)
			}
			// Finding the sent copy by Message-ID, as FindSent does.
			var found int
			if tt.provider == emulator.Microsoft {
				r := b.get(t, b.u.Graph+"/v1.0/me/mailFolders/sentitems/messages?$filter="+url.QueryEscape("internetMessageId eq '<snd_1@holdfast.test>'"), at)
				found = len(r.json(t)["value"].([]any))
			} else {
				r := b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages?q="+url.QueryEscape("in:sent rfc822msgid:<snd_1@holdfast.test>"), at)
				if m, ok := r.json(t)["messages"].([]any); ok {
					found = len(m)
				}
			}
			if want := map[bool]int{true: 2}[tt.inSent]; found != want {
				t.Errorf("search of the sent folder found %d; want %d", found, want)
			}
			// The recipient with a mailbox here got both.
			_, cat := b.account(t, emulator.Google, "carl@example.com", "")
			r = b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages?labelIds=INBOX", cat)
			if got := r.json(t)["resultSizeEstimate"]; got != 2.0 {
				t.Errorf("recipient's inbox has %v messages; want 2", got)
			}
		})
	}
}

func TestSendRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	_, mat := b.account(t, emulator.Microsoft, "me@example.com", "")
	_, gat := b.account(t, emulator.Google, "g@example.com", "")
	tests := []struct {
		name   string
		r      func() response
		status int
		code   any
	}{
		{"graph no recipients", func() response {
			return b.postJSON(t, b.u.Graph+"/v1.0/me/sendMail", mat, map[string]any{"message": map[string]any{"subject": "x"}})
		}, 400, "ErrorInvalidRecipients"},
		{"graph bad base64", func() response {
			return b.post(t, b.u.Graph+"/v1.0/me/sendMail", mat, "text/plain", []byte("!!not base64!!"))
		}, 400, "ErrorMimeContentInvalidBase64String"},
		{"graph bad json", func() response {
			return b.post(t, b.u.Graph+"/v1.0/me/sendMail", mat, "application/json", []byte("{"))
		}, 400, "BadRequest"},
		{"gmail no raw", func() response {
			return b.postJSON(t, b.u.Gmail+"/gmail/v1/users/me/messages/send", gat, map[string]string{})
		}, 400, 400.0},
		{"gmail no recipients", func() response {
			return b.postJSON(t, b.u.Gmail+"/gmail/v1/users/me/messages/send", gat, map[string]string{"raw": base64.URLEncoding.EncodeToString([]byte("Subject: x\r\n\r\nhi"))})
		}, 400, 400.0},
		{"gmail other user", func() response {
			return b.postJSON(t, b.u.Gmail+"/gmail/v1/users/x@example.com/messages/send", gat, map[string]string{"raw": "eA"})
		}, 403, 403.0},
	}
	for _, tt := range tests {
		r := tt.r()
		if r.status != tt.status || apiErrorCode(t, r) != tt.code {
			t.Errorf("%s: %d %s; want %d %v", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}
	for _, email := range []string{"me@example.com", "g@example.com"} {
		if sent, _ := b.e.Sent(email); len(sent) != 0 {
			t.Errorf("%s: rejected sends were recorded: %v", email, sent)
		}
	}
}

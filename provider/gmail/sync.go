package gmail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/charset"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/bearer"
)

// cursorVersion is the current cursor format.
const cursorVersion = 1

// cursor is where a Sync resumes, stored by the service as opaque JSON:
//
//	{"v":1,"historyId":"4242"}
//	{"v":1,"historyId":"4242","pageToken":"0987...","listed":300}
//
// HistoryID is where history.list resumes: every change after it is still
// to be read. PageToken is set while the first (backfill) listing of the
// inbox is unfinished: the next Sync lists on from it, Listed messages
// having been listed so far, and then follows the history from HistoryID,
// which was taken before the listing began.
type cursor struct {
	V         int    `json:"v"`
	HistoryID string `json:"historyId"`
	PageToken string `json:"pageToken,omitempty"`
	Listed    int    `json:"listed,omitempty"`
}

// String encodes the cursor.
func (c cursor) String() string {
	b, _ := json.Marshal(c) // a struct of strings and ints always encodes
	return string(b)
}

// parseCursor reads a cursor; the empty string is the start (a zero
// HistoryID).
func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{V: cursorVersion}, nil
	}
	var c cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return cursor{}, fmt.Errorf("gmail cursor: %w", err)
	}
	if c.V != cursorVersion {
		return cursor{}, fmt.Errorf("gmail cursor: unknown version %d", c.V)
	}
	if _, err := strconv.ParseUint(c.HistoryID, 10, 64); err != nil {
		return cursor{}, fmt.Errorf("gmail cursor: historyId %q: %w", c.HistoryID, err)
	}
	return c, nil
}

// inboxLabel is the label Sync follows.
const inboxLabel = "INBOX"

// metadataHeaders are the headers messages.get asks for.
var metadataHeaders = []string{"From", "To", "Cc", "Subject", "Message-ID"}

// listAnswer is messages.list's answer.
type listAnswer struct {
	Messages      []ref  `json:"messages"`
	NextPageToken string `json:"nextPageToken"`
}

// ref names a message.
type ref struct {
	ID       string   `json:"id"`
	LabelIDs []string `json:"labelIds"`
}

// historyAnswer is history.list's answer.
type historyAnswer struct {
	History []struct {
		ID            string `json:"id"`
		MessagesAdded []struct {
			Message ref `json:"message"`
		} `json:"messagesAdded"`
	} `json:"history"`
	HistoryID     string `json:"historyId"`
	NextPageToken string `json:"nextPageToken"`
}

// Sync returns the INBOX messages added since the cursor's historyId
// (history.list, messageAdded), at most Config.MaxPages pages of them; More
// is set when others wait. Without a cursor it takes the profile's
// historyId and fetches the most recent INBOX messages (messages.list, at
// most Config.BackfillLimit, Config.MaxPages pages per Sync). A historyId
// Gmail no longer keeps (history.list 404: classify's sync_reset_required)
// or an unreadable cursor starts over that way and sets Reset; messages are
// recognised by their Gmail id (ProviderID), so none is stored twice. A
// message deleted between the listing and its fetch is skipped.
func (k *Connector) Sync(ctx context.Context, s *holdfast.Session, cursorText string) (*holdfast.SyncResult, error) {
	cur, err := parseCursor(cursorText)
	if err != nil {
		k.cfg.Logger.WarnContext(ctx, "gmail cursor unreadable, syncing from the start", "inbox_id", s.Inbox.ID, "err", err)
		return k.backfill(ctx, s, cursor{V: cursorVersion}, true)
	}
	if cur.HistoryID == "" || cur.PageToken != "" {
		return k.backfill(ctx, s, cur, false)
	}
	res, err := k.history(ctx, s, cur)
	if pe, ok := errors.AsType[*holdfast.ProviderError](err); ok && pe.Action == holdfast.ActionResync {
		k.cfg.Logger.InfoContext(ctx, "gmail historyId no longer kept, syncing from the start", "inbox_id", s.Inbox.ID, "err", err)
		return k.backfill(ctx, s, cursor{V: cursorVersion}, true)
	}
	return res, err
}

// backfill lists the most recent INBOX messages: from the start when
// cur.HistoryID is empty (taking the profile's historyId first, so that
// whatever arrives meanwhile is in the history after it), or on from
// cur.PageToken.
func (k *Connector) backfill(ctx context.Context, s *holdfast.Session, cur cursor, reset bool) (*holdfast.SyncResult, error) {
	res := &holdfast.SyncResult{Reset: reset}
	if cur.HistoryID == "" {
		p, err := k.profile(ctx, s)
		if err != nil {
			return nil, err
		}
		cur = cursor{V: cursorVersion, HistoryID: p.HistoryID}
	}
	var ids []string
	for page := 0; ; page++ {
		q := url.Values{}
		q.Set("labelIds", inboxLabel)
		q.Set("maxResults", strconv.Itoa(min(k.cfg.PageSize, k.cfg.BackfillLimit-cur.Listed)))
		if cur.PageToken != "" {
			q.Set("pageToken", cur.PageToken)
		}
		resp, err := k.client.Do(ctx, s, bearer.Request{Op: opList, Method: http.MethodGet, URL: k.api + "/messages?" + q.Encode()})
		if ae, ok := errors.AsType[*bearer.APIError](err); ok && cur.PageToken != "" && ae.Status == http.StatusBadRequest {
			// The page token of an earlier Sync is no longer good: the
			// backfill ends here, the history goes on from HistoryID.
			k.cfg.Logger.WarnContext(ctx, "gmail backfill page token refused; backfill ends", "inbox_id", s.Inbox.ID, "err", err)
			cur.PageToken, cur.Listed = "", 0
			break
		}
		if err != nil {
			return nil, err
		}
		var list listAnswer
		if err := json.Unmarshal(resp.Body, &list); err != nil {
			return nil, k.client.BadAnswer(s, opList, fmt.Errorf("gmail messages.list: %w", err))
		}
		for _, m := range list.Messages {
			ids = append(ids, m.ID)
		}
		cur.Listed += len(list.Messages)
		cur.PageToken = list.NextPageToken
		if cur.PageToken == "" || cur.Listed >= k.cfg.BackfillLimit {
			cur.PageToken, cur.Listed = "", 0
			break
		}
		if page+1 >= k.cfg.MaxPages {
			res.More = true
			break
		}
	}
	msgs, err := k.fetch(ctx, s, ids)
	if err != nil {
		return nil, err
	}
	res.Messages, res.Cursor = msgs, cur.String()
	return res, nil
}

// history follows history.list from cur.HistoryID.
func (k *Connector) history(ctx context.Context, s *holdfast.Session, cur cursor) (*holdfast.SyncResult, error) {
	res := &holdfast.SyncResult{}
	var ids []string
	seen := map[string]bool{}
	next := cur.HistoryID
	pageToken := ""
	for page := 0; ; page++ {
		q := url.Values{}
		q.Set("startHistoryId", cur.HistoryID)
		q.Set("historyTypes", "messageAdded")
		q.Set("labelId", inboxLabel)
		q.Set("maxResults", strconv.Itoa(k.cfg.PageSize))
		if pageToken != "" {
			q.Set("pageToken", pageToken)
		}
		resp, err := k.client.Do(ctx, s, bearer.Request{Op: opHistory, Method: http.MethodGet, URL: k.api + "/history?" + q.Encode()})
		if err != nil {
			return nil, err
		}
		var h historyAnswer
		if err := json.Unmarshal(resp.Body, &h); err != nil {
			return nil, k.client.BadAnswer(s, opHistory, fmt.Errorf("gmail history.list: %w", err))
		}
		for _, rec := range h.History {
			for _, a := range rec.MessagesAdded {
				m := a.Message
				if m.ID == "" || seen[m.ID] || (m.LabelIDs != nil && !slices.Contains(m.LabelIDs, inboxLabel)) {
					continue
				}
				seen[m.ID] = true
				ids = append(ids, m.ID)
			}
			if rec.ID != "" {
				next = rec.ID
			}
		}
		if h.NextPageToken == "" {
			if h.HistoryID != "" {
				next = h.HistoryID
			}
			break
		}
		if page+1 >= k.cfg.MaxPages {
			// Resume after the last record read.
			res.More = true
			break
		}
		pageToken = h.NextPageToken
	}
	msgs, err := k.fetch(ctx, s, ids)
	if err != nil {
		return nil, err
	}
	res.Messages = msgs
	res.Cursor = cursor{V: cursorVersion, HistoryID: next}.String()
	return res, nil
}

// gmailMessage is messages.get's answer with format=metadata.
type gmailMessage struct {
	ID           string   `json:"id"`
	LabelIDs     []string `json:"labelIds"`
	Snippet      string   `json:"snippet"`
	InternalDate string   `json:"internalDate"`
	Payload      struct {
		Headers []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
	} `json:"payload"`
}

// fetch gets the metadata of each message, in order. A message gone
// meanwhile (404, classify's item_not_found) is skipped.
func (k *Connector) fetch(ctx context.Context, s *holdfast.Session, ids []string) ([]holdfast.Message, error) {
	q := url.Values{}
	q.Set("format", "metadata")
	for _, h := range metadataHeaders {
		q.Add("metadataHeaders", h)
	}
	query := q.Encode()
	msgs := make([]holdfast.Message, 0, len(ids))
	for _, id := range ids {
		resp, err := k.client.Do(ctx, s, bearer.Request{Op: opGet, Method: http.MethodGet, URL: k.api + "/messages/" + url.PathEscape(id) + "?" + query})
		if pe, ok := errors.AsType[*holdfast.ProviderError](err); ok && pe.Reason == holdfast.ReasonItemNotFound {
			k.cfg.Logger.DebugContext(ctx, "gmail message gone before it was fetched", "inbox_id", s.Inbox.ID, "message", id)
			continue
		}
		if err != nil {
			return nil, err
		}
		var gm gmailMessage
		if err := json.Unmarshal(resp.Body, &gm); err != nil || gm.ID == "" {
			return nil, k.client.BadAnswer(s, opGet, fmt.Errorf("gmail messages.get %s: unreadable answer (%v)", id, err))
		}
		msgs = append(msgs, gm.message(s.Inbox.ID))
	}
	return msgs, nil
}

// wordDecoder decodes RFC 2047 encoded words in any charset go-message
// knows.
var wordDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

// message converts a Gmail message. ProviderID is the Gmail id.
func (gm gmailMessage) message(inboxID string) holdfast.Message {
	m := holdfast.Message{
		InboxID:    inboxID,
		ProviderID: gm.ID,
		Snippet:    holdfast.Snippet(html.UnescapeString(gm.Snippet)),
	}
	for _, h := range gm.Payload.Headers {
		switch strings.ToLower(h.Name) {
		case "from":
			if from := addresses(h.Value); len(from) > 0 {
				m.From = from[0]
			}
		case "to":
			m.To = addresses(h.Value)
		case "cc":
			m.Cc = addresses(h.Value)
		case "subject":
			if d, err := wordDecoder.DecodeHeader(h.Value); err == nil {
				m.Subject = d
			} else {
				m.Subject = h.Value
			}
		case "message-id":
			m.InternetMessageID = strings.TrimSpace(h.Value)
		}
	}
	if ms, err := strconv.ParseInt(gm.InternalDate, 10, 64); err == nil {
		m.ReceivedAt = time.UnixMilli(ms).UTC()
	}
	if !slices.Contains(gm.LabelIDs, "UNREAD") {
		m.Flags = append(m.Flags, `\Seen`)
	}
	if slices.Contains(gm.LabelIDs, "STARRED") {
		m.Flags = append(m.Flags, `\Flagged`)
	}
	return m
}

// addresses returns the bare addresses of an address-list header; a list
// that does not parse is split at commas and kept as it is.
func addresses(v string) []string {
	p := mail.AddressParser{WordDecoder: &wordDecoder}
	list, err := p.ParseList(v)
	if err != nil {
		var out []string
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
		return out
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out
}

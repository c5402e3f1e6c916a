package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/bearer"
)

// cursorVersion is the current cursor format.
const cursorVersion = 1

// cursor is where a Sync resumes, stored by the service as opaque JSON:
//
//	{"v":1,"deltaLink":"https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=..."}
//	{"v":1,"nextLink":"https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$skiptoken=..."}
//
// DeltaLink ends a completed round: the next Sync asks for what changed
// since. NextLink is the next page of a round that Sync left unfinished
// (Config.MaxPages) and set More. The links are Graph's own, followed as
// they are; both carry the $select of the first request.
type cursor struct {
	V         int    `json:"v"`
	DeltaLink string `json:"deltaLink,omitempty"`
	NextLink  string `json:"nextLink,omitempty"`
}

// String encodes the cursor.
func (c cursor) String() string {
	b, _ := json.Marshal(c) // a struct of strings and an int always encodes
	return string(b)
}

// parseCursor reads a cursor and returns the link it resumes from; the
// empty string is the start. A link must point to the configured Graph
// host, so that an altered cursor cannot send the bearer token elsewhere.
func (k *Connector) parseCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	var c cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return "", fmt.Errorf("graph cursor: %w", err)
	}
	if c.V != cursorVersion {
		return "", fmt.Errorf("graph cursor: unknown version %d", c.V)
	}
	link := c.NextLink
	if link == "" {
		link = c.DeltaLink
	}
	if link == "" {
		return "", errors.New("graph cursor: no link")
	}
	if err := k.checkLink(link); err != nil {
		return "", fmt.Errorf("graph cursor: %w", err)
	}
	return link, nil
}

// checkLink reports an error unless link is on the Graph host.
func (k *Connector) checkLink(link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return err
	}
	if u.Scheme != k.base.Scheme || !strings.EqualFold(u.Host, k.base.Host) {
		return fmt.Errorf("link to %s://%s, not to the Graph host", u.Scheme, u.Host)
	}
	return nil
}

// selectFields are the message properties a holdfast.Message needs.
var selectFields = []string{
	"id", "internetMessageId", "from", "toRecipients", "ccRecipients", "subject",
	"receivedDateTime", "bodyPreview", "isRead", "flag",
}

// deltaURL is the first request of a delta round on the inbox.
func (k *Connector) deltaURL() string {
	return k.api + "/me/mailFolders/inbox/messages/delta?$select=" + strings.Join(selectFields, ",")
}

// deltaPage is one page of a delta round.
type deltaPage struct {
	NextLink  string         `json:"@odata.nextLink"`
	DeltaLink string         `json:"@odata.deltaLink"`
	Value     []graphMessage `json:"value"`
}

// Sync runs Graph delta on the inbox from the cursor's link (empty: a new
// round from the start), following @odata.nextLink for at most
// Config.MaxPages pages. A finished round's @odata.deltaLink becomes the
// cursor; an unfinished one stores its next link and sets More.
//
// An expired delta or skip token (410 Gone, SyncStateNotFound,
// resyncRequired, InvalidSyncStateData: classify's sync_reset_required)
// or an unreadable cursor starts a new round from the start and sets Reset;
// messages are recognised by their Graph id (ProviderID), so none is stored
// twice. Deleted messages (@removed) and partial updates are skipped.
func (k *Connector) Sync(ctx context.Context, s *holdfast.Session, cursorText string) (*holdfast.SyncResult, error) {
	res := &holdfast.SyncResult{}
	link, err := k.parseCursor(cursorText)
	if err != nil {
		k.cfg.Logger.WarnContext(ctx, "graph cursor unreadable, syncing from the start", "inbox_id", s.Inbox.ID, "err", err)
		link, res.Reset = "", true
	}
	index := map[string]int{} // Graph id -> position in res.Messages
	for page := 0; ; page++ {
		u := link
		if u == "" {
			u = k.deltaURL()
		}
		resp, err := k.client.Do(ctx, s, bearer.Request{
			Op: opDelta, Method: http.MethodGet, URL: u,
			Header: http.Header{"Prefer": {"odata.maxpagesize=" + strconv.Itoa(k.cfg.PageSize)}},
		})
		if err != nil {
			if pe, ok := errors.AsType[*holdfast.ProviderError](err); ok && pe.Action == holdfast.ActionResync && link != "" && !res.Reset {
				k.cfg.Logger.InfoContext(ctx, "graph delta token expired, syncing from the start", "inbox_id", s.Inbox.ID, "err", err)
				link, res.Reset = "", true
				continue
			}
			return nil, err
		}
		var p deltaPage
		if err := json.Unmarshal(resp.Body, &p); err != nil {
			return nil, k.badPage(s, fmt.Errorf("graph delta page: %w", err))
		}
		for _, gm := range p.Value {
			i, seen := index[gm.ID]
			switch {
			case gm.ID == "":
				continue
			case gm.Removed != nil:
				// Deleted or moved out of the inbox: holdfast keeps what
				// it synced.
				if seen {
					res.Messages[i].ProviderID = ""
				}
				continue
			case gm.ReceivedDateTime == "":
				// A partial update (only changed properties).
				continue
			}
			m := gm.message(s.Inbox.ID)
			if seen {
				res.Messages[i] = m // a replay; the latest wins
			} else {
				index[gm.ID] = len(res.Messages)
				res.Messages = append(res.Messages, m)
			}
		}
		switch {
		case p.DeltaLink != "":
			if err := k.checkLink(p.DeltaLink); err != nil {
				return nil, k.badPage(s, fmt.Errorf("graph @odata.deltaLink: %w", err))
			}
			res.Cursor = cursor{V: cursorVersion, DeltaLink: p.DeltaLink}.String()
		case p.NextLink != "":
			if err := k.checkLink(p.NextLink); err != nil {
				return nil, k.badPage(s, fmt.Errorf("graph @odata.nextLink: %w", err))
			}
			if page+1 < k.cfg.MaxPages {
				link = p.NextLink
				continue
			}
			res.Cursor = cursor{V: cursorVersion, NextLink: p.NextLink}.String()
			res.More = true
		default:
			return nil, k.badPage(s, errors.New("graph delta page has neither @odata.nextLink nor @odata.deltaLink"))
		}
		break
	}
	// Drop the messages removed after they were seen.
	kept := res.Messages[:0]
	for _, m := range res.Messages {
		if m.ProviderID != "" {
			kept = append(kept, m)
		}
	}
	res.Messages = kept
	return res, nil
}

// badPage classifies a 2xx answer holdfast cannot read: recoverable,
// reason unknown.
func (k *Connector) badPage(s *holdfast.Session, err error) error {
	return k.client.BadAnswer(s, opDelta, err)
}

// graphMessage is a message as delta returns it.
type graphMessage struct {
	ID                string      `json:"id"`
	Removed           *struct{}   `json:"@removed"`
	InternetMessageID string      `json:"internetMessageId"`
	Subject           string      `json:"subject"`
	From              *recipient  `json:"from"`
	To                []recipient `json:"toRecipients"`
	Cc                []recipient `json:"ccRecipients"`
	ReceivedDateTime  string      `json:"receivedDateTime"`
	BodyPreview       string      `json:"bodyPreview"`
	IsRead            bool        `json:"isRead"`
	Flag              *struct {
		FlagStatus string `json:"flagStatus"`
	} `json:"flag"`
}

type recipient struct {
	EmailAddress struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"emailAddress"`
}

// message converts a Graph message. ProviderID is the Graph id.
func (gm graphMessage) message(inboxID string) holdfast.Message {
	m := holdfast.Message{
		InboxID:           inboxID,
		ProviderID:        gm.ID,
		InternetMessageID: gm.InternetMessageID,
		Subject:           gm.Subject,
		To:                addresses(gm.To),
		Cc:                addresses(gm.Cc),
		Snippet:           holdfast.Snippet(gm.BodyPreview),
	}
	if gm.From != nil {
		m.From = gm.From.EmailAddress.Address
	}
	if t, err := time.Parse(time.RFC3339, gm.ReceivedDateTime); err == nil {
		m.ReceivedAt = t.UTC()
	}
	if gm.IsRead {
		m.Flags = append(m.Flags, `\Seen`)
	}
	if gm.Flag != nil && strings.EqualFold(gm.Flag.FlagStatus, "flagged") {
		m.Flags = append(m.Flags, `\Flagged`)
	}
	return m
}

func addresses(rs []recipient) []string {
	var out []string
	for _, r := range rs {
		if a := r.EmailAddress.Address; a != "" {
			out = append(out, a)
		}
	}
	return out
}

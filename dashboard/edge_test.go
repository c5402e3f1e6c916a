package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/holdfast/holdfast"
)

// TestFormTextRejected shows text checked at the edge (issue 12, point 2):
// a dashboard form field holding a NUL byte or invalid UTF-8 is a 400
// naming the field, and nothing is declared.
func TestFormTextRejected(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, field, value string
	}{
		{"NUL in note", "note", "a\x00b"},
		{"invalid UTF-8 in tenant", "tenant", "ab\xffcd"},
		{"note too long", "note", strings.Repeat("n", 5000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			br := b.browser(t)
			csrf := br.login(b.key)
			form := url.Values{"csrf": {csrf}, "provider": {"google"}, tt.field: {tt.value}}
			w := br.do("POST", "/ui/incidents", form)
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tt.field) {
				t.Errorf("POST /ui/incidents with %s = %d, want 400 naming %q:\n%.300s", tt.name, w.Code, tt.field, w.Body)
			}
			if len(b.health.declared) != 0 {
				t.Errorf("declared %v from a rejected form", b.health.declared)
			}
		})
	}
}

// TestQueryTextRejected: a query parameter that is not text is a 400
// naming it.
func TestQueryTextRejected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := b.browser(t)
	br.login(b.key)
	for _, path := range []string{"/ui/inboxes?q=a%00", "/ui/outbox?status=%ff", "/ui/inboxes/" + inboxA + "?before=%c3%28"} {
		w := br.do("GET", path, nil)
		name := path[strings.IndexByte(path, '?')+1 : strings.IndexByte(path, '=')]
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), name) {
			t.Errorf("GET %s = %d, want 400 naming %q:\n%.300s", path, w.Code, name, w.Body)
		}
	}
}

// strictStore refuses, as PostgreSQL does (SQLSTATE 22021), an inbox ID
// that is not valid UTF-8 or holds a NUL byte.
type strictStore struct{ holdfast.Store }

func (s strictStore) Inbox(ctx context.Context, id string) (*holdfast.Inbox, error) {
	if !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return nil, errors.New(`ERROR: invalid byte sequence for encoding "UTF8" (SQLSTATE 22021)`)
	}
	return s.Store.Inbox(ctx, id)
}

// TestInboxPathNotAnID: an inbox page whose {id} cannot be an inbox ID
// is a 404, without asking the store (which on PostgreSQL fails on NUL
// and invalid UTF-8, a 500 before).
func TestInboxPathNotAnID(t *testing.T) {
	t.Parallel()
	b := setupOver(t, false, func(s holdfast.Store) holdfast.Store { return strictStore{s} })
	br := b.browser(t)
	br.login(b.key)
	for _, path := range []string{"/ui/inboxes/inb_%00", "/ui/inboxes/inb_%ff", "/ui/inboxes/not-an-id"} {
		if w := br.do("GET", path, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404:\n%.300s", path, w.Code, w.Body)
		}
	}
	if w := br.do("GET", "/ui/inboxes/"+inboxA, nil); w.Code != http.StatusOK {
		t.Errorf("GET the page of a real inbox = %d", w.Code)
	}
}

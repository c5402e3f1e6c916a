package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
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

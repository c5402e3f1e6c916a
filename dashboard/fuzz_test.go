package dashboard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/holdfast/holdfast"
)

// formRoutes are the dashboard's routes that take client input: its
// forms, and the query strings of its lists.
var formRoutes = []struct{ method, path string }{
	{"POST", "/ui/incidents"},
	{"POST", "/ui/incidents/2/resolve"},
	{"POST", "/ui/held/1/release"},
	{"GET", "/ui/inboxes"},
	{"GET", "/ui/outbox"},
	{"GET", "/ui/incidents"},
	{"GET", "/ui/inboxes/" + inboxA},
	{"GET", "/ui/held"},
}

// dashSnapshot is what the dashboard's forms could change.
func dashSnapshot(t *testing.T, b *testBundle) string {
	t.Helper()
	ins, err := b.st.Incidents(t.Context(), false, 1000)
	if err != nil {
		t.Fatal(err)
	}
	held, err := b.st.FindHeldActions(t.Context(), holdfast.HeldActionFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	b.health.mu.Lock()
	defer b.health.mu.Unlock()
	out, err := json.Marshal([]any{ins, held, b.health.declared, b.health.resolved, b.health.released})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// FuzzForms drives the dashboard's forms and query strings with arbitrary
// input (issue 12, point 13): no request fails inside (5xx), no NUL
// character reaches the store, every 400 names the field, and a request
// answered 4xx changes nothing stored.
func FuzzForms(f *testing.F) {
	for _, seed := range []struct {
		route       uint8
		query, form string
	}{
		{0, "", "provider=imap&note=a%00b"},
		{0, "", "provider=google&tenant=%ff"},
		{0, "", "provider=google&note=n"},
		{0, "", "provider=google&start=2026-11-28T10:00&end=2026-11-28T11:00:00Z&note=retro"},
		{0, "", "provider=google&start=yesterday"},
		{1, "", ""},
		{2, "", ""},
		{3, "q=contoso", ""},
		{3, "q=a%00", ""},
		{4, "status=sent", ""},
		{4, "status=%ff", ""},
		{5, "done=declared", ""},
		{6, "before=12", ""},
		{7, "x=%c3%28", ""},
	} {
		f.Add(seed.route, seed.query, seed.form)
	}
	b := setup(f)
	br := b.browser(f)
	csrf := br.login(b.key)
	f.Fuzz(func(t *testing.T, route uint8, query, form string) {
		br.t = t // testing.F's methods may not be called inside the fuzz target
		rt := formRoutes[int(route)%len(formRoutes)]
		target := rt.path
		if query != "" {
			if _, err := url.ParseQuery(query); err != nil && strings.ContainsAny(query, "# ") {
				return // not a query string a browser would send
			}
			target += "?" + query
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			return
		}
		var values url.Values
		if rt.method == "POST" {
			values, _ = url.ParseQuery(form)
			if values == nil {
				values = url.Values{}
			}
			values.Set("csrf", csrf)
		}
		before := dashSnapshot(t, b)
		w := br.do(rt.method, target, values)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q = %d; want no failure inside:\n%s", rt.method, target, form, w.Code, w.Body)
		}
		after := dashSnapshot(t, b)
		if strings.Contains(after, `\u0000`) {
			t.Fatalf("%s %s %q = %d, and a NUL character reached the store (PostgreSQL cannot keep one):\n%s", rt.method, target, form, w.Code, after)
		}
		if w.Code < 400 {
			return
		}
		if after != before {
			t.Fatalf("%s %s %q = %d, but the stored data changed:\nbefore %s\nafter  %s", rt.method, target, form, w.Code, before, after)
		}
		if w.Code == http.StatusBadRequest && !strings.Contains(w.Body.String(), ": ") {
			t.Fatalf("%s %s %q = 400 without naming the field:\n%.500s", rt.method, target, form, w.Body)
		}
	})
}

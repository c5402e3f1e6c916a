package emulator_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/emulator"
)

// bulkAnswer is the body of POST /_emulator/accounts/bulk.
type bulkAnswer struct {
	Provider emulator.Provider      `json:"provider"`
	Count    int                    `json:"count"`
	Accounts []emulator.BulkAccount `json:"accounts"`
}

func TestBulkAccounts(t *testing.T) {
	t.Parallel()
	for _, p := range []emulator.Provider{emulator.Microsoft, emulator.Google} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{MaxAccounts: 5000})
			r := b.postJSON(t, b.u.Control+"/accounts/bulk", "", map[string]any{
				"provider": p, "prefix": "lt", "domain_count": 3, "count": 4500, "start": 10})
			if r.status != http.StatusOK {
				t.Fatalf("bulk: %d %s", r.status, r.body)
			}
			var got bulkAnswer
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("bulk answer: %v", err)
			}
			if got.Count != 4500 || len(got.Accounts) != 4500 || got.Provider != p {
				t.Fatalf("bulk answer: count %d, %d accounts, provider %s", got.Count, len(got.Accounts), got.Provider)
			}
			first, last := got.Accounts[0], got.Accounts[4499]
			if first.Email != "lt10@t1.example" || first.Tenant != "t1.example" || last.Email != "lt4509@t0.example" {
				t.Fatalf("first %+v, last %+v", first, last)
			}
			if e := emulator.BulkEmail("lt", 4509, 3); e != last.Email {
				t.Fatalf("BulkEmail = %s; want %s", e, last.Email)
			}
			// Each refresh token works.
			for _, a := range []emulator.BulkAccount{first, last} {
				if tr := b.refresh(t, p, a.RefreshToken); tr.status != http.StatusOK {
					t.Fatalf("refresh %s: %d %s", a.Email, tr.status, tr.body)
				}
			}
			// The tenant is the domain, in Microsoft's tokens too.
			if p == emulator.Microsoft {
				at := b.refresh(t, p, first.RefreshToken).json(t)["access_token"].(string)
				payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(at, ".")[1])
				if !strings.Contains(string(payload), `"tid":"t1.example"`) {
					t.Fatalf("access token claims %s lack tid t1.example", payload)
				}
			}
			// The same again: found, with new grants, no new accounts.
			if r := b.postJSON(t, b.u.Control+"/accounts/bulk", "", map[string]any{
				"provider": p, "prefix": "lt", "domain_count": 3, "count": 2, "start": 10}); r.status != http.StatusOK {
				t.Fatalf("bulk again: %d %s", r.status, r.body)
			}
			if n := b.e.Stats().Accounts[p]; n != 4500 {
				t.Fatalf("accounts = %d; want 4500", n)
			}
			// Too many for the table: nothing is made.
			if r := b.postJSON(t, b.u.Control+"/accounts/bulk", "", map[string]any{
				"provider": p, "prefix": "more", "domain_count": 3, "count": 501}); r.status != http.StatusInsufficientStorage {
				t.Fatalf("bulk over the limit: %d %s", r.status, r.body)
			}
			if n := b.e.Stats().Accounts[p]; n != 4500 {
				t.Fatalf("accounts after a refused bulk = %d; want 4500", n)
			}
		})
	}
}

func TestBulkAccountsInvalid(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	if _, err := b.e.CreateAccounts(emulator.Bulk{Provider: emulator.Google, Prefix: "g", DomainCount: 1, Count: 2}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		field  string
	}{
		{"provider", map[string]any{"provider": "yahoo", "prefix": "a", "domain_count": 1, "count": 1}, 400, "provider"},
		{"prefix", map[string]any{"provider": "google", "prefix": "A B", "domain_count": 1, "count": 1}, 400, "prefix"},
		{"domains", map[string]any{"provider": "google", "prefix": "a", "domain_count": 0, "count": 1}, 400, "domain_count"},
		{"count", map[string]any{"provider": "google", "prefix": "a", "domain_count": 1, "count": 0}, 400, "count"},
		{"start", map[string]any{"provider": "google", "prefix": "a", "domain_count": 1, "count": 1, "start": -1}, 400, "start"},
		{"unknown field", map[string]any{"provider": "google", "prefix": "a", "domain_count": 1, "count": 1, "x": 1}, 400, "x"},
		{"other provider", map[string]any{"provider": "microsoft", "prefix": "g", "domain_count": 1, "count": 1}, 409, ""},
	} {
		r := b.postJSON(t, b.u.Control+"/accounts/bulk", "", tc.body)
		if r.status != tc.status {
			t.Errorf("%s: %d %s; want %d", tc.name, r.status, r.body, tc.status)
			continue
		}
		if f, _ := r.json(t)["error"].(map[string]any)["field"].(string); f != tc.field {
			t.Errorf("%s: field %q; want %q", tc.name, f, tc.field)
		}
	}
}

// graphDelta runs a whole delta round from u (a first URL or a deltaLink)
// and returns the subjects seen and the deltaLink.
func graphDelta(t *testing.T, b *testBundle, u, at string) ([]string, string) {
	t.Helper()
	var subjects []string
	for {
		r := b.get(t, u, at)
		if r.status != http.StatusOK {
			t.Fatalf("delta: %d %s", r.status, r.body)
		}
		v := r.json(t)
		for _, m := range v["value"].([]any) {
			subjects = append(subjects, m.(map[string]any)["subject"].(string))
		}
		if next, ok := v["@odata.nextLink"].(string); ok {
			u = next
			continue
		}
		return subjects, v["@odata.deltaLink"].(string)
	}
}

func TestKeepMessagesKeepsCursors(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{KeepMessages: 5})
	_, at := b.account(t, emulator.Microsoft, "keep@contoso.example", "")
	_, gat := b.account(t, emulator.Google, "keep@gmail.example", "")
	deliver := func(to string, from, n int) {
		for i := from; i < from+n; i++ {
			if _, err := b.e.Deliver(emulator.Mail{To: to, From: "s@example.net", Subject: fmt.Sprint("m", i), Text: "x"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Graph: 8 delivered, the last 5 kept; a round after the cap sees
	// them, and the next round only what came after.
	deliver("keep@contoso.example", 0, 8)
	subjects, link := graphDelta(t, b, b.u.Graph+"/v1.0/me/mailFolders/inbox/messages/delta", at)
	if want := []string{"m3", "m4", "m5", "m6", "m7"}; !slices.Equal(subjects, want) {
		t.Fatalf("first round: %v; want %v", subjects, want)
	}
	deliver("keep@contoso.example", 8, 7)
	subjects, _ = graphDelta(t, b, link, at)
	if want := []string{"m10", "m11", "m12", "m13", "m14"}; !slices.Equal(subjects, want) {
		t.Fatalf("round after the cap: %v; want %v", subjects, want)
	}

	// Gmail: history from an id taken before the cap passed returns the
	// kept additions, and a dropped message answers 404.
	prof := b.get(t, b.u.Gmail+"/gmail/v1/users/me/profile", gat).json(t)
	start := prof["historyId"].(string)
	ds := b.deliver(t, "keep@gmail.example", 8)
	h := b.get(t, b.u.Gmail+"/gmail/v1/users/me/history?startHistoryId="+start, gat)
	if h.status != http.StatusOK {
		t.Fatalf("history: %d %s", h.status, h.body)
	}
	var hist struct {
		History []struct {
			MessagesAdded []struct {
				Message struct{ ID string } `json:"message"`
			} `json:"messagesAdded"`
		} `json:"history"`
	}
	if err := json.Unmarshal(h.body, &hist); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, rec := range hist.History {
		for _, a := range rec.MessagesAdded {
			ids = append(ids, a.Message.ID)
		}
	}
	var want []string
	for _, d := range ds[3:] {
		want = append(want, d.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("history ids %v; want %v", ids, want)
	}
	if r := b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages/"+ds[0].ID, gat); r.status != http.StatusNotFound {
		t.Fatalf("dropped message: %d; want 404", r.status)
	}
	if r := b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages/"+ds[7].ID, gat); r.status != http.StatusOK {
		t.Fatalf("kept message: %d %s", r.status, r.body)
	}
}

// waitFor polls cond every few milliseconds for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTraffic(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{KeepMessages: 50})
	_, gat := b.account(t, emulator.Google, "a@gmail.example", "")
	b.account(t, emulator.Google, "b@gmail.example", "")
	b.account(t, emulator.Microsoft, "c@contoso.example", "")

	r := b.postJSON(t, b.u.Control+"/traffic", "", map[string]any{
		"rate_per_sec": 100, "emails": []string{"a@gmail.example", "b@gmail.example"}, "seed": 7})
	if r.status != http.StatusOK || r.json(t)["running"] != true {
		t.Fatalf("start traffic: %d %s", r.status, r.body)
	}
	// The clock is fake: one second brings 100 messages, exactly.
	b.clock.Advance(time.Second)
	waitFor(t, "100 generated", func() bool { return b.e.Stats().Generated == 100 })
	// Ten seconds later only one second's worth comes (the backlog is
	// skipped).
	b.clock.Advance(10 * time.Second)
	waitFor(t, "200 generated", func() bool { return b.e.Stats().Generated == 200 })
	if r := b.do(t, http.MethodDelete, b.u.Control+"/traffic", nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("stop traffic: %d %s", r.status, r.body)
	}
	b.clock.Advance(time.Second)
	time.Sleep(30 * time.Millisecond)
	st := b.e.Stats()
	if st.Generated != 200 || st.Traffic.Running || st.Delivered != 200 || st.Dropped != 0 {
		t.Fatalf("after stop: generated %d, delivered %d, dropped %d, traffic %+v", st.Generated, st.Delivered, st.Dropped, st.Traffic)
	}

	// A generated message carries its arrival time.
	l := b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages?maxResults=1", gat).json(t)
	id := l["messages"].([]any)[0].(map[string]any)["id"].(string)
	raw := b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages/"+id+"?format=raw", gat).json(t)["raw"].(string)
	msg, err := base64.URLEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	arrived := b.clock.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	for _, want := range []string{emulator.HeaderArrived + ": " + arrived, "Subject: loadtest ", " arrived " + arrived, "Message-ID: <arrived."} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("generated message lacks %q:\n%s", want, msg)
		}
	}

	// "all" picks from every account, Microsoft too; bad input is refused.
	if r := b.postJSON(t, b.u.Control+"/traffic", "", map[string]any{"rate_per_sec": 1000, "emails": "all"}); r.status != http.StatusOK {
		t.Fatalf("traffic to all: %d %s", r.status, r.body)
	}
	b.clock.Advance(time.Second)
	waitFor(t, "1200 generated", func() bool { return b.e.Stats().Generated == 1200 })
	for _, body := range []map[string]any{
		{"rate_per_sec": 0}, {"rate_per_sec": 10, "emails": "some"}, {"rate_per_sec": 10, "emails": []string{"nobody@x.example"}},
	} {
		if r := b.postJSON(t, b.u.Control+"/traffic", "", body); r.status != http.StatusBadRequest {
			t.Errorf("traffic %v: %d %s; want 400", body, r.status, r.body)
		}
	}
	// The cleanup's Close stops the generator that still runs.
}

func TestStatsDuplicateSyncs(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	_, at := b.account(t, emulator.Microsoft, "m@contoso.example", "")
	_, gat := b.account(t, emulator.Google, "g@gmail.example", "")
	b.deliver(t, "m@contoso.example", 15) // two delta pages
	delta := b.u.Graph + "/v1.0/me/mailFolders/inbox/messages/delta"

	_, link := graphDelta(t, b, delta, at) // sync 1 (2 pages, one sync call)
	b.clock.Advance(200 * time.Millisecond)
	graphDelta(t, b, link, at) // sync 2: a duplicate (window 1s)
	b.clock.Advance(2 * time.Second)
	graphDelta(t, b, link, at) // sync 3: not one
	if r := b.postJSON(t, b.u.Control+"/stats/config", "", map[string]any{"dup_window_ms": 5000}); r.status != http.StatusOK {
		t.Fatalf("stats config: %d %s", r.status, r.body)
	}
	b.clock.Advance(2 * time.Second)
	graphDelta(t, b, link, at) // sync 4: a duplicate now

	hist := b.u.Gmail + "/gmail/v1/users/me/history?startHistoryId=1001"
	b.get(t, hist, gat)                                                            // sync
	b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages?labelIds=INBOX", gat)          // sync, a duplicate
	b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages?q=rfc822msgid:%3Cx@y%3E", gat) // a search, not a sync

	r := b.get(t, b.u.Control+"/stats", "")
	if r.status != http.StatusOK {
		t.Fatalf("stats: %d %s", r.status, r.body)
	}
	var st emulator.Stats
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.SyncCalls != 6 || st.DuplicateSyncs != 3 || st.AccountsWithDuplicateSyncs != 2 || st.DupWindowMS != 5000 {
		t.Fatalf("sync stats: calls %d, duplicates %d, accounts %d, window %d; want 6, 3, 2, 5000",
			st.SyncCalls, st.DuplicateSyncs, st.AccountsWithDuplicateSyncs, st.DupWindowMS)
	}
	if len(st.TopDuplicateSyncs) != 2 || st.TopDuplicateSyncs[0].Email != "m@contoso.example" ||
		st.TopDuplicateSyncs[0].DuplicateSyncs != 2 || st.TopDuplicateSyncs[0].SyncCalls != 4 || len(st.TopDuplicateSyncs[0].LastSyncs) != 2 {
		t.Fatalf("top duplicates: %+v", st.TopDuplicateSyncs)
	}
	if st.TokenRequests[emulator.Microsoft] != 1 || st.TokenRequests[emulator.Google] != 1 ||
		st.APIRequests[emulator.Microsoft] != 5 || st.APIRequests[emulator.Google] != 3 {
		t.Fatalf("requests: token %v, api %v", st.TokenRequests, st.APIRequests)
	}
	if st.Accounts[emulator.Microsoft] != 1 || st.Accounts[emulator.Google] != 1 || st.Delivered != 15 {
		t.Fatalf("accounts %v, delivered %d", st.Accounts, st.Delivered)
	}
	if r := b.post(t, b.u.Control+"/stats/reset", "", "application/json", nil); r.status != http.StatusNoContent {
		t.Fatalf("reset: %d", r.status)
	}
	if st := b.e.Stats(); st.SyncCalls != 0 || st.AccountsWithDuplicateSyncs != 0 || st.DupWindowMS != 5000 || st.Accounts[emulator.Google] != 1 {
		t.Fatalf("after reset: %+v", st)
	}
}

func TestSentSummary(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	_, gat := b.account(t, emulator.Google, "s@gmail.example", "")
	send := func(id string) {
		raw := "From: s@gmail.example\r\nTo: r@example.net\r\nSubject: hi\r\nMessage-ID: " + id + "\r\n\r\nhello\r\n"
		r := b.postJSON(t, b.u.Gmail+"/gmail/v1/users/me/messages/send", gat,
			map[string]string{"raw": base64.URLEncoding.EncodeToString([]byte(raw))})
		if r.status != http.StatusOK {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
	}
	send("<a@x.example>")
	send("<b@x.example>")
	send("<a@x.example>")
	send("<c@x.example>")
	send("<c@x.example>")
	r := b.get(t, b.u.Control+"/sent/summary", "")
	var s emulator.SentSummary
	if err := json.Unmarshal(r.body, &s); err != nil || r.status != http.StatusOK {
		t.Fatalf("summary: %d %s %v", r.status, r.body, err)
	}
	if s.Total != 5 || s.DistinctMessageIDs != 3 || !slices.Equal(s.Duplicates, []string{"<a@x.example>", "<c@x.example>"}) {
		t.Fatalf("summary %+v", s)
	}
	if st := b.e.Stats(); st.SendsAccepted != 5 || st.DistinctMessageIDs != 3 {
		t.Fatalf("stats sends %d distinct %d", st.SendsAccepted, st.DistinctMessageIDs)
	}
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	rt, at := b.account(t, emulator.Microsoft, "cap@contoso.example", "") // before the limit
	r := b.postJSON(t, b.u.Control+"/capacity", "", map[string]any{"provider": "microsoft", "capacity_per_s": 2})
	if r.status != http.StatusOK {
		t.Fatalf("capacity: %d %s", r.status, r.body)
	}
	me := b.u.Graph + "/v1.0/me"
	if r := b.get(t, me, at); r.status != http.StatusOK {
		t.Fatalf("first: %d", r.status)
	}
	if r := b.refresh(t, emulator.Microsoft, rt); r.status != http.StatusOK {
		t.Fatalf("second (token endpoint, same budget): %d", r.status)
	}
	r = b.get(t, me, at)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || apiErrorCode(t, r) != "TooManyRequests" {
		t.Fatalf("third: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	r = b.refresh(t, emulator.Microsoft, rt)
	if r.status != http.StatusTooManyRequests || errorField(t, r) != "temporarily_unavailable" {
		t.Fatalf("token over capacity: %d %s", r.status, r.body)
	}
	// Google is not limited.
	_, gat := b.account(t, emulator.Google, "cap@gmail.example", "")
	for range 5 {
		if r := b.get(t, b.u.Gmail+"/gmail/v1/users/me/profile", gat); r.status != http.StatusOK {
			t.Fatalf("gmail: %d", r.status)
		}
	}
	b.clock.Advance(time.Second)
	if r := b.get(t, me, at); r.status != http.StatusOK {
		t.Fatalf("a second later: %d", r.status)
	}
	if st := b.e.Stats(); st.Throttled[emulator.Microsoft] != 2 || st.Capacity[emulator.Microsoft] != 2 {
		t.Fatalf("throttled %v, capacity %v", st.Throttled, st.Capacity)
	}
	// A fixed Retry-After; zero removes the limit.
	if err := b.e.SetCapacity(emulator.Microsoft, 1, 30); err != nil {
		t.Fatal(err)
	}
	b.get(t, me, at)
	if r := b.get(t, me, at); r.header.Get("Retry-After") != "30" {
		t.Fatalf("retry after %q; want 30", r.header.Get("Retry-After"))
	}
	if err := b.e.SetCapacity(emulator.Microsoft, 0, 0); err != nil {
		t.Fatal(err)
	}
	if r := b.get(t, me, at); r.status != http.StatusOK {
		t.Fatalf("without a limit: %d", r.status)
	}
	if err := b.e.SetCapacity("yahoo", 1, 0); err == nil {
		t.Fatal("SetCapacity(yahoo) did not fail")
	}
}

// outageBody is the token endpoint's answer in the 2025-03-01 outage
// (/work/shared/scenarios/ms365-2025-03-01.json): it reads as revoked.
const outageBody = `{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.","error_codes":[50173],"suberror":"bad_token"}`

func TestSeedOutage(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{Seed: 3})
	accs, err := b.e.CreateAccounts(emulator.Bulk{Provider: emulator.Microsoft, Prefix: "o", DomainCount: 10, Count: 200})
	if err != nil {
		t.Fatal(err)
	}
	r := b.postJSON(t, b.u.Control+"/faults", "", map[string]any{
		"provider": "microsoft", "surfaces": []string{"token"}, "account_fraction": 0.5, "duration_s": 60,
		"answers": []map[string]any{
			{"http_status": 400, "body": outageBody, "weight": 5},
			{"http_status": 503, "body": `{"error":"temporarily_unavailable","error_codes":[90033]}`, "retry_after_s": 5, "weight": 2},
		}})
	if r.status != http.StatusOK {
		t.Fatalf("fault: %d %s", r.status, r.body)
	}
	statuses := map[int]int{}
	for _, a := range accs {
		r := b.refresh(t, emulator.Microsoft, a.RefreshToken)
		struck := emulator.AccountShare(a.Email) < 0.5
		switch {
		case !struck && r.status != http.StatusOK:
			t.Fatalf("%s is outside the share but got %d", a.Email, r.status)
		case struck && r.status == http.StatusOK:
			t.Fatalf("%s is in the share but got 200", a.Email)
		case r.status == 400 && string(r.body) != outageBody:
			t.Fatalf("400 body %s", r.body)
		case r.status == 503 && r.header.Get("Retry-After") != "5":
			t.Fatalf("503 Retry-After %q", r.header.Get("Retry-After"))
		}
		statuses[r.status]++
	}
	if statuses[200] < 60 || statuses[400] < 40 || statuses[503] < 10 || statuses[400] <= statuses[503] {
		t.Fatalf("answers by status %v: want about half struck, 5:2 between 400 and 503", statuses)
	}
	if st := b.e.Stats(); st.Faulted[emulator.SurfaceToken] != uint64(statuses[400]+statuses[503]) {
		t.Fatalf("faulted %v; want %d", st.Faulted, statuses[400]+statuses[503])
	}
	// The outage ends after its duration.
	b.clock.Advance(61 * time.Second)
	for _, a := range accs[:20] {
		if r := b.refresh(t, emulator.Microsoft, a.RefreshToken); r.status != http.StatusOK {
			t.Fatalf("after the outage %s: %d %s", a.Email, r.status, r.body)
		}
	}
	for _, body := range []map[string]any{
		{"provider": "microsoft", "surfaces": []string{"token"}, "account_fraction": 1.5},
		{"provider": "microsoft", "surfaces": []string{"token"}, "duration_s": -1},
		{"provider": "microsoft", "surfaces": []string{"token"}, "answers": []map[string]any{{"http_status": 99}}},
	} {
		if r := b.postJSON(t, b.u.Control+"/faults", "", body); r.status != http.StatusBadRequest {
			t.Errorf("fault %v: %d; want 400", body, r.status)
		}
	}
}

func TestKeepMessagesPerFolder(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{KeepMessages: 3})
	_, at := b.account(t, emulator.Microsoft, "f@contoso.example", "")
	for i := range 2 {
		r := b.postJSON(t, b.u.Graph+"/v1.0/me/sendMail", at, map[string]any{"message": map[string]any{
			"subject": fmt.Sprint("sent", i), "body": map[string]string{"contentType": "text", "content": "x"},
			"toRecipients": []map[string]any{{"emailAddress": map[string]string{"address": "r@example.net"}}}}})
		if r.status != http.StatusAccepted {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
	}
	b.deliver(t, "f@contoso.example", 10) // inbound traffic does not push the sent copies out
	sent, _ := graphDelta(t, b, b.u.Graph+"/v1.0/me/mailFolders/sentitems/messages/delta", at)
	inbox, _ := graphDelta(t, b, b.u.Graph+"/v1.0/me/mailFolders/inbox/messages/delta", at)
	if !slices.Equal(sent, []string{"sent0", "sent1"}) || len(inbox) != 3 {
		t.Fatalf("sent %v, inbox %v; want both sent copies and 3 inbox messages", sent, inbox)
	}
}

package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/store/sqlite"
)

// The browser test's fleet: Microsoft inboxes in eight tenants, a few
// Google ones, all real grants in a `holdfast emulator`, and one owner
// whose second inbox (Google, seeded into the store) needs reconnecting.

// browserTenants are the Microsoft tenants of the browser test.
var browserTenants = []string{
	"contoso.com", "northwindtraders.com", "adventure-works.com", "fabrikam.com",
	"wingtiptoys.com", "tailspintoys.com", "litwareinc.com", "woodgrovebank.com",
}

// browserNames are the first names of the Microsoft inboxes' owners, in
// the order they are spread over browserTenants.
var browserNames = []string{
	"ana", "ben", "chloe", "dan", "eve", "finn", "gia", "hugo", "ines", "jack", "kira", "leo",
	"maya", "nils", "olga", "paul", "quinn", "rosa", "sam", "tara", "uma", "vik", "wren", "xena",
	"yuri", "zoe", "abel", "bea", "cyril", "dora", "emil", "fay", "gil", "hedy", "ivo", "jana",
	"kurt", "lena", "milo", "nora", "otto", "pia", "rafe", "sara", "tom", "ulla", "vera", "will",
	"ada", "boris", "cleo", "dev", "elsa", "felix", "greta", "hans", "ida", "jonas", "karl", "lila",
}

// browserMicrosoft returns n Microsoft addresses spread over
// browserTenants, one tenant after the other: ana@contoso.com,
// ben@northwindtraders.com, chloe@adventure-works.com, dan@fabrikam.com…
func browserMicrosoft(t *testing.T, n int) []string {
	t.Helper()
	if n > len(browserNames) {
		t.Fatalf("%d Microsoft inboxes, but only %d names", n, len(browserNames))
	}
	out := make([]string, n)
	for i := range n {
		out[i] = browserNames[i] + "@" + browserTenants[i%len(browserTenants)]
	}
	return out
}

// connectGrants makes an account for each address in the emulator and
// connects it through the API with the imported refresh token. It returns
// the inboxes' IDs by address.
func connectGrants(t *testing.T, api, key, ctl string, p emulator.Provider, emails []string) map[string]string {
	t.Helper()
	ids := make(map[string]string, len(emails))
	for _, email := range emails {
		var grant struct {
			RefreshToken string `json:"refresh_token"`
		}
		control(t, "POST", ctl+"/accounts", emulator.Account{Provider: p, Email: email}, &grant)
		code, body := call(t, "POST", api+"/v1/inboxes", key, map[string]any{"provider": string(p), "email": email, "refresh_token": grant.RefreshToken})
		if code != http.StatusCreated {
			t.Fatalf("POST /v1/inboxes %s = %d %v", email, code, body)
		}
		ids[email] = body["id"].(string)
	}
	return ids
}

// allInboxes returns every inbox as GET /v1/inboxes lists them, page
// after page.
func allInboxes(t *testing.T, api, key string) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		code, page := call(t, "GET", api+"/v1/inboxes?limit=1000&cursor="+cursor, key, nil)
		if code != http.StatusOK {
			t.Fatalf("GET /v1/inboxes = %d %v", code, page)
		}
		for _, d := range page["data"].([]any) {
			out = append(out, d.(map[string]any))
		}
		if cursor, _ = page["next_cursor"].(string); cursor == "" {
			return out
		}
	}
}

// fleetStates counts the inboxes per provider and state, as the API
// lists them: "microsoft/paused" → 12.
func fleetStates(t *testing.T, api, key string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range allInboxes(t, api, key) {
		out[fmt.Sprintf("%s/%s", m["provider"], m["state"])]++
	}
	return out
}

// openIncidentOf returns the open incident of provider p and kind, or nil.
func openIncidentOf(t *testing.T, api, key, p, kind string) map[string]any {
	t.Helper()
	code, body := call(t, "GET", api+"/v1/incidents?limit=100", key, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/incidents = %d %v", code, body)
	}
	for _, d := range body["data"].([]any) {
		if in := d.(map[string]any); in["provider"] == p && in["kind"] == kind && in["state"] == "open" {
			return in
		}
	}
	return nil
}

// seedOwner writes, before the service starts, a Google inbox of owner
// whose grant was revoked: connected 30 hours ago, suspect 95 minutes ago,
// needing reconnect for the last 50 minutes, with a notice to its owner
// pending. The owner's Microsoft inbox is connected later through the API.
func seedOwner(t *testing.T, e *testEnv, owner string) {
	t.Helper()
	if _, errOut, err := e.run("migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut)
	}
	st := openTestStore(t, e)
	defer st.Close()
	ctx := t.Context()
	now := time.Now().UTC()
	at := now.Add(-30 * time.Hour)
	in := &holdfast.Inbox{ID: holdfast.NewID("inb", at), Email: owner, Provider: holdfast.ProviderGoogle, Tenant: owner[strings.IndexByte(owner, '@')+1:],
		State: holdfast.StateConnecting, Reason: "created", Message: holdfast.DefaultMessage(holdfast.StateConnecting),
		Since: at, CreatedAt: at, UpdatedAt: at}
	if err := st.CreateInbox(ctx, in, holdfast.Event{InboxID: in.ID, At: at, NewState: holdfast.StateConnecting, Reason: "created",
		Message: "Inbox connected through the API.", Cause: holdfast.CauseAPI}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []holdfast.StateChange{
		{To: holdfast.StateConnected, Reason: "verified", At: at.Add(time.Minute)},
		{To: holdfast.StateSuspect, Reason: "token_revoked", At: now.Add(-95 * time.Minute)},
		{To: holdfast.StateNeedsReconnect, Reason: "token_revoked", At: now.Add(-50 * time.Minute)},
	} {
		c.Message, c.Cause = holdfast.DefaultMessage(c.To), holdfast.CauseHealth
		if _, err := st.ChangeState(ctx, in.ID, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AppendNotice(ctx, &holdfast.Notice{InboxID: in.ID, Episode: 1, Reason: "token_revoked", At: now.Add(-5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

// openTestStore opens the service's SQLite store beside it: WAL and the
// busy timeout let the test write while the service runs.
func openTestStore(t *testing.T, e *testEnv) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(e.env["HOLDFAST_DATA_DIR"], "holdfast.db"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// seedHistory gives the fleet charts a day of history, as the snapshot
// job would have recorded it, ending before until: microsoft and google inboxes
// connected (a short Microsoft blip in the afternoon, a Google one in the
// night) and the seeded owner's Google inbox going suspect, then needing
// reconnect. It first drops the snapshots the service took while the test
// was still connecting its inboxes.
func seedHistory(t *testing.T, st *sqlite.Store, microsoft, google int64, until time.Time) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC()
	if _, err := st.PruneFleetSnapshots(ctx, now); err != nil {
		t.Fatal(err)
	}
	for at := now.Add(-24 * time.Hour).Truncate(time.Minute); at.Before(until); at = at.Add(time.Minute) {
		ago := now.Sub(at)
		var msTrouble int64
		if ago > 6*time.Hour && ago <= 6*time.Hour+18*time.Minute {
			msTrouble = min(4, int64(6*time.Hour+18*time.Minute-ago)/int64(3*time.Minute)+1)
		}
		gState := holdfast.StateConnected
		if ago > 9*time.Hour && ago <= 9*time.Hour+40*time.Minute {
			gState = holdfast.StateDegraded
		}
		ownerState := holdfast.StateConnected
		switch {
		case ago <= 50*time.Minute:
			ownerState = holdfast.StateNeedsReconnect
		case ago <= 95*time.Minute:
			ownerState = holdfast.StateSuspect
		}
		snap := []holdfast.InboxCount{
			{Provider: holdfast.ProviderMicrosoft, State: holdfast.StateConnected, Count: microsoft - msTrouble},
			{Provider: holdfast.ProviderMicrosoft, State: holdfast.StateDegraded, Count: msTrouble},
			{Provider: holdfast.ProviderGoogle, State: gState, Count: google},
		}
		if ownerState == gState {
			snap[2].Count++
		} else {
			snap = append(snap, holdfast.InboxCount{Provider: holdfast.ProviderGoogle, State: ownerState, Count: 1})
		}
		if err := st.AppendFleetSnapshot(ctx, at, snap); err != nil {
			t.Fatal(err)
		}
	}
}

// takeSnapshot records the fleet now, as the snapshot job does every
// minute, so that the charts show the moment the test looks at.
func takeSnapshot(t *testing.T, st *sqlite.Store) {
	t.Helper()
	counts, err := st.CountInboxes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AppendFleetSnapshot(t.Context(), time.Now().UTC(), counts); err != nil {
		t.Fatal(err)
	}
}

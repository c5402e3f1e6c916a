package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/httpapi"
	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
)

// releasingHealth lets every release go ahead.
type releasingHealth struct{ fakeHealth }

func (releasingHealth) Release(context.Context, int64) error { return nil }

// TestHeldActionsPastTheLimit lists held actions newest first and releases
// the latest of more than a page of them: the answer is that held action,
// found by its ID, not a generic reply.
func TestHeldActionsPastTheLimit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := sqlitetest.Open(t)
	key, k := holdfast.NewAPIKey("test", t0)
	if err := st.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	const n = 1001
	for i := range n {
		h := &holdfast.HeldAction{ID: int64(i + 1), InboxID: fmt.Sprintf("inb_%04d", i), Provider: holdfast.ProviderMicrosoft, Tenant: "contoso.com",
			To: holdfast.StateNeedsReconnect, Reason: "token_revoked", Why: "budget", HeldAt: t0.Add(time.Duration(i) * time.Second)}
		if err := st.SaveHeldAction(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	h, err := httpapi.NewServer(httpapi.Config{
		Store: st, Health: releasingHealth{}, Logger: slog.New(slog.DiscardHandler), Clock: fixedClock(t0),
		SealCredentials: func(string, httpapi.Credentials) ([]byte, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	do := func(method, path string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	code, page := do("GET", "/v1/held-actions?order=newest&limit=2")
	if code != http.StatusOK {
		t.Fatalf("GET newest = %d %v", code, page)
	}
	var inboxes []string
	for _, d := range page["data"].([]any) {
		inboxes = append(inboxes, d.(map[string]any)["inbox_id"].(string))
	}
	if got := strings.Join(inboxes, ","); got != "inb_1000,inb_0999" {
		t.Errorf("newest two held actions are %s, want inb_1000,inb_0999", got)
	}
	if code, body := do("GET", "/v1/held-actions?order=sideways"); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "order") {
		t.Errorf("GET order=sideways = %d %v, want 400 naming order", code, body)
	}

	code, released := do("POST", "/v1/held-actions/1001/release")
	if code != http.StatusOK || released["inbox_id"] != "inb_1000" {
		t.Errorf("release the 1001st = %d %v, want the held action of inb_1000", code, released)
	}
}

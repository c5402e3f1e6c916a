package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/webhook"
)

// TestServeWebhooks registers a webhook through the API, declares and
// resolves an incident, and checks that a signed incident.opened and
// incident.resolved reach the receiver, and that the deliveries are listed.
func TestServeWebhooks(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu     sync.Mutex
				secret []byte
				types  = map[string]string{} // event ID → type
			)
			rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				defer mu.Unlock()
				if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, 0, time.Now()); err != nil {
					t.Errorf("receiver: %v", err)
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				var ev webhook.Event
				if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get(webhook.EventIDHeader) {
					t.Errorf("receiver: body %s (%v) does not match header ID", body, err)
				}
				types[ev.ID] = ev.Type
			}))
			t.Cleanup(rc.Close)

			e := newTestEnv(t, eng)
			key := e.createAPIKey("webhook-test")
			s := e.serve()
			// Without --allow-private-webhooks, the loopback receiver is refused.
			if code, body := call(t, "POST", s.base+"/v1/webhooks", key, map[string]any{"url": rc.URL, "events": []string{"*"}}); code != http.StatusBadRequest || fmt.Sprint(body["error"].(map[string]any)["field"]) != "url" {
				t.Errorf("POST loopback webhook = %d %v; want 400 naming url", code, body)
			}
			s.stop()

			e.env["HOLDFAST_ALLOW_PRIVATE_WEBHOOKS"] = "true"
			s = e.serve()
			if code, body := call(t, "POST", s.base+"/v1/webhooks", key, map[string]any{"url": rc.URL, "events": []string{"incident.bogus"}}); code != http.StatusBadRequest {
				t.Errorf("POST webhook with a bad event = %d %v; want 400", code, body)
			}
			code, hook := call(t, "POST", s.base+"/v1/webhooks", key, map[string]any{"url": rc.URL, "events": []string{"incident.opened", "incident.resolved"}})
			if code != http.StatusCreated || hook["secret"] == nil {
				t.Fatalf("POST webhook = %d %v; want 201 with a secret", code, hook)
			}
			mu.Lock()
			secret = []byte(hook["secret"].(string))
			mu.Unlock()
			hookID := hook["id"].(string)
			code, list := call(t, "GET", s.base+"/v1/webhooks", key, nil)
			if data, _ := list["data"].([]any); code != http.StatusOK || len(data) != 1 || data[0].(map[string]any)["secret"] != nil {
				t.Errorf("GET webhooks = %d %v; want one, without its secret", code, list)
			}

			code, inc := call(t, "POST", s.base+"/v1/incidents", key, map[string]any{"provider": "microsoft", "note": "webhook test"})
			if code != http.StatusCreated {
				t.Fatalf("declare = %d %v", code, inc)
			}
			if code, res := call(t, "POST", fmt.Sprintf("%s/v1/incidents/%d/resolve", s.base, int64(inc["id"].(float64))), key, nil); code != http.StatusOK {
				t.Fatalf("resolve = %d %v", code, res)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				got := map[string]int{}
				for _, ty := range types {
					got[ty]++
				}
				mu.Unlock()
				if got["incident.opened"] == 1 && got["incident.resolved"] == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 30 s the receiver got %v; want one incident.opened and one incident.resolved", got)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// A delivery's attempt is recorded once the receiver has
			// answered, a moment after it got the event.
			var (
				ds   map[string]any
				data []any
			)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				code, ds = call(t, "GET", s.base+"/v1/webhooks/"+hookID+"/deliveries", key, nil)
				data, _ = ds["data"].([]any)
				if code == http.StatusOK && len(data) == 2 || time.Now().After(deadline) {
					break
				}
			}
			if code != http.StatusOK || len(data) != 2 {
				t.Fatalf("GET deliveries = %d %v; want two", code, ds)
			}
			d := data[0].(map[string]any)
			if d["state"] != "succeeded" || len(d["attempts"].([]any)) != 1 {
				t.Errorf("delivery = %v; want succeeded after one attempt", d)
			}
			if code, body := call(t, "POST", s.base+"/v1/webhooks/"+hookID+"/deliveries/"+d["id"].(string)+"/replay", key, nil); code != http.StatusAccepted || body["state"] != "pending" {
				t.Errorf("replay = %d %v; want 202 pending", code, body)
			}
			if code, _ := call(t, "DELETE", s.base+"/v1/webhooks/"+hookID, key, nil); code != http.StatusNoContent {
				t.Errorf("DELETE webhook = %d; want 204", code)
			}
			if code, _ := call(t, "GET", s.base+"/v1/webhooks/"+hookID+"/deliveries", key, nil); code != http.StatusNotFound {
				t.Errorf("GET deliveries of a deleted webhook = %d; want 404", code)
			}
		})
	}
}

package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestServeIncidentsAndHeldActions(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, eng)
			key := e.createAPIKey("incident-test")
			s := e.serve()
			if code, body := call(t, "POST", s.base+"/v1/inboxes", key, map[string]any{
				"provider": "microsoft", "email": "a@contoso.com", "refresh_token": "rt",
			}); code != http.StatusCreated {
				t.Fatalf("POST inbox = %d %v", code, body)
			}

			// Declare a provider-wide incident.
			code, inc := call(t, "POST", s.base+"/v1/incidents", key, map[string]any{"provider": "microsoft", "note": "MO1020913"})
			if code != http.StatusCreated || inc["state"] != "open" || inc["provider"] != "microsoft" {
				t.Fatalf("declare = %d %v, want 201 open microsoft", code, inc)
			}
			id := int64(inc["id"].(float64))
			if code, body := call(t, "POST", s.base+"/v1/incidents", key, map[string]any{"provider": "microsoft"}); code != http.StatusConflict {
				t.Errorf("second declaration over the same scope = %d %v, want 409", code, body)
			}
			code, list := call(t, "GET", s.base+"/v1/incidents?state=open", key, nil)
			if data, _ := list["data"].([]any); code != http.StatusOK || len(data) != 1 {
				t.Errorf("GET open incidents = %d %v, want one", code, list)
			}
			code, got := call(t, "GET", fmt.Sprintf("%s/v1/incidents/%d", s.base, id), key, nil)
			if tl, _ := got["timeline"].([]any); code != http.StatusOK || len(tl) == 0 {
				t.Errorf("GET incident = %d %v, want it with a timeline", code, got)
			}

			// Resolve it; a second resolve conflicts.
			code, res := call(t, "POST", fmt.Sprintf("%s/v1/incidents/%d/resolve", s.base, id), key, nil)
			if code != http.StatusOK || res["state"] != "resolved" || res["resolved_at"] == nil {
				t.Errorf("resolve = %d %v, want 200 resolved", code, res)
			}
			if code, body := call(t, "POST", fmt.Sprintf("%s/v1/incidents/%d/resolve", s.base, id), key, nil); code != http.StatusConflict {
				t.Errorf("second resolve = %d %v, want 409", code, body)
			}
			if code, _ := call(t, "GET", s.base+"/v1/incidents/999999", key, nil); code != http.StatusNotFound {
				t.Errorf("GET unknown incident = %d, want 404", code)
			}

			// A retroactive incident over a past window is recorded resolved.
			start := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
			end := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
			code, retro := call(t, "POST", s.base+"/v1/incidents", key, map[string]any{"provider": "microsoft", "start": start, "end": end})
			if code != http.StatusCreated || retro["state"] != "resolved" {
				t.Errorf("retroactive declaration = %d %v, want 201 resolved", code, retro)
			}

			// An open incident declared from a past start keeps that start.
			past := time.Now().Add(-30 * time.Minute).UTC().Truncate(time.Second)
			code, open := call(t, "POST", s.base+"/v1/incidents", key, map[string]any{"provider": "google", "start": past.Format(time.RFC3339)})
			if code != http.StatusCreated || open["state"] != "open" {
				t.Fatalf("declaration from a past start = %d %v, want 201 open", code, open)
			}
			code, got = call(t, "GET", fmt.Sprintf("%s/v1/incidents/%d", s.base, int64(open["id"].(float64))), key, nil)
			if at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(got["opened_at"])); code != http.StatusOK || !at.Equal(past) {
				t.Errorf("stored incident opened_at = %v, want the declared start %v", got["opened_at"], past)
			}

			// Bad declarations name the field.
			for _, tt := range []struct {
				body  map[string]any
				field string
			}{
				{map[string]any{"provider": "aol"}, "provider"},
				{map[string]any{}, "provider"},
				{map[string]any{"provider": "microsoft", "tenant": "nowhere.example"}, "tenant"},
				{map[string]any{"provider": "microsoft", "start": time.Now().Add(time.Hour).Format(time.RFC3339)}, "start"},
				{map[string]any{"provider": "microsoft", "start": end, "end": start}, "end"},
				{map[string]any{"provider": "microsoft", "start": "yesterday"}, "start"},
			} {
				if code, body := call(t, "POST", s.base+"/v1/incidents", key, tt.body); code != http.StatusBadRequest || errField(body) != tt.field {
					t.Errorf("declare %v = %d %v, want 400 naming %s", tt.body, code, body, tt.field)
				}
			}

			// Held actions: none pending; releasing an unknown one is 404.
			code, held := call(t, "GET", s.base+"/v1/held-actions", key, nil)
			if data, _ := held["data"].([]any); code != http.StatusOK || len(data) != 0 {
				t.Errorf("GET held actions = %d %v, want an empty list", code, held)
			}
			if code, _ := call(t, "POST", s.base+"/v1/held-actions/42/release", key, nil); code != http.StatusNotFound {
				t.Errorf("release unknown held action = %d, want 404", code)
			}

			// Incidents survive a restart.
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
			s = e.serve()
			code, list = call(t, "GET", s.base+"/v1/incidents", key, nil)
			if data, _ := list["data"].([]any); code != http.StatusOK || len(data) != 3 {
				t.Errorf("incidents after restart = %d %v, want all three", code, list)
			}
		})
	}
}

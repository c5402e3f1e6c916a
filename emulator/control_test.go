package emulator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/holdfast/holdfast/emulator"
)

func TestControlAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	r := b.post(t, b.u.Control+"/accounts", "", "application/json", []byte(`{"provider":"microsoft","email":"Ada@Contoso.com","tenant":"contoso"}`))
	if r.status != http.StatusOK {
		t.Fatalf("POST /accounts = %d %s", r.status, r.body)
	}
	v := r.json(t)
	rt, _ := v["refresh_token"].(string)
	if rt == "" || v["email"] != "ada@contoso.com" || v["tenant"] != "contoso" {
		t.Fatalf("POST /accounts = %s", r.body)
	}
	if r := b.refresh(t, emulator.Microsoft, rt); r.status != http.StatusOK {
		t.Fatalf("imported grant does not refresh: %d %s", r.status, r.body)
	}

	r = b.post(t, b.u.Control+"/mail", "", "application/json", []byte(`{"to":"ada@contoso.com","from":"bo@example.net","subject":"Hi","text":"Hello"}`))
	if r.status != http.StatusOK || r.json(t)["id"] == "" || !strings.HasPrefix(r.json(t)["message_id"].(string), "<") {
		t.Fatalf("POST /mail = %d %s", r.status, r.body)
	}

	r = b.post(t, b.u.Control+"/faults", "", "application/json", []byte(`{"provider":"microsoft","surfaces":["token","graph"],"tenant":"","email":"","failure_rate":1.0,"http_status":400,"body":"{\"error\":\"invalid_grant\"}"}`))
	if r.status != http.StatusOK {
		t.Fatalf("POST /faults = %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	if r := b.refresh(t, emulator.Microsoft, rt); r.status != 400 || string(r.body) != `{"error":"invalid_grant"}` {
		t.Errorf("during the fault: %d %s", r.status, r.body)
	}
	if r := b.do(t, http.MethodDelete, b.u.Control+"/faults/"+id, nil, nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE /faults/%s = %d %s", id, r.status, r.body)
	}
	if r := b.do(t, http.MethodDelete, b.u.Control+"/faults/"+id, nil, nil); r.status != http.StatusNotFound {
		t.Errorf("second DELETE = %d; want 404", r.status)
	}
	if r := b.refresh(t, emulator.Microsoft, rt); r.status != http.StatusOK {
		t.Errorf("after the fault: %d %s", r.status, r.body)
	}

	r = b.get(t, b.u.Control+"/sent?from=ada@contoso.com", "")
	if r.status != http.StatusOK || string(r.body) != `{"data":[]}` {
		t.Errorf("GET /sent = %d %s", r.status, r.body)
	}
	if r := b.post(t, b.u.Control+"/accounts/nobody@x.com/revoke", "", "", nil); r.status != http.StatusNotFound {
		t.Errorf("revoke unknown = %d; want 404", r.status)
	}
	if r := b.post(t, b.u.Control+"/accounts", "", "application/json", []byte(`{"provider":"google","email":"ada@contoso.com"}`)); r.status != http.StatusConflict {
		t.Errorf("same address, other provider = %d; want 409", r.status)
	}
}

func TestControlValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Config{})
	if _, err := b.e.CreateAccount(emulator.Account{Provider: emulator.Google, Email: "gus@gmail.com"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, body string
		field            string // "" when the error names no field
	}{
		{"provider not a string", "/accounts", `{"provider":5,"email":"a@b.c"}`, "provider"},
		{"unknown provider", "/accounts", `{"provider":"yahoo","email":"a@b.c"}`, "provider"},
		{"bad email", "/accounts", `{"provider":"google","email":"not an address"}`, "email"},
		{"missing email", "/accounts", `{"provider":"google"}`, "email"},
		{"unknown field", "/accounts", `{"provider":"google","email":"a@b.c","name":"x"}`, "name"},
		{"malformed JSON", "/accounts", `{"provider":`, ""},
		{"two values", "/accounts", `{} {}`, ""},
		{"mail to unknown mailbox", "/mail", `{"to":"nobody@b.c","from":"a@b.c"}`, "to"},
		{"mail without from", "/mail", `{"to":"gus@gmail.com"}`, "from"},
		{"mail bad message id", "/mail", `{"to":"gus@gmail.com","from":"a@b.c","message_id":"nope"}`, "message_id"},
		{"mail text not a string", "/mail", `{"to":"gus@gmail.com","from":"a@b.c","text":[1]}`, "text"},
		{"fault rate not a number", "/faults", `{"provider":"google","surfaces":["gmail"],"failure_rate":"x"}`, "failure_rate"},
		{"fault rate above one", "/faults", `{"provider":"google","surfaces":["gmail"],"failure_rate":2}`, "failure_rate"},
		{"fault rate zero", "/faults", `{"provider":"google","surfaces":["gmail"],"failure_rate":0}`, "failure_rate"},
		{"fault without surfaces", "/faults", `{"provider":"google"}`, "surfaces"},
		{"fault surface of the other provider", "/faults", `{"provider":"google","surfaces":["graph"]}`, "surfaces"},
		{"fault unknown surface", "/faults", `{"provider":"microsoft","surfaces":["imap"]}`, "surfaces"},
		{"fault bad status", "/faults", `{"provider":"microsoft","surfaces":["graph"],"http_status":99}`, "http_status"},
		{"fault status not a number", "/faults", `{"provider":"microsoft","surfaces":["graph"],"http_status":"503"}`, "http_status"},
		{"fault negative retry_after_s", "/faults", `{"provider":"microsoft","surfaces":["graph"],"retry_after_s":-1}`, "retry_after_s"},
		{"fault bad email", "/faults", `{"provider":"microsoft","surfaces":["graph"],"email":"x"}`, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.post(t, b.u.Control+tt.path, "", "application/json", []byte(tt.body))
			if r.status != http.StatusBadRequest {
				t.Fatalf("POST %s %s = %d %s; want 400", tt.path, tt.body, r.status, r.body)
			}
			var e struct {
				Error struct{ Code, Message, Field string }
			}
			if err := json.Unmarshal(r.body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Error.Code != "invalid" || e.Error.Field != tt.field || e.Error.Message == "" {
				t.Errorf("error = %+v; want code invalid, field %q", e.Error, tt.field)
			}
		})
	}
	r := b.get(t, b.u.Control+"/sent", "")
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"from"`) {
		t.Errorf("GET /sent without from = %d %s", r.status, r.body)
	}
}

func TestURLsFor(t *testing.T) {
	t.Parallel()
	got := emulator.URLsFor("http://127.0.0.1:8025/").Env()
	want := map[string]string{
		"HOLDFAST_MICROSOFT_LOGIN_URL": "http://127.0.0.1:8025/microsoft-login",
		"HOLDFAST_GRAPH_URL":           "http://127.0.0.1:8025/graph",
		"HOLDFAST_GOOGLE_OAUTH_URL":    "http://127.0.0.1:8025/google-oauth",
		"HOLDFAST_GMAIL_URL":           "http://127.0.0.1:8025/gmail",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
}

package emulator_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/emulator"
)

// consentToken runs the authorization-code flow for email with scope and
// returns the access token of the new grant.
func (b *testBundle) consentToken(t *testing.T, email, scope string) string {
	t.Helper()
	const redirect = "https://app.test/oauth/callback"
	q := url.Values{"client_id": {emulator.DefaultClientID}, "response_type": {"code"}, "redirect_uri": {redirect},
		"scope": {scope}, "login_hint": {email}}
	r := b.get(t, b.u.MicrosoftLogin+"/common/oauth2/v2.0/authorize?"+q.Encode(), "")
	loc, err := url.Parse(r.header.Get("Location"))
	if r.status != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize with scope %q = %d, Location %q; want a redirect with a code", scope, r.status, r.header.Get("Location"))
	}
	r = b.token(t, emulator.Microsoft, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirect}}, false)
	if r.status != http.StatusOK {
		t.Fatalf("exchange = %d %s", r.status, r.body)
	}
	return r.json(t)["access_token"].(string)
}

// scpOf returns the scp claim of a Microsoft access token.
func scpOf(t *testing.T, at string) string {
	t.Helper()
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWT", at)
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Scp string `json:"scp"`
	}
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	return c.Scp
}

// TestGraphPermissions: an access token carries the permissions granted at
// consent (or the subset a refresh asked for), and Graph answers 403 to a
// call the token has no permission for: GET /me without User.Read (as the
// consent flow's account check needs), the mail reads without Mail.Read or
// Mail.ReadWrite, sendMail without Mail.Send. Grants made with
// CreateAccount have every permission.
func TestGraphPermissions(t *testing.T) {
	t.Parallel()
	const (
		ok       = ""
		denied   = "Authorization_RequestDenied"
		noAccess = "ErrorAccessDenied"
	)
	type want struct{ me, read, send string }
	all := want{ok, ok, ok}
	tests := []struct {
		name  string
		scope string // consent scope; empty: CreateAccount's grant
		// refreshScope, when set, refreshes the grant for this subset.
		refreshScope string
		scp          string
		want         want
	}{
		{name: "imported grant", scp: "Mail.ReadWrite Mail.Send User.Read openid profile email", want: all},
		{name: "mail and User.Read", scope: "offline_access User.Read Mail.ReadWrite Mail.Send",
			scp: "User.Read Mail.ReadWrite Mail.Send", want: all},
		{name: "mail without User.Read", scope: "offline_access Mail.ReadWrite Mail.Send",
			scp: "Mail.ReadWrite Mail.Send", want: want{denied, ok, ok}},
		{name: "User.Read only", scope: "offline_access openid User.Read",
			scp: "openid User.Read", want: want{ok, noAccess, noAccess}},
		{name: "Graph URIs, read only", scope: "https://graph.microsoft.com/Mail.Read https://graph.microsoft.com/User.Read offline_access",
			scp: "Mail.Read User.Read", want: want{ok, ok, noAccess}},
		{name: "send only", scope: "Mail.Send", scp: "Mail.Send", want: want{denied, noAccess, ok}},
		{name: "Outlook first: token for Outlook", scope: "https://outlook.office.com/IMAP.AccessAsUser.All User.Read Mail.ReadWrite",
			scp: "IMAP.AccessAsUser.All", want: want{"InvalidAuthenticationToken", "InvalidAuthenticationToken", "InvalidAuthenticationToken"}},
		{name: "refresh for a subset", refreshScope: "Mail.Send", scp: "Mail.Send", want: want{denied, noAccess, ok}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{})
			const email = "ada@contoso.com"
			rt, at := b.account(t, emulator.Microsoft, email, "")
			if tt.scope != "" {
				at = b.consentToken(t, email, tt.scope)
			}
			if tt.refreshScope != "" {
				r := b.token(t, emulator.Microsoft, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
					"scope": {tt.refreshScope}}, false)
				if r.status != http.StatusOK {
					t.Fatalf("refresh for %q = %d %s", tt.refreshScope, r.status, r.body)
				}
				at = r.json(t)["access_token"].(string)
			}
			if got := scpOf(t, at); got != tt.scp {
				t.Errorf("scp = %q; want %q", got, tt.scp)
			}
			msg := b.deliver(t, email, 1)[0]
			send, _ := json.Marshal(map[string]any{"message": map[string]any{
				"subject": "hi", "body": map[string]string{"contentType": "text", "content": "hello"},
				"toRecipients": []any{map[string]any{"emailAddress": map[string]string{"address": "bo@example.net"}}},
			}})
			g := b.u.Graph + "/v1.0/me"
			for _, c := range []struct {
				call, want string
				do         func() response
			}{
				{"GET /me", tt.want.me, func() response { return b.get(t, g+"?$select=mail,userPrincipalName", at) }},
				{"delta", tt.want.read, func() response { return b.get(t, g+"/mailFolders/inbox/messages/delta", at) }},
				{"list", tt.want.read, func() response { return b.get(t, g+"/mailFolders/sentitems/messages?$top=1", at) }},
				{"get", tt.want.read, func() response { return b.get(t, g+"/messages/"+url.PathEscape(msg.ID), at) }},
				{"sendMail", tt.want.send, func() response { return b.post(t, g+"/sendMail", at, "application/json", send) }},
			} {
				r := c.do()
				if c.want == ok {
					if r.status != http.StatusOK && r.status != http.StatusAccepted {
						t.Errorf("%s = %d %s; want success", c.call, r.status, r.body)
					}
					continue
				}
				if got := apiErrorCode(t, r); got != c.want {
					t.Errorf("%s = %d %s; want error code %s", c.call, r.status, r.body, c.want)
					continue
				}
				if c.want == "InvalidAuthenticationToken" {
					continue
				}
				var body struct {
					Error struct {
						Code, Message string
						InnerError    map[string]string
					}
				}
				if err := json.Unmarshal(r.body, &body); err != nil {
					t.Fatal(err)
				}
				wantMsg := "Access is denied. Check credentials and try again."
				if c.want == denied {
					wantMsg = "Insufficient privileges to complete the operation."
				}
				if r.status != http.StatusForbidden || body.Error.Message != wantMsg || body.Error.InnerError["request-id"] == "" || body.Error.InnerError["date"] == "" {
					t.Errorf("%s = %d %s; want 403 %s %q with innerError request-id and date", c.call, r.status, r.body, c.want, wantMsg)
				}
			}
			if sent, err := b.e.Sent(email); err != nil || (len(sent) == 1) != (tt.want.send == ok) {
				t.Errorf("Sent(%s) = %d records, %v; want one only if sendMail was allowed", email, len(sent), err)
			}
		})
	}
}

// googleConsent runs Google's authorization-code flow, offline, for email
// with scope and returns the new grant's refresh and access tokens.
func (b *testBundle) googleConsent(t *testing.T, email, scope string) (rt, at string) {
	t.Helper()
	const redirect = "https://app.test/oauth/callback"
	q := url.Values{"client_id": {emulator.DefaultClientID}, "response_type": {"code"}, "redirect_uri": {redirect},
		"scope": {scope}, "login_hint": {email}, "access_type": {"offline"}, "prompt": {"consent"}}
	r := b.get(t, b.u.GoogleOAuth+"/o/oauth2/v2/auth?"+q.Encode(), "")
	loc, err := url.Parse(r.header.Get("Location"))
	if r.status != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize with scope %q = %d, Location %q; want a redirect with a code", scope, r.status, r.header.Get("Location"))
	}
	r = b.token(t, emulator.Google, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirect}}, false)
	if r.status != http.StatusOK {
		t.Fatalf("exchange = %d %s", r.status, r.body)
	}
	v := r.json(t)
	if v["scope"] != scope {
		t.Errorf("exchange scope = %q; want %q", v["scope"], scope)
	}
	return v["refresh_token"].(string), v["access_token"].(string)
}

// TestGmailScopes: a Google access token carries the scopes granted at
// consent, a refresh keeps them, and the Gmail API answers Google's 403
// insufficientPermissions to a call none of the token's scopes allows:
// getProfile without gmail.readonly, gmail.modify, gmail.compose,
// gmail.metadata or mail.google.com; history.list, messages.list and
// messages.get without gmail.readonly, gmail.modify, gmail.metadata or
// mail.google.com; messages.send without gmail.send, gmail.compose,
// gmail.modify or mail.google.com. gmail.metadata alone allows neither a
// search (q) nor format=full or raw. Grants made with CreateAccount have
// every scope.
func TestGmailScopes(t *testing.T) {
	t.Parallel()
	const (
		ok    = ""
		scope = "insufficientPermissions"
		meta  = "forbidden"
		gm    = "https://www.googleapis.com/auth/gmail."
	)
	type want struct{ profile, read, search, send string }
	all := want{ok, ok, ok, ok}
	readOnly := want{ok, ok, ok, scope}
	tests := []struct {
		name  string
		scope string // consent scope; empty: CreateAccount's grant
		// refresh, when set, uses a token from a refresh of the grant.
		refresh bool
		want    want
	}{
		{name: "imported grant", want: all},
		{name: "holdfast's scopes", scope: gm + "readonly " + gm + "send", want: all},
		{name: "readonly", scope: gm + "readonly", want: readOnly},
		{name: "readonly, refreshed", scope: gm + "readonly openid email", refresh: true, want: readOnly},
		{name: "modify", scope: gm + "modify", want: all},
		{name: "full mail", scope: "https://mail.google.com/", want: all},
		{name: "send only", scope: gm + "send", want: want{scope, scope, scope, ok}},
		{name: "send only, refreshed", scope: gm + "send", refresh: true, want: want{scope, scope, scope, ok}},
		{name: "compose", scope: gm + "compose", want: want{ok, scope, scope, ok}},
		{name: "metadata", scope: gm + "metadata", want: want{ok, ok, meta, scope}},
		{name: "metadata and send", scope: gm + "metadata " + gm + "send", want: want{ok, ok, meta, ok}},
		{name: "sign-in only", scope: "openid email profile", want: want{scope, scope, scope, scope}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{})
			const email = "amy@gmail.com"
			rt, at := b.account(t, emulator.Google, email, "")
			if tt.scope != "" {
				rt, at = b.googleConsent(t, email, tt.scope)
			}
			if tt.refresh {
				r := b.refresh(t, emulator.Google, rt)
				if r.status != http.StatusOK {
					t.Fatalf("refresh = %d %s", r.status, r.body)
				}
				at = r.json(t)["access_token"].(string)
			}
			msg := b.deliver(t, email, 1)[0]
			send, _ := json.Marshal(map[string]string{"raw": base64.RawURLEncoding.EncodeToString(
				[]byte("To: bo@example.net\r\nSubject: hi\r\n\r\nhello\r\n"))})
			g := b.u.Gmail + "/gmail/v1/users/me"
			get := g + "/messages/" + url.PathEscape(msg.ID)
			const svc = "caribou.api.proto.MailboxService."
			for _, c := range []struct {
				call, method, want string
				do                 func() response
			}{
				{"getProfile", "GetProfile", tt.want.profile, func() response { return b.get(t, g+"/profile", at) }},
				{"history.list", "ListHistory", tt.want.read, func() response { return b.get(t, g+"/history?startHistoryId=1000", at) }},
				{"messages.list", "ListMessages", tt.want.read, func() response { return b.get(t, g+"/messages?labelIds=INBOX", at) }},
				{"messages.get metadata", "GetMessage", tt.want.read, func() response { return b.get(t, get+"?format=metadata", at) }},
				{"messages.get minimal", "GetMessage", tt.want.read, func() response { return b.get(t, get+"?format=minimal", at) }},
				{"messages.list q", "ListMessages", tt.want.search, func() response {
					return b.get(t, g+"/messages?q="+url.QueryEscape("in:sent rfc822msgid:<a@b>"), at)
				}},
				{"messages.get", "GetMessage", tt.want.search, func() response { return b.get(t, get, at) }},
				{"messages.get raw", "GetMessage", tt.want.search, func() response { return b.get(t, get+"?format=raw", at) }},
				{"messages.send", "SendMessage", tt.want.send, func() response {
					return b.post(t, g+"/messages/send", at, "application/json", send)
				}},
			} {
				r := c.do()
				switch c.want {
				case ok:
					if r.status != http.StatusOK {
						t.Errorf("%s = %d %s; want success", c.call, r.status, r.body)
					}
				case scope:
					want := `{"error":{"code":403,"message":"Request had insufficient authentication scopes.",` +
						`"errors":[{"message":"Insufficient Permission","domain":"global","reason":"insufficientPermissions"}],` +
						`"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",` +
						`"reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT","domain":"googleapis.com",` +
						`"metadata":{"method":"` + svc + c.method + `","service":"gmail.googleapis.com"}}]}}`
					var got bytes.Buffer
					if err := json.Compact(&got, r.body); err != nil || r.status != http.StatusForbidden || got.String() != want {
						t.Errorf("%s = %d %s; want 403 %s", c.call, r.status, r.body, want)
					}
				case meta:
					var body struct {
						Error struct {
							Code    int
							Message string
							Errors  []struct{ Reason string }
							Status  string
						}
					}
					if err := json.Unmarshal(r.body, &body); err != nil {
						t.Fatal(err)
					}
					e := body.Error
					if r.status != http.StatusForbidden || e.Code != 403 || !strings.HasPrefix(e.Message, "Metadata scope ") ||
						len(e.Errors) != 1 || e.Errors[0].Reason != meta || e.Status != "PERMISSION_DENIED" {
						t.Errorf("%s = %d %s; want 403 forbidden, the metadata scope's limit", c.call, r.status, r.body)
					}
				}
			}
			if sent, err := b.e.Sent(email); err != nil || (len(sent) == 1) != (tt.want.send == ok) {
				t.Errorf("Sent(%s) = %d records, %v; want one only if messages.send was allowed", email, len(sent), err)
			}
		})
	}
}

package emulator_test

import (
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

package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/holdfast/holdfast/emulator"
)

// A grant made with CreateAccount refreshes at the Microsoft token endpoint,
// whose answer carries a rotated refresh token; the access token reads
// Graph.
func Example() {
	e := emulator.New(emulator.Config{})
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	urls := emulator.URLsFor(srv.URL)

	rt, err := e.CreateAccount(emulator.Account{Provider: emulator.Microsoft, Email: "ada@contoso.com"})
	if err != nil {
		panic(err)
	}
	if _, err := e.Deliver(emulator.Mail{To: "ada@contoso.com", From: "bo@example.net", Subject: "Hi"}); err != nil {
		panic(err)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {emulator.DefaultClientID}, "client_secret": {emulator.DefaultClientSecret}}
	resp, err := http.Post(urls.MicrosoftLogin+"/common/oauth2/v2.0/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExtExpiresIn int    `json:"ext_expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	fmt.Println("token:", resp.StatusCode, "rotated:", tok.RefreshToken != rt, "ext_expires_in:", tok.ExtExpiresIn)

	req, _ := http.NewRequest(http.MethodGet, urls.Graph+"/v1.0/me/mailFolders/inbox/messages/delta", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var page struct {
		Value []struct {
			Subject string `json:"subject"`
		} `json:"value"`
		DeltaLink string `json:"@odata.deltaLink"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	fmt.Println("delta:", resp.StatusCode, len(page.Value), page.Value[0].Subject, page.DeltaLink != "")
	// Output:
	// token: 200 rotated: true ext_expires_in: 3600
	// delta: 200 1 Hi true
}

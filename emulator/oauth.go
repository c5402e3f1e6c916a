package emulator

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// authCode is an authorization code waiting to be redeemed.
type authCode struct {
	provider    Provider
	email       string
	clientID    string
	redirectURI string
	challenge   string
	method      string // S256 or plain
	scope       []string
	offline     bool
	expires     time.Time
	used        bool
}

// reply is a buffered response, so that handlers can build their answer
// under e.mu and send it after unlocking.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r *reply) Header() http.Header { return r.header }
func (r *reply) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *reply) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.body = append(r.body, b...)
	return len(b), nil
}

// locked runs f under e.mu with a buffered response, then sends it.
func (e *Emulator) locked(w http.ResponseWriter, f func(w http.ResponseWriter)) {
	rec := &reply{header: http.Header{}}
	func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		f(rec)
	}()
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body) // the client went away; nothing to do
}

// clientCreds returns the client credentials of a token request, from
// HTTP Basic (form-encoded, RFC 6749 §2.3.1) or else from the form.
func clientCreds(r *http.Request) (id, secret string) {
	if u, p, ok := r.BasicAuth(); ok {
		if v, err := url.QueryUnescape(u); err == nil {
			u = v
		}
		if v, err := url.QueryUnescape(p); err == nil {
			p = v
		}
		return u, p
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}

func equalSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// pkceOK checks a code verifier against the code's challenge (RFC 7636).
func pkceOK(ac *authCode, verifier string) bool {
	want := verifier
	if ac.method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = b64.EncodeToString(sum[:])
	}
	return verifier != "" && equalSecret(want, ac.challenge)
}

// oidcScopes are granted with any consent.
var oidcScopes = []string{"openid", "profile", "email", "offline_access"}

// scopeKey normalizes a scope for comparison: Graph's short names equal
// their full URIs.
func scopeKey(s string) string {
	s = strings.ToLower(s)
	return strings.TrimPrefix(s, "https://graph.microsoft.com/")
}

// scopeCovered reports whether every scope in want was granted.
func scopeCovered(granted, want []string) bool {
	for _, w := range want {
		if slices.Contains(oidcScopes, strings.ToLower(w)) {
			continue
		}
		if !slices.ContainsFunc(granted, func(g string) bool { return scopeKey(g) == scopeKey(w) }) {
			return false
		}
	}
	return true
}

func hasScope(scope []string, s string) bool {
	return slices.ContainsFunc(scope, func(x string) bool { return strings.EqualFold(x, s) })
}

// authorize implements both providers' authorize endpoints: checks, then
// an automatic consent for the account named by login_hint (or email).
func (e *Emulator) authorize(w http.ResponseWriter, r *http.Request, p Provider, tenant string) {
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	switch {
	case clientID == "":
		errorPage(w, p, "invalid_request", "Missing required parameter: client_id")
		return
	case clientID != e.cfg.ClientID:
		errorPage(w, p, "invalid_client", fmt.Sprintf("The OAuth client was not found: application with identifier '%s' was not found.", clientID))
		return
	case redirectURI == "":
		errorPage(w, p, "invalid_request", "Missing required parameter: redirect_uri")
		return
	}
	ru, err := url.Parse(redirectURI)
	if err != nil || (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "" || ru.Fragment != "" {
		errorPage(w, p, "redirect_uri_mismatch", "The redirect URI must be an absolute http or https URL without a fragment.")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		v := ru.Query()
		v.Set("error", code)
		v.Set("error_description", desc)
		if state != "" {
			v.Set("state", state)
		}
		ru.RawQuery = v.Encode()
		http.Redirect(w, r, ru.String(), http.StatusFound)
	}
	scope := strings.Fields(q.Get("scope"))
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge != "" && method == "" {
		method = "plain"
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "The emulator supports only response_type=code.")
		return
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		fail("invalid_request", "The emulator supports only response_mode=query.")
		return
	case len(scope) == 0:
		fail("invalid_request", "Missing required parameter: scope")
		return
	case method != "" && method != "S256" && method != "plain":
		fail("invalid_request", "Invalid code_challenge_method: use S256.")
		return
	case method != "" && challenge == "":
		fail("invalid_request", "Missing required parameter: code_challenge")
		return
	}
	hint := strings.ToLower(strings.TrimSpace(q.Get("login_hint")))
	if hint == "" {
		hint = strings.ToLower(strings.TrimSpace(q.Get("email")))
	}
	e.mu.Lock()
	if hint == "" {
		var emails []string
		for _, a := range e.accounts {
			if a.provider == p {
				emails = append(emails, a.email)
			}
		}
		e.mu.Unlock()
		slices.Sort(emails)
		consentPage(w, r, p, emails)
		return
	}
	acc := e.accounts[hint]
	if acc == nil || acc.provider != p {
		e.mu.Unlock()
		fail("access_denied", fmt.Sprintf("The user account %s does not exist.", hint))
		return
	}
	if p == Microsoft && !slices.Contains([]string{"common", "organizations", "consumers"}, strings.ToLower(tenant)) &&
		!strings.EqualFold(tenant, acc.tenant) && !strings.EqualFold(tenant, domainOf(acc.email)) {
		e.mu.Unlock()
		fail("access_denied", fmt.Sprintf("AADSTS50020: User account '%s' does not exist in tenant '%s'.", hint, tenant))
		return
	}
	offline := hasScope(scope, "offline_access")
	if p == Google {
		offline = q.Get("access_type") == "offline"
	}
	code := nonce() + nonce()
	if p == Google {
		code = "4/0Emu" + code
	} else {
		code = "1.AXEmu" + code
	}
	now := e.now()
	if len(e.codes) >= maxCodes {
		for k, c := range e.codes {
			if now.After(c.expires) {
				delete(e.codes, k)
			}
		}
	}
	if len(e.codes) >= maxCodes {
		e.mu.Unlock()
		fail("temporarily_unavailable", "Too many pending authorization codes; try again in a few minutes.")
		return
	}
	e.codes[code] = &authCode{provider: p, email: acc.email, clientID: clientID, redirectURI: redirectURI,
		challenge: challenge, method: method, scope: scope, offline: offline, expires: now.Add(codeLifetime)}
	e.mu.Unlock()

	v := ru.Query()
	v.Set("code", code)
	if state != "" {
		v.Set("state", state)
	}
	if p == Google {
		v.Set("scope", strings.Join(scope, " "))
	}
	ru.RawQuery = v.Encode()
	http.Redirect(w, r, ru.String(), http.StatusFound)
}

// errorPage answers an authorize request that cannot be redirected.
func errorPage(w http.ResponseWriter, p Provider, code, desc string) {
	title := "Sign in to your account"
	if p == Google {
		title = "Access blocked: Authorization Error"
	}
	body := fmt.Sprintf("<!DOCTYPE html>\n<html><head><title>%s</title></head><body><h1>%s</h1><p>Error 400: %s</p><p>%s</p></body></html>\n",
		title, title, html.EscapeString(code), html.EscapeString(desc))
	writeBody(w, http.StatusBadRequest, "text/html; charset=utf-8", []byte(body))
}

// consentPage lists the provider's accounts, each a link that approves.
func consentPage(w http.ResponseWriter, r *http.Request, p Provider, emails []string) {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><title>holdfast emulator: choose a %s account</title></head><body>\n<h1>Choose an account</h1>\n<ul>\n", p)
	for _, email := range emails {
		u := *r.URL
		v := u.Query()
		v.Set("login_hint", email)
		u.RawQuery = v.Encode()
		fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString(u.RequestURI()), html.EscapeString(email))
	}
	if len(emails) == 0 {
		b.WriteString("<li>No accounts: create one with POST /_emulator/accounts.</li>\n")
	}
	b.WriteString("</ul>\n</body></html>\n")
	writeBody(w, http.StatusOK, "text/html; charset=utf-8", []byte(b.String()))
}

// redeemResult says why a code could not be redeemed.
type redeemResult int

const (
	redeemOK redeemResult = iota
	redeemUnknown
	redeemExpired
	redeemUsed
	redeemRedirect
	redeemVerifier
)

// redeemLocked redeems an authorization code of provider p.
func (e *Emulator) redeemLocked(p Provider, code, redirectURI, verifier string) (*authCode, redeemResult) {
	ac := e.codes[code]
	switch {
	case ac == nil || ac.provider != p:
		return nil, redeemUnknown
	case ac.used:
		return nil, redeemUsed
	case !e.now().Before(ac.expires):
		delete(e.codes, code)
		return nil, redeemExpired
	case redirectURI != ac.redirectURI:
		return nil, redeemRedirect
	case ac.challenge != "" && !pkceOK(ac, verifier):
		return nil, redeemVerifier
	}
	ac.used = true
	return ac, redeemOK
}

// handleMicrosoftAuthorize serves GET /{tenant}/oauth2/v2.0/authorize.
func (e *Emulator) handleMicrosoftAuthorize(w http.ResponseWriter, r *http.Request) {
	e.authorize(w, r, Microsoft, r.PathValue("tenant"))
}

// handleGoogleAuthorize serves GET /o/oauth2/v2/auth.
func (e *Emulator) handleGoogleAuthorize(w http.ResponseWriter, r *http.Request) {
	e.authorize(w, r, Google, "")
}

// msTokenResponse is the Microsoft token endpoint's answer.
type msTokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// handleMicrosoftToken serves POST /{tenant}/oauth2/v2.0/token.
func (e *Emulator) handleMicrosoftToken(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if err := r.ParseForm(); err != nil {
		e.msTokenError(w, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	e.locked(w, func(w http.ResponseWriter) {
		if !e.admitLocked(w, Microsoft, SurfaceToken) {
			return
		}
		grantType := f.Get("grant_type")
		var email string
		switch grantType {
		case "refresh_token":
			if c, ok := e.parseRefresh(Microsoft, f.Get("refresh_token")); ok {
				email = c.Email
			}
		case "authorization_code":
			if ac := e.codes[f.Get("code")]; ac != nil {
				email = ac.email
			}
		}
		tenants := []string{tenant}
		if acc := e.accounts[email]; acc != nil {
			tenants = append(tenants, acc.tenant)
		}
		if flt := e.faultLocked(Microsoft, SurfaceToken, email, tenants...); flt != nil {
			e.injectFault(w, flt, SurfaceToken)
			return
		}
		id, secret := clientCreds(r)
		switch {
		case id == "":
			e.msMissing(w, "client_id")
			return
		case id != e.cfg.ClientID:
			e.msTokenError(w, 400, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", id, tenant))
			return
		case secret == "":
			e.msTokenError(w, 401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
			return
		case !equalSecret(secret, e.cfg.ClientSecret):
			e.msTokenError(w, 401, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", id))
			return
		}
		switch grantType {
		case "":
			e.msMissing(w, "grant_type")
		case "refresh_token":
			e.msRefreshLocked(w, f.Get("refresh_token"), strings.Fields(f.Get("scope")))
		case "authorization_code":
			e.msCodeLocked(w, f.Get("code"), f.Get("redirect_uri"), f.Get("code_verifier"))
		default:
			e.msTokenError(w, 400, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", grantType))
		}
	})
}

func (e *Emulator) msRefreshLocked(w http.ResponseWriter, token string, scope []string) {
	if token == "" {
		e.msMissing(w, "refresh_token")
		return
	}
	c, ok := e.parseRefresh(Microsoft, token)
	if !ok {
		e.msTokenError(w, 400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
		return
	}
	acc := e.accounts[c.Email]
	var g *grant
	if acc != nil {
		g = acc.grant(c.Grant)
	}
	switch {
	case g == nil:
		e.msTokenError(w, 400, "invalid_grant", 70000, "Provided grant is invalid or malformed.")
		return
	case g.revoked:
		e.msRevoked(w, g.issued)
		return
	case len(scope) > 0 && !scopeCovered(g.scope, scope):
		e.msTokenError(w, 400, "invalid_grant", 65001, fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named 'holdfast'. Send an interactive authorization request for this user and resource.", g.clientID))
		return
	}
	if len(scope) == 0 {
		scope = g.scope
	}
	e.msIssue(w, acc, g, scope)
}

func (e *Emulator) msCodeLocked(w http.ResponseWriter, code, redirectURI, verifier string) {
	if code == "" {
		e.msMissing(w, "code")
		return
	}
	ac, res := e.redeemLocked(Microsoft, code, redirectURI, verifier)
	switch res {
	case redeemUnknown:
		e.msTokenError(w, 400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
		return
	case redeemUsed:
		e.msTokenError(w, 400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
		return
	case redeemExpired:
		e.msTokenError(w, 400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
		return
	case redeemRedirect:
		e.msTokenError(w, 400, "invalid_grant", 70000, "The request is not valid: the redirect_uri does not match the one used in the authorization request.")
		return
	case redeemVerifier:
		e.msTokenError(w, 400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		return
	}
	acc := e.accounts[ac.email]
	g := e.newGrantLocked(acc, ac.clientID, ac.scope, ac.offline)
	e.msIssue(w, acc, g, ac.scope)
}

// msIssue answers a token request with new tokens of grant g: a new
// refresh token every time, as Microsoft rotates them.
func (e *Emulator) msIssue(w http.ResponseWriter, acc *account, g *grant, scope []string) {
	at, life := e.accessToken(acc, g, scope)
	resp := msTokenResponse{TokenType: "Bearer", Scope: strings.Join(scope, " "),
		ExpiresIn: int(life / time.Second), ExtExpiresIn: int(life / time.Second), AccessToken: at}
	if g.offline {
		resp.RefreshToken = e.refreshToken(acc, g)
	}
	if hasScope(scope, "openid") {
		resp.IDToken = e.idToken(acc, g.clientID)
	}
	writeJSON(w, http.StatusOK, resp)
}

// googleTokenResponse is Google's token endpoint answer.
type googleTokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	IDToken      string `json:"id_token,omitempty"`
}

// handleGoogleToken serves POST /token.
func (e *Emulator) handleGoogleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		googleOAuthError(w, 400, "invalid_request", "Could not determine client ID from request.")
		return
	}
	f := r.PostForm
	e.locked(w, func(w http.ResponseWriter) {
		if !e.admitLocked(w, Google, SurfaceGoogleToken) {
			return
		}
		grantType := f.Get("grant_type")
		var email string
		switch grantType {
		case "refresh_token":
			if c, ok := e.parseRefresh(Google, f.Get("refresh_token")); ok {
				email = c.Email
			}
		case "authorization_code":
			if ac := e.codes[f.Get("code")]; ac != nil {
				email = ac.email
			}
		}
		var tenant string
		if acc := e.accounts[email]; acc != nil {
			tenant = acc.tenant
		}
		if flt := e.faultLocked(Google, SurfaceGoogleToken, email, tenant); flt != nil {
			e.injectFault(w, flt, SurfaceGoogleToken)
			return
		}
		id, secret := clientCreds(r)
		switch {
		case id == "":
			googleOAuthError(w, 400, "invalid_request", "Could not determine client ID from request.")
			return
		case id != e.cfg.ClientID:
			googleOAuthError(w, 401, "invalid_client", "The OAuth client was not found.")
			return
		case secret == "":
			googleOAuthError(w, 400, "invalid_request", "client_secret is missing.")
			return
		case !equalSecret(secret, e.cfg.ClientSecret):
			googleOAuthError(w, 401, "invalid_client", "Unauthorized")
			return
		}
		switch grantType {
		case "refresh_token":
			e.googleRefreshLocked(w, f.Get("refresh_token"))
		case "authorization_code":
			e.googleCodeLocked(w, f.Get("code"), f.Get("redirect_uri"), f.Get("code_verifier"))
		default:
			googleOAuthError(w, 400, "unsupported_grant_type", "Invalid grant_type: "+grantType)
		}
	})
}

func (e *Emulator) googleRefreshLocked(w http.ResponseWriter, token string) {
	if token == "" {
		googleOAuthError(w, 400, "invalid_request", "Missing required parameter: refresh_token")
		return
	}
	c, ok := e.parseRefresh(Google, token)
	if !ok {
		googleOAuthError(w, 400, "invalid_grant", "Bad Request")
		return
	}
	acc := e.accounts[c.Email]
	var g *grant
	if acc != nil {
		g = acc.grant(c.Grant)
	}
	if g == nil || g.revoked {
		googleOAuthError(w, 400, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	e.googleIssue(w, acc, g, false)
}

func (e *Emulator) googleCodeLocked(w http.ResponseWriter, code, redirectURI, verifier string) {
	if code == "" {
		googleOAuthError(w, 400, "invalid_request", "Missing required parameter: code")
		return
	}
	ac, res := e.redeemLocked(Google, code, redirectURI, verifier)
	switch res {
	case redeemUnknown:
		googleOAuthError(w, 400, "invalid_grant", "Malformed auth code.")
		return
	case redeemUsed, redeemExpired:
		googleOAuthError(w, 400, "invalid_grant", "Bad Request")
		return
	case redeemRedirect:
		googleOAuthError(w, 400, "redirect_uri_mismatch", "Bad Request")
		return
	case redeemVerifier:
		if verifier == "" {
			googleOAuthError(w, 400, "invalid_grant", "Missing code verifier.")
		} else {
			googleOAuthError(w, 400, "invalid_grant", "Invalid code verifier.")
		}
		return
	}
	acc := e.accounts[ac.email]
	g := e.newGrantLocked(acc, ac.clientID, ac.scope, ac.offline)
	e.googleIssue(w, acc, g, true)
}

// googleIssue answers with a new access token; a refresh token only on a
// code exchange of an offline grant, since Google does not rotate them.
func (e *Emulator) googleIssue(w http.ResponseWriter, acc *account, g *grant, exchange bool) {
	at, life := e.accessToken(acc, g, g.scope)
	resp := googleTokenResponse{AccessToken: at, ExpiresIn: int(life / time.Second),
		Scope: strings.Join(g.scope, " "), TokenType: "Bearer"}
	if exchange && g.offline {
		resp.RefreshToken = e.refreshToken(acc, g)
	}
	if hasScope(g.scope, "openid") {
		resp.IDToken = e.idToken(acc, g.clientID)
	}
	writeGoogleJSON(w, http.StatusOK, resp)
}

package emulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Token kinds.
const (
	kindAccess  = "at"
	kindRefresh = "rt"
	kindCursor  = "cur"
)

// graphAudience is the Graph resource: the audience of the access tokens
// the emulator's Graph accepts. Tokens for other resources (Outlook's IMAP
// and SMTP) are issued but refused there.
const graphAudience = "https://graph.microsoft.com"

// Token prefixes that make the emulator's tokens look like the real ones.
const (
	prefixMicrosoftRefresh = "0.AXEmu"
	prefixGoogleAccess     = "ya29.emu"
	prefixGoogleRefresh    = "1//emu"
)

// claims is what every token carries. Microsoft access tokens are JWTs
// with these as private claims next to the registered ones.
type claims struct {
	Kind  string `json:"hf_kind"`
	Email string `json:"hf_email"`
	Grant string `json:"hf_grant,omitempty"`
	Exp   int64  `json:"hf_exp,omitempty"` // Unix milliseconds
	Nonce string `json:"hf_nonce,omitempty"`
}

// msAccessClaims is the payload of a Microsoft access token.
type msAccessClaims struct {
	Aud   string `json:"aud"`
	Iss   string `json:"iss"`
	Iat   int64  `json:"iat"`
	Nbf   int64  `json:"nbf"`
	ExpS  int64  `json:"exp"`
	AppID string `json:"appid"`
	Scp   string `json:"scp"`
	Tid   string `json:"tid"`
	UPN   string `json:"upn"`
	claims
}

// googleAccessClaims is the payload of a Google access token: the common
// claims and the scopes of its grant.
type googleAccessClaims struct {
	claims
	Scope string `json:"hf_scope,omitempty"`
}

// idClaims is the payload of an ID token.
type idClaims struct {
	Aud               string `json:"aud"`
	Iss               string `json:"iss"`
	Iat               int64  `json:"iat"`
	Exp               int64  `json:"exp"`
	Sub               string `json:"sub"`
	Email             string `json:"email"`
	EmailVerified     bool   `json:"email_verified,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Tid               string `json:"tid,omitempty"`
}

var b64 = base64.RawURLEncoding

func nonce() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b64.EncodeToString(b)
}

func (e *Emulator) mac(s string) []byte {
	m := hmac.New(sha256.New, e.key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// seal encodes v as prefix + payload + "." + MAC.
func (e *Emulator) seal(prefix string, v any) string {
	p, _ := json.Marshal(v) // plain structs: cannot fail
	body := b64.EncodeToString(p)
	return prefix + body + "." + b64.EncodeToString(e.mac(prefix + body)[:16])
}

// open decodes a token made by seal with the same prefix into v.
func (e *Emulator) open(prefix, s string, v any) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return false
	}
	body, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return false
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, e.mac(prefix + body)[:16]) {
		return false
	}
	p, err := b64.DecodeString(body)
	return err == nil && json.Unmarshal(p, v) == nil
}

var jwtHeader = b64.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256","kid":"holdfast-emulator"}`))

// jwt encodes v as an HS256 JWT.
func (e *Emulator) jwt(v any) string {
	p, _ := json.Marshal(v) // plain structs: cannot fail
	s := jwtHeader + "." + b64.EncodeToString(p)
	return s + "." + b64.EncodeToString(e.mac(s))
}

// openJWT decodes a JWT made by jwt into v.
func (e *Emulator) openJWT(s string, v any) bool {
	i := strings.LastIndexByte(s, '.')
	if i < 0 || !strings.HasPrefix(s, jwtHeader+".") {
		return false
	}
	got, err := b64.DecodeString(s[i+1:])
	if err != nil || !hmac.Equal(got, e.mac(s[:i])) {
		return false
	}
	p, err := b64.DecodeString(s[len(jwtHeader)+1 : i])
	return err == nil && json.Unmarshal(p, v) == nil
}

// refreshToken returns a new refresh token of grant g.
func (e *Emulator) refreshToken(acc *account, g *grant) string {
	c := claims{Kind: kindRefresh, Email: acc.email, Grant: g.id, Nonce: nonce()}
	if acc.provider == Microsoft {
		return e.seal(prefixMicrosoftRefresh, c)
	}
	return e.seal(prefixGoogleRefresh, c)
}

// parseRefresh decodes a refresh token of provider p.
func (e *Emulator) parseRefresh(p Provider, s string) (claims, bool) {
	var c claims
	prefix := prefixGoogleRefresh
	if p == Microsoft {
		prefix = prefixMicrosoftRefresh
	}
	ok := e.open(prefix, s, &c) && c.Kind == kindRefresh
	return c, ok
}

// accessToken returns a new access token of grant g for scope and its
// lifetime. A Microsoft token is for the resource of scope's first
// permission and carries, in its scp claim, the permissions of scope on that
// resource: what was granted at consent, or the subset a refresh asked for.
// A Google token carries scope, the scopes granted at consent.
func (e *Emulator) accessToken(acc *account, g *grant, scope []string) (string, time.Duration) {
	now := e.now()
	life := e.cfg.TokenLifetime
	c := claims{Kind: kindAccess, Email: acc.email, Grant: g.id, Exp: now.Add(life).UnixMilli(), Nonce: nonce()}
	if acc.provider == Google {
		return e.seal(prefixGoogleAccess, googleAccessClaims{claims: c, Scope: strings.Join(scope, " ")}), life
	}
	aud := graphAudience
	for _, s := range scope {
		if res, _ := scopeResource(s); res != "" {
			aud = res // a token is for the first scope's resource
			break
		}
	}
	var scp []string
	for _, s := range scope {
		res, name := scopeResource(s)
		if (res == aud || res == "") && !strings.EqualFold(name, "offline_access") {
			scp = append(scp, name)
		}
	}
	return e.jwt(msAccessClaims{
		Aud: aud, Iss: "https://sts.windows.net/" + acc.tenant + "/",
		Iat: now.Unix(), Nbf: now.Unix(), ExpS: now.Add(life).Unix(), AppID: g.clientID, Scp: strings.Join(scp, " "),
		Tid: acc.tenant, UPN: acc.email, claims: c,
	}), life
}

// scopeResource splits a Microsoft scope into the resource it is a
// permission on and the permission's name: a bare name ("Mail.Send") is a
// Graph permission, as at Microsoft; a URI scope
// ("https://outlook.office.com/IMAP.AccessAsUser.All") names its resource.
// The OpenID Connect scopes (openid, profile, email, offline_access) have
// no resource ("").
func scopeResource(s string) (resource, name string) {
	if slices.Contains(oidcScopes, strings.ToLower(s)) {
		return "", s
	}
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.IndexByte(s[i+3:], '/'); j >= 0 {
			return strings.ToLower(s[:i+3+j]), s[i+3+j+1:]
		}
		return strings.ToLower(s), ""
	}
	return graphAudience, s
}

// parseAccess decodes an access token of provider p; it does not check
// expiry or the grant. It also returns the token's permissions: for
// Microsoft its scp claim, for Google the scopes of its grant.
func (e *Emulator) parseAccess(p Provider, s string) (claims, []string, bool) {
	if p == Microsoft {
		var c msAccessClaims
		ok := e.openJWT(s, &c) && c.Kind == kindAccess && c.Aud == graphAudience
		return c.claims, strings.Fields(c.Scp), ok
	}
	var c googleAccessClaims
	ok := e.open(prefixGoogleAccess, s, &c) && c.Kind == kindAccess
	return c.claims, strings.Fields(c.Scope), ok
}

// idToken returns an ID token for acc issued to clientID.
func (e *Emulator) idToken(acc *account, clientID string) string {
	now := e.now()
	sum := sha256.Sum256([]byte(acc.email))
	c := idClaims{Aud: clientID, Iat: now.Unix(), Exp: now.Add(time.Hour).Unix(), Email: acc.email}
	if acc.provider == Microsoft {
		c.Iss = "https://login.microsoftonline.com/" + acc.tenant + "/v2.0"
		c.Sub = b64.EncodeToString(sum[:16])
		c.PreferredUsername = acc.email
		c.Tid = acc.tenant
	} else {
		c.Iss = "https://accounts.google.com"
		c.Sub = "1" + strconv.FormatUint(binary.BigEndian.Uint64(sum[:8])%1e19, 10)
		c.EmailVerified = true
	}
	return e.jwt(c)
}

// accessLocked checks an access token's claims: it returns the account, or
// a reason the token is refused ("expired", "invalid").
func (e *Emulator) accessLocked(c claims) (*account, string) {
	acc := e.accounts[c.Email]
	if acc == nil {
		return nil, "invalid"
	}
	g := acc.grant(c.Grant)
	if g == nil || g.revoked {
		return acc, "revoked"
	}
	if e.now().UnixMilli() >= c.Exp {
		return acc, "expired"
	}
	return acc, ""
}

// cursor is the payload of delta tokens, skip tokens and page tokens.
type cursor struct {
	Kind   string `json:"hf_kind"`
	Email  string `json:"e"`
	Folder string `json:"f,omitempty"`
	Gen    uint64 `json:"g"`
	After  uint64 `json:"a"`           // items after this change number
	Upto   uint64 `json:"u,omitempty"` // and up to this one (the round's snapshot)
	Size   int    `json:"s,omitempty"` // page size
	Select string `json:"sel,omitempty"`
	Query  string `json:"q,omitempty"` // for Gmail list pages: the query it belongs to
}

func (e *Emulator) sealCursor(c cursor) string {
	c.Kind = kindCursor
	return e.seal("", c)
}

func (e *Emulator) openCursor(s string) (cursor, bool) {
	var c cursor
	ok := e.open("", s, &c) && c.Kind == kindCursor
	return c, ok
}

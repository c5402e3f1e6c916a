package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// The cookies the dashboard sets.
const (
	sessionCookie = "holdfast_session"
	// loginCookie carries the login form's CSRF token before there is a
	// session (a double-submit token).
	loginCookie = "holdfast_login"
	// csrfField is the form field that carries the CSRF token.
	csrfField = "csrf"
)

// session is a signed-in operator: the API key they signed in with and
// when the sign-in expires.
type session struct {
	KeyID   string
	KeyName string
	Expires time.Time
	// nonce makes each sign-in's CSRF token its own.
	nonce [16]byte
	raw   string
}

// encodeSession serialises and signs s.
func (d *dash) encodeSession(s *session) string {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(s.Expires.Unix()))
	b = append(b, s.nonce[:]...)
	b = append(b, s.KeyID+"\x00"+s.KeyName...)
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(d.mac("session", []byte(p)))
}

// decodeSession verifies a cookie's value and returns its session, or
// false for a malformed, tampered or expired one.
func (d *dash) decodeSession(v string, now time.Time) (*session, bool) {
	p, m, ok := strings.Cut(v, ".")
	if !ok {
		return nil, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil || !d.checkMAC(mac, "session", []byte(p)) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || len(b) < 8+16 {
		return nil, false
	}
	s := &session{Expires: time.Unix(int64(binary.BigEndian.Uint64(b)), 0).UTC(), raw: v}
	copy(s.nonce[:], b[8:24])
	s.KeyID, s.KeyName, ok = strings.Cut(string(b[24:]), "\x00")
	if !ok || !now.Before(s.Expires) {
		return nil, false
	}
	return s, true
}

// csrf is the session's CSRF token, put in every form.
func (d *dash) csrf(s *session) string {
	return base64.RawURLEncoding.EncodeToString(d.mac("csrf", s.nonce[:]))
}

// checkMAC reports whether mac is the MAC of data for purpose under the
// session key or one of the previous ones, so that a rotation of the
// signing key does not sign everyone out.
func (d *dash) checkMAC(mac []byte, purpose string, data []byte) bool {
	for _, k := range d.cfg.SessionKeysFunc() {
		if hmac.Equal(mac, macWith(k, purpose, data)) {
			return true
		}
	}
	return false
}

func (d *dash) mac(purpose string, data []byte) []byte {
	return macWith(d.cfg.SessionKeysFunc()[0], purpose, data)
}

func macWith(key []byte, purpose string, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("holdfast dashboard " + purpose))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}

// secure reports whether the request came over HTTPS, directly or
// through a proxy that says so, so that cookies are marked Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (d *dash) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, expires time.Time) {
	c := &http.Cookie{
		Name: name, Value: value, Path: path, HttpOnly: true, Secure: secure(r),
		SameSite: http.SameSiteStrictMode,
	}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

// requireSession sends a request without a valid session to the sign-in
// form, coming back here afterwards. The session's key is looked up on
// every request, so revoking it ends the session at once.
func (d *dash) requireSession(next sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			if s, ok := d.decodeSession(c.Value, d.cfg.Clock.Now()); ok {
				switch err := d.checkSessionKey(r, s); {
				case err == nil:
					next(w, r, s)
					return
				case !errors.Is(err, errKeyGone):
					d.log.ErrorContext(r.Context(), "dashboard: look up the session's API key", "key_id", s.KeyID, "err", err)
					http.Error(w, "holdfast could not check your session; please try again.", http.StatusServiceUnavailable)
					return
				}
				d.log.InfoContext(r.Context(), "dashboard: session of a revoked API key ended", "key_id", s.KeyID)
				d.setCookie(w, r, sessionCookie, "", "/ui/", time.Time{})
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "Your session has expired: sign in again.", http.StatusForbidden)
			return
		}
		http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	})
}

// errKeyGone says that a session's API key was revoked, deleted or no
// longer allows the dashboard.
var errKeyGone = errors.New("the session's API key no longer allows the dashboard")

// checkSessionKey returns nil if the key s was made with still works and
// allows the dashboard, errKeyGone if not, or the store's error.
func (d *dash) checkSessionKey(r *http.Request, s *session) error {
	k, err := d.cfg.Store.APIKeyByID(r.Context(), s.KeyID)
	switch {
	case errors.Is(err, holdfast.ErrNotFound):
		return errKeyGone
	case err != nil:
		return err
	case !k.Allows(holdfast.PermDashboard):
		return errKeyGone
	}
	return nil
}

// sessionHandler is a handler that runs for a signed-in operator.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// checkCSRF rejects a POST whose form lacks the session's CSRF token, or
// that comes from another origin.
func (d *dash) checkCSRF(next sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "The form could not be read.", http.StatusBadRequest)
			return
		}
		if badText(w, r.PostForm) {
			return
		}
		if !sameOrigin(r) || !hmac.Equal([]byte(r.PostForm.Get(csrfField)), []byte(d.csrf(s))) {
			d.log.WarnContext(r.Context(), "dashboard: POST without a valid CSRF token", "path", r.URL.Path, "key_id", s.KeyID)
			http.Error(w, "This form has expired or did not come from the dashboard: reload the page and try again.", http.StatusForbidden)
			return
		}
		next(w, r, s)
	}
}

// sameOrigin reports whether a request's Origin header, when there is one,
// names this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// newSession signs in the holder of key.
func (d *dash) newSession(k *holdfast.APIKey) *session {
	s := &session{KeyID: k.ID, KeyName: k.Name, Expires: d.cfg.Clock.Now().Add(d.cfg.SessionLifetime).Truncate(time.Second).UTC()}
	randomBytes(s.nonce[:])
	return s
}

func randomBytes(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("dashboard: crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
}

// safeNext returns where to go after signing in: a path under /ui/, or
// the fleet page.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "/ui/login") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	return next
}

// handleLoginForm serves GET /ui/login.
func (d *dash) handleLoginForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.loginForm(w, r, http.StatusOK, "")
	})
}

func (d *dash) loginForm(w http.ResponseWriter, r *http.Request, status int, problem string) {
	var tok [16]byte
	randomBytes(tok[:])
	t := base64.RawURLEncoding.EncodeToString(tok[:])
	d.setCookie(w, r, loginCookie, t, "/ui/login", d.cfg.Clock.Now().Add(time.Hour))
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostForm.Get("next")
	}
	d.writePage(w, r, status, &view{
		Template: "login", Title: "Sign in", CSRF: t,
		Data: map[string]string{"Next": safeNext(next), "Problem": problem},
	}, nil)
}

// handleLogin serves POST /ui/login: it checks the API key and starts a
// session.
func (d *dash) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "The form could not be read.", http.StatusBadRequest)
			return
		}
		if badText(w, r.PostForm) {
			return
		}
		c, err := r.Cookie(loginCookie)
		if err != nil || c.Value == "" || !sameOrigin(r) || !hmac.Equal([]byte(c.Value), []byte(r.PostForm.Get(csrfField))) {
			d.loginForm(w, r, http.StatusForbidden, "The sign-in form expired. Please try again.")
			return
		}
		key := strings.TrimSpace(r.PostForm.Get("api_key"))
		k, err := d.cfg.Store.APIKeyByHash(r.Context(), holdfast.HashAPIKey(key))
		if errors.Is(err, holdfast.ErrNotFound) || key == "" || (err == nil && k.Revoked()) {
			d.log.WarnContext(r.Context(), "dashboard: sign-in with an unknown API key")
			d.loginForm(w, r, http.StatusUnauthorized, "That API key is not valid.")
			return
		}
		if err != nil {
			d.log.ErrorContext(r.Context(), "dashboard: look up API key", "err", err)
			d.loginForm(w, r, http.StatusInternalServerError, "holdfast could not check the key; please try again.")
			return
		}
		if !k.Allows(holdfast.PermDashboard) {
			d.log.WarnContext(r.Context(), "dashboard: sign-in with a key whose scope does not allow it", "key_id", k.ID, "scope", k.Scope)
			d.loginForm(w, r, http.StatusForbidden, "That API key's scope ("+string(k.Scope)+") does not allow the dashboard: use a full or dashboard key.")
			return
		}
		s := d.newSession(k)
		d.setCookie(w, r, sessionCookie, d.encodeSession(s), "/ui/", s.Expires)
		d.setCookie(w, r, loginCookie, "", "/ui/login", time.Time{})
		d.log.InfoContext(r.Context(), "dashboard: signed in", "key_id", k.ID, "key_name", k.Name)
		http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
	})
}

// handleLogout serves POST /ui/logout.
func (d *dash) handleLogout(w http.ResponseWriter, r *http.Request, s *session) {
	d.setCookie(w, r, sessionCookie, "", "/ui/", time.Time{})
	d.log.InfoContext(r.Context(), "dashboard: signed out", "key_id", s.KeyID)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// DeriveKey derives the session key from a secret the service keeps (the
// secret key setting, or a key file), so that the dashboard's key is not
// the key of anything else.
func DeriveKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("holdfast dashboard sessions v1"))
	return m.Sum(nil)
}

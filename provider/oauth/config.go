package oauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// Config configures a Source for one provider's token endpoint.
type Config struct {
	// Provider is holdfast.ProviderMicrosoft or holdfast.ProviderGoogle.
	Provider holdfast.Provider
	// BaseURL is the token service's base URL. For Microsoft it is the
	// login host (DefaultMicrosoftLoginURL; HOLDFAST_MICROSOFT_LOGIN_URL),
	// and the token endpoint is BaseURL/{Tenant}/oauth2/v2.0/token. For
	// Google it is the OAuth host (DefaultGoogleOAuthURL;
	// HOLDFAST_GOOGLE_OAUTH_URL), and the token endpoint is BaseURL/token.
	// Empty means the provider's real endpoint.
	BaseURL string
	// Tenant is the Microsoft tenant in the token URL: "common" (work,
	// school and personal accounts), "organizations", "consumers" or a
	// tenant ID. Empty means "common". Ignored for Google.
	Tenant string
	// AuthURL overrides the authorization endpoint AuthCodeURL points the
	// user to. Empty means BaseURL/{Tenant}/oauth2/v2.0/authorize for
	// Microsoft and DefaultGoogleAuthURL for Google.
	AuthURL string
	// ClientID and ClientSecret are holdfast's app registration. They are
	// sent in the request body (AuthStyleInParams), never in a header, so
	// that a refused refresh is sent once, not retried in another style.
	ClientID     string
	ClientSecret string
	// RedirectURL is the OAuth callback registered with the app
	// (https://YOUR-HOST/oauth/callback); AuthCodeURL and Exchange use it.
	RedirectURL string
	// Scopes are requested by AuthCodeURL. Empty means MicrosoftScopes or
	// GoogleScopes. A refresh sends no scope: the provider issues a token
	// for the scopes of the original grant (for Microsoft, for the
	// resource of the first scope).
	Scopes []string
	// HTTPClient sends the token requests. Nil means a client with a
	// Timeout of Config.Timeout.
	HTTPClient *http.Client
	// Timeout bounds each token request. Zero means DefaultTimeout.
	Timeout time.Duration
	// ExpiryMargin is how long before its expiry a cached access token is
	// refreshed. Zero means DefaultExpiryMargin.
	ExpiryMargin time.Duration
	// Logger receives debug and warning records; never a secret. Nil
	// discards them.
	Logger *slog.Logger
	// Now returns the current time, for the access-token cache. Nil means
	// time.Now.
	Now func() time.Time
}

// The real endpoints, used for Config's empty fields.
const (
	DefaultMicrosoftLoginURL = "https://login.microsoftonline.com"
	DefaultGoogleOAuthURL    = "https://oauth2.googleapis.com"
	DefaultGoogleAuthURL     = "https://accounts.google.com/o/oauth2/v2/auth"
	DefaultTenant            = "common"
)

// The defaults for Config's zero fields.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultExpiryMargin = 2 * time.Minute
	// unknownLifetime is how long an access token whose response had no
	// expires_in is cached.
	unknownLifetime = 5 * time.Minute
)

// MicrosoftScopes are the delegated permissions holdfast asks Microsoft
// for: a refresh token, reading, changing and sending mail with Graph, and
// reading the signed-in user's profile (User.Read), which the consent flow
// needs to check which account signed in (GET /me).
var MicrosoftScopes = []string{"offline_access", "Mail.ReadWrite", "Mail.Send", "User.Read"}

// GoogleScopes are the scopes holdfast asks Google for: reading mail (with
// search, which gmail.metadata does not allow) and sending it. gmail.readonly
// also allows users.getProfile, which the consent flow reads to check which
// account signed in, so no profile scope is needed.
var GoogleScopes = []string{
	"https://www.googleapis.com/auth/gmail.readonly",
	"https://www.googleapis.com/auth/gmail.send",
}

// withDefaults returns cfg with its zero fields set, or an error naming the
// bad field.
func (cfg Config) withDefaults() (Config, error) {
	switch cfg.Provider {
	case holdfast.ProviderMicrosoft:
		if cfg.BaseURL == "" {
			cfg.BaseURL = DefaultMicrosoftLoginURL
		}
		if cfg.Tenant == "" {
			cfg.Tenant = DefaultTenant
		}
		if len(cfg.Scopes) == 0 {
			cfg.Scopes = MicrosoftScopes
		}
	case holdfast.ProviderGoogle:
		if cfg.BaseURL == "" {
			cfg.BaseURL = DefaultGoogleOAuthURL
		}
		if cfg.AuthURL == "" {
			cfg.AuthURL = DefaultGoogleAuthURL
		}
		if len(cfg.Scopes) == 0 {
			cfg.Scopes = GoogleScopes
		}
	default:
		return cfg, fmt.Errorf("oauth config: Provider %q is not microsoft or google", cfg.Provider)
	}
	if cfg.ClientID == "" {
		return cfg, errors.New("oauth config: ClientID is empty")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return cfg, fmt.Errorf("oauth config: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if strings.ContainsAny(cfg.Tenant, "/?#") {
		return cfg, fmt.Errorf("oauth config: Tenant %q is not a tenant name or ID", cfg.Tenant)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.ExpiryMargin <= 0 {
		cfg.ExpiryMargin = DefaultExpiryMargin
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// tokenURL returns the token endpoint cfg points to (after defaults).
func (cfg Config) tokenURL() string {
	if cfg.Provider == holdfast.ProviderMicrosoft {
		return cfg.BaseURL + "/" + url.PathEscape(cfg.Tenant) + "/oauth2/v2.0/token"
	}
	return cfg.BaseURL + "/token"
}

// authURL returns the authorization endpoint cfg points to (after
// defaults).
func (cfg Config) authURL() string {
	if cfg.AuthURL != "" {
		return cfg.AuthURL
	}
	return cfg.BaseURL + "/" + url.PathEscape(cfg.Tenant) + "/oauth2/v2.0/authorize"
}

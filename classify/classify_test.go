package classify_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

const (
	rec  = holdfast.ClassRecoverable
	perm = holdfast.ClassPermanent
)

// want is the expected part of a verdict in the table below.
type want struct {
	Class           holdfast.Class
	Reason          holdfast.Reason
	Scope           holdfast.Scope
	Action          holdfast.Action
	RetryAfter      time.Duration
	OutageSensitive bool
}

// msToken builds a Microsoft token-endpoint body with the given error value,
// description and error_codes (as JSON).
func msToken(errValue, desc, codes string) string {
	return fmt.Sprintf(`{"error":%q,"error_description":%q,"error_codes":%s,"timestamp":"2025-03-01 21:05:00Z","trace_id":"t","correlation_id":"c"}`,
		errValue, desc, codes)
}

// TestClassifyDocumentedCodes covers errors that are not in the vector file
// but that the rules must get right from the documented codes and formats.
func TestClassifyDocumentedCodes(t *testing.T) {
	t.Parallel()
	retryHeader := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		name string
		in   classify.Input
		want want
	}{
		// Microsoft identity platform: other codes of the doc table.
		{"aadsts 70000 outage-sensitive", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS70000: The provided value for the 'refresh_token' is not valid.", "[70000]")},
			want{perm, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, true}},
		{"aadsts 50053 locked", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS50053: Your account is locked.", "[50053]")},
			want{perm, holdfast.ReasonAccountLocked, holdfast.ScopeAccount, holdfast.ActionContactAdmin, 0, true}},
		{"aadsts 90002 tenant not found", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_request", "AADSTS90002: Tenant 'x' not found.", "[90002]")},
			want{perm, holdfast.ReasonAccountNotFound, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, true}},
		{"aadsts 50055 password expired", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS50055: The password is expired.", "[50055]")},
			want{perm, holdfast.ReasonPasswordExpired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"aadsts 50078 mfa", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("interaction_required", "AADSTS50078: Presented multi-factor authentication has expired.", "[50078]")},
			want{perm, holdfast.ReasonMFARequired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"aadsts 53000 device", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS53000: Device is not in required device state.", "[53000]")},
			want{perm, holdfast.ReasonConditionalAccess, holdfast.ScopeAccount, holdfast.ActionContactAdmin, 0, false}},
		{"aadsts 500011 admin consent", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_resource", "AADSTS500011: The resource principal was not found.", "[500011]")},
			want{perm, holdfast.ReasonConsentRequired, holdfast.ScopeAccount, holdfast.ActionAdminConsent, 0, false}},
		{"aadsts 7000112 app disabled", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("unauthorized_client", "AADSTS7000112: Application is disabled.", "[7000112]")},
			want{perm, holdfast.ReasonAdminPolicy, holdfast.ScopeAccount, holdfast.ActionContactAdmin, 0, false}},
		{"aadsts 700084 spa", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS700084: The refresh token was issued to a single page app.", "[700084]")},
			want{perm, holdfast.ReasonTokenExpired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"aadsts 90055 throttled", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_request", "AADSTS90055: TenantThrottlingError.", "[90055]")},
			want{rec, holdfast.ReasonThrottled, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"aadsts 80014 agent timeout", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS80014: Validation request responded after maximum elapsed time exceeded.", "[80014]")},
			want{rec, holdfast.ReasonProviderTimeout, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"aadsts 500133 assertion time", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS500133: Assertion is not within its valid time range.", "[500133]")},
			want{rec, holdfast.ReasonTokenExpired, holdfast.ScopeAccount, holdfast.ActionRefreshToken, 0, false}},
		{"700082 decided by error_codes, not the description", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS50057: The user account is disabled.", "[700082]")},
			want{perm, holdfast.ReasonTokenExpired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"several codes: first known", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS70002: Error validating credentials.", "[70002,70000]")},
			want{perm, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, true}},
		{"several codes: a transient one wins", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS50076: MFA.", "[50076,90033]")},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"no error_codes: leading AADSTS code", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: `{"error":"invalid_grant","error_description":"AADSTS70008: The refresh token has expired due to inactivity."}`},
			want{perm, holdfast.ReasonTokenExpired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"no code at all: error value", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 401,
			Raw: `{"error":"invalid_client","error_description":"Client authentication failed."}`},
			want{perm, holdfast.ReasonAppMisconfigured, holdfast.ScopeApp, holdfast.ActionOperator, 0, false}},
		{"no code at all: invalid_grant is outage-sensitive", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: `{"error":"invalid_grant","error_description":"The password was changed."}`},
			want{perm, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, true}},
		{"unknown code with suberror", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: `{"error":"invalid_grant","error_description":"AADSTS99999: x","error_codes":[99999],"suberror":"bad_token"}`},
			want{perm, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, true}},
		{"unknown code is unknown", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS99999: The user changed their password.", "[99999]")},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"escaped keys and values", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: `{"err\u006fr":"invalid_grant","error_c\u006fdes":[50057],"suberror":"b\u0061d_token"}`},
			want{perm, holdfast.ReasonAccountDisabled, holdfast.ScopeAccount, holdfast.ActionContactAdmin, 0, false}},
		{"error_codes inside a string do not count", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: `{"error":"invalid_grant","claims":"{\"error_codes\":[50057],\"x\":\"\\\"\"}","error_codes":[70008]}`},
			want{perm, holdfast.ReasonTokenExpired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"5xx with a permanent code", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 503,
			Raw: msToken("invalid_grant", "AADSTS50057: The user account is disabled.", "[50057]")},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetry, 0, true}},
		{"504 without a body", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 504},
			want{rec, holdfast.ReasonProviderTimeout, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"429 with Retry-After", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 429, Header: retryHeader("30")},
			want{rec, holdfast.ReasonThrottled, holdfast.ScopeAccount, holdfast.ActionRetryAfter, 30 * time.Second, false}},
		{"HTML error page", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400, Raw: "<html>Bad Request</html>"},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},

		// Microsoft Graph.
		{"graph code in lower case", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 410,
			Raw: `{"error":{"code":"syncStateNotFound","message":"x"}}`},
			want{rec, holdfast.ReasonSyncResetRequired, holdfast.ScopeOperation, holdfast.ActionResync, 0, false}},
		{"graph code in upper case", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 404,
			Raw: `{"error":{"code":"ERRORITEMNOTFOUND","message":"x"}}`},
			want{rec, holdfast.ReasonItemNotFound, holdfast.ScopeItem, holdfast.ActionSkipItem, 0, false}},
		{"graph resyncRequired", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 410,
			Raw: `{"error":{"code":"resyncRequired","message":"x"}}`},
			want{rec, holdfast.ReasonSyncResetRequired, holdfast.ScopeOperation, holdfast.ActionResync, 0, false}},
		{"graph 410 without a code", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 410, Raw: ""},
			want{rec, holdfast.ReasonSyncResetRequired, holdfast.ScopeOperation, holdfast.ActionResync, 0, false}},
		{"graph escaped code", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 404,
			Raw: `{"error":{"code":"ErrorItem\u004eotFound"}}`},
			want{rec, holdfast.ReasonItemNotFound, holdfast.ScopeItem, holdfast.ActionSkipItem, 0, false}},
		{"graph 401 whatever the code", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 401,
			Raw: `{"error":{"code":"ErrorAccessDenied"}}`},
			want{rec, holdfast.ReasonTokenExpired, holdfast.ScopeAccount, holdfast.ActionRefreshToken, 0, false}},
		{"graph CAE claims challenge", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 403,
			Header: http.Header{"Www-Authenticate": {`Bearer realm="", error="insufficient_claims", claims="eyJ9"`}},
			Raw:    `{"error":{"code":"Forbidden"}}`},
			want{rec, holdfast.ReasonTokenExpired, holdfast.ScopeAccount, holdfast.ActionRefreshToken, 0, false}},
		{"graph 429 Retry-After seconds", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 429,
			Header: retryHeader("10"), Raw: `{"error":{"code":"TooManyRequests","message":"Please retry again later."}}`},
			want{rec, holdfast.ReasonThrottled, holdfast.ScopeOperation, holdfast.ActionRetryAfter, 10 * time.Second, false}},
		{"graph 429 Retry-After decimal", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 429,
			Header: retryHeader("2.128"), Raw: `{"error":{"code":"ApplicationThrottled"}}`},
			want{rec, holdfast.ReasonThrottled, holdfast.ScopeOperation, holdfast.ActionRetryAfter, 2128 * time.Millisecond, false}},
		{"graph 503 Retry-After date", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 503,
			Header: retryHeader("Tue, 21 Jan 2020 12:01:30 GMT"), Raw: `{"error":{"code":"serviceNotAvailable"}}`},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeOperation, holdfast.ActionRetryAfter, 90 * time.Second, false}},
		{"graph Retry-After in the past", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 503,
			Header: retryHeader("Mon, 20 Jan 2020 12:00:00 GMT"), Raw: `{"error":{"code":"serviceNotAvailable"}}`},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"graph account disabled", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 403,
			Raw: `{"error":{"code":"ErrorAccountDisabled"}}`},
			want{perm, holdfast.ReasonAccountDisabled, holdfast.ScopeAccount, holdfast.ActionContactAdmin, 0, false}},
		{"graph send as denied", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 403,
			Raw: `{"error":{"code":"ErrorSendAsDenied"}}`},
			want{perm, holdfast.ReasonSendAsDenied, holdfast.ScopeOperation, holdfast.ActionSkipItem, 0, true}},
		{"graph submission quota", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 429,
			Raw: `{"error":{"code":"ErrorSubmissionQuotaExceeded"}}`},
			want{rec, holdfast.ReasonQuotaExceeded, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"graph unknown 400", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 400,
			Raw: `{"error":{"code":"SomethingNew","message":"ErrorAccountDisabled"}}`},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"graph 500 unknown code", classify.Input{Surface: classify.SurfaceGraph, HTTPStatus: 500,
			Raw: `{"error":{"code":"UnknownError"}}`},
			want{rec, holdfast.ReasonServerBug, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},

		// Google OAuth.
		{"google invalid_rapt", classify.Input{Surface: classify.SurfaceGoogleToken, HTTPStatus: 400,
			Raw: `{"error":"invalid_grant","error_description":"reauth related error (invalid_rapt)","error_uri":"https://support.google.com/a/answer/9368756","error_subtype":"invalid_rapt"}`},
			want{perm, holdfast.ReasonConditionalAccess, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"google deleted_client", classify.Input{Surface: classify.SurfaceGoogleToken, HTTPStatus: 401,
			Raw: `{"error":"deleted_client","error_description":"The OAuth client was deleted."}`},
			want{perm, holdfast.ReasonAppMisconfigured, holdfast.ScopeApp, holdfast.ActionOperator, 0, false}},
		{"google robot disabled", classify.Input{Surface: classify.SurfaceGoogleToken, HTTPStatus: 400,
			Raw: `{"error":"invalid_grant","error_description":"Robot is disabled."}`},
			want{perm, holdfast.ReasonAppMisconfigured, holdfast.ScopeApp, holdfast.ActionOperator, 0, false}},
		{"google undocumented invalid_grant", classify.Input{Surface: classify.SurfaceGoogleToken, HTTPStatus: 400,
			Raw: `{"error":"invalid_grant","error_description":"Something new"}`},
			want{perm, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, true}},
		{"google 500", classify.Input{Surface: classify.SurfaceGoogleToken, HTTPStatus: 500, Raw: "Internal error"},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},

		// Gmail.
		{"gmail 401", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 401,
			Raw: `{"error":{"code":401,"message":"Invalid Credentials","errors":[{"domain":"global","reason":"authError","message":"Invalid Credentials","locationType":"header","location":"Authorization"}],"status":"UNAUTHENTICATED"}}`},
			want{rec, holdfast.ReasonTokenExpired, holdfast.ScopeAccount, holdfast.ActionRefreshToken, 0, false}},
		{"gmail insufficientPermissions", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 403,
			Raw: `{"error":{"code":403,"message":"Request had insufficient authentication scopes.","errors":[{"message":"Insufficient Permission","domain":"global","reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED"}}`},
			want{perm, holdfast.ReasonInsufficientScope, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"gmail details ACCESS_TOKEN_SCOPE_INSUFFICIENT", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 403,
			Raw: `{"error":{"code":403,"message":"Request had insufficient authentication scopes.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT","domain":"googleapis.com"}]}}`},
			want{perm, holdfast.ReasonInsufficientScope, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"gmail concurrent requests", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 429,
			Raw: `{"error":{"code":429,"message":"Too many concurrent requests for user","errors":[{"reason":"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}`},
			want{rec, holdfast.ReasonThrottled, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"gmail sending limit with a future time", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 429,
			Raw: `{"error":{"code":429,"message":"User-rate limit exceeded.  Retry after 2020-01-21T13:00:00.000Z","errors":[{"reason":"rateLimitExceeded"}]}}`},
			want{rec, holdfast.ReasonQuotaExceeded, holdfast.ScopeOperation, holdfast.ActionRetryAfter, time.Hour, false}},
		{"gmail 404 on threads.get", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 404, Operation: "threads.get",
			Raw: `{"error":{"code":404,"message":"Requested entity was not found.","errors":[{"reason":"notFound"}],"status":"NOT_FOUND"}}`},
			want{rec, holdfast.ReasonItemNotFound, holdfast.ScopeItem, holdfast.ActionSkipItem, 0, false}},
		{"gmail 404 on users.history.list", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 404, Operation: "users.history.list",
			Raw: `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}`},
			want{rec, holdfast.ReasonSyncResetRequired, holdfast.ScopeOperation, holdfast.ActionResync, 0, false}},
		{"gmail 404 without an operation", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 404,
			Raw: `{"error":{"code":404,"message":"Requested entity was not found.","errors":[{"reason":"notFound"}],"status":"NOT_FOUND"}}`},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"gmail 502", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 502, Raw: "<html>bad gateway</html>"},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"gmail 504", classify.Input{Surface: classify.SurfaceGmail, HTTPStatus: 504},
			want{rec, holdfast.ReasonProviderTimeout, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},

		// IMAP.
		{"imap BYE with UNAVAILABLE", classify.Input{Surface: classify.SurfaceIMAP, Raw: "* BYE [UNAVAILABLE] Server shutting down"},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"imap app password", classify.Input{Provider: "google", Surface: classify.SurfaceIMAP,
			Raw: "A1 NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)"},
			want{perm, holdfast.ReasonAppPasswordRequired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"imap web login", classify.Input{Provider: "google", Surface: classify.SurfaceIMAP,
			Raw: "A1 NO [ALERT] Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)"},
			want{perm, holdfast.ReasonInteractionRequired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"imap CONTACTADMIN", classify.Input{Surface: classify.SurfaceIMAP, Raw: "a NO [CONTACTADMIN] Ask the postmaster"},
			want{perm, holdfast.ReasonAdminPolicy, holdfast.ScopeAccount, holdfast.ActionContactAdmin, 0, false}},
		{"imap SERVERBUG", classify.Input{Surface: classify.SurfaceIMAP, Raw: "a NO [SERVERBUG] Oops"},
			want{rec, holdfast.ReasonServerBug, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"imap CORRUPTION", classify.Input{Surface: classify.SurfaceIMAP, Raw: "a NO [CORRUPTION] Cannot open mailbox"},
			want{perm, holdfast.ReasonServerBug, holdfast.ScopeOperation, holdfast.ActionSkipItem, 0, false}},
		{"imap LIMIT", classify.Input{Surface: classify.SurfaceIMAP, Raw: "a NO [LIMIT] Too many flags"},
			want{perm, holdfast.ReasonInvalidRequest, holdfast.ScopeOperation, holdfast.ActionSkipItem, 0, false}},
		{"imap TEMPFAIL", classify.Input{Surface: classify.SurfaceIMAP, Raw: "a NO [TEMPFAIL] SELECT Temporary failure on server"},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"imap lower-case code", classify.Input{Surface: classify.SurfaceIMAP, Raw: "a no [authenticationfailed] nope"},
			want{perm, holdfast.ReasonPasswordChanged, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, true}},
		{"imap tag already stripped", classify.Input{Surface: classify.SurfaceIMAP, Raw: "NO [EXPIRED] Password expired"},
			want{perm, holdfast.ReasonPasswordExpired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"imap xoauth2 401 challenge", classify.Input{Provider: "google", Surface: classify.SurfaceIMAP,
			Raw: "+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="},
			want{perm, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionRefreshToken, 0, false}},
		{"imap challenge then tagged NO", classify.Input{Provider: "google", Surface: classify.SurfaceIMAP,
			Raw: "+ eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\nA1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"},
			want{perm, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionRefreshToken, 0, true}},
		{"imap o365 not connected then BYE", classify.Input{Provider: "microsoft", Surface: classify.SurfaceIMAP,
			Raw: "A2 BAD User is authenticated but not connected.\r\n* BYE Connection closed. 14"},
			want{perm, holdfast.ReasonInsufficientScope, holdfast.ScopeAccount, holdfast.ActionContactAdmin, 0, true}},
		{"imap other continuation", classify.Input{Surface: classify.SurfaceIMAP, Raw: "+ Ready for literal data"},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"imap unknown NO", classify.Input{Surface: classify.SurfaceIMAP, Raw: "a1 NO Something went wrong"},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"imap empty", classify.Input{Surface: classify.SurfaceIMAP, Raw: ""},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},

		// SMTP.
		{"smtp 530 auth required", classify.Input{Surface: classify.SurfaceSMTP, Raw: "530 5.7.0 Authentication required"},
			want{perm, holdfast.ReasonAppMisconfigured, holdfast.ScopeApp, holdfast.ActionOperator, 0, false}},
		{"smtp 535 5.7.0", classify.Input{Surface: classify.SurfaceSMTP, Raw: "535 5.7.0 Authentication failed"},
			want{perm, holdfast.ReasonPasswordChanged, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, true}},
		{"smtp 538 encryption required", classify.Input{Surface: classify.SurfaceSMTP, Raw: "538 5.7.11 Encryption required for requested authentication mechanism"},
			want{perm, holdfast.ReasonAppMisconfigured, holdfast.ScopeApp, holdfast.ActionOperator, 0, false}},
		{"smtp gmail 534 app password", classify.Input{Provider: "google", Surface: classify.SurfaceSMTP,
			Raw: "534-5.7.9 Application-specific password required. Learn more at\n534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor - gsmtp"},
			want{perm, holdfast.ReasonAppPasswordRequired, holdfast.ScopeAccount, holdfast.ActionReconnect, 0, false}},
		{"smtp 452 storage", classify.Input{Surface: classify.SurfaceSMTP, Raw: "452 4.3.1 Insufficient system storage"},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"smtp 4yz whatever the text", classify.Input{Surface: classify.SurfaceSMTP, Raw: "450 4.7.1 Authentication credentials invalid, account disabled"},
			want{rec, holdfast.ReasonProviderUnavailable, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"smtp 552 5.2.2 mailbox full", classify.Input{Surface: classify.SurfaceSMTP, Raw: "552 5.2.2 Mailbox full"},
			want{perm, holdfast.ReasonQuotaExceeded, holdfast.ScopeOperation, holdfast.ActionSkipItem, 0, false}},
		{"smtp o365 submission quota", classify.Input{Provider: "microsoft", Surface: classify.SurfaceSMTP,
			Raw: "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception"},
			want{rec, holdfast.ReasonQuotaExceeded, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"smtp 5.1.10 recipient", classify.Input{Surface: classify.SurfaceSMTP, Raw: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"},
			want{perm, holdfast.ReasonRecipientRejected, holdfast.ScopeOperation, holdfast.ActionSkipItem, 0, false}},
		{"smtp 500 syntax", classify.Input{Surface: classify.SurfaceSMTP, Raw: "500 5.5.1 Unrecognized command"},
			want{perm, holdfast.ReasonInvalidRequest, holdfast.ScopeApp, holdfast.ActionOperator, 0, false}},
		{"smtp unknown 5yz", classify.Input{Surface: classify.SurfaceSMTP, Raw: "554 Transaction failed"},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"smtp success is not an error", classify.Input{Surface: classify.SurfaceSMTP, Raw: "250 2.0.0 OK"},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"smtp no code", classify.Input{Surface: classify.SurfaceSMTP, Raw: "connection closed"},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"smtp xoauth2 challenge", classify.Input{Provider: "google", Surface: classify.SurfaceSMTP,
			Raw: "334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="},
			want{perm, holdfast.ReasonTokenRevoked, holdfast.ScopeAccount, holdfast.ActionRefreshToken, 0, false}},

		// Transport errors, through Input.Err.
		{"deadline exceeded", classify.Input{Surface: classify.SurfaceGraph, Err: fmt.Errorf("get messages: %w", context.DeadlineExceeded)},
			want{rec, holdfast.ReasonProviderTimeout, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"dial refused", classify.Input{Surface: classify.SurfaceIMAP,
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
			want{rec, holdfast.ReasonNetwork, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"dns not found", classify.Input{Surface: classify.SurfaceSMTP,
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "smtp.example.com", IsNotFound: true}}},
			want{rec, holdfast.ReasonNetwork, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"dns timeout", classify.Input{Surface: classify.SurfaceSMTP,
			Err: &net.DNSError{Err: "i/o timeout", Name: "smtp.example.com", IsTimeout: true}},
			want{rec, holdfast.ReasonProviderTimeout, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"connection reset", classify.Input{Surface: classify.SurfaceGmail,
			Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}},
			want{rec, holdfast.ReasonNetwork, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"x509 unknown authority", classify.Input{Surface: classify.SurfaceIMAP, Err: fmt.Errorf("tls: %w", x509.UnknownAuthorityError{})},
			want{rec, holdfast.ReasonNetwork, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"tls certificate verification", classify.Input{Surface: classify.SurfaceIMAP,
			Err: &tls.CertificateVerificationError{Err: x509.HostnameError{Host: "imap.example.com"}}},
			want{rec, holdfast.ReasonNetwork, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"tls alert", classify.Input{Surface: classify.SurfaceSMTP, Err: tls.AlertError(40)},
			want{rec, holdfast.ReasonNetwork, holdfast.ScopeAccount, holdfast.ActionRetry, 0, false}},
		{"unexpected EOF", classify.Input{Surface: classify.SurfaceIMAP, Err: io.ErrUnexpectedEOF},
			want{rec, holdfast.ReasonNetwork, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"canceled", classify.Input{Surface: classify.SurfaceIMAP, Err: context.Canceled},
			want{rec, holdfast.ReasonNetwork, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"transport error decides over the body", classify.Input{Surface: classify.SurfaceToken, HTTPStatus: 400,
			Raw: msToken("invalid_grant", "AADSTS50057: x", "[50057]"), Err: io.EOF},
			want{rec, holdfast.ReasonNetwork, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"unknown transport error", classify.Input{Surface: classify.SurfaceIMAP, Err: errors.New("mystery")},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
		{"already classified", classify.Input{Surface: classify.SurfaceIMAP, Err: fmt.Errorf("sync: %w", &holdfast.ProviderError{
			Class: perm, Reason: holdfast.ReasonAccountDisabled, Scope: holdfast.ScopeAccount, Action: holdfast.ActionContactAdmin})},
			want{perm, holdfast.ReasonAccountDisabled, holdfast.ScopeAccount, holdfast.ActionContactAdmin, 0, false}},

		// Surfaces.
		{"unknown surface", classify.Input{Surface: "ews", Raw: "x"},
			want{rec, holdfast.ReasonUnknown, holdfast.ScopeOperation, holdfast.ActionRetry, 0, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.in
			in.Now = testNow
			v := classify.Classify(in)
			got := want{v.Class, v.Reason, v.Scope, v.Action, v.RetryAfter, v.OutageSensitive}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Classify(%s) = %+v, want %+v (-want +got):\n%s", tt.name, got, tt.want, diff)
			}
			checkVerdict(t, in, v)
		})
	}
}

// TestClassifyDoesNotAllocate checks the zero-allocation promise on every
// vector. The SASL error challenges decode their base64 JSON into a string,
// the one allocation on a rare path. Not parallel: testing.AllocsPerRun
// refuses to run in a parallel test.
func TestClassifyDoesNotAllocate(t *testing.T) {
	allowed := map[string]bool{"imap-gmail-xoauth2-challenge": true}
	for _, v := range loadVectors(t) {
		in := v.input()
		n := testing.AllocsPerRun(20, func() { classify.Classify(in) })
		if n != 0 && !allowed[v.ID] {
			t.Errorf("Classify(%s) allocates %v times, want 0", v.ID, n)
		}
	}
}

// TestVerdictProviderError checks the conversion for connectors.
func TestVerdictProviderError(t *testing.T) {
	t.Parallel()
	cause := errors.New("535 5.7.8 bad credentials")
	v := classify.Classify(classify.Input{Surface: classify.SurfaceSMTP, Raw: "535 5.7.8 Authentication credentials invalid"})
	pe := v.ProviderError(cause)
	if !errors.Is(pe, cause) {
		t.Errorf("ProviderError(%v) does not wrap the cause", cause)
	}
	if holdfast.ClassOf(fmt.Errorf("send: %w", pe)) != perm {
		t.Errorf("ClassOf(ProviderError) = %v, want %v", holdfast.ClassOf(pe), perm)
	}
	if pe.UserMessage != v.UserMessage || pe.Reason != v.Reason {
		t.Errorf("ProviderError() = %+v, want the verdict's fields %+v", pe, v)
	}
}

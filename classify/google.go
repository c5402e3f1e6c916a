package classify

import (
	"github.com/holdfast/holdfast"
)

// Google OAuth token endpoint (surface google_token) and the Gmail API
// (surface gmail). Sources: classification.md §5 and §6, Google's OAuth 2.0
// documentation and the Gmail API "handle errors" and "sync" guides.

// googleTokenBody is what the Google token-endpoint rules read.
type googleTokenBody struct {
	err     text // "error"
	subtype text // "error_subtype"
	desc    text // "error_description", read only where §5 says the meaning is only there
}

func parseGoogleToken(raw string) googleTokenBody {
	var b googleTokenBody
	it, ok := object(raw, 0)
	if !ok {
		return b
	}
	for {
		key, vs, ve, ok := it.next()
		if !ok {
			return b
		}
		switch {
		case key.is("error") && !b.err.ok:
			b.err = jsonText(raw, vs, ve)
		case key.is("error_subtype") && !b.subtype.ok:
			b.subtype = jsonText(raw, vs, ve)
		case key.is("error_description") && !b.desc.ok:
			b.desc = jsonText(raw, vs, ve)
		}
	}
}

// googleToken classifies a Google OAuth token-endpoint error.
//
// Order: error (with error_subtype for invalid_grant). Google gives
// invalid_grant no machine-readable cause, so for invalid_grant alone the
// description is compared, exactly and whole, with the few texts
// classification.md §5 documents; any other invalid_grant description is the
// undocumented catch-all and outage-sensitive.
func googleToken(in Input) (Verdict, bool) {
	b := parseGoogleToken(in.Raw)
	switch {
	case b.err.is("invalid_grant"):
		switch {
		case b.subtype.is("invalid_rapt"):
			// Source: §5, Workspace session-control reauthentication.
			return gRAPT.verdict(), true
		case b.desc.isTrimmed("Account has been deleted"), b.desc.isTrimmed("The account has been deleted"):
			// Source: §5 and GAM-team/GAM PR 1171; the meaning is only in
			// the description.
			return gDeleted.verdict(), true
		case b.desc.isTrimmed("Robot is disabled."):
			// Source: §5, a disabled service account.
			return gRobot.verdict(), true
		case b.desc.isTrimmed("Token has been expired or revoked."):
			// Source: §5, the documented revocation text.
			return gRevoked.verdict(), true
		}
		// "Bad Request" and anything else: §5, undocumented, seen starting
		// suddenly for working setups.
		return gInvalidGrant.verdict(), true
	case b.err.is("admin_policy_enforced"):
		return gAdminPolicy.verdict(), true
	case b.err.is("invalid_client"), b.err.is("deleted_client"), b.err.is("unauthorized_client"),
		b.err.is("invalid_scope"), b.err.is("unsupported_grant_type"):
		return gClient.verdict(), true
	case b.err.is("invalid_request"):
		return gInvalidRequest.verdict(), true
	case b.err.is("access_denied"):
		return gAccessDenied.verdict(), true
	case b.err.is("temporarily_unavailable"):
		// Source: RFC 6749 §4.1.2.1.
		return gTemporarilyUnavailable.verdict(), true
	}
	return Verdict{}, false
}

var (
	gRAPT = rule{perm, holdfast.ReasonConditionalAccess, account, holdfast.ActionReconnect, false,
		"Google invalid_grant/invalid_rapt: a Workspace session-control policy requires reauthentication; the user signs in again, or the admin exempts the app."}
	gDeleted = rule{perm, holdfast.ReasonAccountNotFound, account, holdfast.ActionReconnect, false,
		"Google invalid_grant \"Account has been deleted\"."}
	gRobot = rule{perm, holdfast.ReasonAppMisconfigured, app, holdfast.ActionOperator, false,
		"Google invalid_grant \"Robot is disabled.\": the service account is disabled."}
	gRevoked = rule{perm, holdfast.ReasonTokenRevoked, account, holdfast.ActionReconnect, false,
		"Google invalid_grant \"Token has been expired or revoked.\": user revoked access, 6 months unused, password change with Gmail scopes, too many tokens, session control, or a Testing-mode app (7-day tokens). Google gives no way to tell which."}
	gInvalidGrant = rule{perm, holdfast.ReasonTokenRevoked, account, holdfast.ActionReconnect, true,
		"Google invalid_grant with an undocumented description (such as \"Bad Request\"): treated as revoked, but seen for working setups; confirm with a second attempt."}
	gAdminPolicy = rule{perm, holdfast.ReasonAdminPolicy, account, holdfast.ActionContactAdmin, false,
		"Google admin_policy_enforced: the Workspace admin blocked this app (API controls or Advanced Protection)."}
	gClient = rule{perm, holdfast.ReasonAppMisconfigured, app, holdfast.ActionOperator, false,
		"Google invalid_client/deleted_client/unauthorized_client/invalid_scope: holdfast's OAuth client is wrong, deleted or not authorised; page the operator, never the user."}
	gInvalidRequest = rule{perm, holdfast.ReasonInvalidRequest, app, holdfast.ActionOperator, false,
		"Google invalid_request: holdfast sent a malformed token request."}
	gAccessDenied = rule{perm, holdfast.ReasonConsentRequired, account, holdfast.ActionReconnect, false,
		"Google access_denied: the user did not grant consent."}
	gTemporarilyUnavailable = rule{rec, holdfast.ReasonProviderUnavailable, account, holdfast.ActionRetry, false,
		"Google temporarily_unavailable: retry with backoff."}
)

// maxReasons bounds how many errors[].reason and details[].reason are read.
const maxReasons = 4

// gmailBody is what the Gmail rules read from a body.
type gmailBody struct {
	status   text // error.status
	message  text // error.message, read for "Retry after <ts>" and §6's texts
	reasons  [maxReasons]text
	nreasons int
}

func parseGmail(raw string) gmailBody {
	var b gmailBody
	root, ok := object(raw, 0)
	if !ok {
		return b
	}
	for {
		key, vs, _, ok := root.next()
		if !ok {
			return b
		}
		if !key.is("error") {
			continue
		}
		e, ok := object(raw, vs)
		if !ok {
			return b
		}
		for {
			k, evs, eve, ok := e.next()
			if !ok {
				return b
			}
			switch {
			case k.is("status") && !b.status.ok:
				b.status = jsonText(raw, evs, eve)
			case k.is("message") && !b.message.ok:
				b.message = jsonText(raw, evs, eve)
			case k.is("errors"), k.is("details"):
				// errors[].reason (Google's error model) and
				// details[].reason (google.rpc.ErrorInfo).
				arr, _ := array(raw, evs)
				for b.nreasons < maxReasons {
					as, _, ok := arr.next()
					if !ok {
						break
					}
					item, ok := object(raw, as)
					if !ok {
						continue
					}
					for {
						ik, ivs, ive, ok := item.next()
						if !ok {
							break
						}
						if ik.is("reason") {
							if r := jsonText(raw, ivs, ive); r.ok {
								b.reasons[b.nreasons] = r
								b.nreasons++
							}
							break
						}
					}
				}
			}
		}
	}
}

// gmail classifies a Gmail API error.
//
// Order: 401 asks for a token refresh; 5xx is decided by the status alone;
// then errors[].reason (and details[].reason) in order; then error.status;
// a 404 notFound is told apart by Input.Operation.
func gmail(in Input) (Verdict, bool) {
	b := parseGmail(in.Raw)
	// Source: §6, 401 authError "Invalid Credentials": refresh, retry.
	if in.HTTPStatus == 401 || b.status.is("UNAUTHENTICATED") {
		return gmailRefresh.verdict(), true
	}
	// Source: §6, 500 backendError, 502, 503, 504: exponential backoff.
	// The body's reason (backendError on a 503 too) adds nothing.
	if in.HTTPStatus >= 500 && in.HTTPStatus <= 599 {
		return statusVerdict(in), true
	}
	for _, r := range b.reasons[:b.nreasons] {
		if v, ok := gmailReason(in, b, r); ok {
			return v, true
		}
	}
	switch {
	case b.status.is("RESOURCE_EXHAUSTED"):
		return gmailRate(in, b), true
	case b.status.is("NOT_FOUND"):
		return gmailNotFound(in)
	case b.status.is("FAILED_PRECONDITION"):
		return gmailPrecondition(b), true
	case b.status.is("UNAVAILABLE"):
		return gmailUnavailable.verdict(), true
	}
	return Verdict{}, false
}

// gmailReason maps one errors[].reason or details[].reason. Source: §6 and
// the Gmail "handle errors" guide.
func gmailReason(in Input, b gmailBody, r text) (Verdict, bool) {
	switch {
	case r.is("authError"):
		return gmailRefresh.verdict(), true
	case r.is("rateLimitExceeded"), r.is("userRateLimitExceeded"):
		return gmailRate(in, b), true
	case r.is("dailyLimitExceeded"), r.is("quotaExceeded"):
		return gmailDailyLimit.verdict(), true
	case r.is("insufficientPermissions"), r.is("ACCESS_TOKEN_SCOPE_INSUFFICIENT"):
		return gmailScope.verdict(), true
	case r.is("domainPolicy"):
		return gmailDomainPolicy.verdict(), true
	case r.is("accessNotConfigured"), r.is("SERVICE_DISABLED"):
		return gmailAPIDisabled.verdict(), true
	case r.is("failedPrecondition"):
		return gmailPrecondition(b), true
	case r.is("notFound"):
		return gmailNotFound(in)
	case r.is("backendError"):
		return gmailBackend.verdict(), true
	}
	return Verdict{}, false
}

// gmailRate classifies rate limits. The mail-sending limit comes with a
// "Retry after <RFC 3339 timestamp>" in its message (§6) and can last
// hours: quota_exceeded, with the wait. Other rate limits are throttling.
func gmailRate(in Input, b gmailBody) Verdict {
	if d, ok := textRetryAfter(b.message, in); ok {
		v := gmailSendingLimit.verdict()
		v.RetryAfter = d
		return v
	}
	return gmailThrottled.verdict()
}

// gmailPrecondition classifies failedPrecondition: §6 gives "Mail service
// not enabled" its own meaning, found only in the message; any other
// precondition failure is most often a service account without domain-wide
// delegation (gmail-400-precondition-failed).
func gmailPrecondition(b gmailBody) Verdict {
	if b.message.isTrimmed("Mail service not enabled") {
		return gmailNoMail.verdict()
	}
	return gmailPreconditionFailed.verdict()
}

// gmailNotFound classifies a 404 notFound, whose body is the same on every
// call: on history.list the start history ID is too old (full sync); on a
// message, thread, draft or attachment the item is gone (skip it).
func gmailNotFound(in Input) (Verdict, bool) {
	op := in.Operation
	if hasPrefixFold(op, "users.") {
		op = op[len("users."):]
	}
	switch {
	case equalFold(op, "history.list"):
		return gmailHistoryGone.verdict(), true
	case hasPrefixFold(op, "messages."), hasPrefixFold(op, "threads."), hasPrefixFold(op, "drafts."):
		return gmailItemGone.verdict(), true
	}
	return Verdict{}, false
}

var (
	gmailRefresh = rule{rec, holdfast.ReasonTokenExpired, account, holdfast.ActionRefreshToken, false,
		"Gmail 401 (authError, UNAUTHENTICATED): refresh the access token and retry; only invalid_grant from the token endpoint makes it permanent."}
	gmailThrottled = rule{rec, holdfast.ReasonThrottled, operation, holdfast.ActionRetry, false,
		"Gmail rateLimitExceeded/userRateLimitExceeded (403 or 429): exponential backoff."}
	gmailSendingLimit = rule{rec, holdfast.ReasonQuotaExceeded, operation, holdfast.ActionRetry, false,
		"Gmail mail-sending limit (429 \"User-rate limit exceeded. Retry after <ts>\"): wait until the given time; it can last hours."}
	gmailDailyLimit = rule{rec, holdfast.ReasonQuotaExceeded, app, holdfast.ActionOperator, false,
		"Gmail dailyLimitExceeded: the Cloud project's quota cap is reached; raise it. Do not disconnect users."}
	gmailScope = rule{perm, holdfast.ReasonInsufficientScope, account, holdfast.ActionReconnect, false,
		"Gmail insufficientPermissions: the token lacks a required scope; the user must reconnect and grant it."}
	gmailDomainPolicy = rule{perm, holdfast.ReasonAdminPolicy, account, holdfast.ActionContactAdmin, false,
		"Gmail domainPolicy: the domain's administrators have disabled Gmail apps."}
	gmailAPIDisabled = rule{perm, holdfast.ReasonAppMisconfigured, app, holdfast.ActionOperator, false,
		"Gmail accessNotConfigured: the Gmail API is not enabled in holdfast's Cloud project; enable it."}
	gmailNoMail = rule{perm, holdfast.ReasonMailboxNotEnabled, account, holdfast.ActionContactAdmin, false,
		"Gmail failedPrecondition \"Mail service not enabled\": the Google account has no Gmail."}
	gmailPreconditionFailed = rule{perm, holdfast.ReasonAppMisconfigured, account, holdfast.ActionOperator, false,
		"Gmail failedPrecondition: usually a service account used without domain-wide delegation, or an account that cannot use Gmail."}
	gmailHistoryGone = rule{rec, holdfast.ReasonSyncResetRequired, operation, holdfast.ActionResync, false,
		"Gmail history.list 404: the start history ID is no longer retained; run a full sync."}
	gmailItemGone = rule{rec, holdfast.ReasonItemNotFound, item, holdfast.ActionSkipItem, false,
		"Gmail 404 on a message, thread or draft: it was deleted between list and get; drop that ID."}
	gmailBackend = rule{rec, holdfast.ReasonServerBug, operation, holdfast.ActionRetry, false,
		"Gmail backendError: exponential backoff from at least 1 s."}
	gmailUnavailable = rule{rec, holdfast.ReasonProviderUnavailable, operation, holdfast.ActionRetry, false,
		"Gmail UNAVAILABLE: retry with backoff."}
)

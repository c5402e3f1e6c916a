package classify

import (
	"github.com/holdfast/holdfast"
)

// Microsoft identity platform (surface token) and Microsoft Graph (surface
// graph). Sources: classification.md §3 and §4, which follow the entra-docs
// error-code table (reference-error-codes.md), MSAL's
// UiRequiredExceptionClassification and learn.microsoft.com/graph/errors.

// maxCodes bounds how many error_codes are read; real bodies carry one or two.
const maxCodes = 8

// msTokenBody is what the token-endpoint rules read from a body.
type msTokenBody struct {
	err      text // "error"
	suberror text // "suberror"
	desc     text // "error_description", read only for its leading AADSTS code
	codes    [maxCodes]int
	ncodes   int
}

// parseMSToken reads a token-endpoint error: the JSON body of /token, or the
// form-encoded query string of an error redirect from /authorize.
func parseMSToken(raw string) msTokenBody {
	var b msTokenBody
	i := skipWS(raw, 0)
	if i < len(raw) && raw[i] == '{' {
		it, _ := object(raw, i)
		for {
			key, vs, ve, ok := it.next()
			if !ok {
				break
			}
			switch {
			case key.is("error") && !b.err.ok:
				b.err = jsonText(raw, vs, ve)
			case key.is("suberror") && !b.suberror.ok:
				b.suberror = jsonText(raw, vs, ve)
			case key.is("error_description") && !b.desc.ok:
				b.desc = jsonText(raw, vs, ve)
			case key.is("error_codes") && b.ncodes == 0:
				arr, _ := array(raw, vs)
				for b.ncodes < maxCodes {
					es, ee, ok := arr.next()
					if !ok {
						break
					}
					if c, ok := jsonInt(raw, es, ee); ok {
						b.codes[b.ncodes] = c
						b.ncodes++
					}
				}
			}
		}
		return b
	}
	it := formIter{s: trimSpace(raw)}
	for {
		key, val, ok := it.next()
		if !ok {
			break
		}
		switch {
		case key.is("error") && !b.err.ok:
			b.err = val
		case key.is("suberror") && !b.suberror.ok:
			b.suberror = val
		case key.is("error_description") && !b.desc.ok:
			b.desc = val
		}
	}
	return b
}

// leadingAADSTS returns the code of an error_description that begins
// "AADSTSnnnn:", the documented form of the description.
func leadingAADSTS(desc text) (int, bool) {
	if !desc.ok {
		return 0, false
	}
	r := desc.reader()
	c, ok := r.next()
	for ok && isSpace(c) {
		c, ok = r.next()
	}
	for i := 0; i < len("AADSTS"); i++ {
		if !ok || c != "AADSTS"[i] {
			return 0, false
		}
		c, ok = r.next()
	}
	n, digits := 0, 0
	for ok && c >= '0' && c <= '9' && digits < 9 {
		n = n*10 + int(c-'0')
		digits++
		c, ok = r.next()
	}
	if digits == 0 || !ok || c != ':' {
		return 0, false
	}
	return n, true
}

// microsoftToken classifies a Microsoft identity platform token error.
//
// Order: error_codes[] (a recoverable code wins over a permanent one when a
// body lists several), with suberror refining 50173; with no error_codes,
// the leading AADSTS code of error_description; for a code no rule knows,
// the suberror; then the error value. The description text is never
// matched.
func microsoftToken(in Input) (Verdict, bool) {
	b := parseMSToken(in.Raw)
	codes := b.codes[:b.ncodes]
	var one [1]int
	if len(codes) == 0 {
		// Source: the brief's fallback for bodies without error_codes,
		// such as the query string of an /authorize error redirect.
		if c, ok := leadingAADSTS(b.desc); ok {
			one[0] = c
			codes = one[:]
		}
	}
	var chosen rule
	found := false
	for _, c := range codes {
		r, ok := aadsts(c, b.suberror)
		if !ok {
			continue
		}
		if r.class == rec {
			// Never destructive when unsure: a transient code anywhere
			// in error_codes makes the whole error transient.
			return r.verdict(), true
		}
		if !found {
			chosen, found = r, true
		}
	}
	if found {
		return chosen.verdict(), true
	}
	if r, ok := msSuberror(b.suberror); ok {
		return r.verdict(), true
	}
	if b.err.is("temporarily_unavailable") {
		// Source: OAuth 2.0 (RFC 6749 §5.2) and the entra-docs error
		// table: the only error value that says "retry the request".
		return msErrTemporarilyUnavailable.verdict(), true
	}
	if len(codes) > 0 {
		// A code the table does not know: the error value is too coarse
		// to decide on (50076 and 70043 come with invalid_grant or
		// interaction_required alike), so the code stays unknown.
		return Verdict{}, false
	}
	if r, ok := msErrorValue(b.err); ok {
		return r.verdict(), true
	}
	return Verdict{}, false
}

// aadsts maps an AADSTS code to its rule. Source: classification.md §3,
// the entra-docs error-code table (2024), and §11 for 5000224 and 500113.
func aadsts(code int, suberror text) (rule, bool) {
	switch code {
	case 50173:
		// FreshTokenNeeded. Current bodies carry suberror bad_token (the
		// grant was revoked: revoke-sessions or an admin reset); older
		// bodies without a suberror were returned after a password change
		// or reset (ms-token-50173-legacy).
		if suberror.ok {
			return msRevoked50173, true
		}
		return msPasswordChanged50173, true
	case 70008, 700082:
		return msTokenExpired, true
	case 700084:
		return msTokenExpiredSPA, true
	case 70000:
		return msInvalidGrant70000, true
	case 70043:
		return msSignInFrequency, true
	case 50076, 50079, 50078, 50158:
		return msMFA, true
	case 53003, 53000, 530035:
		return msConditionalAccess, true
	case 50057:
		return msUserDisabled, true
	case 50053:
		return msLocked, true
	case 50126, 50132, 50133:
		return msPasswordChanged, true
	case 50055:
		return msPasswordExpired, true
	case 50034, 50020, 16000:
		return msAccountNotFound, true
	case 90002:
		return msTenantNotFound, true
	case 5000224:
		return msResourceNotAvailable, true
	case 65001, 65004:
		return msConsentUser, true
	case 500011, 700016:
		return msConsentAdmin, true
	case 50058:
		return msInteraction, true
	case 70001, 7000112:
		return msAppDisabled, true
	case 7000215, 7000222, 70011, 900971, 9002313, 500113:
		return msAppConfig, true
	case 80010, 240001:
		return msAdminPolicy, true
	case 500133:
		return msAssertionTime, true
	case 50196:
		return msLoopDetected, true
	case 90033, 50033, 50087, 90006, 90090, 90091, 70012, 80001, 80005:
		return msTransient, true
	case 80002, 80014:
		return msAgentTimeout, true
	case 90024, 90055:
		return msThrottled, true
	case 50000:
		return msTokenIssuance, true
	}
	return rule{}, false
}

// msSuberror maps a suberror, for codes the table does not know. Source:
// MSAL UiRequiredExceptionClassification (classification.md §3). Without a
// known code these stay outage-sensitive.
func msSuberror(s text) (rule, bool) {
	switch {
	case s.is("bad_token"):
		return msSubBadToken, true
	case s.is("user_password_expired"):
		return msSubPasswordExpired, true
	case s.is("consent_required"):
		return msSubConsent, true
	case s.is("basic_action"):
		return msSubBasicAction, true
	case s.is("additional_action"):
		return msSubAdditionalAction, true
	case s.is("message_only"):
		return msSubMessageOnly, true
	case s.is("token_expired"):
		return msSubTokenExpired, true
	}
	return rule{}, false
}

// msErrorValue maps the error value of a body with no AADSTS code at all.
// Source: entra-docs v2-oauth2-auth-code-flow error table (provider-apis.md
// §1.1).
func msErrorValue(e text) (rule, bool) {
	switch {
	case e.is("invalid_grant"):
		return msErrInvalidGrant, true
	case e.is("interaction_required"):
		return msErrInteraction, true
	case e.is("consent_required"), e.is("access_denied"):
		return msErrConsent, true
	case e.is("invalid_client"), e.is("unauthorized_client"), e.is("unsupported_grant_type"),
		e.is("invalid_resource"), e.is("invalid_scope"):
		return msErrApp, true
	case e.is("invalid_request"):
		return msErrInvalidRequest, true
	}
	return rule{}, false
}

const (
	account   = holdfast.ScopeAccount
	app       = holdfast.ScopeApp
	operation = holdfast.ScopeOperation
	item      = holdfast.ScopeItem
)

var (
	msRevoked50173 = rule{perm, holdfast.ReasonTokenRevoked, account, holdfast.ActionReconnect, false,
		"AADSTS50173 FreshTokenNeeded (suberror bad_token): the grant was revoked (revoke-sessions or an admin password reset); the user must sign in again."}
	msPasswordChanged50173 = rule{perm, holdfast.ReasonPasswordChanged, account, holdfast.ActionReconnect, false,
		"AADSTS50173 FreshTokenNeeded without suberror: the grant was revoked after a password change or reset; the user must sign in again."}
	msTokenExpired = rule{perm, holdfast.ReasonTokenExpired, account, holdfast.ActionReconnect, false,
		"AADSTS70008/700082: the refresh token expired through inactivity (90 days); the user must sign in again."}
	msTokenExpiredSPA = rule{perm, holdfast.ReasonTokenExpired, account, holdfast.ActionReconnect, false,
		"AADSTS700084: a single-page-app refresh token reached its fixed 24 h lifetime; check that the app registration is not of the SPA type."}
	msInvalidGrant70000 = rule{perm, holdfast.ReasonTokenRevoked, account, holdfast.ActionReconnect, true,
		"AADSTS70000 InvalidGrant: refresh token invalid or malformed; seen intermittently for valid tokens, so confirm before disconnecting."}
	msSignInFrequency = rule{perm, holdfast.ReasonConditionalAccess, account, holdfast.ActionReconnect, false,
		"AADSTS70043: the refresh token outlived a Conditional Access sign-in frequency; the user must sign in again."}
	msMFA = rule{perm, holdfast.ReasonMFARequired, account, holdfast.ActionReconnect, false,
		"AADSTS50076/50078/50079/50158: multi-factor authentication (or its enrolment, or an external challenge) is required; the user must sign in interactively."}
	msConditionalAccess = rule{perm, holdfast.ReasonConditionalAccess, account, holdfast.ActionContactAdmin, false,
		"AADSTS53000/53003/530035: blocked by Conditional Access, device compliance or security defaults; the tenant's admin must change policy."}
	msUserDisabled = rule{perm, holdfast.ReasonAccountDisabled, account, holdfast.ActionContactAdmin, false,
		"AADSTS50057 UserDisabled: the account is disabled in the tenant."}
	msLocked = rule{perm, holdfast.ReasonAccountLocked, account, holdfast.ActionContactAdmin, true,
		"AADSTS50053 IdsLocked: account locked, or sign-ins from a source IP judged malicious (possibly our egress IP); confirm across inboxes before acting."}
	msPasswordChanged = rule{perm, holdfast.ReasonPasswordChanged, account, holdfast.ActionReconnect, false,
		"AADSTS50126/50132/50133: the password or the SSO session was invalidated by a password change or expiry; the user must sign in again."}
	msPasswordExpired = rule{perm, holdfast.ReasonPasswordExpired, account, holdfast.ActionReconnect, false,
		"AADSTS50055: the user's password expired; the user must change it and sign in again."}
	msAccountNotFound = rule{perm, holdfast.ReasonAccountNotFound, account, holdfast.ActionReconnect, false,
		"AADSTS16000/50020/50034: the user is not in the directory or tenant (or the request went to the wrong tenant)."}
	msTenantNotFound = rule{perm, holdfast.ReasonAccountNotFound, account, holdfast.ActionReconnect, true,
		"AADSTS90002 InvalidTenantName: tenant not found; returned for hours for valid tenants during an outage, so confirm across the tenant's inboxes."}
	msResourceNotAvailable = rule{perm, holdfast.ReasonAccountNotFound, account, holdfast.ActionContactAdmin, true,
		"AADSTS5000224 (not in the docs table): resource not available, reported for deprovisioned tenants; confirm before disconnecting."}
	msConsentUser = rule{perm, holdfast.ReasonConsentRequired, account, holdfast.ActionReconnect, false,
		"AADSTS65001/65004: consent missing or declined; the user must sign in and consent (or an admin must, where user consent is off)."}
	msConsentAdmin = rule{perm, holdfast.ReasonConsentRequired, account, holdfast.ActionAdminConsent, false,
		"AADSTS500011/700016: the app or resource has no service principal in the tenant; a tenant admin must consent to the app. Affects every inbox of the tenant."}
	msInteraction = rule{perm, holdfast.ReasonInteractionRequired, account, holdfast.ActionReconnect, false,
		"AADSTS50058: a silent sign-in found no session; the user must sign in interactively."}
	msAppDisabled = rule{perm, holdfast.ReasonAdminPolicy, account, holdfast.ActionContactAdmin, false,
		"AADSTS70001/7000112: the application is disabled in the tenant; the tenant's admin must enable it."}
	msAppConfig = rule{perm, holdfast.ReasonAppMisconfigured, app, holdfast.ActionOperator, false,
		"AADSTS7000215/7000222/70011/900971/9002313/500113: holdfast's client secret, scopes, reply address or request is wrong; fix the app registration or configuration. Do not ask users to reconnect."}
	msAdminPolicy = rule{perm, holdfast.ReasonAdminPolicy, account, holdfast.ActionContactAdmin, false,
		"AADSTS80010/240001: the tenant's pass-through agent or device policy refuses this sign-in; the tenant's admin must act."}
	msAssertionTime = rule{rec, holdfast.ReasonTokenExpired, account, holdfast.ActionRefreshToken, false,
		"AADSTS500133: the assertion is outside its valid time range; check the clock and refresh the assertion."}
	msLoopDetected = rule{rec, holdfast.ReasonThrottled, operation, holdfast.ActionRetry, false,
		"AADSTS50196 LoopDetected: holdfast repeated the same token request too often; back off hard and check token caching."}
	msTransient = rule{rec, holdfast.ReasonProviderUnavailable, account, holdfast.ActionRetry, false,
		"AADSTS transient or on-premises-agent-unavailable code (documented as retryable); retry with backoff."}
	msAgentTimeout = rule{rec, holdfast.ReasonProviderTimeout, account, holdfast.ActionRetry, false,
		"AADSTS80002/80014: the on-premises authentication agent timed out; retry with backoff."}
	msThrottled = rule{rec, holdfast.ReasonThrottled, account, holdfast.ActionRetry, false,
		"AADSTS90024/90055: request budget or tenant throttling exceeded; back off."}
	msTokenIssuance = rule{rec, holdfast.ReasonProviderUnavailable, account, holdfast.ActionRetry, true,
		"AADSTS50000 TokenIssuanceError: a sign-in service problem; retry, and if it persists for one tenant only, suspect a consent policy."}

	msSubBadToken = rule{perm, holdfast.ReasonTokenRevoked, account, holdfast.ActionReconnect, true,
		"Unknown AADSTS code with suberror bad_token: the refresh token is invalid; the user must sign in again."}
	msSubPasswordExpired = rule{perm, holdfast.ReasonPasswordExpired, account, holdfast.ActionReconnect, true,
		"Unknown AADSTS code with suberror user_password_expired."}
	msSubConsent = rule{perm, holdfast.ReasonConsentRequired, account, holdfast.ActionReconnect, true,
		"Unknown AADSTS code with suberror consent_required."}
	msSubBasicAction = rule{perm, holdfast.ReasonInteractionRequired, account, holdfast.ActionReconnect, true,
		"Unknown AADSTS code with suberror basic_action: the user can fix it in an interactive sign-in."}
	msSubAdditionalAction = rule{perm, holdfast.ReasonConditionalAccess, account, holdfast.ActionContactAdmin, true,
		"Unknown AADSTS code with suberror additional_action: a fix is needed outside sign-in (device, compliance)."}
	msSubMessageOnly = rule{perm, holdfast.ReasonAdminPolicy, account, holdfast.ActionContactAdmin, true,
		"Unknown AADSTS code with suberror message_only: the user cannot fix it; an admin must."}
	msSubTokenExpired = rule{perm, holdfast.ReasonTokenExpired, account, holdfast.ActionReconnect, true,
		"Unknown AADSTS code with suberror token_expired."}

	msErrTemporarilyUnavailable = rule{rec, holdfast.ReasonProviderUnavailable, account, holdfast.ActionRetry, false,
		"Token endpoint error temporarily_unavailable: retry with backoff."}
	msErrInvalidGrant = rule{perm, holdfast.ReasonTokenRevoked, account, holdfast.ActionReconnect, true,
		"Token endpoint invalid_grant with no AADSTS code: the refresh token was refused for an unstated reason; confirm before disconnecting."}
	msErrInteraction = rule{perm, holdfast.ReasonInteractionRequired, account, holdfast.ActionReconnect, true,
		"Token endpoint interaction_required with no AADSTS code."}
	msErrConsent = rule{perm, holdfast.ReasonConsentRequired, account, holdfast.ActionReconnect, false,
		"Identity platform consent_required or access_denied with no AADSTS code: the user did not grant consent."}
	msErrApp = rule{perm, holdfast.ReasonAppMisconfigured, app, holdfast.ActionOperator, false,
		"Token endpoint client, grant-type, resource or scope error with no AADSTS code: holdfast's app registration or request is wrong."}
	msErrInvalidRequest = rule{perm, holdfast.ReasonInvalidRequest, app, holdfast.ActionOperator, false,
		"Token endpoint invalid_request with no AADSTS code: holdfast sent a malformed request."}
)

// graph classifies a Microsoft Graph error.
//
// Order: 401 (and a CAE claims challenge on 401/403) asks for a token
// refresh; then error.code compared without case; then 410 (delta reset) and
// 413 on the status alone. Graph's message is never matched.
func graph(in Input) (Verdict, bool) {
	// Source: classification.md §1.5 and §4: a 401 is not a verdict;
	// refresh (with the claims of a CAE challenge) and let the token
	// endpoint decide.
	if in.HTTPStatus == 401 || (in.HTTPStatus == 403 && claimsChallenge(in)) {
		if claimsChallenge(in) {
			return graphClaims.verdict(), true
		}
		return graph401.verdict(), true
	}
	code := graphCode(in.Raw)
	var buf [64]byte
	n, full := code.decode(buf[:])
	if code.ok && full {
		for i := range buf[:n] {
			buf[i] = lowerASCII(buf[i])
		}
		if r, ok := graphCodeRule(buf[:n]); ok {
			return r.verdict(), true
		}
	}
	switch in.HTTPStatus {
	case 410:
		// Source: provider-apis.md §2, delta: a 410 Gone is a sync
		// reset whatever its code.
		return graphGone.verdict(), true
	case 413:
		// Source: Graph errors doc, 413 Request Entity Too Large.
		return graphTooLarge.verdict(), true
	}
	return Verdict{}, false
}

// graphCode returns error.code of a Graph error body.
func graphCode(raw string) text {
	it, ok := object(raw, 0)
	if !ok {
		return text{}
	}
	for {
		key, vs, _, ok := it.next()
		if !ok {
			return text{}
		}
		if !key.is("error") {
			continue
		}
		inner, ok := object(raw, vs)
		if !ok {
			return text{}
		}
		for {
			k, cvs, cve, ok := inner.next()
			if !ok {
				return text{}
			}
			if k.is("code") {
				return jsonText(raw, cvs, cve)
			}
		}
	}
}

// claimsChallenge reports whether the response carries a Continuous Access
// Evaluation claims challenge (WWW-Authenticate error="insufficient_claims").
func claimsChallenge(in Input) bool {
	if in.Header == nil {
		return false
	}
	for _, v := range in.Header["Www-Authenticate"] {
		if indexFold(v, "insufficient_claims") >= 0 {
			return true
		}
	}
	return false
}

// graphCodeRule maps a lower-cased Graph error.code. Source:
// classification.md §4 (Graph errors doc and EWS response codes).
func graphCodeRule(code []byte) (rule, bool) {
	switch string(code) {
	case "invalidauthenticationtoken":
		return graph401, true
	case "erroraccessdenied", "authorization_requestdenied", "accessdenied":
		return graphAccessDenied, true
	case "mailboxnotenabledforrestapi":
		return graphMailboxNotEnabled, true
	case "resourcenotfound":
		return graphResourceNotFound, true
	case "erroritemnotfound", "itemnotfound":
		return graphItemNotFound, true
	case "syncstatenotfound", "resyncrequired", "invalidsyncstatedata":
		return graphGone, true
	case "applicationthrottled", "toomanyrequests", "errortoomanyobjectsopened", "activitylimitreached",
		"resourceunhealthy", "errorserverbusy":
		return graphThrottled, true
	case "generalexception", "errormovecopyfailed", "errorinternalservererror", "errorinternalservertransienterror":
		return graphServerBug, true
	case "servicenotavailable", "serviceunavailable":
		return graphUnavailable, true
	case "mailboxinfostale", "errormailboxstoreunavailable", "errormailboxmoveinprogress":
		return graphMailboxUnavailable, true
	case "errorsubmissionquotaexceeded":
		return graphSubmissionQuota, true
	case "erroraccountdisabled":
		return graphAccountDisabled, true
	case "errorquotaexceeded":
		return graphMailboxFull, true
	case "errorsendasdenied":
		return graphSendAsDenied, true
	case "errormessagesizeexceeded":
		return graphTooLarge, true
	case "errormimecontentinvalidbase64string":
		return graphBadMIME, true
	}
	return rule{}, false
}

var (
	graph401 = rule{rec, holdfast.ReasonTokenExpired, account, holdfast.ActionRefreshToken, false,
		"Graph 401 (InvalidAuthenticationToken): refresh the access token and retry once; only the token endpoint's answer can make this permanent."}
	graphClaims = rule{rec, holdfast.ReasonTokenExpired, account, holdfast.ActionRefreshToken, false,
		"Graph CAE claims challenge (insufficient_claims): refresh with the claims from WWW-Authenticate; the token endpoint decides."}
	graphAccessDenied = rule{perm, holdfast.ReasonInsufficientScope, account, holdfast.ActionReconnect, false,
		"Graph ErrorAccessDenied/Authorization_RequestDenied: the token lacks a permission (or an Exchange application access policy denies it)."}
	graphMailboxNotEnabled = rule{perm, holdfast.ReasonMailboxNotEnabled, account, holdfast.ActionContactAdmin, true,
		"Graph MailboxNotEnabledForRESTAPI: no Exchange Online mailbox (no licence, on-premises, soft-deleted); also seen on just-provisioned mailboxes, so re-check after a grace period."}
	graphResourceNotFound = rule{perm, holdfast.ReasonMailboxNotEnabled, account, holdfast.ActionContactAdmin, true,
		"Graph ResourceNotFound: the user's mailbox could not be discovered; ambiguous, confirm with a cheap probe before acting."}
	graphItemNotFound = rule{rec, holdfast.ReasonItemNotFound, item, holdfast.ActionSkipItem, false,
		"Graph ErrorItemNotFound: the item is gone (or not visible); skip it."}
	graphGone = rule{rec, holdfast.ReasonSyncResetRequired, operation, holdfast.ActionResync, false,
		"Graph delta state expired (410, syncStateNotFound/resyncRequired): drop the deltaLink and run a full sync."}
	graphThrottled = rule{rec, holdfast.ReasonThrottled, operation, holdfast.ActionRetry, false,
		"Graph throttling (429 codes, ErrorServerBusy, ResourceUnhealthy): back off, honour Retry-After, lower per-mailbox concurrency."}
	graphServerBug = rule{rec, holdfast.ReasonServerBug, operation, holdfast.ActionRetry, false,
		"Graph internal error (generalException, ErrorMoveCopyFailed): retry with backoff, escalate if it persists."}
	graphUnavailable = rule{rec, holdfast.ReasonProviderUnavailable, operation, holdfast.ActionRetry, false,
		"Graph serviceNotAvailable: retry after a delay."}
	graphMailboxUnavailable = rule{rec, holdfast.ReasonProviderUnavailable, account, holdfast.ActionRetry, false,
		"Graph mailbox unavailable (MailboxInfoStale, ErrorMailboxStoreUnavailable, ErrorMailboxMoveInProgress): the mailbox is moving or failing over; clears within hours."}
	graphSubmissionQuota = rule{rec, holdfast.ReasonQuotaExceeded, operation, holdfast.ActionRetry, false,
		"Graph ErrorSubmissionQuotaExceeded: the sending quota is used up; wait (up to 24 h) before sending again."}
	graphAccountDisabled = rule{perm, holdfast.ReasonAccountDisabled, account, holdfast.ActionContactAdmin, false,
		"Graph ErrorAccountDisabled: the mailbox's account is disabled."}
	graphMailboxFull = rule{perm, holdfast.ReasonQuotaExceeded, operation, holdfast.ActionSkipItem, false,
		"Graph ErrorQuotaExceeded: the mailbox is full; the user must free space. Do not reconnect."}
	graphSendAsDenied = rule{perm, holdfast.ReasonSendAsDenied, operation, holdfast.ActionSkipItem, true,
		"Graph ErrorSendAsDenied: no Send As right for the From address; Office 365 has returned SendAsDenied at random, so retry once before failing the send."}
	graphTooLarge = rule{perm, holdfast.ReasonMessageTooLarge, operation, holdfast.ActionSkipItem, false,
		"Graph ErrorMessageSizeExceeded (or 413): the message exceeds the size limit."}
	graphBadMIME = rule{perm, holdfast.ReasonInvalidRequest, operation, holdfast.ActionOperator, false,
		"Graph ErrorMimeContentInvalidBase64String: holdfast sent malformed MIME content."}
)

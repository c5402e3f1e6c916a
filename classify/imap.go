package classify

import (
	"strings"

	"github.com/holdfast/holdfast"
)

// IMAP (surface imap). Sources: RFC 3501 and RFC 9051 (response syntax),
// RFC 5530 (response codes), RFC 7628 and Google's XOAUTH2 protocol page
// (SASL error challenges), and the server texts of classification.md §7.

// imapLine is one parsed IMAP server response line.
type imapLine struct {
	tag  string // "*" for untagged, "+" for a continuation request, "" when absent
	kind string // OK, NO, BAD, BYE or PREAUTH; "" for a continuation
	code string // the response code atom, such as AUTHENTICATIONFAILED
	text string // the human-readable text after the code
}

// parseIMAPLine parses one response line. Tags vary, so everything is read
// after the tag; a line whose tag was already stripped is accepted too.
func parseIMAPLine(line string) (imapLine, bool) {
	line = trimSpace(line)
	if line == "" {
		return imapLine{}, false
	}
	if line[0] == '+' {
		return imapLine{tag: "+", text: trimSpace(line[1:])}, true
	}
	first, rest := cutSpace(line)
	var l imapLine
	if isIMAPStatus(first) {
		l.kind = first
	} else {
		l.tag = first
		l.kind, rest = cutSpace(rest)
		if !isIMAPStatus(l.kind) {
			return imapLine{}, false
		}
	}
	rest = trimSpace(rest)
	if len(rest) > 0 && rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			end = len(rest)
		}
		inner := rest[1:end]
		atom := inner
		if sp := strings.IndexByte(inner, ' '); sp >= 0 {
			atom = inner[:sp]
		}
		l.code = atom
		if end < len(rest) {
			rest = rest[end+1:]
		} else {
			rest = ""
		}
	}
	l.text = trimSpace(rest)
	return l, true
}

// cutSpace splits s at its first space.
func cutSpace(s string) (string, string) {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func isIMAPStatus(s string) bool {
	return equalFold(s, "NO") || equalFold(s, "BAD") || equalFold(s, "BYE") ||
		equalFold(s, "OK") || equalFold(s, "PREAUTH")
}

// pickIMAPLine chooses the line that carries the error: the first tagged NO
// or BAD (the command's own result), else the first untagged NO, BAD or
// BYE, else a continuation request (a SASL error challenge), else the first
// parsable line.
func pickIMAPLine(raw string) (imapLine, bool) {
	var untagged, cont, any imapLine
	var hasUntagged, hasCont, hasAny bool
	for rest := raw; rest != ""; {
		line := rest
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		l, ok := parseIMAPLine(line)
		if !ok {
			continue
		}
		isErr := equalFold(l.kind, "NO") || equalFold(l.kind, "BAD") || equalFold(l.kind, "BYE")
		switch {
		case l.tag == "+":
			if !hasCont {
				cont, hasCont = l, true
			}
		case l.tag != "*" && isErr:
			return l, true
		case isErr:
			if !hasUntagged {
				untagged, hasUntagged = l, true
			}
		}
		if !hasAny {
			any, hasAny = l, true
		}
	}
	switch {
	case hasUntagged:
		return untagged, true
	case hasCont:
		return cont, true
	}
	return any, hasAny
}

// imap classifies an IMAP response.
//
// Order: an XOAUTH2/OAUTHBEARER error challenge; the RFC 5530 response code
// (and Gmail's [ALERT] texts); then known server texts without a code; then
// an untagged BYE. Anything else is unknown.
func imap(in Input) Verdict {
	l, ok := pickIMAPLine(in.Raw)
	if !ok {
		return unknown(in, "IMAP response that is not a status line or continuation request.")
	}
	if l.tag == "+" {
		if saslErrorChallenge(l.text) {
			return imapXOAuth2.verdict()
		}
		return unknown(in, "IMAP continuation request that is not a SASL error challenge.")
	}
	if l.code != "" {
		if v, ok := imapCode(in, l); ok {
			return v
		}
	}
	if v, ok := imapText(l); ok {
		return v
	}
	if equalFold(l.kind, "BYE") {
		// Source: RFC 3501 §7.1.5, unilateral BYE (autologout, shutdown).
		return imapBye.verdict()
	}
	return unknown(in, "IMAP NO/BAD with no known response code or server text.")
}

// imapCode maps an RFC 5530 response code. Source: RFC 5530 §3 and
// classification.md §7.
func imapCode(in Input, l imapLine) (Verdict, bool) {
	c := l.code
	switch {
	case equalFold(c, "UNAVAILABLE"):
		if hasPrefixFold(l.text, "Maximum number of connections") {
			// Dovecot mail_max_userip_connections.
			return imapTooManyConnections.verdict(), true
		}
		return imapUnavailable.verdict(), true
	case equalFold(c, "TEMPFAIL"):
		// Yahoo's non-standard code for a temporary server failure.
		return imapUnavailable.verdict(), true
	case equalFold(c, "INUSE"):
		return imapInUse.verdict(), true
	case equalFold(c, "AUTHENTICATIONFAILED"):
		if in.Provider == "google" || in.Provider == "microsoft" {
			// holdfast signs in to these with OAuth (XOAUTH2), so the
			// credential that failed is the access token.
			return imapAuthFailedOAuth.verdict(), true
		}
		return imapAuthFailed.verdict(), true
	case equalFold(c, "AUTHORIZATIONFAILED"):
		return imapAuthzFailed.verdict(), true
	case equalFold(c, "EXPIRED"):
		return imapExpired.verdict(), true
	case equalFold(c, "PRIVACYREQUIRED"):
		return imapPrivacy.verdict(), true
	case equalFold(c, "CONTACTADMIN"):
		return imapContactAdmin.verdict(), true
	case equalFold(c, "NOPERM"):
		return imapNoPerm.verdict(), true
	case equalFold(c, "CORRUPTION"):
		return imapCorruption.verdict(), true
	case equalFold(c, "SERVERBUG"):
		return imapServerBug.verdict(), true
	case equalFold(c, "CANNOT"), equalFold(c, "LIMIT"), equalFold(c, "ALREADYEXISTS"):
		return imapCannot.verdict(), true
	case equalFold(c, "CLIENTBUG"):
		return imapClientBug.verdict(), true
	case equalFold(c, "OVERQUOTA"):
		if hasPrefixFold(l.text, "Account exceeded command or bandwidth limits") {
			// Gmail's bandwidth limit, lifted after about 24 h.
			return imapBandwidth.verdict(), true
		}
		return imapOverQuota.verdict(), true
	case equalFold(c, "NONEXISTENT"), equalFold(c, "TRYCREATE"):
		return imapNonexistent.verdict(), true
	case equalFold(c, "ALERT"):
		// Gmail's [ALERT] texts (classification.md §7, from code
		// fixtures and issue reports).
		switch {
		case hasPrefixFold(l.text, "Too many simultaneous connections"):
			return imapTooManyConnections.verdict(), true
		case hasPrefixFold(l.text, "Application-specific password required"):
			return imapAppPassword.verdict(), true
		case hasPrefixFold(l.text, "Please log in via your web browser"):
			return imapWebLogin.verdict(), true
		}
	}
	return Verdict{}, false
}

// imapText maps the known server texts that carry no response code.
// Source: classification.md §7 (Office 365 and Gmail).
func imapText(l imapLine) (Verdict, bool) {
	t := l.text
	switch {
	case hasPrefixFold(t, "AUTHENTICATE failed"):
		return imapO365AuthenticateFailed.verdict(), true
	case hasPrefixFold(t, "LOGIN failed"):
		return imapO365LoginFailed.verdict(), true
	case hasPrefixFold(t, "User is authenticated but not connected"):
		return imapO365NotConnected.verdict(), true
	case hasPrefixFold(t, "Invalid SASL argument"):
		return imapInvalidSASL.verdict(), true
	}
	return Verdict{}, false
}

// saslErrorChallenge reports whether a continuation request carries the
// JSON error of a failed XOAUTH2 or OAUTHBEARER exchange:
// base64({"status":"400"|"401"|"invalid_token",...}).
func saslErrorChallenge(b64 string) bool {
	var buf [decodeBufSize]byte
	n, ok := decodeBase64(buf[:], b64)
	if !ok {
		return false
	}
	it, ok := object(string(buf[:n]), 0)
	if !ok {
		return false
	}
	for {
		key, vs, ve, ok := it.next()
		if !ok {
			return false
		}
		if key.is("status") {
			s := jsonText(it.s, vs, ve)
			return s.is("400") || s.is("401") || s.is("invalid_token")
		}
	}
}

// decodeBase64 decodes standard base64 (padding optional) into buf.
func decodeBase64(buf []byte, s string) (int, bool) {
	s = trimSpace(s)
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	if s == "" || len(s)%4 == 1 {
		return 0, false
	}
	n := 0
	var acc uint32
	bits := 0
	for i := 0; i < len(s); i++ {
		v, ok := base64Value(s[i])
		if !ok {
			return 0, false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			if n == len(buf) {
				return 0, false
			}
			buf[n] = byte(acc >> bits)
			n++
		}
	}
	return n, true
}

func base64Value(c byte) (byte, bool) {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A', true
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26, true
	case '0' <= c && c <= '9':
		return c - '0' + 52, true
	case c == '+':
		return 62, true
	case c == '/':
		return 63, true
	}
	return 0, false
}

var (
	imapXOAuth2 = rule{perm, holdfast.ReasonTokenRevoked, account, holdfast.ActionRefreshToken, false,
		"IMAP SASL error challenge (XOAUTH2/OAUTHBEARER status 400/401): the access token was refused (revoked, expired or missing the https://mail.google.com/ scope); send the empty response, refresh and retry once."}
	imapUnavailable = rule{rec, holdfast.ReasonProviderUnavailable, account, holdfast.ActionRetry, false,
		"IMAP [UNAVAILABLE]/[TEMPFAIL]: a server subsystem is down (RFC 5530); retry with backoff, never disconnect. A long streak points at the server's auth backend."}
	imapTooManyConnections = rule{rec, holdfast.ReasonThrottled, account, holdfast.ActionRetry, false,
		"IMAP connection limit for the user reached (Dovecot max connections, Gmail too many simultaneous connections): a login failure that is not a credential failure; use fewer connections."}
	imapInUse = rule{rec, holdfast.ReasonProviderUnavailable, operation, holdfast.ActionRetry, false,
		"IMAP [INUSE]: the mailbox is locked; may succeed later (RFC 5530)."}
	imapAuthFailed = rule{perm, holdfast.ReasonPasswordChanged, account, holdfast.ActionReconnect, true,
		"IMAP [AUTHENTICATIONFAILED]: credentials refused (RFC 5530); also emitted during providers' own auth incidents, so confirm over time before disconnecting."}
	imapAuthFailedOAuth = rule{perm, holdfast.ReasonTokenRevoked, account, holdfast.ActionRefreshToken, true,
		"IMAP [AUTHENTICATIONFAILED] on an OAuth provider: the token was refused (revoked or wrong scope); refresh and retry once, and confirm over time before disconnecting."}
	imapAuthzFailed = rule{perm, holdfast.ReasonInsufficientScope, account, holdfast.ActionContactAdmin, false,
		"IMAP [AUTHORIZATIONFAILED]: authenticated, but may not act as the requested identity (shared or delegated mailbox without rights)."}
	imapExpired = rule{perm, holdfast.ReasonPasswordExpired, account, holdfast.ActionReconnect, false,
		"IMAP [EXPIRED]: the password is no longer valid."}
	imapPrivacy = rule{perm, holdfast.ReasonAppMisconfigured, app, holdfast.ActionOperator, false,
		"IMAP [PRIVACYREQUIRED]: the server requires TLS; use TLS or STARTTLS."}
	imapContactAdmin = rule{perm, holdfast.ReasonAdminPolicy, account, holdfast.ActionContactAdmin, false,
		"IMAP [CONTACTADMIN]: the user must contact the server's administrator."}
	imapNoPerm = rule{perm, holdfast.ReasonInsufficientScope, operation, holdfast.ActionSkipItem, false,
		"IMAP [NOPERM]: the ACL denies this operation (for example on one folder); not an account failure."}
	imapCorruption = rule{perm, holdfast.ReasonServerBug, operation, holdfast.ActionSkipItem, false,
		"IMAP [CORRUPTION]: the mailbox data is corrupt; skip the folder."}
	imapServerBug = rule{rec, holdfast.ReasonServerBug, operation, holdfast.ActionRetry, false,
		"IMAP [SERVERBUG]: the server hit a bug; retry a capped number of times."}
	imapCannot = rule{perm, holdfast.ReasonInvalidRequest, operation, holdfast.ActionSkipItem, false,
		"IMAP [CANNOT]/[LIMIT]/[ALREADYEXISTS]: the operation can never succeed as asked (RFC 5530)."}
	imapClientBug = rule{perm, holdfast.ReasonInvalidRequest, app, holdfast.ActionOperator, false,
		"IMAP [CLIENTBUG]: the server detected a bug in holdfast's IMAP client."}
	imapBandwidth = rule{rec, holdfast.ReasonQuotaExceeded, account, holdfast.ActionRetry, false,
		"IMAP [OVERQUOTA] \"Account exceeded command or bandwidth limits\": Gmail's daily bandwidth limit, lifted after about 24 h; never disconnect on it."}
	imapOverQuota = rule{perm, holdfast.ReasonQuotaExceeded, operation, holdfast.ActionSkipItem, false,
		"IMAP [OVERQUOTA]: storage quota exceeded; APPEND and COPY fail but reading works. The user must free space."}
	imapNonexistent = rule{rec, holdfast.ReasonItemNotFound, item, holdfast.ActionSkipItem, false,
		"IMAP [NONEXISTENT]/[TRYCREATE]: the folder does not exist; refresh the folder list."}
	imapAppPassword = rule{perm, holdfast.ReasonAppPasswordRequired, account, holdfast.ActionReconnect, false,
		"IMAP [ALERT] Application-specific password required (Gmail)."}
	imapWebLogin = rule{perm, holdfast.ReasonInteractionRequired, account, holdfast.ActionReconnect, false,
		"IMAP [ALERT] Please log in via your web browser (Gmail): the user must sign in on the web first."}
	imapO365AuthenticateFailed = rule{perm, holdfast.ReasonUnknown, account, holdfast.ActionRefreshToken, true,
		"IMAP \"AUTHENTICATE failed.\" (Office 365) has no reason code: expired or wrong token, missing IMAP.AccessAsUser.All, IMAP disabled, or a provider incident (EX1215307). Retry with a fresh token; permanent only if it persists while the token endpoint is healthy."}
	imapO365LoginFailed = rule{perm, holdfast.ReasonProtocolDisabled, account, holdfast.ActionReconnect, true,
		"IMAP \"LOGIN failed.\" (Office 365): password LOGIN refused, usually because the tenant requires OAuth; also seen during incidents."}
	imapO365NotConnected = rule{perm, holdfast.ReasonInsufficientScope, account, holdfast.ActionContactAdmin, true,
		"IMAP \"User is authenticated but not connected.\" (Office 365): wrong mailbox or missing shared-mailbox rights, occasionally flakiness; confirm before acting."}
	imapInvalidSASL = rule{perm, holdfast.ReasonInvalidRequest, app, holdfast.ActionOperator, false,
		"IMAP \"Invalid SASL argument.\" (Gmail): holdfast sent a malformed XOAUTH2 initial response."}
	imapBye = rule{rec, holdfast.ReasonNetwork, account, holdfast.ActionRetry, false,
		"IMAP untagged BYE (autologout or server shutdown): reconnect with backoff."}
)

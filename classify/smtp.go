package classify

import (
	"strings"

	"github.com/holdfast/holdfast"
)

// SMTP submission (surface smtp). Sources: RFC 5321 (reply codes), RFC 3463
// and RFC 5248 (enhanced status codes), RFC 4954 §6 (AUTH), and the Gmail
// and Office 365 replies of classification.md §8.

// smtpReply is a parsed SMTP reply.
type smtpReply struct {
	code int    // basic reply code, such as 535
	enh  [3]int // enhanced status code class.subject.detail; enh[0] == 0 when absent
	text string // the whole reply, every line, for the known server texts
}

// parseSMTP reads the first line of a reply: the basic code and, where the
// text begins with one of the same class, the enhanced status code. Every
// line of a multi-line reply carries the same codes.
func parseSMTP(raw string) (smtpReply, bool) {
	r := smtpReply{text: raw}
	line := trimSpace(raw)
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if len(line) < 3 {
		return r, false
	}
	for i := 0; i < 3; i++ {
		c := line[i]
		if c < '0' || c > '9' {
			return r, false
		}
		r.code = r.code*10 + int(c-'0')
	}
	if r.code < 200 || r.code > 599 {
		return r, false
	}
	rest := line[3:]
	if rest != "" && rest[0] != ' ' && rest[0] != '-' && rest[0] != '\r' {
		return r, false
	}
	if rest != "" {
		rest = trimSpace(rest[1:])
	}
	if enh, ok := parseEnhanced(rest); ok && enh[0] == r.code/100 {
		r.enh = enh
	}
	return r, true
}

// parseEnhanced parses the "class.subject.detail" at the start of s
// (RFC 3463 §2: class 2, 4 or 5; subject and detail of one to three digits).
func parseEnhanced(s string) ([3]int, bool) {
	var e [3]int
	i := 0
	for part := 0; part < 3; part++ {
		if part > 0 {
			if i >= len(s) || s[i] != '.' {
				return e, false
			}
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-start < 3 {
			e[part] = e[part]*10 + int(s[i]-'0')
			i++
		}
		if i == start {
			return e, false
		}
	}
	if i < len(s) && s[i] != ' ' && s[i] != '\r' && s[i] != '\t' {
		return e, false
	}
	if e[0] != 2 && e[0] != 4 && e[0] != 5 {
		return e, false
	}
	return e, true
}

// smtp classifies an SMTP reply.
//
// Order: a 334 SASL error challenge; 432 4.7.12; every other 4yz is
// recoverable (with the reason from the basic code and a few known server
// texts); for 5yz the enhanced status code, then the basic code. 5yz replies
// that are neither are unknown (recoverable), never guessed permanent.
func smtp(in Input) Verdict {
	r, ok := parseSMTP(in.Raw)
	if !ok {
		return unknown(in, "SMTP reply without a reply code.")
	}
	if r.code == 334 {
		if sasl := trimSpace(strings.TrimPrefix(firstLine(in.Raw)[3:], " ")); saslErrorChallenge(sasl) {
			return smtpXOAuth2.verdict()
		}
		return unknown(in, "SMTP 334 that is not a SASL error challenge.")
	}
	switch r.code / 100 {
	case 4:
		return smtpTransient(r)
	case 5:
		if v, ok := smtpEnhanced(in, r); ok {
			return v
		}
		if v, ok := smtpBasic(in, r); ok {
			return v
		}
		return unknown(in, "SMTP 5yz reply with no known enhanced or basic code.")
	}
	return unknown(in, "SMTP reply that is not an error (2yz or 3yz).")
}

func firstLine(s string) string {
	s = trimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return trimSpace(s)
}

// smtpTransient classifies a 4yz reply: always recoverable (RFC 5321 §4.2.1),
// except 432 4.7.12 (RFC 4954 §6, password transition).
func smtpTransient(r smtpReply) Verdict {
	switch {
	case r.enh == [3]int{4, 7, 12}:
		return smtpPasswordTransition.verdict()
	case r.code == 454 && indexFold(r.text, "Too many login attempts") >= 0:
		// Gmail reuses 454 4.7.0 for login-rate limiting.
		return smtpLoginRate.verdict()
	case r.code == 454:
		// RFC 4954 §6: temporary authentication failure; do not prompt
		// for another password.
		return smtpTempAuth.verdict()
	case r.code == 421 && indexFold(r.text, "concurrent connections") >= 0:
		// Office 365 "421 4.3.2 … maximum number of concurrent
		// connections".
		return smtpConnectionLimit.verdict()
	case r.code == 432:
		// Office 365 "432 4.3.2 STOREDRV.ClientSubmit; sender thread
		// limit exceeded".
		return smtpSubmitThrottled.verdict()
	case r.code == 451:
		// RFC 5321: local error in processing.
		return smtpLocalError.verdict()
	case r.enh[1] == 4:
		// RFC 3463 X.4.X: network and routing status.
		return smtpNetwork.verdict()
	}
	// 421 service not available, 450 mailbox unavailable, 452
	// insufficient storage, and any other 4yz.
	return smtpUnavailable.verdict()
}

// smtpEnhanced maps a 5yz reply's enhanced status code. Source: RFC 3463,
// RFC 4954 §6, and the Gmail and Office 365 codes of §8.
func smtpEnhanced(in Input, r smtpReply) (Verdict, bool) {
	switch r.enh {
	case [3]int{5, 7, 8}, [3]int{5, 7, 3}:
		// 535 5.7.8 credentials invalid (RFC 4954; Gmail BadCredentials,
		// also after a rejected XOAUTH2); 535 5.7.3 Exchange Online.
		return smtpBadCredentials.verdict(), true
	case [3]int{5, 7, 139}:
		return smtpAuthDisabled.verdict(), true
	case [3]int{5, 7, 9}:
		if in.Provider == "google" {
			return smtpAppPassword.verdict(), true
		}
		return smtpWeakMechanism.verdict(), true
	case [3]int{5, 7, 0}, [3]int{5, 7, 4}, [3]int{5, 7, 11}:
		if r.code == 535 {
			// Many servers answer bad credentials with 535 5.7.0.
			return smtpBadCredentials.verdict(), true
		}
		// 530 auth required, 504 5.7.4 unrecognised mechanism, 538
		// encryption required: holdfast's SMTP settings are wrong.
		return smtpAppConfig.verdict(), true
	case [3]int{5, 7, 1}:
		return smtpPolicyRefusal.verdict(), true
	case [3]int{5, 4, 5}:
		return smtpDailyLimit.verdict(), true
	case [3]int{5, 2, 3}, [3]int{5, 3, 4}:
		return smtpTooLarge.verdict(), true
	case [3]int{5, 2, 2}:
		return smtpMailboxFull.verdict(), true
	case [3]int{5, 2, 252}:
		return smtpSendAsDenied.verdict(), true
	case [3]int{5, 2, 0}:
		// Office 365 STOREDRV submission exceptions carry their name.
		switch {
		case indexOf(r.text, "SendAsDenied") >= 0:
			return smtpSendAsDeniedRandom.verdict(), true
		case indexOf(r.text, "SubmissionQuotaExceeded") >= 0:
			return smtpSubmissionQuota.verdict(), true
		}
	}
	if r.enh[0] == 5 && r.enh[1] == 1 {
		// RFC 3463 X.1.X: addressing status (bad mailbox, bad domain).
		if r.enh[2] == 1 {
			return smtpNoSuchUser.verdict(), true
		}
		return smtpBadAddress.verdict(), true
	}
	if r.enh[0] == 5 && r.enh[1] == 5 {
		// RFC 3463 X.5.X: mail delivery protocol status.
		return smtpProtocol.verdict(), true
	}
	return Verdict{}, false
}

// smtpBasic maps a 5yz basic reply code without a known enhanced code.
// Source: RFC 5321 §4.2.2 and RFC 4954 §6.
func smtpBasic(in Input, r smtpReply) (Verdict, bool) {
	switch r.code {
	case 535:
		return smtpBadCredentials.verdict(), true
	case 534:
		if in.Provider == "google" {
			return smtpAppPassword.verdict(), true
		}
		return smtpWeakMechanism.verdict(), true
	case 530, 538, 504:
		return smtpAppConfig.verdict(), true
	case 500, 501, 502, 503:
		return smtpProtocol.verdict(), true
	case 550, 553:
		return smtpBadAddress.verdict(), true
	case 552:
		return smtpTooLarge.verdict(), true
	}
	return Verdict{}, false
}

var (
	smtpXOAuth2 = rule{perm, holdfast.ReasonTokenRevoked, account, holdfast.ActionRefreshToken, false,
		"SMTP 334 SASL error challenge (XOAUTH2/OAUTHBEARER status 400/401): the access token was refused; send the empty response, refresh and retry once."}
	smtpPasswordTransition = rule{rec, holdfast.ReasonPasswordChanged, account, holdfast.ActionRetry, false,
		"SMTP 432 4.7.12 (RFC 4954): a password transition is needed; authenticate once with PLAIN over TLS if holdfast holds the password, otherwise the user must reconnect."}
	smtpLoginRate = rule{rec, holdfast.ReasonThrottled, account, holdfast.ActionRetry, false,
		"SMTP 454 4.7.0 Too many login attempts (Gmail): reuse one authenticated connection and back off."}
	smtpTempAuth = rule{rec, holdfast.ReasonProviderUnavailable, account, holdfast.ActionRetry, false,
		"SMTP 454 (RFC 4954): temporary authentication failure; retry, do not ask for another password."}
	smtpConnectionLimit = rule{rec, holdfast.ReasonThrottled, account, holdfast.ActionRetry, false,
		"SMTP 421 concurrent connection limit (Office 365): use fewer connections and retry later."}
	smtpSubmitThrottled = rule{rec, holdfast.ReasonThrottled, operation, holdfast.ActionRetry, false,
		"SMTP 432 4.3.2 (Office 365 STOREDRV sender thread limit): too many concurrent submissions for one sender; back off."}
	smtpLocalError = rule{rec, holdfast.ReasonServerBug, operation, holdfast.ActionRetry, false,
		"SMTP 451 (RFC 5321): local error in processing at the server; retry."}
	smtpNetwork = rule{rec, holdfast.ReasonNetwork, operation, holdfast.ActionRetry, false,
		"SMTP 4.4.X (RFC 3463): network or routing trouble at the server; retry."}
	smtpUnavailable = rule{rec, holdfast.ReasonProviderUnavailable, operation, holdfast.ActionRetry, false,
		"SMTP 4yz (RFC 5321): transient failure (service not available, mailbox busy, insufficient storage); retry."}
	smtpBadCredentials = rule{perm, holdfast.ReasonPasswordChanged, account, holdfast.ActionReconnect, true,
		"SMTP 535 (5.7.8/5.7.3): credentials refused; ambiguous and also seen during provider auth incidents, so confirm before disconnecting."}
	smtpAuthDisabled = rule{perm, holdfast.ReasonProtocolDisabled, account, holdfast.ActionContactAdmin, false,
		"SMTP 535 5.7.139 (Office 365): SMTP AUTH or basic authentication is disabled for the tenant or mailbox; the tenant admin must enable SMTP AUTH."}
	smtpAppPassword = rule{perm, holdfast.ReasonAppPasswordRequired, account, holdfast.ActionReconnect, false,
		"SMTP 534 5.7.9 (Gmail): an application-specific password is required."}
	smtpWeakMechanism = rule{perm, holdfast.ReasonAppMisconfigured, app, holdfast.ActionOperator, false,
		"SMTP 534 5.7.9 (RFC 4954): the authentication mechanism is too weak for this server; configure a stronger one."}
	smtpAppConfig = rule{perm, holdfast.ReasonAppMisconfigured, app, holdfast.ActionOperator, false,
		"SMTP 530/538/504 (5.7.0/5.7.11/5.7.4): authentication or encryption required, or mechanism not offered; holdfast's SMTP settings are wrong."}
	smtpPolicyRefusal = rule{perm, holdfast.ReasonUnknown, operation, holdfast.ActionSkipItem, false,
		"SMTP 5.7.1 (RFC 3463): delivery not authorised (relay, sender or spam policy); fails this message, not the account."}
	smtpDailyLimit = rule{rec, holdfast.ReasonQuotaExceeded, operation, holdfast.ActionRetry, false,
		"SMTP 550 5.4.5 (Gmail): daily sending limit exceeded; a 5yz that only means wait (up to 24 h)."}
	smtpTooLarge = rule{perm, holdfast.ReasonMessageTooLarge, operation, holdfast.ActionSkipItem, false,
		"SMTP 552 / 5.2.3 / 5.3.4: the message exceeds the size limit."}
	smtpMailboxFull = rule{perm, holdfast.ReasonQuotaExceeded, operation, holdfast.ActionSkipItem, false,
		"SMTP 5.2.2: mailbox full."}
	smtpSendAsDenied = rule{perm, holdfast.ReasonSendAsDenied, operation, holdfast.ActionSkipItem, false,
		"SMTP 554 5.2.252 SendAsDenied: the account may not send as the From address."}
	smtpSendAsDeniedRandom = rule{perm, holdfast.ReasonSendAsDenied, operation, holdfast.ActionSkipItem, true,
		"SMTP 554 5.2.0 SendAsDeniedException (Office 365): no Send As right, but also seen at random with a correct sender; retry once before failing the send."}
	smtpSubmissionQuota = rule{rec, holdfast.ReasonQuotaExceeded, operation, holdfast.ActionRetry, false,
		"SMTP 554 5.2.0 SubmissionQuotaExceededException (Office 365): sending quota used up; retry after 24 h."}
	smtpNoSuchUser = rule{perm, holdfast.ReasonRecipientRejected, operation, holdfast.ActionSkipItem, true,
		"SMTP 5.1.1: recipient does not exist; per recipient, and Gmail returned it for valid recipients during the December 2020 incident, so quarantine rather than suppress the address."}
	smtpBadAddress = rule{perm, holdfast.ReasonRecipientRejected, operation, holdfast.ActionSkipItem, false,
		"SMTP 550/553 or 5.1.X: an address was rejected; fails this message, not the account."}
	smtpProtocol = rule{perm, holdfast.ReasonInvalidRequest, app, holdfast.ActionOperator, false,
		"SMTP 500-503 or 5.5.X: protocol or syntax error in holdfast's SMTP client."}
)

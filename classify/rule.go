package classify

import (
	"github.com/holdfast/holdfast"
)

const (
	rec  = holdfast.ClassRecoverable
	perm = holdfast.ClassPermanent
)

// rule is the outcome of one classification rule. Rules are package-level
// values, so building a verdict from one copies constant strings and never
// allocates.
type rule struct {
	class  holdfast.Class
	reason holdfast.Reason
	scope  holdfast.Scope
	action holdfast.Action
	// outage marks errors seen during provider incidents although they look
	// permanent (classification.md §9).
	outage bool
	// op explains the verdict to an operator: which code it came from and
	// what it asks for.
	op string
}

// verdict turns the rule into a Verdict with the user message of its reason.
func (r rule) verdict() Verdict {
	return Verdict{
		Class:           r.class,
		Reason:          r.reason,
		Scope:           r.scope,
		Action:          r.action,
		OutageSensitive: r.outage,
		UserMessage:     userMessage(r.class, r.reason),
		OperatorMessage: r.op,
	}
}

// unknown is the verdict for a shape no rule knows: recoverable, so that an
// unfamiliar error is never grounds for destructive action, and counted in
// UnknownTotal so that operators see new shapes appear.
func unknown(in Input, op string) Verdict {
	countUnknown(in.Provider, in.Surface)
	scope := holdfast.ScopeOperation
	if in.Surface == SurfaceToken || in.Surface == SurfaceGoogleToken {
		// A token endpoint answers for the whole account.
		scope = holdfast.ScopeAccount
	}
	return Verdict{
		Class:           rec,
		Reason:          holdfast.ReasonUnknown,
		Scope:           scope,
		Action:          holdfast.ActionRetry,
		UserMessage:     userMessage(rec, holdfast.ReasonUnknown),
		OperatorMessage: op,
	}
}

// userMessage returns one sentence for the inbox's owner. It never carries
// anything from the provider's response, so it cannot leak a secret.
func userMessage(c holdfast.Class, r holdfast.Reason) string {
	switch r {
	case holdfast.ReasonPasswordChanged:
		return "Your password or sign-in details changed; please reconnect this inbox."
	case holdfast.ReasonPasswordExpired:
		return "Your password has expired; change it with your provider, then reconnect this inbox."
	case holdfast.ReasonTokenRevoked:
		return "Access to this inbox was revoked; please reconnect it."
	case holdfast.ReasonTokenExpired:
		if c == rec {
			return "holdfast is renewing its access to this inbox; nothing to do."
		}
		return "Access to this inbox expired; please reconnect it."
	case holdfast.ReasonConsentRequired:
		return "holdfast needs your permission to this mailbox again; reconnect it, or ask your administrator to approve the app."
	case holdfast.ReasonInteractionRequired:
		return "Your provider needs you to sign in again; please reconnect this inbox."
	case holdfast.ReasonMFARequired:
		return "Your provider requires multi-factor authentication; reconnect this inbox and complete the prompt."
	case holdfast.ReasonConditionalAccess:
		return "Your organisation's sign-in policy blocked access; reconnect this inbox, and if that fails contact your administrator."
	case holdfast.ReasonAccountDisabled:
		return "Your account is disabled at your provider; please contact your administrator."
	case holdfast.ReasonAccountLocked:
		return "Your account is locked at your provider; please contact your administrator."
	case holdfast.ReasonAccountNotFound:
		return "Your provider does not find this account; check that it exists and reconnect with the right account."
	case holdfast.ReasonMailboxNotEnabled:
		return "This account has no mailbox holdfast can reach (for example no mail licence); please contact your administrator."
	case holdfast.ReasonInsufficientScope:
		return "holdfast lacks permission for this mailbox; reconnect it and grant every permission asked for."
	case holdfast.ReasonAdminPolicy:
		return "Your organisation's administrator has blocked this app or action; please contact your administrator."
	case holdfast.ReasonProtocolDisabled:
		return "The mail protocol holdfast uses is turned off for your account; ask your administrator to enable it."
	case holdfast.ReasonAppPasswordRequired:
		return "Your provider requires an app password for this inbox; create one and reconnect."
	case holdfast.ReasonAppMisconfigured:
		return "holdfast's own configuration needs fixing; the operator has been told and you need do nothing."
	case holdfast.ReasonInvalidRequest:
		return "holdfast sent a request your provider rejected; the operator has been told."
	case holdfast.ReasonThrottled:
		return "Your provider asked holdfast to slow down; it will retry shortly."
	case holdfast.ReasonProviderUnavailable:
		return "Your provider is temporarily unavailable; holdfast will retry."
	case holdfast.ReasonProviderTimeout:
		return "Your provider did not answer in time; holdfast will retry."
	case holdfast.ReasonNetwork:
		return "holdfast could not reach your provider; it will retry."
	case holdfast.ReasonServerBug:
		if c == perm {
			return "Your provider reported an error it cannot recover from for one folder or message; holdfast skips it."
		}
		return "Your provider hit an internal error; holdfast will retry."
	case holdfast.ReasonQuotaExceeded:
		if c == perm {
			return "Your mailbox is full; free some space so holdfast can store mail again."
		}
		return "A usage limit at your provider was reached; holdfast will wait and retry."
	case holdfast.ReasonMessageTooLarge:
		return "A message is larger than your provider allows, so it could not be sent or stored."
	case holdfast.ReasonRecipientRejected:
		return "Your provider rejected a recipient address; please check it."
	case holdfast.ReasonSendAsDenied:
		return "Your account may not send as this address; ask your administrator for Send As rights."
	case holdfast.ReasonSyncResetRequired:
		return "holdfast is resynchronising this inbox; nothing to do."
	case holdfast.ReasonItemNotFound:
		return "A message or folder was gone when holdfast reached it, so it was skipped."
	}
	if c == perm {
		return "Your provider refused access without saying why; holdfast is checking before asking you to act."
	}
	return "Your provider returned an unexpected error; holdfast will retry."
}

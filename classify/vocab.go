package classify

import (
	"github.com/holdfast/holdfast"
)

// Reasons lists the reason vocabulary, in the order of provider_error.go.
var Reasons = []holdfast.Reason{
	holdfast.ReasonPasswordChanged, holdfast.ReasonPasswordExpired, holdfast.ReasonTokenRevoked,
	holdfast.ReasonTokenExpired, holdfast.ReasonConsentRequired, holdfast.ReasonInteractionRequired,
	holdfast.ReasonMFARequired, holdfast.ReasonConditionalAccess, holdfast.ReasonAccountDisabled,
	holdfast.ReasonAccountLocked, holdfast.ReasonAccountNotFound, holdfast.ReasonMailboxNotEnabled,
	holdfast.ReasonInsufficientScope, holdfast.ReasonAdminPolicy, holdfast.ReasonProtocolDisabled,
	holdfast.ReasonAppPasswordRequired, holdfast.ReasonAppMisconfigured, holdfast.ReasonInvalidRequest,
	holdfast.ReasonThrottled, holdfast.ReasonProviderUnavailable, holdfast.ReasonProviderTimeout,
	holdfast.ReasonNetwork, holdfast.ReasonServerBug, holdfast.ReasonQuotaExceeded,
	holdfast.ReasonMessageTooLarge, holdfast.ReasonRecipientRejected, holdfast.ReasonSendAsDenied,
	holdfast.ReasonSyncResetRequired, holdfast.ReasonItemNotFound, holdfast.ReasonUnknown,
}

// ValidClass reports whether c is one of the error classes.
func ValidClass(c holdfast.Class) bool {
	return c == holdfast.ClassRecoverable || c == holdfast.ClassPermanent
}

// ValidReason reports whether r is in the reason vocabulary.
func ValidReason(r holdfast.Reason) bool {
	for _, v := range Reasons {
		if r == v {
			return true
		}
	}
	return false
}

// ValidScope reports whether s is one of the scopes.
func ValidScope(s holdfast.Scope) bool {
	switch s {
	case holdfast.ScopeAccount, holdfast.ScopeApp, holdfast.ScopeOperation, holdfast.ScopeItem:
		return true
	}
	return false
}

// ValidAction reports whether a is one of the actions.
func ValidAction(a holdfast.Action) bool {
	switch a {
	case holdfast.ActionRetry, holdfast.ActionRetryAfter, holdfast.ActionRefreshToken,
		holdfast.ActionResync, holdfast.ActionSkipItem, holdfast.ActionReconnect,
		holdfast.ActionAdminConsent, holdfast.ActionContactAdmin, holdfast.ActionOperator:
		return true
	}
	return false
}

// ProviderError returns the verdict as a *holdfast.ProviderError wrapping
// err, for connectors to return.
func (v Verdict) ProviderError(err error) *holdfast.ProviderError {
	return &holdfast.ProviderError{
		Class:           v.Class,
		Reason:          v.Reason,
		Scope:           v.Scope,
		Action:          v.Action,
		RetryAfter:      v.RetryAfter,
		OutageSensitive: v.OutageSensitive,
		UserMessage:     v.UserMessage,
		Err:             err,
	}
}

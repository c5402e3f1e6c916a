package holdfast

import (
	"errors"
	"time"
)

// Class says whether a provider error can go away by itself.
type Class string

// The error classes.
const (
	// ClassRecoverable: retrying later can succeed without anyone acting.
	ClassRecoverable Class = "recoverable"
	// ClassPermanent: retrying the same request with the same credentials
	// will keep failing until someone acts. During provider incidents such
	// errors also appear for healthy inboxes, so the health engine confirms
	// them before it acts.
	ClassPermanent Class = "permanent"
)

// Reason is the machine-readable cause of a provider error. The vocabulary
// is documented in docs/classification.md.
type Reason string

// The reason vocabulary.
const (
	ReasonPasswordChanged     Reason = "password_changed"
	ReasonPasswordExpired     Reason = "password_expired"
	ReasonTokenRevoked        Reason = "token_revoked"
	ReasonTokenExpired        Reason = "token_expired"
	ReasonConsentRequired     Reason = "consent_required"
	ReasonInteractionRequired Reason = "interaction_required"
	ReasonMFARequired         Reason = "mfa_required"
	ReasonConditionalAccess   Reason = "conditional_access"
	ReasonAccountDisabled     Reason = "account_disabled"
	ReasonAccountLocked       Reason = "account_locked"
	ReasonAccountNotFound     Reason = "account_not_found"
	ReasonMailboxNotEnabled   Reason = "mailbox_not_enabled"
	ReasonInsufficientScope   Reason = "insufficient_scope"
	ReasonAdminPolicy         Reason = "admin_policy"
	ReasonProtocolDisabled    Reason = "protocol_disabled"
	ReasonAppPasswordRequired Reason = "app_password_required"
	ReasonAppMisconfigured    Reason = "app_misconfigured"
	ReasonInvalidRequest      Reason = "invalid_request"
	ReasonThrottled           Reason = "throttled"
	ReasonProviderUnavailable Reason = "provider_unavailable"
	ReasonProviderTimeout     Reason = "provider_timeout"
	ReasonNetwork             Reason = "network"
	ReasonServerBug           Reason = "server_bug"
	ReasonQuotaExceeded       Reason = "quota_exceeded"
	ReasonMessageTooLarge     Reason = "message_too_large"
	ReasonRecipientRejected   Reason = "recipient_rejected"
	ReasonSendAsDenied        Reason = "send_as_denied"
	ReasonSyncResetRequired   Reason = "sync_reset_required"
	ReasonItemNotFound        Reason = "item_not_found"
	ReasonUnknown             Reason = "unknown"
)

// Scope says how much an error covers.
type Scope string

// The error scopes.
const (
	ScopeAccount   Scope = "account"   // the whole inbox
	ScopeApp       Scope = "app"       // holdfast's own registration or configuration
	ScopeOperation Scope = "operation" // this kind of request only
	ScopeItem      Scope = "item"      // one message or folder
)

// Action is what an error asks holdfast (or a person) to do next.
type Action string

// The actions a verdict can ask for.
const (
	ActionRetry        Action = "retry"
	ActionRetryAfter   Action = "retry_after"
	ActionRefreshToken Action = "refresh_token"
	ActionResync       Action = "resync"
	ActionSkipItem     Action = "skip_item"
	ActionReconnect    Action = "reconnect"
	ActionAdminConsent Action = "admin_consent"
	ActionContactAdmin Action = "contact_admin"
	ActionOperator     Action = "operator"
)

// ProviderError is an error from a provider with its classification. The
// connectors return it; the health engine decides on it.
type ProviderError struct {
	Class           Class
	Reason          Reason
	Scope           Scope
	Action          Action
	RetryAfter      time.Duration
	OutageSensitive bool
	// UserMessage is safe to show the inbox's owner; it holds no secret.
	UserMessage string
	// Err is the underlying error, for operators' logs.
	Err error
}

// Error implements error.
func (e *ProviderError) Error() string {
	msg := string(e.Class) + " provider error (" + string(e.Reason) + ")"
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *ProviderError) Unwrap() error { return e.Err }

// ClassOf returns the class of err: the class of the *ProviderError in its
// chain, or ClassRecoverable when there is none (an unclassified error is
// never grounds for destructive action).
func ClassOf(err error) Class {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ClassRecoverable
}

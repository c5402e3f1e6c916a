package classify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/holdfast/holdfast"
)

// classifyTransport classifies a request that got no response. Source:
// classification.md §2: connection resets, TLS handshake failures and
// timeouts are recoverable whatever else is known. The error's type decides
// the reason, never its text.
func classifyTransport(in Input) Verdict {
	err := in.Err
	if pe, ok := errors.AsType[*holdfast.ProviderError](err); ok {
		// Already classified by a connector: keep its verdict.
		return fromProviderError(pe)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return trCanceled.verdict()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT):
		return trTimeout.verdict()
	}
	if dns, ok := errors.AsType[*net.DNSError](err); ok {
		if dns.IsTimeout {
			return trTimeout.verdict()
		}
		return trDNS.verdict()
	}
	if isTLSError(err) {
		return trTLS.verdict()
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTDOWN),
		errors.Is(err, syscall.ENETDOWN):
		return trUnreachable.verdict()
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return trReset.verdict()
	}
	if ne, ok := errors.AsType[net.Error](err); ok {
		if ne.Timeout() {
			return trTimeout.verdict()
		}
		return trNet.verdict()
	}
	return unknown(in, "Transport error of a type the classifier does not know; recoverable.")
}

// isTLSError reports whether err is a TLS handshake or certificate failure.
func isTLSError(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*tls.ECHRejectionError](err); ok {
		return true
	}
	return false
}

// fromProviderError returns the verdict already carried by a
// *holdfast.ProviderError, with values outside the vocabulary replaced by
// the safe ones.
func fromProviderError(pe *holdfast.ProviderError) Verdict {
	v := Verdict{
		Class:           pe.Class,
		Reason:          pe.Reason,
		Scope:           pe.Scope,
		Action:          pe.Action,
		RetryAfter:      min(max(pe.RetryAfter, 0), MaxRetryAfter),
		OutageSensitive: pe.OutageSensitive,
		UserMessage:     userMessage(pe.Class, pe.Reason),
		OperatorMessage: "Error already classified by the connector.",
	}
	if !ValidClass(v.Class) {
		v.Class = rec
	}
	if !ValidReason(v.Reason) {
		v.Reason = holdfast.ReasonUnknown
	}
	if !ValidScope(v.Scope) {
		v.Scope = operation
	}
	if !ValidAction(v.Action) {
		v.Action = holdfast.ActionRetry
	}
	v.UserMessage = userMessage(v.Class, v.Reason)
	return v
}

var (
	trCanceled = rule{rec, holdfast.ReasonNetwork, operation, holdfast.ActionRetry, false,
		"Request canceled by holdfast itself (shutdown or caller), not a provider failure."}
	trTimeout = rule{rec, holdfast.ReasonProviderTimeout, operation, holdfast.ActionRetry, false,
		"Transport timeout (deadline exceeded, i/o or DNS timeout): retry with backoff and jitter."}
	trDNS = rule{rec, holdfast.ReasonNetwork, account, holdfast.ActionRetry, false,
		"DNS lookup failed: check the server name and resolver; retry with backoff."}
	trTLS = rule{rec, holdfast.ReasonNetwork, account, holdfast.ActionRetry, false,
		"TLS handshake or certificate verification failed: retry with backoff, and check the server name, certificate and any intercepting proxy if it persists."}
	trUnreachable = rule{rec, holdfast.ReasonNetwork, account, holdfast.ActionRetry, false,
		"Connection refused or host unreachable: the server is down or unreachable from here; retry with backoff."}
	trReset = rule{rec, holdfast.ReasonNetwork, operation, holdfast.ActionRetry, false,
		"Connection reset or closed mid-request: retry with backoff."}
	trNet = rule{rec, holdfast.ReasonNetwork, operation, holdfast.ActionRetry, false,
		"Network error: retry with backoff."}
)

package classify_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

// fuzzErrors are the transport errors the fuzzer picks from by index.
var fuzzErrors = []error{
	nil,
	context.DeadlineExceeded,
	&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
	&net.DNSError{Err: "no such host", Name: "imap.example.com", IsNotFound: true},
	fmt.Errorf("read: %w", syscall.ECONNRESET),
	x509.UnknownAuthorityError{},
	io.EOF,
	errors.New("something else"),
}

// FuzzClassify checks that Classify never panics, is deterministic, and
// stays within the vocabulary, for any input. The seed corpus is the vector
// file (as f.Add seeds) plus testdata/fuzz/FuzzClassify.
func FuzzClassify(f *testing.F) {
	for _, v := range loadVectors(f) {
		in := v.input()
		f.Add(in.Provider, string(in.Surface), in.HTTPStatus, in.Raw, in.Operation, "", 0)
	}
	f.Add("microsoft", "graph", 429, `{"error":{"code":"TooManyRequests"}}`, "", "2.128", 0)
	f.Add("google", "gmail", 503, "", "", "Wed, 21 Oct 2015 07:28:00 GMT", 0)
	f.Add("generic", "imap", 0, "", "", "", 2)
	f.Fuzz(func(t *testing.T, provider, surface string, status int, raw, operation, retryAfter string, errKind int) {
		in := classify.Input{
			Provider:   provider,
			Surface:    classify.Surface(surface),
			HTTPStatus: status,
			Raw:        raw,
			Operation:  operation,
			Now:        testNow,
		}
		if retryAfter != "" {
			in.Header = http.Header{"Retry-After": {retryAfter}}
		}
		if errKind < 0 {
			errKind = -errKind
		}
		in.Err = fuzzErrors[errKind%len(fuzzErrors)]

		got := classify.Classify(in)
		again := classify.Classify(in)
		if diff := cmp.Diff(got, again); diff != "" {
			t.Fatalf("Classify(%+v) not deterministic (-first +second):\n%s", in, diff)
		}
		checkVerdict(t, in, got)
	})
}

// checkVerdict checks the invariants every verdict keeps.
func checkVerdict(t *testing.T, in classify.Input, v classify.Verdict) {
	t.Helper()
	if !classify.ValidClass(v.Class) || !classify.ValidReason(v.Reason) ||
		!classify.ValidScope(v.Scope) || !classify.ValidAction(v.Action) {
		t.Fatalf("Classify(%+v) = %+v, outside the vocabulary", in, v)
	}
	if v.UserMessage == "" || v.OperatorMessage == "" {
		t.Fatalf("Classify(%+v) = %+v, want both messages", in, v)
	}
	if v.RetryAfter < 0 || v.RetryAfter > classify.MaxRetryAfter {
		t.Fatalf("Classify(%+v).RetryAfter = %v, want within [0, %v]", in, v.RetryAfter, classify.MaxRetryAfter)
	}
	if (v.Action == holdfast.ActionRetryAfter) != (v.RetryAfter > 0) {
		t.Fatalf("Classify(%+v) = %+v: action retry_after must go with a wait", in, v)
	}
	if v.RetryAfter > 0 && v.Class != holdfast.ClassRecoverable {
		t.Fatalf("Classify(%+v) = %+v: only recoverable verdicts wait", in, v)
	}
	if _, classified := errors.AsType[*holdfast.ProviderError](in.Err); in.Err != nil && !classified &&
		v.Class != holdfast.ClassRecoverable {
		t.Fatalf("Classify(%+v) = %+v, want recoverable for a transport error", in, v)
	}
	httpSurface := in.Surface == classify.SurfaceToken || in.Surface == classify.SurfaceGraph ||
		in.Surface == classify.SurfaceGoogleToken || in.Surface == classify.SurfaceGmail
	if httpSurface && (in.HTTPStatus == 429 || in.HTTPStatus >= 500 && in.HTTPStatus <= 599) &&
		v.Class != holdfast.ClassRecoverable {
		t.Fatalf("Classify(%+v) = %+v, want recoverable for HTTP %d", in, v, in.HTTPStatus)
	}
}

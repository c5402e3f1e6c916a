package classify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast/classify"
)

// streamOut is one output line of Stream, decoded loosely so that a missing
// or extra field shows up in the diff.
type streamOut map[string]any

func runStream(t *testing.T, input string) []streamOut {
	t.Helper()
	var out bytes.Buffer
	if err := classify.Stream(context.Background(), strings.NewReader(input), &out); err != nil {
		t.Fatalf("Stream() = %v, want nil", err)
	}
	var lines []streamOut
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m streamOut
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("output line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func verdictLine(class, reason, scope, action string, retryAfter float64, outage bool) streamOut {
	return streamOut{"class": class, "reason": reason, "scope": scope, "action": action,
		"retry_after_s": retryAfter, "outage_sensitive": outage}
}

func TestStream(t *testing.T) {
	t.Parallel()
	input := strings.Join([]string{
		`{"provider":"microsoft","surface":"graph","http_status":429,"raw":"{\"error\":{\"code\":\"ApplicationThrottled\"}}","retry_after":"2.5"}`,
		``,
		`not json`,
		`   `,
		`{"provider":"generic","surface":"smtp","http_status":null,"raw":"535 5.7.8  Authentication credentials invalid"}`,
		`{"provider":"yahoo","surface":"imap","raw":"a NO x"}`,
		`{"provider":"generic","surface":"pop3","raw":"-ERR"}`,
		`{"provider":"generic","surface":"imap"}`,
		`{"surface":"imap","raw":""}`,
		`{"provider":"google","surface":"gmail","http_status":"404","raw":""}`,
		`{"provider":"google","surface":"gmail","http_status":42,"raw":""}`,
		`{"provider":"google","surface":"gmail","http_status":404,"raw":"{\"error\":{\"errors\":[{\"reason\":\"notFound\"}]}}","operation":"history.list"}{}`,
		`{"provider":"google","surface":"gmail","http_status":404,"raw":"{\"error\":{\"errors\":[{\"reason\":\"notFound\"}]}}","operation":"history.list"}` + "\r",
		`{"provider":"generic","surface":"imap","raw":"* BYE Autologout; idle for too long"}`,
	}, "\n")
	got := runStream(t, input)
	want := []streamOut{
		verdictLine("recoverable", "throttled", "operation", "retry_after", 2.5, false),
		{"error": "line 3: invalid JSON: invalid character 'o' in literal null (expecting 'u')"},
		verdictLine("permanent", "password_changed", "account", "reconnect", 0, true),
		{"error": `line 6: unknown provider "yahoo" (want microsoft, google or generic)`},
		{"error": `line 7: unknown surface "pop3" (want token, graph, google_token, gmail, imap or smtp)`},
		{"error": `line 8: missing "raw"`},
		{"error": `line 9: missing "provider"`},
		{"error": "line 10: invalid JSON: json: cannot unmarshal string into Go struct field streamInput.http_status of type int"},
		{"error": `line 11: "http_status" 42 is not an HTTP status`},
		{"error": "line 12: invalid JSON: data after the object"},
		verdictLine("recoverable", "sync_reset_required", "operation", "resync", 0, false),
		verdictLine("recoverable", "network", "account", "retry", 0, false),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stream() output mismatch (-want +got):\n%s", diff)
	}
}

// TestStreamVectors feeds the vector file as it is and checks that every
// line gets its verdict, in order.
func TestStreamVectors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/vectors.jsonl")
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	got := runStream(t, string(raw))
	vs := loadVectors(t)
	if len(got) != len(vs) {
		t.Fatalf("Stream(vectors) wrote %d lines, want %d", len(got), len(vs))
	}
	for i, v := range vs {
		if got[i]["class"] != string(v.Class) || got[i]["reason"] != string(v.Reason) || got[i]["scope"] != string(v.Scope) {
			t.Errorf("Stream(vectors) line %d (%s) = %v, want class %s reason %s scope %s",
				i+1, v.ID, got[i], v.Class, v.Reason, v.Scope)
		}
	}
}

// TestStreamLongLines checks bodies far larger than the reader's buffer,
// a line over the limit, and a last line without a newline.
func TestStreamLongLines(t *testing.T) {
	t.Parallel()
	long := `{"provider":"microsoft","surface":"graph","http_status":404,"raw":"{\"error\":{\"code\":\"ErrorItemNotFound\",\"message\":\"` +
		strings.Repeat("x", 300<<10) + `\"}}"}`
	tooLong := `{"raw":"` + strings.Repeat("y", classify.MaxLineBytes) + `"}`
	last := `{"provider":"generic","surface":"smtp","raw":"421 4.3.2 Service not available"}`
	got := runStream(t, long+"\n"+tooLong+"\n"+last)
	want := []streamOut{
		verdictLine("recoverable", "item_not_found", "item", "skip_item", 0, false),
		{"error": "line 2: longer than 16777216 bytes"},
		verdictLine("recoverable", "provider_unavailable", "operation", "retry", 0, false),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stream() output mismatch (-want +got):\n%s", diff)
	}
}

func TestStreamCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	err := classify.Stream(ctx, strings.NewReader(`{"provider":"generic","surface":"imap","raw":"a NO x"}`), &out)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Stream(canceled) = %v, want context.Canceled", err)
	}
}

// failingWriter fails every write.
type failingWriter struct{}

var errWrite = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestStreamWriteError(t *testing.T) {
	t.Parallel()
	in := strings.Repeat(`{"provider":"generic","surface":"imap","raw":"a NO x"}`+"\n", 1000)
	err := classify.Stream(context.Background(), strings.NewReader(in), failingWriter{})
	if !errors.Is(err, errWrite) {
		t.Errorf("Stream(failing writer) = %v, want %v", err, errWrite)
	}
}

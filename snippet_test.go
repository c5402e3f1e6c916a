package holdfast_test

import (
	"strings"
	"testing"

	"github.com/holdfast/holdfast"
)

func TestSnippet(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", holdfast.MaxSnippet+10)
	for _, tc := range []struct {
		name, text, want string
	}{
		{"whitespace collapsed", "  Hello \r\n\tthere,\n\nBob  ", "Hello there, Bob"},
		{"empty", " \n ", ""},
		{"cut to MaxSnippet characters", long, long[:2*holdfast.MaxSnippet]},
		{"no trailing space at the cut", strings.Repeat("a", holdfast.MaxSnippet-1) + " b", strings.Repeat("a", holdfast.MaxSnippet-1)},
	} {
		if got := holdfast.Snippet(tc.text); got != tc.want {
			t.Errorf("%s: Snippet(%q) = %q, want %q", tc.name, tc.text, got, tc.want)
		}
	}
}

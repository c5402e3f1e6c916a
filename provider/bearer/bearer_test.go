package bearer_test

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/provider/bearer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, want string
		wantErr         bool
	}{
		{name: "empty means the default", raw: "", want: "https://api.example.test"},
		{name: "suffix dropped", raw: "https://api.example.test/v1/", want: "https://api.example.test"},
		{name: "http allowed", raw: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{name: "not http", raw: "ftp://api.example.test", wantErr: true},
		{name: "no host", raw: "https://", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := bearer.BaseURL("api", tc.raw, "https://api.example.test", "/v1")
			if tc.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), "api config: BaseURL ") {
					t.Errorf("BaseURL(%q) error = %v, want an api config error", tc.raw, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("BaseURL(%q) = %q, %v, want %q", tc.raw, got, err, tc.want)
			}
		})
	}
}

func TestConfigNeedsTokens(t *testing.T) {
	t.Parallel()
	_, err := bearer.New(bearer.Config{Name: "api"})
	if err == nil || err.Error() != "api config: Tokens is nil" {
		t.Errorf("New without Tokens: error = %v, want api config: Tokens is nil", err)
	}
}

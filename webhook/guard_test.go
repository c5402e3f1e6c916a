package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/webhook"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url string
		// wantErr is a substring of the error; empty means accepted.
		wantErr string
		refused bool
	}{
		{"PublicIPv4", "https://93.184.215.14/hooks", "", false},
		{"PublicIPv6", "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hooks", "", false},
		{"Loopback", "http://127.0.0.1:8080/hooks", "loopback", true},
		{"LoopbackOther", "http://127.1.2.3/", "loopback", true},
		{"Private10", "http://10.1.2.3/", "private", true},
		{"Private172", "http://172.16.0.9/", "private", true},
		{"Private192", "http://192.168.1.20/", "private", true},
		{"Metadata", "http://169.254.169.254/latest/meta-data/", "link-local", true},
		{"IPv6Loopback", "http://[::1]:9000/", "loopback", true},
		{"IPv6ULA", "http://[fd00::1]/", "private", true},
		{"IPv6LinkLocal", "http://[fe80::1]/", "link-local", true},
		{"IPv4MappedLoopback", "http://[::ffff:127.0.0.1]/", "loopback", true},
		{"CGNAT", "http://100.64.0.1/", "carrier-grade NAT", true},
		{"Unspecified", "http://0.0.0.0/", "unspecified", true},
		{"Multicast", "http://224.0.0.1/", "multicast", true},
		{"Localhost", "http://localhost:8080/hooks", "resolves to", true},
		{"NotHTTP", "ftp://example.com/", "http or https", false},
		{"Relative", "/hooks", "http or https", false},
		{"NoHost", "https:///hooks", "host", false},
		{"UserInfo", "https://user:pass@93.184.215.14/", "user name", false},
		{"Fragment", "https://93.184.215.14/#x", "fragment", false},
	}
	g := &webhook.Guard{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := g.CheckURL(t.Context(), tt.url)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckURL(%q) = %v; want accepted", tt.url, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckURL(%q) = %v; want an error saying %q", tt.url, err, tt.wantErr)
			case err != nil && errors.Is(err, webhook.ErrRefusedAddress) != tt.refused:
				t.Errorf("CheckURL(%q) = %v; errors.Is(ErrRefusedAddress) = %v, want %v", tt.url, err, !tt.refused, tt.refused)
			}
		})
	}
	t.Run("AllowPrivate", func(t *testing.T) {
		t.Parallel()
		g := &webhook.Guard{AllowPrivate: true}
		for _, u := range []string{"http://127.0.0.1:8080/", "http://localhost/", "http://[::1]/", "http://169.254.169.254/"} {
			if _, err := g.CheckURL(t.Context(), u); err != nil {
				t.Errorf("CheckURL(%q) with AllowPrivate = %v; want accepted", u, err)
			}
		}
		if _, err := g.CheckURL(t.Context(), "file:///etc/passwd"); err == nil {
			t.Errorf("CheckURL(file:) with AllowPrivate accepted; want refused")
		}
	})
}

// TestSendRefusesAtDialTime shows the guard at delivery: the URL names a
// host (as if its DNS answer had changed since it was checked) and the
// dialler refuses the loopback address it resolves to.
func TestSendRefusesAtDialTime(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	urls := []string{srv.URL, "http://localhost:" + port + "/hooks", "http://[::ffff:127.0.0.1]:" + port + "/"}
	s := webhook.NewSender(&webhook.Guard{}, 2*time.Second)
	t.Cleanup(s.Close)
	for _, u := range urls {
		res := s.Send(t.Context(), u, []byte("whsec_x"), "evt_1", "send.sent", []byte(`{}`), time.Now())
		if res.OK() || !errors.Is(res.Err, webhook.ErrRefusedAddress) {
			t.Errorf("Send(%s) = %+v; want ErrRefusedAddress", u, res)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests; want none", n)
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	secret := []byte("whsec_test")
	big := strings.Repeat("x", 1<<20)
	mux := http.NewServeMux()
	var got *http.Request
	var body []byte
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		got = r
		body = make([]byte, r.ContentLength)
		_, _ = r.Body.Read(body)
		w.Write([]byte(big)) // more than is read
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s := webhook.NewSender(&webhook.Guard{AllowPrivate: true}, 500*time.Millisecond)
	t.Cleanup(s.Close)
	payload := []byte(`{"id":"evt_1"}`)
	now := time.Now()

	res := s.Send(t.Context(), srv.URL+"/ok", secret, "evt_1", "send.sent", payload, now)
	if !res.OK() || res.StatusCode != 200 {
		t.Fatalf("Send(/ok) = %+v; want 200", res)
	}
	if err := webhook.Verify(secret, got.Header.Get(webhook.SignatureHeader), body, 0, time.Now()); err != nil {
		t.Errorf("the received signature does not verify: %v", err)
	}
	for h, want := range map[string]string{webhook.EventIDHeader: "evt_1", webhook.EventTypeHeader: "send.sent", "Content-Type": "application/json"} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("header %s = %q; want %q", h, v, want)
		}
	}
	if res := s.Send(t.Context(), srv.URL+"/redirect", secret, "evt_1", "send.sent", payload, now); res.OK() || res.StatusCode != http.StatusFound {
		t.Errorf("Send(/redirect) = %+v; want the 302 itself, not followed", res)
	}
	if res := s.Send(t.Context(), srv.URL+"/gone", secret, "evt_1", "send.sent", payload, now); !res.Gone() {
		t.Errorf("Send(/gone) = %+v; want Gone", res)
	}
	start := time.Now()
	if res := s.Send(context.Background(), srv.URL+"/slow", secret, "evt_1", "send.sent", payload, now); res.Err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("Send(/slow) = %+v after %v; want a timeout after 500ms", res, time.Since(start))
	}
}

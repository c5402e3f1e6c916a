package xoauth2_test

import (
	"errors"
	"testing"

	"github.com/holdfast/holdfast/provider/xoauth2"
)

func TestClientServer(t *testing.T) {
	t.Parallel()
	c := xoauth2.NewClient("alice@example.test", "tok")
	mech, ir, err := c.Start()
	if err != nil || mech != "XOAUTH2" || string(ir) != "user=alice@example.test\x01auth=Bearer tok\x01\x01" {
		t.Fatalf("Start = %q, %q, %v", mech, ir, err)
	}
	refused := errors.New("refused")
	srv := xoauth2.NewServer(func(user, token string) error {
		if user == "alice@example.test" && token == "tok" {
			return nil
		}
		return refused
	})
	if _, done, err := srv.Next(ir); !done || err != nil {
		t.Errorf("good token: done=%v err=%v", done, err)
	}

	bad := xoauth2.NewClient("alice@example.test", "old")
	_, ir, _ = bad.Start()
	srv = xoauth2.NewServer(func(string, string) error { return refused })
	challenge, done, err := srv.Next(ir)
	if done || err != nil || len(challenge) == 0 {
		t.Fatalf("bad token: challenge=%q done=%v err=%v, want an error challenge", challenge, done, err)
	}
	resp, err := bad.Next(challenge)
	if err != nil || resp == nil || len(resp) != 0 {
		t.Errorf("Next(challenge) = %q, %v; want an empty non-nil response", resp, err)
	}
	if f := bad.Failure(); f == nil || f.Status != "401" {
		t.Errorf("Failure = %+v, want status 401", f)
	}
	if _, done, err := srv.Next(resp); !done || !errors.Is(err, refused) {
		t.Errorf("after the empty response: done=%v err=%v, want the refusal", done, err)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	u, tok, err := xoauth2.Decode(xoauth2.Encode("a@b", "t"))
	if err != nil || u != "a@b" || tok != "t" {
		t.Errorf("Decode(Encode) = %q, %q, %v", u, tok, err)
	}
	for _, bad := range []string{"", "user=a", "user=a\x01auth=Basic x\x01\x01", "auth=Bearer t\x01\x01"} {
		if _, _, err := xoauth2.Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) succeeded", bad)
		}
	}
}

func TestProviderForHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]string{
		"imap.gmail.com":        "google",
		"smtp.gmail.com.":       "google",
		"outlook.office365.com": "microsoft",
		"smtp.office365.com":    "microsoft",
		"imap-mail.outlook.com": "microsoft",
		"mail.example.com":      "generic",
		"gmail.com.evil.test":   "generic",
	} {
		if got := xoauth2.ProviderForHost(host); got != want {
			t.Errorf("ProviderForHost(%q) = %q, want %q", host, got, want)
		}
	}
}

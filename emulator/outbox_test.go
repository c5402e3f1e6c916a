package emulator_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/holdfast/holdfast/emulator"
)

// TestSentDelayAndAfterAcceptFault covers the asynchronous send: with
// Config.SentDelay a Graph send sits in the Outbox and a Gmail send is
// not found by a search until the delay has passed; and an AfterAccept
// fault answers 503 to a send the provider took.
func TestSentDelayAndAfterAcceptFault(t *testing.T) {
	t.Parallel()
	const id = "<snd_async@holdfast.test>"
	raw := "From: me@example.com\r\nTo: carl@example.com\r\nSubject: Report\r\nMessage-ID: " + id + "\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nThe report.\r\n"
	tests := []struct {
		name       string
		provider   emulator.Provider
		surface    emulator.Surface
		send       func(b *testBundle, at string) response
		wantStatus int
		// found returns how many copies a look in folder finds ("" for
		// Gmail's search).
		found   func(b *testBundle, at, folder string) int
		folders []string
	}{
		{
			name: "graph", provider: emulator.Microsoft, surface: emulator.SurfaceGraph,
			send: func(b *testBundle, at string) response {
				return b.post(t, b.u.Graph+"/v1.0/me/sendMail", at, "text/plain", []byte(base64.StdEncoding.EncodeToString([]byte(raw))))
			},
			wantStatus: http.StatusAccepted,
			found: func(b *testBundle, at, folder string) int {
				r := b.get(t, b.u.Graph+"/v1.0/me/mailFolders/"+folder+"/messages?$filter="+url.QueryEscape("internetMessageId eq '"+id+"'"), at)
				if r.status != http.StatusOK {
					t.Fatalf("list %s = %d %s", folder, r.status, r.body)
				}
				return len(r.json(t)["value"].([]any))
			},
			folders: []string{"outbox", "sentitems"},
		},
		{
			name: "gmail", provider: emulator.Google, surface: emulator.SurfaceGmail,
			send: func(b *testBundle, at string) response {
				return b.postJSON(t, b.u.Gmail+"/gmail/v1/users/me/messages/send", at, map[string]string{"raw": base64.RawURLEncoding.EncodeToString([]byte(raw))})
			},
			wantStatus: http.StatusOK,
			found: func(b *testBundle, at, _ string) int {
				r := b.get(t, b.u.Gmail+"/gmail/v1/users/me/messages?q="+url.QueryEscape("in:sent rfc822msgid:"+id), at)
				m, _ := r.json(t)["messages"].([]any)
				return len(m)
			},
			folders: []string{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Config{SentDelay: 30 * time.Second})
			_, at := b.account(t, tt.provider, "me@example.com", "")
			look := func(when string, want ...int) {
				t.Helper()
				for i, folder := range tt.folders {
					if got := tt.found(b, at, folder); got != want[i] {
						t.Errorf("%s: %q holds %d copies, want %d", when, folder, got, want[i])
					}
				}
			}
			if r := tt.send(b, at); r.status != tt.wantStatus {
				t.Fatalf("send = %d %s", r.status, r.body)
			}
			if tt.provider == emulator.Microsoft {
				look("just sent", 1, 0)
			} else {
				look("just sent", 0)
			}
			b.clock.Advance(30 * time.Second)
			if tt.provider == emulator.Microsoft {
				look("after the delay", 0, 1)
			} else {
				look("after the delay", 1)
			}

			// A fault after acceptance: the send is taken, the answer is
			// 503.
			if _, err := b.e.AddFault(emulator.Fault{Provider: tt.provider, Surfaces: []emulator.Surface{tt.surface}, AfterAccept: true}); err != nil {
				t.Fatal(err)
			}
			if r := tt.send(b, at); r.status != http.StatusServiceUnavailable {
				t.Errorf("send through an after-accept fault = %d %s, want 503", r.status, r.body)
			}
			sent, err := b.e.Sent("me@example.com")
			if err != nil || len(sent) != 2 {
				t.Errorf("Sent = %d records, %v; want 2: the faulted send was taken", len(sent), err)
			}
			b.clock.Advance(30 * time.Second)
			if tt.provider == emulator.Microsoft {
				look("after the faulted send", 0, 2)
			} else {
				look("after the faulted send", 2)
			}
		})
	}

	b := setup(t, emulator.Config{})
	if _, err := b.e.AddFault(emulator.Fault{Provider: emulator.Microsoft, Surfaces: []emulator.Surface{emulator.SurfaceToken}, AfterAccept: true}); err == nil {
		t.Error("AddFault of an after-accept fault on the token endpoint succeeded, want an error")
	}
}

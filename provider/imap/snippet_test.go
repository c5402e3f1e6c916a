package imap

import (
	"strings"
	"testing"
)

func TestSnippet(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word ", 100)
	for _, tc := range []struct {
		name, header, text, want string
	}{
		{"plain", "Content-Type: text/plain\r\n", "Hello\r\n  world.\r\n", "Hello world."},
		{"no header", "", "Just text.", "Just text."},
		{"quoted-printable", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
			"Gr=C3=BC=C3=9Fe, soft=\r\nbreak.", "Grüße, softbreak."},
		{"base64", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
			"SGVsbG8gZnJvbSBiYXNlNjQu", "Hello from base64."},
		{"latin-1", "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n",
			"Caf=E9 cr=E8me", "Café crème"},
		{"alternative prefers plain", "Content-Type: multipart/alternative; boundary=b1\r\n",
			"--b1\r\nContent-Type: text/html\r\n\r\n<p>HTML</p>\r\n--b1\r\nContent-Type: text/plain\r\n\r\nPlain.\r\n--b1--\r\n", "Plain."},
		{"nested mixed", "Content-Type: multipart/mixed; boundary=outer\r\n",
			"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nNested text.\r\n--inner--\r\n--outer\r\nContent-Type: application/pdf\r\n\r\nxx\r\n--outer--\r\n",
			"Nested text."},
		{"html only", "Content-Type: text/html\r\n",
			"<html><head><style>p{}</style></head><body><p>Hi &amp; welcome</p><script>x()</script> there</body></html>", "Hi & welcome there"},
		{"truncated multipart", "Content-Type: multipart/alternative; boundary=b1\r\n",
			"--b1\r\nContent-Type: text/plain\r\n\r\nCut in the mid", "Cut in the mid"},
		{"truncated base64", "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n",
			"SGVsbG8gZnJvbSBiYXNlNj", "Hello from base"},
		{"long", "Content-Type: text/plain\r\n", long, strings.TrimSpace(long[:200])},
		{"attachment only", "Content-Type: multipart/mixed; boundary=b\r\n",
			"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nfile\r\n--b--\r\n", ""},
	} {
		if got := snippet([]byte(tc.header), []byte(tc.text)); got != tc.want {
			t.Errorf("%s: snippet = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c := cursor{V: cursorVersion, Mailbox: "INBOX", UIDValidity: 7, UID: 42}
	got, err := parseCursor(c.String())
	if err != nil || got != c {
		t.Errorf("parseCursor(%s) = %+v, %v; want %+v", c, got, err, c)
	}
	if want := `{"v":1,"mailbox":"INBOX","uidvalidity":7,"uid":42}`; c.String() != want {
		t.Errorf("cursor = %s, want %s", c, want)
	}
	for _, bad := range []string{"{", `{"v":2,"mailbox":"INBOX"}`, `{"v":1}`} {
		if _, err := parseCursor(bad); err == nil {
			t.Errorf("parseCursor(%s) succeeded", bad)
		}
	}
}

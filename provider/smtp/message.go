package smtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message/mail"

	"github.com/holdfast/holdfast"
)

// BuildMessageBcc is BuildMessage with a Bcc header listing m.Bcc (when
// there are Bcc recipients), for the APIs that take the recipients from
// the header and drop Bcc from what they deliver (Graph's MIME sendMail,
// Gmail's messages.send).
func BuildMessageBcc(m *holdfast.OutgoingMessage) ([]byte, error) {
	raw, err := BuildMessage(m)
	if err != nil || len(m.Bcc) == 0 {
		return raw, err
	}
	list := make([]string, 0, len(m.Bcc))
	for _, b := range m.Bcc {
		a, err := mail.ParseAddress(b)
		if err != nil {
			return nil, fmt.Errorf("build message: Bcc %q: %w", b, err)
		}
		list = append(list, a.String())
	}
	out := make([]byte, 0, len(raw)+64)
	out = append(out, "Bcc: "+strings.Join(list, ", ")+"\r\n"...)
	return append(out, raw...), nil
}

// BuildMessage renders m as an RFC 5322 message: Date, Message-ID, From, To,
// Cc and Subject (encoded words where needed) and a text/plain body, a
// text/html body, or both as multipart/alternative. Bcc recipients appear
// only in the envelope (see Recipients), never in the header.
//
// The multipart boundary is random, so build a message once and use the same
// bytes for the submission and for the copy appended to the Sent folder.
func BuildMessage(m *holdfast.OutgoingMessage) ([]byte, error) {
	if m.MessageID == "" {
		return nil, errors.New("build message: no Message-ID")
	}
	if m.Date.IsZero() {
		return nil, errors.New("build message: no Date")
	}
	var h mail.Header
	h.SetDate(m.Date)
	h.SetMessageID(strings.TrimSuffix(strings.TrimPrefix(m.MessageID, "<"), ">"))
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return nil, fmt.Errorf("build message: From %q: %w", m.From, err)
	}
	h.SetAddressList("From", []*mail.Address{from})
	for _, f := range []struct {
		key   string
		addrs []string
	}{{"To", m.To}, {"Cc", m.Cc}} {
		list, err := parseAddresses(f.addrs)
		if err != nil {
			return nil, fmt.Errorf("build message: %s: %w", f.key, err)
		}
		if len(list) > 0 {
			h.SetAddressList(f.key, list)
		}
	}
	h.SetSubject(m.Subject)

	var buf bytes.Buffer
	switch {
	case m.Text != "" && m.HTML != "":
		w, err := mail.CreateInlineWriter(&buf, h)
		if err != nil {
			return nil, fmt.Errorf("build message: %w", err)
		}
		for _, p := range []struct{ ctype, body string }{
			{"text/plain", m.Text}, {"text/html", m.HTML},
		} {
			var ph mail.InlineHeader
			ph.SetContentType(p.ctype, map[string]string{"charset": "utf-8"})
			pw, err := w.CreatePart(ph)
			if err != nil {
				return nil, fmt.Errorf("build message: %w", err)
			}
			if err := writeClose(pw, p.body); err != nil {
				return nil, fmt.Errorf("build message: %w", err)
			}
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("build message: %w", err)
		}
	default:
		ctype, body := "text/plain", m.Text
		if m.Text == "" && m.HTML != "" {
			ctype, body = "text/html", m.HTML
		}
		h.SetContentType(ctype, map[string]string{"charset": "utf-8"})
		w, err := mail.CreateSingleInlineWriter(&buf, h)
		if err != nil {
			return nil, fmt.Errorf("build message: %w", err)
		}
		if err := writeClose(w, body); err != nil {
			return nil, fmt.Errorf("build message: %w", err)
		}
	}
	return buf.Bytes(), nil
}

func writeClose(w io.WriteCloser, s string) error {
	if _, err := io.WriteString(w, s); err != nil {
		return err
	}
	return w.Close()
}

func parseAddresses(in []string) ([]*mail.Address, error) {
	var out []*mail.Address
	for _, s := range in {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Envelope returns the SMTP envelope of m: the sender's bare address and
// every recipient (To, Cc and Bcc) once, in order.
func Envelope(m *holdfast.OutgoingMessage) (from string, rcpts []string, err error) {
	f, err := mail.ParseAddress(m.From)
	if err != nil {
		return "", nil, fmt.Errorf("envelope: From %q: %w", m.From, err)
	}
	seen := map[string]bool{}
	for _, list := range [][]string{m.To, m.Cc, m.Bcc} {
		addrs, err := parseAddresses(list)
		if err != nil {
			return "", nil, fmt.Errorf("envelope: %w", err)
		}
		for _, a := range addrs {
			k := strings.ToLower(a.Address)
			if !seen[k] {
				seen[k] = true
				rcpts = append(rcpts, a.Address)
			}
		}
	}
	if len(rcpts) == 0 {
		return "", nil, errors.New("envelope: no recipients")
	}
	return f.Address, rcpts, nil
}

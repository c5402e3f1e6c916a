package emulator

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// parsedMail is what the emulator reads from an RFC 5322 message.
type parsedMail struct {
	from, subject, text, messageID string
	to, cc, bcc                    []string
	html                           bool
}

// message returns a message to send, holding raw as its RFC 5322 form.
func (p *parsedMail) message(raw []byte) *message {
	return &message{from: p.from, to: p.to, cc: p.cc, bcc: p.bcc, subject: p.subject, text: p.text,
		html: p.html, messageID: p.messageID, raw: raw}
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	return r, nil // every charset is read as is; the emulator only compares text
}}

// parseRaw parses an RFC 5322 message: its addresses, subject, Message-ID
// and the text of its first text/plain part (else text/html).
func parseRaw(raw []byte) (*parsedMail, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	h := m.Header
	p := &parsedMail{messageID: strings.TrimSpace(h.Get("Message-ID"))}
	if !validMessageID(p.messageID) {
		p.messageID = ""
	}
	if s, err := wordDecoder.DecodeHeader(h.Get("Subject")); err == nil {
		p.subject = s
	} else {
		p.subject = h.Get("Subject")
	}
	list := func(name string) ([]string, error) {
		if h.Get(name) == "" {
			return nil, nil
		}
		as, err := h.AddressList(name)
		if err != nil {
			return nil, fmt.Errorf("%s header: %w", name, err)
		}
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = strings.ToLower(a.Address)
		}
		return out, nil
	}
	if p.to, err = list("To"); err != nil {
		return nil, err
	}
	if p.cc, err = list("Cc"); err != nil {
		return nil, err
	}
	if p.bcc, err = list("Bcc"); err != nil {
		return nil, err
	}
	if from, err := list("From"); err == nil && len(from) > 0 {
		p.from = from[0]
	}
	text, html, err := bodyText(textproto.MIMEHeader(h), m.Body, 0)
	if err != nil {
		return nil, err
	}
	p.text, p.html = text, html
	return p, nil
}

// bodyText returns the text of the first text/plain part of a body (else
// of the first text/html part) and whether it is HTML.
func bodyText(h textproto.MIMEHeader, body io.Reader, depth int) (string, bool, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth > 5 || params["boundary"] == "" {
			return "", false, errors.New("malformed multipart body")
		}
		mr := multipart.NewReader(body, params["boundary"])
		var htmlText string
		var haveHTML bool
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return "", false, err
			}
			text, isHTML, err := bodyText(part.Header, part, depth+1)
			if err != nil {
				return "", false, err
			}
			switch {
			case !isHTML && text != "":
				return text, false, nil
			case isHTML && !haveHTML:
				htmlText, haveHTML = text, true
			}
		}
		return htmlText, haveHTML, nil
	}
	if mt != "text/plain" && mt != "text/html" {
		return "", false, nil
	}
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, &stripSpace{r: bufio.NewReader(body)})
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", false, err
	}
	return string(b), mt == "text/html", nil
}

// stripSpace drops whitespace from a base64 stream.
type stripSpace struct{ r *bufio.Reader }

func (s *stripSpace) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := s.r.ReadByte()
		if err != nil {
			return n, err
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			p[n] = c
			n++
		}
	}
	return n, nil
}

// buildRaw writes msg as an RFC 5322 message.
func buildRaw(msg *message) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", msg.from)
	if len(msg.to) > 0 {
		fmt.Fprintf(&b, "To: %s\r\n", strings.Join(msg.to, ", "))
	}
	if len(msg.cc) > 0 {
		fmt.Fprintf(&b, "Cc: %s\r\n", strings.Join(msg.cc, ", "))
	}
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", msg.subject))
	fmt.Fprintf(&b, "Date: %s\r\n", msg.received.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: %s\r\n", msg.messageID)
	if msg.generated {
		fmt.Fprintf(&b, "%s: %s\r\n", HeaderArrived, msg.received.UTC().Format(time.RFC3339Nano))
	}
	ct := "text/plain"
	if msg.html {
		ct = "text/html"
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", ct)
	enc := base64.StdEncoding.EncodeToString([]byte(msg.text))
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes()
}

// header is one header field, in message order.
type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// headerList returns raw's header fields in order, unfolded, with encoded
// words decoded, as Gmail's payload.headers lists them.
func headerList(raw []byte) []header {
	var out []header
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = bytes.Index(raw, []byte("\n\n"))
	}
	if end < 0 {
		end = len(raw)
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(raw[:end]), "\r\n", "\n"), "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		out = append(out, header{Name: name, Value: strings.TrimSpace(value)})
	}
	for i := range out {
		if v, err := wordDecoder.DecodeHeader(out[i].Value); err == nil {
			out[i].Value = v
		}
	}
	return out
}

package imap

import (
	"bytes"
	"html"
	"io"
	"strings"

	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // charsets beyond UTF-8 and ASCII for snippets

	"github.com/holdfast/holdfast"
)

// snippetFetchBytes is how much of the body text Sync fetches per message
// to make its snippet.
const snippetFetchBytes = 2048

// snippet makes a message's snippet from its Content-Type and
// Content-Transfer-Encoding header fields and the first bytes of its body
// text (BODY[TEXT]<0.2048>): the start of the first text/plain part, or of
// the first text/html part with the markup removed, decoded from
// quoted-printable or base64 and from its charset, with whitespace
// collapsed, at most 200 characters. The text may be cut anywhere; whatever
// decodes is used.
func snippet(header, text []byte) string {
	if len(bytes.TrimSpace(header)) == 0 {
		header = []byte("Content-Type: text/plain\r\n")
	}
	raw := make([]byte, 0, len(header)+2+len(text))
	raw = append(raw, bytes.TrimRight(header, "\r\n")...)
	raw = append(raw, "\r\n\r\n"...)
	raw = append(raw, text...)
	// Read returns the entity along with an unknown-charset or
	// unknown-encoding error; the body then reads as it is.
	e, _ := gomessage.Read(bytes.NewReader(raw))
	if e == nil {
		return ""
	}
	var plain, htmlText string
	walkText(e, 0, &plain, &htmlText)
	switch {
	case plain != "":
		return holdfast.Snippet(plain)
	case htmlText != "":
		return holdfast.Snippet(stripHTML(htmlText))
	}
	return ""
}

// walkText finds the first text/plain and text/html parts of e, reading
// each up to the truncation point.
func walkText(e *gomessage.Entity, depth int, plain, htmlText *string) {
	if depth > 8 || *plain != "" {
		return
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if p == nil || err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err) {
				return
			}
			walkText(p, depth+1, plain, htmlText)
			if *plain != "" {
				return
			}
		}
	}
	t, _, _ := e.Header.ContentType()
	if disp, _, _ := e.Header.ContentDisposition(); disp == "attachment" {
		return
	}
	if t == "" {
		t = "text/plain"
	}
	switch t {
	case "text/plain":
		*plain = readSome(e.Body)
	case "text/html":
		if *htmlText == "" {
			*htmlText = readSome(e.Body)
		}
	}
}

// readSome reads what decodes of a possibly truncated body.
func readSome(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4*snippetFetchBytes))
	return strings.ToValidUTF8(string(b), "")
}

// stripHTML removes markup, style and script contents and decodes
// entities; enough for a snippet, not an HTML parser.
func stripHTML(s string) string {
	var b strings.Builder
	lower := strings.ToLower(s)
	for i := 0; i < len(s); {
		if s[i] != '<' {
			j := strings.IndexByte(s[i:], '<')
			if j < 0 {
				j = len(s) - i
			}
			b.WriteString(s[i : i+j])
			i += j
			continue
		}
		for _, skip := range []string{"style", "script", "head"} {
			if strings.HasPrefix(lower[i+1:], skip) {
				if end := strings.Index(lower[i:], "</"+skip); end >= 0 {
					i += end + 2
				} else {
					i = len(s)
				}
				break
			}
		}
		if i >= len(s) {
			break
		}
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			break
		}
		b.WriteByte(' ')
		i += end + 1
	}
	return html.UnescapeString(b.String())
}

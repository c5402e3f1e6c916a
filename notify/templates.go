package notify

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed templates/*.tmpl
var embedded embed.FS

// TemplateNames lists the messages, each a NAME.txt.tmpl (text/template,
// which also defines the "subject" template) and a NAME.html.tmpl
// (html/template).
var TemplateNames = []string{"reconnect", "admin", "resolved"}

// MessageData is what the templates see.
type MessageData struct {
	// Recipient is the owner's email address.
	Recipient string
	// StatusURL is the owner's status page, valid until Expires.
	StatusURL string
	Expires   time.Time
	// Inboxes lists every inbox of the message; Reconnect and Admin split
	// them by who must act.
	Inboxes   []InboxData
	Reconnect []InboxData
	Admin     []InboxData
}

// InboxData is one inbox as a message shows it.
type InboxData struct {
	ID       string
	Email    string
	Provider string
	// Reason is the machine word ("invalid_grant"); Message the sentence
	// the owner reads.
	Reason  string
	Message string
}

// Templates holds the parsed message templates.
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// LoadTemplates parses the embedded templates, each replaced by the file
// of the same name (reconnect.txt.tmpl, reconnect.html.tmpl, ...) in dir
// when dir is set and has it.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	read := func(file string) ([]byte, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err == nil {
				return b, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("templates dir: %w", err)
			}
		}
		return embedded.ReadFile("templates/" + file)
	}
	for _, name := range TemplateNames {
		src, err := read(name + ".txt.tmpl")
		if err != nil {
			return nil, err
		}
		tt, err := texttemplate.New(name).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("template %s.txt.tmpl: %w", name, err)
		}
		if tt.Lookup("subject") == nil {
			return nil, fmt.Errorf("template %s.txt.tmpl: no {{define \"subject\"}}", name)
		}
		src, err = read(name + ".html.tmpl")
		if err != nil {
			return nil, err
		}
		ht, err := htmltemplate.New(name).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("template %s.html.tmpl: %w", name, err)
		}
		t.text[name], t.html[name] = tt, ht
	}
	return t, nil
}

// Render returns message name to to, from from, as a complete RFC 5322
// message: multipart/alternative with a text and an HTML part.
func (t *Templates) Render(name, from, to string, date time.Time, data MessageData) ([]byte, error) {
	tt, ht := t.text[name], t.html[name]
	if tt == nil || ht == nil {
		return nil, fmt.Errorf("no template %q", name)
	}
	var subject, text, html bytes.Buffer
	if err := tt.ExecuteTemplate(&subject, "subject", data); err != nil {
		return nil, fmt.Errorf("render %s subject: %w", name, err)
	}
	if err := tt.Execute(&text, data); err != nil {
		return nil, fmt.Errorf("render %s text: %w", name, err)
	}
	if err := ht.Execute(&html, data); err != nil {
		return nil, fmt.Errorf("render %s html: %w", name, err)
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	domain := "holdfast.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		domain = strings.Trim(from[i+1:], "> ")
	}
	var head, body bytes.Buffer
	mw := multipart.NewWriter(&body)
	hdr := func(k, v string) { fmt.Fprintf(&head, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", to)
	hdr("Subject", mime.QEncoding.Encode("utf-8", strings.TrimSpace(subject.String())))
	hdr("Date", date.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Auto-Submitted", "auto-generated")
	hdr("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	head.WriteString("\r\n")
	for _, p := range []struct{ ctype, body string }{
		{"text/plain; charset=utf-8", text.String()},
		{"text/html; charset=utf-8", html.String()},
	} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", p.ctype)
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(p.body)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return append(head.Bytes(), body.Bytes()...), nil
}

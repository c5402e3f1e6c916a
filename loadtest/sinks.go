package loadtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// relay is the notify SMTP relay of the nodes: go-smtp with STARTTLS (a
// throwaway CA the nodes trust) and AUTH PLAIN, counting the notices per
// recipient.
type relay struct {
	srv    *smtp.Server
	ln     net.Listener
	caFile string

	mu     sync.Mutex
	byRcpt map[string]int
	total  int
}

// startRelay starts the relay on 127.0.0.1, writing its CA to dir.
func startRelay(dir string) (*relay, error) {
	cert, caPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	r := &relay{byRcpt: map[string]int{}, caFile: dir + "/relay-ca.pem"}
	if err := os.WriteFile(r.caFile, caPEM, 0o600); err != nil {
		return nil, fmt.Errorf("relay CA: %w", err)
	}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	r.srv.Domain = "localhost"
	r.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	r.srv.ReadTimeout, r.srv.WriteTimeout = 30*time.Second, 30*time.Second
	r.srv.ErrorLog = quietLog{}
	if r.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	go func() { _ = r.srv.Serve(r.ln) }() // owned by r: ends at close
	return r, nil
}

// url is the relay's HOLDFAST_NOTIFY_SMTP_URL.
func (r *relay) url() string { return "smtp://loadtest:loadtest@" + r.ln.Addr().String() }

func (r *relay) close() { _ = r.srv.Close() }

// notices returns the messages received.
func (r *relay) notices() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

type relaySession struct {
	r    *relay
	rcpt []string
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, _, _ string) error { return nil }), nil
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpt = append(s.rcpt, strings.ToLower(to))
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.total++
	for _, to := range s.rcpt {
		s.r.byRcpt[to]++
	}
	return nil
}

func (s *relaySession) Reset()        { s.rcpt = nil }
func (s *relaySession) Logout() error { return nil }

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

// selfSigned makes a CA and a certificate for 127.0.0.1 and localhost
// signed by it, valid for a day around now.
func selfSigned() (tls.Certificate, []byte, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("CA key: %w", err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "holdfast loadtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("server key: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("server certificate: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caPEM, nil
}

// hooks is the webhook receiver: it records each event once by ID, and
// the time each message was announced by its Internet Message-ID.
type hooks struct {
	srv *http.Server
	ln  net.Listener

	mu        sync.Mutex
	seen      map[string]bool
	dups      int
	byType    map[string]int
	announced map[string]time.Time // Internet Message-ID → first message.received
	doubled   int                  // message.received for an already announced Message-ID
	lags      []lagPoint
	arrivals  map[string]time.Time // Message-ID → delivered at the provider
	generated int                  // the emulator generator's messages announced
}

// lagPoint is one message's sync lag, with its announcement time.
type lagPoint struct {
	at, arrived time.Time
	lag         float64
}

func startHooks() (*hooks, error) {
	h := &hooks{seen: map[string]bool{}, byType: map[string]int{}, announced: map[string]time.Time{}, arrivals: map[string]time.Time{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	h.ln = ln
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(ln) }() // owned by h: ends at close
	return h, nil
}

func (h *hooks) url() string { return "http://" + h.ln.Addr().String() + "/hook" }

func (h *hooks) close() { _ = h.srv.Close() }

// arrived records that a message was delivered at the provider.
func (h *hooks) arrived(messageID string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.arrivals[messageID] = at
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			InternetMessageID string `json:"internet_message_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
		http.Error(w, "not an event", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen[ev.ID] {
		h.dups++
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.seen[ev.ID] = true
	h.byType[ev.Type]++
	if ev.Type == "message.received" && ev.Data.InternetMessageID != "" {
		mid := ev.Data.InternetMessageID
		if _, ok := h.announced[mid]; ok {
			h.doubled++
		} else {
			h.announced[mid] = now
			at, ok := h.arrivals[mid]
			if !ok {
				if at, ok = arrivalOf(mid); ok {
					h.generated++
				}
			}
			if ok {
				h.lags = append(h.lags, lagPoint{at: now, arrived: at, lag: now.Sub(at).Seconds()})
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// hookCounts is a snapshot of the receiver's counts.
type hookCounts struct {
	events, dups, doubled, notices, lost int
	// generated is the emulator generator's messages announced, which
	// lost does not count.
	generated int
	lags      []lagPoint
}

// counts returns the receiver's counts; lost is the delivered messages
// not announced.
func (h *hooks) counts() hookCounts {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := hookCounts{events: len(h.seen), dups: h.dups, doubled: h.doubled, notices: h.byType["notice.sent"],
		generated: h.generated, lags: append([]lagPoint(nil), h.lags...)}
	for mid := range h.arrivals {
		if _, ok := h.announced[mid]; !ok {
			c.lost++
		}
	}
	return c
}

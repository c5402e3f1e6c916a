package emulator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Bulk describes a fleet of accounts to create at once: the addresses
// {Prefix}{i}@t{i % DomainCount}.example for i in [Start, Start+Count),
// each in the tenant named by its domain (t{i % DomainCount}.example: the
// Entra tenant ID in tokens' tid claim and issuer, and the tenant faults
// match), or the Workspace domain for Google.
type Bulk struct {
	Provider    Provider `json:"provider"`
	Prefix      string   `json:"prefix"`
	DomainCount int      `json:"domain_count"`
	Count       int      `json:"count"`
	Start       int      `json:"start"`
}

// BulkAccount is one account made by CreateAccounts, with the refresh
// token of its new grant.
type BulkAccount struct {
	Email        string `json:"email"`
	Tenant       string `json:"tenant"`
	RefreshToken string `json:"refresh_token"`
}

// maxBulk bounds one bulk request.
const maxBulk = 1_000_000

// bulkChunk is how many accounts a bulk creation makes per hold of e.mu,
// so that the provider endpoints keep answering meanwhile.
const bulkChunk = 2000

// BulkEmail returns the address of account i of a bulk creation.
func BulkEmail(prefix string, i, domainCount int) string {
	return prefix + strconv.Itoa(i) + "@" + BulkDomain(i, domainCount)
}

// BulkDomain returns the domain, and tenant, of account i of a bulk
// creation: t{i % domainCount}.example.
func BulkDomain(i, domainCount int) string {
	return "t" + strconv.Itoa(i%domainCount) + ".example"
}

// validate checks b.
func (b Bulk) validate() error {
	if b.Provider != Microsoft && b.Provider != Google {
		return invalidf("provider", "must be %q or %q", Microsoft, Google)
	}
	if b.Prefix == "" || len(b.Prefix) > 40 {
		return invalidf("prefix", "must be 1 to 40 characters")
	}
	for _, c := range b.Prefix {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return invalidf("prefix", "may hold only a-z, 0-9, '.', '-' and '_'")
		}
	}
	if b.Prefix[0] == '.' || b.Prefix[len(b.Prefix)-1] == '.' {
		return invalidf("prefix", "must not start or end with '.'")
	}
	if b.DomainCount < 1 || b.DomainCount > maxBulk {
		return invalidf("domain_count", "must be from 1 to %d", maxBulk)
	}
	if b.Count < 1 || b.Count > maxBulk {
		return invalidf("count", "must be from 1 to %d", maxBulk)
	}
	if b.Start < 0 || b.Start > 1<<40 {
		return invalidf("start", "must be from 0 to 2^40")
	}
	return nil
}

// CreateAccounts creates the accounts b describes, as CreateAccount would
// one by one (an existing account of the same provider gets a new grant),
// and returns them in order with their refresh tokens. It returns an
// *InvalidError for bad input, ErrConflict when an address belongs to the
// other provider or another tenant, and ErrFull when the account table has
// no room for them all; it checks both before creating any.
func (e *Emulator) CreateAccounts(b Bulk) ([]BulkAccount, error) {
	out := make([]BulkAccount, 0, b.Count)
	err := e.createAccounts(b, func(a []BulkAccount) error {
		out = append(out, a...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// createAccounts creates b's accounts in chunks, handing each chunk to
// emit outside e.mu. Checks (conflicts and room) happen before any
// account is made.
func (e *Emulator) createAccounts(b Bulk, emit func([]BulkAccount) error) error {
	if err := b.validate(); err != nil {
		return err
	}
	if err := e.checkBulk(b); err != nil {
		return err
	}
	chunk := make([]BulkAccount, 0, min(bulkChunk, b.Count))
	for lo := b.Start; lo < b.Start+b.Count; lo += bulkChunk {
		hi := min(lo+bulkChunk, b.Start+b.Count)
		chunk = chunk[:0]
		e.mu.Lock()
		for i := lo; i < hi; i++ {
			email, tenant := BulkEmail(b.Prefix, i, b.DomainCount), BulkDomain(i, b.DomainCount)
			acc := e.accounts[email]
			if acc == nil {
				if len(e.accounts) >= e.cfg.MaxAccounts {
					e.mu.Unlock()
					return fmt.Errorf("%w: %d accounts", ErrFull, e.cfg.MaxAccounts)
				}
				acc = e.newAccountLocked(b.Provider, email, tenant)
			}
			g := e.newGrantLocked(acc, e.cfg.ClientID, defaultScope(b.Provider), true)
			chunk = append(chunk, BulkAccount{Email: email, Tenant: acc.tenant, RefreshToken: e.refreshToken(acc, g)})
		}
		e.mu.Unlock()
		if err := emit(chunk); err != nil {
			return err
		}
	}
	e.cfg.Logger.Info("emulator: accounts created in bulk", "provider", b.Provider, "prefix", b.Prefix,
		"start", b.Start, "count", b.Count, "domain_count", b.DomainCount)
	return nil
}

// checkBulk returns ErrConflict if one of b's addresses is taken by the
// other provider or another tenant, and ErrFull if the new ones do not fit.
func (e *Emulator) checkBulk(b Bulk) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	fresh := 0
	for i := b.Start; i < b.Start+b.Count; i++ {
		email := BulkEmail(b.Prefix, i, b.DomainCount)
		acc := e.accounts[email]
		switch {
		case acc == nil:
			fresh++
		case acc.provider != b.Provider:
			return fmt.Errorf("%w: %s is a %s account", ErrConflict, email, acc.provider)
		case acc.tenant != BulkDomain(i, b.DomainCount):
			return fmt.Errorf("%w: %s is in tenant %s", ErrConflict, email, acc.tenant)
		}
	}
	if len(e.accounts)+fresh > e.cfg.MaxAccounts {
		return fmt.Errorf("%w: %d accounts, %d more asked for, limit %d", ErrFull, len(e.accounts), fresh, e.cfg.MaxAccounts)
	}
	return nil
}

// handleBulkAccounts serves POST /_emulator/accounts/bulk. The answer is
// streamed: {"provider":…,"count":N,"accounts":[{"email","tenant","refresh_token"},…]}.
// Errors found before the first account (bad input, conflict, full) get
// the usual error answer; a failure after it ends the stream early, which
// leaves the JSON unterminated.
func (e *Emulator) handleBulkAccounts(w http.ResponseWriter, r *http.Request) {
	var b Bulk
	if err := decode(r, &b); err != nil {
		respondErr(w, err)
		return
	}
	if err := b.validate(); err != nil {
		respondErr(w, err)
		return
	}
	if err := e.checkBulk(b); err != nil {
		respondErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, `{"provider":%q,"count":%d,"accounts":[`, b.Provider, b.Count)
	first := true
	err := e.createAccounts(b, func(chunk []BulkAccount) error {
		for _, a := range chunk {
			if !first {
				_ = bw.WriteByte(',')
			}
			first = false
			line, _ := json.Marshal(a) // plain strings: cannot fail
			_, _ = bw.Write(line)
		}
		return bw.Flush() // the client went away: stop
	})
	if err != nil {
		e.cfg.Logger.Warn("emulator: bulk creation stopped", "err", err)
		return
	}
	_, _ = bw.WriteString("]}\n")
	_ = bw.Flush()
}

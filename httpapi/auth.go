package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/holdfast/holdfast"
)

// apiKeyContextKey keys the authenticated *holdfast.APIKey in a request's
// context.
type apiKeyContextKey struct{}

// requireAPIKey answers 401 unless the request carries
// "Authorization: Bearer KEY" with a key the store knows that is not
// revoked, and 403 when the key's scope does not allow perm. The key is
// looked up on every request, so a revocation takes effect at once.
func (s *server) requireAPIKey(perm holdfast.Permission, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="holdfast"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing API key: send Authorization: Bearer KEY")
			return
		}
		k, err := s.cfg.Store.APIKeyByHash(r.Context(), holdfast.HashAPIKey(key))
		if errors.Is(err, holdfast.ErrNotFound) || (err == nil && k.Revoked()) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="holdfast", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "invalid API key")
			return
		}
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if !k.Allows(perm) {
			writeError(w, http.StatusForbidden, "forbidden", "this API key's scope ("+string(k.Scope)+") does not allow "+r.Method+" "+r.URL.Path)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiKeyContextKey{}, k)))
	})
}

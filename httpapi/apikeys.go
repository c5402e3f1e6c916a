package httpapi

import (
	"net/http"
	"time"

	"github.com/holdfast/holdfast"
)

// createAPIKeyRequest makes a new API key. An empty scope is full.
type createAPIKeyRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// apiKeyJSON is an API key as the API shows it. Key, the secret, is set
// only in the answer to its creation.
type apiKeyJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Scope     string     `json:"scope"`
	Key       string     `json:"key,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func toAPIKeyJSON(k *holdfast.APIKey) apiKeyJSON {
	out := apiKeyJSON{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scope: string(k.Scope), CreatedAt: k.CreatedAt}
	if k.Revoked() {
		t := k.RevokedAt
		out.RevokedAt = &t
	}
	return out
}

// handleListAPIKeys lists every API key, revoked ones included, oldest
// first, without secrets: GET /v1/api-keys.
func (s *server) handleListAPIKeys() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, err := s.cfg.Store.APIKeys(r.Context())
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		out := listJSON[apiKeyJSON]{Data: make([]apiKeyJSON, 0, len(keys))}
		for _, k := range keys {
			out.Data = append(out.Data, toAPIKeyJSON(k))
		}
		encode(w, http.StatusOK, out)
	})
}

// handleCreateAPIKey makes an API key: POST /v1/api-keys. It answers 201
// with the key and, this once, its secret.
func (s *server) handleCreateAPIKey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[createAPIKeyRequest](r, w, s.cfg.MaxBodyBytes)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		name, err := holdfast.CheckAPIKeyName(req.Name)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		scope := holdfast.ScopeFull
		if req.Scope != "" {
			if scope, err = holdfast.ParseAPIKeyScope(req.Scope); err != nil {
				s.respondErr(w, r, err)
				return
			}
		}
		secret, k := holdfast.NewAPIKey(name, s.cfg.Clock.Now())
		k.Scope = scope
		if err := s.cfg.Store.CreateAPIKey(r.Context(), k); err != nil {
			s.respondErr(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "api key created", "key_id", k.ID, "scope", k.Scope, "by_key_id", callerKeyID(r))
		out := toAPIKeyJSON(k)
		out.Key = secret
		w.Header().Set("Location", "/v1/api-keys/"+k.ID)
		encode(w, http.StatusCreated, out)
	})
}

// handleRevokeAPIKey revokes a key at once, and every dashboard session
// made with it: DELETE /v1/api-keys/{id}. It answers 200 with the revoked
// key; revoking it again changes nothing.
func (s *server) handleRevokeAPIKey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !holdfast.ValidID("key", id) {
			s.respondErr(w, r, holdfast.ErrNotFound)
			return
		}
		k, err := s.cfg.Store.RevokeAPIKey(r.Context(), id, s.cfg.Clock.Now())
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "api key revoked", "key_id", k.ID, "by_key_id", callerKeyID(r))
		encode(w, http.StatusOK, toAPIKeyJSON(k))
	})
}

// callerKeyID returns the ID of the key that authenticated r.
func callerKeyID(r *http.Request) string {
	if k, ok := r.Context().Value(apiKeyContextKey{}).(*holdfast.APIKey); ok {
		return k.ID
	}
	return ""
}

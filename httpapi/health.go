package httpapi

import (
	"context"
	"net/http"
	"time"
)

// handleHealthz answers 200 while the process is up.
func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz answers 200 when the store can be reached, 503 otherwise.
func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Store.Ping(ctx); err != nil {
			s.log.WarnContext(ctx, "readiness check failed", "err", err)
			writeError(w, http.StatusServiceUnavailable, "unavailable", "store unreachable")
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

package httpapi

import (
	"net/http"

	"github.com/holdfast/holdfast"
)

// The permissions of the routes, short so that the list below reads as a
// table.
const (
	read     = holdfast.PermRead
	write    = holdfast.PermWrite
	sendRead = holdfast.PermSendRead
	send     = holdfast.PermSend
	keys     = holdfast.PermManageKeys
	anyKey   = holdfast.PermAuthenticated
)

// addRoutes lists the whole API in one place.
func (s *server) addRoutes(mux *http.ServeMux) {
	mux.Handle("GET /healthz", s.handleHealthz())
	mux.Handle("GET /readyz", s.handleReadyz())
	if s.cfg.Metrics != nil && !s.cfg.MetricsElsewhere {
		mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	}

	v1 := func(perm holdfast.Permission, pattern string, h http.Handler) {
		mux.Handle(pattern, s.requireAPIKey(perm, h))
	}
	v1(write, "POST /v1/inboxes", s.handleCreateInbox())
	v1(sendRead, "GET /v1/inboxes", s.handleListInboxes())
	v1(sendRead, "GET /v1/inboxes/{id}", s.handleGetInbox())
	v1(write, "PATCH /v1/inboxes/{id}", s.handleUpdateInbox())
	v1(write, "DELETE /v1/inboxes/{id}", s.handleDeleteInbox())
	v1(read, "GET /v1/inboxes/{id}/events", s.handleListEvents())
	v1(read, "GET /v1/inboxes/{id}/messages", s.handleListMessages())
	v1(read, "GET /v1/inboxes/{id}/messages/{mid}", s.handleGetMessage())
	v1(write, "POST /v1/inboxes/{id}/sync", s.handleSyncNow())
	v1(send, "POST /v1/inboxes/{id}/send", s.handleCreateSend())
	v1(sendRead, "GET /v1/sends/{id}", s.handleGetSend())
	v1(send, "DELETE /v1/sends/{id}", s.handleCancelSend())
	v1(write, "POST /v1/incidents", s.handleDeclareIncident())
	v1(read, "GET /v1/incidents", s.handleListIncidents())
	v1(read, "GET /v1/incidents/{id}", s.handleGetIncident())
	v1(write, "POST /v1/incidents/{id}/resolve", s.handleResolveIncident())
	v1(read, "GET /v1/held-actions", s.handleListHeld())
	v1(write, "POST /v1/held-actions/{id}/release", s.handleReleaseHeld())
	v1(write, "POST /v1/webhooks", s.handleCreateWebhook())
	v1(read, "GET /v1/webhooks", s.handleListWebhooks())
	v1(write, "DELETE /v1/webhooks/{id}", s.handleDeleteWebhook())
	v1(read, "GET /v1/webhooks/{id}/deliveries", s.handleListDeliveries())
	v1(write, "POST /v1/webhooks/{id}/deliveries/{delivery_id}/replay", s.handleReplayDelivery())
	v1(keys, "GET /v1/api-keys", s.handleListAPIKeys())
	v1(keys, "POST /v1/api-keys", s.handleCreateAPIKey())
	v1(keys, "DELETE /v1/api-keys/{id}", s.handleRevokeAPIKey())
	if s.cfg.Connect != nil {
		v1(write, "GET /v1/connect/{provider}", s.handleConnect())
		// The provider sends the user's browser here: no API key.
		mux.Handle("GET /oauth/callback", s.handleCallback())
	}
	if s.cfg.Status != nil {
		// The owners' status page: the signed token is the authentication.
		mux.Handle("GET /status/{token}", s.handleStatus())
		mux.Handle("POST /status/{token}/reconnect/{inbox_id}", s.handleStatusReconnect())
		mux.Handle("POST /status/{token}/imap/{inbox_id}", s.handleStatusIMAP())
	}
	// Anything else under /v1 is an authenticated 404 in the API's format.
	v1(anyKey, "/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path)
	}))
}

package holdfast

import (
	"context"
	"time"
)

// Store keeps everything holdfast stores, one aggregate per embedded
// interface. store/sqlstore implements it once, over the dialects of
// store/sqlite and store/postgres, and both engines pass store/storetest.
// Consumers ask for the aggregates they use, not for Store.
//
// Times are stored in UTC with microsecond precision.
type Store interface {
	InboxStore
	MailStore
	SendStore
	HealthStore
	NoticeStore
	WebhookStore
	APIKeyStore
	OAuthStore
	SigningKeyStore
	LeaseStore
	FleetStore
	LockStore

	// Ping checks that the store can be reached.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// InboxStore keeps inboxes, their credentials, owners and event log. Every
// state change appends its event in the same transaction.
type InboxStore interface {
	// CreateInbox stores a new inbox and appends its creation event, in one
	// transaction. It returns ErrConflict if an inbox with the same ID, or
	// the same provider and email, exists.
	CreateInbox(ctx context.Context, in *Inbox, ev Event) error
	// Inbox returns the inbox with the given ID, or ErrNotFound.
	Inbox(ctx context.Context, id string) (*Inbox, error)
	// Inboxes returns one page of inboxes ordered by ID.
	Inboxes(ctx context.Context, f InboxFilter) ([]*Inbox, error)
	// PartitionInboxes returns one page of the inboxes in sync partition
	// part (holdfast.PartitionOf their ID), ordered by ID after after, at
	// most limit (zero or less means 100, at most 1000). A partition out of
	// range is an InvalidError.
	PartitionInboxes(ctx context.Context, part int, after string, limit int) ([]*Inbox, error)
	// InboxByEmail returns the inbox of provider p whose email is email,
	// compared ignoring the case of ASCII letters (as CreateInbox's
	// conflict is), or ErrNotFound.
	InboxByEmail(ctx context.Context, p Provider, email string) (*Inbox, error)
	// InboxesByOwner returns, ordered by ID, every inbox whose owner is
	// email: the inboxes whose OwnerEmail is email and those without an
	// OwnerEmail whose Email is, compared ignoring the case of ASCII
	// letters. None is an empty list, not an error.
	InboxesByOwner(ctx context.Context, email string) ([]*Inbox, error)
	// DeleteInbox removes the inbox and its credentials and appends a
	// deletion event (the event log is kept). It returns ErrNotFound if the
	// inbox does not exist.
	DeleteInbox(ctx context.Context, id string, ev Event) error
	// ChangeState moves an inbox to a new state and appends the event (and
	// the outbox events of c.Announce, given the inbox as stored), in one
	// transaction. It returns ErrNotFound for an unknown inbox and
	// ErrConflict when c.From is set and the inbox is no longer in it.
	ChangeState(ctx context.Context, id string, c StateChange) (*Inbox, error)
	// SetOwnerEmail sets an inbox's OwnerEmail (empty clears it, making
	// the inbox's own email its owner) and returns the inbox as stored.
	// It returns ErrNotFound for an unknown inbox.
	SetOwnerEmail(ctx context.Context, id, owner string) (*Inbox, error)
	// SetCredentials replaces an inbox's sealed credentials. It returns
	// ErrNotFound for an unknown inbox.
	SetCredentials(ctx context.Context, id string, sealed []byte) error
	// SwapCredentials replaces an inbox's sealed credentials with sealed
	// only if they are still byte-equal to old (no credentials and empty
	// credentials are equal). It returns ErrNotFound for an unknown inbox
	// and ErrConflict, with nothing changed, when the credentials are no
	// longer old.
	SwapCredentials(ctx context.Context, id string, old, sealed []byte) error
	// Events returns one page of an inbox's event log, newest first.
	Events(ctx context.Context, inboxID string, f EventFilter) ([]Event, error)
	// CountInboxes counts inboxes per provider and state, ordered by
	// provider and state. Pairs with no inbox are left out.
	CountInboxes(ctx context.Context) ([]InboxCount, error)
}

// MailStore keeps the messages each inbox synced and its sync cursor.
type MailStore interface {
	// SaveSync stores the messages of one sync and the inbox's new cursor,
	// in one transaction, so a crash never advances the cursor past
	// messages it did not store. A message is stored once per inbox: one
	// with a known ProviderID, or a known non-empty InternetMessageID (the
	// same message seen again after a cursor reset), updates the stored one
	// instead of adding another (and takes the new ProviderID). It sets
	// every msgs[i].ID, new or stored, sets msgs[i].Added for the new ones
	// (clearing it for the others), and returns how many were new. A
	// zero at means now. ErrNotFound, with nothing stored, for an unknown
	// inbox. announce, if not nil, is called with msgs as stored (IDs and
	// Added set) within the transaction, and the events it returns are
	// appended to the outbox there.
	SaveSync(ctx context.Context, inboxID string, msgs []Message, cursor string, at time.Time, announce Announce[[]Message]) (added int, err error)
	// TouchSynced records, in one transaction, that each inbox of synced
	// was synced at its time, without a new cursor or message (a sync that
	// found nothing): the last sync time moves forward only. Unknown
	// inboxes are skipped.
	TouchSynced(ctx context.Context, synced map[string]time.Time) error
	// Messages returns one page of an inbox's messages, newest first (by
	// ReceivedAt, then ID).
	Messages(ctx context.Context, inboxID string, f MessageFilter) ([]*Message, error)
	// Message returns one message of an inbox, or ErrNotFound.
	Message(ctx context.Context, inboxID, id string) (*Message, error)
}

// SendStore keeps the sends (1:1 and scheduled mail) and their states.
type SendStore interface {
	// CreateSend stores a new send and returns it as stored (s is not
	// modified): an empty ID gets a new one, an empty State is
	// SendScheduled, a zero CreatedAt is now, and a zero UpdatedAt or SendAt
	// is CreatedAt. If the inbox already has a send with the same non-empty
	// IdempotencyKey, it stores nothing and returns that one with existing
	// true, also when the two creates race. ErrNotFound for an unknown
	// inbox, ErrConflict for a taken ID.
	CreateSend(ctx context.Context, s *Send) (stored *Send, existing bool, err error)
	// SendByID returns one send, or ErrNotFound.
	SendByID(ctx context.Context, id string) (*Send, error)
	// ChangeSend moves a send to a new state (see SendChange) and returns
	// it. Reason is replaced by c.Reason; SentAt is set to c.At when c.To
	// is SendSent; a zero c.At means now. The outbox events of c.Announce,
	// given the send as stored, are appended in the same transaction. ErrNotFound for an unknown send,
	// ErrConflict when c.From no longer holds.
	ChangeSend(ctx context.Context, id string, c SendChange) (*Send, error)
	// DueSends returns sends in the given states whose SendAt is at or
	// before dueBy, oldest SendAt first, then by ID, at most limit (zero or
	// less means 100, at most 1000), for the scheduler's sweep.
	DueSends(ctx context.Context, states []SendState, dueBy time.Time, limit int) ([]*Send, error)
}

// HealthStore keeps what the health engine decided and saw: incidents, held
// actions, its saved state and the fleet's periodic snapshots.
type HealthStore interface {
	// SaveIncident inserts or replaces the incident with in.ID (the
	// caller's). A zero ResolvedAt is kept as open, except that a save
	// never reopens a stored resolved incident: it then changes nothing
	// (with several nodes, a late re-save by one never undoes another's
	// resolution). in is not modified.
	// announce, if not nil, is called within the transaction with the
	// incident as stored before (nil for a new one), so that the caller
	// can tell an opening or a resolution from a re-save, and the events it
	// returns are appended to the outbox there.
	SaveIncident(ctx context.Context, in *Incident, announce Announce[*Incident]) error
	// Incidents returns at most limit incidents (zero or less means 100, at
	// most 1000), newest first by ID, only the open ones if openOnly.
	Incidents(ctx context.Context, openOnly bool, limit int) ([]*Incident, error)
	// OpenIncidents returns at most limit open incidents (zero or less
	// means 100, at most 1000) whose ID is greater than afterID, oldest
	// first by ID: to read them all, page on with the last ID of each
	// page until a page is short.
	OpenIncidents(ctx context.Context, afterID int64, limit int) ([]*Incident, error)
	// IncidentByID returns one incident, or ErrNotFound.
	IncidentByID(ctx context.Context, id int64) (*Incident, error)
	// SaveHeldAction inserts or replaces the held action with h.ID (the
	// caller's), unless the stored one is done: a closed action's outcome
	// is final (with several nodes, a stale copy elsewhere never rewrites
	// it). h is not modified.
	SaveHeldAction(ctx context.Context, h *HeldAction) error
	// FindHeldActions returns the held actions f selects, oldest first by
	// ID or, with f.Newest, newest first, at most f.Limit (zero or less
	// means 100, at most 1000).
	FindHeldActions(ctx context.Context, f HeldActionFilter) ([]*HeldAction, error)
	// ReserveIDs reserves n (at least 1) consecutive IDs for incidents and
	// held actions from a durable sequence and returns the first: the
	// caller owns first through first+n-1. An ID is reserved once, across
	// restarts and nodes; IDs reserved and never used are skipped.
	ReserveIDs(ctx context.Context, n int) (first int64, err error)
	// SaveEngineState replaces the health engine's saved state, an opaque
	// blob kept in one row; a zero at means now.
	SaveEngineState(ctx context.Context, at time.Time, state []byte) error
	// EngineState returns the health engine's saved state and when it was
	// saved, or ErrNotFound if none was.
	EngineState(ctx context.Context) (time.Time, []byte, error)
	// AppendFleetSnapshot records the inbox counts taken at one moment. It
	// returns ErrConflict if a count for the same moment, provider and
	// state exists. Empty counts store nothing.
	AppendFleetSnapshot(ctx context.Context, at time.Time, counts []InboxCount) error
	// FleetSnapshots returns the snapshots taken at or after since, oldest
	// first, each with its counts ordered by provider and state.
	FleetSnapshots(ctx context.Context, since time.Time) ([]FleetSnapshot, error)
	// PruneFleetSnapshots deletes the snapshots taken before before and
	// returns how many counts (rows, one per provider and state of each
	// snapshot) it deleted. It deletes in bounded batches, each committed
	// on its own, so that it never holds the database for long; on an
	// error, such as ctx ending, the batches already deleted stay deleted
	// and the count returned includes them.
	PruneFleetSnapshots(ctx context.Context, before time.Time) (int64, error)
}

// NoticeStore keeps the notices decided for inboxes' owners and their place
// in the notification outbox.
type NoticeStore interface {
	// AppendNotice records a notice decision and sets n.ID; a zero n.At is
	// set to now, and n.At is set back as stored. It returns ErrConflict if
	// a notice for the same inbox and episode exists (notices are never
	// repeated for one episode).
	AppendNotice(ctx context.Context, n *Notice) error
	// Notices returns the notices recorded for an inbox, oldest first.
	Notices(ctx context.Context, inboxID string) ([]*Notice, error)
	// NoticeRecords returns the notices f selects with their place in the
	// notification outbox, oldest first by ID or, with f.Newest, newest
	// first, at most f.Limit (zero or less means 100, at most 1000). A new
	// notice is NoticePending.
	NoticeRecords(ctx context.Context, f NoticeFilter) ([]*NoticeRecord, error)
	// ChangeNotice moves a notice from c.From to c.To (a compare-and-set),
	// replaces its StatusReason with c.Reason, sets UpdatedAt to c.At (a
	// zero c.At means now) and, when c.To is NoticeSent, SentAt too, and
	// appends c.Events to the outbox, in one transaction; it returns the
	// notice as stored. ErrNotFound for an unknown notice, ErrConflict when
	// it is no longer in c.From, both with nothing changed or appended.
	ChangeNotice(ctx context.Context, id int64, c NoticeChange) (*NoticeRecord, error)
}

// WebhookStore keeps webhooks and the record of their deliveries.
type WebhookStore interface {
	// CreateWebhook stores a new webhook; a zero CreatedAt is set to now,
	// and w.CreatedAt is set back as stored. It returns ErrConflict if the
	// ID exists.
	CreateWebhook(ctx context.Context, w *Webhook) error
	// Webhook returns one webhook, or ErrNotFound.
	Webhook(ctx context.Context, id string) (*Webhook, error)
	// Webhooks returns every webhook, ordered by ID.
	Webhooks(ctx context.Context) ([]*Webhook, error)
	// DeleteWebhook removes a webhook and its deliveries. It returns
	// ErrNotFound if the webhook does not exist.
	DeleteWebhook(ctx context.Context, id string) error
	// SetWebhookSecret replaces a webhook's sealed signing secret (key
	// rotation). ErrNotFound for an unknown webhook.
	SetWebhookSecret(ctx context.Context, id string, sealed []byte) error
	// SwapWebhookSecret replaces a webhook's sealed signing secret with
	// sealed only if it is still byte-equal to old (key rotation while
	// other processes may write it). It returns ErrNotFound for an unknown
	// webhook and ErrConflict, with nothing changed, when the secret is no
	// longer old.
	SwapWebhookSecret(ctx context.Context, id string, old, sealed []byte) error
	// DisableWebhook stops deliveries to a webhook for good: it sets
	// DisabledAt (a zero at means now) and DisabledReason, unless it is
	// disabled already. It returns ErrNotFound for an unknown webhook.
	DisableWebhook(ctx context.Context, id string, at time.Time, reason string) error
	// RecordWebhookAttempt appends attempt a to the delivery of
	// (d.WebhookID, d.EventID), creating the delivery first if there is none
	// (with d.ID, or a new ID if empty, and d.EventType and d.Payload; a
	// zero d.CreatedAt means a.At), sets its State to d.State and its
	// UpdatedAt to a.At, and returns it as stored (d is not modified). A
	// zero a.At means now. ErrNotFound, with nothing stored, when the
	// webhook does not exist.
	RecordWebhookAttempt(ctx context.Context, d *WebhookDelivery, a WebhookAttempt) (*WebhookDelivery, error)
	// WebhookDelivery returns one delivery of a webhook, or ErrNotFound
	// (also when the delivery belongs to another webhook).
	WebhookDelivery(ctx context.Context, webhookID, id string) (*WebhookDelivery, error)
	// WebhookDeliveries returns one page of a webhook's deliveries, newest
	// first by ID. An unknown webhook has none.
	WebhookDeliveries(ctx context.Context, webhookID string, f DeliveryFilter) ([]*WebhookDelivery, error)
	// ReplayWebhookDelivery makes a delivery of a webhook pending again (a
	// compare-and-set on its state from) and, in the same transaction,
	// appends to the outbox its event targeted at that webhook alone: the
	// delivery's EventID, EventType and Payload, created at at (a zero at
	// means now), with Replay the number of attempts made so far. It
	// returns the delivery as stored. ErrNotFound for an unknown delivery,
	// ErrConflict, with nothing changed, when it is no longer in from.
	ReplayWebhookDelivery(ctx context.Context, webhookID, id string, from DeliveryState, at time.Time) (*WebhookDelivery, error)
	// OutboxEvents returns the events of the outbox not relayed yet, in the
	// order they were appended (by Seq), at most limit (zero or less means
	// 100, at most 1000). An event appended by a transaction that commits
	// after a later one's may come after it.
	OutboxEvents(ctx context.Context, limit int) ([]*OutboxEvent, error)
	// MarkRelayed sets the RelayedAt of the outbox events with the given
	// Seqs to at (a zero at means now), in one transaction; an event
	// relayed already keeps its RelayedAt, and an unknown Seq is ignored.
	MarkRelayed(ctx context.Context, seqs []int64, at time.Time) error
	// PruneOutbox deletes the outbox events relayed before before and
	// returns how many it deleted; unrelayed events stay. It deletes in
	// bounded batches, each committed on its own, like
	// PruneFleetSnapshots.
	PruneOutbox(ctx context.Context, before time.Time) (int64, error)
}

// APIKeyStore keeps the API keys, by the hash of their secret.
type APIKeyStore interface {
	// CreateAPIKey stores a new API key. It returns ErrConflict if the ID
	// or hash exists.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKeyByHash returns the key with the given hash, revoked or not, or
	// ErrNotFound.
	APIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)
	// APIKeyByID returns the key with the given ID, revoked or not, or
	// ErrNotFound.
	APIKeyByID(ctx context.Context, id string) (*APIKey, error)
	// APIKeys lists every key, revoked ones included, oldest first.
	APIKeys(ctx context.Context) ([]*APIKey, error)
	// RevokeAPIKey revokes the key id at time at and returns it. Revoking
	// a revoked key keeps its first revocation time. It returns
	// ErrNotFound for an unknown ID.
	RevokeAPIKey(ctx context.Context, id string, at time.Time) (*APIKey, error)
}

// OAuthStore keeps pending OAuth consent flows.
type OAuthStore interface {
	// SaveOAuthState stores a pending consent flow; a zero st.CreatedAt is
	// set to now, and the times are set back as stored. It also deletes
	// the flows that expired before st.CreatedAt. It returns ErrConflict if
	// a flow with the same Hash exists.
	SaveOAuthState(ctx context.Context, st *OAuthState) error
	// TakeOAuthState deletes the pending consent flow with the given hash
	// and returns it: a flow is taken at most once, also when two
	// callbacks race. It returns ErrNotFound for an unknown hash, a flow
	// already taken, or one expired at at (a zero at means now), which it
	// deletes all the same.
	TakeOAuthState(ctx context.Context, hash []byte, at time.Time) (*OAuthState, error)
}

// SigningKeyStore keeps the keys that sign status links and dashboard
// sessions, sealed with the secret key, shared by every process on the
// store. Each key has a generation: the newest is the current key.
type SigningKeyStore interface {
	// SigningKeys returns the stored signing keys, newest (greatest
	// Generation) first. None is an empty list, not an error.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// AddSigningKeys stores keys, each under its Generation (at least 1),
	// and then deletes every stored key but the newest two, in one
	// transaction; a zero CreatedAt is set to now, and the times are set
	// back as stored. It returns ErrConflict, with nothing changed, if a
	// key of one of those generations exists: two processes adding the
	// next generation at once store one key, and the other reads it.
	AddSigningKeys(ctx context.Context, keys ...*SigningKey) error
	// SwapSigningKey replaces the sealed key of generation gen with sealed
	// only if it is still byte-equal to old (key rotation while other
	// processes may write it). It returns ErrNotFound for an unknown
	// generation and ErrConflict, with nothing changed, when the sealed
	// key is no longer old.
	SwapSigningKey(ctx context.Context, gen int64, old, sealed []byte) error
}

// SigningKey is one stored key that signs status links and dashboard
// sessions.
type SigningKey struct {
	// Generation orders the keys: 1 for the first, one more for each
	// rotation.
	Generation int64
	// Sealed is the key sealed with the secret key.
	Sealed []byte
	// CreatedAt is when it was stored.
	CreatedAt time.Time
}

// InboxFilter selects a page of inboxes. Zero fields select everything.
type InboxFilter struct {
	State    State
	Provider Provider
	// After returns only inboxes whose ID sorts after it (keyset paging).
	After string
	// Limit caps the page size; zero or less means 100.
	Limit int
}

// EventFilter selects a page of events, newest first.
type EventFilter struct {
	// Before returns only events whose ID is smaller (keyset paging);
	// zero means from the newest.
	Before int64
	// Limit caps the page size; zero or less means 100.
	Limit int
}

// MessageFilter selects a page of messages, newest first. The cursor is the
// last message of the previous page.
type MessageFilter struct {
	// BeforeTime and BeforeID, when set, return only messages that sort
	// after that message (older, or as old with a smaller ID).
	BeforeTime time.Time
	BeforeID   string
	// Limit caps the page size; zero or less means 100, at most 1000.
	Limit int
}

// InboxCount is the number of inboxes of one provider in one state.
type InboxCount struct {
	Provider Provider
	State    State
	Count    int64
}

// FleetSnapshot is the number of inboxes per provider and state at one
// moment, recorded periodically so that operators can see the fleet's
// history.
type FleetSnapshot struct {
	At     time.Time
	Counts []InboxCount
}

// StoreTimePrecision is the precision of every time a Store keeps.
const StoreTimePrecision = time.Microsecond

// NoticeStatus is where a notice is in the notification outbox. A notice
// starts pending; the notify pipeline claims it (sending) right before it
// mails it, and then records it sent, or cancels it with a reason. A
// notice left sending by a crash is never mailed again: a notice goes out
// at most once; the notify sweep cancels it after a timeout with
// NoticeReasonStranded, so that it is flagged rather than left sending.
type NoticeStatus string

// The notice statuses.
const (
	NoticePending   NoticeStatus = "pending"
	NoticeSending   NoticeStatus = "sending"
	NoticeSent      NoticeStatus = "sent"
	NoticeCancelled NoticeStatus = "cancelled"
	// NoticeFollowedUp: sent, and then followed by the "resolved, nothing
	// to do" message once the inbox recovered by itself.
	NoticeFollowedUp NoticeStatus = "followed_up"
)

// NoticeStatusReason says why the notify pipeline moved a notice: why it
// was cancelled, given back or followed up. The values are stored as they
// are.
type NoticeStatusReason string

// The notice status reasons.
const (
	// NoticeReasonRecovered: the inbox no longer needs anyone to act (a
	// cancelled notice), or recovered by itself (a followed-up one).
	NoticeReasonRecovered NoticeStatusReason = "recovered"
	// NoticeReasonIncident: an open incident covers the inbox.
	NoticeReasonIncident NoticeStatusReason = "incident"
	// NoticeReasonExpired: older than the notify TTL.
	NoticeReasonExpired NoticeStatusReason = "expired"
	// NoticeReasonInboxDeleted: the inbox is gone.
	NoticeReasonInboxDeleted NoticeStatusReason = "inbox_deleted"
	// NoticeReasonRetry: claimed, then given back to pending after a
	// failure, to be sent again.
	NoticeReasonRetry NoticeStatusReason = "retry"
	// NoticeReasonStranded: claimed (sending) by a node that then stopped
	// before recording the outcome, and found by the notify sweep after a
	// timeout. The owner may or may not have been mailed; the notice is
	// not sent again, since a notice goes out at most once.
	NoticeReasonStranded NoticeStatusReason = "stranded"
)

// NoticeRecord is a notice with its place in the notification outbox.
type NoticeRecord struct {
	Notice
	// Recipient is the address of the notice's inbox's owner: its
	// OwnerEmail, or its email when it has none; empty once the inbox is
	// deleted.
	Recipient string
	Status    NoticeStatus
	// StatusReason says why a notice was cancelled, given back or followed
	// up.
	StatusReason NoticeStatusReason
	SentAt       time.Time // zero until sent
	UpdatedAt    time.Time
}

// NoticeFilter selects notices; zero fields select everything.
type NoticeFilter struct {
	ID      int64
	InboxID string
	// Recipient selects the notices whose Recipient it is, compared
	// ignoring the case of ASCII letters.
	Recipient    string
	Status       NoticeStatus
	StatusReason NoticeStatusReason
	// UpdatedSince and UpdatedUntil, when set, select only the notices
	// whose UpdatedAt is at or after UpdatedSince and at or before
	// UpdatedUntil.
	UpdatedSince, UpdatedUntil time.Time
	// Newest returns the newest notices first (by ID), so that with Limit
	// they are the last ones recorded; otherwise the oldest come first.
	Newest bool
	// Limit caps the page size; zero or less means 100, at most 1000.
	Limit int
}

// HeldActionFilter selects held actions; zero fields select everything.
type HeldActionFilter struct {
	ID      int64
	InboxID string
	// PendingOnly selects only the pending held actions (not Done), and
	// DoneOnly only the done ones; both select none.
	PendingOnly, DoneOnly bool
	Provider              Provider
	// Tenant is compared ignoring the case of ASCII letters.
	Tenant string
	// Since and Until, when set, select only the held actions held or
	// closed within [Since, Until] (HeldAt or ClosedAt there), such as
	// the ones of an incident's window.
	Since, Until time.Time
	// Newest returns the newest held actions first (by ID), so that with
	// Limit they are the last ones recorded; otherwise the oldest come
	// first.
	Newest bool
	// AfterID, when set, selects only the held actions whose ID is
	// greater: oldest first, a cursor to page through them all (the last
	// ID of each page, until a page is short).
	AfterID int64
	// Limit caps the page size; zero or less means 100, at most 1000.
	Limit int
}

// NoticeChange asks the store to move a notice from one status to
// another, atomically.
type NoticeChange struct {
	From   NoticeStatus
	To     NoticeStatus
	Reason NoticeStatusReason
	At     time.Time
	// Events are appended to the outbox with the change, and only if it
	// applies (notice.sent with the notice's sent).
	Events []OutboxEvent
}

// OAuthState is one pending OAuth consent flow, kept from the authorization
// request (GET /v1/connect/{provider}) until its callback, and taken at
// most once.
type OAuthState struct {
	// Hash is the SHA-256 of the state parameter sent to the provider;
	// the state itself is not stored.
	Hash     []byte
	Provider Provider
	// Email is the address the inbox is connected for.
	Email string
	// Verifier is the PKCE code_verifier, sent only with the code
	// exchange.
	Verifier string
	// RedirectURI is the host application's page the user's browser is
	// sent to after the callback.
	RedirectURI string
	// OwnerEmail, if set, becomes the inbox's OwnerEmail when the
	// callback connects or reconnects it; empty keeps a reconnected
	// inbox's owner.
	OwnerEmail string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// LeaseStore keeps the nodes of a cluster and the leases of the sync
// partitions (PartitionCount of them) they share: which node syncs which
// partition's inboxes. Every change is a conditional update, so two nodes
// never hold one partition at the same moment by the store's clock (the
// times the callers pass).
type LeaseStore interface {
	// Heartbeat records that node is alive at at (now if zero), adding it
	// if it is new, forgets nodes whose heartbeat is older than at minus
	// forget, and returns the nodes whose heartbeat is within ttl of at
	// (the live ones, node included), ordered by ID.
	Heartbeat(ctx context.Context, node string, at time.Time, ttl, forget time.Duration) ([]Node, error)
	// PartitionLeases returns the lease of every partition ever leased,
	// ordered by partition; a partition never leased has no row.
	PartitionLeases(ctx context.Context) ([]PartitionLease, error)
	// AcquirePartitions leases to node, until until, each of parts that
	// nobody holds at now (never leased, released, or expired) or that
	// node holds already, and returns those it got, in order. Epoch grows
	// for a partition that changes hands. Partitions out of range are an
	// InvalidError, with nothing leased.
	AcquirePartitions(ctx context.Context, node string, parts []int, now, until time.Time) ([]int, error)
	// RenewPartitions extends to until every lease node holds at now and
	// returns those partitions, in order: a lease that expired is not
	// renewed (another node may have it; acquire it again).
	RenewPartitions(ctx context.Context, node string, now, until time.Time) ([]int, error)
	// ReleasePartitions gives up node's leases of parts (others' leases
	// are left alone), for a node handing partitions over.
	ReleasePartitions(ctx context.Context, node string, parts []int) error
	// LeaveCluster gives up every lease node holds and forgets the node,
	// in one transaction, for a node that stops: the others see one node
	// fewer and may take its partitions at once.
	LeaveCluster(ctx context.Context, node string) error
}

// FleetStore keeps what the nodes of a cluster share for the health
// engine's fleet view: the leader's lease, each node's detector counters
// per bucket, and the budget of destructive actions. Every change is a
// conditional update, so nodes never need a lock of their own.
type FleetStore interface {
	// AcquireLeadership makes node the leader until until if nobody holds
	// leadership at now (never held, released, or expired) or node holds
	// it already, and returns the leadership as stored after the attempt:
	// node is the leader if and only if the returned Node is node.
	AcquireLeadership(ctx context.Context, node string, now, until time.Time) (Leadership, error)
	// ReleaseLeadership gives up node's leadership, if it holds it.
	ReleaseLeadership(ctx context.Context, node string) error
	// ShipCounters stores node's counters for bucket, replacing any it
	// shipped for that bucket, and deletes node's counters older than
	// bucket minus 256.
	ShipCounters(ctx context.Context, node string, bucket int64, data []byte) error
	// FleetCounters returns every node's counters of buckets at or after
	// from, ordered by bucket then node.
	FleetCounters(ctx context.Context, from int64) ([]NodeCounters, error)
	// TakePermit takes one permit from the token bucket named key, which
	// refills at ratePerHour up to burst (its size; a new bucket starts
	// full), at now. It reports whether it got one; it changes the bucket
	// only with a compare-and-set on its version, retried a few times
	// under contention (then it reports none: the caller holds its action).
	// A rate or burst that is not a positive number is an InvalidError.
	TakePermit(ctx context.Context, key string, ratePerHour, burst float64, now time.Time) (bool, error)
}

// LockStore takes named locks that hold across every node sharing the
// database, for work one node at a time must do: the notify pipeline for
// one recipient, the webhook relay's pass over the outbox.
type LockStore interface {
	// TryLock takes the lock called name if nobody holds it, and returns
	// ok and the func that releases it (safe to call more than once); if
	// a holder has it (another node, or this process: locks do not nest),
	// ok is false and release nil. The holder keeps it until release, or
	// until its process dies: on PostgreSQL it is a session advisory lock,
	// scoped to the store's schema, on a connection set aside until
	// release, which dies with the process; on SQLite, whose database one
	// process serves, a lock in that process. An empty name is an
	// InvalidError.
	TryLock(ctx context.Context, name string) (release func(), ok bool, err error)
}

// Package emulator is a wire-level fake of the mail providers holdfast talks
// to over HTTP: the Microsoft identity platform (v2.0 token and authorize
// endpoints) with Microsoft Graph mail, and Google OAuth with the Gmail
// API. It answers with the JSON shapes, status codes and error bodies of the
// real services, as recorded in provider-apis.md and the classifier's error
// vectors, and it injects faults and throttling on request. It is a fake,
// not a mock: the code under test talks HTTP to it exactly as it would to
// the providers (compare Tailscale's testcontrol).
//
// # URL mapping
//
// One emulator serves every provider on one address. Each real host is
// mirrored under a path prefix, so that a base URL ending in the prefix
// replaces the host and everything after it is the real path:
//
//	real                                         emulator (BASE = http://127.0.0.1:PORT)
//	https://login.microsoftonline.com            BASE/microsoft-login    HOLDFAST_MICROSOFT_LOGIN_URL
//	  /{tenant}/oauth2/v2.0/authorize              GET
//	  /{tenant}/oauth2/v2.0/token                  POST
//	https://graph.microsoft.com                  BASE/graph              HOLDFAST_GRAPH_URL
//	  /v1.0/me                                     GET  (the signed-in user)
//	  /v1.0/me/mailFolders/{folder}/messages/delta GET  (folder: inbox or sentitems)
//	  /v1.0/me/mailFolders/{folder}/messages       GET  ($filter=internetMessageId eq '…', $top, $skip, $select)
//	  /v1.0/me/messages/{id}                       GET
//	  /v1.0/me/sendMail                            POST (JSON, or base64 MIME as text/plain)
//	https://oauth2.googleapis.com                BASE/google-oauth       HOLDFAST_GOOGLE_OAUTH_URL
//	  /token                                       POST
//	  /o/oauth2/v2/auth, /o/oauth2/auth            GET  (alias of the accounts.google.com paths)
//	https://accounts.google.com                  BASE/google-accounts
//	  /o/oauth2/v2/auth, /o/oauth2/auth            GET
//	https://gmail.googleapis.com                 BASE/gmail              HOLDFAST_GMAIL_URL
//	  /gmail/v1/users/{userId}/profile             GET  (userId: me or the address)
//	  /gmail/v1/users/{userId}/history             GET
//	  /gmail/v1/users/{userId}/messages            GET  (labelIds, q=rfc822msgid:/in:inbox/in:sent, maxResults, pageToken)
//	  /gmail/v1/users/{userId}/messages/{id}       GET  (format=full|metadata|minimal|raw)
//	  /gmail/v1/users/{userId}/messages/send       POST {"raw": base64url RFC 822}
//
// [URLsFor] computes these base URLs from the emulator's address.
//
// # Control API
//
// Tests and demos drive the emulator under BASE/_emulator; [Emulator] has a
// Go method for each call:
//
//	POST   /_emulator/accounts                  CreateAccount: {"provider","email","tenant"} → {"refresh_token",…}
//	POST   /_emulator/accounts/{email}/revoke   Revoke: every grant of the mailbox fails for good
//	POST   /_emulator/accounts/{email}/expire-sync  ExpireSyncState: delta and history cursors expire
//	POST   /_emulator/mail                      Deliver: {"to","from","subject","text","message_id"?} → {"id","message_id"}
//	POST   /_emulator/faults                    AddFault: {"provider","surfaces",…} → {"id"}
//	DELETE /_emulator/faults/{id}               RemoveFault
//	GET    /_emulator/sent?from=EMAIL           Sent: {"data":[…]}, one entry per accepted send call
//	GET    /_emulator/health                    {"ok":true}, for readiness polling
//	POST   /_emulator/accounts/bulk             CreateAccounts: {"provider","prefix","domain_count","count","start"}
//	                                            → {"provider","count","accounts":[{"email","tenant","refresh_token"},…]} (streamed)
//	POST   /_emulator/traffic                   StartTraffic: {"rate_per_sec","emails":"all"|[…],"seed"} → TrafficState
//	DELETE /_emulator/traffic                   StopTraffic
//	GET    /_emulator/stats                     Stats
//	POST   /_emulator/stats/config              SetDupWindow: {"dup_window_ms"}
//	POST   /_emulator/stats/reset               ResetStats
//	GET    /_emulator/sent/summary              SentSummary: {"total","distinct_message_ids","duplicates":[…]}
//	POST   /_emulator/capacity                  SetCapacity: {"provider","capacity_per_s","retry_after_s"}
//
// Control errors are {"error":{"code","message","field"}}, with field
// naming the bad input, and status 400, 404, 409, 413 (a body over the
// limit) or 507 (a mailbox or the account table is full).
//
// # Accounts and tokens
//
// An account is a mailbox of one provider, keyed by its address; its tenant
// defaults to the address's domain. CreateAccount gives it a new grant and
// returns the grant's refresh token, as if the user had just consented.
// Tokens are HMAC-signed by a key made at start, so an emulator accepts only
// its own tokens and keeps no per-token state:
//
//   - Microsoft access tokens are JWTs (HS256) for the resource of the
//     first permission asked for (https://graph.microsoft.com for bare
//     names such as Mail.Send); token responses carry token_type, scope,
//     expires_in, ext_expires_in, access_token, refresh_token (when the
//     grant has offline_access) and id_token (when it has openid). Every
//     refresh returns a new refresh token of the same grant, and the old
//     ones keep working until the grant is revoked, as Microsoft does.
//   - A grant has the scopes of its consent: the authorize request's scope,
//     or for CreateAccount every permission holdfast may use (Graph
//     Mail.ReadWrite, Mail.Send and User.Read, Outlook's IMAP and SMTP,
//     openid, profile, email, offline_access; Google's mail.google.com,
//     gmail.modify, gmail.readonly, gmail.send, openid, email). A Microsoft
//     access token's scp claim lists the grant's permissions on its
//     resource, or the subset a refresh asked for, and Graph checks it:
//     GET /me needs User.Read (or a broader User or Directory permission), else
//     403 Authorization_RequestDenied "Insufficient privileges to complete
//     the operation."; delta, list and get need Mail.Read or Mail.ReadWrite
//     and sendMail Mail.Send, else 403 ErrorAccessDenied.
//   - A Google access token carries its grant's scopes, through refreshes,
//     and Gmail checks them as the API reference lists: getProfile needs
//     gmail.readonly, gmail.modify, gmail.compose, gmail.metadata or
//     mail.google.com; history.list, messages.list and messages.get
//     gmail.readonly, gmail.modify, gmail.metadata or mail.google.com;
//     messages.send gmail.send, gmail.compose, gmail.modify or
//     mail.google.com. Without one Gmail answers 403 PERMISSION_DENIED
//     "Request had insufficient authentication scopes." (reason
//     insufficientPermissions, with an ErrorInfo
//     ACCESS_TOKEN_SCOPE_INSUFFICIENT naming the method). When
//     gmail.metadata is the only scope that allows the call, messages.list
//     refuses q and messages.get format=full (the default) and raw: 403
//     forbidden "Metadata scope ...".
//   - Google refresh responses omit refresh_token: the same one is reused.
//   - Access tokens expire after Config.TokenLifetime (--token-lifetime);
//     expires_in is that lifetime in seconds. Graph then answers 401
//     InvalidAuthenticationToken and Gmail 401 UNAUTHENTICATED (authError).
//   - Revoke marks every grant of the mailbox revoked: refreshing answers
//     Microsoft's 400 invalid_grant AADSTS50173 (error_codes [50173],
//     suberror bad_token) or Google's 400 invalid_grant "Token has been
//     expired or revoked.", and access tokens of those grants stop working
//     at once. A new consent (CreateAccount again, or the authorize flow)
//     makes a new, working grant. An account keeps at most 100 grants; the
//     oldest is dropped beyond that, as Google does.
//   - Clients authenticate with client_id and client_secret in the form or
//     with HTTP Basic. A wrong secret is 401 invalid_client (AADSTS7000215;
//     Google "Unauthorized"); an unknown client ID is 400 unauthorized_client
//     AADSTS700016 at Microsoft and 401 invalid_client "The OAuth client was
//     not found." at Google.
//
// # Authorization-code flow
//
// GET authorize auto-approves: for the account named by login_hint (or the
// emulator's own email parameter) it redirects straight to
// redirect_uri?code=…&state=… (response_mode query only). Without either
// parameter it shows a page linking each account of the provider; for an
// address with no account it redirects with error=access_denied. Any
// absolute http or https redirect_uri is accepted, and the token endpoint
// requires the same one. PKCE is checked when the authorize request had a
// code_challenge (method S256, or plain): a missing or wrong code_verifier
// is invalid_grant (AADSTS501481; Google "Invalid code verifier."). Codes
// are single-use and live 10 minutes. Google returns a refresh token on
// code exchange only with access_type=offline, Microsoft only with the
// offline_access scope.
//
// # Mail
//
// Deliver puts a message into the recipient's inbox; sends place a copy in
// the sender's sent folder (Graph's saveToSentItems, default true; Gmail
// always, with label SENT), record the send once per accepted call, and
// deliver to recipients that have accounts in the same emulator. Every new
// message is one change: Graph delta rounds list the folder's messages in
// pages (Prefer: odata.maxpagesize or $top, default 10) linked by
// @odata.nextLink, then an @odata.deltaLink; a later round returns only
// what was added since. A delta or skip token that is unknown, for another
// mailbox or folder, or older than ExpireSyncState answers 410 Gone with
// code SyncStateNotFound. Gmail history ids are per mailbox and start
// above 1000; history.list returns messageAdded records after
// startHistoryId, and a startHistoryId older than ExpireSyncState answers
// 404 notFound. Messages are never modified or deleted, so delta and
// history report additions only.
//
// Sends are asynchronous, as the real ones: with Config.SentDelay
// (--sent-delay) above zero an accepted Graph send waits that long in the
// Outbox (GET /v1.0/me/mailFolders/outbox/messages lists it, Sent Items
// does not) before it is filed in Sent Items as a new change, and an
// accepted Gmail send (labelled SENT at once) is not found by
// messages.list, with or without q, until then.
//
// # Faults and throttling
//
// A fault ([Fault]) makes a share of the requests to some surfaces of one
// provider (token and graph for Microsoft; google_token and gmail for
// Google; "token" also names Google's token endpoint) answer a given status
// and exact body, optionally only for one tenant or one address, with a
// Retry-After header for 429 and 503 when RetryAfterS is set. Which requests
// fail is drawn from a random source seeded by Config.Seed (--seed), so a
// run can be repeated. Without a body the fault answers the surface's usual
// error body for the status. The authorize pages and the control API never
// fail. Faults are checked before authentication, as an outage would be.
// A fault with AfterAccept ("after_accept") strikes only sends, and after
// them: Graph's sendMail or Gmail's messages.send is carried out (recorded,
// delivered, filed) and then answered with the fault's status, as a
// provider that answers 503 to a message it took.
//
// With Config.RateLimit (--rate-limit) above zero, each mailbox may make
// that many Graph or Gmail requests per second (a token bucket holding one
// second's worth); beyond it Graph answers 429 TooManyRequests and Gmail 429
// rateLimitExceeded (RESOURCE_EXHAUSTED), both with Retry-After in whole
// seconds.
//
// A fault can also strike only a share of the mailboxes (AccountFraction,
// by [AccountShare], the same mailboxes every time), end by itself
// (DurationS) and mix answers by weight (Answers), which is how a load test
// replays an outage such as the 2025-03-01 one, whose token endpoint
// answered AADSTS50173 invalid_grant (reads as revoked) and AADSTS90033.
// [Emulator.SetCapacity] caps a provider's requests per second in all,
// API and token endpoint together; beyond it the surface's 429 answers,
// with Retry-After. The cap is checked before faults.
//
// # Fleet scale
//
// For load tests the emulator holds 100,000 accounts and more cheaply
// (about 430 bytes of heap each with no messages; no per-account goroutine
// or timer; maps made on first use; a delivered message keeps no RFC 822
// copy). [Emulator.CreateAccounts] makes the accounts
// {prefix}{i}@t{i % domain_count}.example, each in the tenant named by its
// domain (the tid of its Microsoft tokens), and returns their refresh
// tokens. [Emulator.StartTraffic] runs one owned goroutine that delivers
// generated messages at a rate, each carrying its arrival time in the
// HeaderArrived header, its subject and its Message-ID; StopTraffic, a new
// StartTraffic, Close and the end of Run stop it. [Emulator.Stats] counts
// requests, sync calls and duplicate sync calls (a sync call within the
// duplicate window of the same mailbox's previous one; each mailbox keeps
// the times of its last two and two counters), sends, token requests,
// faulted and throttled answers; [Emulator.SentSummary] the accepted sends
// and their distinct Message-IDs. Config.KeepMessages bounds each folder
// of a mailbox to its last messages while delta tokens and history ids
// carry on.
//
// # Limits
//
// State is in memory and bounded: Config.MaxAccounts accounts, and per
// mailbox Config.MaxMessages stored messages and as many send records (a
// full mailbox answers Graph's 403 ErrorQuotaExceeded, Gmail's 400
// failedPrecondition, or 507 on the control API). Request bodies are limited
// to 64 KiB, and to Config.MaxMessageBytes for sends and deliveries. All
// methods are safe for concurrent use.
//
// Not emulated: IMAP and SMTP, subscriptions and watch, message updates and
// deletions, attachments, batch requests, Gmail's media upload path, the
// /users/{id} form of Graph paths, and Graph path spellings other than the
// camelCase and all-lower-case ones.
//
// The Go API is not stable.
package emulator

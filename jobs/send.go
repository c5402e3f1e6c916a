package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/health"
)

// SendStore is the aggregates the send workers use: the sends, and their inboxes.
type SendStore interface {
	holdfast.SendStore
	holdfast.InboxStore
}

var _ SendStore = holdfast.Store(nil)

// Monitor is the health engine as the send worker sees it
// (monitor.Monitor).
type Monitor interface {
	// AdmitInbox is the engine's admission for the inbox as just read
	// from the store (on a node that does not own it, by its stored
	// state).
	AdmitInbox(ctx context.Context, in *holdfast.Inbox, op health.Op) (health.Admission, error)
	Observe(inboxID string, o health.Outcome) (health.Decision, error)
}

// SendConfig is what the send workers need; WithSends registers them.
type SendConfig struct {
	Store   SendStore
	Monitor Monitor
	// Connectors maps each provider to its connector. A send from an inbox
	// whose provider has none fails.
	Connectors map[holdfast.Provider]holdfast.Connector
	// Session opens an inbox's credentials for one attempt.
	Session func(ctx context.Context, in *holdfast.Inbox) (*holdfast.Session, error)
	// Timeout bounds one attempt (River cancels its context then); zero
	// means DefaultSendTimeout. River itself would retry a job whose
	// process died twice this long after its attempt began; send_sweep
	// resumes its send after Lease.
	Timeout time.Duration
	// Lease is how long a send may stay "sending" without a sign of life
	// from the attempt submitting it before send_sweep takes it for dead
	// and resumes the send in a new job (which looks in Sent first). An
	// attempt renews the lease every Lease/3 while it submits. Zero means
	// DefaultSendLease.
	Lease time.Duration
	// HoldMax is the longest a send not yet attempted is held past its
	// due time while the health engine holds its inbox (paused, degraded,
	// suspect): it then fails as "held_too_long", so that its author is
	// told. Zero means the engine's default (health.Config.SendHoldMax).
	HoldMax time.Duration
	// Announce, if set, returns the outbox events of a send stored as
	// sent or failed, given the send as stored; the store calls it within
	// the change's transaction, so that the events commit with the outcome
	// (webhook.SendEvents).
	Announce holdfast.Announce[*holdfast.Send]
	// OnOutcome, if set, is called with a send once it is stored as sent
	// or failed. It must not block (webhook.Relay.Wake).
	OnOutcome func(ctx context.Context, s *holdfast.Send)
}

// DefaultSendTimeout bounds one send attempt unless SendConfig.Timeout says
// otherwise: the SMTP submission alone may wait five minutes for the
// server's answer.
const DefaultSendTimeout = 6 * time.Minute

// DefaultSendLease is how long a send may stay "sending" without a sign
// of life from its attempt, unless SendConfig.Lease says otherwise. An
// attempt renews it every 10 seconds; with send_sweep every 30 seconds,
// the send of an attempt that died with its process is resumed 30 to 60
// seconds after it died.
const DefaultSendLease = 30 * time.Second

// WithSends registers the send worker and the send_sweep periodic job.
func WithSends(c SendConfig) Option {
	return func(o *options) { o.sends = &c }
}

// The send job's parameters.
const (
	// sendMaxAttempts bounds the retries of errors (unclear outcomes,
	// recoverable failures); holds snooze without using attempts. With
	// NextRetry's backoff the last comes after about two hours.
	sendMaxAttempts = 20
	// heldRetry is how often a held send asks the health engine again.
	heldRetry = 30 * time.Second
	// sweepInterval is how often send_sweep runs: with DefaultSendLease,
	// a send whose attempt died is resumed within a minute.
	sweepInterval = 30 * time.Second
	// sweepBatch bounds the sends one sweep enqueues; the next takes the
	// rest.
	sweepBatch = 1000
	// ownerWait is how long a send whose inbox needs its owner waits for
	// the inbox to work again: one not yet attempted fails as
	// "inbox_needs_reconnect" (or "inbox_needs_admin") this long after it
	// was due, one whose outcome is unknown fails as "outcome_unknown" this
	// long after it began to wait.
	ownerWait = 24 * time.Hour
	// maxOwnerRetry bounds how long a send waiting for its owner sleeps
	// between two looks at its inbox, and so how long after a
	// reconnection it goes out.
	maxOwnerRetry = 5 * time.Minute
	// unknownInboxWait is how long after it was due a send whose inbox the
	// health engine does not know, and cannot load, is held before it
	// fails as "inbox_unknown".
	unknownInboxWait = 10 * time.Minute
)

// ownerRetry returns how long a send that has waited late for its owner
// sleeps before it asks the engine again: heldRetry at first, then a tenth
// of the time waited, at most maxOwnerRetry. An inbox that comes back by
// itself soon after needing its owner has its sends out within 30 s, and a
// day of waiting costs a few hundred looks, not thousands.
func ownerRetry(late time.Duration) time.Duration {
	return min(max(late/10, heldRetry), maxOwnerRetry)
}

// SendArgs are the arguments of the send job, which submits one send at its
// SendAt. There is at most one job per send.
type SendArgs struct {
	SendID string `json:"send_id"`
	// Resume, when set, is the ID of a job of this send whose attempt
	// died (its lease ran out, see SendConfig.Lease): this job resumes the
	// send, and that one is cancelled. It makes the job's arguments
	// differ, so that River's uniqueness, which the dead job still holds,
	// lets it in.
	Resume int64 `json:"resume,omitempty"`
}

// Kind implements river.JobArgs.
func (SendArgs) Kind() string { return "send" }

// InsertOpts implements river.JobArgsWithInsertOpts: unique per send, so
// the API's insert and the sweep's never make two jobs.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: sendMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// sendInsertOpts returns the options that schedule s's job at its SendAt.
// A due send's job is available at once: a scheduled job waits for River's
// leader to make it available, which after a crash of the leader takes
// until its lease expires.
func sendInsertOpts(s *holdfast.Send, now time.Time) *river.InsertOpts {
	o := SendArgs{}.InsertOpts()
	if s.SendAt.After(now) {
		o.ScheduledAt = s.SendAt
	}
	return &o
}

// SendWorker works send jobs. Its steps make a send go out exactly once
// where the provider files sent mail (see docs/providers.md): a send is
// moved to "sending" before it is submitted, and an attempt that finds it
// already "sending" (an unclear outcome, or a crash) first asks the
// provider whether the message is in Sent.
type SendWorker struct {
	river.WorkerDefaults[SendArgs]
	SendConfig
	Clock  holdfast.Clock
	Logger *slog.Logger
}

// Timeout implements river.Worker.
func (w *SendWorker) Timeout(*river.Job[SendArgs]) time.Duration { return w.SendConfig.Timeout }

// NextRetry implements river.Worker: 2 s after the first failed attempt,
// doubling to at most 10 minutes. River's default (attempt⁴ seconds) would
// leave a send whose outcome is unclear waiting for minutes after its
// second attempt.
func (w *SendWorker) NextRetry(job *river.Job[SendArgs]) time.Time {
	d := 2 * time.Second << min(max(job.Attempt-1, 0), 9)
	return time.Now().Add(min(d, 10*time.Minute))
}

func (w *SendWorker) now() time.Time {
	return w.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
}

// Work makes one attempt at a send.
func (w *SendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	id := job.Args.SendID
	log := w.Logger.With("send_id", id, "attempt", job.Attempt)
	snd, err := w.Store.SendByID(ctx, id)
	if errors.Is(err, holdfast.ErrNotFound) {
		log.WarnContext(ctx, "send job for an unknown send")
		return nil
	}
	if err != nil {
		return fmt.Errorf("load send %s: %w", id, err)
	}
	log = log.With("inbox_id", snd.InboxID, "message_id", snd.MessageID)
	switch snd.State {
	case holdfast.SendSent, holdfast.SendCancelled, holdfast.SendFailed:
		return nil
	}
	if wait := snd.SendAt.Sub(w.Clock.Now()); wait > time.Second {
		return river.JobSnooze(wait) // enqueued early
	}
	in, err := w.Store.Inbox(ctx, snd.InboxID)
	if errors.Is(err, holdfast.ErrNotFound) {
		return w.fail(ctx, snd, holdfast.SendReasonInboxDeleted)
	}
	if err != nil {
		return fmt.Errorf("load inbox %s of send %s: %w", snd.InboxID, id, err)
	}
	conn := w.Connectors[in.Provider]
	if conn == nil {
		return w.fail(ctx, snd, holdfast.SendReasonProviderNotSupported)
	}

	adm, err := w.admit(ctx, in)
	if err != nil {
		return w.unknownInbox(ctx, snd, err)
	}
	switch adm {
	case health.Fail:
		if snd.State == holdfast.SendSending {
			return w.awaitOwner(ctx, snd)
		}
		// The inbox needs its owner. The engine may still be wrong (an
		// inbox can come back by itself inside the notice grace period),
		// and the owner may reconnect: the send waits, visibly, until
		// ownerWait after it was due, and only then fails. One that an
		// outage already held SendHoldMax fails now: its inbox came out
		// of the outage needing its owner (a tenant's escalation), the
		// bound a held send gets.
		st, _ := w.stateOf(in.ID)
		late := w.Clock.Now().Sub(snd.SendAt)
		if late >= ownerWait || late >= cmp.Or(w.HoldMax, health.DefaultConfig().SendHoldMax) && heldByOutage(snd) {
			return w.fail(ctx, snd, holdfast.InboxSendReason(st))
		}
		return w.hold(ctx, snd, holdfast.InboxSendReason(st), ownerRetry(late), false)
	case health.Hold, health.Defer:
		holdMax := cmp.Or(w.HoldMax, health.DefaultConfig().SendHoldMax)
		if snd.State != holdfast.SendSending && w.Clock.Now().Sub(snd.SendAt) >= holdMax {
			return w.fail(ctx, snd, holdfast.SendReasonHeldTooLong)
		}
		st, _ := w.stateOf(in.ID)
		return w.hold(ctx, snd, holdfast.InboxSendReason(st), heldRetry, false)
	}

	sess, err := w.Session(ctx, in)
	if err != nil {
		return fmt.Errorf("open credentials of inbox %s: %w", in.ID, err)
	}
	// From here on the attempt may hold the send "sending": it shows it is
	// alive.
	defer w.renewLease(ctx, id)()
	if snd.State == holdfast.SendSending {
		// An earlier attempt may have gone out: look before sending again.
		if done, err := w.lookFirst(ctx, job, conn, sess, snd); done {
			return err
		}
	}
	prev := snd.State
	snd, err = w.Store.ChangeSend(ctx, id, holdfast.SendChange{From: prev, To: holdfast.SendSending, Attempt: true, At: w.now()})
	if errors.Is(err, holdfast.ErrConflict) {
		return fmt.Errorf("send %s changed state from %s meanwhile; trying again", id, prev)
	}
	if err != nil {
		return fmt.Errorf("mark send %s sending: %w", id, err)
	}
	err = conn.Send(ctx, sess, outgoing(in, snd, w.Clock.Now()))
	if err == nil {
		w.observe(ctx, in, health.OpSend, nil)
		log.InfoContext(ctx, "sent")
		return w.sent(ctx, snd, false)
	}
	return w.submitFailed(ctx, job, in, snd, err)
}

// submitFailed handles the failed submission of snd (err), the job's
// attempt: an unclear outcome stays "sending", a message that will never
// go out fails, anything else is held for the engine to decide.
func (w *SendWorker) submitFailed(ctx context.Context, job *river.Job[SendArgs], in *holdfast.Inbox, snd *holdfast.Send, err error) error {
	log := w.Logger.With("send_id", snd.ID, "attempt", job.Attempt, "inbox_id", snd.InboxID, "message_id", snd.MessageID)
	if ctx.Err() != nil || errors.Is(err, holdfast.ErrOutcomeUnknown) {
		// Stay "sending": the next attempt looks in Sent first.
		w.observe(ctx, in, health.OpSend, err)
		if job.Attempt >= job.MaxAttempts {
			return w.fail(ctx, snd, holdfast.SendReasonOutcomeUnknown)
		}
		return fmt.Errorf("send %s: outcome unknown, will look in Sent before retrying: %w", snd.ID, err)
	}
	pe, ok := errors.AsType[*holdfast.ProviderError](err)
	if !ok {
		// Not the provider's answer: a message that cannot be built.
		log.WarnContext(ctx, "send cannot be built", "err", err)
		return w.fail(ctx, snd, holdfast.SendReasonOf(holdfast.ReasonInvalidRequest))
	}
	d := w.observe(ctx, in, health.OpSend, err)
	log.InfoContext(ctx, "send failed", "class", pe.Class, "reason", pe.Reason, "scope", pe.Scope, "err", err)
	switch {
	case pe.Class == holdfast.ClassPermanent && (pe.Scope == holdfast.ScopeOperation || pe.Scope == holdfast.ScopeItem):
		// This message will never go out: too large, recipient refused.
		return w.fail(ctx, snd, holdfast.SendReasonOf(pe.Reason))
	case job.Attempt >= job.MaxAttempts:
		return w.fail(ctx, snd, holdfast.SendReasonOf(pe.Reason))
	}
	// Recoverable, or the account's trouble: wait, and let the engine
	// decide the inbox's fate (Admit answers Fail once it needs its owner).
	wait := heldRetry
	if !d.RetryAt.IsZero() {
		wait = max(d.RetryAt.Sub(w.Clock.Now()), time.Second)
	}
	return w.hold(ctx, snd, holdfast.SendReasonOf(pe.Reason), wait, true)
}

// heldByOutage reports whether snd is held because its inbox was paused,
// degraded or suspect.
func heldByOutage(snd *holdfast.Send) bool {
	if snd.State != holdfast.SendHeld {
		return false
	}
	switch snd.Reason {
	case holdfast.InboxSendReason(holdfast.StatePaused), holdfast.InboxSendReason(holdfast.StateDegraded), holdfast.InboxSendReason(holdfast.StateSuspect):
		return true
	}
	return false
}

// inboxLoader is the health monitor's means to learn an inbox it does not
// know (monitor.Monitor.AddInbox).
type inboxLoader interface {
	AddInbox(in *holdfast.Inbox) error
}

// admit asks the health engine whether in may send now. An inbox the
// engine does not know (created through another node, or whose AddInbox
// failed) is loaded into it from the store first.
func (w *SendWorker) admit(ctx context.Context, in *holdfast.Inbox) (health.Admission, error) {
	adm, err := w.Monitor.AdmitInbox(ctx, in, health.OpSend)
	if !errors.Is(err, holdfast.ErrNotFound) {
		return adm, err
	}
	l, ok := w.Monitor.(inboxLoader)
	if !ok {
		return adm, err
	}
	if lerr := l.AddInbox(in); lerr != nil {
		return adm, fmt.Errorf("load inbox %s into the health engine: %w", in.ID, lerr)
	}
	w.Logger.InfoContext(ctx, "send: loaded an inbox the health engine did not know", "inbox_id", in.ID)
	return w.Monitor.AdmitInbox(ctx, in, health.OpSend)
}

// unknownInbox handles a send whose inbox the health engine does not know
// and could not load (err says why): it is held, as "inbox_unknown", and
// asks again every heldRetry, until unknownInboxWait after it was due; then
// it fails as "inbox_unknown" (or, if an earlier attempt may have gone
// out, "outcome_unknown").
func (w *SendWorker) unknownInbox(ctx context.Context, snd *holdfast.Send, err error) error {
	if w.Clock.Now().Sub(snd.SendAt) >= unknownInboxWait {
		w.Logger.WarnContext(ctx, "send: the health engine still does not know the inbox; failing", "send_id", snd.ID, "inbox_id", snd.InboxID, "err", err)
		if snd.State == holdfast.SendSending {
			return w.fail(ctx, snd, holdfast.SendReasonOutcomeUnknown)
		}
		return w.fail(ctx, snd, holdfast.SendReasonInboxUnknown)
	}
	w.Logger.WarnContext(ctx, "send: the health engine does not know the inbox; holding", "send_id", snd.ID, "inbox_id", snd.InboxID, "err", err)
	return w.hold(ctx, snd, holdfast.SendReasonInboxUnknown, heldRetry, false)
}

// stateOf returns the health engine's state of an inbox, if it knows it.
func (w *SendWorker) stateOf(inboxID string) (holdfast.State, bool) {
	st, ok := w.Monitor.(interface {
		State(string) (holdfast.State, error)
	})
	if !ok {
		return "unavailable", false
	}
	s, err := st.State(inboxID)
	if err != nil {
		return "unknown", false
	}
	return s, true
}

// observe reports one provider outcome (err nil: success) to the engine.
func (w *SendWorker) observe(ctx context.Context, in *holdfast.Inbox, op health.Op, err error) health.Decision {
	o := health.Outcome{Op: op, OK: err == nil}
	if err != nil {
		v := classify.Classify(classify.Input{Provider: string(in.Provider), Err: err})
		o.Verdict = &v
	}
	d, oerr := w.Monitor.Observe(in.ID, o)
	if oerr != nil {
		w.Logger.WarnContext(ctx, "send: report outcome to the health engine", "inbox_id", in.ID, "err", oerr)
	}
	return d
}

// lease returns SendConfig.Lease, or its default.
func (c *SendConfig) lease() time.Duration {
	if c.Lease <= 0 {
		return DefaultSendLease
	}
	return c.Lease
}

// renewLease renews the lease of send id every Lease/3 while it is
// "sending" (it moves its UpdatedAt), so that send_sweep knows its
// attempt alive. The returned stop ends the renewals and waits for them
// to end.
func (w *SendWorker) renewLease(ctx context.Context, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // ends with stop
		defer close(done)
		tick := time.NewTicker(w.lease() / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// ErrConflict: not "sending" (yet, or any more).
			_, err := w.Store.ChangeSend(ctx, id, holdfast.SendChange{From: holdfast.SendSending, To: holdfast.SendSending, At: w.now()})
			if err != nil && !errors.Is(err, holdfast.ErrConflict) && ctx.Err() == nil {
				w.Logger.WarnContext(ctx, "send: renew the lease of a send", "send_id", id, "err", err)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// sentLagger is a connector whose provider files a sent message a while
// after accepting it (provider/graph, provider/gmail): FindSent may miss a
// message accepted less than SentLag ago.
type sentLagger interface {
	SentLag() time.Duration
}

// lookFirst looks for snd, left "sending" by an attempt that may have gone
// out, with FindSent. done reports that the attempt ends here, with err:
// the message was found (the send is marked sent), the look failed, or it
// found nothing while the connector's SentLag since the unclear attempt
// has not passed yet (the job snoozes until it has, and looks again).
// Otherwise the message did not go out, and the caller sends it again.
//
// The lag is counted from the end of the unclear attempt: the job's last
// recorded error (River records the error of an attempt, and the
// rescuer one for an attempt it rescued), or, for a job enqueued after
// the attempt (send_sweep's, for an attempt that died), its creation.
func (w *SendWorker) lookFirst(ctx context.Context, job *river.Job[SendArgs], conn holdfast.Connector, sess *holdfast.Session, snd *holdfast.Send) (done bool, err error) {
	in := sess.Inbox
	found, err := conn.FindSent(ctx, sess, snd.MessageID)
	if err != nil {
		w.observe(ctx, in, health.OpProbe, err)
		return true, fmt.Errorf("look for send %s in Sent: %w", snd.ID, err)
	}
	w.observe(ctx, in, health.OpProbe, nil)
	log := w.Logger.With("send_id", snd.ID, "attempt", job.Attempt, "inbox_id", snd.InboxID, "message_id", snd.MessageID)
	if found {
		log.InfoContext(ctx, "send found in Sent after an unclear attempt; not sending again")
		return true, w.sent(ctx, snd, true)
	}
	if sl, ok := conn.(sentLagger); ok {
		since := job.CreatedAt
		if n := len(job.Errors); n > 0 && job.Errors[n-1].At.After(since) {
			since = job.Errors[n-1].At
		}
		if left := sl.SentLag() - w.Clock.Now().Sub(since); left > 0 {
			log.InfoContext(ctx, "send not found in Sent yet; waiting out the provider's lag before sending again", "wait", left)
			return true, river.JobSnooze(max(left, time.Second))
		}
	}
	log.InfoContext(ctx, "send not found in Sent; sending again")
	return false, nil
}

// sent records that the provider accepted snd; attempt counts an attempt
// (one that found it in Sent).
func (w *SendWorker) sent(ctx context.Context, snd *holdfast.Send, attempt bool) error {
	out, err := w.Store.ChangeSend(ctx, snd.ID, holdfast.SendChange{From: holdfast.SendSending, To: holdfast.SendSent, Attempt: attempt, At: w.now(), Announce: w.Announce})
	if err != nil {
		// The next attempt finds it in Sent.
		return fmt.Errorf("mark send %s sent: %w", snd.ID, err)
	}
	if w.OnOutcome != nil {
		w.OnOutcome(ctx, out)
	}
	return nil
}

// fail records that snd will not go out.
func (w *SendWorker) fail(ctx context.Context, snd *holdfast.Send, reason holdfast.SendReason) error {
	out, err := w.Store.ChangeSend(ctx, snd.ID, holdfast.SendChange{From: snd.State, To: holdfast.SendFailed, Reason: reason, At: w.now(), Announce: w.Announce})
	if errors.Is(err, holdfast.ErrConflict) {
		return fmt.Errorf("send %s changed state meanwhile; trying again", snd.ID)
	}
	if err != nil {
		return fmt.Errorf("mark send %s failed: %w", snd.ID, err)
	}
	if w.OnOutcome != nil {
		w.OnOutcome(ctx, out)
	}
	w.Logger.InfoContext(ctx, "send failed for good", "send_id", snd.ID, "reason", reason)
	return nil
}

// awaitOwner handles a send left "sending" by an attempt that may have
// gone out, when the engine fails its inbox's sends: it does not claim a
// failure it cannot know. The send stays "sending", so that it cannot be
// cancelled and the next attempt looks in Sent first, with the reason
// holdfast.SendReasonOutcomeUnknownUntilReconnect, and the job asks the engine again after ownerRetry. Once
// the inbox works again an attempt searches Sent and sends only if the
// message is not there; if the inbox still fails ownerWait after the send
// began to wait, it fails as "outcome_unknown".
func (w *SendWorker) awaitOwner(ctx context.Context, snd *holdfast.Send) error {
	if snd.Reason != holdfast.SendReasonOutcomeUnknownUntilReconnect {
		_, err := w.Store.ChangeSend(ctx, snd.ID, holdfast.SendChange{From: holdfast.SendSending, To: holdfast.SendSending,
			Reason: holdfast.SendReasonOutcomeUnknownUntilReconnect, At: w.now()})
		if errors.Is(err, holdfast.ErrConflict) {
			return fmt.Errorf("send %s changed state meanwhile; trying again", snd.ID)
		}
		if err != nil {
			return fmt.Errorf("mark send %s waiting for its inbox: %w", snd.ID, err)
		}
		w.Logger.InfoContext(ctx, "send outcome unknown and its inbox needs its owner; waiting to look in Sent", "send_id", snd.ID, "inbox_id", snd.InboxID)
		return river.JobSnooze(heldRetry)
	}
	waited := w.Clock.Now().Sub(snd.UpdatedAt)
	if waited >= ownerWait {
		return w.fail(ctx, snd, holdfast.SendReasonOutcomeUnknown)
	}
	return river.JobSnooze(ownerRetry(waited))
}

// hold keeps snd waiting for wait. A send still "sending" after an unclear
// attempt stays so, to be looked for in Sent first, unless notSent says
// the provider clearly refused this attempt.
func (w *SendWorker) hold(ctx context.Context, snd *holdfast.Send, reason holdfast.SendReason, wait time.Duration, notSent bool) error {
	keep := snd.State == holdfast.SendSending && !notSent
	if !keep && (snd.State != holdfast.SendHeld || snd.Reason != reason) {
		_, err := w.Store.ChangeSend(ctx, snd.ID, holdfast.SendChange{From: snd.State, To: holdfast.SendHeld, Reason: reason, At: w.now()})
		if errors.Is(err, holdfast.ErrConflict) {
			return fmt.Errorf("send %s changed state meanwhile; trying again", snd.ID)
		}
		if err != nil {
			return fmt.Errorf("hold send %s: %w", snd.ID, err)
		}
	}
	return river.JobSnooze(wait)
}

// outgoing builds the message of snd from inbox in.
func outgoing(in *holdfast.Inbox, snd *holdfast.Send, now time.Time) *holdfast.OutgoingMessage {
	return &holdfast.OutgoingMessage{
		MessageID: snd.MessageID, From: in.Email,
		To: snd.To, Cc: snd.Cc, Bcc: snd.Bcc, Subject: snd.Subject, Text: snd.Text, HTML: snd.HTML,
		Date: now,
	}
}

// SendSweepArgs are the arguments of send_sweep, which enqueues the send
// jobs of due sends that have none: after a crash between storing a send
// and enqueuing its job, or after a job was lost; and resumes the sends
// whose attempt died with its process (see SendSweepWorker). It runs
// every 30 seconds and when the runner starts.
type SendSweepArgs struct{}

// Kind implements river.JobArgs.
func (SendSweepArgs) Kind() string { return "send_sweep" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (SendSweepArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 3} }

// SendSweepWorker works send_sweep jobs.
//
// A send "sending" whose lease ran out (SendConfig.Lease: no sign of life
// from its attempt) while its job is still running, begun more than a
// lease ago, was being sent by a process that died: River would run the
// job again only when it rescues it, twice the send timeout after the
// attempt began. The sweep hands such sends to Resume, which cancels the
// dead job (River's rescuer then finalizes it, never runs it) and
// enqueues a job that resumes the send at once; like every attempt on a
// "sending" send, it looks for the Message-ID in Sent before sending.
type SendSweepWorker struct {
	river.WorkerDefaults[SendSweepArgs]
	Store  SendStore
	Insert func(ctx context.Context, s *holdfast.Send) (skipped bool, err error)
	// Resume resumes the sends in stale whose job is running and began
	// before begunBefore, and returns how many it resumed. Nil resumes
	// none.
	Resume func(ctx context.Context, stale map[string]bool, begunBefore time.Time) (int, error)
	// Lease is SendConfig.Lease; zero means DefaultSendLease.
	Lease  time.Duration
	Clock  holdfast.Clock
	Logger *slog.Logger
}

// Timeout implements river.Worker.
func (w *SendSweepWorker) Timeout(*river.Job[SendSweepArgs]) time.Duration { return 30 * time.Second }

// sweptStates are the states whose due sends need a job: "sending" too, for
// a send whose job ended without an outcome.
var sweptStates = []holdfast.SendState{holdfast.SendScheduled, holdfast.SendHeld, holdfast.SendSending}

// Work enqueues a job for every due send; sends that have one are skipped
// by the job's uniqueness.
func (w *SendSweepWorker) Work(ctx context.Context, _ *river.Job[SendSweepArgs]) error {
	due, err := w.Store.DueSends(ctx, sweptStates, w.Clock.Now(), sweepBatch)
	if err != nil {
		return fmt.Errorf("send sweep: %w", err)
	}
	now, lease := w.Clock.Now(), cmp.Or(w.Lease, DefaultSendLease)
	n := 0
	stale := map[string]bool{}
	for _, s := range due {
		skipped, err := w.Insert(ctx, s)
		if err != nil {
			return fmt.Errorf("send sweep: enqueue send %s: %w", s.ID, err)
		}
		if !skipped {
			n++
		} else if s.State == holdfast.SendSending && now.Sub(s.UpdatedAt) > lease {
			stale[s.ID] = true
		}
	}
	if n > 0 {
		w.Logger.InfoContext(ctx, "send sweep enqueued sends without a job", "sends", n)
	}
	if len(stale) == 0 || w.Resume == nil {
		return nil
	}
	resumed, err := w.Resume(ctx, stale, now.Add(-lease))
	if err != nil {
		return fmt.Errorf("send sweep: %w", err)
	}
	if resumed > 0 {
		w.Logger.InfoContext(ctx, "send sweep resumed sends whose attempt died", "sends", resumed)
	}
	return nil
}

// resume implements SendSweepWorker.Resume: among the running send jobs,
// it cancels those of a send in stale begun before begunBefore and
// enqueues a job that resumes each such send.
func (r *Runner) resume(ctx context.Context, stale map[string]bool, begunBefore time.Time) (int, error) {
	res, err := r.client.JobList(ctx, river.NewJobListParams().Kinds(SendArgs{}.Kind()).States(rivertype.JobStateRunning).First(sweepBatch))
	if err != nil {
		return 0, fmt.Errorf("list running send jobs: %w", err)
	}
	n := 0
	for _, j := range res.Jobs {
		var args SendArgs
		if err := json.Unmarshal(j.EncodedArgs, &args); err != nil || !stale[args.SendID] || j.AttemptedAt == nil || !j.AttemptedAt.Before(begunBefore) {
			continue
		}
		// Cancelled first: a crash before the insert leaves the send to
		// the next sweep, never two jobs that may run.
		if _, err := r.client.JobCancel(ctx, j.ID); err != nil {
			return n, fmt.Errorf("cancel dead job %d of send %s: %w", j.ID, args.SendID, err)
		}
		if _, err := r.client.Insert(ctx, SendArgs{SendID: args.SendID, Resume: j.ID}, nil); err != nil {
			return n, fmt.Errorf("enqueue the resumption of send %s: %w", args.SendID, err)
		}
		r.logger.WarnContext(ctx, "send: resuming a send whose attempt died", "send_id", args.SendID, "dead_job_id", j.ID, "attempted_by", j.AttemptedBy)
		n++
	}
	return n, nil
}

// Enqueue schedules the send job of s at its SendAt. A send that has a job
// already is left alone.
func (r *Runner) Enqueue(ctx context.Context, s *holdfast.Send) error {
	_, err := r.insert(ctx, s)
	return err
}

func (r *Runner) insert(ctx context.Context, s *holdfast.Send) (skipped bool, err error) {
	res, err := r.client.Insert(ctx, SendArgs{SendID: s.ID}, sendInsertOpts(s, time.Now()))
	if err != nil {
		return false, fmt.Errorf("enqueue send %s: %w", s.ID, err)
	}
	return res.UniqueSkippedAsDuplicate, nil
}

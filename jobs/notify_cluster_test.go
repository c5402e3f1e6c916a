package jobs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
)

// slowClaims is a node's store whose claims (pending → sending) take a
// while, as on a loaded database, each a random time: two workers grouping one owner's notices
// at once then interleave their claims.
type slowClaims struct {
	holdfast.Store
}

func (s slowClaims) ChangeNotice(ctx context.Context, id int64, c holdfast.NoticeChange) (*holdfast.NoticeRecord, error) {
	if c.To == holdfast.NoticeSending {
		time.Sleep(time.Duration(rand.N(50)) * time.Millisecond)
	}
	return s.Store.ChangeNotice(ctx, id, c)
}

// sentLog records the messages that went out, from every node.
type sentLog struct {
	mu       sync.Mutex
	messages map[string]int // per recipient
	notices  map[int64]int  // times each notice went out
}

func (l *sentLog) onSent(_ context.Context, s notify.Sent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages[s.Recipient]++
	for _, in := range s.Inboxes {
		l.notices[in.NoticeID]++
	}
}

// TestNotifyOneMessagePerOwnerAcrossNodes runs the notify jobs on two
// nodes (two stores and two River clients on one PostgreSQL schema), with
// several notices of each of a few owners enqueued from both: each owner
// gets exactly one message, with all of their notices, and no notice goes
// out twice. A per-node queue of one worker does not hold this: the two
// nodes' workers group one owner's notices at once and split them.
func TestNotifyOneMessagePerOwnerAcrossNodes(t *testing.T) {
	t.Parallel()
	const (
		owners    = 6
		perOwner  = 4
		nodeCount = 2
	)
	url, schema := pgtest.Schema(t)
	log := &sentLog{messages: map[string]int{}, notices: map[int64]int{}}
	mailer := &countingMailer{sent: map[string]int{}}
	links, err := notify.NewLinks([]byte(strings.Repeat("k", 32)), "https://h.example.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	var stores []holdfast.Store
	var runners []*jobs.Runner
	for i := range nodeCount {
		pst := pgtest.Open(t, url)
		if i == 0 {
			if err := jobs.MigratePostgres(t.Context(), pst.Pool(), schema, testLogger(t)); err != nil {
				t.Fatalf("MigratePostgres = %v", err)
			}
		}
		st := slowClaims{pst}
		n, err := notify.New(notify.Config{
			Store: st, Mailer: mailer, Links: links, From: "no-reply@h.example.test",
			GroupWait: 100 * time.Millisecond, OnSent: log.onSent, Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := jobs.NewPostgres(pst.Pool(), schema, pst, testLogger(t), jobs.WithNotify(jobs.NotifyConfig{Store: st, Notifier: n}))
		if err != nil {
			t.Fatalf("NewPostgres = %v", err)
		}
		stores, runners = append(stores, st), append(runners, r)
	}

	ctx := t.Context()
	now := time.Now().UTC()
	st := stores[0]
	var notices []*holdfast.Notice
	for o := range owners {
		for k := range perOwner {
			id := fmt.Sprintf("inb_cl_%d_%d", o, k)
			in := &holdfast.Inbox{ID: id, Email: fmt.Sprintf("box%d-%d@example.test", o, k), OwnerEmail: fmt.Sprintf("owner%d@example.test", o),
				Provider: holdfast.ProviderMicrosoft, State: holdfast.StateNeedsReconnect, Reason: "invalid_grant",
				Credentials: []byte("x"), Since: now, CreatedAt: now, UpdatedAt: now}
			if err := st.CreateInbox(ctx, in, holdfast.Event{InboxID: id, At: now, NewState: in.State, Cause: holdfast.CauseAPI}); err != nil {
				t.Fatal(err)
			}
			no := &holdfast.Notice{InboxID: id, Episode: 1, Reason: "invalid_grant", At: now.Add(-time.Minute)}
			if err := st.AppendNotice(ctx, no); err != nil {
				t.Fatal(err)
			}
			notices = append(notices, no)
		}
	}
	for _, r := range runners {
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Stop(context.Background()) })
	}
	// Each notice's job from one node or the other, in the order the
	// owners' notices were decided, while both nodes work.
	for i, no := range notices {
		if err := runners[i%nodeCount].EnqueueNotice(ctx, no); err != nil {
			t.Fatalf("EnqueueNotice = %v", err)
		}
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		recs, err := st.NoticeRecords(ctx, holdfast.NoticeFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		done := len(recs) == len(notices)
		for _, rec := range recs {
			done = done && rec.Status == holdfast.NoticeSent
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notices not all sent in time: %+v", recs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // any duplicate would go out by now

	log.mu.Lock()
	defer log.mu.Unlock()
	for o := range owners {
		owner := fmt.Sprintf("owner%d@example.test", o)
		if got := log.messages[owner]; got != 1 {
			t.Errorf("%d messages to %s; want 1 (its %d notices grouped)", got, owner, perOwner)
		}
		if got := mailer.count(owner); got != 1 {
			t.Errorf("mailer saw %d messages to %s; want 1", got, owner)
		}
	}
	for _, no := range notices {
		if got := log.notices[no.ID]; got != 1 {
			t.Errorf("notice %d went out %d times; want once", no.ID, got)
		}
	}
}

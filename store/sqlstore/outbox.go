package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// announced runs change and appends the events announce returns for what
// it stored, in one transaction: the events commit if and only if the
// change does. With no announce, change runs on its own.
func announced[T any](ctx context.Context, s *Store, change func(Executor) (T, error), announce holdfast.Announce[T]) (T, error) {
	if announce == nil {
		return change(s.db)
	}
	var out T
	err := s.db.Tx(ctx, func(tx Executor) error {
		v, err := change(tx)
		if err != nil {
			return err
		}
		evs, err := announce(v)
		if err != nil {
			return fmt.Errorf("announce: %w", err)
		}
		if err := s.appendOutbox(ctx, tx, evs); err != nil {
			return err
		}
		out = v
		return nil
	})
	return out, err
}

// appendOutbox appends evs to the webhook outbox within tx. A zero
// CreatedAt is now.
func (s *Store) appendOutbox(ctx context.Context, tx Executor, evs []holdfast.OutboxEvent) error {
	for i := range evs {
		ev := &evs[i]
		if ev.ID == "" || ev.Type == "" {
			return holdfast.Invalidf("", "outbox event needs an id and a type")
		}
		if _, err := tx.Exec(ctx, queryAppendOutbox, ev.ID, ev.Type, nonNilBytes(ev.Payload),
			s.time(s.orNow(ev.CreatedAt)), ev.WebhookID, ev.Replay); err != nil {
			return fmt.Errorf("append event %s to the outbox: %w", ev.ID, s.conflict(err))
		}
	}
	return nil
}

// OutboxEvents returns at most n unrelayed events (zero or less means
// 100, at most 1000), in the order they were appended.
func (s *Store) OutboxEvents(ctx context.Context, n int) ([]*holdfast.OutboxEvent, error) {
	out, err := all(ctx, s.db, scanOutboxEvent, queryUnrelayedOutbox, limit(n))
	return out, wrapf(err, "unrelayed outbox events")
}

// MarkRelayed sets RelayedAt of the events with the given Seqs (a zero at
// means now), in one statement per thousand; events relayed already keep
// their time.
func (s *Store) MarkRelayed(ctx context.Context, seqs []int64, at time.Time) error {
	stamp := s.time(s.orNow(at))
	err := s.db.Tx(ctx, func(tx Executor) error {
		for chunk := range slices.Chunk(seqs, 1000) {
			params := make([]string, len(chunk))
			args := []any{stamp}
			for i, seq := range chunk {
				params[i] = "$" + strconv.Itoa(len(args)+1)
				args = append(args, seq)
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(queryMarkRelayed, strings.Join(params, ", ")), args...); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapf(err, "mark %d outbox events relayed", len(seqs))
}

// PruneOutbox deletes the events relayed before before, at most
// s.pruneBatchSize per statement, each its own transaction, and returns
// how many it deleted. Unrelayed events are never deleted.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	before = ceilMicro(before)
	var total int64
	for {
		n, err := s.db.Exec(ctx, queryPruneOutbox, s.time(before), s.pruneBatchSize)
		if err != nil {
			return total, fmt.Errorf("prune outbox events relayed before %s: %w", before.UTC().Format(time.RFC3339Nano), err)
		}
		total += n
		if n < int64(s.pruneBatchSize) {
			return total, nil
		}
	}
}

// scanOutboxEvent reads one row of outboxColumns.
func scanOutboxEvent(r Row) (*holdfast.OutboxEvent, error) {
	var ev holdfast.OutboxEvent
	err := r.Scan(&ev.Seq, &ev.ID, &ev.Type, &ev.Payload, timeDest(&ev.CreatedAt), &ev.WebhookID, &ev.Replay, timeDest(&ev.RelayedAt))
	return &ev, err
}

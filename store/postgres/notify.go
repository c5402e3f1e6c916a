package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
)

// The cluster's notification channel: LISTEN/NOTIFY on one channel per
// schema, so that two holdfast schemas on one database do not hear each
// other (cluster.ChannelBus).
const (
	// channelPrefix starts the channel's name, followed by the schema.
	channelPrefix = "holdfast_cluster."
	// maxChannel is the longest channel name PostgreSQL takes
	// (NAMEDATALEN - 1 bytes); a longer one ends with a hash of the
	// schema instead.
	maxChannel = 63
	// ListenerApplication is the application_name of the listener's
	// connection, followed by the schema (cut to fit): operators, and
	// tests, tell it in pg_stat_activity by it.
	ListenerApplication = "holdfast listen "
	// connectTimeout bounds the listener's connection and its LISTEN.
	connectTimeout = 10 * time.Second
	// keepAlive is how long the listener waits for a notification before
	// it pings its connection.
	keepAlive = 30 * time.Second
)

// The SQL Notify and Listen run. queryListen takes the channel as a
// quoted identifier (%s).
const (
	queryNotify = `SELECT pg_notify($1, $2)`
	queryListen = `LISTEN %s`
)

// Channel returns the name of the store's notification channel.
func (s *Store) Channel() string {
	ch := channelPrefix + s.schema
	if len(ch) <= maxChannel {
		return ch
	}
	h := fnv.New64a()
	h.Write([]byte(s.schema))
	sum := fmt.Sprintf("%016x", h.Sum64())
	return ch[:maxChannel-len(sum)-1] + "~" + sum
}

// Notify sends payload (at most 8000 bytes) to every listener of the
// store's channel (Listen), through the pool, within ctx.
func (s *Store) Notify(ctx context.Context, payload string) error {
	if _, err := s.pool.Exec(ctx, queryNotify, s.Channel(), payload); err != nil {
		return fmt.Errorf("notify on %s: %w", s.Channel(), err)
	}
	return nil
}

// Listen opens a connection of its own (outside the pool, with the pool's
// settings and application_name ListenerApplication+schema), LISTENs on
// the store's channel, calls listening, then deliver with each payload
// received, in order, until ctx ends or the connection fails. It closes
// the connection and returns the error, ctx's once ctx ended. Connecting
// and the LISTEN are bounded by a timeout; waiting is not.
func (s *Store) Listen(ctx context.Context, listening func(), deliver func(payload string)) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	app := ListenerApplication + s.schema
	if len(app) > maxChannel {
		app = app[:maxChannel]
	}
	cfg.RuntimeParams["application_name"] = app
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return fmt.Errorf("listen on %s: connect: %w", s.Channel(), err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(cctx, fmt.Sprintf(queryListen, pgx.Identifier{s.Channel()}.Sanitize())); err != nil {
		return fmt.Errorf("listen on %s: %w", s.Channel(), err)
	}
	listening()
	for {
		// Waiting is cut every keepAlive to check the connection, which
		// may have died without a word (a half-open TCP connection).
		wctx, cancel := context.WithTimeout(ctx, keepAlive)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && wctx.Err() != nil && !conn.IsClosed() {
			pctx, cancel := context.WithTimeout(ctx, connectTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("listen on %s: %w", s.Channel(), err)
		}
		deliver(n.Payload)
	}
}

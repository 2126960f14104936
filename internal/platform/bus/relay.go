package bus

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dgov/dgov/internal/platform/db"
)

// RelayOptions tunes a Relay; zero fields take the defaults.
type RelayOptions struct {
	// BatchSize is how many rows one round reads and publishes (default 256).
	BatchSize int
	// PollInterval is how often the relay looks for rows without being nudged (default 1s):
	// it picks up rows committed by other nodes and covers a lost nudge.
	PollInterval time.Duration
	// AckTimeout bounds the wait for JetStream's acknowledgements of one batch (default 10s).
	AckTimeout time.Duration
	// Retention is how long published rows stay in the outbox (default 7 days).
	Retention time.Duration
	// ProcessedRetention is how long processed_events keeps an id (default 30 days, the
	// stream's default MaxAge). It must not be shorter than the stream's MaxAge.
	ProcessedRetention time.Duration
	// PurgeInterval is how often old rows are purged (default 1 hour).
	PurgeInterval time.Duration
	// Stream configures the stream the relay ensures at start.
	Stream StreamOptions
	// Logger receives the relay's errors (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests move it to check purging.
	Now func() time.Time
}

// Relay moves committed outbox rows to JetStream. See the package comment for its guarantees.
type Relay struct {
	d         *db.DB
	js        jetstream.JetStream
	o         RelayOptions
	log       *slog.Logger
	lastPurge time.Time
}

// NewRelay returns a relay from d's outbox to js. Start it with Run.
func NewRelay(d *db.DB, js jetstream.JetStream, opts RelayOptions) *Relay {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 10 * time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.ProcessedRetention <= 0 {
		opts.ProcessedRetention = opts.Stream.StreamConfig().MaxAge
	}
	if opts.PurgeInterval <= 0 {
		opts.PurgeInterval = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Relay{d: d, js: js, o: opts, log: log.With("component", "outbox-relay")}
}

// Run ensures the stream, then relays until ctx is cancelled, when it finishes the batch in
// hand and returns nil. It returns an error only when the stream cannot be ensured at start;
// later failures (NATS or the database away) are logged and retried with backoff.
// Call Run once per Relay.
func (r *Relay) Run(ctx context.Context) error {
	if _, err := EnsureStream(ctx, r.js, r.o.Stream); err != nil {
		return err
	}
	nudged, unlisten := listenNudges()
	defer unlisten()
	timer := time.NewTimer(r.o.PollInterval)
	defer timer.Stop()
	var backoff time.Duration
	for {
		n, err := r.relayBatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := r.o.PollInterval
		switch {
		case err != nil:
			backoff = min(max(2*backoff, 100*time.Millisecond), 30*time.Second)
			wait = backoff
			r.log.Warn("relay outbox to JetStream", "err", err, "retry_in", backoff)
		case n == r.o.BatchSize:
			backoff = 0
			continue // more rows are waiting
		default:
			backoff = 0
			if err := r.maybePurge(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("purge outbox", "err", err)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-nudged:
			if err != nil {
				// Failing: keep the backoff rather than hammering NATS on every commit.
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			}
		case <-timer.C:
		}
	}
}

// outboxRow is one unpublished event.
type outboxRow struct {
	seq     int64
	id      string
	subject string
	payload []byte
	header  nats.Header
}

// relayBatch publishes and marks one batch, returning how many rows it marked published.
// Database work runs on a context that outlives ctx by a bounded time, so what JetStream has
// acknowledged is recorded even when the relay is being stopped.
func (r *Relay) relayBatch(ctx context.Context) (int, error) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.AckTimeout+30*time.Second)
	defer cancel()
	if r.d.Dialect != db.Postgres {
		return r.relayRows(ctx, bctx, r.d)
	}
	var n int
	var sendErr error
	err := r.d.InTx(bctx, func(tx *db.Tx) error {
		n, sendErr = 0, nil
		var name string
		err := tx.QueryRow(bctx, `SELECT name FROM outbox_relay WHERE name = 'relay' FOR UPDATE SKIP LOCKED`).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // another node's relay holds the lock; try again on the next wake-up
		}
		if err != nil {
			return fmt.Errorf("lock outbox_relay: %w", err)
		}
		n, sendErr = r.relayRows(ctx, bctx, tx)
		if n == 0 && sendErr != nil {
			return sendErr
		}
		return nil // commit the marks of what was acknowledged, even if the rest failed
	})
	if err != nil {
		return 0, err
	}
	return n, sendErr
}

// relayRows reads pending rows through q, publishes them and marks the acknowledged prefix.
func (r *Relay) relayRows(ctx, bctx context.Context, q db.Querier) (int, error) {
	rows, err := r.pending(bctx, q)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	acked, sendErr := r.send(ctx, rows)
	if acked > 0 {
		if err := r.markPublished(bctx, q, rows[:acked]); err != nil {
			return 0, errors.Join(sendErr, err)
		}
	}
	return acked, sendErr
}

// pending reads up to BatchSize unpublished rows in seq order.
func (r *Relay) pending(ctx context.Context, q db.Querier) ([]outboxRow, error) {
	rs, err := q.Query(ctx, `SELECT seq, id, subject, payload, headers FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?`, r.o.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rs.Close()
	var out []outboxRow
	for rs.Next() {
		var row outboxRow
		var headers sql.NullString
		if err := rs.Scan(&row.seq, &row.id, &row.subject, &row.payload, &headers); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		if headers.Valid && headers.String != "" {
			if err := json.Unmarshal([]byte(headers.String), &row.header); err != nil {
				return nil, fmt.Errorf("outbox row %d (event %s): headers: %w", row.seq, row.id, err)
			}
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// send publishes rows asynchronously and waits for the acknowledgements in order, returning the
// length of the acknowledged prefix: only that prefix may be marked, the rest goes again (and
// JetStream drops whatever of it it already has).
func (r *Relay) send(ctx context.Context, rows []outboxRow) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(rows))
	var pubErr error
	for _, row := range rows {
		h := nats.Header{}
		for k, v := range row.header {
			h[k] = v
		}
		m := &nats.Msg{Subject: row.subject, Data: row.payload, Header: h}
		f, err := r.js.PublishMsgAsync(m, jetstream.WithMsgID(row.id), jetstream.WithExpectStream(StreamName))
		if err != nil {
			pubErr = fmt.Errorf("publish event %s to %s: %w", row.id, row.subject, err)
			break
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(r.o.AckTimeout)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return i, fmt.Errorf("publish event %s to %s: %w", rows[i].id, rows[i].subject, err)
		case <-timeout.C:
			return i, fmt.Errorf("publish event %s to %s: no acknowledgement within %s", rows[i].id, rows[i].subject, r.o.AckTimeout)
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	return len(futures), pubErr
}

func (r *Relay) markPublished(ctx context.Context, q db.Querier, rows []outboxRow) error {
	args := make([]any, 0, len(rows)+1)
	args = append(args, db.Now(r.o.Now()))
	for _, row := range rows {
		args = append(args, row.seq)
	}
	marks := strings.Repeat("?,", len(rows))
	if _, err := q.Exec(ctx, `UPDATE outbox SET published_at = ? WHERE seq IN (`+marks[:len(marks)-1]+`)`, args...); err != nil {
		return fmt.Errorf("mark %d outbox rows published: %w", len(rows), err)
	}
	return nil
}

func (r *Relay) maybePurge(ctx context.Context) error {
	now := r.o.Now()
	if !r.lastPurge.IsZero() && now.Sub(r.lastPurge) < r.o.PurgeInterval {
		return nil
	}
	r.lastPurge = now
	return r.purge(ctx, now)
}

// purgeChunk bounds one DELETE so that a purge after a busy week does not hold SQLite's single
// writer for long.
const purgeChunk = 5000

// purge deletes published rows older than Retention and processed ids older than
// ProcessedRetention.
func (r *Relay) purge(ctx context.Context, now time.Time) error {
	for _, p := range []struct {
		what, sql string
		before    time.Time
	}{
		{"outbox", `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE published_at IS NOT NULL AND published_at < ? LIMIT ?)`, now.Add(-r.o.Retention)},
		{"processed_events", `DELETE FROM processed_events WHERE (consumer, event_id) IN (SELECT consumer, event_id FROM processed_events WHERE processed_at < ? LIMIT ?)`, now.Add(-r.o.ProcessedRetention)},
	} {
		for {
			res, err := r.d.Exec(ctx, p.sql, db.Now(p.before), purgeChunk)
			if err != nil {
				return fmt.Errorf("purge %s: %w", p.what, err)
			}
			if n, err := res.RowsAffected(); err != nil || n < purgeChunk {
				break
			}
		}
	}
	return nil
}

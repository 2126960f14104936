// Package bus carries dgov's events: a transactional outbox in the database, relayed to NATS
// JetStream, and durable consumers on the other side.
//
// # Publishing
//
// An engine publishes inside the transaction that changes its own rows:
//
//	err := d.InTx(ctx, func(tx *db.Tx) error {
//		if err := store.SaveApplication(ctx, tx, app); err != nil {
//			return err
//		}
//		_, err := bus.Publish(ctx, tx, "dgov.service.application_submitted", app)
//		return err
//	})
//
// Publish only inserts a row into the table outbox, so the event exists if and only if the
// business change committed: no event for a rolled-back change, no change without its event.
// After the commit it nudges the Relay, which reads unpublished rows in seq order, publishes each
// to the JetStream stream DGOV (subjects dgov.<engine>.<event>) with the Nats-Msg-Id header set to
// the event id, waits for the stream's acknowledgements and only then sets published_at.
// A relay that dies between the publish and the update publishes the same rows again when it
// restarts; JetStream drops them as duplicates within the stream's Duplicates window (2 hours).
//
// # Several nodes on one database
//
// On PostgreSQL every node may run a Relay. Each batch runs in a transaction that first locks the
// single row of outbox_relay with FOR UPDATE SKIP LOCKED: the relay that gets it publishes and
// marks its batch, the others find the row locked, skip the round and try again on their next
// wake-up. So one relay publishes at a time and events leave in seq order; a relay that dies
// releases the lock with its connection. (SKIP LOCKED on the outbox rows themselves would let two
// relays publish interleaved batches out of order, which is why the lock is on one row.)
// On SQLite the database belongs to one process and its single writer already serialises; run one
// Relay per database there. Order is seq order: events of one transaction keep their order, but on
// PostgreSQL two concurrent transactions may commit in the other order of their seq values, and
// consumers must not assume a total order across transactions.
//
// # Consuming: exactly-once effect on at-least-once delivery
//
// Subscribe runs a durable pull consumer with explicit acks: a message is acknowledged after the
// handler returns nil and redelivered (Nak with a growing delay) when it returns an error, panics,
// or the node dies first. Delivery is therefore at least once. A handler makes its effect happen
// exactly once with HandleOnce, which records (consumer, event id) in processed_events in the same
// transaction as the effect: a redelivered event finds its id there and is skipped, and an effect
// that rolled back left no id behind, so the retry does it again.
//
//	bus.Subscribe(ctx, js, "license-on-approval", "dgov.workflow.approved", func(ctx context.Context, ev bus.Event) error {
//		return bus.HandleOnce(ctx, d, "license-on-approval", ev, func(tx *db.Tx) error {
//			return licenses.Issue(ctx, tx, ev)
//		})
//	})
//
// Published outbox rows are purged after RelayOptions.Retention (7 days), processed_events after
// RelayOptions.ProcessedRetention (30 days, the stream's MaxAge: an older event can no longer be
// redelivered, so its id is no longer needed).
package bus

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates the tables outbox, outbox_relay and processed_events.
var Migrations = db.Migrations("bus", migrationFiles, "migrations")

const (
	// SubjectPrefix starts every dgov subject: dgov.<engine>.<event>.
	SubjectPrefix = "dgov."
	// TimeHeader carries the event's time (RFC 3339, UTC) on the wire.
	TimeHeader = "Dgov-Time"
	// msgIDHeader is JetStream's de-duplication header (jetstream.MsgIDHeader).
	msgIDHeader = "Nats-Msg-Id"
)

// Event is one event as a consumer sees it. Data is the JSON the publisher's payload encoded to.
type Event struct {
	ID      string          `json:"id"`
	Subject string          `json:"subject"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// Decode unmarshals the event's data into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode event %s (%s): %w", e.ID, e.Subject, err)
	}
	return nil
}

// ValidSubject checks that subject is dgov.<engine>.<event>[.<more>]: at least three tokens,
// none empty, no wildcards or spaces. Publish checks it so that a bad subject fails the business
// transaction rather than sitting in the outbox where the relay could never deliver it.
func ValidSubject(subject string) error {
	if !strings.HasPrefix(subject, SubjectPrefix) {
		return fmt.Errorf("event subject %q: must start with %q", subject, SubjectPrefix)
	}
	tokens := strings.Split(subject, ".")
	if len(tokens) < 3 {
		return fmt.Errorf("event subject %q: want dgov.<engine>.<event>", subject)
	}
	for _, tok := range tokens {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return fmt.Errorf("event subject %q: empty token, wildcard or space", subject)
		}
	}
	return nil
}

// Publish records an event with payload encoded as JSON in the caller's transaction and returns
// its id. The event reaches NATS only if tx commits; the relay is nudged right after the commit.
func Publish(ctx context.Context, tx *db.Tx, subject string, payload any) (string, error) {
	if err := ValidSubject(subject); err != nil {
		return "", err
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("publish %s: encode payload: %w", subject, err)
	}
	id := db.NewID()
	now := db.Now(time.Now())
	// headers holds what the relay puts on the wire beside Nats-Msg-Id, so that headers added
	// later (trace context, acting subject) need no schema change.
	headers, err := json.Marshal(map[string][]string{TimeHeader: {now.Format(time.RFC3339Nano)}})
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (id, subject, payload, headers, created_at) VALUES (?, ?, ?, ?, ?)`,
		id, subject, data, string(headers), now); err != nil {
		return "", fmt.Errorf("publish %s: insert outbox row: %w", subject, err)
	}
	tx.AfterCommit(nudgeRelays)
	return id, nil
}

// wake is the set of running relays' wake-up channels. A *db.Tx does not say which database it
// belongs to, so a commit nudges every relay of the process; a relay of another database just
// finds nothing to do. It is a wake-up signal only: correctness never depends on it, the poll
// interval covers a lost nudge.
var wake = struct {
	sync.Mutex
	chans map[chan struct{}]struct{}
}{chans: map[chan struct{}]struct{}{}}

func nudgeRelays() {
	wake.Lock()
	defer wake.Unlock()
	for c := range wake.chans {
		select {
		case c <- struct{}{}:
		default: // already nudged; nudges coalesce
		}
	}
}

func listenNudges() (chan struct{}, func()) {
	c := make(chan struct{}, 1)
	wake.Lock()
	wake.chans[c] = struct{}{}
	wake.Unlock()
	return c, func() {
		wake.Lock()
		delete(wake.chans, c)
		wake.Unlock()
	}
}

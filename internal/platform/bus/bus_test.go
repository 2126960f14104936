package bus

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

func TestValidSubject(t *testing.T) {
	for _, tc := range []struct {
		subject string
		ok      bool
	}{
		{"dgov.workflow.approved", true},
		{"dgov.workflow.task.created", true},
		{"dgov.workflow", false},
		{"dgov..approved", false},
		{"other.workflow.approved", false},
		{"dgov.workflow.*", false},
		{"dgov.workflow.>", false},
		{"dgov.work flow.approved", false},
		{"dgov.workflow.approved.", false},
	} {
		if err := ValidSubject(tc.subject); (err == nil) != tc.ok {
			t.Errorf("ValidSubject(%q) = %v, want ok=%v", tc.subject, err, tc.ok)
		}
	}
}

func TestCommittedEventArrivesExactlyOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		n := startNATS(t, filepath.Join(t.TempDir(), "nats"))
		runRelay(t, d, n.js, RelayOptions{})
		rec := newRecorder(d, "once")
		sub := subscribe(t, n.js, "once", "dgov.test.>", rec)

		before := time.Now().Add(-time.Second)
		id := submit(t, d, "张三")
		waitQuiet(t, d, sub, "once", 1)

		if got := rec.count(id); got != 1 {
			t.Fatalf("event %s delivered %d times, want 1", id, got)
		}
		rec.mu.Lock()
		ev := rec.events[id]
		rec.mu.Unlock()
		if ev.Subject != "dgov.test.submitted" || ev.Time.Before(before) || ev.Time.After(time.Now()) {
			t.Fatalf("event %+v", ev)
		}
		if m := decode(t, ev); m["name"] != "张三" || m["application"] == "" {
			t.Fatalf("payload %s", ev.Data)
		}
		var published int
		if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM outbox WHERE id = ? AND published_at IS NOT NULL`, id).Scan(&published); err != nil || published != 1 {
			t.Fatalf("outbox row not marked published: %d %v", published, err)
		}
	}, Migrations, testSource)
}

func TestRolledBackEventNeverArrives(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		n := startNATS(t, filepath.Join(t.TempDir(), "nats"))
		runRelay(t, d, n.js, RelayOptions{})
		rec := newRecorder(d, "rollback")
		sub := subscribe(t, n.js, "rollback", "dgov.test.>", rec)

		boom := errors.New("business rule refused")
		var lost string
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO applications (id, name) VALUES (?, ?)`, "app-1", "refused"); err != nil {
				return err
			}
			var err error
			if lost, err = Publish(ctx, tx, "dgov.test.submitted", map[string]string{"name": "refused"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) || lost == "" {
			t.Fatalf("InTx: %v (event %q)", err, lost)
		}
		// A committed event afterwards: once it has arrived, the relay has gone past the point
		// where the rolled-back one would have been.
		marker := submit(t, d, "accepted")
		waitQuiet(t, d, sub, "rollback", 1)
		if rec.count(marker) != 1 || rec.count(lost) != 0 {
			t.Fatalf("deliveries: marker %d, rolled back %d", rec.count(marker), rec.count(lost))
		}
		if got := streamMsgs(t, n.js); got != 1 {
			t.Fatalf("stream holds %d messages, want 1", got)
		}
		var rows int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&rows); err != nil || rows != 1 {
			t.Fatalf("outbox rows %d %v, want 1", rows, err)
		}
	}, Migrations, testSource)
}

// TestRelayCrashAndRestart: events committed while no relay runs; a relay publishes part of
// them and "crashes" before marking them; a new relay publishes everything. JetStream drops the
// re-published ones and HandleOnce would absorb any redelivery: every event has exactly one effect.
func TestRelayCrashAndRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		n := startNATS(t, filepath.Join(t.TempDir(), "nats"))
		if _, err := EnsureStream(ctx, n.js, StreamOptions{}); err != nil {
			t.Fatal(err)
		}
		const total = 60
		var ids []string
		for i := range total {
			ids = append(ids, submit(t, d, fmt.Sprintf("app %d", i)))
		}

		// The crash: one batch goes to JetStream, and the relay dies before marking it.
		crashed := NewRelay(d, n.js, RelayOptions{BatchSize: 25})
		rows, err := crashed.pending(ctx, d)
		if err != nil || len(rows) != 25 {
			t.Fatalf("pending: %d rows, %v", len(rows), err)
		}
		if acked, err := crashed.send(ctx, rows); err != nil || acked != 25 {
			t.Fatalf("send: %d acked, %v", acked, err)
		}
		if got := unpublished(t, d); got != total {
			t.Fatalf("%d unpublished rows after the crash, want %d", got, total)
		}
		if got := streamMsgs(t, n.js); got != 25 {
			t.Fatalf("stream holds %d messages after the crash, want 25", got)
		}

		rec := newRecorder(d, "crash")
		sub := subscribe(t, n.js, "crash", "dgov.test.>", rec)
		runRelay(t, d, n.js, RelayOptions{BatchSize: 10})
		waitQuiet(t, d, sub, "crash", total)

		if got := streamMsgs(t, n.js); got != total {
			t.Fatalf("stream holds %d messages, want %d: JetStream de-duplication failed", got, total)
		}
		deliveries, order := rec.snapshot()
		for _, id := range ids {
			if deliveries[id] != 1 {
				t.Errorf("event %s delivered %d times, want 1", id, deliveries[id])
			}
		}
		if !slices.Equal(order, ids) {
			t.Errorf("events arrived out of commit order")
		}
	}, Migrations, testSource)
}

// TestEmbeddedRestartKeepsConsumerPosition: the server restarts on the same store; the stream
// and the durable consumer survive, and the consumer gets only what it had not acknowledged.
func TestEmbeddedRestartKeepsConsumerPosition(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		store := filepath.Join(t.TempDir(), "nats")

		n1 := startNATS(t, store)
		stopRelay := runRelay(t, d, n1.js, RelayOptions{})
		rec1 := newRecorder(d, "restart")
		sub1 := subscribe(t, n1.js, "restart", "dgov.test.>", rec1)
		var first []string
		for i := range 5 {
			first = append(first, submit(t, d, fmt.Sprintf("before %d", i)))
		}
		waitQuiet(t, d, sub1, "restart", 5)
		waitFor(t, "acks to reach the server", func() bool {
			ci, err := sub1.Info(ctx)
			return err == nil && ci.AckFloor.Stream == 5
		})
		sub1.Stop()
		stopRelay()
		n1.Close()

		// Committed while NATS is down: they wait in the outbox.
		var second []string
		for i := range 5 {
			second = append(second, submit(t, d, fmt.Sprintf("during %d", i)))
		}

		n2 := startNATS(t, store)
		cons, err := n2.js.Consumer(ctx, StreamName, "restart")
		if err != nil {
			t.Fatalf("durable consumer lost across restart: %v", err)
		}
		if ci, err := cons.Info(ctx); err != nil || ci.AckFloor.Stream != 5 {
			t.Fatalf("consumer after restart: %+v %v", ci, err)
		}
		runRelay(t, d, n2.js, RelayOptions{})
		rec2 := newRecorder(d, "restart")
		sub2 := subscribe(t, n2.js, "restart", "dgov.test.>", rec2)
		waitQuiet(t, d, sub2, "restart", 10)

		deliveries, order := rec2.snapshot()
		for _, id := range first {
			if deliveries[id] != 0 {
				t.Errorf("event %s from before the restart delivered again", id)
			}
		}
		if !slices.Equal(order, second) {
			t.Errorf("after restart got %v, want %v", order, second)
		}
		if got := streamMsgs(t, n2.js); got != 10 {
			t.Fatalf("stream holds %d messages, want 10", got)
		}
	}, Migrations, testSource)
}

// TestHandlerErrorIsRetried: a failing handler gets the event again, and the effect happens once.
func TestHandlerErrorIsRetried(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		n := startNATS(t, filepath.Join(t.TempDir(), "nats"))
		runRelay(t, d, n.js, RelayOptions{})
		rec := newRecorder(d, "retry")
		var mu sync.Mutex
		failed := map[string]bool{}
		rec.fail = func(ev Event) error {
			mu.Lock()
			defer mu.Unlock()
			if !failed[ev.ID] {
				failed[ev.ID] = true
				return errors.New("downstream unavailable")
			}
			return nil
		}
		sub := subscribe(t, n.js, "retry", "dgov.test.>", rec)
		id := submit(t, d, "flaky")
		waitQuiet(t, d, sub, "retry", 1)
		if got := rec.count(id); got != 2 {
			t.Fatalf("event delivered %d times, want 2 (one failure, one success)", got)
		}
	}, Migrations, testSource)
}

// TestHandleOnceSkipsProcessed: the second call for one event does nothing; a failed effect
// leaves no record, so a retry runs it.
func TestHandleOnceSkipsProcessed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		ev := Event{ID: db.NewID(), Subject: "dgov.test.submitted"}
		effect := func(tx *db.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id) VALUES (?, ?)`, "c", ev.ID)
			return err
		}
		boom := errors.New("boom")
		if err := HandleOnce(ctx, d, "c", ev, func(tx *db.Tx) error {
			if err := effect(tx); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("want boom, got %v", err)
		}
		for range 3 {
			if err := HandleOnce(ctx, d, "c", ev, effect); err != nil {
				t.Fatal(err)
			}
		}
		if got := effects(t, d, "c"); got != 1 {
			t.Fatalf("%d effects, want 1", got)
		}
		// Another consumer has its own record of the same event.
		if err := HandleOnce(ctx, d, "other", ev, func(*db.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM processed_events WHERE event_id = ?`, ev.ID).Scan(&n); err != nil || n != 2 {
			t.Fatalf("processed_events rows %d %v, want 2", n, err)
		}
	}, Migrations, testSource)
}

// TestTwoRelays: two relays (two dgov nodes) on one database. On PostgreSQL the outbox_relay
// lock lets one publish at a time; on SQLite they overlap and JetStream drops the duplicates.
// Either way each event arrives once, in commit order.
func TestTwoRelays(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		n := startNATS(t, filepath.Join(t.TempDir(), "nats"))
		rec := newRecorder(d, "two")
		sub := subscribe(t, n.js, "two", "dgov.test.>", rec)
		runRelay(t, d, n.js, RelayOptions{BatchSize: 7, PollInterval: 50 * time.Millisecond})
		runRelay(t, d, n.js, RelayOptions{BatchSize: 7, PollInterval: 50 * time.Millisecond})
		const total = 100
		var ids []string
		for i := range total {
			ids = append(ids, submit(t, d, fmt.Sprintf("app %d", i)))
		}
		waitQuiet(t, d, sub, "two", total)
		deliveries, order := rec.snapshot()
		for _, id := range ids {
			if deliveries[id] != 1 {
				t.Errorf("event %s delivered %d times", id, deliveries[id])
			}
		}
		if !slices.Equal(order, ids) {
			t.Errorf("events arrived out of commit order")
		}
		if got := streamMsgs(t, n.js); got != total {
			t.Fatalf("stream holds %d messages, want %d", got, total)
		}
	}, Migrations, testSource)
}

func TestPurge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		n := startNATS(t, filepath.Join(t.TempDir(), "nats"))
		if _, err := EnsureStream(ctx, n.js, StreamOptions{}); err != nil {
			t.Fatal(err)
		}
		published := submit(t, d, "old")
		r := NewRelay(d, n.js, RelayOptions{})
		if got, err := r.relayBatch(ctx); err != nil || got != 1 {
			t.Fatalf("relay batch: %d %v", got, err)
		}
		waiting := submit(t, d, "unpublished")
		if err := HandleOnce(ctx, d, "c", Event{ID: published}, func(*db.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		count := func(q string) int {
			var n int
			if err := d.QueryRow(ctx, q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// A day later nothing is old enough to go.
		if err := r.purge(ctx, time.Now().Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if count(`SELECT COUNT(*) FROM outbox`) != 2 || count(`SELECT COUNT(*) FROM processed_events`) != 1 {
			t.Fatal("purged too early")
		}
		// Eight days on the published row goes; the unpublished one stays however old.
		if err := r.purge(ctx, time.Now().Add(8*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		var left string
		if err := d.QueryRow(ctx, `SELECT id FROM outbox`).Scan(&left); err != nil || left != waiting {
			t.Fatalf("outbox after purge: %q %v, want only %s", left, err, waiting)
		}
		if count(`SELECT COUNT(*) FROM processed_events`) != 1 {
			t.Fatal("processed id purged before the stream's MaxAge")
		}
		if err := r.purge(ctx, time.Now().Add(31*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if count(`SELECT COUNT(*) FROM processed_events`) != 0 || count(`SELECT COUNT(*) FROM outbox`) != 1 {
			t.Fatal("processed_events not purged after 31 days, or unpublished row lost")
		}
	}, Migrations, testSource)
}

func TestStartEmbeddedListen(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if u := srv.ClientURL(); u != "" {
		t.Errorf("default server listens at %s; it must open no port", u)
	}
	srv.Shutdown()

	srv, err = StartEmbedded(EmbeddedOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := JetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureStream(context.Background(), js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), "dgov.test.tcp", []byte(`{}`), jetstream.WithMsgID("x")); err != nil {
		t.Fatal(err)
	}
}

// TestRelayStepsAsideWhileLocked: on PostgreSQL a relay finds outbox_relay locked by another
// node's batch and publishes nothing, then takes over once the lock is gone.
func TestRelayStepsAsideWhileLocked(t *testing.T) {
	d := dbtest.Postgres(t, Migrations, testSource)
	ctx := context.Background()
	n := startNATS(t, filepath.Join(t.TempDir(), "nats"))
	if _, err := EnsureStream(ctx, n.js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	submit(t, d, "waiting")
	other, err := d.W.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, `SELECT name FROM outbox_relay FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	r := NewRelay(d, n.js, RelayOptions{})
	if got, err := r.relayBatch(ctx); err != nil || got != 0 {
		t.Fatalf("relay beside a locked outbox_relay: %d rows, %v; want 0, nil", got, err)
	}
	if got := streamMsgs(t, n.js); got != 0 {
		t.Fatalf("stream holds %d messages while another relay held the lock", got)
	}
	if err := other.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got, err := r.relayBatch(ctx); err != nil || got != 1 {
		t.Fatalf("relay after the lock is gone: %d rows, %v; want 1", got, err)
	}
}

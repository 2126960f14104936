package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// TestExternalNATS runs the outbox against an external NATS with JetStream, as a node with
// DGOV_NATS_URL does: DGOV_TEST_NATS_URL, default nats://127.0.0.1:4222. Skipped under -short and
// when the server is unreachable — except under CI, where it must be there.
// The server may be shared, so the test uses its own subject and durable, and leaves the
// stream as it found it.
func TestExternalNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("external NATS test skipped with -short")
	}
	url := os.Getenv("DGOV_TEST_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := Connect(url)
	if err != nil {
		if dbtest.Strict() {
			t.Fatalf("external NATS is required for a full test run (CI / DGOV_TEST_STRICT): %v", err)
		}
		t.Skipf("external NATS not reachable (%v); set DGOV_TEST_NATS_URL", err)
	}
	defer nc.Close()
	js, err := JetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("external NATS at %s has no JetStream: %v", url, err)
	}
	_, err = js.Stream(ctx, StreamName)
	created := errors.Is(err, jetstream.ErrStreamNotFound)
	if err != nil && !created {
		t.Fatal(err)
	}
	t.Logf("external NATS %s; stream %s existed before: %v", url, StreamName, !created)

	var b [4]byte
	_, _ = rand.Read(b[:])
	tag := "bustest" + hex.EncodeToString(b[:])

	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		durable := tag + "_" + string(d.Dialect)
		subject := "dgov." + tag + "." + string(d.Dialect)
		// Registered first so that it runs last, after the subscription has stopped.
		t.Cleanup(func() { _ = js.DeleteConsumer(context.Background(), StreamName, durable) })
		runRelay(t, d, js, RelayOptions{})
		rec := newRecorder(d, durable)
		sub := subscribe(t, js, durable, subject, rec)
		var ids []string
		for range 3 {
			if err := d.InTx(ctx, func(tx *db.Tx) error {
				id, err := Publish(ctx, tx, subject, map[string]string{"hello": "external"})
				ids = append(ids, id)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		waitQuiet(t, d, sub, durable, 3)
		for _, id := range ids {
			if rec.count(id) != 1 {
				t.Errorf("event %s delivered %d times", id, rec.count(id))
			}
		}
	}, Migrations, testSource)

	if created {
		if err := js.DeleteStream(ctx, StreamName); err != nil {
			t.Errorf("delete the stream this test created: %v", err)
		}
	} else if s, err := js.Stream(ctx, StreamName); err == nil {
		if err := s.Purge(ctx, jetstream.WithPurgeSubject("dgov."+tag+".>")); err != nil {
			t.Errorf("purge the test's subjects: %v", err)
		}
	}
}

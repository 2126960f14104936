package bus

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// BenchmarkOutboxToNATS measures events per second from commit to receipt by a durable
// consumer, one event per transaction, through the outbox, the relay and an embedded server,
// with one producer committing in turn and with 8 committing at once. It also reports the
// commit-to-receipt latency (p50, p99).
func BenchmarkOutboxToNATS(b *testing.B) {
	for _, producers := range []int{1, 8} {
		b.Run(fmt.Sprintf("sqlite/producers=%d", producers), func(b *testing.B) {
			benchOutbox(b, dbtest.SQLite(b, Migrations), producers)
		})
		b.Run(fmt.Sprintf("postgres/producers=%d", producers), func(b *testing.B) {
			benchOutbox(b, dbtest.Postgres(b, Migrations), producers)
		})
	}
}

func benchOutbox(b *testing.B, d *db.DB, producers int) {
	ctx := context.Background()
	n := startNATS(b, filepath.Join(b.TempDir(), "nats"))
	defer n.Close()
	stopRelay := runRelay(b, d, n.js, RelayOptions{})
	defer stopRelay()

	total := b.N
	committed := make([]atomic.Int64, total) // commit time, UnixNano, by event number
	receivedAt := make([]int64, total)
	var received atomic.Int64
	done := make(chan struct{})
	sub, err := Subscribe(ctx, n.js, "bench", "dgov.bench.>", func(_ context.Context, ev Event) error {
		i, err := strconv.Atoi(string(ev.Data))
		if err != nil || i < 0 || i >= total {
			return fmt.Errorf("bad event %s", ev.Data)
		}
		// Only the receipt time here: a relay polling on another connection can deliver an
		// event before the producer's AfterCommit has stamped its commit time.
		receivedAt[i] = time.Now().UnixNano()
		if received.Add(1) == int64(total) {
			close(done)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Stop()

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for range producers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				if err := d.InTx(ctx, func(tx *db.Tx) error {
					// Registered before Publish's nudge, so it runs first, right after the commit.
					tx.AfterCommit(func() { committed[i].Store(time.Now().UnixNano()) })
					_, err := Publish(ctx, tx, "dgov.bench.created", i)
					return err
				}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("received %d of %d events", received.Load(), total)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	latency := make([]time.Duration, total)
	for i := range latency {
		latency[i] = max(0, time.Duration(receivedAt[i]-committed[i].Load()))
	}
	slices.Sort(latency)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(latency[total/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latency[total*99/100].Microseconds())/1000, "p99-ms")
}

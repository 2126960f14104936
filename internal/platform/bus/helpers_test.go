package bus

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dgov/dgov/internal/platform/db"
)

// testSource adds a business table and an effects table: a consumer's effect is a row there, so
// an event handled twice would show as two rows.
var testSource = db.Source{Name: "bustest", FS: fstest.MapFS{
	"0001_test.sql": {Data: []byte(`
CREATE TABLE applications (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE effects (id {{SERIAL}}, consumer TEXT NOT NULL, event_id TEXT NOT NULL);`)},
}}

// natsNode is an embedded server with a client connection.
type natsNode struct {
	srv  *Embedded
	nc   *nats.Conn
	js   jetstream.JetStream
	once sync.Once
}

func startNATS(tb testing.TB, storeDir string) *natsNode {
	tb.Helper()
	srv, err := StartEmbedded(EmbeddedOptions{StoreDir: storeDir})
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		tb.Fatal(err)
	}
	js, err := JetStream(nc)
	if err != nil {
		tb.Fatal(err)
	}
	n := &natsNode{srv: srv, nc: nc, js: js}
	tb.Cleanup(n.Close)
	return n
}

func (n *natsNode) Close() {
	n.once.Do(func() {
		n.nc.Close()
		n.srv.Shutdown()
	})
}

// runRelay runs a relay until the returned stop is called (or the test ends).
func runRelay(tb testing.TB, d *db.DB, js jetstream.JetStream, opts RelayOptions) (stop func()) {
	tb.Helper()
	r := NewRelay(d, js, opts)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					tb.Errorf("relay: %v", err)
				}
			case <-time.After(30 * time.Second):
				tb.Errorf("relay did not stop within 30s of cancel")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// recorder is a consumer that counts raw deliveries per event id and makes its effect through
// HandleOnce.
type recorder struct {
	d        *db.DB
	consumer string
	fail     func(ev Event) error // optional: fail a delivery on purpose

	mu         sync.Mutex
	deliveries map[string]int
	order      []string
	events     map[string]Event
}

func newRecorder(d *db.DB, consumer string) *recorder {
	return &recorder{d: d, consumer: consumer, deliveries: map[string]int{}, events: map[string]Event{}}
}

func (r *recorder) handle(ctx context.Context, ev Event) error {
	r.mu.Lock()
	r.deliveries[ev.ID]++
	if r.deliveries[ev.ID] == 1 {
		r.order = append(r.order, ev.ID)
		r.events[ev.ID] = ev
	}
	r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(ev); err != nil {
			return err
		}
	}
	return HandleOnce(ctx, r.d, r.consumer, ev, func(tx *db.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id) VALUES (?, ?)`, r.consumer, ev.ID)
		return err
	})
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deliveries[id]
}

func (r *recorder) snapshot() (map[string]int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.deliveries))
	for k, v := range r.deliveries {
		m[k] = v
	}
	return m, append([]string(nil), r.order...)
}

func subscribe(tb testing.TB, js jetstream.JetStream, durable, filter string, rec *recorder) *Subscription {
	tb.Helper()
	sub, err := Subscribe(context.Background(), js, durable, filter, rec.handle)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sub.Stop)
	return sub
}

func effects(tb testing.TB, d *db.DB, consumer string) int {
	tb.Helper()
	var n int
	if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM effects WHERE consumer = ?`, consumer).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func unpublished(tb testing.TB, d *db.DB) int {
	tb.Helper()
	var n int
	if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM outbox WHERE published_at IS NULL`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitQuiet waits until the consumer has want effects, nothing pending or unacknowledged on
// the server, and the count has stayed put for a moment: only then is "exactly" meaningful.
func waitQuiet(tb testing.TB, d *db.DB, sub *Subscription, consumer string, want int) {
	tb.Helper()
	ctx := context.Background()
	waitFor(tb, "effects to reach the expected count", func() bool { return effects(tb, d, consumer) >= want })
	waitFor(tb, "the consumer to drain", func() bool {
		ci, err := sub.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && unpublished(tb, d) == 0
	})
	stableSince, last := time.Now(), effects(tb, d, consumer)
	waitFor(tb, "quiet", func() bool {
		n := effects(tb, d, consumer)
		if n != last {
			stableSince, last = time.Now(), n
		}
		return time.Since(stableSince) > 300*time.Millisecond
	})
	if got := effects(tb, d, consumer); got != want {
		tb.Fatalf("consumer %s: %d effects, want exactly %d", consumer, got, want)
	}
}

// submit commits a business row and its event in one transaction.
func submit(tb testing.TB, d *db.DB, name string) string {
	tb.Helper()
	ctx := context.Background()
	var id string
	err := d.InTx(ctx, func(tx *db.Tx) error {
		appID := db.NewID()
		if _, err := tx.Exec(ctx, `INSERT INTO applications (id, name) VALUES (?, ?)`, appID, name); err != nil {
			return err
		}
		var err error
		id, err = Publish(ctx, tx, "dgov.test.submitted", map[string]string{"application": appID, "name": name})
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func streamMsgs(tb testing.TB, js jetstream.JetStream) uint64 {
	tb.Helper()
	s, err := js.Stream(context.Background(), StreamName)
	if err != nil {
		tb.Fatal(err)
	}
	si, err := s.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return si.State.Msgs
}

func decode(tb testing.TB, ev Event) map[string]string {
	tb.Helper()
	var m map[string]string
	if err := json.Unmarshal(ev.Data, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dgov/dgov/internal/platform/db"
)

// Handler reacts to one event. An error (or a panic) makes JetStream deliver the event again
// later; handlers are therefore idempotent, usually through HandleOnce.
type Handler func(ctx context.Context, ev Event) error

// consumerAckWait is how long JetStream waits for a handler's ack before redelivering.
const consumerAckWait = 30 * time.Second

// Subscription is a running durable consumer.
type Subscription struct {
	cc       jetstream.ConsumeContext
	consumer jetstream.Consumer
	cancel   context.CancelFunc
	mu       sync.Mutex
	stopped  bool
	inFlight sync.WaitGroup
	done     chan struct{}
}

// Subscribe runs handler for every event on the stream DGOV that matches filterSubject
// (e.g. "dgov.workflow.>"), through the durable pull consumer durable with explicit acks.
// The consumer keeps its position on the server, so a restarted node continues where it left
// off; a new durable starts from the oldest event the stream holds. Handlers of one
// subscription run one at a time. A handler error naks the event with a delay that doubles
// with each delivery (250ms up to 1 minute). The subscription ends when ctx is cancelled or
// Stop is called.
func Subscribe(ctx context.Context, js jetstream.JetStream, durable, filterSubject string, handler Handler) (*Subscription, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "dgov consumer " + durable,
		FilterSubject: filterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       consumerAckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, StreamName, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// The consumer may start before the relay has ensured the stream.
		if _, err = EnsureStream(ctx, js, StreamOptions{}); err == nil {
			cons, err = js.CreateOrUpdateConsumer(ctx, StreamName, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", durable, filterSubject, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &Subscription{consumer: cons, cancel: cancel, done: make(chan struct{})}
	log := slog.Default().With("component", "bus-consumer", "consumer", durable)
	cc, err := cons.Consume(func(m jetstream.Msg) { s.handle(sctx, m, handler, log) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if sctx.Err() == nil {
				log.Warn("consume", "err", err)
			}
		}))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("consume %s: %w", durable, err)
	}
	s.cc = cc
	go func() {
		<-sctx.Done()
		s.shutdown()
	}()
	return s, nil
}

func (s *Subscription) handle(ctx context.Context, m jetstream.Msg, handler Handler, log *slog.Logger) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		_ = m.Nak() // buffered when we stopped: let another consumer instance have it now
		return
	}
	s.inFlight.Add(1)
	s.mu.Unlock()
	defer s.inFlight.Done()

	ev := eventOf(m)
	err := callHandler(ctx, handler, ev)
	if err == nil {
		if err := m.Ack(); err != nil {
			log.Warn("ack", "event", ev.ID, "err", err)
		}
		return
	}
	var delivered uint64 = 1
	if md, mdErr := m.Metadata(); mdErr == nil {
		delivered = md.NumDelivered
	}
	delay := nakDelay(delivered)
	if ctx.Err() == nil {
		log.Warn("handler failed; will retry", "event", ev.ID, "subject", ev.Subject, "delivery", delivered, "retry_in", delay, "err", err)
	}
	_ = m.NakWithDelay(delay)
}

func callHandler(ctx context.Context, handler Handler, ev Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return handler(ctx, ev)
}

// nakDelay is 250ms doubled per delivery, at most a minute.
func nakDelay(delivered uint64) time.Duration {
	d := 250 * time.Millisecond
	for i := uint64(1); i < delivered && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// eventOf rebuilds the Event the outbox published. A message published to dgov.> by something
// other than the relay has no Nats-Msg-Id; its stream sequence then stands in as the id.
func eventOf(m jetstream.Msg) Event {
	h := m.Headers()
	ev := Event{ID: h.Get(msgIDHeader), Subject: m.Subject(), Data: m.Data()}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(TimeHeader)); err == nil {
		ev.Time = t.UTC()
	}
	if md, err := m.Metadata(); err == nil {
		if ev.ID == "" {
			ev.ID = fmt.Sprintf("%s:%d", md.Stream, md.Sequence.Stream)
		}
		if ev.Time.IsZero() {
			ev.Time = md.Timestamp.UTC()
		}
	}
	return ev
}

// Stop ends the subscription and waits for a running handler to return. Events fetched but not
// yet handled are naked so they are delivered again at once.
func (s *Subscription) Stop() {
	s.cancel()
	<-s.done
}

// Done is closed when the subscription has stopped.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Info reports the consumer's state on the server (pending and unacknowledged counts).
func (s *Subscription) Info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	return s.consumer.Info(ctx)
}

func (s *Subscription) shutdown() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cc.Stop()
	s.inFlight.Wait()
	close(s.done)
}

// HandleOnce runs fn in a transaction that also records ev.ID as processed by consumer, unless
// it was already: then it returns nil without running fn. Effect and record commit or roll back
// together, which turns at-least-once delivery into an exactly-once effect. Two deliveries of one
// event racing each other serialise on the processed_events key; the second finds the first's
// record and does nothing.
func HandleOnce(ctx context.Context, d *db.DB, consumer string, ev Event, fn func(tx *db.Tx) error) error {
	if ev.ID == "" {
		return errors.New("handle once: event without id")
	}
	errSeen := errors.New("already processed")
	err := d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			consumer, ev.ID, db.Now(time.Now()))
		if err != nil {
			return fmt.Errorf("record event %s for %s: %w", ev.ID, consumer, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errSeen
		}
		return fn(tx)
	})
	if errors.Is(err, errSeen) {
		return nil
	}
	return err
}

package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the JetStream stream that holds every dgov event.
const StreamName = "DGOV"

// StreamOptions tunes the stream DGOV; zero fields take the defaults.
type StreamOptions struct {
	// MaxAge is how long the stream keeps events (default 30 days): how far back a new durable
	// consumer, or one reset by an operator, can replay.
	MaxAge time.Duration
	// Duplicates is the de-duplication window on Nats-Msg-Id (default 2 hours): a relay that
	// crashed after publishing and restarts within it causes no duplicate delivery.
	Duplicates time.Duration
	// Replicas is the number of copies in a NATS cluster (default 1; 3 for a production cluster).
	Replicas int
}

// StreamConfig is the configuration EnsureStream applies.
func (o StreamOptions) StreamConfig() jetstream.StreamConfig {
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * 24 * time.Hour
	}
	if o.Duplicates <= 0 {
		o.Duplicates = 2 * time.Hour
	}
	if o.Duplicates > o.MaxAge {
		o.Duplicates = o.MaxAge
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "dgov events, relayed from the database outbox",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      o.MaxAge,
		Duplicates:  o.Duplicates,
		Replicas:    o.Replicas,
	}
}

// EnsureStream creates the stream DGOV, or updates it to opts when it exists.
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts StreamOptions) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, opts.StreamConfig())
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	return s, nil
}

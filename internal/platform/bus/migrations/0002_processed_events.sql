-- Event ids a consumer has already acted on, recorded in the transaction of the effect
-- (bus.HandleOnce): at-least-once delivery plus this table gives an exactly-once effect.
CREATE TABLE processed_events (
	consumer TEXT NOT NULL,
	event_id TEXT NOT NULL,
	processed_at {{TIME}} NOT NULL,
	PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_at ON processed_events (processed_at);

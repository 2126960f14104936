-- The transactional outbox: a row per event, written in the business transaction and
-- relayed to NATS JetStream afterwards. seq gives the relay its order; id is the event id and
-- the JetStream Nats-Msg-Id, so a re-publication after a crash is dropped by the stream.
CREATE TABLE outbox (
	seq {{SERIAL}},
	id TEXT NOT NULL UNIQUE,
	subject TEXT NOT NULL,
	payload {{BLOB}} NOT NULL,
	headers TEXT,
	created_at {{TIME}} NOT NULL,
	published_at {{TIME}}
);
-- The relay reads only unpublished rows, in seq order; the partial index stays small.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at);

-- One row that the PostgreSQL relay locks (FOR UPDATE SKIP LOCKED) for the length of a batch,
-- so that of several dgov nodes on one database only one relays at a time and order is kept.
CREATE TABLE outbox_relay (
	name TEXT NOT NULL PRIMARY KEY
);
INSERT INTO outbox_relay (name) VALUES ('relay');

-- The audit log: an SM3 hash chain. seq is assigned by the appender, contiguous from 1 (not
-- SERIAL), so a deleted row shows as a gap.
CREATE TABLE audit_log (
	seq {{BIGINT}} PRIMARY KEY,
	at {{TIME}} NOT NULL,
	actor TEXT NOT NULL,
	actor_division TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL,
	object TEXT NOT NULL DEFAULT '',
	outcome TEXT NOT NULL,
	ip TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_division ON audit_log (actor_division, seq);
CREATE INDEX audit_log_at ON audit_log (at);

-- SM2-signed heads of the chain: seq is the last entry covered.
CREATE TABLE audit_checkpoints (
	seq {{BIGINT}} PRIMARY KEY,
	hash TEXT NOT NULL,
	at {{TIME}} NOT NULL,
	key_id TEXT NOT NULL,
	signature {{BLOB}} NOT NULL
);

-- One row: the chain's head, so an append is O(1), and the lock appends serialise on.
-- A truncated tail is detected against it (and against the last checkpoint).
CREATE TABLE audit_head (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	seq {{BIGINT}} NOT NULL,
	hash TEXT NOT NULL,
	checkpoint_seq {{BIGINT}} NOT NULL
);
INSERT INTO audit_head (id, seq, hash, checkpoint_seq)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

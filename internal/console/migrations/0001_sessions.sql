-- Staff console sessions. Only the SM3 hash of the cookie token is stored, so a copy of the
-- database cannot be used to take over a session.
CREATE TABLE console_sessions (
	token_hash TEXT PRIMARY KEY,
	staff_id   TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
	created_at {{TIME}} NOT NULL,
	last_seen  {{TIME}} NOT NULL,
	expires_at {{TIME}} NOT NULL,
	ip         TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX console_sessions_staff ON console_sessions (staff_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

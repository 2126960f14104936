-- Sharing and exchange (D4). No foreign keys to other engines' tables: resources,
-- departments, datasets and OpenID clients are referenced by id and checked through their
-- services when a row is written.

-- Which dataset serves a catalogue resource on the gateway, and which of its columns (of
-- type division) carries each row's division for row scopes ('' = rows are not divisional).
CREATE TABLE exchange_bindings (
	resource_id      TEXT PRIMARY KEY,
	dataset_id       TEXT NOT NULL,
	division_column  TEXT NOT NULL DEFAULT '',
	provider_dept_id TEXT NOT NULL,
	bound_by         TEXT NOT NULL,
	created_at       {{TIME}} NOT NULL,
	updated_at       {{TIME}} NOT NULL
);

-- Sharing requests (共享申请). Names are copied at application time: the record says who
-- asked whom for what, as it stood then. fields is a JSON array of data-item names.
CREATE TABLE exchange_requests (
	id                 TEXT PRIMARY KEY,
	resource_id        TEXT NOT NULL,
	resource_code      TEXT NOT NULL,
	resource_name      TEXT NOT NULL,
	resource_version   INTEGER NOT NULL,
	share_type         INTEGER NOT NULL,
	provider_dept_id   TEXT NOT NULL,
	provider_division  TEXT NOT NULL,
	consumer_dept_id   TEXT NOT NULL,
	consumer_dept_name TEXT NOT NULL,
	consumer_division  TEXT NOT NULL,
	client_id          TEXT NOT NULL DEFAULT '',
	fields             TEXT NOT NULL,
	purpose            TEXT NOT NULL,
	status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused', 'withdrawn', 'expired')),
	applicant          TEXT NOT NULL,
	due_at             {{TIME}},
	decided_by         TEXT NOT NULL DEFAULT '',
	decided_at         {{TIME}},
	reason             TEXT NOT NULL DEFAULT '',
	created_at         {{TIME}} NOT NULL
);
CREATE INDEX exchange_requests_provider ON exchange_requests (provider_dept_id, status, due_at);
CREATE INDEX exchange_requests_consumer ON exchange_requests (consumer_dept_id, created_at);

-- Grants: what a consumer may read on the gateway, issued by an approval.
CREATE TABLE exchange_grants (
	id                 TEXT PRIMARY KEY,
	request_id         TEXT NOT NULL UNIQUE REFERENCES exchange_requests (id),
	resource_id        TEXT NOT NULL,
	provider_dept_id   TEXT NOT NULL,
	consumer_dept_id   TEXT NOT NULL,
	consumer_dept_name TEXT NOT NULL,
	consumer_division  TEXT NOT NULL,
	client_id          TEXT NOT NULL DEFAULT '',
	fields             TEXT NOT NULL,
	row_scope          TEXT NOT NULL DEFAULT '',
	rate_per_minute    INTEGER NOT NULL CHECK (rate_per_minute > 0),
	daily_quota        INTEGER NOT NULL CHECK (daily_quota > 0),
	valid_until        {{TIME}} NOT NULL,
	revoked            {{BOOL}} NOT NULL DEFAULT FALSE,
	revoked_at         {{TIME}},
	created_at         {{TIME}} NOT NULL
);
-- One live grant per client and resource: the gateway finds it by these two.
CREATE UNIQUE INDEX exchange_grants_client ON exchange_grants (client_id, resource_id) WHERE client_id <> '' AND revoked = FALSE;
CREATE INDEX exchange_grants_provider ON exchange_grants (provider_dept_id);

-- Calls per grant per Beijing day, for daily quotas (shared by every node).
CREATE TABLE exchange_usage (
	grant_id TEXT NOT NULL,
	day      TEXT NOT NULL,
	calls    {{BIGINT}} NOT NULL,
	PRIMARY KEY (grant_id, day)
);

-- One row per gateway call that reached the data. subject_idx is the blind index
-- (crypto.FieldCipher.BlindIndex, kind resident_id) of a looked-up resident ID number, so a
-- citizen can find the reads of their record ("who read my data") without the log holding
-- the number.
CREATE TABLE exchange_access (
	id                 TEXT PRIMARY KEY,
	at                 {{TIME}} NOT NULL,
	request_id         TEXT NOT NULL,
	grant_id           TEXT NOT NULL,
	client_id          TEXT NOT NULL,
	resource_id        TEXT NOT NULL,
	resource_name      TEXT NOT NULL,
	consumer_dept      TEXT NOT NULL,
	consumer_dept_name TEXT NOT NULL,
	purpose            TEXT NOT NULL,
	kind               TEXT NOT NULL CHECK (kind IN ('lookup', 'query', 'extract')),
	fields             TEXT NOT NULL,
	subject_idx        TEXT NOT NULL DEFAULT '',
	row_count          INTEGER NOT NULL
);
CREATE INDEX exchange_access_subject ON exchange_access (subject_idx, at) WHERE subject_idx <> '';
CREATE INDEX exchange_access_resource ON exchange_access (resource_id, at);

-- Residents whose records a query or extract returned (one row each), when the rows carry a
-- readable resident ID number.
CREATE TABLE exchange_access_subjects (
	access_id   TEXT NOT NULL REFERENCES exchange_access (id),
	subject_idx TEXT NOT NULL,
	PRIMARY KEY (subject_idx, access_id)
);

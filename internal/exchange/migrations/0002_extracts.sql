-- Bulk file extracts (D4 "bulk file extracts for large pulls"): a consumer system asks the
-- gateway for every row its grant allows (with a query's filters), a job streams them into a
-- file in the blob store, and the system downloads it with a signed receipt over the file's
-- SM3 digest. The call's terms are copied here when it is made: the job works from them,
-- not from the grant as it may later be. filter is a JSON object, fields a JSON array.
-- access_id is the exchange_access row that attributes the rows to their residents.
CREATE TABLE exchange_extracts (
	id                 TEXT PRIMARY KEY,
	access_id          TEXT NOT NULL,
	request_id         TEXT NOT NULL,
	target             TEXT NOT NULL,
	grant_id           TEXT NOT NULL,
	client_id          TEXT NOT NULL,
	resource_id        TEXT NOT NULL,
	resource_name      TEXT NOT NULL,
	dataset_id         TEXT NOT NULL,
	consumer_dept      TEXT NOT NULL,
	consumer_dept_name TEXT NOT NULL,
	consumer_division  TEXT NOT NULL,
	purpose            TEXT NOT NULL,
	fields             TEXT NOT NULL,
	filter             TEXT NOT NULL,
	row_scope          TEXT NOT NULL,
	division_column    TEXT NOT NULL,
	format             TEXT NOT NULL CHECK (format IN ('csv', 'jsonl')),
	gzip               {{BOOL}} NOT NULL,
	status             TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'expired')),
	rows_done          {{BIGINT}} NOT NULL DEFAULT 0,
	rows_total         {{BIGINT}} NOT NULL DEFAULT -1,
	bytes              {{BIGINT}} NOT NULL DEFAULT 0,
	blob_key           TEXT NOT NULL DEFAULT '',
	file_sm3           TEXT NOT NULL DEFAULT '',
	receipt            TEXT NOT NULL DEFAULT '',
	error_code         TEXT NOT NULL DEFAULT '',
	error_zh           TEXT NOT NULL DEFAULT '',
	error_en           TEXT NOT NULL DEFAULT '',
	created_at         {{TIME}} NOT NULL,
	started_at         {{TIME}},
	finished_at        {{TIME}},
	expires_at         {{TIME}}
);
CREATE INDEX exchange_extracts_client ON exchange_extracts (client_id, created_at);
CREATE INDEX exchange_extracts_consumer ON exchange_extracts (consumer_dept, created_at);
CREATE INDEX exchange_extracts_grant ON exchange_extracts (grant_id, created_at);
-- The expiry sweep finds finished files past their time.
CREATE INDEX exchange_extracts_expiry ON exchange_extracts (status, expires_at);

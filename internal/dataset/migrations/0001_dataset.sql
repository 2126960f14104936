-- Tabular datasets behind catalog resources (D2). One set of tables serves every dataset, so
-- a new dataset needs no DDL: a row is a JSON object (column name → normalised text value) in
-- dataset_rows.data; the schema that gives the values their meaning is kept with each version.
--
-- Sensitive values are stored as base64 of FieldCipher.Seal output with the associated data
--     dataset:<dataset id>:<version>:<row no>:<column>
-- and a sensitive key column is looked up through key_idx, the keyed SM3 blind index of its
-- normalised value (kind "dataset:<dataset id>:<column>"); a plain key column stores the
-- normalised value itself in key_idx.
--
-- A load writes a new version in batches while the previous one stays active, then flips the
-- statuses in one short transaction. The partial unique indexes make "one active version" and
-- "one load at a time" facts of the database, not only of the code.

CREATE TABLE dataset_versions (
	dataset_id    TEXT NOT NULL,
	version       INTEGER NOT NULL,
	status        TEXT NOT NULL CHECK (status IN ('loading', 'active', 'failed', 'superseded')),
	schema_json   TEXT NOT NULL,
	source_name   TEXT NOT NULL DEFAULT '',
	format        TEXT NOT NULL,
	rows_ok       {{BIGINT}} NOT NULL DEFAULT 0,
	rows_rejected {{BIGINT}} NOT NULL DEFAULT 0,
	bytes_read    {{BIGINT}} NOT NULL DEFAULT 0,
	total_bytes   {{BIGINT}} NOT NULL DEFAULT 0,
	started_at    {{TIME}} NOT NULL,
	-- Moved forward with every committed batch: the UI reads progress here, and a load whose
	-- heartbeat is old was abandoned (process killed) and may be failed by the next load.
	heartbeat_at  {{TIME}} NOT NULL,
	finished_at   {{TIME}},
	error_code    TEXT NOT NULL DEFAULT '',
	error_zh      TEXT NOT NULL DEFAULT '',
	error_en      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (dataset_id, version)
);
CREATE UNIQUE INDEX dataset_versions_one_active ON dataset_versions (dataset_id) WHERE status = 'active';
CREATE UNIQUE INDEX dataset_versions_one_loading ON dataset_versions (dataset_id) WHERE status = 'loading';

CREATE TABLE dataset_rows (
	dataset_id TEXT NOT NULL,
	version    INTEGER NOT NULL,
	-- 1, 2, 3 … in the order accepted; line is where the row starts in the source file.
	row_no     {{BIGINT}} NOT NULL,
	line       {{BIGINT}} NOT NULL,
	key_idx    TEXT,
	data       TEXT NOT NULL,
	PRIMARY KEY (dataset_id, version, row_no),
	FOREIGN KEY (dataset_id, version) REFERENCES dataset_versions (dataset_id, version)
);
-- Lookup by key; NULL (dataset without a key column) is allowed many times on both databases.
CREATE UNIQUE INDEX dataset_rows_key ON dataset_rows (dataset_id, version, key_idx);

-- Rejected rows of a load, one entry per fault (a row may have several), capped per version;
-- dataset_versions.rows_rejected has the full count.
CREATE TABLE dataset_rejects (
	dataset_id  TEXT NOT NULL,
	version     INTEGER NOT NULL,
	seq         INTEGER NOT NULL,
	line        {{BIGINT}} NOT NULL,
	column_name TEXT NOT NULL DEFAULT '',
	code        TEXT NOT NULL,
	reason_zh   TEXT NOT NULL,
	reason_en   TEXT NOT NULL,
	PRIMARY KEY (dataset_id, version, seq),
	FOREIGN KEY (dataset_id, version) REFERENCES dataset_versions (dataset_id, version)
);

-- Datasets served from a registered upstream API of the providing department (D2): the
-- version (format 'upstream', no rows here) carries the schema; this row says where to ask.
-- secret is FieldCipher.Seal of the auth header's value with the associated data
--     dataset-upstream:<dataset id>:<version>
-- and is never shown again. fields maps schema columns to the upstream's names (JSON object).
CREATE TABLE dataset_upstreams (
	dataset_id  TEXT NOT NULL,
	version     INTEGER NOT NULL,
	base_url    TEXT NOT NULL,
	lookup_path TEXT NOT NULL,
	query_path  TEXT NOT NULL,
	auth_header TEXT NOT NULL DEFAULT '',
	secret      {{BLOB}},
	timeout_ms  INTEGER NOT NULL CHECK (timeout_ms > 0),
	fields      TEXT NOT NULL,
	PRIMARY KEY (dataset_id, version),
	FOREIGN KEY (dataset_id, version) REFERENCES dataset_versions (dataset_id, version)
);

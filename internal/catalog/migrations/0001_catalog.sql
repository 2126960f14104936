-- Government information resource catalog (D1, GB/T 21063).
-- No foreign keys to org's tables: an engine owns its tables; departments are referenced by id
-- and checked through org's service when a draft is written.

-- One working copy per resource. body is the JSON of catalog.Draft (metadata and data items);
-- the columns beside it are what lists filter on. version is the latest published version,
-- live_version the one in force in the catalog (0: none).
CREATE TABLE catalog_resources (
	id               TEXT PRIMARY KEY,
	code             TEXT NOT NULL UNIQUE,
	name             TEXT NOT NULL,
	summary          TEXT NOT NULL,
	provider_dept_id TEXT NOT NULL,
	division_code    TEXT NOT NULL,
	share_type       INTEGER NOT NULL CHECK (share_type BETWEEN 1 AND 3),
	open_type        INTEGER NOT NULL CHECK (open_type BETWEEN 1 AND 3),
	status           TEXT NOT NULL CHECK (status IN ('draft', 'submitted', 'published', 'withdrawn')),
	version          INTEGER NOT NULL DEFAULT 0,
	live_version     INTEGER NOT NULL DEFAULT 0 CHECK (live_version BETWEEN 0 AND version),
	body             TEXT NOT NULL,
	reject_reason    TEXT NOT NULL DEFAULT '',
	submitted_by     TEXT NOT NULL DEFAULT '',
	published_at     {{TIME}},
	created_at       {{TIME}} NOT NULL,
	updated_at       {{TIME}} NOT NULL
);
CREATE INDEX catalog_resources_provider ON catalog_resources (provider_dept_id);
CREATE INDEX catalog_resources_status ON catalog_resources (status);

-- A resource's division and every division containing it (divisions.Ancestors), written once:
-- a resource's division never changes. Rolling a division's catalog up is one indexed join.
CREATE TABLE catalog_resource_divisions (
	ancestor    TEXT NOT NULL,
	resource_id TEXT NOT NULL REFERENCES catalog_resources (id),
	PRIMARY KEY (ancestor, resource_id)
);

-- Frozen published versions, never updated.
CREATE TABLE catalog_versions (
	resource_id      TEXT NOT NULL REFERENCES catalog_resources (id),
	version          INTEGER NOT NULL CHECK (version > 0),
	code             TEXT NOT NULL,
	name             TEXT NOT NULL,
	summary          TEXT NOT NULL,
	provider_dept_id TEXT NOT NULL,
	division_code    TEXT NOT NULL,
	share_type       INTEGER NOT NULL,
	open_type        INTEGER NOT NULL,
	body             TEXT NOT NULL,
	published_at     {{TIME}} NOT NULL,
	published_by     TEXT NOT NULL,
	created_at       {{TIME}} NOT NULL,
	PRIMARY KEY (resource_id, version)
);

-- Running numbers of assigned codes, per classification prefix and division.
CREATE TABLE catalog_sequences (
	scope TEXT PRIMARY KEY,
	last  INTEGER NOT NULL
);

-- Service items and 一件事 bundles (P5). Each row holds the item's current version; the JSON
-- document is the item as the pack declares it, hash its SM3 (a version's identity), and the
-- columns beside it are what lists filter on. Items gone from the pack are deactivated, never
-- deleted: applications made under them keep their guide.
CREATE TABLE service_items (
	code        TEXT PRIMARY KEY,
	version     INTEGER NOT NULL CHECK (version > 0),
	department  TEXT NOT NULL,
	level       TEXT NOT NULL CHECK (level IN ('province', 'city', 'county')),
	name        TEXT NOT NULL,
	type        TEXT NOT NULL,
	zero_visit  {{BOOL}} NOT NULL,
	-- search_text: lower-cased name and keywords, for the list's keyword filter.
	search_text TEXT NOT NULL,
	document    TEXT NOT NULL,
	hash        TEXT NOT NULL,
	active      {{BOOL}} NOT NULL,
	updated_at  {{TIME}} NOT NULL
);
CREATE INDEX service_items_department ON service_items (department, code);

-- Every version of every item, frozen: an application names the version it was made under.
CREATE TABLE service_item_versions (
	code       TEXT NOT NULL REFERENCES service_items (code),
	version    INTEGER NOT NULL CHECK (version > 0),
	document   TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created_at {{TIME}} NOT NULL,
	PRIMARY KEY (code, version)
);

CREATE TABLE service_bundles (
	code       TEXT PRIMARY KEY,
	version    INTEGER NOT NULL CHECK (version > 0),
	name       TEXT NOT NULL,
	document   TEXT NOT NULL,
	hash       TEXT NOT NULL,
	active     {{BOOL}} NOT NULL,
	updated_at {{TIME}} NOT NULL
);

CREATE TABLE service_bundle_versions (
	code       TEXT NOT NULL REFERENCES service_bundles (code),
	version    INTEGER NOT NULL CHECK (version > 0),
	document   TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created_at {{TIME}} NOT NULL,
	PRIMARY KEY (code, version)
);

-- One row: the last sync. Sync updates it first, which serialises concurrent syncs (a row
-- lock on PostgreSQL; SQLite has a single writer anyway).
CREATE TABLE service_sync (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	pack_hash TEXT NOT NULL,
	synced_at {{TIME}}
);
INSERT INTO service_sync (id, pack_hash) VALUES (1, '');

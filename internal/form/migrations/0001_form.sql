-- Form declarations, one row per distinct declaration. An application keeps the id of the
-- row it was made with, so a later version of the form never changes how it is read. Rows
-- are never updated: the hash (SM3 of the canonical JSON) is the declaration's identity.
CREATE TABLE form_versions (
	id          TEXT PRIMARY KEY,
	key         TEXT NOT NULL,
	version     INTEGER NOT NULL,
	hash        TEXT NOT NULL UNIQUE,
	declaration TEXT NOT NULL,
	created_at  {{TIME}} NOT NULL,
	-- A changed declaration needs a new version number: one key and version, one content.
	UNIQUE (key, version)
);

-- Electronic licences (issue 6 A3). No foreign keys to other engines' tables: departments,
-- accounts and seal keys are referenced by id and checked through their services.

-- Licence types and their templates (GB/T 36902 catalogue information, GB/T 36903 metadata).
-- issuer_kinds and items are JSON arrays.
CREATE TABLE license_types (
	code            TEXT PRIMARY KEY,
	name_zh         TEXT NOT NULL,
	name_en         TEXT NOT NULL,
	holder_kind     TEXT NOT NULL CHECK (holder_kind IN ('natural', 'legal', 'any')),
	issuer_kinds    TEXT NOT NULL,
	validity_years  INTEGER NOT NULL DEFAULT 0,
	validity_months INTEGER NOT NULL DEFAULT 0,
	basis           TEXT NOT NULL DEFAULT '',
	items           TEXT NOT NULL,
	created_at      {{TIME}} NOT NULL,
	updated_at      {{TIME}} NOT NULL
);

-- Departments registered as issuing authorities (发证机构), with the credit code that goes
-- into their licences' identifiers.
CREATE TABLE license_issuers (
	dept_id     TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	credit_code TEXT NOT NULL UNIQUE,
	division    TEXT NOT NULL,
	kind        TEXT NOT NULL,
	active      {{BOOL}} NOT NULL DEFAULT TRUE,
	created_at  {{TIME}} NOT NULL,
	updated_at  {{TIME}} NOT NULL
);

-- The last serial given per type and issuer. A serial taken by an issuance that then fails
-- is not reused: serials are unique, not gapless.
CREATE TABLE license_serials (
	type_code   TEXT NOT NULL,
	credit_code TEXT NOT NULL,
	last        {{BIGINT}} NOT NULL,
	PRIMARY KEY (type_code, credit_code)
);

-- Licences, one row per version; id is the GB/T 36904 identifier. content_enc is the signed
-- canonical content sealed with SM4-GCM (it carries the holder's ID number and the data
-- items); holder_idx is the keyed blind index of the holder's ID number. status is the
-- stored status: 'expired' is computed from valid_until on read.
CREATE TABLE licenses (
	id                 TEXT PRIMARY KEY,
	chain              TEXT NOT NULL, -- type.credit.serial: every version of one licence
	type_code          TEXT NOT NULL,
	type_name          TEXT NOT NULL,
	serial             TEXT NOT NULL,
	version            INTEGER NOT NULL,
	previous_id        TEXT NOT NULL DEFAULT '',
	superseded_by      TEXT NOT NULL DEFAULT '',
	holder_name        TEXT NOT NULL,
	holder_kind        TEXT NOT NULL,
	holder_id_type     TEXT NOT NULL,
	holder_idx         TEXT NOT NULL,
	issuer_dept_id     TEXT NOT NULL,
	issuer_name        TEXT NOT NULL,
	issuer_credit_code TEXT NOT NULL,
	issuer_division    TEXT NOT NULL,
	issued_at          {{TIME}} NOT NULL,
	valid_from         {{TIME}} NOT NULL,
	valid_until        {{TIME}},
	status             TEXT NOT NULL CHECK (status IN ('valid', 'revoked', 'superseded')),
	status_reason      TEXT NOT NULL DEFAULT '',
	status_at          {{TIME}},
	content_enc        {{BLOB}} NOT NULL,
	digest             TEXT NOT NULL,
	key_id             TEXT NOT NULL,
	signature          {{BLOB}} NOT NULL,
	signed_at          {{TIME}} NOT NULL,
	case_ref           TEXT NOT NULL DEFAULT '',
	issued_by          TEXT NOT NULL,
	UNIQUE (chain, version)
);
CREATE INDEX licenses_holder ON licenses (holder_idx, issued_at);
CREATE INDEX licenses_issuer ON licenses (issuer_dept_id, issued_at);

-- History of every version of a licence.
CREATE TABLE license_events (
	seq        {{SERIAL}},
	chain      TEXT NOT NULL,
	license_id TEXT NOT NULL REFERENCES licenses (id),
	version    INTEGER NOT NULL,
	action     TEXT NOT NULL,
	actor      TEXT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	related_id TEXT NOT NULL DEFAULT '',
	at         {{TIME}} NOT NULL
);
CREATE INDEX license_events_chain ON license_events (chain, seq);

-- Every seal key that signed a licence here, with its department: what the node's trust
-- list publishes. valid_from is the earliest issuance it signed; valid_until is set when the
-- key is retired (licences it signed before stay valid).
CREATE TABLE license_issuer_keys (
	key_id      TEXT PRIMARY KEY,
	dept_id     TEXT NOT NULL,
	dept_name   TEXT NOT NULL,
	credit_code TEXT NOT NULL,
	division    TEXT NOT NULL,
	public_key  {{BLOB}} NOT NULL,
	cert        {{BLOB}},
	valid_from  {{TIME}} NOT NULL,
	valid_until {{TIME}}
);

-- Trust lists of other nodes, stored as imported (signed JSON) with the node key that
-- verified them; the newest per node.
CREATE TABLE license_trust_lists (
	node_id     TEXT PRIMARY KEY,
	node_name   TEXT NOT NULL,
	node_key    TEXT NOT NULL, -- PKIX PEM of the node's SM2 public key
	issued_at   {{TIME}} NOT NULL,
	doc         {{BLOB}} NOT NULL,
	imported_at {{TIME}} NOT NULL,
	imported_by TEXT NOT NULL
);

-- Holders' authorisations for a department to use one licence (用证授权).
CREATE TABLE license_use_grants (
	id          TEXT PRIMARY KEY,
	license_id  TEXT NOT NULL REFERENCES licenses (id),
	holder_idx  TEXT NOT NULL,
	dept_id     TEXT NOT NULL,
	dept_name   TEXT NOT NULL,
	division    TEXT NOT NULL,
	purpose     TEXT NOT NULL,
	ref         TEXT NOT NULL DEFAULT '',
	valid_until {{TIME}} NOT NULL,
	created_at  {{TIME}} NOT NULL,
	created_by  TEXT NOT NULL,
	revoked     {{BOOL}} NOT NULL DEFAULT FALSE,
	revoked_at  {{TIME}}
);
CREATE INDEX license_use_grants_license ON license_use_grants (license_id, dept_id);
CREATE INDEX license_use_grants_holder ON license_use_grants (holder_idx, created_at);

-- Every use of a licence under an authorisation (用证记录).
CREATE TABLE license_uses (
	id         TEXT PRIMARY KEY,
	grant_id   TEXT NOT NULL REFERENCES license_use_grants (id),
	license_id TEXT NOT NULL REFERENCES licenses (id),
	type_name  TEXT NOT NULL,
	holder_idx TEXT NOT NULL,
	dept_id    TEXT NOT NULL,
	dept_name  TEXT NOT NULL,
	officer    TEXT NOT NULL,
	purpose    TEXT NOT NULL,
	ref        TEXT NOT NULL DEFAULT '',
	at         {{TIME}} NOT NULL
);
CREATE INDEX license_uses_holder ON license_uses (holder_idx, at);
CREATE INDEX license_uses_grant ON license_uses (grant_id);

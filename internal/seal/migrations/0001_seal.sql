-- Electronic seals (电子印章, GB/T 38540-2019). No foreign keys to other engines' tables:
-- departments are referenced by id, and their name and division are copied when a seal is
-- made (a seal says what it said then, as the physical one would).

-- The seal maker (制章者): the node's seal CA. Its SM2 key signs every SES_Seal and certifies
-- every department's seal key. key_enc is the PKCS#8 key sealed by crypto.FieldCipher
-- (SM4-GCM under a key wrapped by the master key), bound to the row.
CREATE TABLE seal_ca (
	id         TEXT PRIMARY KEY,
	cert       {{BLOB}} NOT NULL,
	key_enc    {{BLOB}} NOT NULL,
	created_at {{TIME}} NOT NULL
);

-- Seals. A rotation retires the old row (kept: it verifies documents sealed before) and adds a
-- new one with a new key pair; a revocation ends a seal for good. private_enc is the PKCS#8
-- SM2 key sealed by crypto.FieldCipher; eseal is the DER SES_Seal signed by the maker.
CREATE TABLE seal_seals (
	id            TEXT PRIMARY KEY,
	es_id         TEXT NOT NULL UNIQUE,
	dept_id       TEXT NOT NULL,
	dept_name     TEXT NOT NULL,
	division      TEXT NOT NULL,
	name          TEXT NOT NULL,
	purpose       TEXT NOT NULL DEFAULT '',
	seal_type     INTEGER NOT NULL,
	version       INTEGER NOT NULL CHECK (version > 0),
	status        TEXT NOT NULL CHECK (status IN ('active', 'retired', 'revoked')),
	key_id        TEXT NOT NULL UNIQUE,
	public_key    {{BLOB}} NOT NULL,
	private_enc   {{BLOB}} NOT NULL,
	cert          {{BLOB}} NOT NULL,
	cert_serial   TEXT NOT NULL,
	image_type    TEXT NOT NULL CHECK (image_type IN ('SVG', 'PNG')),
	image         {{BLOB}} NOT NULL,
	width_mm      INTEGER NOT NULL CHECK (width_mm > 0),
	height_mm     INTEGER NOT NULL CHECK (height_mm > 0),
	eseal         {{BLOB}} NOT NULL,
	valid_from    {{TIME}} NOT NULL,
	valid_to      {{TIME}} NOT NULL,
	created_by    TEXT NOT NULL,
	created_at    {{TIME}} NOT NULL,
	retired_at    {{TIME}},
	replaced_by   TEXT NOT NULL DEFAULT '',
	revoked_at    {{TIME}},
	revoked_by    TEXT NOT NULL DEFAULT '',
	revoke_reason TEXT NOT NULL DEFAULT '',
	UNIQUE (dept_id, purpose, version)
);
-- One seal in force per department and purpose ('' is the official seal, 公章): two
-- administrators creating or rotating at once cannot both win.
CREATE UNIQUE INDEX seal_seals_one_active ON seal_seals (dept_id, purpose) WHERE status = 'active';
CREATE INDEX seal_seals_division ON seal_seals (division, created_at);

-- The sealing register (用印登记): every document sealed through the service, by the SM3 of
-- the SES_Signature, so that a verifier can tell a signature this node made from one made
-- with a stolen key and a back-dated time. format 'pdf' is reserved for PDFs stamped with the
-- seal picture (today PDFs are sealed as files, with a detached signature).
CREATE TABLE seal_uses (
	id         TEXT PRIMARY KEY,
	seal_id    TEXT NOT NULL REFERENCES seal_seals (id),
	format     TEXT NOT NULL CHECK (format IN ('file', 'html', 'pdf')),
	doc_name   TEXT NOT NULL DEFAULT '',
	doc_sm3    TEXT NOT NULL,
	sig_sm3    TEXT NOT NULL UNIQUE,
	signed_at  {{TIME}} NOT NULL,
	actor      TEXT NOT NULL
);
CREATE INDEX seal_uses_seal ON seal_uses (seal_id, signed_at);
CREATE INDEX seal_uses_doc ON seal_uses (doc_sm3);

-- Applications (P5 phase 2): one submission of one service item by one applicant, and the
-- 一件事 bundle applications that fan out to several. The case a submission opens lives in
-- the workflow engine (kept here by id only); an application's status is always read from
-- it, never copied. Form values are SM4-sealed JSON, one row per revision: the first
-- submission is revision 1, every answer to a correction request (补正) adds one.

CREATE TABLE service_bundle_applications (
	id              TEXT PRIMARY KEY,
	number          TEXT NOT NULL UNIQUE,
	bundle_code     TEXT NOT NULL,
	bundle_version  INTEGER NOT NULL,
	form_version_id TEXT NOT NULL,
	applicant_kind  TEXT NOT NULL,
	applicant_id    TEXT NOT NULL,
	applicant_name  TEXT NOT NULL,
	division        TEXT NOT NULL,
	values_enc      {{BLOB}} NOT NULL,
	submitted_at    {{TIME}} NOT NULL,
	FOREIGN KEY (bundle_code, bundle_version) REFERENCES service_bundle_versions (code, version)
);
CREATE INDEX service_bundle_applications_applicant ON service_bundle_applications (applicant_kind, applicant_id, submitted_at);

-- item_name is the name of the item version applied under, for lists without reading the
-- version's document. contact_phone_enc is the applicant account's mobile at submission,
-- for SMS notices (NULL when the account has none).
CREATE TABLE service_applications (
	id                TEXT PRIMARY KEY,
	number            TEXT NOT NULL UNIQUE,
	item_code         TEXT NOT NULL,
	item_version      INTEGER NOT NULL,
	item_name         TEXT NOT NULL,
	item_name_en      TEXT NOT NULL,
	form_version_id   TEXT NOT NULL,
	applicant_kind    TEXT NOT NULL,
	applicant_id      TEXT NOT NULL,
	applicant_name    TEXT NOT NULL,
	contact_phone_enc {{BLOB}},
	division          TEXT NOT NULL,
	case_id           TEXT NOT NULL UNIQUE,
	bundle_id         TEXT REFERENCES service_bundle_applications (id),
	revision          INTEGER NOT NULL CHECK (revision > 0),
	submitted_at      {{TIME}} NOT NULL,
	updated_at        {{TIME}} NOT NULL,
	FOREIGN KEY (item_code, item_version) REFERENCES service_item_versions (code, version)
);
CREATE INDEX service_applications_applicant ON service_applications (applicant_kind, applicant_id, submitted_at, id);
CREATE INDEX service_applications_bundle ON service_applications (bundle_id) WHERE bundle_id IS NOT NULL;

CREATE TABLE service_application_revisions (
	application_id TEXT NOT NULL REFERENCES service_applications (id),
	revision       INTEGER NOT NULL CHECK (revision > 0),
	values_enc     {{BLOB}} NOT NULL,
	comment        TEXT NOT NULL DEFAULT '',
	created_at     {{TIME}} NOT NULL,
	PRIMARY KEY (application_id, revision)
);

-- The personal space (我的空间): files an applicant uploaded, reusable by reference in later
-- applications. The content is in the blob store under blob_key; sm3 is its GB/T 32905 digest.
CREATE TABLE applicant_files (
	id           TEXT PRIMARY KEY,
	owner_kind   TEXT NOT NULL,
	owner_id     TEXT NOT NULL,
	blob_key     TEXT NOT NULL UNIQUE,
	file_name    TEXT NOT NULL,
	content_type TEXT NOT NULL,
	size         {{BIGINT}} NOT NULL,
	sm3          TEXT NOT NULL,
	created_at   {{TIME}} NOT NULL
);
CREATE INDEX applicant_files_owner ON applicant_files (owner_kind, owner_id, created_at);

-- The materials of each revision; a revision lists all of them (the unchanged ones carried
-- over), so reading one revision is one query.
CREATE TABLE service_application_materials (
	application_id TEXT NOT NULL,
	revision       INTEGER NOT NULL,
	seq            INTEGER NOT NULL,
	material_key   TEXT NOT NULL,
	source         TEXT NOT NULL CHECK (source IN ('upload', 'file', 'license')),
	file_id        TEXT REFERENCES applicant_files (id),
	licence_id     TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (application_id, revision, seq),
	FOREIGN KEY (application_id, revision) REFERENCES service_application_revisions (application_id, revision)
);
CREATE INDEX service_application_materials_file ON service_application_materials (file_id);

-- 受理编号 counters: one row per Beijing calendar day and county-level division.
CREATE TABLE service_application_numbers (
	day      TEXT NOT NULL,
	division TEXT NOT NULL,
	last_seq INTEGER NOT NULL,
	PRIMARY KEY (day, division)
);

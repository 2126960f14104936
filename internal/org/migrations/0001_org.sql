-- Organisation model (F2): divisions, departments, staff accounts and their roles.

-- GB/T 2260 divisions of Shanxi, loaded by org.SyncDivisions from internal/org/divisions.
-- level: 1 province, 2 city, 3 county, 4 township (divisions.Level).
CREATE TABLE divisions (
	code   TEXT PRIMARY KEY,
	name   TEXT NOT NULL,
	parent TEXT REFERENCES divisions (code),
	level  INTEGER NOT NULL CHECK (level BETWEEN 1 AND 4)
);
CREATE INDEX divisions_parent ON divisions (parent);

-- Closure of the parent chain: one row per (ancestor, division) pair, including the division
-- itself at depth 0. Scoping a list to an actor is one indexed join on (ancestor = actor's
-- division). Derived from the parent chain, not from code prefixes, because some townships
-- hang directly under a city.
CREATE TABLE division_ancestors (
	ancestor TEXT NOT NULL REFERENCES divisions (code),
	code     TEXT NOT NULL REFERENCES divisions (code),
	depth    INTEGER NOT NULL,
	PRIMARY KEY (ancestor, code)
);
CREATE INDEX division_ancestors_code ON division_ancestors (code);

CREATE TABLE departments (
	id            TEXT PRIMARY KEY,
	division_code TEXT NOT NULL REFERENCES divisions (code),
	code          TEXT NOT NULL,
	name          TEXT NOT NULL,
	short_name    TEXT NOT NULL DEFAULT '',
	kind          TEXT NOT NULL DEFAULT '',
	parent_id     TEXT REFERENCES departments (id),
	active        {{BOOL}} NOT NULL DEFAULT TRUE,
	created_at    {{TIME}} NOT NULL,
	updated_at    {{TIME}} NOT NULL,
	UNIQUE (division_code, code)
);
CREATE INDEX departments_parent ON departments (parent_id);

-- username is stored lower-case, which makes the UNIQUE constraint case-insensitive.
-- division_code is the department's, copied so scope checks need no join.
-- The phone number is personal data: phone_enc holds crypto.FieldCipher.Seal of the
-- normalised 11-digit mobile (ids.ValidateMobile) under the associated data
-- "org.staff:<id>:phone", and phone_idx its keyed SM3 blind index (FieldCipher.BlindIndex,
-- kind "mobile", the kind baselib uses) for exact lookup; both are NULL when there is none.
CREATE TABLE staff (
	id                   TEXT PRIMARY KEY,
	username             TEXT NOT NULL UNIQUE CHECK (username = lower(username)),
	name                 TEXT NOT NULL,
	department_id        TEXT NOT NULL REFERENCES departments (id),
	division_code        TEXT NOT NULL REFERENCES divisions (code),
	phone_enc            {{BLOB}},
	phone_idx            TEXT,
	password_hash        TEXT NOT NULL,
	must_change_password {{BOOL}} NOT NULL DEFAULT FALSE,
	active               {{BOOL}} NOT NULL DEFAULT TRUE,
	failed_logins        INTEGER NOT NULL DEFAULT 0,
	locked_until         {{TIME}},
	created_at           {{TIME}} NOT NULL,
	updated_at           {{TIME}} NOT NULL,
	last_login_at        {{TIME}},
	CHECK ((phone_enc IS NULL) = (phone_idx IS NULL))
);
CREATE INDEX staff_department ON staff (department_id);
CREATE INDEX staff_division ON staff (division_code);
CREATE INDEX staff_phone ON staff (phone_idx);

CREATE TABLE staff_roles (
	staff_id TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
	role     TEXT NOT NULL,
	PRIMARY KEY (staff_id, role)
);
CREATE INDEX staff_roles_role ON staff_roles (role);

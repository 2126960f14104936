-- Unified identity (统一身份认证, issue A1): accounts of citizens (自然人) and the enterprises
-- (法人) they act for, SMS codes, TOTP, login throttling and single-sign-on sessions.
--
-- Personal fields are FieldCipher.Seal output (SM4-GCM) in *_enc columns, sealed under the
-- associated data   identity.<table>:<row id>:<column without _enc>   (as baselib and org do),
-- e.g. identity.accounts:0193…:mobile, so a ciphertext copied to another row or column no
-- longer opens. Exact lookups go through keyed SM3 blind indexes (FieldCipher.BlindIndex) in
-- *_idx, of the kinds baselib uses: "mobile" (11 digits) and "resident_id" (18 characters).
-- No table references another engine's tables.

CREATE TABLE accounts (
	id            TEXT PRIMARY KEY,
	-- Before real-name verification: the name the person gave; afterwards the name registered
	-- in the population library.
	name          TEXT NOT NULL DEFAULT '',
	mobile_enc    {{BLOB}} NOT NULL,
	mobile_idx    TEXT NOT NULL UNIQUE,
	-- NULL until real-name verification (level 2); one ID number binds one account.
	id_number_enc {{BLOB}},
	id_number_idx TEXT UNIQUE,
	-- 户籍所在地 (GB/T 2260), from the population library; NULL until verified.
	division_code TEXT,
	password_hash TEXT NOT NULL,
	-- Assurance level: 1 mobile confirmed, 2 real-name verified, 3 certificate or device.
	level         INTEGER NOT NULL DEFAULT 1 CHECK (level BETWEEN 1 AND 3),
	verified_at   {{TIME}},
	status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked_until  {{TIME}},
	created_at    {{TIME}} NOT NULL,
	updated_at    {{TIME}} NOT NULL
);

CREATE TABLE enterprises (
	id          TEXT PRIMARY KEY,
	-- GB 32100-2015 unified social credit code: public register data, in clear.
	credit_code TEXT NOT NULL UNIQUE,
	name        TEXT NOT NULL,
	-- Registration division (GB/T 2260) from the legal-entity library: the enterprise's scope.
	division_code TEXT NOT NULL DEFAULT '',
	verified_at {{TIME}} NOT NULL,
	created_at  {{TIME}} NOT NULL,
	updated_at  {{TIME}} NOT NULL
);

-- Who may act for an enterprise. Rows are never deleted: removal sets removed_at, so the
-- history of who could act when stays readable.
CREATE TABLE enterprise_members (
	id            TEXT PRIMARY KEY,
	enterprise_id TEXT NOT NULL REFERENCES enterprises (id),
	account_id    TEXT NOT NULL REFERENCES accounts (id),
	role          TEXT NOT NULL CHECK (role IN ('legal_rep', 'admin', 'operator')),
	added_by      TEXT NOT NULL,
	added_at      {{TIME}} NOT NULL,
	removed_at    {{TIME}},
	removed_by    TEXT
);
CREATE UNIQUE INDEX enterprise_members_active ON enterprise_members (enterprise_id, account_id) WHERE removed_at IS NULL;
CREATE INDEX enterprise_members_account ON enterprise_members (account_id);

-- One authenticator per account. secret_enc: the base32 secret sealed under
-- identity.account_totp:<account id>:secret. last_counter is the RFC 6238 time step of the
-- last accepted code: a code is accepted only for a later step, so it cannot be replayed.
CREATE TABLE account_totp (
	account_id   TEXT PRIMARY KEY REFERENCES accounts (id),
	secret_enc   {{BLOB}} NOT NULL,
	confirmed_at {{TIME}},
	last_counter {{BIGINT}} NOT NULL DEFAULT 0,
	created_at   {{TIME}} NOT NULL
);

-- SMS verification codes. code_hash is a keyed SM3 (blind-index key) of the code id and the
-- code: six digits are too few for a plain hash to hide them.
CREATE TABLE sms_codes (
	id         TEXT PRIMARY KEY,
	mobile_idx TEXT NOT NULL,
	purpose    TEXT NOT NULL CHECK (purpose IN ('register', 'login', 'reset')),
	code_hash  TEXT NOT NULL,
	created_at {{TIME}} NOT NULL,
	expires_at {{TIME}} NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	used_at    {{TIME}},
	ip         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sms_codes_mobile ON sms_codes (mobile_idx, purpose, created_at);

-- Development SMS gateway: messages land here instead of on a phone. The mobile is in clear
-- on purpose (a developer reads it); production nodes use a real gateway and this stays empty.
CREATE TABLE sms_sink (
	id         TEXT PRIMARY KEY,
	mobile     TEXT NOT NULL,
	text       TEXT NOT NULL,
	created_at {{TIME}} NOT NULL
);
CREATE INDEX sms_sink_created ON sms_sink (created_at);

-- Counters shared by every node behind the load balancer, keyed by what they limit:
--   ip:<addr>            failed logins from one source address (IPv6: its /64)
--   sms-ip:<addr>        SMS codes requested from one source address
--   sms-mobile:<idx>     the 60-second gap between codes to one mobile
--   realname:<account>   failed real-name verifications of one account
--   otp:<account>        wrong TOTP codes of one account
-- lockouts counts the locks so far, for the doubling back-off.
CREATE TABLE login_throttle (
	key          TEXT PRIMARY KEY,
	failures     INTEGER NOT NULL DEFAULT 0,
	window_start {{TIME}} NOT NULL,
	locked_until {{TIME}},
	lockouts     INTEGER NOT NULL DEFAULT 0
);

-- Single-sign-on sessions. Only the SM3 hash of the token is stored; id is the public handle
-- a person sees in "my sessions" and revokes by. level is the assurance reached in this
-- session; amr the methods used (JSON list of pwd, sms, otp, hwk, sm2; RFC 8176 names).
CREATE TABLE sso_sessions (
	token_hash           TEXT PRIMARY KEY,
	id                   TEXT NOT NULL UNIQUE,
	account_id           TEXT NOT NULL REFERENCES accounts (id),
	acting_enterprise_id TEXT REFERENCES enterprises (id),
	level                INTEGER NOT NULL CHECK (level BETWEEN 1 AND 3),
	amr                  TEXT NOT NULL,
	created_at           {{TIME}} NOT NULL,
	last_seen            {{TIME}} NOT NULL,
	expires_at           {{TIME}} NOT NULL,
	ip                   TEXT NOT NULL DEFAULT '',
	user_agent           TEXT NOT NULL DEFAULT '',
	revoked_at           {{TIME}}
);
CREATE INDEX sso_sessions_account ON sso_sessions (account_id, created_at);

-- dgov's OpenID Connect provider (/oidc). Secrets are never stored in clear:
--   * client secrets, authorization codes, access-token ids and refresh tokens are kept as
--     their SM3 hash (hex) — they are 256-bit random values, so an unkeyed hash is enough and a
--     copy of the database cannot be replayed;
--   * the RSA signing keys are sealed with the node's field cipher (SM4-GCM, FieldCipher.Seal,
--     associated data "idp.signing_keys:<kid>:private_key");
--   * the SSO session id that a token belongs to is kept as sid = SM3 of it (what RPs see in
--     ID and logout tokens) and, sealed, in idp_sessions so that RP-initiated logout can end it.
-- List-valued columns hold JSON arrays of strings.

CREATE TABLE idp_clients (
	id                        TEXT PRIMARY KEY,
	secret_hash               TEXT NOT NULL DEFAULT '',   -- '' for public (native) clients
	name                      TEXT NOT NULL,
	department_id             TEXT NOT NULL DEFAULT '',
	division_code             TEXT NOT NULL DEFAULT '',
	type                      TEXT NOT NULL CHECK (type IN ('web', 'native', 'service')),
	redirect_uris             TEXT NOT NULL DEFAULT '[]', -- exact match only
	post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
	grant_types               TEXT NOT NULL DEFAULT '[]',
	response_types            TEXT NOT NULL DEFAULT '[]',
	backchannel_logout_uri    TEXT NOT NULL DEFAULT '',
	require_pkce              {{BOOL}} NOT NULL DEFAULT TRUE,
	min_level                 INTEGER NOT NULL DEFAULT 0 CHECK (min_level BETWEEN 0 AND 3),
	allowed_scopes            TEXT NOT NULL DEFAULT '[]',
	created_by                TEXT NOT NULL DEFAULT '',
	created_at                {{TIME}} NOT NULL,
	secret_rotated_at         {{TIME}},
	disabled                  {{BOOL}} NOT NULL DEFAULT FALSE
);
CREATE INDEX idp_clients_division ON idp_clients (division_code, id);

-- An authorization request from /authorize until the code is exchanged; valid 10 minutes.
CREATE TABLE idp_auth_requests (
	id                    TEXT PRIMARY KEY,
	client_id             TEXT NOT NULL REFERENCES idp_clients (id) ON DELETE CASCADE,
	redirect_uri          TEXT NOT NULL,
	scopes                TEXT NOT NULL DEFAULT '[]',
	state                 TEXT NOT NULL DEFAULT '',
	nonce                 TEXT NOT NULL DEFAULT '',
	response_type         TEXT NOT NULL,
	response_mode         TEXT NOT NULL DEFAULT '',
	code_challenge        TEXT NOT NULL DEFAULT '',
	code_challenge_method TEXT NOT NULL DEFAULT '',
	prompt                TEXT NOT NULL DEFAULT '[]',
	max_age               INTEGER,                      -- seconds; NULL when not asked
	login_hint            TEXT NOT NULL DEFAULT '',
	required_level        INTEGER NOT NULL DEFAULT 0,   -- max(client min_level, acr_values)
	subject               TEXT,                         -- set by CompleteAuthRequest
	acting_for            TEXT NOT NULL DEFAULT '',     -- enterprise id when acting for one
	sid                   TEXT NOT NULL DEFAULT '',
	level                 INTEGER NOT NULL DEFAULT 0,
	auth_time             {{TIME}},
	amr                   TEXT NOT NULL DEFAULT '[]',
	done                  {{BOOL}} NOT NULL DEFAULT FALSE,
	created_at            {{TIME}} NOT NULL
);
CREATE INDEX idp_auth_requests_created ON idp_auth_requests (created_at);

-- One code per auth request (RFC 6749 §4.1.2: single use; a second use revokes what the
-- first issued, found through auth_request_id on the tokens).
CREATE TABLE idp_codes (
	code_hash       TEXT PRIMARY KEY,
	auth_request_id TEXT NOT NULL UNIQUE REFERENCES idp_auth_requests (id) ON DELETE CASCADE,
	created_at      {{TIME}} NOT NULL,
	used_at         {{TIME}}
);

-- Refresh tokens rotate: each use marks the row rotated and issues a new row in the same
-- family; presenting a rotated token again is reuse and revokes the whole family.
CREATE TABLE idp_refresh_tokens (
	id              TEXT PRIMARY KEY,
	token_hash      TEXT NOT NULL UNIQUE,
	family_id       TEXT NOT NULL,
	client_id       TEXT NOT NULL REFERENCES idp_clients (id) ON DELETE CASCADE,
	subject         TEXT NOT NULL,
	acting_for      TEXT NOT NULL DEFAULT '',
	scopes          TEXT NOT NULL DEFAULT '[]',
	audience        TEXT NOT NULL DEFAULT '[]',
	amr             TEXT NOT NULL DEFAULT '[]',
	auth_time       {{TIME}} NOT NULL,
	level           INTEGER NOT NULL DEFAULT 0,
	sid             TEXT NOT NULL DEFAULT '',
	auth_request_id TEXT NOT NULL DEFAULT '',
	created_at      {{TIME}} NOT NULL,
	expires_at      {{TIME}} NOT NULL,
	rotated_at      {{TIME}},
	revoked_at      {{TIME}}
);
CREATE INDEX idp_refresh_tokens_family ON idp_refresh_tokens (family_id);
CREATE INDEX idp_refresh_tokens_sid ON idp_refresh_tokens (sid);
CREATE INDEX idp_refresh_tokens_auth_request ON idp_refresh_tokens (auth_request_id);
CREATE INDEX idp_refresh_tokens_expires ON idp_refresh_tokens (expires_at);

-- Opaque access tokens. The bearer string is zitadel's AES-GCM envelope of "<id>:<subject>";
-- only SM3(id) is stored.
CREATE TABLE idp_access_tokens (
	id_hash         TEXT PRIMARY KEY,
	client_id       TEXT NOT NULL REFERENCES idp_clients (id) ON DELETE CASCADE,
	subject         TEXT NOT NULL,
	acting_for      TEXT NOT NULL DEFAULT '',
	scopes          TEXT NOT NULL DEFAULT '[]',
	audience        TEXT NOT NULL DEFAULT '[]',
	level           INTEGER NOT NULL DEFAULT 0,
	sid             TEXT NOT NULL DEFAULT '',
	auth_request_id TEXT NOT NULL DEFAULT '',
	refresh_id      TEXT NOT NULL DEFAULT '',
	family_id       TEXT NOT NULL DEFAULT '',
	created_at      {{TIME}} NOT NULL,
	expires_at      {{TIME}} NOT NULL,
	revoked_at      {{TIME}}
);
CREATE INDEX idp_access_tokens_sid ON idp_access_tokens (sid);
CREATE INDEX idp_access_tokens_family ON idp_access_tokens (family_id);
CREATE INDEX idp_access_tokens_auth_request ON idp_access_tokens (auth_request_id);
CREATE INDEX idp_access_tokens_client ON idp_access_tokens (client_id, subject);
CREATE INDEX idp_access_tokens_expires ON idp_access_tokens (expires_at);

-- SSO sessions that tokens were issued in, and the clients that got tokens in each: what
-- LogoutSession revokes and whom it notifies over back-channel logout.
CREATE TABLE idp_sessions (
	sid         TEXT PRIMARY KEY,
	session_enc {{BLOB}} NOT NULL,
	subject     TEXT NOT NULL,
	created_at  {{TIME}} NOT NULL
);
CREATE TABLE idp_session_clients (
	sid        TEXT NOT NULL REFERENCES idp_sessions (sid) ON DELETE CASCADE,
	client_id  TEXT NOT NULL REFERENCES idp_clients (id) ON DELETE CASCADE,
	created_at {{TIME}} NOT NULL,
	PRIMARY KEY (sid, client_id)
);

-- RS256 signing keys. One active; retired keys stay published for a while so that tokens
-- signed just before a rotation still verify.
CREATE TABLE idp_signing_keys (
	id          TEXT PRIMARY KEY,
	alg         TEXT NOT NULL,
	public_pem  TEXT NOT NULL,
	private_enc {{BLOB}} NOT NULL,
	created_at  {{TIME}} NOT NULL,
	retired_at  {{TIME}},
	active      {{BOOL}} NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX idp_signing_keys_one_active ON idp_signing_keys (active) WHERE active;

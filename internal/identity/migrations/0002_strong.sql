-- Level-3 (强实名) login methods of issue A1: SM2 certificates issued by the node's own CA, and
-- WebAuthn passkeys (a device's fingerprint or face). Both raise an account and its session to
-- level 3; see internal/identity/cert.go and webauthn.go.

-- The node's certificate authority for citizens' SM2 certificates: one row, created at first
-- use. key_enc is the PKCS#8 SM2 private key (base64) sealed with FieldCipher under
-- identity.identity_ca:<id>:key; cert_pem the self-signed SM2 certificate (public).
CREATE TABLE identity_ca (
	id         TEXT PRIMARY KEY,
	cert_pem   TEXT NOT NULL,
	key_enc    {{BLOB}} NOT NULL,
	created_at {{TIME}} NOT NULL
);

-- Certificates the CA issued. serial is the certificate's serial number in lower-case hex; the
-- subject carries the registered name (CN) and the account id (serialNumber), never the ID
-- number. A revoked certificate stays, with revoked_at set: a login with it is refused.
CREATE TABLE account_certificates (
	serial        TEXT PRIMARY KEY,
	account_id    TEXT NOT NULL REFERENCES accounts (id),
	ca_id         TEXT NOT NULL REFERENCES identity_ca (id),
	cert_pem      TEXT NOT NULL,
	not_before    {{TIME}} NOT NULL,
	not_after     {{TIME}} NOT NULL,
	created_at    {{TIME}} NOT NULL,
	last_used_at  {{TIME}},
	revoked_at    {{TIME}},
	revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX account_certificates_account ON account_certificates (account_id, created_at);

-- WebAuthn credentials (passkeys). credential_id is the credential's raw id, base64url without
-- padding; public_key its COSE key. sign_count is the authenticator's signature counter: a
-- counter that does not grow marks a cloned authenticator (clone_warning) and the credential is
-- refused from then on. flags holds the authenticator data flags of the last use (UP, UV, BE,
-- BS), which WebAuthn requires to stay consistent.
CREATE TABLE account_passkeys (
	id                 TEXT PRIMARY KEY,
	account_id         TEXT NOT NULL REFERENCES accounts (id),
	credential_id      TEXT NOT NULL UNIQUE,
	public_key         {{BLOB}} NOT NULL,
	sign_count         {{BIGINT}} NOT NULL DEFAULT 0,
	aaguid             TEXT NOT NULL DEFAULT '',
	transports         TEXT NOT NULL DEFAULT '[]',
	flags              INTEGER NOT NULL DEFAULT 0,
	attestation_type   TEXT NOT NULL DEFAULT '',
	attestation_format TEXT NOT NULL DEFAULT '',
	clone_warning      {{BOOL}} NOT NULL DEFAULT FALSE,
	name               TEXT NOT NULL,
	created_at         {{TIME}} NOT NULL,
	last_used_at       {{TIME}}
);
CREATE INDEX account_passkeys_account ON account_passkeys (account_id, created_at);

-- Pending login and registration ceremonies: a WebAuthn challenge with its session data, or an
-- SM2 login challenge. id is the SM3 hash of the handle the browser holds; binding the SM3
-- hash of what the ceremony is bound to (the portal: a per-browser cookie); data the ceremony
-- state (JSON). A row is deleted when used, whatever the outcome, so a challenge answers once.
CREATE TABLE identity_ceremonies (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('sm2_login', 'passkey_register', 'passkey_login')),
	binding    TEXT NOT NULL,
	account_id TEXT,
	data       TEXT NOT NULL,
	created_at {{TIME}} NOT NULL,
	expires_at {{TIME}} NOT NULL
);
CREATE INDEX identity_ceremonies_expires ON identity_ceremonies (expires_at);

-- Federation (issue A1 item 6): signing in through an upstream OpenID provider — the national
-- government service platform's identity (国家政务服务平台) — linked to a local account.
-- See internal/identity/federation.go for the linking policy.

-- One row per upstream identity: (issuer, subject) is who the upstream says signed in; it
-- maps to exactly one local account, and an account holds at most one identity per issuer.
-- subject is the upstream's pairwise or public "sub", opaque, in clear (it is no personal
-- data of ours and the login looks it up). Unlinking deletes the row; the audit log keeps the
-- history.
CREATE TABLE federated_identities (
	issuer        TEXT NOT NULL,
	subject       TEXT NOT NULL,
	account_id    TEXT NOT NULL REFERENCES accounts (id),
	-- explicit (the person signed in locally and upstream), id_number (the upstream's
	-- real-name identity matched one verified account), created (a new account for a person
	-- found in the population library).
	method        TEXT NOT NULL CHECK (method IN ('explicit', 'id_number', 'created')),
	linked_at     {{TIME}} NOT NULL,
	last_login_at {{TIME}},
	PRIMARY KEY (issuer, subject)
);
CREATE UNIQUE INDEX federated_identities_account ON federated_identities (account_id, issuer);

-- An account created by a federated login has no password of its own until its owner sets
-- one (its password_hash is then the hash of a random secret nobody knows, so a password
-- login against it costs what any other costs and fails). Every other account has one.
ALTER TABLE accounts ADD COLUMN password_set {{BOOL}} NOT NULL DEFAULT TRUE;

-- Federated logins started and finished: the SM3 hash of each login's state, kept until it
-- expires, so a callback is accepted once even if the browser's cookie and the upstream's code
-- were both replayed.
CREATE TABLE federated_states (
	state_hash TEXT PRIMARY KEY,
	expires_at {{TIME}} NOT NULL
);
CREATE INDEX federated_states_expires ON federated_states (expires_at);

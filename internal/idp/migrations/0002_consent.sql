-- Consent (授权同意): an application marked third_party must be allowed by the person, once per
-- set of scopes, before it gets their data. Departments' own applications are not third party.
ALTER TABLE idp_clients ADD COLUMN third_party {{BOOL}} NOT NULL DEFAULT FALSE;

CREATE TABLE idp_consents (
	subject    TEXT NOT NULL,
	client_id  TEXT NOT NULL REFERENCES idp_clients (id) ON DELETE CASCADE,
	scopes     TEXT NOT NULL DEFAULT '[]',
	granted_at {{TIME}} NOT NULL,
	PRIMARY KEY (subject, client_id)
);

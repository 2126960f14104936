-- The node's keyring. Every secret (SM2 private key, field SM4 key, blind-index key) is stored
-- wrapped: private_enc = nonce || SM4-GCM(key-encryption key, secret, AD = id 0x00 purpose),
-- where the key-encryption key is derived from the master key file, which never enters the
-- database. public_key is the PEM of an SM2 key (NULL for symmetric keys); it is checked
-- against the decrypted private key at load, so editing it cannot plant a forged key.
CREATE TABLE crypto_keys (
	id TEXT PRIMARY KEY,
	purpose TEXT NOT NULL,
	version INTEGER NOT NULL,
	alg TEXT NOT NULL,
	public_key TEXT,
	private_enc {{BLOB}} NOT NULL,
	created_at {{TIME}} NOT NULL,
	retired_at {{TIME}},
	active {{BOOL}} NOT NULL DEFAULT FALSE,
	UNIQUE (purpose, version)
);

-- At most one active key per purpose: two nodes racing to create or rotate a key cannot both win.
CREATE UNIQUE INDEX crypto_keys_one_active ON crypto_keys (purpose) WHERE active;

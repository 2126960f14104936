-- Base libraries (D2), the first two of six: population (人口库) and legal entities (法人库).
--
-- Personal fields are stored as FieldCipher.Seal output (SM4-GCM, key version || nonce ||
-- ciphertext || tag) in *_enc columns, with the associated data
--     baselib.<table>:<row id>:<column without _enc>     e.g. baselib.persons:0193…:id_number
-- so a ciphertext copied into another row or column no longer opens. Columns looked up by
-- exact value carry a keyed SM3 blind index (FieldCipher.BlindIndex, hex) in *_idx:
--     id_number_idx, legal_rep_id_idx   kind "resident_id" (the same kind on purpose, so that
--                                        the legal entities a person represents can be found)
--     mobile_idx                        kind "mobile", of the 11-digit normalised number
-- Division codes are GB/T 2260 codes of Shanxi, checked by the service against the embedded
-- table (internal/org/divisions) rather than by a foreign key, so the base libraries depend
-- on no other engine's tables.

CREATE TABLE persons (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	id_number_enc {{BLOB}} NOT NULL,
	id_number_idx TEXT NOT NULL UNIQUE,
	-- GB/T 2261.1-2003 sex code: 1 male, 2 female (read from the ID number, GB 11643).
	sex           TEXT NOT NULL CHECK (sex IN ('1', '2')),
	-- YYYY-MM-DD, from the ID number; kept in clear for statistics (age pyramids) and never
	-- shown in list views, where the ID number is masked.
	birth_date    TEXT NOT NULL,
	-- 户籍所在地: a Shanxi county-level division.
	division_code TEXT NOT NULL,
	address_enc   {{BLOB}},
	mobile_enc    {{BLOB}},
	mobile_idx    TEXT,
	created_at    {{TIME}} NOT NULL,
	updated_at    {{TIME}} NOT NULL
);
-- Lists are filtered by division code prefix and paged by id.
CREATE INDEX persons_division ON persons (division_code, id);
-- Several people may share a mobile number (a family's phone): indexed, not unique.
CREATE INDEX persons_mobile ON persons (mobile_idx);

CREATE TABLE legal_entities (
	id                     TEXT PRIMARY KEY,
	-- GB 32100-2015 unified social credit code; public (国家企业信用信息公示系统), so in clear.
	credit_code            TEXT NOT NULL UNIQUE,
	name                   TEXT NOT NULL,
	entity_type            TEXT NOT NULL,
	legal_rep_name         TEXT NOT NULL,
	legal_rep_id_enc       {{BLOB}},
	legal_rep_id_idx       TEXT,
	division_code          TEXT NOT NULL,
	address                TEXT NOT NULL DEFAULT '',
	-- Integer fen. For 个体工商户 the registered 资金数额, for cooperatives the members'
	-- contributions (成员出资总额): what the registry records in this place.
	registered_capital_fen {{BIGINT}} NOT NULL DEFAULT 0 CHECK (registered_capital_fen >= 0),
	established            TEXT NOT NULL,
	business_scope         TEXT NOT NULL DEFAULT '',
	status                 TEXT NOT NULL CHECK (status IN ('存续', '注销', '吊销')),
	created_at             {{TIME}} NOT NULL,
	updated_at             {{TIME}} NOT NULL
);
CREATE INDEX legal_entities_division ON legal_entities (division_code, id);
CREATE INDEX legal_entities_legal_rep ON legal_entities (legal_rep_id_idx);

-- Data quality (D5): rules per dataset, the catalogue resource a dataset stands behind (for
-- timeliness and the department roll-up), and reports with their findings.
--
-- Rules derived from a dataset's schema are not stored: they follow the schema of the active
-- version. quality_rules holds only the rules staff added. A report keeps the counts of every
-- rule (rules_json) exactly, and at most a configured number of findings.

CREATE TABLE quality_targets (
	dataset_id    TEXT PRIMARY KEY,
	resource_id   TEXT NOT NULL,
	resource_name TEXT NOT NULL DEFAULT '',
	dept_id       TEXT NOT NULL DEFAULT '',
	dept_name     TEXT NOT NULL DEFAULT '',
	division_code TEXT NOT NULL DEFAULT '',
	update_cycle  TEXT NOT NULL DEFAULT '',
	updated_at    {{TIME}} NOT NULL
);
CREATE INDEX quality_targets_dept ON quality_targets (dept_id);

CREATE TABLE quality_rules (
	id          TEXT PRIMARY KEY,
	dataset_id  TEXT NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('completeness', 'format', 'uniqueness', 'reference', 'timeliness')),
	column_name TEXT NOT NULL DEFAULT '',
	format      TEXT NOT NULL DEFAULT '',
	pattern     TEXT NOT NULL DEFAULT '',
	library     TEXT NOT NULL DEFAULT '',
	grace_hours INTEGER NOT NULL DEFAULT 0,
	created_by  TEXT NOT NULL DEFAULT '',
	created_at  {{TIME}} NOT NULL
);
CREATE INDEX quality_rules_dataset ON quality_rules (dataset_id, created_at);

CREATE TABLE quality_reports (
	id             TEXT PRIMARY KEY,
	dataset_id     TEXT NOT NULL,
	version        INTEGER NOT NULL,
	resource_id    TEXT NOT NULL DEFAULT '',
	dept_id        TEXT NOT NULL DEFAULT '',
	division_code  TEXT NOT NULL DEFAULT '',
	ran_at         {{TIME}} NOT NULL,
	total_rows     {{BIGINT}} NOT NULL,
	bad_rows       {{BIGINT}} NOT NULL,
	findings_total {{BIGINT}} NOT NULL,
	stale          {{BOOL}} NOT NULL,
	rules_json     TEXT NOT NULL
);
CREATE INDEX quality_reports_dataset ON quality_reports (dataset_id, ran_at);
CREATE INDEX quality_reports_dept ON quality_reports (dept_id, ran_at);

CREATE TABLE quality_findings (
	report_id   TEXT NOT NULL REFERENCES quality_reports (id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	row_no      {{BIGINT}} NOT NULL,
	line        {{BIGINT}} NOT NULL,
	column_name TEXT NOT NULL DEFAULT '',
	rule_id     TEXT NOT NULL,
	kind        TEXT NOT NULL,
	code        TEXT NOT NULL,
	reason_zh   TEXT NOT NULL,
	reason_en   TEXT NOT NULL,
	PRIMARY KEY (report_id, seq)
);

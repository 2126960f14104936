-- The case engine (P5). Departments and applicants are other engines' records, kept by id.

-- Definitions, one row per key and version; a case keeps the version it was opened with.
-- body is the canonical JSON of the validated definition (steps included).
CREATE TABLE workflow_definitions (
	def_key    TEXT NOT NULL,
	version    INTEGER NOT NULL CHECK (version > 0),
	name       TEXT NOT NULL,
	body       TEXT NOT NULL,
	created_at {{TIME}} NOT NULL,
	PRIMARY KEY (def_key, version)
);

-- Cases. Deadlines are absolute times while the case is open; while it is suspended (补正)
-- they are NULL and step_left / case_left hold the working time left, in microseconds.
-- queue_rank is the step deadline, or 9999-12-31 when the step has none, so the officers'
-- queue pages by (queue_rank, id) on one index. next_alert_at is when Sweep next has
-- something to do for the case (remind, then escalate); alert is what it has done for the
-- current step deadline.
CREATE TABLE workflow_cases (
	id              TEXT PRIMARY KEY,
	def_key         TEXT NOT NULL,
	def_version     INTEGER NOT NULL,
	title           TEXT NOT NULL,
	ref             TEXT NOT NULL,
	applicant_kind  TEXT NOT NULL,
	applicant_id    TEXT NOT NULL,
	dept_id         TEXT NOT NULL,
	division        TEXT NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('open', 'suspended', 'closed')),
	outcome         TEXT NOT NULL DEFAULT '' CHECK (outcome IN ('', 'approved', 'rejected', 'withdrawn')),
	step_index      INTEGER NOT NULL,
	step_key        TEXT NOT NULL,
	step_role       TEXT NOT NULL,
	claimed_by      TEXT NOT NULL DEFAULT '',
	opened_at       {{TIME}} NOT NULL,
	step_started_at {{TIME}} NOT NULL,
	step_due_at     {{TIME}},
	remind_at       {{TIME}},
	due_at          {{TIME}},
	queue_rank      {{TIME}} NOT NULL,
	next_alert_at   {{TIME}},
	alert           TEXT NOT NULL DEFAULT '' CHECK (alert IN ('', 'reminded', 'escalated')),
	suspended_at    {{TIME}},
	step_left       {{BIGINT}},
	case_left       {{BIGINT}},
	held_status     TEXT NOT NULL DEFAULT '',
	suspended_work  {{BIGINT}} NOT NULL DEFAULT 0,
	correction      TEXT NOT NULL DEFAULT '',
	closed_at       {{TIME}},
	elapsed_work    {{BIGINT}},
	data            TEXT NOT NULL DEFAULT '{}',
	version         INTEGER NOT NULL,
	updated_at      {{TIME}} NOT NULL,
	UNIQUE (def_key, ref)
);
-- The queue: a department's open cases, most urgent first. The trailing columns let the
-- queue's filters (colour, role, step, claim) be checked in the index, before reading rows.
CREATE INDEX workflow_cases_queue ON workflow_cases (dept_id, state, queue_rank, id, remind_at, step_role, step_key, claimed_by);
-- Statistics of a department, read from the index alone.
CREATE INDEX workflow_cases_stats ON workflow_cases (dept_id, state, step_key, division, outcome, queue_rank, remind_at, elapsed_work);
-- Sweep: only cases with an alert to come are in this index.
CREATE INDEX workflow_cases_alert ON workflow_cases (next_alert_at) WHERE next_alert_at IS NOT NULL;
CREATE INDEX workflow_cases_applicant ON workflow_cases (applicant_kind, applicant_id, opened_at);

-- Each case's division and all divisions above it (GB/T 2260), so that "within the
-- actor's division" is one indexed join.
CREATE TABLE workflow_case_scopes (
	ancestor TEXT NOT NULL,
	case_id  TEXT NOT NULL REFERENCES workflow_cases (id),
	PRIMARY KEY (ancestor, case_id)
);
CREATE INDEX workflow_case_scopes_case ON workflow_case_scopes (case_id);

-- History: one row per transition, reminder and escalation.
CREATE TABLE workflow_events (
	seq        {{SERIAL}},
	case_id    TEXT NOT NULL REFERENCES workflow_cases (id),
	action     TEXT NOT NULL,
	actor      TEXT NOT NULL,
	step       TEXT NOT NULL,
	to_step    TEXT NOT NULL DEFAULT '',
	dept_id    TEXT NOT NULL,
	to_dept_id TEXT NOT NULL DEFAULT '',
	comment    TEXT NOT NULL DEFAULT '',
	items      TEXT NOT NULL DEFAULT '[]',
	due_at     {{TIME}},
	at         {{TIME}} NOT NULL
);
CREATE INDEX workflow_events_case ON workflow_events (case_id, seq);

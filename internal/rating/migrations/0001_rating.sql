-- 好差评 (P5 item 7): one rating per applicant per completed application, and the state of the
-- rectification case a poor rating (差评) opens. Applications, cases and departments are other
-- engines' records, kept by id; item and department names are copied at rating time so that
-- statistics and the public summary need no other engine.
CREATE TABLE ratings (
	id                TEXT PRIMARY KEY,
	application_id    TEXT NOT NULL,
	application_no    TEXT NOT NULL DEFAULT '',
	case_id           TEXT NOT NULL,
	rater_kind        TEXT NOT NULL,
	rater_id          TEXT NOT NULL,
	item_code         TEXT NOT NULL,
	item_name         TEXT NOT NULL,
	item_name_en      TEXT NOT NULL DEFAULT '',
	dept_id           TEXT NOT NULL,
	dept_name         TEXT NOT NULL DEFAULT '',
	division          TEXT NOT NULL,
	level             INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
	channel           TEXT NOT NULL CHECK (channel IN ('web', 'app', 'hall', 'phone')),
	comment           TEXT NOT NULL DEFAULT '',
	rated_at          {{TIME}} NOT NULL,
	updated_at        {{TIME}} NOT NULL,
	-- A rating may be replaced once: first_level keeps what it said before.
	revised_at        {{TIME}},
	first_level       INTEGER,
	-- The rectification (整改) case of a poor rating, mirrored from the case engine by Sync.
	-- rectify_version is the case version last mirrored, so an older view never overwrites a newer.
	rectify_case_id   TEXT NOT NULL DEFAULT '',
	rectify_state     TEXT NOT NULL DEFAULT '' CHECK (rectify_state IN ('', 'open', 'callback', 'done', 'refused', 'withdrawn')),
	rectify_version   INTEGER NOT NULL DEFAULT 0,
	rectify_due_at    {{TIME}},
	rectified_at      {{TIME}},
	rectify_result    TEXT NOT NULL DEFAULT '',
	rectified_on_time {{BOOL}} NOT NULL DEFAULT FALSE,
	callback_at       {{TIME}},
	callback_result   TEXT NOT NULL DEFAULT '',
	confirmed         {{BOOL}} NOT NULL DEFAULT FALSE,
	UNIQUE (application_id, rater_kind, rater_id)
);
-- A department's ratings, newest first (console list) and its statistics.
CREATE INDEX ratings_dept ON ratings (dept_id, rated_at, id);
-- Rectifications still under way (the reconciling job).
CREATE INDEX ratings_rectify_open ON ratings (rectify_state) WHERE rectify_state IN ('open', 'callback');
CREATE INDEX ratings_rater ON ratings (rater_kind, rater_id, rated_at);

-- Each rating's division and every division above it (GB/T 2260), so that "within a division"
-- is one indexed join, as for cases.
CREATE TABLE rating_scopes (
	ancestor  TEXT NOT NULL,
	rating_id TEXT NOT NULL REFERENCES ratings (id),
	rated_at  {{TIME}} NOT NULL,
	PRIMARY KEY (ancestor, rating_id)
);
CREATE INDEX rating_scopes_time ON rating_scopes (ancestor, rated_at, rating_id);

-- The reason tags chosen (评价标签), for counts of what people praise and criticise.
CREATE TABLE rating_tags (
	rating_id TEXT NOT NULL REFERENCES ratings (id),
	tag       TEXT NOT NULL,
	PRIMARY KEY (rating_id, tag)
);

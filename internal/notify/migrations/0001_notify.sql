-- In-site messages (站内信) to citizens and enterprises, and the SMS notice that goes with
-- each when there is a number to send it to. Recipients are other engines' subjects, kept
-- by kind and id. The mobile number is SM4-sealed and erased once the SMS is sent or given up.
CREATE TABLE notifications (
	id             TEXT PRIMARY KEY,
	recipient_kind TEXT NOT NULL,
	recipient_id   TEXT NOT NULL,
	title_zh       TEXT NOT NULL,
	title_en       TEXT NOT NULL,
	body_zh        TEXT NOT NULL,
	body_en        TEXT NOT NULL,
	link           TEXT NOT NULL DEFAULT '',
	created_at     {{TIME}} NOT NULL,
	read_at        {{TIME}},
	-- sms_state: '' (no SMS), pending (to send; sms_next_at is when), sent, failed (given up).
	-- A sender takes a pending row by moving sms_next_at ahead (a lease), so two senders never
	-- send one message twice unless one dies mid-send.
	sms_state      TEXT NOT NULL DEFAULT '' CHECK (sms_state IN ('', 'pending', 'sent', 'failed')),
	sms_phone_enc  {{BLOB}},
	sms_text       TEXT NOT NULL DEFAULT '',
	sms_attempts   INTEGER NOT NULL DEFAULT 0,
	sms_next_at    {{TIME}},
	sms_sent_at    {{TIME}},
	sms_error      TEXT NOT NULL DEFAULT ''
);
-- The inbox: a recipient's messages, newest first (ids are time-ordered).
CREATE INDEX notifications_inbox ON notifications (recipient_kind, recipient_id, id);
CREATE INDEX notifications_unread ON notifications (recipient_kind, recipient_id) WHERE read_at IS NULL;
CREATE INDEX notifications_sms ON notifications (sms_next_at) WHERE sms_state = 'pending';

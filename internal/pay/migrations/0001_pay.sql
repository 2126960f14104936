-- Non-tax payment (网上非税支付, A4). No foreign keys to other engines' tables: departments,
-- applications and payers are referenced by id.

-- Payment orders (缴款单). code is the 20-digit payment code (缴款码), also the merchant order
-- number the channel knows the charge by. Money is integer fen; paid_fen and refunded_fen
-- follow the channel transactions recorded in pay_txns.
CREATE TABLE pay_orders (
	id             TEXT PRIMARY KEY,
	code           TEXT NOT NULL UNIQUE,
	ref            TEXT NOT NULL,
	item_code      TEXT NOT NULL,
	payer_kind     TEXT NOT NULL,
	payer_id       TEXT NOT NULL,
	payer_name     TEXT NOT NULL,
	dept_id        TEXT NOT NULL,
	dept_name      TEXT NOT NULL DEFAULT '',
	division       TEXT NOT NULL,
	total_fen      {{BIGINT}} NOT NULL CHECK (total_fen > 0),
	paid_fen       {{BIGINT}} NOT NULL DEFAULT 0,
	refunded_fen   {{BIGINT}} NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= paid_fen),
	status         TEXT NOT NULL CHECK (status IN ('unpaid', 'paying', 'paid', 'partially_refunded', 'refunded', 'closed', 'expired')),
	channel        TEXT NOT NULL DEFAULT '',
	pay_url        TEXT NOT NULL DEFAULT '',
	channel_txn_id TEXT NOT NULL DEFAULT '',
	expires_at     {{TIME}} NOT NULL,
	paid_at        {{TIME}},
	closed_reason  TEXT NOT NULL DEFAULT '',
	created_at     {{TIME}} NOT NULL,
	updated_at     {{TIME}} NOT NULL
);
-- One live order per reference (an application has one order to pay at a time).
CREATE UNIQUE INDEX pay_orders_ref_live ON pay_orders (ref) WHERE status NOT IN ('closed', 'expired');
CREATE INDEX pay_orders_payer ON pay_orders (payer_kind, payer_id, created_at);
CREATE INDEX pay_orders_dept ON pay_orders (dept_id, created_at);
CREATE INDEX pay_orders_division ON pay_orders (division, created_at);
CREATE INDEX pay_orders_status ON pay_orders (status, expires_at);

-- The fee lines of an order (收费项目), with the legal basis of each (收费依据).
CREATE TABLE pay_order_lines (
	order_id   TEXT NOT NULL REFERENCES pay_orders (id),
	line_no    INTEGER NOT NULL,
	name       TEXT NOT NULL,
	amount_fen {{BIGINT}} NOT NULL CHECK (amount_fen > 0),
	basis      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (order_id, line_no)
);

-- Sequences of payment codes and receipt numbers, per prefix (division and day, or receipt
-- code and year).
CREATE TABLE pay_sequences (
	prefix TEXT PRIMARY KEY,
	last   {{BIGINT}} NOT NULL
);

-- Every channel transaction we have seen, once: the key (channel, txn_id) makes callbacks,
-- their retries and duplicates, and the same transaction learnt by a query, idempotent.
-- status: applied (it moved the order), held (a refund seen before its payment, applied when
-- the payment is), rejected (authentic but inconsistent with our order: reason says why).
CREATE TABLE pay_txns (
	channel     TEXT NOT NULL,
	txn_id      TEXT NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('pay', 'refund')),
	code        TEXT NOT NULL,
	order_id    TEXT NOT NULL DEFAULT '',
	refund_id   TEXT NOT NULL DEFAULT '',
	amount_fen  {{BIGINT}} NOT NULL,
	at          {{TIME}} NOT NULL,
	source      TEXT NOT NULL CHECK (source IN ('notify', 'query', 'refund')),
	status      TEXT NOT NULL CHECK (status IN ('applied', 'held', 'rejected')),
	reason      TEXT NOT NULL DEFAULT '',
	received_at {{TIME}} NOT NULL,
	PRIMARY KEY (channel, txn_id)
);
CREATE INDEX pay_txns_code ON pay_txns (code, status);
CREATE INDEX pay_txns_at ON pay_txns (channel, at);

-- Refunds, idempotent by the requester's id. A refund the channel made on its own (seen only
-- through its notification) gets request_id 'channel:<refund id>'.
CREATE TABLE pay_refunds (
	id           TEXT PRIMARY KEY,
	order_id     TEXT NOT NULL REFERENCES pay_orders (id),
	request_id   TEXT NOT NULL UNIQUE,
	amount_fen   {{BIGINT}} NOT NULL CHECK (amount_fen > 0),
	reason       TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
	txn_id       TEXT NOT NULL DEFAULT '',
	requested_by TEXT NOT NULL,
	failure      TEXT NOT NULL DEFAULT '',
	created_at   {{TIME}} NOT NULL,
	done_at      {{TIME}}
);
CREATE INDEX pay_refunds_order ON pay_refunds (order_id, created_at);
CREATE INDEX pay_refunds_pending ON pay_refunds (status) WHERE status = 'pending';

-- Electronic receipts (电子票据), one per paid order, signed with the node's SM2 key. body is
-- the receipt's JSON as signed (lines included), kept byte for byte.
CREATE TABLE pay_receipts (
	order_id   TEXT PRIMARY KEY REFERENCES pay_orders (id),
	number     TEXT NOT NULL UNIQUE,
	body       TEXT NOT NULL,
	issued_at  {{TIME}} NOT NULL
);

-- Daily reconciliation against a channel's statement, one report per channel and day (a
-- rerun replaces it), and its mismatches.
CREATE TABLE pay_recon_reports (
	id                TEXT PRIMARY KEY,
	channel           TEXT NOT NULL,
	day               TEXT NOT NULL,
	ran_at            {{TIME}} NOT NULL,
	channel_count     INTEGER NOT NULL,
	our_count         INTEGER NOT NULL,
	matched           INTEGER NOT NULL,
	mismatches        INTEGER NOT NULL,
	channel_pay_fen   {{BIGINT}} NOT NULL,
	channel_refund_fen {{BIGINT}} NOT NULL,
	our_pay_fen       {{BIGINT}} NOT NULL,
	our_refund_fen    {{BIGINT}} NOT NULL,
	UNIQUE (channel, day)
);
CREATE TABLE pay_recon_items (
	report_id          TEXT NOT NULL REFERENCES pay_recon_reports (id),
	line_no            INTEGER NOT NULL,
	kind               TEXT NOT NULL CHECK (kind IN ('missing_ours', 'missing_channel', 'amount_differs', 'status_differs')),
	txn_id             TEXT NOT NULL,
	code               TEXT NOT NULL,
	txn_kind           TEXT NOT NULL,
	our_amount_fen     {{BIGINT}} NOT NULL DEFAULT 0,
	channel_amount_fen {{BIGINT}} NOT NULL DEFAULT 0,
	detail             TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (report_id, line_no)
);

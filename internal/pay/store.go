package pay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
)

func isNoRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// ---- orders ----

const orderCols = `id, code, ref, item_code, payer_kind, payer_id, payer_name, dept_id, dept_name, division,
	total_fen, paid_fen, refunded_fen, status, channel, pay_url, channel_txn_id, expires_at, paid_at, closed_reason,
	created_at, updated_at`

func scanOrder(sc db.Scanner) (Order, error) {
	var o Order
	var paid sql.NullTime
	var kind string
	err := sc.Scan(&o.ID, &o.Code, &o.Ref, &o.ItemCode, &kind, &o.PayerID, &o.PayerName, &o.DeptID, &o.DeptName, &o.Division,
		&o.TotalFen, &o.PaidFen, &o.RefundedFen, &o.Status, &o.Channel, &o.PayURL, &o.ChannelTxnID, &o.ExpiresAt, &paid, &o.ClosedReason,
		&o.CreatedAt, &o.UpdatedAt)
	o.PayerKind = authz.Kind(kind)
	o.PaidAt, o.ExpiresAt, o.CreatedAt, o.UpdatedAt = db.TimePtr(paid), o.ExpiresAt.UTC(), o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o, err
}

func insertOrder(ctx context.Context, tx *db.Tx, o Order) error {
	_, err := tx.Exec(ctx, `INSERT INTO pay_orders (`+orderCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.Code, o.Ref, o.ItemCode, string(o.PayerKind), o.PayerID, o.PayerName, o.DeptID, o.DeptName, o.Division,
		o.TotalFen, o.PaidFen, o.RefundedFen, string(o.Status), o.Channel, o.PayURL, o.ChannelTxnID, o.ExpiresAt, db.NullTime(o.PaidAt), o.ClosedReason,
		o.CreatedAt, o.UpdatedAt)
	if err != nil {
		return err
	}
	for i, l := range o.Lines {
		if _, err := tx.Exec(ctx, `INSERT INTO pay_order_lines (order_id, line_no, name, amount_fen, basis) VALUES (?, ?, ?, ?, ?)`,
			o.ID, i+1, l.Name, l.AmountFen, l.Basis); err != nil {
			return err
		}
	}
	return nil
}

// saveOrder writes the fields that change after creation.
func saveOrder(ctx context.Context, tx *db.Tx, o Order) error {
	_, err := tx.Exec(ctx, `UPDATE pay_orders SET paid_fen = ?, refunded_fen = ?, status = ?, channel = ?, pay_url = ?,
		channel_txn_id = ?, paid_at = ?, closed_reason = ?, updated_at = ? WHERE id = ?`,
		o.PaidFen, o.RefundedFen, string(o.Status), o.Channel, o.PayURL, o.ChannelTxnID, db.NullTime(o.PaidAt), o.ClosedReason, o.UpdatedAt, o.ID)
	return err
}

func loadLines(ctx context.Context, q db.Querier, o *Order) error {
	rows, err := q.Query(ctx, `SELECT name, amount_fen, basis FROM pay_order_lines WHERE order_id = ? ORDER BY line_no`, o.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	o.Lines = []Line{}
	for rows.Next() {
		var l Line
		if err := rows.Scan(&l.Name, &l.AmountFen, &l.Basis); err != nil {
			return err
		}
		o.Lines = append(o.Lines, l)
	}
	return rows.Err()
}

func getOrder(ctx context.Context, q db.Querier, where string, arg any) (Order, error) {
	o, err := scanOrder(q.QueryRow(ctx, `SELECT `+orderCols+` FROM pay_orders WHERE `+where, arg))
	if err != nil {
		return o, err
	}
	return o, loadLines(ctx, q, &o)
}

// lockOrder reads an order for update (the row lock on PostgreSQL; SQLite transactions hold
// the write lock from BEGIN), so two changes to one order apply one after the other.
func lockOrder(ctx context.Context, tx *db.Tx, where string, arg any) (Order, error) {
	if _, err := tx.Exec(ctx, `UPDATE pay_orders SET status = status WHERE `+where, arg); err != nil {
		return Order{}, err
	}
	return getOrder(ctx, tx, where, arg)
}

func queryOrders(ctx context.Context, q db.Querier, query string, args ...any) ([]Order, error) {
	return db.Collect(ctx, q, `SELECT `+orderCols+` FROM pay_orders `+query, args, scanOrder)
}

// ---- channel transactions ----

type txnRecord struct {
	Channel string
	Txn
	OrderID    string
	Source     string // notify, query, refund
	Status     string // applied, held, rejected
	Reason     string
	ReceivedAt time.Time
}

const (
	txnApplied  = "applied"
	txnHeld     = "held"
	txnRejected = "rejected"
)

// claimTxn records a channel transaction unless it is recorded already: the first of any
// number of deliveries wins; the others find it (PostgreSQL makes them wait on the key until
// the first commits) and get ok = false with the stored record.
func claimTxn(ctx context.Context, tx *db.Tx, r txnRecord) (stored txnRecord, ok bool, err error) {
	res, err := tx.Exec(ctx, `INSERT INTO pay_txns (channel, txn_id, kind, code, order_id, refund_id, amount_fen, at, source, status, reason, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, txn_id) DO NOTHING`,
		r.Channel, r.TxnID, string(r.Kind), r.Code, r.OrderID, r.RefundID, r.AmountFen, r.At, r.Source, r.Status, r.Reason, r.ReceivedAt)
	if err != nil {
		return r, false, fmt.Errorf("record transaction %s/%s: %w", r.Channel, r.TxnID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return r, true, nil
	}
	stored, err = getTxn(ctx, tx, r.Channel, r.TxnID)
	return stored, false, err
}

func setTxnStatus(ctx context.Context, tx *db.Tx, r txnRecord) error {
	_, err := tx.Exec(ctx, `UPDATE pay_txns SET status = ?, reason = ?, order_id = ? WHERE channel = ? AND txn_id = ?`,
		r.Status, r.Reason, r.OrderID, r.Channel, r.TxnID)
	return err
}

const txnCols = `channel, txn_id, kind, code, order_id, refund_id, amount_fen, at, source, status, reason, received_at`

func scanTxn(sc db.Scanner) (txnRecord, error) {
	var r txnRecord
	var kind string
	err := sc.Scan(&r.Channel, &r.TxnID, &kind, &r.Code, &r.OrderID, &r.RefundID, &r.AmountFen, &r.At, &r.Source, &r.Status, &r.Reason, &r.ReceivedAt)
	r.Kind, r.At, r.ReceivedAt = TxnKind(kind), r.At.UTC(), r.ReceivedAt.UTC()
	return r, err
}

func getTxn(ctx context.Context, q db.Querier, channel, txnID string) (txnRecord, error) {
	return scanTxn(q.QueryRow(ctx, `SELECT `+txnCols+` FROM pay_txns WHERE channel = ? AND txn_id = ?`, channel, txnID))
}

func queryTxns(ctx context.Context, q db.Querier, query string, args ...any) ([]txnRecord, error) {
	return db.Collect(ctx, q, `SELECT `+txnCols+` FROM pay_txns `+query, args, scanTxn)
}

// ---- refunds ----

const refundCols = `id, order_id, request_id, amount_fen, reason, status, txn_id, requested_by, failure, created_at, done_at`

func scanRefund(sc db.Scanner) (Refund, error) {
	var r Refund
	var done sql.NullTime
	err := sc.Scan(&r.ID, &r.OrderID, &r.RequestID, &r.AmountFen, &r.Reason, &r.Status, &r.TxnID, &r.RequestedBy, &r.Failure, &r.CreatedAt, &done)
	r.DoneAt, r.CreatedAt = db.TimePtr(done), r.CreatedAt.UTC()
	return r, err
}

func insertRefund(ctx context.Context, tx *db.Tx, r Refund) error {
	_, err := tx.Exec(ctx, `INSERT INTO pay_refunds (`+refundCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.OrderID, r.RequestID, r.AmountFen, r.Reason, string(r.Status), r.TxnID, r.RequestedBy, r.Failure, r.CreatedAt, db.NullTime(r.DoneAt))
	return err
}

func saveRefund(ctx context.Context, tx *db.Tx, r Refund) error {
	_, err := tx.Exec(ctx, `UPDATE pay_refunds SET status = ?, txn_id = ?, failure = ?, done_at = ? WHERE id = ?`,
		string(r.Status), r.TxnID, r.Failure, db.NullTime(r.DoneAt), r.ID)
	return err
}

func getRefund(ctx context.Context, q db.Querier, where string, args ...any) (Refund, error) {
	return scanRefund(q.QueryRow(ctx, `SELECT `+refundCols+` FROM pay_refunds WHERE `+where, args...))
}

func queryRefunds(ctx context.Context, q db.Querier, query string, args ...any) ([]Refund, error) {
	return db.Collect(ctx, q, `SELECT `+refundCols+` FROM pay_refunds `+query, args, scanRefund)
}

// pendingRefundFen is the sum of the order's refunds in flight.
func pendingRefundFen(ctx context.Context, q db.Querier, orderID string) (int64, error) {
	var n sql.NullInt64
	err := q.QueryRow(ctx, `SELECT SUM(amount_fen) FROM pay_refunds WHERE order_id = ? AND status = 'pending'`, orderID).Scan(&n)
	return n.Int64, err
}

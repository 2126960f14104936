package pay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Outcome is what recording a channel transaction did.
type Outcome string

const (
	OutcomeApplied   Outcome = "applied"   // it moved the order
	OutcomeDuplicate Outcome = "duplicate" // recorded before: nothing changed
	OutcomeHeld      Outcome = "held"      // a refund before its payment: kept, applied after it
	OutcomeRejected  Outcome = "rejected"  // authentic but inconsistent with the order: recorded, nothing changed
)

// ErrTxnRejected is the answer to a transaction that does not fit its order (amount, second
// payment, unknown code). The transaction is recorded with the reason, for reconciliation
// and the officers.
var ErrTxnRejected = &i18n.Error{Code: "pay.txn_rejected", Status: http.StatusUnprocessableEntity,
	Msg: i18n.T("支付渠道交易与缴款单不符，已记录待核查", "the channel transaction does not match the order; recorded for review")}

// channelActor is the audit actor of changes a channel reports (the system).
var channelActor = authz.Subject{}

// HandleNotification verifies and records a callback of channel. A duplicate returns
// OutcomeDuplicate and changes nothing; a bad signature is ErrBadSignature and nothing is
// stored; a transaction that does not fit its order is stored as rejected and returned as
// ErrTxnRejected.
func (s *Service) HandleNotification(ctx context.Context, channel string, header http.Header, body []byte) (Outcome, error) {
	ch, err := s.channel(channel)
	if err != nil {
		return "", err
	}
	t, err := ch.ParseNotification(header, body)
	if err != nil {
		return "", err
	}
	if err := CheckTxn(t); err != nil {
		return "", ErrBadNotification.Wrap(err)
	}
	return s.applyTxn(ctx, channel, t, "notify")
}

// applyTxn records one channel transaction and applies it to its order, once.
func (s *Service) applyTxn(ctx context.Context, channel string, t Txn, source string) (Outcome, error) {
	t.At = db.Now(t.At)
	var out Outcome
	var reason string
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		out, reason = "", ""
		rec := txnRecord{Channel: channel, Txn: t, Source: source, Status: txnApplied, ReceivedAt: s.clock()}
		// The order's lock first, the transaction's key second, everywhere: no deadlocks.
		o, err := lockOrder(ctx, tx, `code = ?`, t.Code)
		found := err == nil
		if err != nil && !isNoRow(err) {
			return fmt.Errorf("lock order %s: %w", t.Code, err)
		}
		if found {
			rec.OrderID = o.ID
		}
		stored, fresh, err := claimTxn(ctx, tx, rec)
		if err != nil {
			return err
		}
		if !fresh {
			out, reason = OutcomeDuplicate, stored.Reason
			if stored.Status == txnRejected {
				out = OutcomeRejected
			}
			return nil
		}
		switch {
		case !found:
			reason = "no order has this payment code"
		case o.Channel != "" && o.Channel != channel:
			reason = fmt.Sprintf("the order is being paid at channel %s", o.Channel)
		case t.Kind == TxnPay:
			out, reason, err = s.applyPayment(ctx, tx, &o, &rec)
		default:
			out, reason, err = s.applyRefund(ctx, tx, &o, &rec)
		}
		if err != nil {
			return err
		}
		if reason != "" {
			out = OutcomeRejected
			rec.Status, rec.Reason = txnRejected, reason
			if err := setTxnStatus(ctx, tx, rec); err != nil {
				return err
			}
			return s.record(ctx, tx, channelActor, ActionTxnRejected, "pay_txn:"+channel+"/"+t.TxnID,
				map[string]any{"code": t.Code, "kind": string(t.Kind), "amount_fen": t.AmountFen, "reason": reason, "source": source})
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if out == OutcomeRejected {
		s.log.WarnContext(ctx, "pay: channel transaction rejected", "channel", channel, "txn_id", t.TxnID, "code", t.Code, "reason", reason)
		return out, ErrTxnRejected.Wrap(errors.New(reason))
	}
	return out, nil
}

// applyPayment records the payment of o; a non-empty reason rejects it.
func (s *Service) applyPayment(ctx context.Context, tx *db.Tx, o *Order, rec *txnRecord) (Outcome, string, error) {
	switch {
	case rec.AmountFen != o.TotalFen:
		return "", fmt.Sprintf("amount %d fen differs from the order's total %d fen", rec.AmountFen, o.TotalFen), nil
	case o.Status.Settled():
		return "", fmt.Sprintf("the order was already paid by transaction %s", o.ChannelTxnID), nil
	}
	late := !o.Status.Open() // closed or expired meanwhile: the money moved, so it counts
	at := rec.At
	o.Status, o.PaidFen, o.ChannelTxnID, o.Channel, o.PaidAt, o.UpdatedAt = StatusPaid, rec.AmountFen, rec.TxnID, rec.Channel, &at, s.clock()
	if err := saveOrder(ctx, tx, *o); err != nil {
		return "", "", fmt.Errorf("save order %s: %w", o.ID, err)
	}
	receipt, err := s.issueReceipt(ctx, tx, *o)
	if err != nil {
		return "", "", err
	}
	// One audit entry says both: paid, and the receipt issued for it.
	detail := map[string]any{"channel": rec.Channel, "txn_id": rec.TxnID, "source": rec.Source, "receipt": receipt.Code + receipt.Number}
	if late {
		detail["late"] = true
	}
	if err := s.recordOrder(ctx, tx, channelActor, ActionPaid, *o, detail); err != nil {
		return "", "", err
	}
	if err := publish(ctx, tx, EventPaid, *o); err != nil {
		return "", "", err
	}
	// Refunds the channel reported before this payment apply now, in the channel's order.
	held, err := queryTxns(ctx, tx, `WHERE channel = ? AND code = ? AND status = 'held' ORDER BY at, txn_id`, rec.Channel, o.Code)
	if err != nil {
		return "", "", fmt.Errorf("held refunds of %s: %w", o.Code, err)
	}
	for _, h := range held {
		_, reason, err := s.applyRefund(ctx, tx, o, &h)
		if err != nil {
			return "", "", err
		}
		h.Status, h.Reason, h.OrderID = txnApplied, "", o.ID
		if reason != "" {
			h.Status, h.Reason = txnRejected, reason
			if err := s.record(ctx, tx, channelActor, ActionTxnRejected, "pay_txn:"+h.Channel+"/"+h.TxnID,
				map[string]any{"code": h.Code, "kind": string(h.Kind), "amount_fen": h.AmountFen, "reason": reason, "source": h.Source}); err != nil {
				return "", "", err
			}
		}
		if err := setTxnStatus(ctx, tx, h); err != nil {
			return "", "", err
		}
	}
	return OutcomeApplied, "", nil
}

// applyRefund records a refund of o; a non-empty reason rejects it. A refund of an order not
// yet paid in our records is held.
func (s *Service) applyRefund(ctx context.Context, tx *db.Tx, o *Order, rec *txnRecord) (Outcome, string, error) {
	if !o.Status.Settled() {
		rec.Status = txnHeld
		if err := setTxnStatus(ctx, tx, *rec); err != nil {
			return "", "", err
		}
		return OutcomeHeld, "", s.record(ctx, tx, channelActor, ActionTxnHeld, "pay_txn:"+rec.Channel+"/"+rec.TxnID,
			map[string]any{"code": rec.Code, "refund_id": rec.RefundID, "amount_fen": rec.AmountFen, "source": rec.Source})
	}
	now := s.clock()
	r, err := getRefund(ctx, tx, `order_id = ? AND (id = ? OR request_id = ?)`, o.ID, rec.RefundID, "channel:"+rec.RefundID)
	known := err == nil
	if err != nil && !isNoRow(err) {
		return "", "", fmt.Errorf("refund %s: %w", rec.RefundID, err)
	}
	switch {
	case known && r.AmountFen != rec.AmountFen:
		return "", fmt.Sprintf("amount %d fen differs from refund %s of %d fen", rec.AmountFen, r.ID, r.AmountFen), nil
	case known && r.Status == RefundSucceeded:
		return "", fmt.Sprintf("refund %s was already recorded by transaction %s", r.ID, r.TxnID), nil
	case o.RefundedFen+rec.AmountFen > o.PaidFen:
		return "", fmt.Sprintf("refunds would exceed the %d fen paid", o.PaidFen), nil
	}
	action := ActionRefundDone
	if !known {
		// A refund the channel made by itself (at its counter, on a dispute): record it.
		action = ActionRefundRecorded
		r = Refund{ID: db.NewID(), OrderID: o.ID, RequestID: "channel:" + rec.RefundID, AmountFen: rec.AmountFen,
			RequestedBy: "channel:" + rec.Channel, CreatedAt: now}
	}
	r.Status, r.TxnID, r.Failure, r.DoneAt = RefundSucceeded, rec.TxnID, "", &now
	if known {
		err = saveRefund(ctx, tx, r)
	} else {
		err = insertRefund(ctx, tx, r)
	}
	if err != nil {
		return "", "", fmt.Errorf("save refund %s: %w", r.ID, err)
	}
	o.RefundedFen += rec.AmountFen
	o.Status, o.UpdatedAt = StatusPartiallyRefunded, now
	if o.RefundedFen == o.PaidFen {
		o.Status = StatusRefunded
	}
	if err := saveOrder(ctx, tx, *o); err != nil {
		return "", "", fmt.Errorf("save order %s: %w", o.ID, err)
	}
	if err := s.recordOrder(ctx, tx, channelActor, action, *o, map[string]any{"refund_id": r.ID, "request_id": r.RequestID,
		"amount_fen": r.AmountFen, "txn_id": rec.TxnID, "source": rec.Source}); err != nil {
		return "", "", err
	}
	return OutcomeApplied, "", publish(ctx, tx, EventRefunded, *o)
}

// maxNotificationBody bounds a callback's body.
const maxNotificationBody = 64 << 10

// NotifyHandler is the channels' callback endpoint; the app mounts it as
// POST /api/v1/pay/notify/{channel}. It answers 200 when the transaction is recorded (first
// time or again), 401 to a bad signature (logged; nothing is stored), 422 to a transaction
// that does not fit its order (recorded for review), and 5xx when we could not record it — the
// channel then retries, which is what brings a payment in after a failure on our side.
func (s *Service) NotifyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		channel := r.PathValue("channel")
		if channel == "" {
			channel = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxNotificationBody+1))
		if err != nil {
			httpx.WriteError(w, r, ErrBadNotification.Wrap(err))
			return
		}
		if len(body) > maxNotificationBody {
			httpx.WriteError(w, r, ErrBadNotification.Wrap(errors.New("body too large")))
			return
		}
		out, err := s.HandleNotification(r.Context(), channel, r.Header, body)
		if err != nil {
			if errors.Is(err, ErrBadSignature) {
				s.log.WarnContext(r.Context(), "pay: callback with a bad signature", "channel", channel,
					"ip", httpx.ClientIPFrom(r.Context()), "request_id", httpx.RequestID(r.Context()), "err", err)
			}
			httpx.WriteError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "SUCCESS "+string(out))
	})
}

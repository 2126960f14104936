package pay

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
)

// Refund returns money of a paid order, in full or in part, never more than was paid less
// what is refunded or being refunded. It is idempotent by in.RequestID: the same id returns
// the same refund (and pushes it through the channel again if its outcome is still unknown);
// the same id for another order or amount is ErrRefundConflict.
//
// The refund is recorded as pending before the channel is asked. If the channel's answer is
// lost, the refund stays pending and Sync asks again (the channel is idempotent by our refund
// id), so a refund is neither lost nor made twice.
func (s *Service) Refund(ctx context.Context, actor authz.Subject, orderID string, in RefundInput) (Refund, error) {
	o, err := s.Get(ctx, actor, orderID)
	if err != nil {
		return Refund{}, err
	}
	if err := s.mayWork(actor, PermRefund, o); err != nil {
		return Refund{}, err
	}
	in.RequestID, in.Reason = strings.TrimSpace(in.RequestID), strings.TrimSpace(in.Reason)
	if checkTxnID(in.RequestID) != nil || strings.HasPrefix(in.RequestID, "channel:") {
		return Refund{}, invalid("request_id", "pay.refund.request_id", "退款请求号应为1至64个字母、数字或符号", "the refund request id has 1 to 64 letters, digits or symbols")
	}
	if in.AmountFen <= 0 {
		return Refund{}, invalid("amount_fen", "pay.refund.amount", "退款金额须大于0", "the refund amount must be positive")
	}
	if in.Reason == "" || tooLong(in.Reason, maxTextRunes) {
		return Refund{}, invalid("reason", "pay.refund.reason", "请说明退款原因（不超过%d字）", "give the refund's reason (at most %d characters)", maxTextRunes)
	}
	var r Refund
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		o, err = lockOrder(ctx, tx, `id = ?`, orderID)
		if err != nil {
			return err
		}
		prev, err := getRefund(ctx, tx, `request_id = ?`, in.RequestID)
		if err == nil {
			if prev.OrderID != o.ID || prev.AmountFen != in.AmountFen {
				return ErrRefundConflict
			}
			r = prev
			return nil
		}
		if !isNoRow(err) {
			return err
		}
		if !o.Status.Settled() {
			return ErrState
		}
		pending, err := pendingRefundFen(ctx, tx, o.ID)
		if err != nil {
			return err
		}
		if in.AmountFen > o.PaidFen-o.RefundedFen-pending {
			return ErrRefundTooMuch
		}
		r = Refund{ID: db.NewID(), OrderID: o.ID, RequestID: in.RequestID, AmountFen: in.AmountFen, Reason: in.Reason,
			Status: RefundPending, RequestedBy: actor.String(), CreatedAt: s.clock()}
		if err := insertRefund(ctx, tx, r); err != nil {
			if db.IsUniqueViolation(err) {
				return ErrRefundConflict.Wrap(err)
			}
			return fmt.Errorf("insert refund: %w", err)
		}
		return s.recordOrder(ctx, tx, actor, ActionRefundRequest, o, map[string]any{"refund_id": r.ID, "request_id": r.RequestID,
			"amount_fen": r.AmountFen, "reason": r.Reason})
	})
	if err != nil || r.Status != RefundPending {
		return r, err
	}
	return s.pushRefund(ctx, o, r)
}

// pushRefund asks the channel to make a pending refund and records the answer.
func (s *Service) pushRefund(ctx context.Context, o Order, r Refund) (Refund, error) {
	ch, err := s.channel(o.Channel)
	if err != nil {
		return r, err
	}
	t, err := ch.Refund(ctx, RefundRequest{Code: o.Code, RefundID: r.ID, AmountFen: r.AmountFen, Reason: r.Reason})
	switch {
	case errors.Is(err, ErrChannelRefused):
		return s.failRefund(ctx, r, err)
	case err != nil:
		// Outcome unknown: the refund stays pending for Sync.
		s.log.WarnContext(ctx, "pay: refund outcome unknown, left pending", "refund_id", r.ID, "code", o.Code, "err", err)
		return r, nil
	}
	if err := CheckTxn(t); err != nil || t.Kind != TxnRefund || t.RefundID != r.ID || t.Code != o.Code {
		s.log.WarnContext(ctx, "pay: channel answered a refund with an unexpected transaction, left pending", "refund_id", r.ID, "err", err)
		return r, nil
	}
	if _, err := s.applyTxn(ctx, o.Channel, t, "refund"); err != nil && !errors.Is(err, ErrTxnRejected) {
		return r, err
	}
	return getRefund(ctx, s.d, `id = ?`, r.ID)
}

// failRefund records the channel's refusal of a pending refund.
func (s *Service) failRefund(ctx context.Context, r Refund, cause error) (Refund, error) {
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		o, err := lockOrder(ctx, tx, `id = ?`, r.OrderID)
		if err != nil {
			return err
		}
		cur, err := getRefund(ctx, tx, `id = ?`, r.ID)
		if err != nil {
			return err
		}
		if cur.Status != RefundPending {
			r = cur
			return nil
		}
		now := s.clock()
		r = cur
		r.Status, r.Failure, r.DoneAt = RefundFailed, clipText(cause.Error(), maxTextRunes), &now
		if err := saveRefund(ctx, tx, r); err != nil {
			return err
		}
		return s.recordOrder(ctx, tx, channelActor, ActionRefundFail, o, map[string]any{"refund_id": r.ID, "failure": r.Failure})
	})
	if err != nil {
		return r, err
	}
	return r, ErrChannelRefused.Wrap(cause)
}

func clipText(v string, n int) string {
	if r := []rune(v); len(r) > n {
		return string(r[:n])
	}
	return v
}

// SyncResult counts what Sync did.
type SyncResult struct {
	Checked  int `json:"checked"`  // orders asked about at their channel
	Recorded int `json:"recorded"` // payments and refunds learnt from the channel
	Expired  int `json:"expired"`  // orders past their deadline, now expired
	Refunds  int `json:"refunds"`  // pending refunds pushed again
}

// syncBatch bounds the orders one Sync looks at per kind; the job runs again.
const syncBatch = 500

// Sync is the job that repairs what callbacks did not bring: for each order left paying it
// asks the channel, records a payment (and refunds) it had not heard of, and expires orders
// past their deadline that the channel did not see paid; pending refunds are pushed again.
// Everything it records goes through the same once-only path as callbacks, so running it
// beside them (or twice) doubles nothing. The coordinator schedules it every few minutes.
func (s *Service) Sync(ctx context.Context) (SyncResult, error) {
	var res SyncResult
	paying, err := queryOrders(ctx, s.d, fmt.Sprintf(`WHERE status = 'paying' ORDER BY updated_at LIMIT %d`, syncBatch))
	if err != nil {
		return res, fmt.Errorf("orders paying: %w", err)
	}
	var errs []error
	for _, o := range paying {
		ch, err := s.channel(o.Channel)
		if err != nil {
			errs = append(errs, fmt.Errorf("order %s: %w", o.Code, err))
			continue
		}
		res.Checked++
		n, err := s.syncOrder(ctx, ch, o)
		res.Recorded += n
		if err != nil {
			errs = append(errs, fmt.Errorf("order %s: %w", o.Code, err))
			continue
		}
		if n == 0 && !s.clock().Before(o.ExpiresAt) {
			expired, err := s.expire(ctx, o)
			if err != nil {
				errs = append(errs, fmt.Errorf("expire %s: %w", o.Code, err))
			} else if expired {
				res.Expired++
			}
		}
	}
	unpaid, err := queryOrders(ctx, s.d, fmt.Sprintf(`WHERE status = 'unpaid' AND expires_at <= ? ORDER BY expires_at LIMIT %d`, syncBatch), s.clock())
	if err != nil {
		return res, fmt.Errorf("orders past deadline: %w", err)
	}
	for _, o := range unpaid {
		if _, err := s.finish(ctx, channelActor, o.ID, StatusExpired, ActionExpire, "past the payment deadline"); err != nil && !errors.Is(err, ErrState) {
			errs = append(errs, fmt.Errorf("expire %s: %w", o.Code, err))
		} else if err == nil {
			res.Expired++
		}
	}
	pending, err := queryRefunds(ctx, s.d, fmt.Sprintf(`WHERE status = 'pending' ORDER BY created_at LIMIT %d`, syncBatch))
	if err != nil {
		return res, fmt.Errorf("pending refunds: %w", err)
	}
	for _, r := range pending {
		o, err := getOrder(ctx, s.d, `id = ?`, r.OrderID)
		if err != nil {
			errs = append(errs, fmt.Errorf("refund %s: %w", r.ID, err))
			continue
		}
		res.Refunds++
		if _, err := s.pushRefund(ctx, o, r); err != nil && !errors.Is(err, ErrChannelRefused) {
			errs = append(errs, fmt.Errorf("refund %s: %w", r.ID, err))
		}
	}
	return res, errors.Join(errs...)
}

// syncOrder records what the channel knows of o's charge and returns how many transactions
// were new to us.
func (s *Service) syncOrder(ctx context.Context, ch Channel, o Order) (int, error) {
	st, err := ch.QueryCharge(ctx, o.Code)
	if err != nil {
		return 0, fmt.Errorf("query charge: %w", err)
	}
	var txns []Txn
	if st.Payment != nil {
		txns = append(txns, *st.Payment)
	}
	txns = append(txns, st.Refunds...)
	n := 0
	for _, t := range txns {
		if t.Code != o.Code || CheckTxn(t) != nil {
			return n, ErrBadNotification.Wrap(fmt.Errorf("query of %s answered transaction %+v", o.Code, t))
		}
		out, err := s.applyTxn(ctx, ch.Name(), t, "query")
		if err != nil && !errors.Is(err, ErrTxnRejected) {
			return n, err
		}
		if out == OutcomeApplied || out == OutcomeHeld {
			n++
		}
	}
	return n, nil
}

// expire closes a paying order's charge at the channel and expires the order; a charge paid
// at the last moment is recorded instead.
func (s *Service) expire(ctx context.Context, o Order) (bool, error) {
	if err := s.closeAtChannel(ctx, o); err != nil {
		if errors.Is(err, ErrState) {
			return false, nil // paid after all, and now recorded
		}
		return false, err
	}
	_, err := s.finish(ctx, channelActor, o.ID, StatusExpired, ActionExpire, "past the payment deadline")
	if errors.Is(err, ErrState) {
		return false, nil // moved on meanwhile
	}
	return err == nil, err
}

package pay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// MismatchKind says how our records and a channel's statement disagree.
type MismatchKind string

const (
	MissingOurs    MismatchKind = "missing_ours"    // on the statement, not in our records
	MissingChannel MismatchKind = "missing_channel" // in our records, not on the statement
	AmountDiffers  MismatchKind = "amount_differs"
	StatusDiffers  MismatchKind = "status_differs" // a different kind or order, or held / rejected on our side
)

// Mismatch is one disagreement.
type Mismatch struct {
	Kind             MismatchKind `json:"kind"`
	TxnID            string       `json:"txn_id"`
	Code             string       `json:"code"`
	TxnKind          TxnKind      `json:"txn_kind"`
	OurAmountFen     int64        `json:"our_amount_fen"`
	ChannelAmountFen int64        `json:"channel_amount_fen"`
	Detail           string       `json:"detail,omitempty"`
}

// ReconReport is the reconciliation of one channel's day.
type ReconReport struct {
	ID               string     `json:"id"`
	Channel          string     `json:"channel"`
	Day              string     `json:"day"` // YYYY-MM-DD, Beijing
	RanAt            time.Time  `json:"ran_at"`
	ChannelCount     int        `json:"channel_count"`
	OurCount         int        `json:"our_count"`
	Matched          int        `json:"matched"`
	ChannelPayFen    int64      `json:"channel_pay_fen"`
	ChannelRefundFen int64      `json:"channel_refund_fen"`
	OurPayFen        int64      `json:"our_pay_fen"`
	OurRefundFen     int64      `json:"our_refund_fen"`
	Mismatches       []Mismatch `json:"mismatches"`
}

// Balanced reports whether the day reconciled without a mismatch.
func (r ReconReport) Balanced() bool { return len(r.Mismatches) == 0 }

// Reconcile is the daily job: for each channel it fetches the statement of day (the Beijing
// date of day), compares it line by line with the transactions we recorded at that channel
// with channel times on that date, and stores the report (a rerun of a day replaces its
// report). Our transactions held or rejected count as status mismatches even when the
// statement agrees, since the money moved and our order does not show it. One channel's
// failure does not stop the others; their errors are joined.
func (s *Service) Reconcile(ctx context.Context, day time.Time) ([]ReconReport, error) {
	var out []ReconReport
	var errs []error
	for _, name := range s.order {
		r, err := s.reconcileChannel(ctx, s.channels[name], day)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", name, err))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func (s *Service) reconcileChannel(ctx context.Context, ch Channel, day time.Time) (ReconReport, error) {
	d := day.In(calendar.Beijing)
	start := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, calendar.Beijing)
	dayText := start.Format(time.DateOnly)
	lines, err := ch.Statement(ctx, start)
	if err != nil {
		return ReconReport{}, fmt.Errorf("statement of %s: %w", dayText, err)
	}
	ours, err := queryTxns(ctx, s.d, `WHERE channel = ? AND at >= ? AND at < ? ORDER BY at, txn_id`,
		ch.Name(), start.UTC(), start.AddDate(0, 0, 1).UTC())
	if err != nil {
		return ReconReport{}, fmt.Errorf("our transactions of %s: %w", dayText, err)
	}
	rep := ReconReport{ID: db.NewID(), Channel: ch.Name(), Day: dayText, RanAt: s.clock(), ChannelCount: len(lines), OurCount: len(ours)}
	byID := make(map[string]txnRecord, len(ours))
	for _, t := range ours {
		byID[t.TxnID] = t
		if t.Status != txnApplied {
			continue // not in our books; the statement side will flag it
		}
		if t.Kind == TxnPay {
			rep.OurPayFen += t.AmountFen
		} else {
			rep.OurRefundFen += t.AmountFen
		}
	}
	seen := make(map[string]bool, len(lines))
	for _, l := range lines {
		seen[l.TxnID] = true
		if l.Kind == TxnPay {
			rep.ChannelPayFen += l.AmountFen
		} else {
			rep.ChannelRefundFen += l.AmountFen
		}
		m := Mismatch{TxnID: l.TxnID, Code: l.Code, TxnKind: l.Kind, ChannelAmountFen: l.AmountFen}
		t, ok := byID[l.TxnID]
		if !ok {
			// Recorded on another day (a clock near midnight) is not missing: look it up.
			if other, err := getTxn(ctx, s.d, ch.Name(), l.TxnID); err == nil {
				t, ok = other, true
			} else if !isNoRow(err) {
				return ReconReport{}, err
			}
		}
		m.OurAmountFen = t.AmountFen
		switch {
		case l.Date != dayText:
			m.Kind, m.Detail = StatusDiffers, "statement line dated "+l.Date
		case !ok:
			m.Kind = MissingOurs
		case t.Kind != l.Kind || t.Code != l.Code:
			m.Kind, m.Detail = StatusDiffers, fmt.Sprintf("ours: %s of %s", t.Kind, t.Code)
		case t.AmountFen != l.AmountFen:
			m.Kind = AmountDiffers
		case t.Status != txnApplied:
			m.Kind, m.Detail = StatusDiffers, "ours: "+t.Status+": "+t.Reason
		default:
			rep.Matched++
			continue
		}
		rep.Mismatches = append(rep.Mismatches, m)
	}
	for _, t := range ours {
		if !seen[t.TxnID] && t.Status == txnApplied {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Kind: MissingChannel, TxnID: t.TxnID, Code: t.Code, TxnKind: t.Kind, OurAmountFen: t.AmountFen})
		}
	}
	sort.SliceStable(rep.Mismatches, func(i, j int) bool { return rep.Mismatches[i].TxnID < rep.Mismatches[j].TxnID })
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		var old string
		err := tx.QueryRow(ctx, `SELECT id FROM pay_recon_reports WHERE channel = ? AND day = ?`, rep.Channel, rep.Day).Scan(&old)
		switch {
		case err == nil:
			if _, err := tx.Exec(ctx, `DELETE FROM pay_recon_items WHERE report_id = ?`, old); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM pay_recon_reports WHERE id = ?`, old); err != nil {
				return err
			}
		case !isNoRow(err):
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pay_recon_reports (id, channel, day, ran_at, channel_count, our_count, matched, mismatches,
			channel_pay_fen, channel_refund_fen, our_pay_fen, our_refund_fen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			rep.ID, rep.Channel, rep.Day, rep.RanAt, rep.ChannelCount, rep.OurCount, rep.Matched, len(rep.Mismatches),
			rep.ChannelPayFen, rep.ChannelRefundFen, rep.OurPayFen, rep.OurRefundFen); err != nil {
			return fmt.Errorf("store report: %w", err)
		}
		for i, m := range rep.Mismatches {
			if _, err := tx.Exec(ctx, `INSERT INTO pay_recon_items (report_id, line_no, kind, txn_id, code, txn_kind, our_amount_fen,
				channel_amount_fen, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				rep.ID, i+1, string(m.Kind), m.TxnID, m.Code, string(m.TxnKind), m.OurAmountFen, m.ChannelAmountFen, clipText(m.Detail, 500)); err != nil {
				return fmt.Errorf("store mismatch: %w", err)
			}
		}
		return s.record(ctx, tx, channelActor, ActionReconcile, "pay_recon:"+rep.Channel+"/"+rep.Day, map[string]any{
			"matched": rep.Matched, "mismatches": len(rep.Mismatches), "channel_count": rep.ChannelCount, "our_count": rep.OurCount})
	})
	if err != nil {
		return ReconReport{}, err
	}
	if !rep.Balanced() {
		s.log.WarnContext(ctx, "pay: reconciliation found mismatches", "channel", rep.Channel, "day", rep.Day, "mismatches", len(rep.Mismatches))
	}
	return rep, nil
}

// ReconReports lists stored reports, newest day first; PermReadAll in the actor's division.
// Reports are per channel, not per division: a county auditor sees them too, and the
// mismatches name payment codes, whose orders they may or may not read.
func (s *Service) ReconReports(ctx context.Context, actor authz.Subject, limit int) ([]ReconReport, error) {
	if err := s.policy.Authorize(actor, PermReadAll, actor.Division); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxListLimit {
		limit = defaultLimit
	}
	rows, err := s.d.Query(ctx, fmt.Sprintf(`SELECT id, channel, day, ran_at, channel_count, our_count, matched, channel_pay_fen,
		channel_refund_fen, our_pay_fen, our_refund_fen FROM pay_recon_reports ORDER BY day DESC, channel LIMIT %d`, limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ReconReport
	for rows.Next() {
		var r ReconReport
		if err := rows.Scan(&r.ID, &r.Channel, &r.Day, &r.RanAt, &r.ChannelCount, &r.OurCount, &r.Matched, &r.ChannelPayFen,
			&r.ChannelRefundFen, &r.OurPayFen, &r.OurRefundFen); err != nil {
			return nil, err
		}
		r.RanAt = r.RanAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Mismatches, err = s.mismatches(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReconReport returns the report of a channel's day.
func (s *Service) ReconReport(ctx context.Context, actor authz.Subject, channel, day string) (ReconReport, error) {
	if err := s.policy.Authorize(actor, PermReadAll, actor.Division); err != nil {
		return ReconReport{}, err
	}
	var r ReconReport
	err := s.d.QueryRow(ctx, `SELECT id, channel, day, ran_at, channel_count, our_count, matched, channel_pay_fen,
		channel_refund_fen, our_pay_fen, our_refund_fen FROM pay_recon_reports WHERE channel = ? AND day = ?`, channel, day).
		Scan(&r.ID, &r.Channel, &r.Day, &r.RanAt, &r.ChannelCount, &r.OurCount, &r.Matched, &r.ChannelPayFen,
			&r.ChannelRefundFen, &r.OurPayFen, &r.OurRefundFen)
	if isNoRow(err) {
		return r, i18n.ErrNotFound
	}
	if err != nil {
		return r, err
	}
	r.RanAt = r.RanAt.UTC()
	r.Mismatches, err = s.mismatches(ctx, r.ID)
	return r, err
}

func (s *Service) mismatches(ctx context.Context, reportID string) ([]Mismatch, error) {
	rows, err := s.d.Query(ctx, `SELECT kind, txn_id, code, txn_kind, our_amount_fen, channel_amount_fen, detail
		FROM pay_recon_items WHERE report_id = ? ORDER BY line_no`, reportID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Mismatch
	for rows.Next() {
		var m Mismatch
		if err := rows.Scan(&m.Kind, &m.TxnID, &m.Code, &m.TxnKind, &m.OurAmountFen, &m.ChannelAmountFen, &m.Detail); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

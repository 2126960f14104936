package pay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// record appends an audit entry inside tx.
func (s *Service) record(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	if s.audit == nil {
		return nil
	}
	if err := s.audit(ctx, tx, actor, action, object, detail); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, object, err)
	}
	return nil
}

// recordOrder audits a change of o, with its code, amounts and status.
func (s *Service) recordOrder(ctx context.Context, tx *db.Tx, actor authz.Subject, action string, o Order, detail map[string]any) error {
	if detail == nil {
		detail = map[string]any{}
	}
	detail["code"], detail["status"], detail["total_fen"], detail["dept_id"] = o.Code, string(o.Status), o.TotalFen, o.DeptID
	if o.PaidFen > 0 {
		detail["paid_fen"], detail["refunded_fen"] = o.PaidFen, o.RefundedFen
	}
	return s.record(ctx, tx, actor, action, "pay_order:"+o.ID, detail)
}

func publish(ctx context.Context, tx *db.Tx, subject string, o Order) error {
	_, err := bus.Publish(ctx, tx, subject, Event{OrderID: o.ID, Code: o.Code, Ref: o.Ref, ItemCode: o.ItemCode, Status: o.Status,
		TotalFen: o.TotalFen, PaidFen: o.PaidFen, RefundedFen: o.RefundedFen, DeptID: o.DeptID, Division: o.Division})
	return err
}

// ---- authorization ----

// mayRead: the payer; staff of the payee department with PermRead in its division; staff with
// PermReadAll in its division.
func (s *Service) mayRead(actor authz.Subject, o Order) error {
	switch actor.Kind {
	case "":
		return i18n.ErrUnauthorized
	case authz.Citizen, authz.Enterprise:
		return authz.Owner(actor, o.PayerKind, o.PayerID)
	}
	if s.policy.Allowed(actor, PermReadAll, o.Division) {
		return nil
	}
	return s.mayWork(actor, PermRead, o)
}

// mayWork: staff of the order's department holding perm in its division.
func (s *Service) mayWork(actor authz.Subject, perm authz.Permission, o Order) error {
	if err := s.policy.Authorize(actor, perm, o.Division); err != nil {
		return err
	}
	if actor.Kind != authz.Staff || actor.Dept == "" || actor.Dept != o.DeptID {
		return i18n.ErrForbidden
	}
	return nil
}

// isPayer reports whether actor is the order's payer.
func isPayer(actor authz.Subject, o Order) bool {
	return (actor.Kind == authz.Citizen || actor.Kind == authz.Enterprise) && actor.ID != "" &&
		actor.Kind == o.PayerKind && actor.ID == o.PayerID
}

// ---- orders ----

const (
	maxLines       = 50
	maxTextRunes   = 200
	maxTotalFen    = 1_000_000_000_00 // one billion yuan: beyond any fee, far below int64 limits
	maxRefRunes    = 100
	maxCodeRunes   = 64
	maxNameRunes   = 100
	defaultLimit   = 100
	maxListLimit   = 1000
	closeReasonCap = 200
)

func tooLong(s string, n int) bool { return utf8.RuneCountInString(s) > n }

// cleanInput checks an order's input and returns its total.
func cleanInput(in *OrderInput) (int64, error) {
	in.Ref, in.ItemCode, in.DeptID = strings.TrimSpace(in.Ref), strings.TrimSpace(in.ItemCode), strings.TrimSpace(in.DeptID)
	in.Payer.Name, in.DeptName = strings.TrimSpace(in.Payer.Name), strings.TrimSpace(in.DeptName)
	switch {
	case in.Ref == "" || tooLong(in.Ref, maxRefRunes):
		return 0, invalid("ref", "pay.ref", "缴款单须关联业务（不超过%d字）", "an order needs a reference (at most %d characters)", maxRefRunes)
	case in.ItemCode == "" || tooLong(in.ItemCode, maxCodeRunes):
		return 0, invalid("item_code", "pay.item_code", "缴款单须注明事项编码", "an order needs the service item's code")
	case in.DeptID == "":
		return 0, invalid("dept_id", "pay.dept", "缴款单须注明执收部门", "an order needs its collecting department")
	case in.Payer.Subject.Kind != authz.Citizen && in.Payer.Subject.Kind != authz.Enterprise || in.Payer.Subject.ID == "":
		return 0, invalid("payer", "pay.payer", "缴款人须为自然人或法人账户", "the payer must be a citizen or enterprise account")
	case in.Payer.Name == "" || tooLong(in.Payer.Name, maxNameRunes):
		return 0, invalid("payer.name", "pay.payer_name", "请填写缴款人名称", "the payer's name is required")
	case tooLong(in.DeptName, maxNameRunes):
		return 0, invalid("dept_name", "pay.dept_name", "部门名称过长", "the department name is too long")
	case len(in.Lines) == 0 || len(in.Lines) > maxLines:
		return 0, invalid("lines", "pay.lines", "缴款单应有1至%d个收费项目", "an order has 1 to %d fee lines", maxLines)
	}
	if _, err := ids.ValidateDivision(in.Division); err != nil {
		return 0, invalid("division", "pay.division", "执收地区代码无效", "the collecting division code is not valid").Wrap(err)
	}
	var total int64
	for i := range in.Lines {
		l := &in.Lines[i]
		l.Name, l.Basis = strings.TrimSpace(l.Name), strings.TrimSpace(l.Basis)
		if l.Name == "" || tooLong(l.Name, maxTextRunes) || tooLong(l.Basis, maxTextRunes) {
			return 0, invalid("lines", "pay.line_name", "第%d个收费项目须有名称（不超过%d字）", "fee line %d needs a name (at most %d characters)", i+1, maxTextRunes)
		}
		if l.AmountFen <= 0 || l.AmountFen > maxTotalFen || total > math.MaxInt64-l.AmountFen {
			return 0, invalid("lines", "pay.line_amount", "第%d个收费项目金额无效", "fee line %d has an invalid amount", i+1)
		}
		total += l.AmountFen
	}
	if total > maxTotalFen {
		return 0, invalid("lines", "pay.total", "缴款总额超出上限", "the order's total exceeds the limit")
	}
	return total, nil
}

// errRefRaced: another transaction created an order for the same ref first.
var errRefRaced = errors.New("pay: concurrent order for the same ref")

// CreateOrder raises a payment order for a service item with fees. It is called by the service
// engine, which has authorized the application; the audit actor is the subject in ctx
// (authz.WithSubject), the system when none. Raising the same Ref again returns the order
// already open or settled for it (the caller may retry safely); with other fees it fails with
// ErrRefConflict.
func (s *Service) CreateOrder(ctx context.Context, in OrderInput) (Order, error) {
	total, err := cleanInput(&in)
	if err != nil {
		return Order{}, err
	}
	now := s.clock()
	expires := in.ExpiresAt
	if expires.IsZero() {
		expires = now.Add(s.opts.DefaultExpiry)
	}
	expires = db.Now(expires)
	if !expires.After(now) {
		return Order{}, invalid("expires_at", "pay.expires_at", "缴款期限须晚于当前时间", "the payment deadline must be in the future")
	}
	o := Order{ID: db.NewID(), Ref: in.Ref, ItemCode: in.ItemCode, PayerKind: in.Payer.Subject.Kind, PayerID: in.Payer.Subject.ID,
		PayerName: in.Payer.Name, DeptID: in.DeptID, DeptName: in.DeptName, Division: in.Division, Lines: in.Lines, TotalFen: total,
		Status: StatusUnpaid, ExpiresAt: expires, CreatedAt: now, UpdatedAt: now}
	fresh := o
	create := func(tx *db.Tx) error {
		o = fresh
		prev, err := getOrder(ctx, tx, `ref = ? AND status NOT IN ('closed', 'expired')`, in.Ref)
		if err == nil {
			if prev.TotalFen != total || prev.PayerID != o.PayerID || prev.DeptID != o.DeptID || !slices.Equal(prev.Lines, o.Lines) {
				return ErrRefConflict
			}
			o = prev
			return nil
		}
		if !isNoRow(err) {
			return err
		}
		if o.Code, err = newCode(ctx, tx, in.Division, now); err != nil {
			return err
		}
		if err := insertOrder(ctx, tx, o); err != nil {
			if db.IsUniqueViolation(err) {
				return errRefRaced
			}
			return fmt.Errorf("insert order: %w", err)
		}
		return s.recordOrder(ctx, tx, authz.SubjectFrom(ctx), ActionCreate, o, map[string]any{"ref": o.Ref, "item_code": o.ItemCode})
	}
	err = s.d.InTx(ctx, create)
	if errors.Is(err, errRefRaced) {
		// A concurrent create of the same ref won: once more finds its order.
		err = s.d.InTx(ctx, create)
	}
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

// Get returns an order the actor may see.
func (s *Service) Get(ctx context.Context, actor authz.Subject, id string) (Order, error) {
	return s.getBy(ctx, actor, `id = ?`, id)
}

// GetByCode returns the order of a payment code the actor may see.
func (s *Service) GetByCode(ctx context.Context, actor authz.Subject, code string) (Order, error) {
	if _, err := ValidateCode(strings.TrimSpace(code)); err != nil {
		return Order{}, err
	}
	return s.getBy(ctx, actor, `code = ?`, strings.TrimSpace(code))
}

func (s *Service) getBy(ctx context.Context, actor authz.Subject, where, arg string) (Order, error) {
	if actor.Kind == "" {
		return Order{}, i18n.ErrUnauthorized
	}
	o, err := getOrder(ctx, s.d, where, arg)
	if isNoRow(err) {
		return Order{}, i18n.ErrNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("get order: %w", err)
	}
	if err := s.mayRead(actor, o); err != nil {
		if errors.Is(err, i18n.ErrForbidden) {
			return Order{}, i18n.ErrNotFound // do not confirm that someone else's order exists
		}
		return Order{}, err
	}
	return o, nil
}

// List lists the orders the actor may see, newest first: a payer's own; an officer's
// department's; with PermReadAll every department's within the actor's division. Lines are
// not loaded (Get has them).
func (s *Service) List(ctx context.Context, actor authz.Subject, f Filter) ([]Order, error) {
	if f.Limit <= 0 {
		f.Limit = defaultLimit
	}
	f.Limit = min(f.Limit, maxListLimit)
	f.Offset = max(f.Offset, 0)
	var where []string
	var args []any
	switch actor.Kind {
	case "":
		return nil, i18n.ErrUnauthorized
	case authz.Citizen, authz.Enterprise:
		where, args = append(where, "payer_kind = ? AND payer_id = ?"), append(args, string(actor.Kind), actor.ID)
	default:
		all := s.policy.Allowed(actor, PermReadAll, actor.Division)
		if !all {
			if err := s.policy.Authorize(actor, PermRead, actor.Division); err != nil {
				return nil, err
			}
			if actor.Dept == "" {
				return nil, i18n.ErrForbidden
			}
			f.DeptID = actor.Dept
		}
		if f.DeptID != "" {
			where, args = append(where, "dept_id = ?"), append(args, f.DeptID)
		}
		// Division codes nest by prefix (GB/T 2260): the prefix narrows in SQL, Contains decides.
		where, args = append(where, "division LIKE ?"), append(args, divisionPrefix(actor.Division)+"%")
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	if f.Ref != "" {
		where, args = append(where, "ref = ?"), append(args, f.Ref)
	}
	q := "WHERE " + strings.Join(where, " AND ") + fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT %d OFFSET %d", f.Limit, f.Offset)
	orders, err := queryOrders(ctx, s.d, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	if actor.Kind == authz.Staff || actor.Kind == authz.System {
		orders = slices.DeleteFunc(orders, func(o Order) bool { return s.mayRead(actor, o) != nil })
	}
	return orders, nil
}

// divisionPrefix is the part of a GB/T 2260 code that every division within it shares.
func divisionPrefix(code string) string {
	switch {
	case len(code) == 6 && strings.HasSuffix(code, "0000"):
		return code[:2]
	case len(code) == 6 && strings.HasSuffix(code, "00"):
		return code[:4]
	}
	return code
}

// Refunds lists an order's refunds, oldest first.
func (s *Service) Refunds(ctx context.Context, actor authz.Subject, orderID string) ([]Refund, error) {
	if _, err := s.Get(ctx, actor, orderID); err != nil {
		return nil, err
	}
	return queryRefunds(ctx, s.d, `WHERE order_id = ? ORDER BY created_at, id`, orderID)
}

// Checkout is where the payer pays an order.
type Checkout struct {
	Order  Order  `json:"order"`
	PayURL string `json:"pay_url"` // the channel's pay page; the QR code carries it (QRPNG)
}

// StartPayment opens the order's charge at channel for its payer and returns the pay page.
// Calling it again (a reload, a second device) returns the same charge: the channel holds one
// charge per payment code, so the payer cannot be charged twice.
func (s *Service) StartPayment(ctx context.Context, actor authz.Subject, orderID, channel string) (Checkout, error) {
	ch, err := s.channel(channel)
	if err != nil {
		return Checkout{}, err
	}
	o, err := s.Get(ctx, actor, orderID)
	if err != nil {
		return Checkout{}, err
	}
	if !isPayer(actor, o) {
		return Checkout{}, i18n.ErrForbidden
	}
	// First mark the order paying at this channel, so that Sync looks for its charge even if
	// this node dies right after the channel opened it.
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		o, err = lockOrder(ctx, tx, `id = ?`, orderID)
		if err != nil {
			return err
		}
		now := s.clock()
		switch {
		case o.Status == StatusPaying && o.Channel == channel:
			return nil
		case o.Status == StatusPaying:
			return ErrState.Wrap(fmt.Errorf("paying at channel %s", o.Channel))
		case o.Status != StatusUnpaid:
			return ErrState
		case !now.Before(o.ExpiresAt):
			return ErrExpired
		}
		o.Status, o.Channel, o.UpdatedAt = StatusPaying, channel, now
		if err := saveOrder(ctx, tx, o); err != nil {
			return err
		}
		return s.recordOrder(ctx, tx, actor, ActionStart, o, map[string]any{"channel": channel})
	})
	if err != nil {
		return Checkout{}, err
	}
	if o.PayURL != "" {
		return Checkout{Order: o, PayURL: o.PayURL}, nil
	}
	req := ChargeRequest{Code: o.Code, AmountFen: o.TotalFen, Subject: chargeSubject(o), NotifyURL: s.opts.NotifyURL(channel), ExpiresAt: o.ExpiresAt}
	if s.opts.ReturnURL != nil {
		req.ReturnURL = s.opts.ReturnURL(o)
	}
	c, err := ch.CreateCharge(ctx, req)
	if err != nil {
		return Checkout{}, fmt.Errorf("open charge %s at %s: %w", o.Code, channel, err)
	}
	err = s.d.InTx(ctx, func(tx *db.Tx) error {
		cur, err := lockOrder(ctx, tx, `id = ?`, orderID)
		if err != nil {
			return err
		}
		if cur.PayURL == "" {
			cur.PayURL = c.PayURL
			if _, err := tx.Exec(ctx, `UPDATE pay_orders SET pay_url = ? WHERE id = ?`, c.PayURL, orderID); err != nil {
				return err
			}
		}
		o = cur
		return nil
	})
	if err != nil {
		return Checkout{}, err
	}
	return Checkout{Order: o, PayURL: o.PayURL}, nil
}

// chargeSubject is what the payer sees at the channel.
func chargeSubject(o Order) string {
	names := make([]string, 0, len(o.Lines))
	for _, l := range o.Lines {
		names = append(names, l.Name)
	}
	subject := strings.Join(names, "、")
	if utf8.RuneCountInString(subject) > 60 {
		subject = string([]rune(subject)[:59]) + "…"
	}
	return subject
}

// Close closes an unpaid order (the application was withdrawn, the fee waived). An order the
// payer may be paying is first closed at the channel; if the channel says it was paid
// meanwhile, the payment is recorded instead and Close fails with ErrState.
func (s *Service) Close(ctx context.Context, actor authz.Subject, orderID, reason string) (Order, error) {
	o, err := s.Get(ctx, actor, orderID)
	if err != nil {
		return Order{}, err
	}
	if !isPayer(actor, o) {
		if err := s.mayWork(actor, PermClose, o); err != nil {
			return Order{}, err
		}
	}
	reason = strings.TrimSpace(reason)
	if tooLong(reason, closeReasonCap) {
		return Order{}, invalid("reason", "pay.reason", "关闭原因过长", "the reason is too long")
	}
	if !o.Status.Open() {
		return Order{}, ErrState
	}
	if err := s.closeAtChannel(ctx, o); err != nil {
		return Order{}, err
	}
	return s.finish(ctx, actor, orderID, StatusClosed, ActionClose, reason)
}

// closeAtChannel stops the order's charge from being paid; a charge paid meanwhile is recorded.
func (s *Service) closeAtChannel(ctx context.Context, o Order) error {
	if o.Status != StatusPaying {
		return nil
	}
	ch, err := s.channel(o.Channel)
	if err != nil {
		return err
	}
	err = ch.CloseCharge(ctx, o.Code)
	if errors.Is(err, ErrChannelPaid) {
		if _, serr := s.syncOrder(ctx, ch, o); serr != nil {
			return serr
		}
		return ErrState.Wrap(err)
	}
	return err
}

// finish moves an open order to closed or expired.
func (s *Service) finish(ctx context.Context, actor authz.Subject, orderID string, to Status, action, reason string) (Order, error) {
	var o Order
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		var err error
		if o, err = lockOrder(ctx, tx, `id = ?`, orderID); err != nil {
			return err
		}
		if !o.Status.Open() {
			return ErrState
		}
		o.Status, o.ClosedReason, o.UpdatedAt = to, reason, s.clock()
		if err := saveOrder(ctx, tx, o); err != nil {
			return err
		}
		if err := s.recordOrder(ctx, tx, actor, action, o, map[string]any{"reason": reason}); err != nil {
			return err
		}
		return publish(ctx, tx, EventClosed, o)
	})
	return o, err
}

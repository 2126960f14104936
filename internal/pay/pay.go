// Package pay is non-tax online payment (网上非税支付, issue 6 A4): payment orders raised by
// service items with fees, each with a 20-digit payment code (缴款码, see Code); payment through
// a Channel (a bank or wallet; paysim is the development simulator) by its pay page or a QR
// code; callbacks that are verified, idempotent and safe in any order; refunds; an SM2-signed
// electronic receipt (电子票据) for every payment; and a daily reconciliation against the
// channel's statement.
//
// Order status only moves forward:
//
//	unpaid ──StartPayment──▶ paying ──payment──▶ paid ──refund──▶ partially_refunded ──▶ refunded
//	   └──────────┴──Close / expiry──▶ closed / expired
//
// A payment the channel reports for a closed or expired order is still recorded (the money
// moved; an officer refunds it): money is never lost to a race with expiry.
//
// Nothing is charged or credited twice: the payment code is the channel's order number (one
// charge per order); every channel transaction is recorded once under (channel, txn id) in
// pay_txns, in the same transaction as its effect, so retried, duplicated and re-queried
// transactions change nothing the second time; a refund reported before its payment is held
// and applied right after the payment. If the node dies between the payer's charge and our
// record, the channel's retries and Sync (which queries the channel for orders left paying)
// both bring the payment in, once.
package pay

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the payment engine's tables. They reference no other engine's tables.
var Migrations = db.Migrations("pay", migrationFiles, "migrations")

// Permissions of payment.
const (
	// PermRead reads the orders, refunds and receipts of the holder's own department.
	PermRead authz.Permission = "pay.read"
	// PermReadAll reads every department's orders within the holder's division, and the
	// reconciliation reports.
	PermReadAll authz.Permission = "pay.read_all"
	// PermRefund refunds orders of the holder's own department.
	PermRefund authz.Permission = "pay.refund"
	// PermClose closes unpaid orders of the holder's own department.
	PermClose authz.Permission = "pay.close"
)

// RegisterPermissions gives payment's permissions to the foundation roles: officers work their
// own department's orders; auditors and system administrators read every department's within
// their division and the reconciliation reports.
func RegisterPermissions(p *authz.Policy) {
	p.Grant(authz.RoleOfficer, PermRead, PermRefund, PermClose)
	p.Grant(authz.RoleOrgAdmin, PermRead)
	p.Grant(authz.RoleAuditor, PermRead, PermReadAll)
	p.Grant(authz.RoleSysAdmin, PermRead, PermReadAll)
}

// Status is where an order stands.
type Status string

const (
	StatusUnpaid            Status = "unpaid"             // 待缴款
	StatusPaying            Status = "paying"             // 支付中
	StatusPaid              Status = "paid"               // 已缴款
	StatusPartiallyRefunded Status = "partially_refunded" // 部分退款
	StatusRefunded          Status = "refunded"           // 已退款
	StatusClosed            Status = "closed"             // 已关闭
	StatusExpired           Status = "expired"            // 已过期
)

// StatusNames are the statuses' display names.
var StatusNames = map[Status]i18n.Text{
	StatusUnpaid:            i18n.T("待缴款", "unpaid"),
	StatusPaying:            i18n.T("支付中", "paying"),
	StatusPaid:              i18n.T("已缴款", "paid"),
	StatusPartiallyRefunded: i18n.T("部分退款", "partially refunded"),
	StatusRefunded:          i18n.T("已退款", "refunded"),
	StatusClosed:            i18n.T("已关闭", "closed"),
	StatusExpired:           i18n.T("已过期", "expired"),
}

// Open reports whether an order in s can still be paid.
func (s Status) Open() bool { return s == StatusUnpaid || s == StatusPaying }

// Settled reports whether money was received for an order in s.
func (s Status) Settled() bool {
	return s == StatusPaid || s == StatusPartiallyRefunded || s == StatusRefunded
}

// Line is one fee of an order (收费项目).
type Line struct {
	Name      string `json:"name"`
	AmountFen int64  `json:"amount_fen"`
	Basis     string `json:"basis,omitempty"` // the legal basis of the fee (收费依据)
}

// Payer is who owes the money: a citizen or enterprise account and the name on the receipt.
type Payer struct {
	Subject authz.Subject `json:"-"`
	Name    string        `json:"name"`
}

// OrderInput raises an order.
type OrderInput struct {
	// Ref names what is paid for, e.g. "application:<id>". At most one open or settled order
	// exists per Ref: raising it again returns that order.
	Ref      string `json:"ref"`
	ItemCode string `json:"item_code"` // the service item's code
	Payer    Payer  `json:"payer"`
	Lines    []Line `json:"lines"`
	DeptID   string `json:"dept_id"`   // the collecting (payee) department
	DeptName string `json:"dept_name"` // its name, printed on the receipt
	Division string `json:"division"`  // the department's division (GB/T 2260)
	// ExpiresAt is the payment deadline; zero means Options.DefaultExpiry from now.
	ExpiresAt time.Time `json:"expires_at"`
}

// Order is a payment order (缴款单).
type Order struct {
	ID           string     `json:"id"`
	Code         string     `json:"code"` // 缴款码
	Ref          string     `json:"ref"`
	ItemCode     string     `json:"item_code"`
	PayerKind    authz.Kind `json:"payer_kind"`
	PayerID      string     `json:"payer_id"`
	PayerName    string     `json:"payer_name"`
	DeptID       string     `json:"dept_id"`
	DeptName     string     `json:"dept_name"`
	Division     string     `json:"division"`
	Lines        []Line     `json:"lines"`
	TotalFen     int64      `json:"total_fen"`
	PaidFen      int64      `json:"paid_fen"`
	RefundedFen  int64      `json:"refunded_fen"`
	Status       Status     `json:"status"`
	Channel      string     `json:"channel,omitempty"`
	PayURL       string     `json:"pay_url,omitempty"`
	ChannelTxnID string     `json:"channel_txn_id,omitempty"`
	ExpiresAt    time.Time  `json:"expires_at"`
	PaidAt       *time.Time `json:"paid_at,omitempty"`
	ClosedReason string     `json:"closed_reason,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Refundable is what may still be refunded, not counting refunds in flight.
func (o Order) Refundable() int64 { return o.PaidFen - o.RefundedFen }

// RefundStatus is where a refund stands.
type RefundStatus string

const (
	RefundPending   RefundStatus = "pending"
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
)

// Refund is money returned for an order.
type Refund struct {
	ID          string       `json:"id"`
	OrderID     string       `json:"order_id"`
	RequestID   string       `json:"request_id"`
	AmountFen   int64        `json:"amount_fen"`
	Reason      string       `json:"reason,omitempty"`
	Status      RefundStatus `json:"status"`
	TxnID       string       `json:"txn_id,omitempty"`
	RequestedBy string       `json:"requested_by"`
	Failure     string       `json:"failure,omitempty"`
	CreatedAt   time.Time    `json:"created_at"`
	DoneAt      *time.Time   `json:"done_at,omitempty"`
}

// RefundInput asks for a refund. RequestID makes it idempotent: the same id returns the same
// refund, whatever happened to it.
type RefundInput struct {
	RequestID string `json:"request_id"`
	AmountFen int64  `json:"amount_fen"`
	Reason    string `json:"reason"`
}

// Filter narrows List.
type Filter struct {
	Status Status
	DeptID string // staff with PermReadAll: one department
	Ref    string
	Limit  int // default 100, at most 1000
	Offset int
}

// AuditFunc records one event inside the transaction that makes the change (as org's).
type AuditFunc func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error

// Keys signs receipts with the node's SM2 key and checks them; *crypto.Keyring has it.
type Keys interface {
	Sign(msg []byte) (sig []byte, keyID string, err error)
	ActiveKeyID() string
	Verify(keyID string, msg, sig []byte) error
}

// Options configures a Service.
type Options struct {
	Audit AuditFunc        // called inside the transaction of every change
	Now   func() time.Time // default time.Now
	// NotifyURL is the callback URL a channel posts to, e.g.
	// "https://node/api/v1/pay/notify/" + channel (the app mounts NotifyHandler there).
	NotifyURL func(channel string) string
	// ReturnURL is where the channel's pay page sends the payer back to, per order ("" none).
	ReturnURL func(o Order) string
	// DefaultExpiry is the payment deadline of orders raised without one; default 7 days.
	DefaultExpiry time.Duration
	// ReceiptKind is digits 3–6 of receipt codes, the class and kind of 财政电子票据;
	// default "0101" (非税收入类, 非税收入一般缴款书).
	ReceiptKind string
	Logger      *slog.Logger
}

// Audit actions.
const (
	ActionCreate         = "pay.order.create"
	ActionStart          = "pay.order.start"
	ActionPaid           = "pay.order.paid" // with the electronic receipt's number
	ActionClose          = "pay.order.close"
	ActionExpire         = "pay.order.expire"
	ActionRefundRequest  = "pay.refund.request"
	ActionRefundDone     = "pay.refund.succeed"
	ActionRefundFail     = "pay.refund.fail"
	ActionTxnHeld        = "pay.txn.hold"
	ActionTxnRejected    = "pay.txn.reject"
	ActionReconcile      = "pay.reconcile"
	ActionRefundRecorded = "pay.refund.record" // a refund the channel made by itself
)

// Event subjects, published in the transaction of the change.
const (
	EventPaid     = "dgov.pay.paid"
	EventRefunded = "dgov.pay.refunded"
	EventClosed   = "dgov.pay.closed" // closed or expired unpaid
)

// Event is the payload of payment's events.
type Event struct {
	OrderID     string `json:"order_id"`
	Code        string `json:"code"`
	Ref         string `json:"ref"`
	ItemCode    string `json:"item_code"`
	Status      Status `json:"status"`
	TotalFen    int64  `json:"total_fen"`
	PaidFen     int64  `json:"paid_fen"`
	RefundedFen int64  `json:"refunded_fen"`
	DeptID      string `json:"dept_id"`
	Division    string `json:"division"`
}

// Errors of this package. Out-of-scope actions return i18n.ErrForbidden itself.
var (
	ErrState = &i18n.Error{Code: "pay.state", Status: http.StatusConflict,
		Msg: i18n.T("缴款单当前状态不允许此操作", "the order's status does not allow this")}
	ErrRefConflict = &i18n.Error{Code: "pay.ref_conflict", Status: http.StatusConflict, Field: "ref",
		Msg: i18n.T("该业务已有金额不同的缴款单", "this reference already has an order with other fees")}
	ErrRefundTooMuch = &i18n.Error{Code: "pay.refund.too_much", Status: http.StatusConflict, Field: "amount_fen",
		Msg: i18n.T("退款金额超过可退金额", "the refund exceeds what can still be refunded")}
	ErrRefundConflict = &i18n.Error{Code: "pay.refund.conflict", Status: http.StatusConflict, Field: "request_id",
		Msg: i18n.T("该退款请求号已用于其他退款", "this refund request id was used for another refund")}
	ErrUnknownChannel = &i18n.Error{Code: "pay.unknown_channel", Status: http.StatusNotFound, Field: "channel",
		Msg: i18n.T("未知的支付渠道", "unknown payment channel")}
	ErrExpired = &i18n.Error{Code: "pay.expired", Status: http.StatusConflict,
		Msg: i18n.T("缴款单已超过缴款期限", "the order is past its payment deadline")}
)

func invalid(field, code, zh, en string, args ...any) *i18n.Error {
	return i18n.Errorf(http.StatusBadRequest, code, zh, en, args...).WithField(field)
}

// Service holds payment's rules.
type Service struct {
	d        *db.DB
	policy   *authz.Policy
	keys     Keys
	channels map[string]Channel
	order    []string // channel names, as given
	audit    AuditFunc
	now      func() time.Time
	opts     Options
	log      *slog.Logger
}

// New returns the payment service on d. policy must carry RegisterPermissions' grants; keys
// sign receipts (the node's keyring); channels are the payment channels, by Name.
func New(d *db.DB, policy *authz.Policy, keys Keys, channels []Channel, opts Options) *Service {
	s := &Service{d: d, policy: policy, keys: keys, channels: map[string]Channel{}, audit: opts.Audit, now: opts.Now, opts: opts, log: opts.Logger}
	for _, c := range channels {
		s.channels[c.Name()] = c
		s.order = append(s.order, c.Name())
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.DefaultExpiry <= 0 {
		s.opts.DefaultExpiry = 7 * 24 * time.Hour
	}
	if s.opts.ReceiptKind == "" {
		s.opts.ReceiptKind = "0101"
	}
	if s.opts.NotifyURL == nil {
		s.opts.NotifyURL = func(channel string) string { return "/api/v1/pay/notify/" + channel }
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

func (s *Service) clock() time.Time { return db.Now(s.now()) }

// Channels lists the channels' names, in the order given to New.
func (s *Service) Channels() []string { return append([]string(nil), s.order...) }

func (s *Service) channel(name string) (Channel, error) {
	c, ok := s.channels[name]
	if !ok {
		return nil, ErrUnknownChannel
	}
	return c, nil
}

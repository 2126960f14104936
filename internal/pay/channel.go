package pay

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Channel is a payment channel: a bank or wallet that takes the payer's money for an order and
// tells us so. Each channel speaks its own protocol; an implementation turns it into these
// calls. paysim.Client is the one of the development simulator (package paysim).
//
// The payment code is the merchant order number at the channel, so a channel holds at most one
// charge per order: CreateCharge for a code it already holds returns that charge again.
type Channel interface {
	// Name is the channel's id in our records and in the callback path (/notify/{channel}).
	Name() string
	// CreateCharge opens (or returns the open) charge of an order and gives the payer's URL;
	// the QR "scan to pay" code carries that URL.
	CreateCharge(ctx context.Context, req ChargeRequest) (Charge, error)
	// CloseCharge stops a charge from being paid (order closed or expired). Closing a charge
	// that was paid meanwhile fails with ErrChannelPaid.
	CloseCharge(ctx context.Context, code string) error
	// ParseNotification verifies a callback's signature and reads the transaction it reports.
	// A signature that does not verify is ErrBadSignature, anything else unreadable
	// ErrBadNotification.
	ParseNotification(header http.Header, body []byte) (Txn, error)
	// QueryCharge asks the channel where a charge stands, with its payment and refunds.
	QueryCharge(ctx context.Context, code string) (ChargeStatus, error)
	// Refund returns money of a paid charge, idempotent by req.RefundID. A refusal the channel
	// will not change its mind on (more than was paid, unknown charge) wraps ErrChannelRefused;
	// any other error leaves the outcome unknown, for Sync to learn by QueryCharge.
	Refund(ctx context.Context, req RefundRequest) (Txn, error)
	// Statement fetches the channel's statement (对账单) of a Beijing day.
	Statement(ctx context.Context, day time.Time) ([]StatementLine, error)
}

// ChargeRequest opens a charge.
type ChargeRequest struct {
	Code      string    `json:"code"`
	AmountFen int64     `json:"amount_fen"`
	Subject   string    `json:"subject"`
	NotifyURL string    `json:"notify_url"`
	ReturnURL string    `json:"return_url,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Charge is an open charge: where the payer pays.
type Charge struct {
	PayURL string `json:"pay_url"`
}

// TxnKind says which way money moved.
type TxnKind string

const (
	TxnPay    TxnKind = "pay"
	TxnRefund TxnKind = "refund"
)

// Txn is one channel transaction: a payment, or a refund (with the refund id we gave, or the
// channel's own for a refund it made by itself).
type Txn struct {
	Kind      TxnKind   `json:"kind"`
	TxnID     string    `json:"txn_id"`
	Code      string    `json:"code"`
	RefundID  string    `json:"refund_id,omitempty"`
	AmountFen int64     `json:"amount_fen"`
	At        time.Time `json:"at"`
}

// ChargeState is where a charge stands at the channel.
type ChargeState string

const (
	ChargePending  ChargeState = "pending"
	ChargePaid     ChargeState = "paid"
	ChargeClosed   ChargeState = "closed"
	ChargeNotFound ChargeState = "not_found"
)

// ChargeStatus is a charge as the channel answers a query.
type ChargeStatus struct {
	Code      string      `json:"code"`
	State     ChargeState `json:"state"`
	AmountFen int64       `json:"amount_fen"`
	Payment   *Txn        `json:"payment,omitempty"`
	Refunds   []Txn       `json:"refunds,omitempty"`
}

// RefundRequest asks the channel to return money.
type RefundRequest struct {
	Code      string `json:"code"`
	RefundID  string `json:"refund_id"`
	AmountFen int64  `json:"amount_fen"`
	Reason    string `json:"reason,omitempty"`
}

// StatementLine is one line of a channel's daily statement.
type StatementLine struct {
	Date      string  `json:"date"` // YYYY-MM-DD, Beijing
	TxnID     string  `json:"txn_id"`
	Code      string  `json:"code"`
	AmountFen int64   `json:"amount_fen"`
	Kind      TxnKind `json:"kind"`
}

// Errors of channels and their messages.
var (
	ErrBadSignature = &i18n.Error{Code: "pay.bad_signature", Status: http.StatusUnauthorized,
		Msg: i18n.T("支付渠道消息签名验证失败", "the payment channel message's signature does not verify")}
	ErrBadNotification = &i18n.Error{Code: "pay.bad_notification", Status: http.StatusBadRequest,
		Msg: i18n.T("支付渠道消息格式无效", "the payment channel message is malformed")}
	ErrChannelRefused = &i18n.Error{Code: "pay.channel_refused", Status: http.StatusConflict,
		Msg: i18n.T("支付渠道拒绝了该请求", "the payment channel refused the request")}
	ErrChannelPaid = &i18n.Error{Code: "pay.channel_paid", Status: http.StatusConflict,
		Msg: i18n.T("该笔款项已在支付渠道支付", "the charge was already paid at the channel")}
	ErrChannelUnavailable = &i18n.Error{Code: "pay.channel_unavailable", Status: http.StatusBadGateway,
		Msg: i18n.T("支付渠道暂时不可用，请稍后重试", "the payment channel is unavailable; please try again later")}
	ErrStatement = &i18n.Error{Code: "pay.statement", Status: http.StatusBadGateway,
		Msg: i18n.T("对账单格式无效", "the statement file is malformed")}
)

// StatementHeader is the first line of the statement format ParseStatement reads.
var StatementHeader = []string{"date", "txn_id", "payment_code", "amount_fen", "type"}

// maxStatementLines bounds one day's statement (a county collects far fewer in a day).
const maxStatementLines = 1_000_000

// ParseStatement reads a statement file in dgov's CSV form: the header line StatementHeader,
// then one line per transaction — Beijing date (YYYY-MM-DD), channel transaction id, payment
// code, amount in fen (positive), and pay or refund. A channel with another format converts
// to StatementLine itself. Every line is checked; the first bad one fails the whole file (a
// partly read statement would reconcile wrongly).
func ParseStatement(r io.Reader) ([]StatementLine, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(StatementHeader)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrStatement.Wrap(errors.New("empty file"))
		}
		return nil, ErrStatement.Wrap(err)
	}
	for i, h := range StatementHeader {
		name := strings.TrimSpace(head[i])
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // a byte-order mark, as spreadsheets save
		}
		if name != h {
			return nil, ErrStatement.Wrap(fmt.Errorf("header column %d is %q, want %q", i+1, name, h))
		}
	}
	var out []StatementLine
	seen := map[string]bool{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, ErrStatement.Wrap(err)
		}
		if len(out) >= maxStatementLines {
			return nil, ErrStatement.Wrap(fmt.Errorf("more than %d lines", maxStatementLines))
		}
		l, err := parseStatementLine(rec)
		if err != nil {
			return nil, ErrStatement.Wrap(fmt.Errorf("line %d: %w", line, err))
		}
		if seen[l.TxnID] {
			return nil, ErrStatement.Wrap(fmt.Errorf("line %d: transaction %q listed twice", line, l.TxnID))
		}
		seen[l.TxnID] = true
		out = append(out, l)
	}
}

func parseStatementLine(rec []string) (StatementLine, error) {
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
	}
	l := StatementLine{Date: rec[0], TxnID: rec[1], Code: rec[2], Kind: TxnKind(rec[4])}
	if _, err := time.ParseInLocation(time.DateOnly, l.Date, calendar.Beijing); err != nil {
		return l, fmt.Errorf("date %q", l.Date)
	}
	if err := checkTxnID(l.TxnID); err != nil {
		return l, err
	}
	if len(l.Code) != CodeLen || !isDigits(l.Code) {
		return l, fmt.Errorf("payment code %q", l.Code)
	}
	n, err := strconv.ParseInt(rec[3], 10, 64)
	if err != nil || n <= 0 || rec[3][0] == '+' {
		return l, fmt.Errorf("amount %q: want a positive whole number of fen", rec[3])
	}
	l.AmountFen = n
	if l.Kind != TxnPay && l.Kind != TxnRefund {
		return l, fmt.Errorf("type %q: want pay or refund", rec[4])
	}
	return l, nil
}

// checkTxnID accepts the channel transaction ids we store: 1–64 printable ASCII characters
// without spaces or commas.
func checkTxnID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("transaction id %q: want 1 to 64 characters", id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == ',' {
			return fmt.Errorf("transaction id %q: character %d not allowed", id, i+1)
		}
	}
	return nil
}

// WriteStatement writes lines in the form ParseStatement reads (for channels and tests).
func WriteStatement(w io.Writer, lines []StatementLine) error {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write(StatementHeader)
	for _, l := range lines {
		_ = cw.Write([]string{l.Date, l.TxnID, l.Code, strconv.FormatInt(l.AmountFen, 10), string(l.Kind)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// CheckTxn checks the fields of a transaction a channel reported, before anything is stored.
func CheckTxn(t Txn) error {
	if t.Kind != TxnPay && t.Kind != TxnRefund {
		return fmt.Errorf("kind %q", t.Kind)
	}
	if err := checkTxnID(t.TxnID); err != nil {
		return err
	}
	if len(t.Code) != CodeLen || !isDigits(t.Code) {
		return fmt.Errorf("payment code %q", t.Code)
	}
	if t.AmountFen <= 0 {
		return fmt.Errorf("amount %d fen", t.AmountFen)
	}
	if t.Kind == TxnRefund {
		if err := checkTxnID(t.RefundID); err != nil {
			return fmt.Errorf("refund id: %w", err)
		}
	}
	if t.At.IsZero() {
		return errors.New("no time")
	}
	return nil
}

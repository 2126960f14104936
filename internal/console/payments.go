package console

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Non-tax payments (网上非税支付): the orders of the officer's department (every department's
// within the division for auditors), an order with its fee lines, refunds and receipt, refund
// and close forms, and the daily reconciliation reports with their mismatches.

var (
	paymentsTitle = i18n.T("非税缴款", "Non-tax payments")
	orderTitle    = i18n.T("缴款单", "Payment order")
	reconTitle    = i18n.T("对账报告", "Reconciliation")
)

type paymentPages struct {
	c *Console
	p *pay.Service
}

func (c *Console) paymentRoutes(mux *http.ServeMux, p *pay.Service) {
	pp := &paymentPages{c: c, p: p}
	mux.Handle("GET /console/payments", c.staffOnly(pp.listPage))
	mux.Handle("GET /console/payments/reconciliation", c.staffOnly(pp.reconPage))
	mux.Handle("GET /console/payments/{id}", c.staffOnly(pp.orderPage))
	mux.Handle("POST /console/payments/{id}/refund", c.staffOnly(pp.refund))
	mux.Handle("POST /console/payments/{id}/close", c.staffOnly(pp.close))
}

// yuan is an amount in fen shown as yuan (¥12.34): money is integer fen everywhere else.
type yuan int64

func (y yuan) String() string {
	fen, sign := int64(y), ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s¥%d.%02d", sign, fen/100, fen%100)
}

// maxYuanFen bounds an amount typed in a form: far above any fee, far below int64's limits.
const maxYuanFen = 1_000_000_000_00

// parseYuan reads an amount typed in yuan ("12", "12.3", "12.34", "¥12.34") as fen, exactly:
// no floating point, at most two decimals.
func parseYuan(s string) (int64, error) {
	bad := i18n.New("console.amount", "金额应为元，最多两位小数，如 12.50", "an amount is in yuan with at most two decimals, e.g. 12.50").WithField("amount")
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "¥"))
	whole, frac, dotted := strings.Cut(s, ".")
	if whole == "" || len(whole) > 12 || len(frac) > 2 || (dotted && frac == "") {
		return 0, bad
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, bad
			}
		}
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, bad
	}
	cents := int64(0)
	if frac != "" {
		c, _ := strconv.ParseInt(frac, 10, 64) // one or two digits, checked above
		if len(frac) == 1 {
			c *= 10
		}
		cents = c
	}
	fen := n*100 + cents
	if fen <= 0 || fen > maxYuanFen {
		return 0, bad
	}
	return fen, nil
}

// orderRow is an order in a list, its amounts in yuan.
type orderRow struct {
	pay.Order
	Total, Paid, Refunded yuan
}

func rowOf(o pay.Order) orderRow {
	return orderRow{Order: o, Total: yuan(o.TotalFen), Paid: yuan(o.PaidFen), Refunded: yuan(o.RefundedFen)}
}

type paymentsData struct {
	Status      pay.Status
	DeptID      string
	Orders      []orderRow
	Statuses    []pay.Status
	StatusNames map[pay.Status]i18n.Text
	ReadAll     bool
	Departments []org.Department
}

func (pp *paymentPages) listPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	q := r.URL.Query()
	d := &paymentsData{Status: pay.Status(q.Get("status")), DeptID: strings.TrimSpace(q.Get("dept")), StatusNames: pay.StatusNames,
		Statuses: []pay.Status{pay.StatusUnpaid, pay.StatusPaying, pay.StatusPaid, pay.StatusPartiallyRefunded, pay.StatusRefunded,
			pay.StatusClosed, pay.StatusExpired},
		ReadAll: pp.c.Policy.Allowed(sub, pay.PermReadAll, sub.Division)}
	pg := pp.c.page(r, "payments", paymentsTitle, d)
	if d.ReadAll {
		d.Departments, _ = pp.c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{Limit: 1000})
	}
	orders, err := pp.p.List(ctx, sub, pay.Filter{Status: d.Status, DeptID: d.DeptID, Limit: 200})
	if err != nil {
		pp.c.fail(w, r, err, "console/payments", pg)
		return
	}
	for _, o := range orders {
		d.Orders = append(d.Orders, rowOf(o))
	}
	pp.c.render(w, r, http.StatusOK, "console/payments", pg)
}

// lineRow is a fee line, its amount in yuan.
type lineRow struct {
	pay.Line
	Amount yuan
}

// refundRow is a refund, its amount in yuan.
type refundRow struct {
	pay.Refund
	Amount yuan
}

type orderData struct {
	Order       orderRow
	Lines       []lineRow
	Refunds     []refundRow
	Receipt     *pay.Receipt
	CanRefund   bool
	CanClose    bool
	RequestID   string // makes a double-submitted refund one refund
	Refundable  yuan
	StatusNames map[pay.Status]i18n.Text
}

// newRequestID is a random refund request id.
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "console-" + hex.EncodeToString(b)
}

func (pp *paymentPages) data(r *http.Request, sub authz.Subject) (*orderData, error) {
	ctx := r.Context()
	o, err := pp.p.Get(ctx, sub, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := &orderData{Order: rowOf(o), RequestID: newRequestID(), StatusNames: pay.StatusNames}
	for _, l := range o.Lines {
		d.Lines = append(d.Lines, lineRow{Line: l, Amount: yuan(l.AmountFen)})
	}
	refunds, err := pp.p.Refunds(ctx, sub, o.ID)
	if err != nil {
		return nil, err
	}
	inFlight := int64(0)
	for _, rf := range refunds {
		d.Refunds = append(d.Refunds, refundRow{Refund: rf, Amount: yuan(rf.AmountFen)})
		if rf.Status == pay.RefundPending {
			inFlight += rf.AmountFen
		}
	}
	if o.Status.Settled() {
		rc, err := pp.p.Receipt(ctx, sub, o.ID)
		if err != nil && !errors.Is(err, i18n.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			d.Receipt = &rc
		}
	}
	own := sub.Dept != "" && sub.Dept == o.DeptID
	d.Refundable = yuan(o.Refundable() - inFlight)
	d.CanRefund = own && d.Refundable > 0 && pp.c.Policy.Allowed(sub, pay.PermRefund, o.Division)
	d.CanClose = own && o.Status.Open() && pp.c.Policy.Allowed(sub, pay.PermClose, o.Division)
	return d, nil
}

func (pp *paymentPages) orderPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	d, err := pp.data(r, sub)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	pp.c.render(w, r, http.StatusOK, "console/payments_order", pp.c.page(r, "payments", orderTitle, d))
}

func (pp *paymentPages) failOrder(w http.ResponseWriter, r *http.Request, sub authz.Subject, err error) {
	d, derr := pp.data(r, sub)
	if derr != nil {
		httpx.WriteError(w, r, derr)
		return
	}
	pp.c.fail(w, r, err, "console/payments_order", pp.c.page(r, "payments", orderTitle, d))
}

func (pp *paymentPages) refund(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	id := r.PathValue("id")
	fen, err := parseYuan(r.PostFormValue("amount"))
	if err == nil {
		_, err = pp.p.Refund(r.Context(), sub, id, pay.RefundInput{RequestID: strings.TrimSpace(r.PostFormValue("request_id")),
			AmountFen: fen, Reason: r.PostFormValue("reason")})
	}
	if err != nil {
		pp.failOrder(w, r, sub, err)
		return
	}
	http.Redirect(w, r, "/console/payments/"+url.PathEscape(id)+"?ok=1", http.StatusSeeOther)
}

func (pp *paymentPages) close(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	id := r.PathValue("id")
	if _, err := pp.p.Close(r.Context(), sub, id, r.PostFormValue("reason")); err != nil {
		pp.failOrder(w, r, sub, err)
		return
	}
	http.Redirect(w, r, "/console/payments/"+url.PathEscape(id)+"?ok=1", http.StatusSeeOther)
}

// reconRow is a reconciliation report with its totals in yuan.
type reconRow struct {
	pay.ReconReport
	ChannelPay, ChannelRefund, OurPay, OurRefund yuan
	Mismatched                                   []mismatchRow
}

type mismatchRow struct {
	pay.Mismatch
	Ours, Channel yuan
}

func reconRowOf(r pay.ReconReport) reconRow {
	out := reconRow{ReconReport: r, ChannelPay: yuan(r.ChannelPayFen), ChannelRefund: yuan(r.ChannelRefundFen),
		OurPay: yuan(r.OurPayFen), OurRefund: yuan(r.OurRefundFen)}
	for _, m := range r.Mismatches {
		out.Mismatched = append(out.Mismatched, mismatchRow{Mismatch: m, Ours: yuan(m.OurAmountFen), Channel: yuan(m.ChannelAmountFen)})
	}
	return out
}

// mismatchNames name the ways a statement and our records disagree.
var mismatchNames = map[pay.MismatchKind]i18n.Text{
	pay.MissingOurs:    i18n.T("渠道有、本平台无", "on the statement, not in our records"),
	pay.MissingChannel: i18n.T("本平台有、渠道无", "in our records, not on the statement"),
	pay.AmountDiffers:  i18n.T("金额不符", "amounts differ"),
	pay.StatusDiffers:  i18n.T("状态不符", "status differs"),
}

type reconData struct {
	Reports       []reconRow
	Report        *reconRow // the one asked for by channel and day
	MismatchNames map[pay.MismatchKind]i18n.Text
}

func (pp *paymentPages) reconPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	d := &reconData{MismatchNames: mismatchNames}
	pg := pp.c.page(r, "payments", reconTitle, d)
	reports, err := pp.p.ReconReports(ctx, sub, 60)
	if err != nil {
		pp.c.fail(w, r, err, "console/payments_recon", pg)
		return
	}
	for _, rep := range reports {
		d.Reports = append(d.Reports, reconRowOf(rep))
	}
	if ch, day := r.URL.Query().Get("channel"), r.URL.Query().Get("day"); ch != "" && day != "" {
		rep, err := pp.p.ReconReport(ctx, sub, ch, day)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		row := reconRowOf(rep)
		d.Report = &row
	}
	pp.c.render(w, r, http.StatusOK, "console/payments_recon", pg)
}

package portal

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Payments serves the payer's non-tax payments (网上非税支付): their orders, paying one through
// a channel — the channel's pay page, or its QR code to scan with a phone — and the electronic
// receipt (电子票据), on the page and as a signed file that verifies offline.
type Payments struct {
	*Accounts
	Payments *pay.Service
}

// Routes registers the pages.
func (p *Payments) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /account/payments", p.signedIn(p.listPage))
	mux.HandleFunc("GET /account/payments/{id}", p.signedIn(p.orderPage))
	mux.HandleFunc("POST /account/payments/{id}/pay", p.signedIn(p.pay))
	mux.HandleFunc("GET /account/payments/{id}/receipt", p.signedIn(p.receipt))
}

var (
	paymentsTitle = i18n.T("我的缴费", "My payments")
	orderTitle    = i18n.T("缴款单", "Payment order")
	receiptTitle  = i18n.T("电子票据", "Electronic receipt")
)

// yuan is an amount in fen shown as yuan (¥12.34).
type yuan int64

func (y yuan) String() string {
	fen, sign := int64(y), ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s¥%d.%02d", sign, fen/100, fen%100)
}

// orderView is an order with its amounts in yuan.
type orderView struct {
	pay.Order
	Total, Paid, Refunded yuan
	StatusName            i18n.Text
}

func viewOf(o pay.Order) orderView {
	return orderView{Order: o, Total: yuan(o.TotalFen), Paid: yuan(o.PaidFen), Refunded: yuan(o.RefundedFen), StatusName: pay.StatusNames[o.Status]}
}

type paymentsData struct {
	Orders []orderView
}

func (p *Payments) listPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	sub, err := p.Identity.Subject(r.Context(), ses.AccountID, ses.ActingEnterpriseID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	orders, err := p.Payments.List(r.Context(), sub, pay.Filter{Limit: 200})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d := paymentsData{Orders: []orderView{}}
	for _, o := range orders {
		d.Orders = append(d.Orders, viewOf(o))
	}
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, r, http.StatusOK, "portal/payments", p.page(r, paymentsTitle, d))
}

// lineView is a fee line with its amount in yuan.
type lineView struct {
	pay.Line
	Amount yuan
}

type orderData struct {
	Order    orderView
	Lines    []lineView
	Channels []string
	// QR is the "scan to pay" code of the channel's pay page, while the order is being paid.
	QR      template.URL
	Receipt bool
}

func (p *Payments) orderData(r *http.Request, ses identity.Session) (*orderData, error) {
	ctx := r.Context()
	sub, err := p.Identity.Subject(ctx, ses.AccountID, ses.ActingEnterpriseID)
	if err != nil {
		return nil, err
	}
	o, err := p.Payments.Get(ctx, sub, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := &orderData{Order: viewOf(o), Channels: p.Payments.Channels(), Receipt: o.Status.Settled()}
	for _, l := range o.Lines {
		d.Lines = append(d.Lines, lineView{Line: l, Amount: yuan(l.AmountFen)})
	}
	if o.Status == pay.StatusPaying && o.PayURL != "" {
		if png, err := pay.QRPNG(o.PayURL, pay.QRModulePixels); err == nil {
			d.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
		}
	}
	return d, nil
}

func (p *Payments) orderPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	d, err := p.orderData(r, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, r, http.StatusOK, "portal/payments_order", p.page(r, orderTitle, d))
}

// pay opens (or reuses) the order's charge at the chosen channel, then shows the order with
// the link to the channel's page and its QR code. The browser is not redirected to the
// channel from the form: a bank's page is another origin, which form-action 'self' forbids.
func (p *Payments) pay(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	id := r.PathValue("id")
	sub, err := p.Identity.Subject(r.Context(), ses.AccountID, ses.ActingEnterpriseID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if _, err := p.Payments.StartPayment(r.Context(), sub, id, strings.TrimSpace(r.PostFormValue("channel"))); err != nil {
		d, derr := p.orderData(r, ses)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		p.fail(w, r, err, "portal/payments_order", p.page(r, orderTitle, d))
		return
	}
	http.Redirect(w, r, "/account/payments/"+url.PathEscape(id)+"#pay", http.StatusSeeOther)
}

type receiptData struct {
	Receipt pay.Receipt
	Lines   []lineView
	Total   yuan
	// Verified: the receipt's signature verifies with the node's keys.
	Verified bool
}

// receipt shows the electronic receipt of a paid order; ?download=1 gives the signed receipt
// as JSON, which anyone verifies offline with the node's public key (/api/v1/keys).
func (p *Payments) receipt(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := p.Identity.Subject(ctx, ses.AccountID, ses.ActingEnterpriseID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	rc, err := p.Payments.Receipt(ctx, sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("download") != "" {
		b, err := json.MarshalIndent(rc, "", "  ")
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": "receipt-" + rc.Code + "-" + rc.Number + ".json"}))
		_, _ = w.Write(b)
		return
	}
	d := receiptData{Receipt: rc, Total: yuan(rc.TotalFen)}
	for _, l := range rc.Lines {
		d.Lines = append(d.Lines, lineView{Line: l, Amount: yuan(l.AmountFen)})
	}
	if err := p.Payments.VerifyReceipt(rc); err == nil {
		d.Verified = true
	} else if _, ok := i18n.As(err); !ok && !errors.Is(err, pay.ErrReceipt) {
		httpx.WriteError(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "portal/payments_receipt", p.page(r, receiptTitle, d))
}

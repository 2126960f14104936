package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/notify"
	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/workflow"
)

// Licences and payment in online services (issue 6): govservice.Trust on the licence and
// payment engines, and the reactions to their events —
//   - an application of an item with fees raises its order (pay.CreateOrder, Ref
//     "application:<id>") when submitted, and again on its submitted event should that have
//     failed; the order is the same (idempotent by Ref);
//   - the decision step's approval waits for the payment (govservice.Applications.Decide);
//   - a paid order tells the applicant (dgov.pay.paid, once per event);
//   - a case closed approved whose item results in a licence issues it, by the handling
//     department, to the applicant, and tells them (once per application);
//   - a case closed refused or withdrawn closes its unpaid order.

// Consumers of the trusted services' events in applications: one durable each for the cluster,
// whose effects are in the shared database.
const (
	feeOrderConsumer      = "services-fee-orders"
	paidNoticeConsumer    = "services-paid-notices"
	licenceIssueConsumer  = "services-licence-issue"
	licenceGrantValidDays = 90 // an authorisation outlives the promised time of any item
)

// serviceTrust is govservice.Trust on the app's licence and payment services.
type serviceTrust struct{ a *App }

// reader is the system subject that reads orders and licences for applications: every
// department's within the node's division.
func (t serviceTrust) reader() authz.Subject {
	return authz.Subject{Kind: authz.System, ID: "govservice-trust", Name: "online services", Division: t.a.Cfg.NodeDivision,
		Roles: []authz.Role{authz.RoleAuditor}}
}

func (t serviceTrust) RaiseOrder(ctx context.Context, o govservice.FeeOrder) (govservice.Payment, error) {
	lines := make([]pay.Line, 0, len(o.Fees))
	for _, f := range o.Fees {
		lines = append(lines, pay.Line{Name: f.Name, AmountFen: f.AmountFen, Basis: f.Basis})
	}
	ord, err := t.a.Payments.CreateOrder(ctx, pay.OrderInput{Ref: o.Ref, ItemCode: o.ItemCode, Payer: pay.Payer{Subject: o.Payer, Name: o.PayerName},
		Lines: lines, DeptID: o.DeptID, DeptName: o.DeptName, Division: o.Division})
	if err != nil {
		return govservice.Payment{}, fmt.Errorf("raise the order of %s: %w", o.Ref, err)
	}
	return paymentView(ord), nil
}

func (t serviceTrust) Payment(ctx context.Context, ref string) (*govservice.Payment, error) {
	orders, err := t.a.Payments.List(ctx, t.reader(), pay.Filter{Ref: ref, Limit: 10})
	if err != nil {
		return nil, err
	}
	// Newest first: a settled order wins over an earlier one closed or expired.
	for _, o := range orders {
		if o.Status.Settled() || o.Status.Open() {
			p := paymentView(o)
			return &p, nil
		}
	}
	if len(orders) > 0 {
		p := paymentView(orders[0])
		return &p, nil
	}
	return nil, nil
}

func paymentView(o pay.Order) govservice.Payment {
	return govservice.Payment{OrderID: o.ID, Code: o.Code, Status: string(o.Status), StatusText: pay.StatusNames[o.Status],
		Paid: o.Status.Settled(), Open: o.Status.Open(), TotalFen: o.TotalFen, PaidAt: o.PaidAt,
		Href: "/account/payments/" + url.PathEscape(o.ID)}
}

func (t serviceTrust) HeldLicences(ctx context.Context, holder authz.Subject) ([]govservice.HeldLicence, error) {
	mine, err := t.a.Licenses.Mine(ctx, holder)
	if err != nil {
		return nil, err
	}
	out := make([]govservice.HeldLicence, 0, len(mine))
	for _, s := range mine {
		if s.Status == license.StatusValid {
			out = append(out, heldView(s))
		}
	}
	return out, nil
}

func heldView(s license.Summary) govservice.HeldLicence {
	return govservice.HeldLicence{ID: s.ID, TypeName: s.TypeName, HolderName: s.HolderName, IssuerName: s.IssuerName,
		ValidUntil: s.ValidUntil, Status: string(s.Status), Href: "/account/licenses/" + url.PathEscape(s.ID)}
}

func (t serviceTrust) GrantLicence(ctx context.Context, holder authz.Subject, g govservice.LicenceGrant) (string, error) {
	gr, err := t.a.Licenses.GrantUse(ctx, holder, license.GrantInput{LicenseID: g.LicenseID, DeptID: g.DeptID, Purpose: g.Purpose,
		Ref: g.Ref, ValidUntil: t.a.Now().AddDate(0, 0, licenceGrantValidDays)})
	if err != nil {
		return "", err
	}
	return gr.ID, nil
}

func (t serviceTrust) RevokeGrant(ctx context.Context, holder authz.Subject, grantID string) error {
	_, err := t.a.Licenses.RevokeUse(ctx, holder, grantID)
	return err
}

// UseLicence reads the licence an application offers in place of an upload, for the case
// page: every view checks the grant and the signature, but the use is recorded for the
// holder once per application and department (license.Service.Use), not once per view.
func (t serviceTrust) UseLicence(ctx context.Context, officer authz.Subject, licenseID, ref string) (govservice.UsedLicence, error) {
	l, err := t.a.Licenses.Use(ctx, officer, licenseID, ref)
	if err != nil {
		return govservice.UsedLicence{}, err
	}
	c := l.Content
	u := govservice.UsedLicence{ID: c.ID, TypeName: c.TypeName, HolderName: c.Holder.Name, IssuerName: c.Issuer.Name,
		IssuedAt: c.IssuedAt, ValidUntil: c.ValidUntil, Items: map[string]string{}}
	if c.Holder.IDType == license.IDResident {
		u.HolderID = ids.MaskResident(c.Holder.IDNumber)
	} else {
		u.HolderID = c.Holder.IDNumber
	}
	for _, it := range c.Items {
		u.Items[it.Label] = it.Value
	}
	// The record is in force (Use checks it); the signature is checked as a scan would.
	res, err := t.a.Licenses.VerifyOnline(ctx, c.ID, l.Digest)
	if err != nil {
		return govservice.UsedLicence{}, err
	}
	u.Verified, u.Message = res.Valid && res.SignatureValid, res.Message
	return u, nil
}

func (t serviceTrust) IssuedLicence(ctx context.Context, deptID, ref string) (*govservice.HeldLicence, error) {
	list, err := t.a.Licenses.List(ctx, t.reader(), license.Filter{IssuerDeptID: deptID, CaseRef: ref, Limit: 10})
	if errors.Is(err, license.ErrNotIssuer) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	h := heldView(list[0])
	return &h, nil
}

// ---- reactions ----

// trustServiceConsumers are the durable consumers of the reactions above.
func (a *App) trustServiceConsumers() []struct {
	durable, subjects string
	handler           bus.Handler
} {
	return []struct {
		durable, subjects string
		handler           bus.Handler
	}{
		{feeOrderConsumer, govservice.EventApplicationSubmitted, a.onApplicationSubmitted},
		{paidNoticeConsumer, pay.EventPaid, a.onOrderPaid},
		{licenceIssueConsumer, workflow.ActionClosed.Subject(), a.onServiceCaseClosed},
	}
}

// onApplicationSubmitted raises the order of a fee-bearing application, should the submission
// not have (the payment engine down a moment). Raising it again returns the same order.
func (a *App) onApplicationSubmitted(ctx context.Context, ev bus.Event) error {
	var p govservice.SubmittedEvent
	if err := ev.Decode(&p); err != nil {
		return err
	}
	o, ok, err := a.Applications.FeeOrderOf(ctx, p.ID)
	if err != nil {
		if e, isUser := i18n.As(err); isUser && e.HTTPStatus() == 404 {
			return nil
		}
		return err
	}
	if !ok {
		return nil
	}
	_, err = serviceTrust{a}.RaiseOrder(ctx, o)
	if errors.Is(err, pay.ErrRefConflict) {
		return nil // an order for other fees exists (the item changed): it is the one to pay
	}
	return err
}

// onOrderPaid tells the applicant their fees of an application are paid.
func (a *App) onOrderPaid(ctx context.Context, ev bus.Event) error {
	var p pay.Event
	if err := ev.Decode(&p); err != nil {
		return err
	}
	appID, ok := strings.CutPrefix(p.Ref, govservice.RefPrefix)
	if !ok {
		return nil
	}
	n, err := a.Applications.Notice(ctx, appID)
	if err != nil {
		if e, isUser := i18n.As(err); isUser && e.HTTPStatus() == 404 {
			return nil
		}
		return err
	}
	yuan := fmt.Sprintf("%d.%02d", p.PaidFen/100, p.PaidFen%100)
	m := notify.Message{Recipient: n.Applicant,
		Title: i18n.T("缴费成功", "Payment received"),
		Body: i18n.T(fmt.Sprintf("您申请的“%s”（受理编号 %s）已缴费 %s 元，缴款码 %s。", n.ItemName, n.Number, yuan, p.Code),
			fmt.Sprintf("Your payment of %s yuan for %s (number %s) was received; payment code %s.", yuan, enName(n), n.Number, p.Code)),
		Link: notify.ApplicationLink(appID)}
	return bus.HandleOnce(ctx, a.DB, paidNoticeConsumer, ev, func(tx *db.Tx) error {
		_, err := a.Notify.Send(ctx, tx, m)
		return err
	})
}

func enName(n govservice.Notice) string {
	if n.ItemNameEn != "" {
		return n.ItemNameEn
	}
	return n.ItemName
}

// onServiceCaseClosed issues the licence of an approved application whose item results in
// one, and tells the applicant where it is.
func (a *App) onServiceCaseClosed(ctx context.Context, ev bus.Event) error {
	var p workflow.EventPayload
	if err := ev.Decode(&p); err != nil {
		return err
	}
	appID, ok := strings.CutPrefix(p.Ref, govservice.RefPrefix)
	if !ok {
		return nil
	}
	if p.Outcome != workflow.OutcomeApproved {
		return a.closeApplicationOrder(ctx, appID)
	}
	l, issued, err := a.issueApplicationLicence(ctx, appID)
	if err != nil || !issued {
		return err
	}
	n, err := a.Applications.Notice(ctx, appID)
	if err != nil {
		return err
	}
	m := notify.Message{Recipient: n.Applicant,
		Title: i18n.T("电子证照已签发", "E-licence issued"),
		Body: i18n.T(fmt.Sprintf("您申请的“%s”（受理编号 %s）已办结，电子证照“%s”已签发，证照标识 %s。", n.ItemName, n.Number, l.TypeName, l.ID),
			fmt.Sprintf("Your application for %s (number %s) is complete: the e-licence %s was issued, identifier %s.", enName(n), n.Number, l.TypeName, l.ID)),
		Link: "/account/licenses/" + url.PathEscape(l.ID)}
	return bus.HandleOnce(ctx, a.DB, licenceIssueConsumer, ev, func(tx *db.Tx) error {
		_, err := a.Notify.Send(ctx, tx, m)
		return err
	})
}

// closeApplicationOrder closes the unpaid order of an application refused or withdrawn, so
// that nobody pays for a decision that will not come. A paid one stays: refunding it is the
// department's call. Closing it again, or one paid meanwhile, is refused and left as it is.
func (a *App) closeApplicationOrder(ctx context.Context, appID string) error {
	pm, err := serviceTrust{a}.Payment(ctx, govservice.RefPrefix+appID)
	if err != nil || pm == nil || !pm.Open {
		return err
	}
	f, err := a.Applications.Result(ctx, appID)
	if err != nil {
		return err
	}
	payer := authz.Subject{Kind: f.Applicant.Kind, ID: f.Applicant.ID, Name: f.Applicant.Name}
	_, err = a.Payments.Close(ctx, payer, pm.OrderID, "申请未获准予或已撤回")
	if _, isUser := i18n.As(err); isUser {
		a.Log.Warn("close the order of an application that ended unapproved", "application", f.Number, "order", pm.OrderID, "err", err)
		return nil
	}
	return err
}

// issueApplicationLicence issues the licence an approved application results in, once: the
// handling department issues it (CaseRef "application:<id>"), a second call finds it.
// issued is false when the item results in no licence of a type this node knows.
func (a *App) issueApplicationLicence(ctx context.Context, appID string) (govservice.HeldLicence, bool, error) {
	f, err := a.Applications.Result(ctx, appID)
	if err != nil {
		return govservice.HeldLicence{}, false, err
	}
	typeName := f.Item.Result.LicenseType
	if typeName == "" {
		return govservice.HeldLicence{}, false, nil
	}
	ref := govservice.RefPrefix + appID
	trust := serviceTrust{a}
	if prev, err := trust.IssuedLicence(ctx, f.DeptID, ref); err != nil || prev != nil {
		if prev != nil {
			return *prev, true, nil
		}
		return govservice.HeldLicence{}, false, err
	}
	types, err := a.Licenses.Types(ctx)
	if err != nil {
		return govservice.HeldLicence{}, false, err
	}
	var typ *license.Type
	for i := range types {
		if types[i].Name.ZH == typeName {
			typ = &types[i]
		}
	}
	if typ == nil {
		a.Log.Warn("service result names a licence type this node does not issue", "application", f.Number, "type", typeName)
		return govservice.HeldLicence{}, false, nil
	}
	holder, err := holderIDs{a.Identity}.HolderID(ctx, authz.Subject{Kind: f.Applicant.Kind, ID: f.Applicant.ID})
	if err != nil {
		return govservice.HeldLicence{}, false, fmt.Errorf("licence of application %s: holder: %w", f.Number, err)
	}
	dep, err := (serviceDepartments{org: a.Org, node: a.Cfg.NodeDivision}).Department(ctx, f.DeptID)
	if err != nil {
		return govservice.HeldLicence{}, false, fmt.Errorf("licence of application %s: department: %w", f.Number, err)
	}
	issuer := authz.Subject{Kind: authz.System, ID: "govservice-issue", Name: "online services", Division: dep.DivisionCode,
		Dept: dep.ID, Roles: []authz.Role{authz.RoleOfficer}}
	l, err := a.Licenses.Issue(ctx, issuer, license.IssueInput{TypeCode: typ.Code, IssuerDeptID: f.DeptID,
		Holder: license.Holder{Name: f.Applicant.Name, IDType: holder.Type, IDNumber: holder.Number},
		Items:  licenceItems(*typ, f), CaseRef: ref})
	if db.IsUniqueViolation(err) {
		// A concurrent delivery of the closing event issued it first (the case's licence is
		// unique in the licence store): that one is the licence.
		if prev, perr := trust.IssuedLicence(ctx, f.DeptID, ref); perr == nil && prev != nil {
			return *prev, true, nil
		}
	}
	if err != nil {
		return govservice.HeldLicence{}, false, fmt.Errorf("issue the licence of application %s: %w", f.Number, err)
	}
	c := l.Content
	return govservice.HeldLicence{ID: c.ID, TypeName: c.TypeName, HolderName: c.Holder.Name, IssuerName: c.Issuer.Name,
		ValidUntil: c.ValidUntil, Status: string(l.Status), Href: "/account/licenses/" + url.PathEscape(c.ID)}, true, nil
}

// licenceItems fills the type's data items from the application: a form value under the
// item's own key, else the item's rule in the pack's result (a field, "$number", or text).
func licenceItems(t license.Type, f govservice.ResultFacts) map[string]string {
	out := map[string]string{}
	for _, d := range t.Items {
		v := strings.TrimSpace(f.Values[d.Key])
		if rule, ok := f.Item.Result.Items[d.Key]; ok && v == "" {
			switch {
			case rule == "$number":
				v = f.Number
			case f.Values[rule] != "":
				v = f.Values[rule]
			default:
				v = rule
			}
		}
		if v != "" {
			out[d.Key] = v
		}
	}
	return out
}

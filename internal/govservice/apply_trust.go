package govservice

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// Trusted services in applications (issue 6): an item's fees become a payment order
// (缴款单) the applicant pays before the decision, and an e-licence (电子证照) may stand in
// for a material (用证代替纸质材料). govservice imports neither the payment nor the licence
// engine: the app adapts both to Trust, and applications work without it (no fees charged
// online, licences "not available yet").

// Trust is what applications need of the payment and licence engines.
type Trust interface {
	// RaiseOrder raises the payment order of an application's fees; raising it again for the
	// same Ref returns the order already raised.
	RaiseOrder(ctx context.Context, o FeeOrder) (Payment, error)
	// Payment returns the order raised for ref, nil when none was.
	Payment(ctx context.Context, ref string) (*Payment, error)
	// HeldLicences lists the licences in force that holder holds.
	HeldLicences(ctx context.Context, holder authz.Subject) ([]HeldLicence, error)
	// GrantLicence records the holder's authorisation (用证授权) for a department to use a
	// licence for one application, and returns the grant's id.
	GrantLicence(ctx context.Context, holder authz.Subject, g LicenceGrant) (string, error)
	// RevokeGrant takes back a grant whose application was not stored.
	RevokeGrant(ctx context.Context, holder authz.Subject, grantID string) error
	// UseLicence reads a licence for an officer of the department the holder authorised,
	// verifies it and records the use for the holder to see.
	UseLicence(ctx context.Context, officer authz.Subject, licenseID, ref string) (UsedLicence, error)
	// IssuedLicence returns the licence issued for ref by department deptID, nil when none.
	IssuedLicence(ctx context.Context, deptID, ref string) (*HeldLicence, error)
}

// FeeOrder is the payment order of one application's fees.
type FeeOrder struct {
	Ref       string // "application:<id>"
	ItemCode  string
	Payer     authz.Subject
	PayerName string
	Fees      []Fee
	DeptID    string // the handling (collecting) department
	DeptName  string
	Division  string // the department's division
}

// Payment is an application's order as applications show it.
type Payment struct {
	OrderID    string     `json:"order_id"`
	Code       string     `json:"code"` // 缴款码
	Status     string     `json:"status"`
	StatusText i18n.Text  `json:"status_text"`
	Paid       bool       `json:"paid"` // settled: paid (refunds later do not undo the decision)
	Open       bool       `json:"open"` // still payable
	TotalFen   int64      `json:"total_fen"`
	PaidAt     *time.Time `json:"paid_at,omitempty"`
	// Href is the payer's page of the order (pay button, receipt).
	Href string `json:"href"`
}

// HeldLicence is a licence as an applicant picks it or sees it issued.
type HeldLicence struct {
	ID         string     `json:"id"`
	TypeName   string     `json:"type_name"` // the type's Chinese name, as LicenseTypes
	HolderName string     `json:"holder_name"`
	IssuerName string     `json:"issuer_name"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	Status     string     `json:"status"`
	Href       string     `json:"href"` // the holder's page of the licence
}

// LicenceGrant is one authorisation made with a submission.
type LicenceGrant struct {
	LicenseID string
	DeptID    string
	Ref       string
	Purpose   string
}

// UsedLicence is a licence as the handling officer sees it in place of a scan.
type UsedLicence struct {
	ID         string            `json:"id"`
	TypeName   string            `json:"type_name"`
	HolderName string            `json:"holder_name"`
	HolderID   string            `json:"holder_id"` // masked
	IssuerName string            `json:"issuer_name"`
	IssuedAt   time.Time         `json:"issued_at"`
	ValidUntil *time.Time        `json:"valid_until,omitempty"`
	Items      map[string]string `json:"items,omitempty"`
	// Verified: the signature verifies with the issuer's key and the licence is in force.
	Verified bool      `json:"verified"`
	Message  i18n.Text `json:"message"`
}

// Errors of trusted services in applications.
var (
	ErrUnpaid = &i18n.Error{Code: "govservice.unpaid", Status: http.StatusConflict,
		Msg: i18n.T("申请人尚未缴纳该事项的费用，暂不能作出准予决定", "the applicant has not paid the item's fees yet: it cannot be approved")}
	ErrLicenceNotHeld = &i18n.Error{Code: "govservice.licence_not_held", Status: http.StatusBadRequest,
		Msg: i18n.T("所选电子证照不是您有效的该类证照", "the chosen e-licence is not a valid licence of yours of this type")}
)

// FeesTotal is the sum of an item's fees in fen (one unit each).
func FeesTotal(fees []Fee) int64 {
	var n int64
	for _, f := range fees {
		n += f.AmountFen
	}
	return n
}

// raiseOrder raises the order of a stored application's fees. It runs after the submission
// commits (the payment engine has its own transaction); should it fail, the app raises it
// again on the application's submitted event, and the order is the same (idempotent by Ref).
func (a *Applications) raiseOrder(ctx context.Context, ap Applicant, out Application, it Item, division string) {
	if a.opts.Trust == nil || len(it.Fees) == 0 {
		return
	}
	_, _ = a.opts.Trust.RaiseOrder(ctx, FeeOrder{Ref: RefPrefix + out.ID, ItemCode: it.Code, Payer: ap.Subject,
		PayerName: applicantName(ap), Fees: it.Fees, DeptID: out.DeptID, DeptName: out.DeptName, Division: division})
}

// FeeOrderOf is the payment order a stored application's fees call for (ok false when its
// item has none): for the app raising it again on the submitted event. It authorizes
// nobody, like Notice.
func (a *Applications) FeeOrderOf(ctx context.Context, id string) (FeeOrder, bool, error) {
	r, err := getApp(ctx, a.d, "id", id)
	if err != nil {
		return FeeOrder{}, false, err
	}
	it, err := a.items.GetVersion(ctx, r.itemCode, r.itemVersion)
	if err != nil {
		return FeeOrder{}, false, fmt.Errorf("application %s: %w", r.number, err)
	}
	if len(it.Fees) == 0 {
		return FeeOrder{}, false, nil
	}
	c, err := a.caseAsApplicant(ctx, r)
	if err != nil {
		return FeeOrder{}, false, err
	}
	dep, err := a.org.Department(ctx, c.DeptID)
	if err != nil {
		return FeeOrder{}, false, fmt.Errorf("application %s: department %s: %w", r.number, c.DeptID, err)
	}
	return FeeOrder{Ref: RefPrefix + r.id, ItemCode: r.itemCode, Payer: authz.Subject{Kind: r.applicant.Kind, ID: r.applicant.ID, Name: r.applicant.Name},
		PayerName: r.applicant.Name, Fees: it.Fees, DeptID: dep.ID, DeptName: dep.Name, Division: dep.DivisionCode}, true, nil
}

// ResultFacts are what the app needs to issue an approved application's licence.
type ResultFacts struct {
	ApplicationID string
	Number        string
	Item          Item // the version applied under: Result.LicenseType names the licence
	Applicant     ApplicantRef
	DeptID        string // the handling department: the issuer
	Values        map[string]string
}

// Result returns an application's facts for issuing its result. It is for the app's reaction
// to the case's closing, not for people; it authorizes nobody.
func (a *Applications) Result(ctx context.Context, id string) (ResultFacts, error) {
	r, err := getApp(ctx, a.d, "id", id)
	if err != nil {
		return ResultFacts{}, err
	}
	it, err := a.items.GetVersion(ctx, r.itemCode, r.itemVersion)
	if err != nil {
		return ResultFacts{}, fmt.Errorf("application %s: %w", r.number, err)
	}
	c, err := a.caseAsApplicant(ctx, r)
	if err != nil {
		return ResultFacts{}, err
	}
	vals, err := a.revisionValues(ctx, a.d, r.id, r.revision)
	if err != nil {
		return ResultFacts{}, err
	}
	return ResultFacts{ApplicationID: r.id, Number: r.number, Item: it, Applicant: r.applicant, DeptID: c.DeptID, Values: vals}, nil
}

// Decide records an officer's decision on a service case: as workflow.Service.Decide, except
// that the approval that ends the case — at the decision step (决定) or, without one, the
// last step — is refused with ErrUnpaid while the application's fees are not paid. Cases that
// are not applications go straight to the case engine.
func (a *Applications) Decide(ctx context.Context, actor authz.Subject, caseID string, d workflow.Decision) (workflow.Case, error) {
	if d.Outcome == workflow.Approve && a.opts.Trust != nil {
		if err := a.checkPaid(ctx, actor, caseID); err != nil {
			return workflow.Case{}, err
		}
	}
	return a.cases.Decide(ctx, actor, caseID, d)
}

// checkPaid refuses the approval at a fee-bearing application's decision step until paid.
func (a *Applications) checkPaid(ctx context.Context, actor authz.Subject, caseID string) error {
	c, err := a.cases.Get(ctx, actor, caseID)
	if err != nil {
		return err
	}
	appID, ok := strings.CutPrefix(c.Ref, RefPrefix)
	if !ok || c.State == workflow.StateClosed {
		return nil // the engine answers for cases of other kinds and closed ones
	}
	def, err := a.cases.GetDefinition(ctx, c.Definition, c.DefinitionVersion)
	if err != nil {
		return err
	}
	decision := slices.IndexFunc(def.Steps, func(s workflow.Step) bool { return s.Key == "decide" })
	if decision < 0 {
		decision = len(def.Steps) - 1
	}
	if c.StepIndex < decision {
		return nil
	}
	r, err := getApp(ctx, a.d, "id", appID)
	if err != nil {
		return err
	}
	it, err := a.items.GetVersion(ctx, r.itemCode, r.itemVersion)
	if err != nil {
		return fmt.Errorf("application %s: %w", r.number, err)
	}
	if len(it.Fees) == 0 || FeesTotal(it.Fees) == 0 {
		return nil
	}
	p, err := a.opts.Trust.Payment(ctx, RefPrefix+appID)
	if err != nil {
		return fmt.Errorf("application %s: payment: %w", r.number, err)
	}
	if p == nil || !p.Paid {
		return ErrUnpaid
	}
	return nil
}

// LicenceChoices are, per material key of the item, the applicant's licences in force that
// can stand in for it (the material's license_type): what the apply form offers instead of
// an upload. Empty without Trust or for a holder without a verified identity.
func (a *Applications) LicenceChoices(ctx context.Context, ap authz.Subject, it Item) (map[string][]HeldLicence, error) {
	if a.opts.Trust == nil || !slices.ContainsFunc(it.Materials, func(m Material) bool { return m.LicenseType != "" }) {
		return nil, nil
	}
	held, err := a.opts.Trust.HeldLicences(ctx, ap)
	if err != nil {
		if isUserError(err) {
			return nil, nil // no verified identity: no licences to offer
		}
		return nil, err
	}
	out := map[string][]HeldLicence{}
	for _, m := range it.Materials {
		for _, l := range held {
			if m.LicenseType != "" && l.TypeName == m.LicenseType {
				out[m.Key] = append(out[m.Key], l)
			}
		}
	}
	return out, nil
}

// checkLicences checks every licence material of a submission: the item's material names a
// licence type, and the licence is one in force of that type that the applicant holds.
func (a *Applications) checkLicences(ctx context.Context, ap authz.Subject, it Item, inputs []MaterialInput) error {
	var choices map[string][]HeldLicence
	for _, m := range inputs {
		if m.Source != SourceLicense {
			continue
		}
		key := strings.TrimSpace(m.Key)
		field := "materials." + key
		if a.opts.Trust == nil {
			return ErrLicenseUnavailable.WithField(field)
		}
		if choices == nil {
			var err error
			if choices, err = a.LicenceChoices(ctx, ap, it); err != nil {
				return err
			}
		}
		id := strings.TrimSpace(m.LicenseID)
		if !slices.ContainsFunc(choices[key], func(l HeldLicence) bool { return l.ID == id }) {
			return ErrLicenceNotHeld.WithField(field)
		}
	}
	return nil
}

// grantLicences authorises the handling department to use the licences of mats for the
// application ref, before the application is stored; it returns the grants made, for
// revokeGrants should the storing fail.
func (a *Applications) grantLicences(ctx context.Context, ap authz.Subject, it Item, mats []attach, deptID, ref string) ([]string, error) {
	var grants []string
	for _, m := range mats {
		if m.source != SourceLicense {
			continue
		}
		id, err := a.opts.Trust.GrantLicence(ctx, ap, LicenceGrant{LicenseID: m.licenseID, DeptID: deptID, Ref: ref,
			Purpose: it.Name + "（" + ref + "）"})
		if err != nil {
			a.revokeGrants(ctx, ap, grants)
			return nil, err
		}
		grants = append(grants, id)
	}
	return grants, nil
}

// revokeGrants takes back grants of an application that was not stored; the grant would
// expire anyway, so a failure here is not the applicant's.
func (a *Applications) revokeGrants(ctx context.Context, ap authz.Subject, grants []string) {
	for _, g := range grants {
		_ = a.opts.Trust.RevokeGrant(ctx, ap, g)
	}
}

// trustView adds the trusted services to an application's detail: its payment, the licence
// issued for it, and — for the handling department's staff — the licences that stand in for
// materials, verified and their use recorded.
func (a *Applications) trustView(ctx context.Context, actor authz.Subject, out *ApplicationDetail, staff bool) error {
	if a.opts.Trust == nil {
		return nil
	}
	ref := RefPrefix + out.ID
	if len(out.Item.Fees) > 0 {
		p, err := a.opts.Trust.Payment(ctx, ref)
		if err != nil {
			return fmt.Errorf("application %s: payment: %w", out.Number, err)
		}
		out.Payment = p
	}
	if out.Item.Result.LicenseType != "" && out.Status == StatusApproved {
		l, err := a.opts.Trust.IssuedLicence(ctx, out.Case.DeptID, ref)
		if err != nil {
			return fmt.Errorf("application %s: licence: %w", out.Number, err)
		}
		out.Licence = l
	}
	if !staff {
		return nil
	}
	for i, m := range out.Materials {
		if m.Source != SourceLicense || m.LicenseID == "" {
			continue
		}
		u, err := a.opts.Trust.UseLicence(ctx, actor, m.LicenseID, ref)
		if err != nil {
			e, ok := i18n.As(err)
			if !ok {
				return fmt.Errorf("application %s: use licence %s: %w", out.Number, m.LicenseID, err)
			}
			// Refused (revoked since, authorisation withdrawn): the officer sees why.
			u = UsedLicence{ID: m.LicenseID, Message: e.Msg}
		}
		out.Materials[i].Licence = &u
	}
	return nil
}

// Yuan writes the order's total for people, e.g. "90.00".
func (p Payment) Yuan() string { return fmt.Sprintf("%d.%02d", p.TotalFen/100, p.TotalFen%100) }

package console

import (
	"encoding/base64"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/seal"
)

// Trusted services (issue 6): e-licences (issue by hand, list by issuing department, revoke
// with a reason, licences holders authorised to the department, issuers and trust lists),
// department seals (seals.go) and non-tax payments (payments.go). The engines authorize every
// call; the pages only hide the forms a staff member could not use.

// TrustServices are the engines behind the trusted-services pages.
type TrustServices struct {
	Licenses *license.Service
	Seals    *seal.Service
	Payments *pay.Service
}

// TrustRoutes registers the e-licence, seal and payment pages.
func (c *Console) TrustRoutes(mux *http.ServeMux, t TrustServices) {
	l := &licensePages{c: c, l: t.Licenses}
	mux.Handle("GET /console/licenses", c.staffOnly(l.listPage))
	mux.Handle("POST /console/licenses", c.staffOnly(l.issue))
	mux.Handle("POST /console/licenses/issuers", c.staffOnly(l.registerIssuer))
	mux.Handle("POST /console/licenses/trust-lists", c.staffOnly(l.importTrustList))
	mux.Handle("GET /console/licenses/{id}", c.staffOnly(l.licensePage))
	mux.Handle("GET /console/licenses/{id}/file", c.staffOnly(l.download))
	mux.Handle("POST /console/licenses/{id}/revoke", c.staffOnly(l.revoke))
	mux.Handle("POST /console/licenses/{id}/use", c.staffOnly(l.use))
	c.sealRoutes(mux, t.Seals)
	c.paymentRoutes(mux, t.Payments)
}

var (
	licensesTitle = i18n.T("电子证照", "E-licences")
	licenseTitle  = i18n.T("证照详情", "Licence")
)

// licensePages serves the licence pages with the licence service.
type licensePages struct {
	c *Console
	l *license.Service
}

// issueForm is the manual issuance form as typed.
type issueForm struct {
	Type                           *license.Type
	HolderName, HolderID           string
	HolderIDType                   license.IDType
	ValidFrom, ValidUntil, CaseRef string
	Items                          map[string]string
}

// issuerForm is the issuer registration form as typed.
type issuerForm struct {
	DeptID, CreditCode string
	Active             bool
}

type licensesData struct {
	DeptID   string          // the issuing department listed
	Issuer   *license.Issuer // its registration ("" DeptID: none chosen)
	Issuers  []license.Issuer
	Status   license.Status
	TypeCode string
	Licenses []licenseRow
	Statuses []license.Status
	// StatusNames name licence statuses (license.StatusNames), for the templates.
	StatusNames map[license.Status]i18n.Text
	Types       []license.Type
	IDTypes     []idTypeOption
	CanIssue    bool
	Issue       issueForm
	// Grants are live use authorisations holders gave the viewer's department (用证授权).
	Grants  []license.UseGrant
	CanUse  bool
	UseRef  string
	Node    license.Node
	IsAdmin bool
	// Administration: departments in scope to register, the issuers in scope, imported lists.
	Departments []org.Department
	Register    issuerForm
	TrustLists  []license.TrustListInfo
}

// licenseRow is a licence in a list, with the last day it is valid.
type licenseRow struct {
	license.Summary
	Through string // YYYY-MM-DD in Beijing; "" without limit
}

func rowsOf(list []license.Summary) []licenseRow {
	out := make([]licenseRow, 0, len(list))
	for _, s := range list {
		out = append(out, licenseRow{Summary: s, Through: license.ValidThrough(s.ValidUntil)})
	}
	return out
}

type idTypeOption struct {
	Code license.IDType
	Name i18n.Text
}

// idTypeOptions lists the holder identity types, residents' first.
func idTypeOptions() []idTypeOption {
	out := make([]idTypeOption, 0, len(license.IDTypes))
	for code, info := range license.IDTypes {
		out = append(out, idTypeOption{Code: code, Name: info.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code > out[j].Code })
	return out
}

// listData builds the licence page: the department chosen (own by default), its licences
// filtered by status and type, the issuance form of the chosen type, and for administrators
// the issuers and trust lists.
func (p *licensePages) listData(r *http.Request, sub authz.Subject) (*licensesData, error) {
	ctx := r.Context()
	q := r.URL.Query()
	d := &licensesData{DeptID: strings.TrimSpace(q.Get("dept")), Status: license.Status(q.Get("status")), TypeCode: q.Get("type"),
		Statuses: []license.Status{license.StatusValid, license.StatusExpired, license.StatusRevoked, license.StatusSuperseded},
		IDTypes:  idTypeOptions(), Node: p.l.Node(), StatusNames: license.StatusNames, IsAdmin: p.c.Policy.Allowed(sub, license.PermAdmin, sub.Division),
		Register: issuerForm{Active: true}}
	if d.DeptID == "" {
		d.DeptID = sub.Dept
	}
	var err error
	if d.Issuers, err = p.l.Issuers(ctx, sub.Division); err != nil {
		return d, err
	}
	if d.Types, err = p.l.Types(ctx); err != nil {
		return d, err
	}
	for i := range d.Issuers {
		if d.Issuers[i].DeptID == d.DeptID {
			d.Issuer = &d.Issuers[i]
		}
	}
	if d.Issuer != nil {
		list, err := p.l.List(ctx, sub, license.Filter{IssuerDeptID: d.DeptID, Status: d.Status, TypeCode: d.TypeCode, Limit: 200})
		if err != nil && !errors.Is(err, i18n.ErrForbidden) {
			return d, err
		}
		d.Licenses = rowsOf(list)
		d.CanIssue = d.Issuer.Active && sub.Dept == d.Issuer.DeptID && p.c.Policy.Allowed(sub, license.PermIssue, d.Issuer.Division)
	}
	if d.CanIssue {
		code := q.Get("issue")
		for i := range d.Types {
			if d.Types[i].Code == code {
				d.Issue.Type = &d.Types[i]
			}
		}
		d.Issue.HolderIDType = license.IDResident
		if d.Issue.Type != nil && d.Issue.Type.HolderKind == license.LegalPerson {
			d.Issue.HolderIDType = license.IDCreditCode
		}
	}
	if sub.Dept != "" && p.c.Policy.Allowed(sub, license.PermUse, sub.Division) {
		d.CanUse = true
		if d.Grants, err = p.l.GrantsToDept(ctx, sub, ""); err != nil {
			return d, err
		}
	}
	if d.IsAdmin {
		if d.Departments, err = p.c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{ActiveOnly: true, Limit: 1000}); err != nil {
			return d, err
		}
		if d.TrustLists, err = p.l.TrustLists(ctx); err != nil {
			return d, err
		}
	}
	return d, nil
}

func (p *licensePages) listPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	pg := p.c.page(r, "licenses", licensesTitle, nil)
	d, err := p.listData(r, sub)
	pg.Data = d
	if err != nil {
		p.c.fail(w, r, err, "console/licenses", pg)
		return
	}
	p.c.render(w, r, http.StatusOK, "console/licenses", pg)
}

// failList shows err on the licence page, keeping the form as typed.
func (p *licensePages) failList(w http.ResponseWriter, r *http.Request, sub authz.Subject, err error, keep func(*licensesData)) {
	pg := p.c.page(r, "licenses", licensesTitle, nil)
	d, derr := p.listData(r, sub)
	if derr != nil {
		httpx.WriteError(w, r, derr)
		return
	}
	if keep != nil {
		keep(d)
	}
	pg.Data = d
	p.c.fail(w, r, err, "console/licenses", pg)
}

// beijingDay reads a YYYY-MM-DD date typed in a form as the start of that day in Beijing;
// next gives the start of the day after (an exclusive end: "valid through" that day).
func beijingDay(field, s string, next bool) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, s, calendar.Beijing)
	if err != nil {
		return nil, i18n.New("console.date", "日期格式应为 YYYY-MM-DD", "a date is written YYYY-MM-DD").WithField(field)
	}
	if next {
		t = t.AddDate(0, 0, 1)
	}
	t = t.UTC()
	return &t, nil
}

func (p *licensePages) issue(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	f := issueForm{HolderName: r.PostFormValue("holder_name"), HolderIDType: license.IDType(r.PostFormValue("holder_id_type")),
		HolderID: r.PostFormValue("holder_id"), ValidFrom: r.PostFormValue("valid_from"), ValidUntil: r.PostFormValue("valid_until"),
		CaseRef: r.PostFormValue("case_ref"), Items: map[string]string{}}
	typeCode := r.PostFormValue("type")
	for k, v := range r.PostForm {
		if key, ok := strings.CutPrefix(k, "item_"); ok && len(v) > 0 && strings.TrimSpace(v[0]) != "" {
			f.Items[key] = v[0]
		}
	}
	keep := func(d *licensesData) {
		for i := range d.Types {
			if d.Types[i].Code == typeCode {
				f.Type = &d.Types[i]
			}
		}
		d.Issue = f
	}
	in := license.IssueInput{TypeCode: typeCode, IssuerDeptID: sub.Dept, Items: f.Items, CaseRef: strings.TrimSpace(f.CaseRef),
		Holder: license.Holder{Name: f.HolderName, IDType: f.HolderIDType, IDNumber: f.HolderID}}
	var err error
	if in.ValidFrom, err = beijingDay("valid_from", f.ValidFrom, false); err == nil {
		in.ValidUntil, err = beijingDay("valid_until", f.ValidUntil, true)
	}
	if err != nil {
		p.failList(w, r, sub, err, keep)
		return
	}
	l, err := p.l.Issue(r.Context(), sub, in)
	if err != nil {
		p.failList(w, r, sub, err, keep)
		return
	}
	http.Redirect(w, r, "/console/licenses/"+url.PathEscape(l.Content.ID)+"?ok=1", http.StatusSeeOther)
}

func (p *licensePages) registerIssuer(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	f := issuerForm{DeptID: strings.TrimSpace(r.PostFormValue("dept_id")), CreditCode: r.PostFormValue("credit_code"),
		Active: r.PostFormValue("active") != ""}
	err := func() error {
		dep, err := p.c.Org.GetDepartment(r.Context(), sub, f.DeptID)
		if err != nil {
			return err
		}
		_, err = p.l.RegisterIssuer(r.Context(), sub, license.Issuer{DeptID: dep.ID, Name: dep.Name, CreditCode: f.CreditCode,
			Division: dep.DivisionCode, Kind: dep.Kind, Active: f.Active})
		return err
	}()
	if err != nil {
		p.failList(w, r, sub, err, func(d *licensesData) { d.Register = f })
		return
	}
	http.Redirect(w, r, "/console/licenses?ok=1#issuers", http.StatusSeeOther)
}

// maxTrustListUpload bounds an uploaded trust list (the engine refuses more than 8 MiB).
const maxTrustListUpload = 8 << 20

func (p *licensePages) importTrustList(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	err := func() error {
		file, _, err := r.FormFile("list")
		if err != nil {
			return i18n.New("license.trust_list.file", "请选择信任列表文件", "choose the trust list file").WithField("list")
		}
		defer file.Close()
		doc, err := io.ReadAll(io.LimitReader(file, maxTrustListUpload+1))
		if err != nil {
			return err
		}
		_, err = p.l.ImportTrustList(r.Context(), sub, doc, strings.TrimSpace(r.PostFormValue("node_key")))
		return err
	}()
	if err != nil {
		p.failList(w, r, sub, err, nil)
		return
	}
	http.Redirect(w, r, "/console/licenses?ok=1#trust", http.StatusSeeOther)
}

// licenseData is a licence's page.
type licenseData struct {
	View       license.View
	QR         template.URL // data: PNG of the verification QR code
	History    []license.Event
	EventNames map[string]i18n.Text
	CanRevoke  bool
	// Use is set when the page shows a licence read under a holder's authorisation.
	Use *license.UseGrant
}

// qrDataURL draws the QR code of a licence view's verification URL as a data: URL (the
// CSP allows data: images, and the page needs no second request).
func qrDataURL(l *license.Service, v license.View) template.URL {
	id, d, err := license.ParseVerifyURL(v.VerifyURL)
	if err != nil {
		return ""
	}
	png, err := l.QRCode(id, d, 0)
	if err != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

func (p *licensePages) licensePage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	id := r.PathValue("id")
	l, err := p.l.Get(ctx, sub, id)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d, err := p.licenseData(r, sub, l)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if d.History, err = p.l.History(ctx, sub, id); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p.renderLicense(w, r, d, http.StatusOK)
}

// licenseData lays out l for its page, with what the viewer may do with it.
func (p *licensePages) licenseData(r *http.Request, sub authz.Subject, l license.License) (*licenseData, error) {
	t, err := p.l.Type(r.Context(), l.Content.TypeCode)
	if err != nil && !errors.Is(err, i18n.ErrNotFound) {
		return nil, err
	}
	v := p.l.ViewOf(l, t)
	d := &licenseData{View: v, QR: qrDataURL(p.l, v), EventNames: license.EventNames}
	if iss, err := p.l.GetIssuer(r.Context(), l.IssuerDeptID); err == nil {
		d.CanRevoke = (v.Status == license.StatusValid || v.Status == license.StatusExpired) &&
			sub.Dept == iss.DeptID && p.c.Policy.Allowed(sub, license.PermRevoke, iss.Division)
	}
	return d, nil
}

func (p *licensePages) renderLicense(w http.ResponseWriter, r *http.Request, d *licenseData, status int) {
	w.Header().Set("Cache-Control", "no-store") // personal data
	p.c.render(w, r, status, "console/licenses_view", p.c.page(r, "licenses", licenseTitle, d))
}

// revoke revokes a licence with its reason (注销、吊销、撤销).
func (p *licensePages) revoke(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	id := r.PathValue("id")
	if _, err := p.l.Revoke(r.Context(), sub, id, r.PostFormValue("reason")); err != nil {
		if _, ok := i18n.As(err); !ok {
			httpx.WriteError(w, r, err)
			return
		}
		l, gerr := p.l.Get(r.Context(), sub, id)
		if gerr != nil {
			httpx.WriteError(w, r, err)
			return
		}
		d, derr := p.licenseData(r, sub, l)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		pg := p.c.page(r, "licenses", licenseTitle, d)
		p.c.fail(w, r, err, "console/licenses_view", pg)
		return
	}
	http.Redirect(w, r, "/console/licenses/"+url.PathEscape(id)+"?ok=1", http.StatusSeeOther)
}

// download serves the licence file (audited as a read by the engine).
func (p *licensePages) download(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	f, err := p.l.DownloadFile(r.Context(), sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	serveLicenseFile(w, f)
}

// serveLicenseFile answers a licence file as a download.
func serveLicenseFile(w http.ResponseWriter, f license.File) {
	w.Header().Set("Content-Type", license.FileMediaType)
	w.Header().Set("Content-Disposition", attachment(f.FileName()))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(f.Encode())
}

// attachment is a Content-Disposition for a download named name (RFC 6266; a name outside
// ASCII is given in the RFC 2231 form).
func attachment(name string) string {
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}

// use reads a licence under a holder's authorisation to the officer's department: the engine
// checks the authorisation, records the use for the holder and audits it.
func (p *licensePages) use(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	id, ref := r.PathValue("id"), strings.TrimSpace(r.PostFormValue("ref"))
	l, err := p.l.Use(ctx, sub, id, ref)
	if err != nil {
		p.failList(w, r, sub, err, func(d *licensesData) { d.UseRef = ref })
		return
	}
	d, err := p.licenseData(r, sub, l)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	grants, err := p.l.GrantsToDept(ctx, sub, ref)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	for i := range grants {
		if grants[i].LicenseID == l.Content.ID {
			d.Use = &grants[i]
			break
		}
	}
	if d.Use == nil {
		d.Use = &license.UseGrant{LicenseID: l.Content.ID, Ref: ref}
	}
	p.renderLicense(w, r, d, http.StatusOK)
}

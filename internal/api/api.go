// Package api is dgov's JSON API under /api/v1 for the foundation — identifiers, divisions,
// departments, staff, node keys and the audit log — for data quality (rules, checks and
// reports per dataset, department and division), and for online services (guides, forms and
// a person's applications, for the phone app). It is described by the OpenAPI document
// served at /api/openapi.json (openapi.json beside this file; a test keeps the two in step).
// Handlers decode, call the service (which authorizes) and encode.
package api

import (
	_ "embed"
	"net/http"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/quality"
)

//go:embed openapi.json
var openAPI []byte

// ErrPasswordChangeRequired answers an account that still has its initial password.
var ErrPasswordChangeRequired = &i18n.Error{Code: "password_change_required", Status: http.StatusForbidden,
	Msg: i18n.T("请先在控制台修改初始密码", "change your initial password in the console first")}

// maxBody bounds JSON request bodies.
const maxBody = 1 << 20

// API serves /api.
type API struct {
	Org          *org.Service
	Audit        *audit.Log
	Keys         *crypto.Keyring
	Policy       *authz.Policy
	NodeDivision string
	Version      string
	// Quality serves /api/v1/quality/…, authorized as the console's quality pages are
	// (quality.Access).
	Quality *quality.Service

	// Online services for the phone app (services.go): the catalogue for anyone, and a
	// person's applications with a bearer access token of the node's OpenID provider.
	Items  *govservice.Service
	Index  *govservice.Indexer // ranked guide search for ?q=; nil: a keyword match on the list
	Apps   *govservice.Applications
	Forms  ItemForms // an item's current form with its version id
	People People    // who a person's access token speaks for
}

type route struct {
	pattern string
	handler http.HandlerFunc
}

// table is the API's route table, top to bottom; openapi.json documents each entry.
func (a *API) table() []route {
	return []route{
		{"GET /api/openapi.json", a.openapi},
		{"GET /api/v1/version", a.version},
		{"GET /api/v1/keys", a.keys},
		{"POST /api/v1/validate/{kind}", a.validate},
		{"GET /api/v1/divisions", a.divisions},
		{"GET /api/v1/divisions/{code}", a.division},
		{"GET /api/v1/departments", a.staffOnly(a.listDepartments)},
		{"POST /api/v1/departments", a.staffOnly(a.createDepartment)},
		{"GET /api/v1/staff", a.staffOnly(a.listStaff)},
		{"POST /api/v1/staff", a.staffOnly(a.createStaff)},
		{"GET /api/v1/audit", a.staffOnly(a.listAudit)},
		{"GET /api/v1/audit/verify", a.staffOnly(a.verifyAudit)},
		{"GET /api/v1/quality/datasets", a.staffOnly(a.qualityDatasets)},
		{"GET /api/v1/quality/datasets/{id}/rules", a.staffOnly(a.qualityRules)},
		{"PUT /api/v1/quality/datasets/{id}/rules", a.staffOnly(a.setQualityRules)},
		{"POST /api/v1/quality/datasets/{id}/run", a.staffOnly(a.runQuality)},
		{"GET /api/v1/quality/datasets/{id}/report", a.staffOnly(a.qualityReport)},
		{"GET /api/v1/quality/departments/{id}/report", a.staffOnly(a.departmentQuality)},
		{"GET /api/v1/quality/divisions/{code}/report", a.staffOnly(a.divisionQuality)},
		{"GET /api/v1/services", a.catalogue(a.listServices)},
		{"GET /api/v1/services/{code}", a.catalogue(a.serviceGuide)},
		{"GET /api/v1/services/{code}/form", a.catalogue(a.serviceForm)},
		{"POST /api/v1/services/{code}/applications", a.applicantOnly(a.submitApplication)},
		{"GET /api/v1/bundles", a.catalogue(a.listBundles)},
		{"GET /api/v1/bundles/{code}", a.catalogue(a.bundleGuide)},
		{"GET /api/v1/applications", a.applicantOnly(a.myApplications)},
		{"GET /api/v1/applications/{id}", a.applicantOnly(a.myApplication)},
	}
}

// CSRFExempt are routes a browser's cookies must not subject to the CSRF check: those that
// change nothing and serve any caller, and those that authenticate by a bearer token alone
// and never by a cookie (which the check skips anyway; exempt, a call without a token is
// answered 401, not 403).
var CSRFExempt = []string{"POST /api/v1/validate/{kind}", "POST /api/v1/services/{code}/applications"}

// Routes registers the API.
func (a *API) Routes(mux *http.ServeMux) {
	for _, rt := range a.table() {
		mux.HandleFunc(rt.pattern, rt.handler)
	}
}

func (a *API) staffOnly(h func(http.ResponseWriter, *http.Request, authz.Subject)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sub := authz.SubjectFrom(r.Context())
		if sub.Kind == "" {
			httpx.WriteError(w, r, i18n.ErrUnauthorized)
			return
		}
		if sub.PasswordChangeRequired {
			httpx.WriteError(w, r, ErrPasswordChangeRequired)
			return
		}
		h(w, r, sub)
	}
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}

func (a *API) version(w http.ResponseWriter, r *http.Request) {
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"version": a.Version, "node_division": a.NodeDivision})
}

// keys publishes the node's public signing keys, retired ones included, so anyone can check
// a signature made by this node offline.
func (a *API) keys(w http.ResponseWriter, r *http.Request) {
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"keys": a.Keys.PublicKeys(), "active": a.Keys.ActiveKeyID()})
}

type validateRequest struct {
	Value string `json:"value"`
}

// validate checks one Chinese identifier for other government systems and forms.
func (a *API) validate(w http.ResponseWriter, r *http.Request) {
	var in validateRequest
	if err := httpx.DecodeJSON(r, &in, 4096); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var out any
	var err error
	switch r.PathValue("kind") {
	case "resident-id":
		var res ids.Resident
		if res, err = ids.ValidateResident(in.Value); err == nil {
			out = map[string]any{"valid": true, "normalized": res.Number, "division": res.Division,
				"birth_date": res.Birth.Format("2006-01-02"), "sex": res.Sex.String()}
		}
	case "credit-code":
		var cc ids.CreditCode
		if cc, err = ids.ValidateCreditCode(in.Value); err == nil {
			out = map[string]any{"valid": true, "normalized": cc.Code, "division": cc.Division, "org_code": cc.OrgCode,
				"authority": cc.AuthorityText(), "type": cc.TypeText()}
		}
	case "division":
		var d ids.Division
		if d, err = ids.ValidateDivision(in.Value); err == nil {
			out = map[string]any{"valid": true, "code": d.Code, "level": d.Level.String(), "province": d.ProvinceName()}
		}
	case "mobile":
		var m string
		if m, err = ids.ValidateMobile(in.Value); err == nil {
			out = map[string]any{"valid": true, "normalized": m}
		}
	default:
		err = i18n.ErrNotFound
	}
	if err != nil {
		httpx.WriteError(w, r, withField(err, "value"))
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, out)
}

// Division codes and names are public information (GB/T 2260).
func (a *API) divisions(w http.ResponseWriter, r *http.Request) {
	parent := r.URL.Query().Get("parent")
	if parent == "" {
		parent = a.NodeDivision
	}
	if _, err := ids.ValidateDivision(parent); err != nil {
		httpx.WriteError(w, r, withField(err, "parent"))
		return
	}
	if _, err := a.Org.GetDivision(r.Context(), parent); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	list, err := a.Org.ListDivisions(r.Context(), parent)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"parent": parent, "items": list})
}

func (a *API) division(w http.ResponseWriter, r *http.Request) {
	d, err := a.Org.GetDivision(r.Context(), r.PathValue("code"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, d)
}

func intParam(r *http.Request, name string, def int) int {
	if v, err := strconv.Atoi(r.URL.Query().Get(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func (a *API) listDepartments(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	q := r.URL.Query()
	list, err := a.Org.ListDepartments(r.Context(), sub, org.DepartmentFilter{Division: q.Get("division"),
		IncludeSub: q.Get("include_sub") == "true", Query: q.Get("q"), Limit: intParam(r, "limit", 100), Offset: intParam(r, "offset", 0)})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
}

type departmentRequest struct {
	DivisionCode string `json:"division_code"`
	Code         string `json:"code"`
	Name         string `json:"name"`
	ShortName    string `json:"short_name"`
	Kind         string `json:"kind"`
	ParentID     string `json:"parent_id"`
}

func (a *API) createDepartment(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	var in departmentRequest
	if err := httpx.DecodeJSON(r, &in, maxBody); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	dep, err := a.Org.CreateDepartment(r.Context(), sub, org.DepartmentInput(in))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusCreated, dep)
}

func (a *API) listStaff(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	q := r.URL.Query()
	list, err := a.Org.ListStaff(r.Context(), sub, org.StaffFilter{Division: q.Get("division"), IncludeSub: q.Get("include_sub") == "true",
		DepartmentID: q.Get("department_id"), Role: authz.Role(q.Get("role")), Query: q.Get("q"),
		Limit: intParam(r, "limit", 100), Offset: intParam(r, "offset", 0)})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
}

type staffRequest struct {
	Username     string       `json:"username"`
	Name         string       `json:"name"`
	DepartmentID string       `json:"department_id"`
	Phone        string       `json:"phone"`
	Roles        []authz.Role `json:"roles"`
	Password     string       `json:"password"`
}

func (a *API) createStaff(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	var in staffRequest
	if err := httpx.DecodeJSON(r, &in, maxBody); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	st, err := a.Org.CreateStaff(r.Context(), sub, org.StaffInput(in))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusCreated, st)
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := a.Policy.Authorize(sub, authz.AuditRead, a.NodeDivision); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	list, err := a.Audit.List(r.Context(), audit.Filter{Actor: q.Get("actor"), Action: strings.TrimSpace(q.Get("action")),
		Object: q.Get("object"), BeforeSeq: before, Limit: intParam(r, "limit", 50)})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
}

// verifyAudit walks the whole chain: the auditor's right (separation of duties), as in the console.
func (a *API) verifyAudit(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := a.Policy.Authorize(sub, authz.AuditVerify, a.NodeDivision); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	rep, err := a.Audit.Verify(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, rep)
}

// ---- data quality ----

func (a *API) quality() quality.Access { return quality.Access{Service: a.Quality, Policy: a.Policy} }

// qualityDatasets lists the datasets attached to catalogue resources that the caller may read.
func (a *API) qualityDatasets(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	list, err := a.quality().Targets(r.Context(), sub)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
}

// qualityRules lists the rules a check applies: those derived from the schema ("default":
// true) and those staff set.
func (a *API) qualityRules(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	rules, err := a.quality().Rules(r.Context(), sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": nonNil(rules)})
}

// qualityRuleInput is one rule as a client sets it.
type qualityRuleInput struct {
	Kind       quality.Kind `json:"kind"`
	Column     string       `json:"column"`
	Format     string       `json:"format"`
	Pattern    string       `json:"pattern"`
	Library    string       `json:"library"`
	GraceHours int          `json:"grace_hours"`
}

type qualityRulesRequest struct {
	Rules []qualityRuleInput `json:"rules"`
}

// setQualityRules replaces the explicit rules of a dataset; the answer is the rules now applied.
func (a *API) setQualityRules(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	var in qualityRulesRequest
	if err := httpx.DecodeJSON(r, &in, maxBody); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	rules := make([]quality.Rule, len(in.Rules))
	for i, x := range in.Rules {
		rules[i] = quality.Rule{Kind: x.Kind, Column: x.Column, Format: x.Format, Pattern: x.Pattern, Library: x.Library, GraceHours: x.GraceHours}
	}
	out, err := a.quality().SetRules(r.Context(), sub, r.PathValue("id"), rules)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": nonNil(out)})
}

// qualityReportJSON is a report with its score, which is computed, not stored.
type qualityReportJSON struct {
	quality.Report
	Score float64 `json:"score"`
}

func reportJSON(rep quality.Report) qualityReportJSON {
	if rep.Findings == nil {
		rep.Findings = []quality.Finding{}
	}
	return qualityReportJSON{Report: rep, Score: rep.Score()}
}

// runQuality checks the dataset's active version now and answers the new report.
func (a *API) runQuality(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	rep, err := a.quality().Run(r.Context(), sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, reportJSON(rep))
}

// qualityReport is the latest report of a dataset, with up to ?findings= of its stored findings.
func (a *API) qualityReport(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	rep, err := a.quality().Report(r.Context(), sub, r.PathValue("id"), intParam(r, "findings", 0))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, reportJSON(rep))
}

// qualitySummaryJSON is a department's or division's summary with its score.
type qualitySummaryJSON struct {
	quality.Summary
	Score float64 `json:"score"`
}

func (a *API) writeSummary(w http.ResponseWriter, r *http.Request, sub authz.Subject, sc quality.Scope) {
	sum, err := a.quality().Summary(r.Context(), sub, sc)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if sum.Kinds == nil {
		sum.Kinds = []quality.KindScore{}
	}
	_ = httpx.WriteJSON(w, http.StatusOK, qualitySummaryJSON{Summary: sum, Score: sum.Score()})
}

// departmentQuality sums the latest reports of the datasets a department provides; the
// department is read with the caller's rights first.
func (a *API) departmentQuality(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	dep, err := a.Org.GetDepartment(r.Context(), sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	a.writeSummary(w, r, sub, quality.Scope{DeptID: dep.ID, Division: dep.DivisionCode})
}

// divisionQuality sums the latest reports of the datasets of a division and those below it.
func (a *API) divisionQuality(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	d, err := ids.ValidateDivision(r.PathValue("code"))
	if err != nil {
		httpx.WriteError(w, r, withField(err, "code"))
		return
	}
	a.writeSummary(w, r, sub, quality.Scope{Division: d.Code})
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// withField names the input a user-facing error is about.
func withField(err error, field string) error {
	if e, ok := i18n.As(err); ok {
		return e.WithField(field)
	}
	return err
}

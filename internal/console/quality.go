package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/quality"
)

// Data quality pages (D5): a summary per department or division, and per dataset the latest
// report with its findings, the rules and a "run now" button. quality.Access authorizes, as it
// does for the API: by the division of the catalogue resource a dataset is attached to,
// catalog.PermRead there to read, catalog.PermEdit to attach, run and change rules.

var (
	qualityTitle       = i18n.T("数据质量", "Data quality")
	qualityReportTitle = i18n.T("数据质量报告", "Data quality report")
)

// qualityPages serves the pages with the quality service.
type qualityPages struct {
	c *Console
	q quality.Access
}

// QualityRoutes registers the data quality pages.
func (c *Console) QualityRoutes(mux *http.ServeMux, q *quality.Service) {
	p := &qualityPages{c: c, q: quality.Access{Service: q, Policy: c.Policy}}
	mux.Handle("GET /console/quality", c.staffOnly(p.summaryPage))
	mux.Handle("POST /console/quality/attach", c.staffOnly(p.attach))
	mux.Handle("GET /console/quality/datasets/{id}", c.staffOnly(p.reportPage))
	mux.Handle("POST /console/quality/datasets/{id}/run", c.staffOnly(p.run))
	mux.Handle("POST /console/quality/datasets/{id}/rules", c.staffOnly(p.addRule))
	mux.Handle("POST /console/quality/datasets/{id}/rules/{rule}/delete", c.staffOnly(p.deleteRule))
}

type qualitySummaryData struct {
	DeptID, Division string
	Departments      []org.Department
	Targets          []quality.Target // attached datasets the viewer may read
	Summary          quality.Summary
	CanAttach        bool
	Attach           struct{ DatasetID, ResourceID string }
}

func (p *qualityPages) summaryData(r *http.Request, sub authz.Subject) (*qualitySummaryData, error) {
	ctx := r.Context()
	d := &qualitySummaryData{DeptID: strings.TrimSpace(r.FormValue("dept")), Division: strings.TrimSpace(r.FormValue("division"))}
	if d.Division == "" {
		d.Division = sub.Division
	}
	d.CanAttach = p.c.Policy.Allowed(sub, quality.PermEdit, sub.Division)
	d.Departments, _ = p.c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{Division: sub.Division, IncludeSub: true, Limit: 1000})
	scope := quality.Scope{Division: d.Division}
	if d.DeptID != "" {
		dep, err := p.c.Org.GetDepartment(ctx, sub, d.DeptID)
		if err != nil {
			return d, err
		}
		scope = quality.Scope{DeptID: dep.ID, Division: dep.DivisionCode}
		d.Division = dep.DivisionCode
	}
	var err error
	if d.Summary, err = p.q.Summary(ctx, sub, scope); err != nil {
		return d, err
	}
	d.Targets, err = p.q.Targets(ctx, sub)
	return d, err
}

func (p *qualityPages) summaryPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	pg := p.c.page(r, "quality", qualityTitle, nil)
	d, err := p.summaryData(r, sub)
	pg.Data = d
	if err != nil {
		p.c.fail(w, r, err, "console/quality", pg)
		return
	}
	p.c.render(w, r, http.StatusOK, "console/quality", pg)
}

// attach ties a dataset to a catalogue resource the staff member may edit.
func (p *qualityPages) attach(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	datasetID, resourceID := strings.TrimSpace(r.PostFormValue("dataset_id")), strings.TrimSpace(r.PostFormValue("resource_id"))
	err := func() error {
		res, err := p.c.Catalog.Get(ctx, sub, resourceID)
		if err != nil {
			if errors.Is(err, i18n.ErrNotFound) {
				return i18n.New("quality.resource", "找不到该目录资源", "no such catalogue resource").WithField("resource_id")
			}
			return err
		}
		_, err = p.q.Attach(ctx, sub, datasetID, res)
		return err
	}()
	if err != nil {
		pg := p.c.page(r, "quality", qualityTitle, nil)
		d, _ := p.summaryData(r, sub)
		if d != nil {
			d.Attach.DatasetID, d.Attach.ResourceID = datasetID, resourceID
		}
		pg.Data = d
		p.c.fail(w, r, err, "console/quality", pg)
		return
	}
	http.Redirect(w, r, "/console/quality/datasets/"+url.PathEscape(datasetID)+"?ok=1", http.StatusSeeOther)
}

type qualityReportData struct {
	Target  *quality.Target
	Report  *quality.Report
	Rules   []quality.Rule
	CanEdit bool
	Kinds   []quality.Kind
	Formats []string
	Rule    quality.Rule // the add-rule form as typed
}

func (p *qualityPages) reportData(r *http.Request, sub authz.Subject) (*qualityReportData, error) {
	t, err := p.q.Target(r.Context(), sub, r.PathValue("id"), quality.PermRead)
	if err != nil {
		return nil, err
	}
	d := &qualityReportData{Target: t, CanEdit: p.c.Policy.Allowed(sub, quality.PermEdit, t.DivisionCode),
		Kinds:   []quality.Kind{quality.Completeness, quality.Format, quality.Uniqueness, quality.Reference, quality.Timeliness},
		Formats: []string{quality.FormatResidentID, quality.FormatCreditCode, quality.FormatDivision, quality.FormatMobile, quality.FormatDate, quality.FormatRegex}}
	rep, err := p.q.Report(r.Context(), sub, t.DatasetID, 0)
	switch {
	case err == nil:
		d.Report = &rep
	case !errors.Is(err, quality.ErrNoReport):
		return nil, err
	}
	if d.Rules, err = p.q.Rules(r.Context(), sub, t.DatasetID); err != nil {
		return nil, err
	}
	return d, nil
}

func (p *qualityPages) reportPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	d, err := p.reportData(r, sub)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p.c.render(w, r, http.StatusOK, "console/quality_report", p.c.page(r, "quality", qualityReportTitle, d))
}

// run checks the dataset now and shows the new report.
func (p *qualityPages) run(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	id := r.PathValue("id")
	if _, err := p.q.Run(r.Context(), sub, id); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/quality/datasets/"+url.PathEscape(id)+"?ok=1", http.StatusSeeOther)
}

func (p *qualityPages) addRule(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	t, err := p.q.Target(r.Context(), sub, r.PathValue("id"), quality.PermEdit)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	grace, _ := strconv.Atoi(strings.TrimSpace(r.PostFormValue("grace_hours")))
	rule := quality.Rule{DatasetID: t.DatasetID, Kind: quality.Kind(r.PostFormValue("kind")), Column: r.PostFormValue("column"),
		Format: r.PostFormValue("format"), Pattern: r.PostFormValue("pattern"), Library: r.PostFormValue("library"), GraceHours: grace}
	if _, err := p.q.AddRule(r.Context(), sub, rule); err != nil {
		d, derr := p.reportData(r, sub)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		d.Rule = rule
		p.c.fail(w, r, err, "console/quality_report", p.c.page(r, "quality", qualityReportTitle, d))
		return
	}
	http.Redirect(w, r, "/console/quality/datasets/"+url.PathEscape(t.DatasetID)+"?ok=1", http.StatusSeeOther)
}

func (p *qualityPages) deleteRule(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	id := r.PathValue("id")
	if err := p.q.DeleteRule(r.Context(), sub, id, r.PathValue("rule")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/quality/datasets/"+url.PathEscape(id)+"?ok=1", http.StatusSeeOther)
}

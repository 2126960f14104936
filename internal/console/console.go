// Package console is the staff console at /console: login, the organisation (divisions,
// departments, staff) and the audit log with its verification status. Handlers are thin:
// they parse the form, call the org service or the audit log — which authorize — and render.
package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"

	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/workflow"
	"github.com/dgov/dgov/web"
)

// CookieName is the console session cookie.
const CookieName = "dgov_console"

// Console serves the staff console.
type Console struct {
	Org           *org.Service
	Audit         *audit.Log
	Keys          *crypto.Keyring
	IdP           *idp.Provider
	SSO           StaffSSO // nil: no single sign-on for staff applications
	Catalog       *catalog.Service
	CatalogSearch *catalog.Indexer
	Datasets      *dataset.Service
	// BackgroundContext lives as long as the server: work started by a request (a dataset
	// load) outlives the request but not the node.
	BackgroundContext context.Context
	Sessions          *Sessions
	Render            *web.Renderer
	Policy            *authz.Policy
	Now               func() time.Time
	NodeDivision      string                       // the division this node serves (the audit log's scope)
	ClientIP          func(r *http.Request) string // resolved behind trusted proxies
	Secure            func(r *http.Request) bool   // whether cookies must be Secure
	Log               *slog.Logger
	Exchange          *exchange.Service
	// Cases is the case engine behind 事项办理 (nil: no case pages); Apps the applications
	// behind service cases (nil: cases only); Items the service item catalogue.
	Cases *workflow.Service
	Apps  *govservice.Applications
	Items *govservice.Service

	verifyMu   sync.Mutex
	lastVerify *verification
}

type verification struct {
	at     time.Time
	report audit.Report
	err    error
}

// verifyTTL bounds how often page views re-walk the whole chain; the button forces a run.
const verifyTTL = 30 * time.Second

// Routes registers the console's pages.
func (c *Console) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.HandleFunc("POST /console/logout", c.logout)
	mux.Handle("GET /console/sso", c.staffOnly(c.sso))
	mux.Handle("GET /console", c.staffOnly(c.home))
	mux.Handle("GET /console/{$}", c.staffOnly(c.home))
	mux.Handle("GET /console/password", c.staffOnly(c.passwordPage))
	mux.Handle("POST /console/password", c.staffOnly(c.changePassword))
	mux.Handle("GET /console/divisions", c.staffOnly(c.divisionsPage))
	mux.Handle("GET /console/departments", c.staffOnly(c.departmentsPage))
	mux.Handle("POST /console/departments", c.staffOnly(c.createDepartment))
	mux.Handle("GET /console/staff", c.staffOnly(c.staffPage))
	mux.Handle("POST /console/staff", c.staffOnly(c.createStaff))
	mux.Handle("GET /console/catalog", c.staffOnly(c.catalogPage))
	mux.Handle("POST /console/catalog", c.staffOnly(c.createResource))
	mux.Handle("POST /console/catalog/import", c.staffOnly(c.importCatalog))
	mux.Handle("GET /console/catalog/export/{format}", c.staffOnly(c.exportCatalog))
	mux.Handle("GET /console/catalog/{id}", c.staffOnly(c.resourcePage))
	mux.Handle("POST /console/catalog/{id}/{action}", c.staffOnly(c.resourceAction))
	mux.Handle("GET /console/datasets", c.staffOnly(c.datasetsPage))
	mux.Handle("GET /console/datasets/{id}", c.staffOnly(c.datasetPage))
	mux.Handle("GET /console/datasets/{id}/status", c.staffOnly(c.datasetStatus))
	mux.Handle("POST /console/datasets/{id}/load", c.staffOnly(c.loadDataset))
	mux.Handle("GET /console/clients", c.staffOnly(c.clientsPage))
	mux.Handle("POST /console/clients", c.staffOnly(c.registerClient))
	mux.Handle("POST /console/clients/{id}/disable", c.staffOnly(c.disableClient))
	mux.Handle("POST /console/clients/{id}/secret", c.staffOnly(c.rotateClientSecret))
	mux.Handle("GET /console/audit", c.staffOnly(c.auditPage))
	mux.Handle("POST /console/audit/verify", c.staffOnly(c.verifyNow))
	mux.Handle("GET /console/exchange", c.staffOnly(c.exchangePage))
	mux.Handle("GET /console/exchange/apply/{id}", c.staffOnly(c.applyPage))
	mux.Handle("POST /console/exchange/apply/{id}", c.staffOnly(c.apply))
	mux.Handle("GET /console/exchange/requests/{id}", c.staffOnly(c.sharingRequestPage))
	mux.Handle("POST /console/exchange/requests/{id}/{action}", c.staffOnly(c.sharingRequestAction))
	mux.Handle("POST /console/exchange/grants/{id}/{action}", c.staffOnly(c.grantAction))
	mux.Handle("GET /console/exchange/duties", c.staffOnly(c.dutiesPage))
	c.caseRoutes(mux) // 事项办理, 办件统计, 服务事项 (cases.go)
}

// Authenticate puts the subject of a valid session cookie into the request context for
// every route (pages and API alike). It never rejects: routes decide what they need.
func (c *Console) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(CookieName)
		if err != nil || ck.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		ses, err := c.Sessions.Get(r.Context(), ck.Value)
		if err != nil {
			if !errors.Is(err, errNoSession) {
				httpx.WriteError(w, r, err)
				return
			}
			c.clearCookie(w, r)
			next.ServeHTTP(w, r)
			return
		}
		sub, err := c.Org.Subject(r.Context(), ses.StaffID)
		if err != nil { // disabled or deleted since login: the session ends now
			_ = c.Sessions.Delete(r.Context(), ck.Value)
			c.clearCookie(w, r)
			next.ServeHTTP(w, r)
			return
		}
		r2 := r.WithContext(authz.WithSubject(r.Context(), sub))
		next.ServeHTTP(w, r2)
		// The mux records the matched route on the copy; hand it back to the request the
		// kernel's logging and metrics hold, so they label this request by its route.
		r.Pattern = r2.Pattern
	})
}

// staffOnly sends anonymous browsers to the login page.
func (c *Console) staffOnly(h func(http.ResponseWriter, *http.Request, authz.Subject)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub := authz.SubjectFrom(r.Context())
		if sub.Kind != authz.Staff {
			http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		// An account still on the password an administrator chose may only change it.
		if sub.PasswordChangeRequired && r.URL.Path != "/console/password" {
			http.Redirect(w, r, "/console/password?first=1", http.StatusSeeOther)
			return
		}
		h(w, r, sub)
	})
}

// roleName names a role: the foundation's, or one an engine adds (the case engine's leader
// and supervisor).
func roleName(ro authz.Role) i18n.Text {
	if t, ok := authz.RoleNames[ro]; ok {
		return t
	}
	if t, ok := workflow.RoleNames[ro]; ok {
		return t
	}
	return i18n.T(string(ro), string(ro))
}

func (c *Console) page(r *http.Request, nav string, title i18n.Text, data any) web.Page {
	p := web.Page{Lang: i18n.FromRequest(r), Title: title, CSRF: httpx.CSRFToken(r), Nav: nav, Path: r.URL.Path,
		Data: data, RequestID: httpx.RequestID(r.Context())}
	if sub := authz.SubjectFrom(r.Context()); sub.Kind == authz.Staff {
		u := &web.User{Name: sub.Name, Division: sub.Division}
		if d, ok := divisions.Lookup(sub.Division); ok {
			u.DivisionName = d.Name
		}
		var roles []string
		for _, ro := range sub.Roles {
			roles = append(roles, roleName(ro).In(p.Lang))
		}
		u.Roles = strings.Join(roles, "、")
		p.User = u
	}
	if r.URL.Query().Get("ok") != "" {
		t := i18n.T("已保存", "Saved")
		p.Flash = &t
	}
	return p
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, view string, p web.Page) {
	if err := c.Render.Render(w, status, view, p); err != nil {
		httpx.WriteError(w, r, err)
	}
}

// fail shows a user error on the page it came from, keeping what was typed; other errors go
// to the generic error handling.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error, view string, p web.Page) {
	e, ok := i18n.As(err)
	if !ok {
		httpx.WriteError(w, r, err)
		return
	}
	p.Error = e
	c.render(w, r, e.HTTPStatus(), view, p)
}

// ---- login ----

type loginData struct {
	Username, Next string
}

// safeNext keeps the post-login redirect inside the console: an open redirect after login is a
// phishing aid.
func safeNext(next string) string {
	if next = httpx.LocalPath(next, "/console"); !strings.HasPrefix(next, "/console") {
		return "/console"
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if authz.SubjectFrom(r.Context()).Kind == authz.Staff {
		http.Redirect(w, r, "/console", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "console/login", c.page(r, "login", i18n.T("工作人员登录", "Staff login"),
		loginData{Next: safeNext(r.URL.Query().Get("next"))}))
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	data := loginData{Username: username, Next: safeNext(r.PostFormValue("next"))}
	p := c.page(r, "login", i18n.T("工作人员登录", "Staff login"), data)
	sub, err := c.Org.Authenticate(r.Context(), username, password, c.Now())
	if err != nil {
		c.fail(w, r, err, "console/login", p)
		return
	}
	token, err := c.Sessions.Create(r.Context(), sub.ID, c.ClientIP(r), r.UserAgent())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/", HttpOnly: true, Secure: c.Secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(MaxAge / time.Second)})
	if sub.PasswordChangeRequired {
		http.Redirect(w, r, "/console/password?first=1", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(CookieName); err == nil {
		if sub := authz.SubjectFrom(r.Context()); sub.Kind == authz.Staff {
			c.auditEvent(r, sub, "auth.logout", "staff:"+sub.ID)
		}
		if c.SSO != nil {
			if err := c.SSO.LogoutStaff(r.Context(), sessionKey(ck.Value)); err != nil {
				c.Log.Error("back-channel logout", "err", err)
			}
		}
		_ = c.Sessions.Delete(r.Context(), ck.Value)
	}
	c.clearCookie(w, r)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: c.Secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

func (c *Console) auditEvent(r *http.Request, sub authz.Subject, action, object string) {
	if _, err := c.Audit.Append(r.Context(), audit.Entry{Actor: sub.String(), ActorDivision: sub.Division, Action: action,
		Object: object, Outcome: audit.OutcomeOK, IP: c.ClientIP(r), RequestID: httpx.RequestID(r.Context())}); err != nil {
		c.Log.Error("audit append", "action", action, "err", err)
	}
}

func (c *Console) passwordPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	c.render(w, r, http.StatusOK, "console/password", c.page(r, "", i18n.T("修改密码", "Change password"), r.URL.Query().Get("first") != ""))
}

func (c *Console) changePassword(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	p := c.page(r, "", i18n.T("修改密码", "Change password"), false)
	if r.PostFormValue("new") != r.PostFormValue("confirm") {
		c.fail(w, r, i18n.New("console.password_mismatch", "两次输入的新密码不一致", "the two new passwords differ").WithField("confirm"), "console/password", p)
		return
	}
	if err := c.Org.ChangePassword(r.Context(), sub, r.PostFormValue("old"), r.PostFormValue("new")); err != nil {
		c.fail(w, r, err, "console/password", p)
		return
	}
	// Whoever else held a session with the old password is out now.
	if ck, err := r.Cookie(CookieName); err == nil {
		if err := c.Sessions.DeleteOthers(r.Context(), sub.ID, ck.Value); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/console?ok=1", http.StatusSeeOther)
}

// ---- overview ----

type homeData struct {
	Departments, Staff int
	Division           divisions.Division
	Children           int
	Verify             *verification
	CanAudit           bool
	KeyID              string
	Roles              []authz.Role
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	data := homeData{KeyID: c.Keys.ActiveKeyID(), Roles: sub.Roles}
	data.Division, _ = c.Org.GetDivision(ctx, sub.Division)
	if kids, err := c.Org.ListDivisions(ctx, sub.Division); err == nil {
		data.Children = len(kids)
	}
	if deps, err := c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{Limit: 1000}); err == nil {
		data.Departments = len(deps)
	}
	if st, err := c.Org.ListStaff(ctx, sub, org.StaffFilter{Limit: 1000}); err == nil {
		data.Staff = len(st)
	}
	if c.Policy.Allowed(sub, authz.AuditRead, c.NodeDivision) {
		data.CanAudit = true
		data.Verify = c.verify(ctx, false)
	}
	c.render(w, r, http.StatusOK, "console/home", c.page(r, "home", i18n.T("概览", "Overview"), data))
}

// ---- divisions ----

type divisionsData struct {
	Current  divisions.Division
	Trail    []divisions.Division
	Children []divisions.Division
}

func (c *Console) divisionsPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	ctx := r.Context()
	code := r.URL.Query().Get("code")
	if code == "" {
		code = sub.Division
	}
	p := c.page(r, "divisions", i18n.T("行政区划", "Divisions"), nil)
	// Bad input is a 400 and an unknown code a 404 (division codes are public), before the scope check.
	if _, err := ids.ValidateDivision(code); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	cur, err := c.Org.GetDivision(ctx, code)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if err := c.Policy.Authorize(sub, authz.OrgRead, code); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	kids, err := c.Org.ListDivisions(ctx, code)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var trail []divisions.Division
	for _, a := range divisions.Ancestors(code) {
		if !c.Policy.Contains(sub.Division, a) {
			break
		}
		if d, ok := divisions.Lookup(a); ok {
			trail = append([]divisions.Division{d}, trail...)
		}
	}
	p.Data = divisionsData{Current: cur, Trail: trail, Children: kids}
	c.render(w, r, http.StatusOK, "console/divisions", p)
}

// ---- departments ----

type departmentsData struct {
	Departments []org.Department
	Query       string
	CanEdit     bool
	Scope       []divisions.Division // divisions the actor may create departments in (own and children)
	Form        org.DepartmentInput
	Kinds       []org.DepartmentKind
}

func (c *Console) departmentsData(r *http.Request, sub authz.Subject) (departmentsData, error) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	deps, err := c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{Query: q, Limit: 500})
	if err != nil {
		return departmentsData{}, err
	}
	data := departmentsData{Departments: deps, Query: q, Kinds: org.DepartmentKinds,
		CanEdit: c.Policy.Allowed(sub, authz.DepartmentEdit, sub.Division)}
	if data.CanEdit {
		own, _ := c.Org.GetDivision(ctx, sub.Division)
		kids, _ := c.Org.ListDivisions(ctx, sub.Division)
		data.Scope = append([]divisions.Division{own}, kids...)
	}
	return data, nil
}

func (c *Console) departmentsPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	p := c.page(r, "departments", i18n.T("部门", "Departments"), nil)
	data, err := c.departmentsData(r, sub)
	if err != nil {
		c.fail(w, r, err, "console/departments", p)
		return
	}
	p.Data = data
	c.render(w, r, http.StatusOK, "console/departments", p)
}

func (c *Console) createDepartment(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	in := org.DepartmentInput{DivisionCode: r.PostFormValue("division"), Code: r.PostFormValue("code"),
		Name: r.PostFormValue("name"), ShortName: r.PostFormValue("short_name"), Kind: r.PostFormValue("kind")}
	if _, err := c.Org.CreateDepartment(r.Context(), sub, in); err != nil {
		p := c.page(r, "departments", i18n.T("部门", "Departments"), nil)
		data, derr := c.departmentsData(r, sub)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		data.Form = in
		p.Data = data
		c.fail(w, r, err, "console/departments", p)
		return
	}
	http.Redirect(w, r, "/console/departments?ok=1", http.StatusSeeOther)
}

// ---- staff ----

type staffData struct {
	Staff       []org.Staff
	Query       string
	CanEdit     bool
	Departments []org.Department
	Roles       []authz.Role
	RoleNames   map[authz.Role]i18n.Text
	Form        org.StaffInput
}

func (c *Console) staffData(r *http.Request, sub authz.Subject) (staffData, error) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	list, err := c.Org.ListStaff(ctx, sub, org.StaffFilter{Query: q, Limit: 500})
	if err != nil {
		return staffData{}, err
	}
	data := staffData{Staff: list, Query: q, RoleNames: authz.RoleNames,
		CanEdit: c.Policy.Allowed(sub, authz.StaffEdit, sub.Division)}
	if data.CanEdit {
		if data.Departments, err = c.Org.ListDepartments(ctx, sub, org.DepartmentFilter{ActiveOnly: true, Limit: 1000}); err != nil {
			return staffData{}, err
		}
		for _, ro := range []authz.Role{authz.RoleOfficer, authz.RoleOrgAdmin, authz.RoleAuditor, authz.RoleSysAdmin} {
			if sub.Has(ro) || sub.Has(authz.RoleSysAdmin) {
				data.Roles = append(data.Roles, ro)
			}
		}
	}
	return data, nil
}

func (c *Console) staffPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	p := c.page(r, "staff", i18n.T("工作人员", "Staff"), nil)
	data, err := c.staffData(r, sub)
	if err != nil {
		c.fail(w, r, err, "console/staff", p)
		return
	}
	p.Data = data
	c.render(w, r, http.StatusOK, "console/staff", p)
}

func (c *Console) createStaff(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := r.ParseForm(); err != nil {
		httpx.WriteError(w, r, i18n.New("request.bad_form", "表单无法解析", "the form could not be read"))
		return
	}
	in := org.StaffInput{Username: r.PostFormValue("username"), Name: r.PostFormValue("name"),
		DepartmentID: r.PostFormValue("department"), Phone: r.PostFormValue("phone"), Password: r.PostFormValue("password")}
	for _, ro := range r.PostForm["roles"] {
		in.Roles = append(in.Roles, authz.Role(ro))
	}
	if _, err := c.Org.CreateStaff(r.Context(), sub, in); err != nil {
		p := c.page(r, "staff", i18n.T("工作人员", "Staff"), nil)
		data, derr := c.staffData(r, sub)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		in.Password = "" // never echo a password back into a page
		data.Form = in
		p.Data = data
		c.fail(w, r, err, "console/staff", p)
		return
	}
	http.Redirect(w, r, "/console/staff?ok=1", http.StatusSeeOther)
}

// ---- audit ----

type auditData struct {
	Entries   []audit.Record
	Verify    *verification
	CanVerify bool
	Action    string
	Actor     string
	NextSeq   int64
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	p := c.page(r, "audit", i18n.T("审计日志", "Audit log"), nil)
	if err := c.Policy.Authorize(sub, authz.AuditRead, c.NodeDivision); err != nil {
		c.fail(w, r, err, "console/audit", p)
		return
	}
	q := r.URL.Query()
	f := audit.Filter{Action: strings.TrimSpace(q.Get("action")), Actor: strings.TrimSpace(q.Get("actor")), Limit: 50}
	if before, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && before > 0 {
		f.BeforeSeq = before
	}
	entries, err := c.Audit.List(r.Context(), f)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	data := auditData{Entries: entries, Action: f.Action, Actor: f.Actor,
		CanVerify: c.Policy.Allowed(sub, authz.AuditVerify, c.NodeDivision),
		Verify:    c.verify(r.Context(), false)}
	if len(entries) == f.Limit {
		data.NextSeq = entries[len(entries)-1].Seq
	}
	p.Data = data
	c.render(w, r, http.StatusOK, "console/audit", p)
}

func (c *Console) verifyNow(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := c.Policy.Authorize(sub, authz.AuditVerify, c.NodeDivision); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	v := c.verify(r.Context(), true)
	c.auditEvent(r, sub, "audit.verify", "audit_log")
	if v.err != nil {
		httpx.WriteError(w, r, v.err)
		return
	}
	http.Redirect(w, r, "/console/audit", http.StatusSeeOther)
}

// verify returns a recent verification of the whole chain, running one when the last is
// older than verifyTTL or force is set.
func (c *Console) verify(ctx context.Context, force bool) *verification {
	c.verifyMu.Lock()
	defer c.verifyMu.Unlock()
	if !force && c.lastVerify != nil && c.lastVerify.err == nil && c.Now().Sub(c.lastVerify.at) < verifyTTL {
		return c.lastVerify
	}
	rep, err := c.Audit.Verify(ctx)
	c.lastVerify = &verification{at: c.Now(), report: rep, err: err}
	return c.lastVerify
}

// At, Report, Failed expose a verification to templates.
func (v *verification) At() time.Time        { return v.at }
func (v *verification) Report() audit.Report { return v.report }
func (v *verification) Failed() bool         { return v.err != nil }

package portal

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Licenses serves e-licences (可信电子证照) on the portal: the public verification page that a
// licence's QR code opens (online, by identifier and digest) with an upload for a licence
// file (offline-style, against the node's trust lists), and the holder's personal space —
// their licences with the QR code and the file to download, authorisations for a department
// to use one instead of a paper copy (用证授权), and every use made of them.
type Licenses struct {
	*Accounts
	Licenses    *license.Service
	Departments DepartmentDirectory
}

// DepartmentDirectory lists the departments a holder may authorise to use a licence.
type DepartmentDirectory interface {
	ActiveDepartments(ctx context.Context) ([]org.Department, error)
}

// Routes registers the pages.
func (l *Licenses) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /licenses/verify", l.verifyPage)
	mux.HandleFunc("POST /licenses/verify", l.verifyFile)
	mux.HandleFunc("GET /account/licenses", l.signedIn(l.minePage))
	mux.HandleFunc("GET /account/licenses/{id}", l.signedIn(l.licensePage))
	mux.HandleFunc("GET /account/licenses/{id}/file", l.signedIn(l.download))
	mux.HandleFunc("POST /account/licenses/{id}/grants", l.signedIn(l.grant))
	mux.HandleFunc("POST /account/licenses/grants/{grant}/revoke", l.signedIn(l.revokeGrant))
}

var (
	verifyTitle   = i18n.T("电子证照核验", "Verify an e-licence")
	myLicTitle    = i18n.T("我的证照", "My licences")
	myLicenseName = i18n.T("证照", "Licence")
)

// ---- public verification ----

type verifyData struct {
	ID      string          // as asked
	Result  *license.Result // nil until something was asked
	File    string          // the uploaded file's name (offline check)
	Through string          // the licence's last valid day, when the result describes it
}

func (d *verifyData) set(res license.Result) {
	d.Result = &res
	if res.License != nil {
		d.Through = license.ValidThrough(res.License.ValidUntil)
	}
}

// verifyPage verifies a licence online by identifier (and, from a QR code, its short digest),
// or shows the form when nothing is asked. Anyone may; a digest lets the page show the licence
// with the holder masked.
func (l *Licenses) verifyPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := verifyData{ID: strings.TrimSpace(q.Get("id"))}
	if d.ID != "" {
		res, err := l.Licenses.VerifyOnline(r.Context(), d.ID, q.Get("d"))
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		d.set(res)
	}
	// A verdict is about now: a revocation must show at the next scan, not from a cache.
	w.Header().Set("Cache-Control", "no-store")
	l.render(w, r, http.StatusOK, "portal/licenses_verify", l.page(r, verifyTitle, d))
}

// maxLicenseUpload is the largest licence file accepted (the engine refuses more than 1 MiB).
const maxLicenseUpload = 1 << 20

// verifyFile verifies an uploaded licence file against this node's trust: its own issuers'
// keys and every imported trust list. Revocation is not known offline; the page says so.
func (l *Licenses) verifyFile(w http.ResponseWriter, r *http.Request) {
	d := verifyData{}
	p := l.page(r, verifyTitle, d)
	file, hdr, err := r.FormFile("file")
	if err != nil {
		l.fail(w, r, i18n.New("license.file_missing", "请选择证照文件（.dgovlic）", "choose a licence file (.dgovlic)").WithField("file"),
			"portal/licenses_verify", p)
		return
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxLicenseUpload+1))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	res, err := l.Licenses.VerifyFile(r.Context(), b)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d.set(res)
	d.File = hdr.Filename
	p.Data = d
	w.Header().Set("Cache-Control", "no-store")
	l.render(w, r, http.StatusOK, "portal/licenses_verify", p)
}

// ---- the holder's licences ----

// subject is the signed-in person as the engines see them: the citizen, or the enterprise
// they act for.
func (l *Licenses) subject(r *http.Request, ses identity.Session) (authz.Subject, error) {
	return l.Identity.Subject(r.Context(), ses.AccountID, ses.ActingEnterpriseID)
}

// licenseRow is a licence in a list, with the last day it is valid.
type licenseRow struct {
	license.Summary
	Through    string // YYYY-MM-DD in Beijing; "" without limit
	StatusName i18n.Text
}

type mineData struct {
	// Known: the account's identity is known to the licence engine (real-name verified, or an
	// enterprise); else the page asks to verify first.
	Known    bool
	Licenses []licenseRow
	Grants   []license.UseGrant
	Uses     []license.Use
	Now      time.Time
}

func (l *Licenses) minePage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	sub, err := l.subject(r, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d := mineData{Known: true, Now: l.Now()}
	list, err := l.Licenses.Mine(ctx, sub)
	if errors.Is(err, license.ErrHolderUnknown) {
		d.Known, err = false, nil
	}
	for _, s := range list {
		d.Licenses = append(d.Licenses, licenseRow{Summary: s, Through: license.ValidThrough(s.ValidUntil), StatusName: license.StatusNames[s.Status]})
	}
	if err == nil && d.Known {
		if d.Grants, err = l.Licenses.UseGrants(ctx, sub, ""); err == nil {
			d.Uses, err = l.Licenses.Uses(ctx, sub)
		}
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	l.render(w, r, http.StatusOK, "portal/licenses", l.page(r, myLicTitle, d))
}

// grantForm is the authorisation form as typed.
type grantForm struct {
	DeptID, Purpose, Ref, ValidUntil string
}

type licenseData struct {
	View        license.View
	QR          template.URL
	History     []license.Event
	EventNames  map[string]i18n.Text
	Grants      []license.UseGrant
	Departments []org.Department
	Grant       grantForm
	Now         time.Time
}

// licenseData reads licence id for its holder's page, with the authorisations they gave.
func (l *Licenses) licenseData(r *http.Request, sub authz.Subject, id string) (*licenseData, error) {
	ctx := r.Context()
	v, err := l.Licenses.View(ctx, sub, id)
	if err != nil {
		return nil, err
	}
	d := &licenseData{View: v, QR: qrDataURL(l.Licenses, v), Now: l.Now(), EventNames: license.EventNames,
		Grant: grantForm{ValidUntil: l.Now().In(calendar.Beijing).AddDate(0, 0, 30).Format(time.DateOnly)}}
	if d.History, err = l.Licenses.History(ctx, sub, id); err != nil {
		return nil, err
	}
	if d.Grants, err = l.Licenses.UseGrants(ctx, sub, v.ID); err != nil {
		return nil, err
	}
	if v.Status == license.StatusValid && l.Departments != nil {
		if d.Departments, err = l.Departments.ActiveDepartments(ctx); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (l *Licenses) licensePage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	sub, err := l.subject(r, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d, err := l.licenseData(r, sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p := l.page(r, myLicenseName, d)
	if r.URL.Query().Get("ok") != "" {
		t := i18n.T("已保存", "Saved")
		p.Flash = &t
	}
	w.Header().Set("Cache-Control", "no-store")
	l.render(w, r, http.StatusOK, "portal/licenses_view", p)
}

// qrDataURL draws the QR code of a licence view's verification URL as a data: URL.
func qrDataURL(s *license.Service, v license.View) template.URL {
	id, d, err := license.ParseVerifyURL(v.VerifyURL)
	if err != nil {
		return ""
	}
	png, err := s.QRCode(id, d, 0)
	if err != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

// download serves the holder's licence file, which verifies offline.
func (l *Licenses) download(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	sub, err := l.subject(r, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	f, err := l.Licenses.DownloadFile(r.Context(), sub, r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", license.FileMediaType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.FileName()}))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(f.Encode())
}

// grantUntil reads the last day of an authorisation (YYYY-MM-DD, Beijing) as the midnight that
// ends it.
func grantUntil(s string) (time.Time, error) {
	t, err := time.ParseInLocation(time.DateOnly, strings.TrimSpace(s), calendar.Beijing)
	if err != nil {
		return time.Time{}, i18n.New("license.grant.date", "授权截止日期格式应为 YYYY-MM-DD", "the last day is written YYYY-MM-DD").WithField("valid_until")
	}
	return t.AddDate(0, 0, 1).UTC(), nil
}

// grant authorises a department to use the licence (用证授权).
func (l *Licenses) grant(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	id := r.PathValue("id")
	sub, err := l.subject(r, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	f := grantForm{DeptID: strings.TrimSpace(r.PostFormValue("dept_id")), Purpose: r.PostFormValue("purpose"),
		Ref: r.PostFormValue("ref"), ValidUntil: r.PostFormValue("valid_until")}
	until, err := grantUntil(f.ValidUntil)
	if err == nil {
		_, err = l.Licenses.GrantUse(r.Context(), sub, license.GrantInput{LicenseID: id, DeptID: f.DeptID, Purpose: f.Purpose,
			Ref: f.Ref, ValidUntil: until})
	}
	if err != nil {
		d, derr := l.licenseData(r, sub, id)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		d.Grant = f
		l.fail(w, r, err, "portal/licenses_view", l.page(r, myLicenseName, d))
		return
	}
	http.Redirect(w, r, "/account/licenses/"+url.PathEscape(id)+"?ok=1#grants", http.StatusSeeOther)
}

// revokeGrant ends an authorisation at once.
func (l *Licenses) revokeGrant(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	sub, err := l.subject(r, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	g, err := l.Licenses.RevokeUse(r.Context(), sub, r.PathValue("grant"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account/licenses/"+url.PathEscape(g.LicenseID)+"?ok=1#grants", http.StatusSeeOther)
}

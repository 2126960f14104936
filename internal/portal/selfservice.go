package portal

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Self-service: login methods (TOTP), authorised applications, enterprise operators.

// App is an application the person has signed in to.
type App struct {
	ClientID, ClientName string
	Scopes               []string
	LastGranted          time.Time
}

// AppGrants is what the provider tells and does about a person's applications.
type AppGrants interface {
	Apps(ctx context.Context, subject string) ([]App, error)
	RevokeApp(ctx context.Context, subject, clientID string) error
}

func (a *Accounts) selfServiceRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /account/totp/enroll", a.signedIn(a.totpEnroll))
	mux.HandleFunc("POST /account/totp/confirm", a.signedIn(a.totpConfirm))
	mux.HandleFunc("POST /account/totp/disable", a.signedIn(a.totpDisable))
	mux.HandleFunc("POST /account/apps/revoke", a.signedIn(a.revokeApp))
	mux.HandleFunc("GET /account/enterprises/{id}", a.signedIn(a.enterprisePage))
	mux.HandleFunc("POST /account/enterprises/{id}/members", a.signedIn(a.addMember))
	mux.HandleFunc("POST /account/enterprises/{id}/members/{account}/remove", a.signedIn(a.removeMember))
}

// TOTPSetup is shown once while an authenticator app is being added.
type TOTPSetup struct{ Secret, URL string }

func (a *Accounts) totpEnroll(w http.ResponseWriter, r *http.Request, ses identity.Session, token string) {
	secret, url, err := a.Identity.EnrollTOTP(r.Context(), ses.AccountID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	a.renderAccount(w, r, ses, http.StatusOK, func(d *accountData) { d.TOTPSetup = &TOTPSetup{Secret: secret, URL: url} }, nil)
}

func (a *Accounts) totpConfirm(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	if err := a.Identity.ConfirmTOTP(r.Context(), ses.AccountID, strings.TrimSpace(r.PostFormValue("code"))); err != nil {
		a.renderAccount(w, r, ses, 0, nil, err)
		return
	}
	http.Redirect(w, r, "/account?ok=1", http.StatusSeeOther)
}

// totpDisable needs a current code: a stolen session alone must not remove the second factor.
func (a *Accounts) totpDisable(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	if err := a.Identity.VerifyTOTP(r.Context(), ses.AccountID, strings.TrimSpace(r.PostFormValue("code"))); err != nil {
		a.renderAccount(w, r, ses, 0, nil, err)
		return
	}
	if err := a.Identity.DisableTOTP(r.Context(), ses.AccountID); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?ok=1", http.StatusSeeOther)
}

func (a *Accounts) revokeApp(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	g, ok := a.Provider.(AppGrants)
	if !ok {
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	if err := g.RevokeApp(r.Context(), ses.AccountID, r.PostFormValue("client_id")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?ok=1", http.StatusSeeOther)
}

// ---- enterprise operators ----

type enterpriseData struct {
	Enterprise identity.Enterprise
	Members    []identity.Member
	MyRole     string
	Mobile     string
}

var enterpriseTitle = i18n.T("企业经办人管理", "Enterprise operators")

func (a *Accounts) enterpriseData(r *http.Request, ses identity.Session) (enterpriseData, error) {
	ctx, id := r.Context(), r.PathValue("id")
	members, err := a.Identity.ListMembers(ctx, ses.AccountID, id)
	if err != nil {
		return enterpriseData{}, err
	}
	ent, err := a.Identity.GetEnterprise(ctx, id)
	if err != nil {
		return enterpriseData{}, err
	}
	d := enterpriseData{Enterprise: ent, Members: members}
	for _, m := range members {
		if m.AccountID == ses.AccountID {
			d.MyRole = m.Role
		}
	}
	return d, nil
}

func (a *Accounts) enterprisePage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	d, err := a.enterpriseData(r, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p := a.page(r, enterpriseTitle, d)
	if r.URL.Query().Get("ok") != "" {
		t := i18n.T("已保存", "Saved")
		p.Flash = &t
	}
	a.render(w, r, http.StatusOK, "portal/enterprise", p)
}

func (a *Accounts) addMember(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	id := r.PathValue("id")
	mobile := strings.TrimSpace(r.PostFormValue("mobile"))
	if _, err := a.Identity.AddMember(r.Context(), ses.AccountID, id, mobile, r.PostFormValue("role")); err != nil {
		d, derr := a.enterpriseData(r, ses)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		d.Mobile = mobile
		a.fail(w, r, err, "portal/enterprise", a.page(r, enterpriseTitle, d))
		return
	}
	http.Redirect(w, r, "/account/enterprises/"+id+"?ok=1", http.StatusSeeOther)
}

func (a *Accounts) removeMember(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	id := r.PathValue("id")
	if err := a.Identity.RemoveMember(r.Context(), ses.AccountID, id, r.PathValue("account")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account/enterprises/"+id+"?ok=1", http.StatusSeeOther)
}

package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/web"
)

// SSOCookie holds the citizen's single sign-on session: one login serves the portal and every
// registered application (through the OpenID Connect provider).
const SSOCookie = "dgov_sso"

// LoginRequest is what the login page needs to know of a pending OpenID Connect authorization.
type LoginRequest struct {
	ClientName    string
	RequiredLevel int
	// Staff is set for applications of civil servants: they sign in at the console.
	Staff bool
}

// Provider is the OpenID Connect provider as the login pages use it.
type Provider interface {
	LoginRequest(ctx context.Context, authRequestID string) (LoginRequest, error)
	// Complete finishes the authorization for the session's subject and returns where to send
	// the browser (back to the application with a code).
	Complete(ctx context.Context, authRequestID string, ses identity.Session) (string, error)
	// Logout ends the SSO session at every application (back-channel logout) and revokes its tokens.
	Logout(ctx context.Context, sessionID string) error
}

// Accounts serves the citizen side of unified identity: login, registration, real-name
// verification, the account page and logout.
type Accounts struct {
	Identity *identity.Service
	Provider Provider              // nil: no OpenID Connect provider wired
	Sink     *identity.SinkGateway // non-nil only in development: /dev/sms shows the messages
	Render   *web.Renderer
	Secure   func(r *http.Request) bool
	ClientIP func(r *http.Request) string
	Now      func() time.Time
	// Federation is the upstream provider's display name when federated login is on ("" = off).
	Federation string
}

// Routes registers the account pages.
func (a *Accounts) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", a.loginPage)
	mux.HandleFunc("POST /login/code", a.loginCode)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /register", a.registerPage)
	mux.HandleFunc("POST /register/code", a.registerCode)
	mux.HandleFunc("POST /register", a.register)
	mux.HandleFunc("GET /account", a.signedIn(a.accountPage))
	mux.HandleFunc("GET /account/realname", a.signedIn(a.realnamePage))
	mux.HandleFunc("POST /account/realname", a.signedIn(a.realname))
	mux.HandleFunc("POST /account/sessions/revoke", a.signedIn(a.revokeSession))
	mux.HandleFunc("POST /account/enterprises", a.signedIn(a.bindEnterprise))
	mux.HandleFunc("POST /account/act", a.signedIn(a.actAs))
	mux.HandleFunc("POST /login/consent", a.signedIn(a.consent))
	mux.HandleFunc("POST /logout", a.logout)
	a.selfServiceRoutes(mux)
	if a.Sink != nil {
		mux.HandleFunc("GET /dev/sms", a.smsSink)
	}
}

func (a *Accounts) page(r *http.Request, title i18n.Text, data any) web.Page {
	return web.Page{Lang: i18n.FromRequest(r), Title: title, Path: r.URL.Path, CSRF: httpx.CSRFToken(r),
		Data: data, RequestID: httpx.RequestID(r.Context())}
}

func (a *Accounts) render(w http.ResponseWriter, r *http.Request, status int, view string, p web.Page) {
	if err := a.Render.Render(w, status, view, p); err != nil {
		httpx.WriteError(w, r, err)
	}
}

// fail shows a user error on the form it came from; anything else is a server error.
func (a *Accounts) fail(w http.ResponseWriter, r *http.Request, err error, view string, p web.Page) {
	e, ok := i18n.As(err)
	if !ok {
		httpx.WriteError(w, r, err)
		return
	}
	p.Error = e
	a.render(w, r, e.HTTPStatus(), view, p)
}

// session returns the browser's live SSO session and its token.
func (a *Accounts) session(r *http.Request) (identity.Session, string, bool) {
	ck, err := r.Cookie(SSOCookie)
	if err != nil || ck.Value == "" {
		return identity.Session{}, "", false
	}
	ses, err := a.Identity.GetSession(r.Context(), ck.Value)
	if err != nil {
		return identity.Session{}, "", false
	}
	return ses, ck.Value, true
}

func (a *Accounts) setCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{Name: SSOCookie, Value: token, Path: "/", HttpOnly: true, Secure: a.Secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(identity.MaxAge / time.Second)})
}

func (a *Accounts) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SSOCookie, Value: "", Path: "/", HttpOnly: true, Secure: a.Secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

type signedInHandler func(w http.ResponseWriter, r *http.Request, ses identity.Session, token string)

// signedIn sends anonymous browsers to the login page, coming back afterwards.
func (a *Accounts) signedIn(h signedInHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ses, token, ok := a.session(r)
		if !ok {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, ses, token)
	}
}

// ---- login ----

type loginData struct {
	AuthRequestID, Next, Method, Login string
	ClientName                         string
	RequiredLevel                      int
	NeedOTP                            bool
	Federation                         string
	staff                              bool
}

func (a *Accounts) loginData(r *http.Request, form url.Values) (loginData, error) {
	d := loginData{AuthRequestID: form.Get("authRequestID"), Next: httpx.LocalPath(form.Get("next"), "/account"),
		Method: form.Get("method"), Login: strings.TrimSpace(form.Get("login"))}
	if d.Method != "sms" {
		d.Method = "password"
	}
	d.Federation = a.Federation
	if d.AuthRequestID != "" && a.Provider != nil {
		lr, err := a.Provider.LoginRequest(r.Context(), d.AuthRequestID)
		if err != nil {
			return d, err
		}
		d.ClientName, d.RequiredLevel, d.staff = lr.ClientName, lr.RequiredLevel, lr.Staff
	}
	return d, nil
}

var loginTitle = i18n.T("统一身份认证", "Sign in")

func (a *Accounts) loginPage(w http.ResponseWriter, r *http.Request) {
	d, err := a.loginData(r, r.URL.Query())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	// Civil servants' applications: staff sign in (once) at the console, which answers them.
	if d.staff {
		http.Redirect(w, r, StaffLoginURL(d.AuthRequestID), http.StatusSeeOther)
		return
	}
	// Single sign-on: a live session that is strong enough answers the application at once.
	if ses, _, ok := a.session(r); ok && (d.AuthRequestID == "" || ses.Level >= d.RequiredLevel) {
		a.finish(w, r, d, ses)
		return
	}
	// An app that requires L3 needs a passkey or a certificate: go straight to that page
	// (its "password / SMS" link comes back with method=, so this does not loop).
	if d.RequiredLevel >= identity.LevelStrong && r.URL.Query().Get("method") == "" {
		http.Redirect(w, r, StrongLoginURL(d.AuthRequestID, d.Next), http.StatusSeeOther)
		return
	}
	p := a.page(r, loginTitle, d)
	if d.RequiredLevel > 0 {
		if ses, _, ok := a.session(r); ok && ses.Level < d.RequiredLevel {
			p.Error = ErrStepUp
		}
	}
	a.render(w, r, http.StatusOK, "portal/login", p)
}

// ErrOTPRequired answers an SMS login to an account protected by an authenticator app.
var ErrOTPRequired = &i18n.Error{Code: "identity.otp_required", Status: http.StatusUnauthorized, Field: "otp",
	Msg: i18n.T("该账号已启用动态口令：请重新获取短信验证码，并同时填写动态口令", "this account uses an authenticator app: request a new SMS code and enter the app's code too")}

// ErrStepUp asks for a stronger login than the current session has.
var ErrStepUp = &i18n.Error{Code: "identity.step_up", Status: http.StatusForbidden,
	Msg: i18n.T("该应用要求更高的认证级别，请完成实名认证或使用更强的方式登录", "this app needs a higher assurance level: verify your real name or sign in a stronger way")}

func (a *Accounts) loginCode(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	d, err := a.loginData(r, r.PostForm)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d.Method = "sms"
	d.Login = strings.TrimSpace(r.PostFormValue("mobile"))
	p := a.page(r, loginTitle, d)
	if err := a.Identity.SendCode(r.Context(), d.Login, identity.PurposeLogin, a.ClientIP(r)); err != nil {
		a.fail(w, r, err, "portal/login", p)
		return
	}
	sent := i18n.T("验证码已发送，5 分钟内有效", "Code sent; it is valid for 5 minutes")
	p.Flash = &sent
	a.render(w, r, http.StatusOK, "portal/login", p)
}

func (a *Accounts) login(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	d, err := a.loginData(r, r.PostForm)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p := a.page(r, loginTitle, d)
	ctx, ip := r.Context(), a.ClientIP(r)
	var acc identity.Account
	amr := []string{identity.AMRPassword}
	if d.Method == "sms" {
		acc, err = a.Identity.LoginSMS(ctx, d.Login, r.PostFormValue("code"), ip)
		amr = []string{identity.AMRSMS}
		// An SMS code alone must not bypass the authenticator app (SIM swap).
		if err == nil && acc.TOTPEnabled {
			if err = a.Identity.VerifyTOTP(ctx, acc.ID, r.PostFormValue("otp")); err == nil {
				amr = append(amr, identity.AMROTP)
			} else if r.PostFormValue("otp") == "" {
				err = ErrOTPRequired
			}
		}
	} else {
		acc, err = a.Identity.LoginPassword(ctx, d.Login, r.PostFormValue("password"), ip)
		if err == nil && acc.TOTPEnabled {
			if code := r.PostFormValue("otp"); code == "" {
				d.NeedOTP = true
				p.Data = d
				a.render(w, r, http.StatusOK, "portal/login", p)
				return
			} else if err = a.Identity.VerifyTOTP(ctx, acc.ID, code); err == nil {
				amr = append(amr, identity.AMROTP)
			}
		}
	}
	if err != nil {
		a.fail(w, r, err, "portal/login", p)
		return
	}
	// A password or SMS login proves at most what the account has proven (L2); L3 needs a
	// certificate or device in this very session.
	ses, err := a.startSession(w, r, acc.ID, min(acc.Level, identity.LevelRealName), amr)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if d.AuthRequestID != "" && ses.Level < d.RequiredLevel {
		if ses.Level >= identity.LevelRealName {
			http.Redirect(w, r, StrongLoginURL(d.AuthRequestID, ""), http.StatusSeeOther)
			return
		}
		// Signed in, but not strong enough for this app: verify the real name first.
		http.Redirect(w, r, "/account/realname?next="+url.QueryEscape("/login?authRequestID="+url.QueryEscape(d.AuthRequestID)), http.StatusSeeOther)
		return
	}
	a.finish(w, r, d, ses)
}

func (a *Accounts) startSession(w http.ResponseWriter, r *http.Request, accountID string, level int, amr []string) (identity.Session, error) {
	token, ses, err := a.Identity.CreateSession(r.Context(), accountID, level, amr, a.ClientIP(r), r.UserAgent())
	if err != nil {
		return ses, err
	}
	// The browser's previous session (perhaps someone else's) ends here, not left behind.
	if old, err := r.Cookie(SSOCookie); err == nil && old.Value != "" {
		if prev, err := a.Identity.GetSession(r.Context(), old.Value); err == nil && prev.AccountID != accountID && a.Provider != nil {
			_ = a.Provider.Logout(r.Context(), prev.ID) // someone else's apps end with their session
		}
		_ = a.Identity.Logout(r.Context(), old.Value)
	}
	a.setCookie(w, r, token)
	return ses, nil
}

// finish sends a signed-in browser on: back to the application that asked, or to next.
func (a *Accounts) finish(w http.ResponseWriter, r *http.Request, d loginData, ses identity.Session) {
	if d.AuthRequestID != "" && a.Provider != nil {
		if c, ok := a.Provider.(Consenter); ok {
			need, scopes, err := c.ConsentNeeded(r.Context(), d.AuthRequestID, ses.AccountID)
			if err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			if need {
				a.render(w, r, http.StatusOK, "portal/consent", a.page(r, consentTitle,
					consentData{AuthRequestID: d.AuthRequestID, ClientName: d.ClientName, Scopes: scopes}))
				return
			}
		}
		to, err := a.Provider.Complete(r.Context(), d.AuthRequestID, ses)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// ---- registration ----

type registerData struct {
	AuthRequestID, Next, Mobile string
	CodeSent                    bool
}

var registerTitle = i18n.T("注册", "Register")

func (a *Accounts) registerForm(r *http.Request, form url.Values) registerData {
	return registerData{AuthRequestID: form.Get("authRequestID"), Next: httpx.LocalPath(form.Get("next"), ""),
		Mobile: strings.TrimSpace(form.Get("mobile"))}
}

func (a *Accounts) registerPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "portal/register", a.page(r, registerTitle, a.registerForm(r, r.URL.Query())))
}

func (a *Accounts) registerCode(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	d := a.registerForm(r, r.PostForm)
	p := a.page(r, registerTitle, d)
	if err := a.Identity.SendCode(r.Context(), d.Mobile, identity.PurposeRegister, a.ClientIP(r)); err != nil {
		a.fail(w, r, err, "portal/register", p)
		return
	}
	d.CodeSent = true
	p.Data = d
	sent := i18n.T("验证码已发送，5 分钟内有效", "Code sent; it is valid for 5 minutes")
	p.Flash = &sent
	a.render(w, r, http.StatusOK, "portal/register", p)
}

func (a *Accounts) register(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	d := a.registerForm(r, r.PostForm)
	d.CodeSent = true
	p := a.page(r, registerTitle, d)
	acc, err := a.Identity.Register(r.Context(), identity.RegisterInput{Mobile: d.Mobile, Code: r.PostFormValue("code"),
		Password: r.PostFormValue("password")})
	if err != nil {
		a.fail(w, r, err, "portal/register", p)
		return
	}
	if _, err := a.startSession(w, r, acc.ID, acc.Level, []string{identity.AMRSMS, identity.AMRPassword}); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	next := "/account"
	if d.AuthRequestID != "" {
		next = "/login?authRequestID=" + url.QueryEscape(d.AuthRequestID)
	} else if d.Next != "" {
		next = d.Next
	}
	http.Redirect(w, r, "/account/realname?next="+url.QueryEscape(next), http.StatusSeeOther)
}

// ---- real-name verification ----

type realnameData struct{ Next, Name, IDNumber string }

var realnameTitle = i18n.T("实名认证", "Real-name verification")

func (a *Accounts) realnamePage(w http.ResponseWriter, r *http.Request, _ identity.Session, _ string) {
	a.render(w, r, http.StatusOK, "portal/realname", a.page(r, realnameTitle,
		realnameData{Next: httpx.LocalPath(r.URL.Query().Get("next"), "/account")}))
}

func (a *Accounts) realname(w http.ResponseWriter, r *http.Request, ses identity.Session, token string) {
	d := realnameData{Next: httpx.LocalPath(r.PostFormValue("next"), "/account"), Name: strings.TrimSpace(r.PostFormValue("name")),
		IDNumber: strings.TrimSpace(r.PostFormValue("id_number"))}
	p := a.page(r, realnameTitle, d)
	acc, err := a.Identity.VerifyRealName(r.Context(), ses.AccountID, d.Name, d.IDNumber)
	if err != nil {
		a.fail(w, r, err, "portal/realname", p)
		return
	}
	// The session's privilege rose: issue a new session token and end the old one.
	if _, err := a.startSession(w, r, acc.ID, min(acc.Level, identity.LevelRealName), ses.AMR); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	_ = a.Identity.Logout(r.Context(), token)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// ---- account page ----

type accountData struct {
	Claims         identity.Claims
	DivisionName   string
	Sessions       []identity.Session
	CurrentSession string
	Enterprises    []identity.Membership
	ActingFor      string
	TOTPEnabled    bool
	TOTPSetup      *TOTPSetup
	Apps           []App
	Federation     string
}

func (a *Accounts) accountPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	a.renderAccount(w, r, ses, http.StatusOK, nil, nil)
}

// renderAccount shows the account page, adjusted by edit, with failure (a user error) on it.
func (a *Accounts) renderAccount(w http.ResponseWriter, r *http.Request, ses identity.Session, status int, edit func(*accountData), failure error) {
	ctx := r.Context()
	cl, err := a.Identity.Claims(ctx, ses.AccountID, ses.ActingEnterpriseID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	acc, err := a.Identity.GetAccount(ctx, ses.AccountID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d := accountData{Claims: cl, CurrentSession: ses.ID, ActingFor: ses.ActingEnterpriseID, TOTPEnabled: acc.TOTPEnabled, Federation: a.Federation}
	if dv, ok := divisions.Lookup(cl.Division); ok {
		d.DivisionName = dv.Name
	}
	if d.Sessions, err = a.Identity.ListSessions(ctx, ses.AccountID); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if d.Enterprises, err = a.Identity.ListEnterprises(ctx, ses.AccountID); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if g, ok := a.Provider.(AppGrants); ok {
		if d.Apps, err = g.Apps(ctx, ses.AccountID); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	if edit != nil {
		edit(&d)
	}
	p := a.page(r, i18n.T("我的账号", "My account"), d)
	if r.URL.Query().Get("ok") != "" {
		t := i18n.T("已保存", "Saved")
		p.Flash = &t
	}
	if failure != nil {
		a.fail(w, r, failure, "portal/account", p)
		return
	}
	a.render(w, r, status, "portal/account", p)
}

func (a *Accounts) revokeSession(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	id := r.PostFormValue("id")
	if err := a.Identity.RevokeSession(r.Context(), ses.AccountID, id); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	// The revoked session's applications are logged out too.
	if a.Provider != nil {
		if err := a.Provider.Logout(r.Context(), id); err != nil {
			httpx.Logger(r.Context()).Error("back-channel logout", "err", err)
		}
	}
	http.Redirect(w, r, "/account?ok=1", http.StatusSeeOther)
}

func (a *Accounts) bindEnterprise(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	if _, err := a.Identity.BindEnterprise(r.Context(), ses.AccountID, strings.TrimSpace(r.PostFormValue("credit_code")),
		strings.TrimSpace(r.PostFormValue("name"))); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?ok=1", http.StatusSeeOther)
}

func (a *Accounts) actAs(w http.ResponseWriter, r *http.Request, _ identity.Session, token string) {
	if _, err := a.Identity.ActAs(r.Context(), token, r.PostFormValue("enterprise_id")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?ok=1", http.StatusSeeOther)
}

// logout ends the SSO session here and, through the provider, at every application.
func (a *Accounts) logout(w http.ResponseWriter, r *http.Request) {
	if ses, token, ok := a.session(r); ok {
		if a.Provider != nil {
			if err := a.Provider.Logout(r.Context(), ses.ID); err != nil {
				httpx.Logger(r.Context()).Error("back-channel logout", "err", err)
			}
		}
		if err := a.Identity.Logout(r.Context(), token); err != nil && !errors.Is(err, i18n.ErrNotFound) {
			httpx.WriteError(w, r, err)
			return
		}
	}
	a.clearCookie(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// smsSink shows the development SMS sink (never routed when a real gateway is configured).
func (a *Accounts) smsSink(w http.ResponseWriter, r *http.Request) {
	msgs, err := a.Sink.ListSink(r.Context(), 50)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "portal/sms", a.page(r, i18n.T("短信收件箱", "SMS sink"), msgs))
}

// ---- consent ----

// Consenter asks a person to allow a third-party application before it gets their data.
type Consenter interface {
	ConsentNeeded(ctx context.Context, authRequestID, subject string) (bool, []string, error)
	GrantConsent(ctx context.Context, authRequestID, subject string) error
	Deny(w http.ResponseWriter, r *http.Request, authRequestID, subject string)
}

type consentData struct {
	AuthRequestID, ClientName string
	Scopes                    []string
}

var consentTitle = i18n.T("授权确认", "Allow access")

func (a *Accounts) consent(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	c, ok := a.Provider.(Consenter)
	if !ok {
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	id := r.PostFormValue("authRequestID")
	if r.PostFormValue("decision") != "allow" {
		c.Deny(w, r, id, ses.AccountID)
		return
	}
	if err := c.GrantConsent(r.Context(), id, ses.AccountID); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	to, err := a.Provider.Complete(r.Context(), id, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

// StaffLoginURL is the console page that answers a staff application's authorization.
func StaffLoginURL(authRequestID string) string {
	return "/console/sso?authRequestID=" + url.QueryEscape(authRequestID)
}

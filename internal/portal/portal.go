// Package portal is the public portal at / for citizens and enterprises. For now it is the
// shell later engines fill in (online services, open data, 12345): the home page, the
// language switch and the error pages every surface shares.
package portal

import (
	"net/http"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/web"
)

// Portal serves the public pages.
type Portal struct {
	Render *web.Renderer
	Org    *org.Service
	Secure func(r *http.Request) bool
}

// Routes registers the portal's pages. "/" also catches every unknown path, so a browser gets
// a page and an API client a problem+json 404.
func (p *Portal) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.home)
	mux.HandleFunc("GET /lang", p.setLang)
	mux.HandleFunc("/", p.notFound)
}

type homeData struct {
	Divisions, Departments int
}

func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	data := homeData{}
	if n, err := p.Org.CountPublic(r.Context()); err == nil {
		data.Divisions, data.Departments = n.Divisions, n.Departments
	}
	page := web.Page{Lang: i18n.FromRequest(r), Title: i18n.T("首页", "Home"), Nav: "home", Path: r.URL.Path,
		CSRF: httpx.CSRFToken(r), Data: data, RequestID: httpx.RequestID(r.Context())}
	if err := p.Render.Render(w, http.StatusOK, "portal/home", page); err != nil {
		httpx.WriteError(w, r, err)
	}
}

// setLang remembers the chosen language in a cookie and goes back to the page.
func (p *Portal) setLang(w http.ResponseWriter, r *http.Request) {
	lang := i18n.Parse(r.URL.Query().Get("to"))
	http.SetCookie(w, &http.Cookie{Name: "dgov_lang", Value: string(lang), Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: p.Secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, httpx.LocalPath(r.URL.Query().Get("back"), "/"), http.StatusSeeOther)
}

func (p *Portal) notFound(w http.ResponseWriter, r *http.Request) {
	httpx.WriteError(w, r, i18n.ErrNotFound)
}

// ErrorPage renders a problem for a browser (httpx.HTMLErrorRenderer).
func (p *Portal) ErrorPage(w http.ResponseWriter, r *http.Request, pr *httpx.Problem) {
	page := web.Page{Lang: pr.Lang, Title: i18n.T(pr.TitleZH, pr.TitleEN), Path: r.URL.Path,
		RequestID: pr.RequestID}
	if err := p.Render.Render(w, pr.Status, "portal/error", page); err != nil {
		http.Error(w, pr.Title, pr.Status)
	}
}

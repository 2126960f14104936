package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Applications registered at the OpenID provider, per department (统一身份认证接入应用).

type clientsData struct {
	Clients   []idp.Client
	CanEdit   bool
	Form      clientForm
	NewSecret string // shown once, right after registration or rotation
	SecretFor string
	Issuer    string
}

type clientForm struct {
	Name, Type, RedirectURIs, PostLogoutURIs, BackchannelURI, Scopes string
	MinLevel                                                         int
	ThirdParty                                                       bool
	Audience                                                         string
}

var clientsTitle = i18n.T("接入应用", "Applications")

func lines(s string) []string {
	var out []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ' ' || r == ',' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (c *Console) clientsData(r *http.Request, sub authz.Subject) (clientsData, error) {
	list, err := c.IdP.ListClients(r.Context(), sub)
	if err != nil {
		return clientsData{}, err
	}
	return clientsData{Clients: list, CanEdit: c.Policy.Allowed(sub, authz.ClientsEdit, sub.Division),
		Form: clientForm{Type: string(idp.ClientWeb), MinLevel: 2}, Issuer: c.IdP.Issuer()}, nil
}

func (c *Console) clientsPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	p := c.page(r, "clients", clientsTitle, nil)
	d, err := c.clientsData(r, sub)
	if err != nil {
		c.fail(w, r, err, "console/clients", p)
		return
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "console/clients", p)
}

func (c *Console) registerClient(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	f := clientForm{Name: r.PostFormValue("name"), Type: r.PostFormValue("type"), RedirectURIs: r.PostFormValue("redirect_uris"),
		PostLogoutURIs: r.PostFormValue("post_logout_redirect_uris"), BackchannelURI: strings.TrimSpace(r.PostFormValue("backchannel_logout_uri")),
		Scopes: r.PostFormValue("allowed_scopes")}
	f.MinLevel, _ = strconv.Atoi(r.PostFormValue("min_level"))
	f.ThirdParty = r.PostFormValue("third_party") == "on"
	f.Audience = r.PostFormValue("audience")
	client, secret, err := c.IdP.RegisterClient(r.Context(), sub, idp.ClientInput{Name: f.Name, Type: idp.ClientType(f.Type),
		RedirectURIs: lines(f.RedirectURIs), PostLogoutRedirectURIs: lines(f.PostLogoutURIs), BackchannelLogoutURI: f.BackchannelURI,
		MinLevel: f.MinLevel, AllowedScopes: lines(f.Scopes), ThirdParty: f.ThirdParty, Audience: f.Audience})
	p := c.page(r, "clients", clientsTitle, nil)
	d, derr := c.clientsData(r, sub)
	if derr != nil {
		httpx.WriteError(w, r, derr)
		return
	}
	if err != nil {
		d.Form = f
		p.Data = d
		c.fail(w, r, err, "console/clients", p)
		return
	}
	d.NewSecret, d.SecretFor = secret, client.ID
	p.Data = d
	saved := i18n.T("应用已登记；客户端密钥只显示这一次，请立即妥善保存", "Registered; the client secret is shown this once only — store it now")
	p.Flash = &saved
	c.render(w, r, http.StatusCreated, "console/clients", p)
}

func (c *Console) disableClient(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if err := c.IdP.DisableClient(r.Context(), sub, r.PathValue("id")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/clients?ok=1", http.StatusSeeOther)
}

func (c *Console) rotateClientSecret(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	id := r.PathValue("id")
	secret, err := c.IdP.RotateSecret(r.Context(), sub, id)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	p := c.page(r, "clients", clientsTitle, nil)
	d, err := c.clientsData(r, sub)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	d.NewSecret, d.SecretFor = secret, id
	p.Data = d
	c.render(w, r, http.StatusOK, "console/clients", p)
}

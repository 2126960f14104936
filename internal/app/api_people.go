package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/dgov/dgov/internal/api"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// The JSON API's online services (api/services.go) need to know who a person's access token
// speaks for (api.People); an item's blank form comes from govservice.Applications.BlankForm.

// apiPeople is api.People over the node's OpenID provider and identity engine.
//
// The provider's ValidateAccessToken accepts only a system client's own token (the exchange
// gateway's callers) and refuses a person's; so a person's token is checked the way any
// resource server may check it, by the provider's UserInfo endpoint (OpenID Connect Core
// §5.3), called in process. It answers only for a live token with the openid scope of a
// person, never for a client-credentials token.
type apiPeople struct{ a *App }

// errEnterpriseScope: the provider names the enterprise a person acts for only to tokens
// with the profile scope.
var errEnterpriseScope = &i18n.Error{Code: "api.profile_scope_required", Status: http.StatusForbidden,
	Msg: i18n.T("以企业身份办事的访问令牌须包含 profile 范围", "an access token acting for an enterprise needs the profile scope")}

// userinfo is the part of the provider's UserInfo answer the API needs.
type userinfo struct {
	Subject    string `json:"sub"`
	Kind       string `json:"dgov_kind"` // citizen | enterprise | staff
	Enterprise *struct {
		ID string `json:"id"`
	} `json:"dgov_enterprise"`
}

// SubjectForToken implements api.People: the applicant a portal session of the same person
// would apply as (portal.Services.applicant), read afresh, so a membership ended or an
// account disabled since the token was issued counts at once.
func (p apiPeople) SubjectForToken(ctx context.Context, bearer string) (govservice.Applicant, error) {
	// A system client's own token is valid, but it is nobody's: refuse it as such.
	if _, _, err := p.a.IdP.ValidateAccessToken(ctx, bearer); err == nil {
		return govservice.Applicant{}, api.ErrPersonOnly
	}
	ui, err := p.userinfo(ctx, bearer)
	if err != nil {
		return govservice.Applicant{}, err
	}
	var actingFor string
	switch ui.Kind {
	case identity.KindCitizen:
	case identity.KindEnterprise:
		if ui.Enterprise == nil || ui.Enterprise.ID == "" {
			return govservice.Applicant{}, errEnterpriseScope
		}
		actingFor = ui.Enterprise.ID
	default: // staff, through the console's single sign-on
		return govservice.Applicant{}, api.ErrPersonOnly
	}
	id := p.a.Identity
	acc, err := id.GetAccount(ctx, ui.Subject)
	if err != nil {
		return govservice.Applicant{}, unauthorizedUnlessFailure(err)
	}
	sub, err := id.Subject(ctx, acc.ID, actingFor)
	if err != nil {
		return govservice.Applicant{}, unauthorizedUnlessFailure(err)
	}
	if acc.Level < identity.LevelRealName {
		return govservice.Applicant{}, api.ErrRealNameRequired
	}
	ap := govservice.Applicant{Subject: sub, Name: acc.Name, Phone: acc.Mobile}
	if ap.IDNumber, err = id.VerifiedIDNumber(ctx, acc.ID); err != nil {
		return govservice.Applicant{}, fmt.Errorf("applicant's ID number: %w", err)
	}
	if actingFor != "" {
		e, err := id.GetEnterprise(ctx, actingFor)
		if err != nil {
			return govservice.Applicant{}, err
		}
		ap.Enterprise = &govservice.EnterpriseRef{Name: e.Name, CreditCode: e.CreditCode}
	}
	return ap, nil
}

// unauthorizedUnlessFailure: an account or membership that no longer stands makes the
// token worthless (401); a failure stays a failure.
func unauthorizedUnlessFailure(err error) error {
	if e, ok := i18n.As(err); ok && e.HTTPStatus() < 500 {
		return i18n.ErrUnauthorized.Wrap(err)
	}
	return err
}

// maxUserinfo bounds the provider's answer; it is a few claims.
const maxUserinfo = 64 << 10

// userinfo asks the provider's UserInfo endpoint, in process, about bearer.
func (p apiPeople) userinfo(ctx context.Context, bearer string) (userinfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.a.IdP.Issuer()+"/userinfo", nil)
	if err != nil {
		return userinfo{}, fmt.Errorf("userinfo request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	var res captured
	p.a.IdP.Handler().ServeHTTP(&res, req)
	if res.status != http.StatusOK {
		// 401 for a token that does not decrypt, 403 for one expired, revoked, without the
		// openid scope or of a system client: to the caller, all an invalid token.
		return userinfo{}, i18n.ErrUnauthorized.Wrap(errors.New("userinfo answered " + strconv.Itoa(res.status)))
	}
	var ui userinfo
	if err := json.Unmarshal(res.body.Bytes(), &ui); err != nil || ui.Subject == "" {
		return userinfo{}, fmt.Errorf("userinfo answer: %w", errors.Join(err, errors.New("no subject")))
	}
	return ui, nil
}

// captured is a response written in process.
type captured struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captured) Header() http.Header {
	if c.header == nil {
		c.header = http.Header{}
	}
	return c.header
}

func (c *captured) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captured) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	if c.body.Len()+len(b) > maxUserinfo {
		return 0, errors.New("userinfo answer too large")
	}
	return c.body.Write(b)
}

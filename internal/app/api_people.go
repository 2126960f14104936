package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/dgov/dgov/internal/api"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// The JSON API's online services (api/services.go) need to know who a person's access token
// speaks for (api.People); an item's blank form comes from govservice.Applications.BlankForm.

// apiPeople is api.People over the node's OpenID provider and identity engine.
//
// A person's token is checked in process by the provider (idp.Provider.ValidatePersonToken):
// live, of an enabled client, of a citizen — never a system client's or a staff member's. As
// the provider's UserInfo endpoint would (OpenID Connect Core §5.3), it must carry the openid
// scope.
type apiPeople struct{ a *App }

// errEnterpriseScope: the provider names the enterprise a person acts for only to tokens
// with the profile scope.
var errEnterpriseScope = &i18n.Error{Code: "api.profile_scope_required", Status: http.StatusForbidden,
	Msg: i18n.T("以企业身份办事的访问令牌须包含 profile 范围", "an access token acting for an enterprise needs the profile scope")}

// SubjectForToken implements api.People: the applicant a portal session of the same person
// would apply as (portal.Services.applicant), read afresh, so a membership ended or an
// account disabled since the token was issued counts at once.
func (p apiPeople) SubjectForToken(ctx context.Context, bearer string) (govservice.Applicant, error) {
	tok, err := p.a.IdP.ValidatePersonToken(ctx, bearer)
	switch {
	case errors.Is(err, idp.ErrNotPersonToken): // a system client's own token, or staff's
		return govservice.Applicant{}, api.ErrPersonOnly
	case err != nil:
		return govservice.Applicant{}, i18n.ErrUnauthorized.Wrap(err)
	case !slices.Contains(tok.Scopes, "openid"):
		return govservice.Applicant{}, i18n.ErrUnauthorized.Wrap(errors.New("access token without the openid scope"))
	}
	actingFor := tok.ActingFor
	if actingFor != "" && !slices.Contains(tok.Scopes, "profile") {
		return govservice.Applicant{}, errEnterpriseScope
	}
	id := p.a.Identity
	acc, err := id.GetAccount(ctx, tok.Subject)
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

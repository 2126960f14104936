package app

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/console"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/portal"
)

// openIDP builds the OpenID Connect provider at <public URL>/oidc over the identity engine.
func (a *App) openIDP() error {
	issuer := a.Cfg.PublicURL() + "/oidc"
	insecure := strings.HasPrefix(issuer, "http://")
	var key [32]byte
	copy(key[:], crypto.DeriveKey(a.master, "dgov oidc crypto v1", 32))
	p, err := idp.New(idp.Config{
		DB: a.DB, Fields: a.Keys.FieldCipher(), Issuer: issuer, Users: users{a.Identity, a.Org},
		LoginURL:      func(id string) string { return "/login?authRequestID=" + id },
		Policy:        a.Policy,
		Audit:         a.auditIDP,
		Now:           a.Now,
		CryptoKey:     key,
		AllowInsecure: insecure,
		EndSession:    a.endSession,
		SessionAlive:  a.sessionAlive,
		Logger:        a.Log,
	})
	if err != nil {
		return err
	}
	a.IdP = p
	return nil
}

func (a *App) auditIDP(ctx context.Context, actor, action, object string, detail map[string]any) error {
	_, err := a.Audit.Append(ctx, audit.Entry{Actor: actor, Action: action, Object: object, Outcome: audit.OutcomeOK,
		IP: httpx.ClientIPFrom(ctx), RequestID: httpx.RequestID(ctx), Detail: detail})
	return err
}

// endSession ends the single sign-on session an application's logout names: a citizen's
// (identity) or a staff member's console session, whichever it is.
func (a *App) endSession(ctx context.Context, sessionID string) error {
	if err := a.Identity.EndSession(ctx, sessionID); err != nil {
		return err
	}
	return console.NewSessions(a.DB, a.Now).DeleteByKey(ctx, sessionID)
}

// sessionAlive tells the provider whether a citizen's or staff member's sign-in still stands.
func (a *App) sessionAlive(ctx context.Context, sessionID string) (bool, error) {
	if ok, err := a.Identity.SessionAlive(ctx, sessionID); err != nil || ok {
		return ok, err
	}
	return console.NewSessions(a.DB, a.Now).Alive(ctx, sessionID)
}

// staffPrefix marks a staff member's subject at the provider ("staff-<id>"; subjects may
// not contain ':'), so citizens' and staff's identifiers never mix.
const staffPrefix = "staff-"

// users answers the provider's questions about citizens and enterprises (identity) and
// civil servants (org).
type users struct {
	id  *identity.Service
	org *org.Service
}

func (u users) Claims(ctx context.Context, subject, actingFor string) (idp.UserClaims, error) {
	if staffID, ok := strings.CutPrefix(subject, staffPrefix); ok {
		if actingFor != "" {
			return idp.UserClaims{}, i18n.ErrForbidden
		}
		s, err := u.org.Subject(ctx, staffID)
		if err != nil {
			return idp.UserClaims{}, err
		}
		// Staff are identified by their employer: real-name level.
		return idp.UserClaims{Subject: subject, Kind: "staff", Name: s.Name, Level: identity.LevelRealName, Division: s.Division}, nil
	}
	c, err := u.id.Claims(ctx, subject, actingFor)
	if err != nil {
		return idp.UserClaims{}, err
	}
	out := idp.UserClaims{Subject: c.Subject, Kind: c.Kind, Name: c.Name, Level: c.Level, Division: c.Division}
	if e := c.Enterprise; e != nil {
		out.Enterprise = &idp.EnterpriseClaims{ID: e.ID, CreditCode: e.CreditCode, Name: e.Name, Role: e.Role}
	}
	return out, nil
}

// loginProvider is the provider as the portal's login pages see it.
type loginProvider struct{ p *idp.Provider }

func (l loginProvider) LoginRequest(ctx context.Context, id string) (portal.LoginRequest, error) {
	ar, err := l.p.AuthRequest(ctx, id)
	if err != nil {
		return portal.LoginRequest{}, err
	}
	return portal.LoginRequest{ClientName: ar.ClientName, RequiredLevel: ar.RequiredLevel, Staff: ar.Audience == idp.AudienceStaff}, nil
}

// audience refuses to answer an application for the wrong kind of person: a citizen's login
// never completes a staff application, nor a staff login a citizens' one.
func (l loginProvider) audience(ctx context.Context, id, want string) error {
	ar, err := l.p.AuthRequest(ctx, id)
	if err != nil {
		return err
	}
	if ar.Audience != want {
		return i18n.ErrForbidden
	}
	return nil
}

// CompleteStaff answers a staff application from a console session (console.StaffSSO).
func (l loginProvider) CompleteStaff(ctx context.Context, id string, sub authz.Subject, sessionKey string, authTime time.Time) (string, error) {
	if err := l.audience(ctx, id, idp.AudienceStaff); err != nil {
		return "", err
	}
	if err := l.p.CompleteAuthRequest(ctx, id, staffPrefix+sub.ID, "", sessionKey, identity.LevelRealName, []string{identity.AMRPassword}, authTime); err != nil {
		return "", err
	}
	return l.p.CallbackURL(ctx, id), nil
}

// LogoutStaff logs the console session's applications out.
func (l loginProvider) LogoutStaff(ctx context.Context, sessionKey string) error {
	return l.p.LogoutSession(ctx, sessionKey)
}

// Complete answers the application with the session's subject; auth_time is when the person
// signed in, not now, so applications can apply max_age to a single sign-on.
func (l loginProvider) Complete(ctx context.Context, id string, ses identity.Session) (string, error) {
	if err := l.audience(ctx, id, idp.AudienceCitizen); err != nil {
		return "", err
	}
	if err := l.p.CompleteAuthRequest(ctx, id, ses.AccountID, ses.ActingEnterpriseID, ses.ID, ses.Level, ses.AMR, ses.CreatedAt); err != nil {
		return "", err
	}
	return l.p.CallbackURL(ctx, id), nil
}

func (l loginProvider) Logout(ctx context.Context, sessionID string) error {
	return l.p.LogoutSession(ctx, sessionID)
}

// oidcSweepArgs is the periodic clean-up of expired authorization requests, codes and tokens.
type oidcSweepArgs struct{}

func (oidcSweepArgs) Kind() string { return "oidc_sweep" }

// Apps lists the applications a person signed in to (portal.AppGrants).
func (l loginProvider) Apps(ctx context.Context, subject string) ([]portal.App, error) {
	gs, err := l.p.Grants(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := make([]portal.App, len(gs))
	for i, g := range gs {
		out[i] = portal.App{ClientID: g.ClientID, ClientName: g.ClientName, Scopes: g.Scopes, LastGranted: g.LastGranted}
	}
	return out, nil
}

// RevokeApp withdraws an application's tokens for the person.
func (l loginProvider) RevokeApp(ctx context.Context, subject, clientID string) error {
	return l.p.RevokeGrant(ctx, subject, clientID)
}

// ConsentNeeded, GrantConsent and Deny make loginProvider a portal.Consenter.
func (l loginProvider) ConsentNeeded(ctx context.Context, id, subject string) (bool, []string, error) {
	return l.p.ConsentNeeded(ctx, id, subject)
}

func (l loginProvider) GrantConsent(ctx context.Context, id, subject string) error {
	return l.p.GrantConsent(ctx, id, subject)
}

func (l loginProvider) Deny(w http.ResponseWriter, r *http.Request, id, subject string) {
	l.p.DenyAuthRequest(w, r, id, subject)
}

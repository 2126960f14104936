package idp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// AuthRequestInfo is what the login page needs to know of a pending login.
type AuthRequestInfo struct {
	ID         string
	ClientID   string
	ClientName string
	Scopes     []string
	// RequiredLevel is the assurance level the login must reach: the client's minimum, or
	// more if the client asked for it with acr_values=urn:dgov:loa:N. A session below it
	// must step up before CompleteAuthRequest.
	RequiredLevel int
	// Prompt holds "login" (authenticate again even with a session), "consent",
	// "select_account" as the client asked.
	Prompt []string
	// MaxAge, when set, is how old the authentication may be; CompleteAuthRequest refuses an
	// older authTime.
	MaxAge    *time.Duration
	LoginHint string
	ExpiresAt time.Time
	// Audience is who signs in to the client: AudienceCitizen or AudienceStaff.
	Audience string
}

// AuthRequest describes a pending login (the page at LoginURL calls it with the id it got).
func (p *Provider) AuthRequest(ctx context.Context, id string) (AuthRequestInfo, error) {
	a, err := p.authRequest(ctx, p.cfg.DB, id)
	if errors.Is(err, sql.ErrNoRows) {
		return AuthRequestInfo{}, ErrAuthRequestNotFound
	}
	if err != nil {
		return AuthRequestInfo{}, fmt.Errorf("auth request %s: %w", id, err)
	}
	c, err := p.client(ctx, p.cfg.DB, a.ClientID)
	if err != nil {
		return AuthRequestInfo{}, fmt.Errorf("auth request %s: client: %w", id, err)
	}
	if c.Disabled {
		return AuthRequestInfo{}, ErrClientDisabled
	}
	info := AuthRequestInfo{ID: a.ID, ClientID: c.ID, ClientName: c.Name, Scopes: a.Scopes,
		RequiredLevel: a.RequiredLevel, Prompt: a.Prompt, LoginHint: a.LoginHint, ExpiresAt: a.CreatedAt.Add(authRequestTTL),
		Audience: c.Audience}
	if a.MaxAge != nil {
		d := time.Duration(*a.MaxAge) * time.Second
		info.MaxAge = &d
	}
	return info, nil
}

// CompleteAuthRequest records who logged in for a pending login: subject (acting for the
// enterprise actingFor, or ""), in the SSO session sessionID, authenticated at level with the
// methods amr at authTime. Then the browser goes to CallbackURL. It refuses a level below
// the request's RequiredLevel (ErrLevelTooLow: the page must step up) and an authTime older
// than max_age (ErrReauthRequired).
func (p *Provider) CompleteAuthRequest(ctx context.Context, id, subject, actingFor, sessionID string, level int, amr []string, authTime time.Time) error {
	if subject == "" || sessionID == "" || strings.Contains(subject, ":") {
		return i18n.ErrUnauthorized
	}
	a, err := p.authRequest(ctx, p.cfg.DB, id)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrAuthRequestNotFound
	}
	if err != nil {
		return fmt.Errorf("complete auth request %s: %w", id, err)
	}
	if need, _, err := p.ConsentNeeded(ctx, id, subject); err == nil && need {
		return ErrConsentRequired
	}
	if a.IsDone {
		return ErrAuthRequestDone
	}
	c, err := p.client(ctx, p.cfg.DB, a.ClientID)
	if err != nil {
		return fmt.Errorf("complete auth request %s: client: %w", id, err)
	}
	if c.Disabled {
		return ErrClientDisabled
	}
	uc, err := p.cfg.Users.Claims(ctx, subject, actingFor)
	if err != nil {
		return fmt.Errorf("complete auth request %s: %w", id, err)
	}
	// The token's level is what this login proved, capped by what the account has reached.
	if uc.Level < level {
		level = uc.Level
	}
	if level < a.RequiredLevel {
		e := i18n.Errorf(http.StatusForbidden, ErrLevelTooLow.Code,
			"「%s」要求 L%d 级身份认证，当前会话为 L%d 级，请提升认证级别后继续",
			"%q requires authentication level L%d; this session is at L%d — step up to continue",
			c.Name, a.RequiredLevel, level)
		return e
	}
	now := p.now()
	if authTime.IsZero() {
		authTime = now
	}
	if a.MaxAge != nil && now.Sub(authTime) > time.Duration(*a.MaxAge)*time.Second {
		return ErrReauthRequired
	}
	sid := sidOf(sessionID)
	enc, err := p.cfg.Fields.Seal(sessionID, "idp.sessions:"+sid+":session_id")
	if err != nil {
		return fmt.Errorf("complete auth request %s: %w", id, err)
	}
	err = p.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO idp_sessions (sid, session_enc, subject, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (sid) DO NOTHING`, sid, enc, subject, now); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `UPDATE idp_auth_requests SET subject = ?, acting_for = ?, sid = ?, level = ?,
			auth_time = ?, amr = ?, done = ? WHERE id = ? AND done = ?`,
			subject, actingFor, sid, level, db.Now(authTime), jsonList(amr), true, id, false)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrAuthRequestDone
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrAuthRequestDone) {
			return ErrAuthRequestDone
		}
		return fmt.Errorf("complete auth request %s: %w", id, err)
	}
	detail := map[string]any{"level": level, "amr": amr}
	if actingFor != "" {
		detail["acting_for"] = actingFor
	}
	p.audit(ctx, subject, "oidc.authorize", "oidc_client:"+c.ID, detail)
	return nil
}

// ErrConsentRequired: a third-party application may not be answered before the person allowed it.
var ErrConsentRequired = &i18n.Error{Code: "idp.consent_required", Status: http.StatusForbidden,
	Msg: i18n.T("该第三方应用尚未获得您的授权同意", "you have not allowed this third-party application yet")}

// CallbackURL is where the login page sends the browser once CompleteAuthRequest succeeded
// (op.AuthCallbackURL); the provider then redirects to the client with a code.
func (p *Provider) CallbackURL(ctx context.Context, id string) string {
	return op.AuthCallbackURL(p.op)(op.ContextWithIssuer(ctx, p.cfg.Issuer), id)
}

// exactRedirectURIs refuses, without redirecting, an authorization request whose
// redirect_uri is not registered byte for byte. zitadel would let a native client's loopback
// URI vary in port (RFC 8252 §7.3); dgov registers exact URIs only.
func (p *Provider) exactRedirectURIs(next http.Handler) http.Handler {
	authorize := op.DefaultEndpoints.Authorization.Relative()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == authorize {
			if err := r.ParseForm(); err != nil {
				http.Error(w, "invalid request", http.StatusBadRequest)
				return
			}
			clientID, redirect := r.Form.Get("client_id"), r.Form.Get("redirect_uri")
			if clientID != "" && redirect != "" {
				c, err := p.client(r.Context(), p.cfg.DB, clientID)
				if err == nil && !slices.Contains(c.RedirectURIs, redirect) {
					http.Error(w, "redirect_uri is not registered for this client", http.StatusBadRequest)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Sweep deletes what has expired for good: auth requests (and their codes) a day after
// creation, tokens a day after expiry, sessions without tokens. Run it periodically.
func (p *Provider) Sweep(ctx context.Context) (int64, error) {
	cutoff := p.now().Add(-24 * time.Hour)
	var total int64
	err := p.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		for _, q := range []string{
			`DELETE FROM idp_auth_requests WHERE created_at < ?`,
			`DELETE FROM idp_access_tokens WHERE expires_at < ?`,
			`DELETE FROM idp_refresh_tokens WHERE expires_at < ?`,
			`DELETE FROM idp_sessions WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM idp_refresh_tokens r WHERE r.sid = idp_sessions.sid AND r.revoked_at IS NULL)
				AND NOT EXISTS (SELECT 1 FROM idp_access_tokens a WHERE a.sid = idp_sessions.sid AND a.revoked_at IS NULL)`,
		} {
			res, err := tx.Exec(ctx, q, cutoff)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("idp sweep: %w", err)
	}
	return total, nil
}

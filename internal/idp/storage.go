package idp

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
)

// storage is zitadel's op.Storage on our tables.
type storage struct{ p *Provider }

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func tokenHash(s string) string { return crypto.SM3Hex([]byte(s)) }

// sidOf is the session id relying parties see (ID token and logout token "sid"): a hash, so
// that the SSO session's own id — which may be a cookie secret — never leaves the node.
func sidOf(sessionID string) string {
	return crypto.SM3Hex([]byte("dgov oidc sid\x00" + sessionID))[:32]
}

// ACR values: urn:dgov:loa:N for assurance level N.
const acrPrefix = "urn:dgov:loa:"

func acrOf(level int) string { return acrPrefix + strconv.Itoa(level) }

func levelOfACR(acr string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(acr, acrPrefix))
	if !strings.HasPrefix(acr, acrPrefix) || err != nil || n < 0 || n > 3 {
		return 0, false
	}
	return n, true
}

// ---- auth requests ----

type authRequest struct {
	ID, ClientID, RedirectURI, State, Nonce string
	Scopes, Prompt, AMR                     []string
	ResponseType                            oidc.ResponseType
	ResponseMode                            oidc.ResponseMode
	CodeChallenge, CodeChallengeMethod      string
	MaxAge                                  *int
	LoginHint                               string
	RequiredLevel                           int
	Subject, ActingFor, SID                 string
	Level                                   int
	AuthTime                                time.Time
	IsDone                                  bool
	CreatedAt                               time.Time
	codeHash                                string // set when loaded by code
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string { return a.ID }
func (a *authRequest) GetACR() string {
	if !a.IsDone {
		return ""
	}
	return acrOf(a.Level)
}
func (a *authRequest) GetAMR() []string       { return a.AMR }
func (a *authRequest) GetAudience() []string  { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.AuthTime }
func (a *authRequest) GetClientID() string    { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: oidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.Subject }
func (a *authRequest) Done() bool                         { return a.IsDone }

const authRequestColumns = `id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, required_level, subject, acting_for,
	sid, level, auth_time, amr, done, created_at`

func scanAuthRequest(r interface{ Scan(...any) error }) (*authRequest, error) {
	var a authRequest
	var scopes, prompt, amr, rt, rm string
	var maxAge sql.NullInt64
	var subject sql.NullString
	var authTime sql.NullTime
	if err := r.Scan(&a.ID, &a.ClientID, &a.RedirectURI, &scopes, &a.State, &a.Nonce, &rt, &rm,
		&a.CodeChallenge, &a.CodeChallengeMethod, &prompt, &maxAge, &a.LoginHint, &a.RequiredLevel, &subject,
		&a.ActingFor, &a.SID, &a.Level, &authTime, &amr, &a.IsDone, &a.CreatedAt); err != nil {
		return nil, err
	}
	a.Scopes, a.Prompt, a.AMR = parseList(scopes), parseList(prompt), parseList(amr)
	a.ResponseType, a.ResponseMode = oidc.ResponseType(rt), oidc.ResponseMode(rm)
	if maxAge.Valid {
		v := int(maxAge.Int64)
		a.MaxAge = &v
	}
	a.Subject, a.AuthTime = subject.String, authTime.Time
	return &a, nil
}

// authRequest loads a live (not expired) auth request.
func (p *Provider) authRequest(ctx context.Context, q db.Querier, id string) (*authRequest, error) {
	a, err := scanAuthRequest(q.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM idp_auth_requests WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	if p.now().Sub(a.CreatedAt) > authRequestTTL {
		return nil, sql.ErrNoRows
	}
	return a, nil
}

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	p := s.p
	c, err := p.client(ctx, p.cfg.DB, req.ClientID)
	if err != nil || c.Disabled {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown or disabled client")
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if c.RequirePKCE && req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("this client must use PKCE (code_challenge with S256)")
	}
	// There is no way to check an SSO session without the login page; a client that asks for
	// no interaction is told a login is required (OIDC Core §3.1.2.6).
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	required := c.MinLevel
	for _, acr := range req.ACRValues {
		if n, ok := levelOfACR(acr); ok && n > required {
			required = n
		}
	}
	var maxAge any
	if req.MaxAge != nil {
		maxAge = int64(*req.MaxAge)
	}
	a := &authRequest{
		ID: db.NewID(), ClientID: c.ID, RedirectURI: req.RedirectURI, Scopes: req.Scopes, State: req.State,
		Nonce: req.Nonce, ResponseType: req.ResponseType, ResponseMode: req.ResponseMode,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt: req.Prompt, LoginHint: req.LoginHint, RequiredLevel: required, CreatedAt: p.now(),
	}
	if req.MaxAge != nil {
		v := int(*req.MaxAge)
		a.MaxAge = &v
	}
	_, err = p.cfg.DB.Exec(ctx, `INSERT INTO idp_auth_requests (id, client_id, redirect_uri, scopes, state, nonce,
		response_type, response_mode, code_challenge, code_challenge_method, prompt, max_age, login_hint,
		required_level, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.ClientID, a.RedirectURI, jsonList(a.Scopes), a.State, a.Nonce, string(a.ResponseType),
		string(a.ResponseMode), a.CodeChallenge, a.CodeChallengeMethod, jsonList(a.Prompt), maxAge, a.LoginHint,
		a.RequiredLevel, a.CreatedAt)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return a, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := s.p.authRequest(ctx, s.p.cfg.DB, id)
	if err != nil {
		return nil, fmt.Errorf("auth request %s: not found or expired", id)
	}
	return a, nil
}

// AuthRequestByCode finds the login a code was issued for. The code is spent only when
// tokens are issued (redeemCode), so a wrong PKCE verifier does not burn it; a code that was
// spent and is presented again has leaked, and every token issued from it is revoked
// (RFC 6749 §4.1.2).
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	p := s.p
	h := tokenHash(code)
	var reqID string
	var created time.Time
	var used sql.NullTime
	err := p.cfg.DB.QueryRow(ctx, `SELECT auth_request_id, created_at, used_at FROM idp_codes WHERE code_hash = ?`, h).
		Scan(&reqID, &created, &used)
	if err != nil {
		return nil, errors.New("unknown code")
	}
	if used.Valid {
		if err := p.codeReused(ctx, reqID); err != nil {
			return nil, err
		}
		return nil, errCodeReuse
	}
	if p.now().Sub(created) > codeTTL {
		return nil, errors.New("code expired")
	}
	a, err := scanAuthRequest(p.cfg.DB.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM idp_auth_requests WHERE id = ?`, reqID))
	if err != nil {
		return nil, fmt.Errorf("code: auth request: %w", err)
	}
	if !a.IsDone {
		return nil, errors.New("code: login not completed")
	}
	a.codeHash = h
	return a, nil
}

var errCodeReuse = errors.New("code already used; the tokens issued from it are revoked")

// codeReused revokes what a code's login yielded.
func (p *Provider) codeReused(ctx context.Context, reqID string) error {
	now := p.now()
	if err := p.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return p.revokeTx(ctx, tx, "auth_request_id", reqID, now) }); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	p.audit(ctx, "system", "oidc.code_reuse", "oidc_auth_request:"+reqID, nil)
	return nil
}

// redeemCode spends the code of g in the transaction that issues its tokens: of two
// concurrent exchanges only one spends it; the other is reuse.
func (p *Provider) redeemCode(ctx context.Context, tx *db.Tx, codeHash string) (bool, error) {
	if codeHash == "" {
		return true, nil
	}
	res, err := tx.Exec(ctx, `UPDATE idp_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL`, p.now(), codeHash)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	// auth_request_id is unique: one code per login, a second callback fails.
	_, err := s.p.cfg.DB.Exec(ctx, `INSERT INTO idp_codes (code_hash, auth_request_id, created_at) VALUES (?, ?, ?)`,
		tokenHash(code), id, s.p.now())
	if err != nil {
		return oidc.ErrInvalidRequest().WithDescription("the login was already answered").WithParent(err)
	}
	return nil
}

// DeleteAuthRequest is called once tokens were issued. The request and its code stay until
// Sweep removes them, so that a second use of the code is recognised as reuse.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

// ---- tokens ----

// tokenGrant is what every token row carries, whatever the grant.
type tokenGrant struct {
	clientID, subject, actingFor, sid, authRequestID string
	codeHash                                         string // the code to spend, for a code exchange
	scopes, audience, amr                            []string
	level                                            int
	authTime                                         time.Time
}

func grantOf(req op.TokenRequest) (tokenGrant, error) {
	switch r := req.(type) {
	case *authRequest:
		return tokenGrant{clientID: r.ClientID, subject: r.Subject, actingFor: r.ActingFor, sid: r.SID,
			authRequestID: r.ID, scopes: r.Scopes, audience: r.GetAudience(), amr: r.AMR, level: r.Level,
			authTime: r.AuthTime, codeHash: r.codeHash}, nil
	case *refreshRequest:
		return r.g, nil
	case *clientCredentialsRequest:
		return tokenGrant{clientID: r.clientID, subject: r.clientID, scopes: r.scopes, audience: []string{r.clientID}}, nil
	default:
		return tokenGrant{}, oidc.ErrUnsupportedGrantType()
	}
}

func (p *Provider) insertAccessToken(ctx context.Context, tx *db.Tx, g tokenGrant, refreshID, familyID string) (string, time.Time, error) {
	id := randomToken()
	now := p.now()
	exp := now.Add(p.cfg.AccessTokenTTL)
	_, err := tx.Exec(ctx, `INSERT INTO idp_access_tokens (id_hash, client_id, subject, acting_for, scopes, audience,
		level, sid, auth_request_id, refresh_id, family_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		tokenHash(id), g.clientID, g.subject, g.actingFor, jsonList(g.scopes), jsonList(g.audience), g.level, g.sid,
		g.authRequestID, refreshID, familyID, now, exp)
	if err != nil {
		return "", time.Time{}, err
	}
	return id, exp, nil
}

// linkSession records that g's client got tokens in g's SSO session (for logout).
func (p *Provider) linkSession(ctx context.Context, tx *db.Tx, g tokenGrant) error {
	if g.sid == "" {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO idp_session_clients (sid, client_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (sid, client_id) DO NOTHING`, g.sid, g.clientID, p.now())
	return err
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, err := grantOf(req)
	if err != nil {
		return "", time.Time{}, err
	}
	var id string
	var exp time.Time
	spent := true
	err = s.p.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if spent, err = s.p.redeemCode(ctx, tx, g.codeHash); err != nil || !spent {
			return err
		}
		if err := s.p.linkSession(ctx, tx, g); err != nil {
			return err
		}
		id, exp, err = s.p.insertAccessToken(ctx, tx, g, "", "")
		return err
	})
	if err == nil && !spent {
		if err := s.p.codeReused(ctx, g.authRequestID); err != nil {
			return "", time.Time{}, err
		}
		return "", time.Time{}, oidc.ErrInvalidGrant().WithParent(errCodeReuse)
	}
	if err != nil {
		return "", time.Time{}, oidc.ErrServerError().WithParent(err)
	}
	s.p.auditGrant(ctx, g, "")
	return id, exp, nil
}

// auditGrant records a token grant: who got tokens for whom, by which grant, with which scopes.
func (p *Provider) auditGrant(ctx context.Context, g tokenGrant, refreshed string) {
	kind, actor := "client_credentials", "client:"+g.clientID
	switch {
	case refreshed != "":
		kind, actor = "refresh_token", subjectActor(g.subject)
	case g.authRequestID != "":
		kind, actor = "authorization_code", subjectActor(g.subject)
	}
	detail := map[string]any{"grant": kind, "scopes": g.scopes}
	if g.actingFor != "" {
		detail["acting_for"] = g.actingFor
	}
	if g.level > 0 {
		detail["level"] = g.level
	}
	p.audit(ctx, actor, "oidc.token.grant", "oidc_client:"+g.clientID, detail)
}

var (
	errRefreshReuse = errors.New("refresh token reused; its family is revoked")
	errSessionEnded = errors.New("the sign-in session of this refresh token has ended")
)

// sessionStands asks SessionAlive about the SSO session behind sid (tokens without a session,
// such as client credentials, and providers without the hook, always stand).
func (p *Provider) sessionStands(ctx context.Context, sid string) bool {
	if p.cfg.SessionAlive == nil || sid == "" {
		return true
	}
	var enc []byte
	if err := p.cfg.DB.QueryRow(ctx, `SELECT session_enc FROM idp_sessions WHERE sid = ?`, sid).Scan(&enc); err != nil {
		return false // logged out (the row goes with LogoutSession) or unreadable: refuse
	}
	sessionID, err := p.cfg.Fields.Open(enc, "idp.sessions:"+sid+":session_id")
	if err != nil {
		return false
	}
	alive, err := p.cfg.SessionAlive(ctx, sessionID)
	return err == nil && alive
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	p := s.p
	g, err := grantOf(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	now := p.now()
	refresh := randomToken()
	var accessID string
	var exp time.Time
	var familyID string
	reused, codeSpent := false, true
	if current != "" && !p.sessionStands(ctx, g.sid) {
		// The sign-in ended: nothing more from this token family.
		if _, err := p.cfg.DB.Exec(ctx, `UPDATE idp_refresh_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL`,
			now, tokenHash(current)); err != nil {
			return "", "", time.Time{}, oidc.ErrServerError().WithParent(err)
		}
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithParent(errSessionEnded)
	}
	err = p.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if current == "" {
			if codeSpent, err = p.redeemCode(ctx, tx, g.codeHash); err != nil || !codeSpent {
				return err
			}
			familyID = db.NewID()
			if err := p.linkSession(ctx, tx, g); err != nil {
				return err
			}
		} else {
			// Rotation: the presented token must still be current; if another request rotated
			// it first, this is reuse.
			var oldID string
			if err := tx.QueryRow(ctx, `SELECT id, family_id FROM idp_refresh_tokens WHERE token_hash = ?`, tokenHash(current)).
				Scan(&oldID, &familyID); err != nil {
				return err
			}
			res, err := tx.Exec(ctx, `UPDATE idp_refresh_tokens SET rotated_at = ?
				WHERE id = ? AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > ?`, now, oldID, now)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				reused = true
				return p.revokeTx(ctx, tx, "family_id", familyID, now)
			}
			// The access token issued with the old refresh token goes with it.
			if _, err := tx.Exec(ctx, `UPDATE idp_access_tokens SET revoked_at = ? WHERE refresh_id = ? AND revoked_at IS NULL`, now, oldID); err != nil {
				return err
			}
		}
		refreshID := db.NewID()
		_, err := tx.Exec(ctx, `INSERT INTO idp_refresh_tokens (id, token_hash, family_id, client_id, subject, acting_for,
			scopes, audience, amr, auth_time, level, sid, auth_request_id, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			refreshID, tokenHash(refresh), familyID, g.clientID, g.subject, g.actingFor, jsonList(g.scopes),
			jsonList(g.audience), jsonList(g.amr), db.Now(g.authTime), g.level, g.sid, g.authRequestID, now,
			now.Add(p.cfg.RefreshTokenTTL))
		if err != nil {
			return err
		}
		accessID, exp, err = p.insertAccessToken(ctx, tx, g, refreshID, familyID)
		return err
	})
	if err == nil && !codeSpent {
		if err := p.codeReused(ctx, g.authRequestID); err != nil {
			return "", "", time.Time{}, err
		}
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithParent(errCodeReuse)
	}
	if reused && err == nil {
		p.audit(ctx, "system", "oidc.refresh_reuse", "oidc_token_family:"+familyID, map[string]any{"client": g.clientID})
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithParent(errRefreshReuse)
	}
	if err != nil {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithParent(err)
	}
	p.auditGrant(ctx, g, current)
	return accessID, refresh, exp, nil
}

// refreshRequest is a refresh token presented at the token endpoint.
type refreshRequest struct {
	g tokenGrant
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.g.amr }
func (r *refreshRequest) GetAudience() []string       { return r.g.audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.g.authTime }
func (r *refreshRequest) GetClientID() string         { return r.g.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.g.scopes }
func (r *refreshRequest) GetSubject() string          { return r.g.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.g.scopes = s }

type refreshRow struct {
	id, familyID     string
	g                tokenGrant
	expires          time.Time
	rotated, revoked bool
}

func (p *Provider) refreshByHash(ctx context.Context, q db.Querier, h string) (*refreshRow, error) {
	var r refreshRow
	var scopes, aud, amr string
	var rotated, revoked sql.NullTime
	err := q.QueryRow(ctx, `SELECT id, family_id, client_id, subject, acting_for, scopes, audience, amr, auth_time,
		level, sid, auth_request_id, expires_at, rotated_at, revoked_at FROM idp_refresh_tokens WHERE token_hash = ?`, h).
		Scan(&r.id, &r.familyID, &r.g.clientID, &r.g.subject, &r.g.actingFor, &scopes, &aud, &amr, &r.g.authTime,
			&r.g.level, &r.g.sid, &r.g.authRequestID, &r.expires, &rotated, &revoked)
	if err != nil {
		return nil, err
	}
	r.g.scopes, r.g.audience, r.g.amr = parseList(scopes), parseList(aud), parseList(amr)
	r.rotated, r.revoked = rotated.Valid, revoked.Valid
	return &r, nil
}

// TokenRequestByRefreshToken accepts a current refresh token. A rotated one presented again
// has leaked (or was stolen): its whole family — every refresh and access token descended
// from the same login — is revoked.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	p := s.p
	r, err := p.refreshByHash(ctx, p.cfg.DB, tokenHash(token))
	if err != nil {
		return nil, errors.New("invalid refresh token")
	}
	switch {
	case r.revoked:
		return nil, errors.New("refresh token revoked")
	case r.rotated:
		now := p.now()
		if err := p.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return p.revokeTx(ctx, tx, "family_id", r.familyID, now) }); err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		p.audit(ctx, "system", "oidc.refresh_reuse", "oidc_token_family:"+r.familyID, map[string]any{"client": r.g.clientID})
		return nil, errRefreshReuse
	case !p.now().Before(r.expires):
		return nil, errors.New("refresh token expired")
	}
	return &refreshRequest{g: r.g}, nil
}

// revokeTx revokes every access and refresh token whose column col equals v
// (family_id, auth_request_id, sid).
func (p *Provider) revokeTx(ctx context.Context, tx *db.Tx, col, v string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE idp_access_tokens SET revoked_at = ? WHERE `+col+` = ? AND revoked_at IS NULL`, now, v); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE idp_refresh_tokens SET revoked_at = ? WHERE `+col+` = ? AND revoked_at IS NULL`, now, v)
	return err
}

func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	now := s.p.now()
	return s.p.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE idp_access_tokens SET revoked_at = ? WHERE subject = ? AND client_id = ? AND revoked_at IS NULL`, now, userID, clientID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE idp_refresh_tokens SET revoked_at = ? WHERE subject = ? AND client_id = ? AND revoked_at IS NULL`, now, userID, clientID)
		return err
	})
}

// TerminateSessionFromRequest answers end_session: with an id_token_hint that names an SSO
// session, that session ends everywhere (LogoutSession, back-channel logout, and the
// identity engine's session through Config.EndSession).
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	p := s.p
	if req.IDTokenHintClaims == nil || req.IDTokenHintClaims.SessionID == "" {
		if req.UserID != "" && req.ClientID != "" {
			return req.RedirectURI, s.TerminateSession(ctx, req.UserID, req.ClientID)
		}
		return req.RedirectURI, nil
	}
	sid := req.IDTokenHintClaims.SessionID
	var enc []byte
	err := p.cfg.DB.QueryRow(ctx, `SELECT session_enc FROM idp_sessions WHERE sid = ?`, sid).Scan(&enc)
	if errors.Is(err, sql.ErrNoRows) {
		return req.RedirectURI, nil // already logged out
	}
	if err != nil {
		return "", err
	}
	sessionID, err := p.cfg.Fields.Open(enc, "idp.sessions:"+sid+":session_id")
	if err != nil {
		return "", err
	}
	if err := p.LogoutSession(ctx, sessionID); err != nil {
		return "", err
	}
	if p.cfg.EndSession != nil {
		if err := p.cfg.EndSession(ctx, sessionID); err != nil {
			return "", err
		}
	}
	return req.RedirectURI, nil
}

// RevokeToken (RFC 7009). tokenOrID is an access token's id (zitadel decrypted the bearer),
// "rt:<hash>" from GetRefreshTokenInfo, or an unrecognised string (answered 200, §2.2).
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, _, clientID string) *oidc.Error {
	p := s.p
	now := p.now()
	if h, ok := strings.CutPrefix(tokenOrID, "rt:"); ok {
		r, err := p.refreshByHash(ctx, p.cfg.DB, h)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		if r.g.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		if err := p.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return p.revokeTx(ctx, tx, "family_id", r.familyID, now) }); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	var owner string
	err := p.cfg.DB.QueryRow(ctx, `SELECT client_id FROM idp_access_tokens WHERE id_hash = ?`, tokenHash(tokenOrID)).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if owner != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	if _, err := p.cfg.DB.Exec(ctx, `UPDATE idp_access_tokens SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL`,
		now, tokenHash(tokenOrID)); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, _ string, token string) (string, string, error) {
	h := tokenHash(token)
	r, err := s.p.refreshByHash(ctx, s.p.cfg.DB, h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", op.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	return r.g.subject, "rt:" + h, nil
}

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, _, err := s.p.keys.get(ctx)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{signingAlg}, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	_, pub, err := s.p.keys.get(ctx)
	return pub, err
}

// ---- clients ----

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p.client(ctx, s.p.cfg.DB, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errors.New("unknown client")
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if c.Disabled {
		return nil, errors.New("client disabled")
	}
	return opClient{c: c, p: s.p}, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.p.authenticate(ctx, id, secret)
	return err
}

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.p.authenticate(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	if c.Type != ClientService {
		return nil, errors.New("not a service client")
	}
	return opClient{c: c, p: s.p}, nil
}

type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return []string{r.clientID} }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }

// ClientCredentialsTokenRequest limits a system client to its allowed scopes: asking for
// another is an error (invalid_scope), asking for none grants them all.
func (s *storage) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (op.TokenRequest, error) {
	c, err := s.p.client(ctx, s.p.cfg.DB, id)
	if err != nil {
		return nil, oidc.ErrInvalidClient().WithParent(err)
	}
	if len(scopes) == 0 {
		scopes = c.AllowedScopes
	}
	for _, sc := range scopes {
		if !slices.Contains(c.AllowedScopes, sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q is not allowed for this client", sc)
		}
	}
	return &clientCredentialsRequest{clientID: id, scopes: slices.Clone(scopes)}, nil
}

// ---- claims ----

type accessRow struct {
	g         tokenGrant
	created   time.Time
	expires   time.Time
	revoked   bool
	isService bool
}

func (p *Provider) accessByID(ctx context.Context, id string) (*accessRow, error) {
	var r accessRow
	var scopes, aud string
	var revoked sql.NullTime
	err := p.cfg.DB.QueryRow(ctx, `SELECT client_id, subject, acting_for, scopes, audience, level, sid, created_at,
		expires_at, revoked_at FROM idp_access_tokens WHERE id_hash = ?`, tokenHash(id)).
		Scan(&r.g.clientID, &r.g.subject, &r.g.actingFor, &scopes, &aud, &r.g.level, &r.g.sid, &r.created, &r.expires, &revoked)
	if err != nil {
		return nil, err
	}
	r.g.scopes, r.g.audience = parseList(scopes), parseList(aud)
	r.revoked = revoked.Valid
	r.isService = r.g.subject == r.g.clientID
	return &r, nil
}

// liveAccess returns the token if it is neither revoked nor expired.
func (p *Provider) liveAccess(ctx context.Context, id, subject string) (*accessRow, error) {
	r, err := p.accessByID(ctx, id)
	if err != nil {
		return nil, errors.New("token invalid")
	}
	if r.revoked || !p.now().Before(r.expires) || r.g.subject != subject {
		return nil, errors.New("token invalid or expired")
	}
	return r, nil
}

func levelName(n int) string { return "L" + strconv.Itoa(n) }

// fillUserinfo sets the claims of g's subject. With the profile scope, who they are (name,
// division, the enterprise they act for); always, what kind of subject and how assured.
func (p *Provider) fillUserinfo(ctx context.Context, info *oidc.UserInfo, g tokenGrant) error {
	uc, err := p.cfg.Users.Claims(ctx, g.subject, g.actingFor)
	if err != nil {
		return err
	}
	level := g.level
	if uc.Level < level {
		level = uc.Level
	}
	info.Subject = g.subject
	info.AppendClaims("dgov_kind", uc.Kind)
	info.AppendClaims("dgov_level", levelName(level))
	if slices.Contains(g.scopes, oidc.ScopeProfile) {
		info.Name = uc.Name
		if uc.Division != "" {
			info.AppendClaims("dgov_division", uc.Division)
		}
		if uc.Enterprise != nil {
			info.AppendClaims("dgov_enterprise", uc.Enterprise)
		}
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	var g tokenGrant
	switch r := req.(type) {
	case *authRequest:
		g, _ = grantOf(r)
	case *refreshRequest:
		g = r.g
	default:
		return oidc.ErrUnsupportedGrantType()
	}
	if err := s.p.fillUserinfo(ctx, info, g); err != nil {
		return err
	}
	info.AppendClaims("acr", acrOf(g.level))
	if g.sid != "" {
		info.AppendClaims("sid", g.sid)
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	r, err := s.p.liveAccess(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if r.isService || !slices.Contains(r.g.scopes, oidc.ScopeOpenID) {
		return errors.New("token does not grant userinfo")
	}
	return s.p.fillUserinfo(ctx, info, r.g)
}

// SetIntrospectionFromToken (RFC 7662). A client may introspect the tokens issued to it; a
// service client (a resource server) may introspect any token.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	p := s.p
	r, err := p.activeAccess(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if r.g.clientID != clientID {
		caller, err := p.client(ctx, p.cfg.DB, clientID)
		if err != nil || caller.Type != ClientService || caller.Disabled {
			return errors.New("caller may not introspect this token")
		}
	}
	if !r.isService {
		info := new(oidc.UserInfo)
		if err := p.fillUserinfo(ctx, info, r.g); err != nil {
			return err
		}
		resp.SetUserInfo(info)
	}
	resp.Subject = r.g.subject
	resp.Scope = r.g.scopes
	resp.ClientID = r.g.clientID
	resp.TokenType = oidc.BearerToken
	resp.Audience = r.g.audience
	resp.Issuer = p.cfg.Issuer
	resp.IssuedAt = oidc.FromTime(r.created)
	resp.Expiration = oidc.FromTime(r.expires)
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// JWT profile grants and private_key_jwt client authentication are not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile is not supported")
}

func (s *storage) Health(ctx context.Context) error { return s.p.cfg.DB.Ping(ctx) }

// subjectActor names a person in the audit log as the rest of dgov does: staff:<id> for civil
// servants (subjects staff-<id>), citizen:<id> otherwise.
func subjectActor(subject string) string {
	if id, ok := strings.CutPrefix(subject, "staff-"); ok {
		return "staff:" + id
	}
	return "citizen:" + subject
}

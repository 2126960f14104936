// Package idp is dgov's OpenID Connect provider, served at /oidc (issue A1 item 4). The
// protocol is github.com/zitadel/oidc/v3/pkg/op; this package is its storage (clients, auth
// requests, codes, tokens, signing keys — all in our database), the bridge to the login page
// (AuthRequest, CompleteAuthRequest, CallbackURL), single logout (LogoutSession with
// back-channel logout) and the management of registered clients.
//
// Who the users are is not known here: the identity engine answers through the Users
// interface, which is all this package needs of it.
package idp

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the provider's tables. They reference no other engine's tables.
var Migrations = db.Migrations("idp", migrationFiles, "migrations")

// Users is what the provider needs of the identity engine.
type Users interface {
	// Claims describes subject, acting for the enterprise actingFor ("" when acting as
	// themselves). It fails when the subject is unknown or disabled, or may not act for
	// that enterprise; the provider then issues nothing.
	Claims(ctx context.Context, subject, actingFor string) (UserClaims, error)
}

// UserClaims is who a subject is, as told to relying parties.
type UserClaims struct {
	Subject  string
	Kind     string // "citizen", "enterprise" or "staff"
	Name     string
	Level    int    // identity assurance level the account has reached, 1..3
	Division string // GB/T 2260 code
	// Enterprise is set when the subject acts for an enterprise.
	Enterprise *EnterpriseClaims
}

// EnterpriseClaims is the enterprise a subject acts for and the role it acts in.
type EnterpriseClaims struct {
	ID         string `json:"id"`
	CreditCode string `json:"credit_code"`
	Name       string `json:"name"`
	Role       string `json:"role"`
}

// AuditFunc records an audit entry (the app binds it to audit.Log.Append).
type AuditFunc func(ctx context.Context, actor, action, object string, detail map[string]any) error

// Config configures New.
type Config struct {
	DB     *db.DB
	Fields *crypto.FieldCipher // seals the signing keys and session ids at rest
	// Issuer is the provider's URL, its path the mount point, e.g. http://127.0.0.1:8080/oidc.
	Issuer string
	Users  Users
	// LoginURL is where the browser is sent to log in, e.g. "/login?authRequestID=…".
	LoginURL func(authRequestID string) string
	Audit    AuditFunc
	Now      func() time.Time
	// CryptoKey encrypts zitadel's opaque access tokens and codes (op.Config.CryptoKey).
	CryptoKey [32]byte
	// AllowInsecure permits an http issuer and http redirect URIs off loopback (dev, tests).
	AllowInsecure bool

	// Policy authorizes client management: staff with authz.ClientsEdit over the client's
	// division (deny-by-default: nil refuses every management call).
	Policy *authz.Policy

	// Optional.
	// SessionAlive, when set, is asked at every refresh whether the sign-in session the tokens
	// came from still stands; when it has ended (logout, password reset, revocation, expiry)
	// the refresh is refused and the token family revoked.
	SessionAlive func(ctx context.Context, sessionID string) (bool, error)
	// EndSession ends the SSO session itself (the identity engine's), when a relying party
	// asks for logout at end_session with an id_token_hint.
	EndSession func(ctx context.Context, sessionID string) error
	// PostLogoutURL is where end_session sends the browser without a valid
	// post_logout_redirect_uri; default "/".
	PostLogoutURL string
	// HTTPClient delivers back-channel logout tokens; default: 5 s timeout, no redirects.
	HTTPClient      *http.Client
	AccessTokenTTL  time.Duration // default 15 min
	RefreshTokenTTL time.Duration // default 12 h (sliding: each rotation renews it)
	IDTokenTTL      time.Duration // default 15 min
	Logger          *slog.Logger
}

const (
	authRequestTTL = 10 * time.Minute
	codeTTL        = 5 * time.Minute
	// keyCacheTTL bounds how long a node keeps signing with a key another node retired.
	keyCacheTTL = time.Minute
)

// Provider is the OpenID provider.
type Provider struct {
	cfg     Config
	op      *op.Provider
	st      *storage
	path    string // the issuer's path, e.g. "/oidc"
	handler http.Handler
	keys    *keyCache
	log     *slog.Logger
}

// New builds the provider. The database must be migrated (Migrations).
func New(cfg Config) (*Provider, error) {
	switch {
	case cfg.DB == nil:
		return nil, errors.New("idp: Config.DB is required")
	case cfg.Fields == nil:
		return nil, errors.New("idp: Config.Fields is required")
	case cfg.Users == nil:
		return nil, errors.New("idp: Config.Users is required")
	case cfg.LoginURL == nil:
		return nil, errors.New("idp: Config.LoginURL is required")
	case cfg.CryptoKey == [32]byte{}:
		return nil, errors.New("idp: Config.CryptoKey is required")
	}
	iu, err := url.Parse(cfg.Issuer)
	if err != nil || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" {
		return nil, fmt.Errorf("idp: issuer %q is not an absolute URL without query or fragment", cfg.Issuer)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, string, string, string, map[string]any) error { return nil }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PostLogoutURL == "" {
		cfg.PostLogoutURL = "/"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{
			Timeout:       5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = 15 * time.Minute
	}
	if cfg.RefreshTokenTTL <= 0 {
		cfg.RefreshTokenTTL = 12 * time.Hour
	}
	if cfg.IDTokenTTL <= 0 {
		cfg.IDTokenTTL = 15 * time.Minute
	}
	p := &Provider{cfg: cfg, path: strings.TrimSuffix(iu.EscapedPath(), "/"), log: cfg.Logger}
	p.keys = &keyCache{p: p}
	p.st = &storage{p: p}

	opCfg := &op.Config{
		CryptoKey:                         cfg.CryptoKey,
		DefaultLogoutRedirectURI:          cfg.PostLogoutURL,
		CodeMethodS256:                    true,
		AuthMethodPost:                    true,
		GrantTypeRefreshToken:             true,
		SupportedUILocales:                []language.Tag{language.SimplifiedChinese, language.English},
		SupportedScopes:                   []string{"openid", "profile", "offline_access"},
		SupportedClaims:                   supportedClaims,
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	opts := []op.Option{
		op.WithHttpInterceptors(p.exactRedirectURIs),
		// Relying parties' servers call the token endpoints; browsers' scripts may call
		// userinfo with a bearer token. Nothing here rides on cookies, so no credentials.
		op.WithCORSOptions(&cors.Options{
			AllowedOrigins: []string{"*"},
			AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost},
			AllowedHeaders: []string{"Accept", "Accept-Language", "Authorization", "Content-Type"},
		}),
	}
	if cfg.AllowInsecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	p.op, err = op.NewProvider(opCfg, p.st, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	var h http.Handler = p.op
	if p.path != "" {
		h = http.StripPrefix(p.path, h)
	}
	p.handler = h
	return p, nil
}

var supportedClaims = []string{
	"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "at_hash", "c_hash",
	"azp", "sid", "name", "dgov_kind", "dgov_level", "dgov_division", "dgov_enterprise",
}

// Handler serves the provider under the issuer's path (mount it at "/oidc/"): discovery
// /.well-known/openid-configuration, /keys, /authorize (+ /authorize/callback),
// /oauth/token, /oauth/introspect, /revoke, /userinfo, /end_session.
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer is the issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// CSRFExempt lists the ServeMux patterns the app must exempt from CSRF checks
// (httpx.CSRF.Exempt): these endpoints are posted to by relying parties' servers (Basic
// auth or client_secret_post) or by their pages' forms (form_post authorize, end_session),
// and carry their own proof — client authentication, a code verifier or an ID token.
func (p *Provider) CSRFExempt() []string {
	var out []string
	for _, ep := range []*op.Endpoint{op.DefaultEndpoints.Authorization, op.DefaultEndpoints.Token,
		op.DefaultEndpoints.Introspection, op.DefaultEndpoints.Revocation,
		op.DefaultEndpoints.Userinfo, op.DefaultEndpoints.EndSession} {
		out = append(out, "POST "+p.path+ep.Relative())
	}
	return out
}

// Errors shown to people (login page, console).
var (
	ErrAuthRequestNotFound = &i18n.Error{Code: "idp.auth_request_not_found", Status: http.StatusNotFound,
		Msg: i18n.T("登录请求不存在或已过期，请从应用重新发起登录", "the login request does not exist or has expired; start again from the application")}
	ErrAuthRequestDone = &i18n.Error{Code: "idp.auth_request_done", Status: http.StatusConflict,
		Msg: i18n.T("该登录请求已完成", "this login request has already been completed")}
	ErrLevelTooLow = &i18n.Error{Code: "idp.level_too_low", Status: http.StatusForbidden,
		Msg: i18n.T("此应用要求更高级别的身份认证，请升级认证后重试", "this application requires a higher authentication level; step up and try again")}
	ErrReauthRequired = &i18n.Error{Code: "idp.reauth_required", Status: http.StatusForbidden,
		Msg: i18n.T("此应用要求重新认证身份", "this application requires you to authenticate again")}
	ErrClientDisabled = &i18n.Error{Code: "idp.client_disabled", Status: http.StatusForbidden,
		Msg: i18n.T("该应用已被停用", "this application has been disabled")}
	ErrInvalidClientInput = &i18n.Error{Code: "idp.invalid_client", Status: http.StatusBadRequest,
		Msg: i18n.T("应用注册信息无效", "the application registration is not valid")}
)

func (p *Provider) now() time.Time { return db.Now(p.cfg.Now()) }

// audit records an entry of the protocol's own making; a failure is logged, not returned,
// since the protocol answer has already been decided.
func (p *Provider) audit(ctx context.Context, actor, action, object string, detail map[string]any) {
	if err := p.cfg.Audit(ctx, actor, action, object, detail); err != nil {
		p.log.ErrorContext(ctx, "idp: audit", "action", action, "object", object, "err", err)
	}
}

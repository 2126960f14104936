package idp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// ClientType is how a relying party authenticates and what it may do.
type ClientType string

const (
	// ClientWeb is a server-side web application: confidential (client secret), code flow.
	ClientWeb ClientType = "web"
	// ClientNative is a mobile or desktop app: public (no secret), code flow with PKCE.
	ClientNative ClientType = "native"
	// ClientService is a system client: client credentials grant only, no users.
	ClientService ClientType = "service"
)

// Client is a registered relying party.
type Client struct {
	ID                     string     `json:"id"`
	Name                   string     `json:"name"`
	DepartmentID           string     `json:"department_id"`
	DivisionCode           string     `json:"division_code"`
	Type                   ClientType `json:"type"`
	RedirectURIs           []string   `json:"redirect_uris"`
	PostLogoutRedirectURIs []string   `json:"post_logout_redirect_uris"`
	GrantTypes             []string   `json:"grant_types"`
	ResponseTypes          []string   `json:"response_types"`
	BackchannelLogoutURI   string     `json:"backchannel_logout_uri,omitempty"`
	RequirePKCE            bool       `json:"require_pkce"`
	MinLevel               int        `json:"min_level"`
	AllowedScopes          []string   `json:"allowed_scopes"`
	CreatedBy              string     `json:"created_by"`
	CreatedAt              time.Time  `json:"created_at"`
	Disabled               bool       `json:"disabled"`
	ThirdParty             bool       `json:"third_party"`
	Audience               string     `json:"audience"`

	secretHash string
}

// ClientInput is what RegisterClient needs.
type ClientInput struct {
	// ID, when set, is the client id (3–64 of a-z 0-9 . _ -), for well-known clients such as
	// the demo's demo-rp; empty means a new opaque id.
	ID           string
	Name         string
	DepartmentID string // default: the registering staff member's department
	DivisionCode string // default: the registering staff member's division
	Type         ClientType
	// RedirectURIs are matched exactly. Absolute, no fragment; https, or http on loopback /
	// localhost (any host with AllowInsecure); native apps may also use a private-use scheme
	// with a dot (RFC 8252 §7.1, e.g. cn.gov.sx.app:/callback).
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	// RequirePKCE defaults to true; native clients always require it.
	RequirePKCE *bool
	// MinLevel is the assurance level (0..3) the application requires of a login.
	MinLevel int
	// AllowedScopes are scopes beyond openid/profile/offline_access that the client may ask
	// for; for a service client, the scopes its access tokens may carry.
	AllowedScopes []string
	// ThirdParty applications (not a department's own) ask the person's consent before they
	// receive any data.
	ThirdParty bool
	// Audience is who signs in: AudienceCitizen (default: citizens and enterprises at the
	// portal) or AudienceStaff (公务人员, at the console).
	Audience string
}

// Audiences of an application.
const (
	AudienceCitizen = "citizen"
	AudienceStaff   = "staff"
)

// ErrClientIDTaken answers a registration under an id already in use.
var ErrClientIDTaken = &i18n.Error{Code: "idp.client_id_taken", Status: http.StatusConflict, Field: "id",
	Msg: i18n.T("客户端标识已被使用", "this client id is already in use")}

var clientIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{2,63}$`)

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashSecret(s string) string { return crypto.SM3Hex([]byte(s)) }

func requireStaff(subj authz.Subject) error {
	if subj.Kind != authz.Staff || subj.ID == "" || subj.PasswordChangeRequired {
		return i18n.ErrForbidden
	}
	return nil
}

// authorize lets staff manage clients of departments within their division only.
func (p *Provider) authorize(subj authz.Subject, division string) error {
	if err := requireStaff(subj); err != nil {
		return err
	}
	if p.cfg.Policy == nil {
		return i18n.ErrForbidden
	}
	return p.cfg.Policy.Authorize(subj, authz.ClientsEdit, division)
}

// clientFor loads a client the subject may manage; one outside their scope is "not found".
func (p *Provider) clientFor(ctx context.Context, subj authz.Subject, id string) (*Client, error) {
	if err := requireStaff(subj); err != nil {
		return nil, err
	}
	c, err := p.client(ctx, p.cfg.DB, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, i18n.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load client %s: %w", id, err)
	}
	if err := p.authorize(subj, c.DivisionCode); err != nil {
		return nil, i18n.ErrNotFound
	}
	return c, nil
}

func invalid(field, zh, en string, args ...any) error {
	e := i18n.Errorf(http.StatusBadRequest, ErrInvalidClientInput.Code, zh, en, args...)
	return e.WithField(field)
}

// validateURI checks a redirect or logout URI: absolute, no fragment, no wildcard; https, or
// http on loopback / localhost or when insecure; private-use schemes only where allowed.
func validateURI(field, raw string, insecure, privateScheme bool) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return invalid(field, "地址 %q 不是绝对地址", "%q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return invalid(field, "地址 %q 不能包含片段（#）", "%q must not contain a fragment", raw)
	}
	if strings.Contains(raw, "*") {
		return invalid(field, "地址 %q 不能包含通配符", "%q must not contain wildcards", raw)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return invalid(field, "地址 %q 缺少主机名", "%q has no host", raw)
		}
	case "http":
		if u.Host == "" {
			return invalid(field, "地址 %q 缺少主机名", "%q has no host", raw)
		}
		h := u.Hostname()
		ip := net.ParseIP(h)
		if !insecure && h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return invalid(field, "地址 %q 必须使用 https（http 仅限本机回环地址）", "%q must use https (http only on loopback)", raw)
		}
	default:
		if !privateScheme || !strings.Contains(u.Scheme, ".") {
			return invalid(field, "地址 %q 的协议不被允许", "the scheme of %q is not allowed", raw)
		}
	}
	return nil
}

func validScope(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		// RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

func (p *Provider) validateClient(in *ClientInput, subj authz.Subject) error {
	switch in.Audience {
	case "":
		in.Audience = AudienceCitizen
	case AudienceCitizen, AudienceStaff:
	default:
		return invalid("audience", "登录对象应为 citizen 或 staff", "the audience must be citizen or staff")
	}
	if in.ID != "" && !clientIDRE.MatchString(in.ID) {
		return invalid("id", "客户端标识应为 3–64 位小写字母、数字、点、下划线或连字符", "the client id must be 3–64 of a-z, 0-9, '.', '_' or '-'")
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len([]rune(in.Name)) > 100 {
		return invalid("name", "应用名称不能为空且不超过 100 字", "the name is required and at most 100 characters")
	}
	if in.DepartmentID == "" {
		in.DepartmentID = subj.Dept
	}
	if in.DivisionCode == "" {
		in.DivisionCode = subj.Division
	}
	switch in.Type {
	case ClientWeb, ClientNative:
		if len(in.RedirectURIs) == 0 {
			return invalid("redirect_uris", "至少需要一个回调地址", "at least one redirect URI is required")
		}
	case ClientService:
		if len(in.RedirectURIs) > 0 || len(in.PostLogoutRedirectURIs) > 0 || in.BackchannelLogoutURI != "" {
			return invalid("redirect_uris", "系统客户端不能登记回调地址", "a service client has no redirect URIs")
		}
	default:
		return invalid("type", "应用类型必须是 web、native 或 service", "type must be web, native or service")
	}
	native := in.Type == ClientNative
	for _, u := range in.RedirectURIs {
		if err := validateURI("redirect_uris", u, p.cfg.AllowInsecure, native); err != nil {
			return err
		}
	}
	for _, u := range in.PostLogoutRedirectURIs {
		if err := validateURI("post_logout_redirect_uris", u, p.cfg.AllowInsecure, native); err != nil {
			return err
		}
	}
	if in.BackchannelLogoutURI != "" {
		if err := validateURI("backchannel_logout_uri", in.BackchannelLogoutURI, p.cfg.AllowInsecure, false); err != nil {
			return err
		}
	}
	if in.MinLevel < 0 || in.MinLevel > 3 {
		return invalid("min_level", "认证级别要求必须在 0 到 3 之间", "min_level must be between 0 and 3")
	}
	for _, s := range in.AllowedScopes {
		if !validScope(s) {
			return invalid("allowed_scopes", "权限范围 %q 无效", "scope %q is not valid", s)
		}
	}
	if native && in.RequirePKCE != nil && !*in.RequirePKCE {
		return invalid("require_pkce", "原生应用必须使用 PKCE", "native clients must use PKCE")
	}
	return nil
}

// RegisterClient registers a relying party and returns it with its client secret (empty for
// native clients), shown once: only its SM3 hash is kept. Only staff may register; which
// staff (department, division scope) is the caller's decision.
func (p *Provider) RegisterClient(ctx context.Context, subj authz.Subject, in ClientInput) (Client, string, error) {
	if err := requireStaff(subj); err != nil {
		return Client{}, "", err
	}
	if err := p.validateClient(&in, subj); err != nil {
		return Client{}, "", err
	}
	if err := p.authorize(subj, in.DivisionCode); err != nil {
		return Client{}, "", err
	}
	id := in.ID
	if id == "" {
		id = db.NewID()
	}
	c := Client{
		ID: id, Name: in.Name, DepartmentID: in.DepartmentID, DivisionCode: in.DivisionCode,
		Type: in.Type, RedirectURIs: nonNil(in.RedirectURIs), PostLogoutRedirectURIs: nonNil(in.PostLogoutRedirectURIs),
		BackchannelLogoutURI: in.BackchannelLogoutURI, RequirePKCE: in.RequirePKCE == nil || *in.RequirePKCE,
		MinLevel: in.MinLevel, AllowedScopes: nonNil(in.AllowedScopes), CreatedBy: subj.String(), CreatedAt: p.now(),
		ThirdParty:    in.ThirdParty,
		Audience:      in.Audience,
		ResponseTypes: []string{string(oidc.ResponseTypeCode)},
	}
	secret := ""
	switch c.Type {
	case ClientWeb:
		c.GrantTypes = []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken)}
		secret = newSecret()
	case ClientNative:
		c.GrantTypes = []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken)}
		c.RequirePKCE = true
	case ClientService:
		c.GrantTypes = []string{string(oidc.GrantTypeClientCredentials)}
		c.ResponseTypes = []string{}
		c.RequirePKCE = false
		secret = newSecret()
	}
	if secret != "" {
		c.secretHash = hashSecret(secret)
	}
	_, err := p.cfg.DB.Exec(ctx, `INSERT INTO idp_clients (id, secret_hash, name, department_id, division_code, type,
		redirect_uris, post_logout_redirect_uris, grant_types, response_types, backchannel_logout_uri,
		require_pkce, min_level, allowed_scopes, created_by, created_at, disabled, third_party, audience)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.secretHash, c.Name, c.DepartmentID, c.DivisionCode, string(c.Type),
		jsonList(c.RedirectURIs), jsonList(c.PostLogoutRedirectURIs), jsonList(c.GrantTypes), jsonList(c.ResponseTypes),
		c.BackchannelLogoutURI, c.RequirePKCE, c.MinLevel, jsonList(c.AllowedScopes), c.CreatedBy, c.CreatedAt, false, c.ThirdParty, c.Audience)
	if db.IsUniqueViolation(err) {
		return Client{}, "", ErrClientIDTaken
	}
	if err != nil {
		return Client{}, "", fmt.Errorf("register client: %w", err)
	}
	if err := p.cfg.Audit(ctx, subj.String(), "oidc.client.register", "oidc_client:"+c.ID,
		map[string]any{"name": c.Name, "type": c.Type, "redirect_uris": c.RedirectURIs, "min_level": c.MinLevel}); err != nil {
		return Client{}, "", fmt.Errorf("register client: audit: %w", err)
	}
	return c, secret, nil
}

const clientColumns = `id, secret_hash, name, department_id, division_code, type, redirect_uris,
	post_logout_redirect_uris, grant_types, response_types, backchannel_logout_uri, require_pkce,
	min_level, allowed_scopes, created_by, created_at, disabled, third_party, audience`

func scanClient(r interface{ Scan(...any) error }) (*Client, error) {
	var c Client
	var typ, ru, plru, gt, rt, sc string
	if err := r.Scan(&c.ID, &c.secretHash, &c.Name, &c.DepartmentID, &c.DivisionCode, &typ, &ru, &plru, &gt, &rt,
		&c.BackchannelLogoutURI, &c.RequirePKCE, &c.MinLevel, &sc, &c.CreatedBy, &c.CreatedAt, &c.Disabled, &c.ThirdParty, &c.Audience); err != nil {
		return nil, err
	}
	c.Type = ClientType(typ)
	c.RedirectURIs, c.PostLogoutRedirectURIs = parseList(ru), parseList(plru)
	c.GrantTypes, c.ResponseTypes, c.AllowedScopes = parseList(gt), parseList(rt), parseList(sc)
	return &c, nil
}

// client loads a client, disabled or not; sql.ErrNoRows when unknown.
func (p *Provider) client(ctx context.Context, q db.Querier, id string) (*Client, error) {
	c, err := scanClient(q.QueryRow(ctx, `SELECT `+clientColumns+` FROM idp_clients WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Client returns a registered client.
func (p *Provider) Client(ctx context.Context, subj authz.Subject, id string) (Client, error) {
	c, err := p.clientFor(ctx, subj, id)
	if err != nil {
		return Client{}, err
	}
	return *c, nil
}

// ListClients lists the registered clients, newest first.
func (p *Provider) ListClients(ctx context.Context, subj authz.Subject) ([]Client, error) {
	if err := requireStaff(subj); err != nil {
		return nil, err
	}
	rows, err := p.cfg.DB.Query(ctx, `SELECT `+clientColumns+` FROM idp_clients ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var out []Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		if p.authorize(subj, c.DivisionCode) == nil {
			out = append(out, *c)
		}
	}
	return out, rows.Err()
}

// DisableClient disables a client and revokes every token it holds.
func (p *Provider) DisableClient(ctx context.Context, subj authz.Subject, id string) error {
	if _, err := p.clientFor(ctx, subj, id); err != nil {
		return err
	}
	now := p.now()
	err := p.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE idp_clients SET disabled = ? WHERE id = ?`, true, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return i18n.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `UPDATE idp_access_tokens SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL`, now, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE idp_refresh_tokens SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL`, now, id)
		return err
	})
	if err != nil {
		if _, ok := i18n.As(err); ok {
			return err
		}
		return fmt.Errorf("disable client %s: %w", id, err)
	}
	return p.cfg.Audit(ctx, subj.String(), "oidc.client.disable", "oidc_client:"+id, nil)
}

// RotateSecret gives a confidential client a new secret (returned once); the old one stops
// working at once.
func (p *Provider) RotateSecret(ctx context.Context, subj authz.Subject, id string) (string, error) {
	c, err := p.clientFor(ctx, subj, id)
	if err != nil {
		return "", err
	}
	if c.Type == ClientNative {
		return "", invalid("type", "原生应用没有客户端密钥", "a native client has no secret")
	}
	secret := newSecret()
	if _, err := p.cfg.DB.Exec(ctx, `UPDATE idp_clients SET secret_hash = ?, secret_rotated_at = ? WHERE id = ?`,
		hashSecret(secret), p.now(), id); err != nil {
		return "", fmt.Errorf("rotate secret of %s: %w", id, err)
	}
	if err := p.cfg.Audit(ctx, subj.String(), "oidc.client.rotate_secret", "oidc_client:"+id, nil); err != nil {
		return "", fmt.Errorf("rotate secret: audit: %w", err)
	}
	return secret, nil
}

// dummyHash is compared against when the client is unknown, so that the answer takes as long.
var dummyHash = hashSecret("dgov idp dummy secret")

// authenticate checks a client secret in constant time; it fails for unknown, disabled and
// public clients alike.
func (p *Provider) authenticate(ctx context.Context, id, secret string) (*Client, error) {
	c, err := p.client(ctx, p.cfg.DB, id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	want := dummyHash
	if c != nil && c.secretHash != "" {
		want = c.secretHash
	}
	ok := subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(want)) == 1
	if c == nil || c.secretHash == "" || !ok || secret == "" {
		return nil, errors.New("unknown client or wrong secret")
	}
	if c.Disabled {
		return nil, errors.New("client disabled")
	}
	return c, nil
}

// ---- the op.Client view of a Client ----

type opClient struct {
	c *Client
	p *Provider
}

var _ op.Client = opClient{}

func (o opClient) GetID() string                    { return o.c.ID }
func (o opClient) RedirectURIs() []string           { return o.c.RedirectURIs }
func (o opClient) PostLogoutRedirectURIs() []string { return o.c.PostLogoutRedirectURIs }
func (o opClient) ApplicationType() op.ApplicationType {
	if o.c.Type == ClientNative {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}
func (o opClient) AuthMethod() oidc.AuthMethod {
	if o.c.Type == ClientNative {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (o opClient) ResponseTypes() []oidc.ResponseType {
	out := make([]oidc.ResponseType, len(o.c.ResponseTypes))
	for i, t := range o.c.ResponseTypes {
		out[i] = oidc.ResponseType(t)
	}
	return out
}
func (o opClient) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, len(o.c.GrantTypes))
	for i, t := range o.c.GrantTypes {
		out[i] = oidc.GrantType(t)
	}
	return out
}
func (o opClient) LoginURL(id string) string            { return o.p.cfg.LoginURL(id) }
func (o opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (o opClient) IDTokenLifetime() time.Duration       { return o.p.cfg.IDTokenTTL }
func (o opClient) DevMode() bool                        { return o.p.cfg.AllowInsecure }
func (o opClient) IsScopeAllowed(scope string) bool     { return slices.Contains(o.c.AllowedScopes, scope) }
func (o opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (o opClient) ClockSkew() time.Duration             { return 0 }
func (o opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (o opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// ---- JSON list columns ----

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func jsonList(s []string) string {
	b, _ := json.Marshal(nonNil(s))
	return string(b)
}

func parseList(s string) []string {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil || out == nil {
		return []string{}
	}
	return out
}

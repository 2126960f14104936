package idp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// ---- the identity boundary: a small table of users, not a storage mock ----

type testUsers struct {
	users       map[string]idp.UserClaims
	enterprises map[string]map[string]idp.EnterpriseClaims // subject → enterprise id → role
}

func (u *testUsers) Claims(_ context.Context, subject, actingFor string) (idp.UserClaims, error) {
	c, ok := u.users[subject]
	if !ok {
		return idp.UserClaims{}, errors.New("unknown subject")
	}
	if actingFor != "" {
		e, ok := u.enterprises[subject][actingFor]
		if !ok {
			return idp.UserClaims{}, i18n.ErrForbidden
		}
		c.Enterprise = &e
	}
	return c, nil
}

var users = &testUsers{
	users: map[string]idp.UserClaims{
		"citizen-zhang": {Subject: "citizen-zhang", Kind: "citizen", Name: "张伟", Level: 3, Division: "140105"},
		"citizen-li":    {Subject: "citizen-li", Kind: "citizen", Name: "李娜", Level: 2, Division: "140106"},
		"staff-7":       {Subject: "staff-7", Kind: "staff", Name: "王强", Level: 2, Division: "140000"},
	},
	enterprises: map[string]map[string]idp.EnterpriseClaims{
		"citizen-zhang": {"ent-1": {ID: "ent-1", CreditCode: "91140100MA0K000000", Name: "太原示范科技有限公司", Role: "legal_rep"}},
	},
}

var (
	staff        = authz.Subject{Kind: authz.Staff, ID: "staff-1", Division: "140000", Dept: "dept-1", Roles: []authz.Role{authz.RoleSysAdmin}}
	taiyuanAdmin = authz.Subject{Kind: authz.Staff, ID: "staff-2", Division: "140100", Dept: "dept-2", Roles: []authz.Role{authz.RoleOrgAdmin}}
	officer      = authz.Subject{Kind: authz.Staff, ID: "staff-3", Division: "140000", Dept: "dept-1", Roles: []authz.Role{authz.RoleOfficer}}
)

// ---- clock ----

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ---- fixture: the provider on an httptest server, and relying parties ----

type logoutCall struct {
	client, token string
}

type fixture struct {
	ctx     context.Context
	p       *idp.Provider
	srv     *httptest.Server
	clock   *clock
	issuer  string
	oidc    *oidc.Provider
	browser *http.Client

	mu        sync.Mutex
	logouts   []logoutCall
	ended     []string
	dead      map[string]bool // sign-in sessions that ended (SessionAlive answers false)
	auditLogs []string
}

func newFixture(t testing.TB, d *db.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ctx: ctx, clock: &clock{t: time.Now()}}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL + "/oidc"
	f.p, err = idp.New(idp.Config{
		DB: d, Fields: k.FieldCipher(), Issuer: f.issuer, Users: users,
		LoginURL:  func(id string) string { return "/login?authRequestID=" + url.QueryEscape(id) },
		Policy:    authz.NewPolicy(divisions.Contains),
		Audit:     f.record,
		Now:       f.clock.now,
		CryptoKey: [32]byte{1, 2, 3},
		// http issuer on loopback in tests
		AllowInsecure: true,
		SessionAlive: func(_ context.Context, sessionID string) (bool, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return !f.dead[sessionID], nil
		},
		EndSession: func(_ context.Context, sessionID string) error {
			f.mu.Lock()
			f.ended = append(f.ended, sessionID)
			f.mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/oidc/", f.p.Handler())
	// Relying parties' back-channel logout endpoints: /rp/<client>/backchannel.
	mux.HandleFunc("POST /rp/{client}/backchannel", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.logouts = append(f.logouts, logoutCall{client: r.PathValue("client"), token: r.PostFormValue("logout_token")})
		f.mu.Unlock()
	})
	f.browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.oidc, err = oidc.NewProvider(ctx, f.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return f
}

func (f *fixture) record(_ context.Context, actor, action, object string, _ map[string]any) error {
	f.mu.Lock()
	f.auditLogs = append(f.auditLogs, action+" "+actor+" "+object)
	f.mu.Unlock()
	return nil
}

func (f *fixture) audited(action string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.auditLogs {
		if strings.HasPrefix(a, action+" ") {
			return true
		}
	}
	return false
}

type rp struct {
	client   idp.Client
	secret   string
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (f *fixture) newRP(t testing.TB, in idp.ClientInput) *rp {
	t.Helper()
	if in.Type == "" {
		in.Type = idp.ClientWeb
	}
	if in.Name == "" {
		in.Name = "测试应用"
	}
	if in.RedirectURIs == nil && in.Type != idp.ClientService {
		in.RedirectURIs = []string{f.srv.URL + "/rp/callback"}
	}
	c, secret, err := f.p.RegisterClient(f.ctx, staff, in)
	if err != nil {
		t.Fatalf("register client: %v", err)
	}
	r := &rp{client: c, secret: secret, verifier: f.oidc.Verifier(&oidc.Config{ClientID: c.ID})}
	r.conf = oauth2.Config{ClientID: c.ID, ClientSecret: secret, Endpoint: f.oidc.Endpoint(),
		Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess}}
	if len(c.RedirectURIs) > 0 {
		r.conf.RedirectURL = c.RedirectURIs[0]
	}
	return r
}

// get fetches u like a browser that does not follow redirects.
func (f *fixture) get(t testing.TB, u string) *http.Response {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = f.srv.URL + u
	}
	resp, err := f.browser.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func location(t testing.TB, resp *http.Response) *url.URL {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	u, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// startLogin plays the browser up to the login page and returns the auth request id.
func (f *fixture) startLogin(t testing.TB, authURL string) string {
	t.Helper()
	loc := location(t, f.get(t, authURL))
	if loc.Path != "/login" {
		t.Fatalf("authorize redirected to %s, want the login page", loc)
	}
	return loc.Query().Get("authRequestID")
}

type login struct {
	subject, actingFor, session string
	level                       int
}

// codeFlow runs authorization code + PKCE: the RP's redirect, the login page's work
// (CompleteAuthRequest), the callback back to the RP, the code exchange and the ID token
// verification (nonce included).
func (f *fixture) codeFlow(t testing.TB, r *rp, l login, extra ...oauth2.AuthCodeOption) (*oauth2.Token, *oidc.IDToken, string) {
	t.Helper()
	code, verifier, nonce := f.authorize(t, r, l, extra...)
	tok, err := r.conf.Exchange(f.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(f.ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("nonce %q, want %q", idt.Nonce, nonce)
	}
	return tok, idt, raw
}

// authorize runs the browser part and returns the code and the PKCE verifier and nonce used.
func (f *fixture) authorize(t testing.TB, r *rp, l login, extra ...oauth2.AuthCodeOption) (code, verifier, nonce string) {
	t.Helper()
	verifier, nonce, state := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}, extra...)
	id := f.startLogin(t, r.conf.AuthCodeURL(state, opts...))
	if err := f.p.CompleteAuthRequest(f.ctx, id, l.subject, l.actingFor, l.session, l.level, []string{"pwd", "sms"}, f.clock.now()); err != nil {
		t.Fatalf("complete auth request: %v", err)
	}
	cb := location(t, f.get(t, f.p.CallbackURL(f.ctx, id)))
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != r.conf.RedirectURL {
		t.Fatalf("callback went to %s, want %s", got, r.conf.RedirectURL)
	}
	if cb.Query().Get("state") != state {
		t.Fatalf("state %q, want %q", cb.Query().Get("state"), state)
	}
	code = cb.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", cb)
	}
	return code, verifier, nonce
}

// postForm posts to an OIDC endpoint as client id:secret (Basic) and decodes the JSON answer.
func (f *fixture) postForm(t testing.TB, path, id, secret string, form url.Values, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

type introspection struct {
	Active    bool   `json:"active"`
	Sub       string `json:"sub"`
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	Kind      string `json:"dgov_kind"`
	Level     string `json:"dgov_level"`
	TokenType string `json:"token_type"`
}

func (f *fixture) introspect(t testing.TB, as *rp, token string) introspection {
	t.Helper()
	var out introspection
	if st := f.postForm(t, "/oauth/introspect", as.client.ID, as.secret, url.Values{"token": {token}}, &out); st != http.StatusOK {
		t.Fatalf("introspect: status %d", st)
	}
	return out
}

func (f *fixture) userinfo(t testing.TB, token string) (map[string]any, error) {
	t.Helper()
	ui, err := f.oidc.UserInfo(f.ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "Bearer"}))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := ui.Claims(&m); err != nil {
		t.Fatal(err)
	}
	return m, nil
}

func (f *fixture) refresh(r *rp, refreshToken string) (*oauth2.Token, error) {
	return r.conf.TokenSource(f.ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
}

func claimsOf(t testing.TB, idt *oidc.IDToken) map[string]any {
	t.Helper()
	var m map[string]any
	if err := idt.Claims(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jwtPart(t testing.TB, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// ---- the tests ----

func TestProvider(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		web := f.newRP(t, idp.ClientInput{Name: "一网通办", BackchannelLogoutURI: f.srv.URL + "/rp/web/backchannel",
			PostLogoutRedirectURIs: []string{f.srv.URL + "/rp/bye"}})
		rs := f.newRP(t, idp.ClientInput{Name: "资源服务", Type: idp.ClientService, AllowedScopes: []string{"exchange.read"}})

		t.Run("discovery", func(t *testing.T) {
			var doc struct {
				Issuer            string   `json:"issuer"`
				JWKS              string   `json:"jwks_uri"`
				Token             string   `json:"token_endpoint"`
				Introspection     string   `json:"introspection_endpoint"`
				Revocation        string   `json:"revocation_endpoint"`
				EndSession        string   `json:"end_session_endpoint"`
				Challenge         []string `json:"code_challenge_methods_supported"`
				Backchannel       bool     `json:"backchannel_logout_supported"`
				BackchannelSID    bool     `json:"backchannel_logout_session_supported"`
				SigningAlgorithms []string `json:"id_token_signing_alg_values_supported"`
			}
			if err := f.oidc.Claims(&doc); err != nil {
				t.Fatal(err)
			}
			if doc.Issuer != f.issuer || doc.JWKS != f.issuer+"/keys" || doc.Token != f.issuer+"/oauth/token" ||
				doc.Introspection != f.issuer+"/oauth/introspect" || doc.Revocation != f.issuer+"/revoke" ||
				doc.EndSession != f.issuer+"/end_session" {
				t.Errorf("discovery endpoints: %+v", doc)
			}
			if !slices.Contains(doc.Challenge, "S256") || !doc.Backchannel || !doc.BackchannelSID || !slices.Contains(doc.SigningAlgorithms, "RS256") {
				t.Errorf("discovery capabilities: %+v", doc)
			}
			var jwks struct {
				Keys []struct{ Kid, Alg, Kty, Use string } `json:"keys"`
			}
			resp, err := http.Get(doc.JWKS)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&jwks)
			resp.Body.Close()
			if len(jwks.Keys) != 1 || jwks.Keys[0].Alg != "RS256" || jwks.Keys[0].Kty != "RSA" || jwks.Keys[0].Use != "sig" {
				t.Errorf("jwks: %+v", jwks)
			}
			want := []string{"POST /oidc/authorize", "POST /oidc/oauth/token", "POST /oidc/oauth/introspect", "POST /oidc/revoke", "POST /oidc/userinfo", "POST /oidc/end_session"}
			if got := f.p.CSRFExempt(); !slices.Equal(got, want) {
				t.Errorf("CSRFExempt = %v, want %v", got, want)
			}
		})

		t.Run("code flow with PKCE, claims, introspection", func(t *testing.T) {
			tok, idt, _ := f.codeFlow(t, web, login{subject: "citizen-zhang", actingFor: "ent-1", session: "sso-1", level: 3})
			c := claimsOf(t, idt)
			if idt.Subject != "citizen-zhang" || c["name"] != "张伟" || c["dgov_kind"] != "citizen" || c["dgov_level"] != "L3" ||
				c["acr"] != "urn:dgov:loa:3" || c["dgov_division"] != "140105" || c["sid"] == nil || c["sid"] == "sso-1" {
				t.Errorf("ID token claims: %v", c)
			}
			ent, _ := c["dgov_enterprise"].(map[string]any)
			if ent["id"] != "ent-1" || ent["credit_code"] != "91140100MA0K000000" || ent["role"] != "legal_rep" || ent["name"] == "" {
				t.Errorf("dgov_enterprise: %v", c["dgov_enterprise"])
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			ui, err := f.userinfo(t, tok.AccessToken)
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if ui["sub"] != "citizen-zhang" || ui["name"] != "张伟" || ui["dgov_level"] != "L3" || ui["dgov_enterprise"] == nil {
				t.Errorf("userinfo: %v", ui)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh token with offline_access")
			}
			in := f.introspect(t, rs, tok.AccessToken)
			if !in.Active || in.Sub != "citizen-zhang" || in.ClientID != web.client.ID || in.Level != "L3" || !strings.Contains(in.Scope, "openid") {
				t.Errorf("introspection by a resource server: %+v", in)
			}
			// A web client may introspect its own tokens, not another's.
			if in := f.introspect(t, web, tok.AccessToken); !in.Active {
				t.Errorf("introspection by the token's client: %+v", in)
			}
			other := f.newRP(t, idp.ClientInput{Name: "另一应用"})
			if in := f.introspect(t, other, tok.AccessToken); in.Active {
				t.Errorf("another web client introspected the token: %+v", in)
			}
			if !f.audited("oidc.authorize") {
				t.Error("login to a client not audited")
			}
		})

		t.Run("refresh refused once the sign-in session ended", func(t *testing.T) {
			tok, _, _ := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-ended", level: 2})
			if _, err := f.refresh(web, tok.RefreshToken); err != nil {
				t.Fatalf("refresh while signed in: %v", err)
			}
			tok2, _, _ := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-ended-2", level: 2})
			f.mu.Lock()
			if f.dead == nil {
				f.dead = map[string]bool{}
			}
			f.dead["sso-ended-2"] = true // e.g. a password reset revoked it
			f.mu.Unlock()
			if _, err := f.refresh(web, tok2.RefreshToken); err == nil {
				t.Fatal("a refresh token outlived its sign-in session")
			}
		})
		t.Run("refresh rotation and reuse", func(t *testing.T) {
			tok, _, _ := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-2", level: 2})
			tok2, err := f.refresh(web, tok.RefreshToken)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
				t.Fatal("refresh token not rotated")
			}
			raw, _ := tok2.Extra("id_token").(string)
			if idt, err := web.verifier.Verify(f.ctx, raw); err != nil || idt.Subject != "citizen-li" {
				t.Fatalf("refreshed ID token: %v", err)
			}
			if _, err := f.userinfo(t, tok.AccessToken); err == nil {
				t.Error("the access token of a rotated refresh token still works")
			}
			if _, err := f.userinfo(t, tok2.AccessToken); err != nil {
				t.Errorf("new access token: %v", err)
			}
			// Presenting the rotated token again: refused, and the whole family is revoked.
			if _, err := f.refresh(web, tok.RefreshToken); err == nil {
				t.Fatal("a rotated refresh token was accepted")
			}
			if _, err := f.refresh(web, tok2.RefreshToken); err == nil {
				t.Error("after reuse, the newest refresh token still works")
			}
			if _, err := f.userinfo(t, tok2.AccessToken); err == nil {
				t.Error("after reuse, the newest access token still works")
			}
			if !f.audited("oidc.refresh_reuse") {
				t.Error("refresh reuse not audited")
			}
		})

		t.Run("reused code revokes its tokens", func(t *testing.T) {
			code, verifier, _ := f.authorize(t, web, login{subject: "citizen-li", session: "sso-3", level: 2})
			tok, err := web.conf.Exchange(f.ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := web.conf.Exchange(f.ctx, code, oauth2.VerifierOption(verifier)); err == nil {
				t.Fatal("a code was accepted twice")
			}
			if _, err := f.userinfo(t, tok.AccessToken); err == nil {
				t.Error("the first access token survived the code's reuse")
			}
			if _, err := f.refresh(web, tok.RefreshToken); err == nil {
				t.Error("the first refresh token survived the code's reuse")
			}
			if !f.audited("oidc.code_reuse") {
				t.Error("code reuse not audited")
			}
		})

		t.Run("wrong PKCE verifier", func(t *testing.T) {
			code, verifier, _ := f.authorize(t, web, login{subject: "citizen-li", session: "sso-4", level: 2})
			if _, err := web.conf.Exchange(f.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
				t.Fatal("exchange with a wrong code verifier succeeded")
			}
			if _, err := web.conf.Exchange(f.ctx, code); err == nil {
				t.Fatal("exchange without a code verifier succeeded")
			}
			// Failed attempts do not spend the code: the holder of the verifier still can.
			if _, err := web.conf.Exchange(f.ctx, code, oauth2.VerifierOption(verifier)); err != nil {
				t.Fatalf("exchange with the right verifier after failed ones: %v", err)
			}
		})

		t.Run("concurrent code exchanges", func(t *testing.T) {
			code, verifier, _ := f.authorize(t, web, login{subject: "citizen-li", session: "sso-4b", level: 2})
			var wg sync.WaitGroup
			toks := make([]*oauth2.Token, 4)
			for i := range toks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					toks[i], _ = web.conf.Exchange(f.ctx, code, oauth2.VerifierOption(verifier))
				}()
			}
			wg.Wait()
			live := 0
			for _, tok := range toks {
				if tok == nil {
					continue
				}
				if _, err := f.userinfo(t, tok.AccessToken); err == nil {
					live++
				}
			}
			// One exchange may win; every other one is reuse and revokes what the winner got.
			if live != 0 {
				t.Errorf("%d live tokens after concurrent exchanges of one code", live)
			}
		})

		t.Run("PKCE required", func(t *testing.T) {
			loc := location(t, f.get(t, web.conf.AuthCodeURL("s1", oidc.Nonce("n"))))
			if loc.Path != "/rp/callback" || loc.Query().Get("error") != "invalid_request" {
				t.Errorf("authorize without PKCE went to %s", loc)
			}
			loc = location(t, f.get(t, web.conf.AuthCodeURL("s1", oauth2.SetAuthURLParam("code_challenge", "abc"),
				oauth2.SetAuthURLParam("code_challenge_method", "plain"))))
			if loc.Query().Get("error") != "invalid_request" {
				t.Errorf("plain PKCE accepted: %s", loc)
			}
		})

		t.Run("wrong redirect URI is never redirected to", func(t *testing.T) {
			native := f.newRP(t, idp.ClientInput{Name: "晋来办", Type: idp.ClientNative, RedirectURIs: []string{"http://127.0.0.1:5000/cb", "cn.gov.sx.app:/cb"}})
			for _, tc := range []struct {
				name string
				r    *rp
				uri  string
			}{
				{"other host", web, "http://evil.example/rp/callback"},
				{"extra path", web, web.conf.RedirectURL + "/x"},
				{"extra query", web, web.conf.RedirectURL + "?a=b"},
				{"loopback other port", native, "http://127.0.0.1:6000/cb"},
				{"unknown client", &rp{conf: oauth2.Config{ClientID: "nobody", Endpoint: f.oidc.Endpoint()}}, "http://evil.example/cb"},
			} {
				conf := tc.r.conf
				conf.RedirectURL = tc.uri
				resp := f.get(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
					t.Errorf("%s: status %d, Location %q", tc.name, resp.StatusCode, resp.Header.Get("Location"))
				}
			}
			// The registered native URI works, public client, PKCE only.
			tok, _, _ := f.codeFlow(t, native, login{subject: "citizen-li", session: "sso-native", level: 2})
			if tok.AccessToken == "" {
				t.Error("native client got no access token")
			}
		})

		t.Run("tampered ID token", func(t *testing.T) {
			_, _, raw := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-5", level: 2})
			parts := strings.Split(raw, ".")
			claims := jwtPart(t, raw, 1)
			claims["sub"] = "citizen-zhang"
			b, _ := json.Marshal(claims)
			forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
			if _, err := web.verifier.Verify(f.ctx, forged); err == nil {
				t.Error("go-oidc accepted an ID token with an edited payload")
			}
			sig := []byte(parts[2])
			sig[10] ^= 1
			if _, err := web.verifier.Verify(f.ctx, parts[0]+"."+parts[1]+"."+string(sig)); err == nil {
				t.Error("go-oidc accepted an ID token with an edited signature")
			}
			other := f.oidc.Verifier(&oidc.Config{ClientID: rs.client.ID})
			if _, err := other.Verify(f.ctx, raw); err == nil {
				t.Error("an ID token verified for another audience")
			}
		})

		t.Run("min level requires step-up", func(t *testing.T) {
			strict := f.newRP(t, idp.ClientInput{Name: "不动产登记", MinLevel: 3})
			id := f.startLogin(t, strict.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			info, err := f.p.AuthRequest(f.ctx, id)
			if err != nil || info.RequiredLevel != 3 || info.ClientName != "不动产登记" || info.ClientID != strict.client.ID {
				t.Fatalf("AuthRequest = %+v, %v", info, err)
			}
			err = f.p.CompleteAuthRequest(f.ctx, id, "citizen-zhang", "", "sso-6", 2, []string{"pwd"}, f.clock.now())
			e, ok := i18n.As(err)
			if !errors.Is(err, idp.ErrLevelTooLow) || !ok || !strings.Contains(e.Msg.ZH, "L3") || !strings.Contains(e.Msg.EN, "L2") {
				t.Fatalf("L2 session for an L3 client: %v", err)
			}
			// An account only at L2 cannot reach L3, whatever the session claims.
			if err := f.p.CompleteAuthRequest(f.ctx, id, "citizen-li", "", "sso-6", 3, []string{"pwd"}, f.clock.now()); !errors.Is(err, idp.ErrLevelTooLow) {
				t.Fatalf("L2 account at an L3 client: %v", err)
			}
			if err := f.p.CompleteAuthRequest(f.ctx, id, "citizen-zhang", "", "sso-6", 3, []string{"pwd", "face"}, f.clock.now()); err != nil {
				t.Fatalf("after step-up: %v", err)
			}
			if err := f.p.CompleteAuthRequest(f.ctx, id, "citizen-zhang", "", "sso-6", 3, nil, f.clock.now()); !errors.Is(err, idp.ErrAuthRequestDone) {
				t.Errorf("completing twice: %v", err)
			}
			// acr_values asks for more than the client's minimum.
			id = f.startLogin(t, web.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
				oauth2.SetAuthURLParam("acr_values", "urn:dgov:loa:3")))
			if info, _ := f.p.AuthRequest(f.ctx, id); info.RequiredLevel != 3 {
				t.Errorf("acr_values: RequiredLevel %d", info.RequiredLevel)
			}
			// Acting for an enterprise one does not represent.
			if err := f.p.CompleteAuthRequest(f.ctx, id, "citizen-li", "ent-1", "sso-6", 3, nil, f.clock.now()); err == nil {
				t.Error("acting for a foreign enterprise was accepted")
			}
			// max_age
			id = f.startLogin(t, web.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
				oauth2.SetAuthURLParam("max_age", "60")))
			if err := f.p.CompleteAuthRequest(f.ctx, id, "citizen-li", "", "sso-6", 2, nil, f.clock.now().Add(-time.Hour)); !errors.Is(err, idp.ErrReauthRequired) {
				t.Errorf("old authentication under max_age=60: %v", err)
			}
			if _, err := f.p.AuthRequest(f.ctx, "nope"); !errors.Is(err, idp.ErrAuthRequestNotFound) {
				t.Errorf("unknown auth request: %v", err)
			}
		})

		t.Run("client credentials, introspection, revocation", func(t *testing.T) {
			svc := f.newRP(t, idp.ClientInput{Name: "数据共享交换", Type: idp.ClientService, AllowedScopes: []string{"exchange.read", "exchange.write"}})
			cc := clientcredentials.Config{ClientID: svc.client.ID, ClientSecret: svc.secret, TokenURL: f.oidc.Endpoint().TokenURL,
				Scopes: []string{"exchange.read"}}
			tok, err := cc.Token(f.ctx)
			if err != nil {
				t.Fatalf("client credentials: %v", err)
			}
			in := f.introspect(t, rs, tok.AccessToken)
			if !in.Active || in.Sub != svc.client.ID || in.ClientID != svc.client.ID || in.Scope != "exchange.read" {
				t.Errorf("introspection: %+v", in)
			}
			if _, err := f.userinfo(t, tok.AccessToken); err == nil {
				t.Error("a client credentials token got userinfo")
			}
			cc.Scopes = []string{"exchange.admin"}
			if _, err := cc.Token(f.ctx); err == nil {
				t.Error("a scope outside the client's allowed scopes was granted")
			}
			cc.Scopes = nil
			all, err := cc.Token(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if in := f.introspect(t, svc, all.AccessToken); in.Scope != "exchange.read exchange.write" {
				t.Errorf("default scopes: %q", in.Scope)
			}
			bad := cc
			bad.ClientSecret = "wrong"
			if _, err := bad.Token(f.ctx); err == nil {
				t.Error("a wrong secret was accepted")
			}
			webCC := clientcredentials.Config{ClientID: web.client.ID, ClientSecret: web.secret, TokenURL: cc.TokenURL}
			if _, err := webCC.Token(f.ctx); err == nil {
				t.Error("a web client used the client credentials grant")
			}
			// Introspection needs client authentication.
			if st := f.postForm(t, "/oauth/introspect", rs.client.ID, "wrong", url.Values{"token": {tok.AccessToken}}, nil); st != http.StatusUnauthorized {
				t.Errorf("introspection with a wrong secret: %d", st)
			}
			// Revocation (RFC 7009): only by the client it was issued to; then inactive.
			if st := f.postForm(t, "/revoke", rs.client.ID, rs.secret, url.Values{"token": {tok.AccessToken}}, nil); st == http.StatusOK {
				t.Error("another client revoked the token")
			}
			if st := f.postForm(t, "/revoke", svc.client.ID, svc.secret, url.Values{"token": {tok.AccessToken}}, nil); st != http.StatusOK {
				t.Errorf("revoke: %d", st)
			}
			if in := f.introspect(t, rs, tok.AccessToken); in.Active {
				t.Error("a revoked token is active")
			}
			if st := f.postForm(t, "/revoke", svc.client.ID, svc.secret, url.Values{"token": {"garbage"}}, nil); st != http.StatusOK {
				t.Errorf("revoking an unknown token: %d, want 200 (RFC 7009 §2.2)", st)
			}
			// Rotated secret: the old one stops working.
			secret, err := f.p.RotateSecret(f.ctx, staff, svc.client.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cc.Token(f.ctx); err == nil {
				t.Error("the old secret works after rotation")
			}
			cc.ClientSecret = secret
			if _, err := cc.Token(f.ctx); err != nil {
				t.Errorf("new secret: %v", err)
			}
		})

		t.Run("revoke refresh token", func(t *testing.T) {
			tok, _, _ := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-7", level: 2})
			if st := f.postForm(t, "/revoke", web.client.ID, web.secret, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, nil); st != http.StatusOK {
				t.Fatalf("revoke: %d", st)
			}
			if _, err := f.refresh(web, tok.RefreshToken); err == nil {
				t.Error("a revoked refresh token works")
			}
			if _, err := f.userinfo(t, tok.AccessToken); err == nil {
				t.Error("the access token of a revoked refresh token works")
			}
		})

		t.Run("expired access token", func(t *testing.T) {
			tok, _, _ := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-8", level: 2})
			if in := f.introspect(t, rs, tok.AccessToken); !in.Active {
				t.Fatal("fresh token inactive")
			}
			f.clock.advance(16 * time.Minute)
			if in := f.introspect(t, rs, tok.AccessToken); in.Active {
				t.Error("an expired token is active")
			}
			if _, err := f.userinfo(t, tok.AccessToken); err == nil {
				t.Error("an expired token got userinfo")
			}
			// A login left for more than 10 minutes expires too.
			id := f.startLogin(t, web.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			f.clock.advance(11 * time.Minute)
			if err := f.p.CompleteAuthRequest(f.ctx, id, "citizen-li", "", "sso-8", 2, nil, f.clock.now()); !errors.Is(err, idp.ErrAuthRequestNotFound) {
				t.Errorf("expired auth request: %v", err)
			}
		})

		t.Run("RP-initiated logout", func(t *testing.T) {
			tok, _, raw := f.codeFlow(t, web, login{subject: "citizen-zhang", session: "sso-9", level: 3})
			f.mu.Lock()
			f.logouts, f.ended = nil, nil
			f.mu.Unlock()
			// A post_logout_redirect_uri that is not registered is refused.
			bad := f.get(t, f.issuer+"/end_session?"+url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"http://evil.example/"}}.Encode())
			if bad.StatusCode == http.StatusFound {
				t.Fatalf("end_session redirected to an unregistered URI: %s", bad.Header.Get("Location"))
			}
			loc := location(t, f.get(t, f.issuer+"/end_session?"+url.Values{"id_token_hint": {raw},
				"post_logout_redirect_uri": {f.srv.URL + "/rp/bye"}, "state": {"st-1"}}.Encode()))
			if loc.Path != "/rp/bye" || loc.Query().Get("state") != "st-1" {
				t.Errorf("end_session went to %s", loc)
			}
			if _, err := f.userinfo(t, tok.AccessToken); err == nil {
				t.Error("the access token outlived the logout")
			}
			if _, err := f.refresh(web, tok.RefreshToken); err == nil {
				t.Error("the refresh token outlived the logout")
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if !slices.Equal(f.ended, []string{"sso-9"}) {
				t.Errorf("EndSession hook got %v", f.ended)
			}
			if len(f.logouts) != 1 || f.logouts[0].client != "web" {
				t.Errorf("back-channel logouts: %v", f.logouts)
			}
		})

		t.Run("back-channel logout", func(t *testing.T) {
			// Two relying parties in one SSO session; one without a back-channel URI.
			plain := f.newRP(t, idp.ClientInput{Name: "无回调应用"})
			tok1, idt1, _ := f.codeFlow(t, web, login{subject: "citizen-zhang", session: "sso-10", level: 3})
			tok2, _, _ := f.codeFlow(t, plain, login{subject: "citizen-zhang", session: "sso-10", level: 3})
			other, _, _ := f.codeFlow(t, web, login{subject: "citizen-zhang", session: "sso-11", level: 3})
			f.mu.Lock()
			f.logouts = nil
			f.mu.Unlock()
			if err := f.p.LogoutSession(f.ctx, "sso-10"); err != nil {
				t.Fatal(err)
			}
			for _, tok := range []*oauth2.Token{tok1, tok2} {
				if in := f.introspect(t, rs, tok.AccessToken); in.Active {
					t.Error("a token of the logged-out session is active")
				}
			}
			if in := f.introspect(t, rs, other.AccessToken); !in.Active {
				t.Error("a token of another session was revoked")
			}
			f.mu.Lock()
			calls := slices.Clone(f.logouts)
			f.mu.Unlock()
			if len(calls) != 1 || calls[0].client != "web" {
				t.Fatalf("back-channel calls: %v", calls)
			}
			// The RP verifies the logout token with the provider's published keys.
			payload, err := oidc.NewRemoteKeySet(f.ctx, f.issuer+"/keys").VerifySignature(f.ctx, calls[0].token)
			if err != nil {
				t.Fatalf("logout token signature: %v", err)
			}
			var lt struct {
				Iss    string         `json:"iss"`
				Aud    any            `json:"aud"`
				Iat    int64          `json:"iat"`
				Jti    string         `json:"jti"`
				Sid    string         `json:"sid"`
				Sub    string         `json:"sub"`
				Nonce  *string        `json:"nonce"`
				Events map[string]any `json:"events"`
			}
			if err := json.Unmarshal(payload, &lt); err != nil {
				t.Fatal(err)
			}
			aud := fmt.Sprint(lt.Aud)
			if lt.Iss != f.issuer || !strings.Contains(aud, web.client.ID) || lt.Iat == 0 || lt.Jti == "" || lt.Nonce != nil || lt.Sub != "citizen-zhang" {
				t.Errorf("logout token: %+v", lt)
			}
			if _, ok := lt.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok {
				t.Errorf("logout token events: %v", lt.Events)
			}
			if sid := claimsOf(t, idt1)["sid"]; lt.Sid != sid {
				t.Errorf("logout token sid %q, ID token sid %v", lt.Sid, sid)
			}
			if typ := jwtPart(t, calls[0].token, 0)["typ"]; typ != "logout+jwt" {
				t.Errorf("logout token typ %v", typ)
			}
			if !f.audited("oidc.logout") {
				t.Error("logout not audited")
			}
			// Logging out again is harmless.
			if err := f.p.LogoutSession(f.ctx, "sso-10"); err != nil {
				t.Error(err)
			}
		})

		t.Run("disabled client", func(t *testing.T) {
			app := f.newRP(t, idp.ClientInput{Name: "将停用"})
			tok, _, _ := f.codeFlow(t, app, login{subject: "citizen-li", session: "sso-12", level: 2})
			svc := f.newRP(t, idp.ClientInput{Name: "将停用服务", Type: idp.ClientService, AllowedScopes: []string{"a"}})
			cc := clientcredentials.Config{ClientID: svc.client.ID, ClientSecret: svc.secret, TokenURL: f.oidc.Endpoint().TokenURL}
			if _, err := cc.Token(f.ctx); err != nil {
				t.Fatal(err)
			}
			if err := f.p.DisableClient(f.ctx, staff, app.client.ID); err != nil {
				t.Fatal(err)
			}
			if err := f.p.DisableClient(f.ctx, staff, svc.client.ID); err != nil {
				t.Fatal(err)
			}
			resp := f.get(t, app.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("authorize for a disabled client: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if in := f.introspect(t, rs, tok.AccessToken); in.Active {
				t.Error("a disabled client's token is active")
			}
			if _, err := f.refresh(app, tok.RefreshToken); err == nil {
				t.Error("a disabled client refreshed")
			}
			if _, err := cc.Token(f.ctx); err == nil {
				t.Error("a disabled service client got a token")
			}
		})

		t.Run("signing key rotation", func(t *testing.T) {
			_, _, before := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-13", level: 2})
			if err := f.p.RotateSigningKey(f.ctx, "staff:staff-1"); err != nil {
				t.Fatal(err)
			}
			_, _, after := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-13", level: 2})
			if jwtPart(t, before, 0)["kid"] == jwtPart(t, after, 0)["kid"] {
				t.Error("the new token is signed with the old key")
			}
			// A fresh RP (no cached keys) verifies both: JWKS has the active and the previous key.
			fresh, err := oidc.NewProvider(f.ctx, f.issuer)
			if err != nil {
				t.Fatal(err)
			}
			v := fresh.Verifier(&oidc.Config{ClientID: web.client.ID})
			for _, raw := range []string{before, after} {
				if _, err := v.Verify(f.ctx, raw); err != nil {
					t.Errorf("verify across rotation: %v", err)
				}
			}
		})

		t.Run("sweep", func(t *testing.T) {
			f.clock.advance(48 * time.Hour)
			n, err := f.p.Sweep(f.ctx)
			if err != nil || n == 0 {
				t.Errorf("Sweep = %d, %v", n, err)
			}
		})
	}, crypto.Migrations, idp.Migrations)
}

func TestRegisterClient(t *testing.T) {
	d := dbtest.SQLite(t, crypto.Migrations, idp.Migrations)
	ctx := context.Background()
	k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := idp.New(idp.Config{DB: d, Fields: k.FieldCipher(), Issuer: "https://sso.sx.gov.cn/oidc", Users: users, Policy: authz.NewPolicy(divisions.Contains),
		LoginURL: func(id string) string { return "/login?authRequestID=" + id }, CryptoKey: [32]byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	f := false
	for _, tc := range []struct {
		name  string
		subj  authz.Subject
		in    idp.ClientInput
		field string // "" = accepted
	}{
		{"web https", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb, RedirectURIs: []string{"https://app.sx.gov.cn/cb"}}, ""},
		{"loopback http", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb, RedirectURIs: []string{"http://127.0.0.1:9000/cb", "http://localhost/cb"}}, ""},
		{"native private scheme", staff, idp.ClientInput{Name: "a", Type: idp.ClientNative, RedirectURIs: []string{"cn.gov.sx.app:/cb"}}, ""},
		{"service", staff, idp.ClientInput{Name: "a", Type: idp.ClientService, AllowedScopes: []string{"x.read"}}, ""},
		{"citizen may not register", authz.Subject{Kind: authz.Citizen, ID: "c"}, idp.ClientInput{Name: "a", Type: idp.ClientService}, "forbidden"},
		{"anonymous may not register", authz.Subject{}, idp.ClientInput{Name: "a", Type: idp.ClientService}, "forbidden"},
		{"an officer may not register", officer, idp.ClientInput{Name: "a", Type: idp.ClientService}, "forbidden"},
		{"a city admin may not register for the province", taiyuanAdmin, idp.ClientInput{Name: "a", Type: idp.ClientService, DivisionCode: "140000", DepartmentID: "d"}, "forbidden"},
		{"no name", staff, idp.ClientInput{Type: idp.ClientService}, "name"},
		{"bad type", staff, idp.ClientInput{Name: "a", Type: "spa"}, "type"},
		{"no redirect", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb}, "redirect_uris"},
		{"relative", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb, RedirectURIs: []string{"/cb"}}, "redirect_uris"},
		{"fragment", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb, RedirectURIs: []string{"https://a.cn/cb#x"}}, "redirect_uris"},
		{"wildcard", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb, RedirectURIs: []string{"https://*.a.cn/cb"}}, "redirect_uris"},
		{"http off loopback", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb, RedirectURIs: []string{"http://app.sx.gov.cn/cb"}}, "redirect_uris"},
		{"web private scheme", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb, RedirectURIs: []string{"cn.gov.sx.app:/cb"}}, "redirect_uris"},
		{"javascript", staff, idp.ClientInput{Name: "a", Type: idp.ClientNative, RedirectURIs: []string{"javascript:alert(1)"}}, "redirect_uris"},
		{"http backchannel", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb, RedirectURIs: []string{"https://a.cn/cb"}, BackchannelLogoutURI: "http://a.cn/bc"}, "backchannel_logout_uri"},
		{"level", staff, idp.ClientInput{Name: "a", Type: idp.ClientWeb, RedirectURIs: []string{"https://a.cn/cb"}, MinLevel: 4}, "min_level"},
		{"native without PKCE", staff, idp.ClientInput{Name: "a", Type: idp.ClientNative, RedirectURIs: []string{"cn.gov.sx.app:/cb"}, RequirePKCE: &f}, "require_pkce"},
		{"service with redirect", staff, idp.ClientInput{Name: "a", Type: idp.ClientService, RedirectURIs: []string{"https://a.cn/cb"}}, "redirect_uris"},
		{"bad scope", staff, idp.ClientInput{Name: "a", Type: idp.ClientService, AllowedScopes: []string{"a b"}}, "allowed_scopes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, secret, err := p.RegisterClient(ctx, tc.subj, tc.in)
			switch tc.field {
			case "":
				if err != nil {
					t.Fatal(err)
				}
				if (c.Type == idp.ClientNative) != (secret == "") {
					t.Errorf("type %s, secret %q", c.Type, secret)
				}
				if c.Type != idp.ClientService && !c.RequirePKCE {
					t.Error("PKCE not required by default")
				}
				if c.DepartmentID != staff.Dept || c.DivisionCode != staff.Division {
					t.Errorf("defaults: %+v", c)
				}
			case "forbidden":
				if !errors.Is(err, i18n.ErrForbidden) {
					t.Fatalf("got %v, want forbidden", err)
				}
			default:
				e, ok := i18n.As(err)
				if !ok || !errors.Is(err, idp.ErrInvalidClientInput) || e.Field != tc.field || e.Msg.ZH == "" || e.Msg.EN == "" {
					t.Fatalf("got %v, want an invalid-client error on %s", err, tc.field)
				}
			}
		})
	}
	list, err := p.ListClients(ctx, staff)
	if err != nil || len(list) != 4 {
		t.Errorf("ListClients: %d, %v", len(list), err)
	}
	if _, err := p.ListClients(ctx, authz.Subject{Kind: authz.Citizen, ID: "c"}); !errors.Is(err, i18n.ErrForbidden) {
		t.Errorf("citizen listed clients: %v", err)
	}
	if err := p.DisableClient(ctx, staff, "nope"); !errors.Is(err, i18n.ErrNotFound) {
		t.Errorf("disable unknown: %v", err)
	}
	// A city administrator manages the city's applications and sees no others.
	own, _, err := p.RegisterClient(ctx, taiyuanAdmin, idp.ClientInput{Name: "太原市应用", Type: idp.ClientService})
	if err != nil {
		t.Fatalf("city admin registers for the city: %v", err)
	}
	cityList, err := p.ListClients(ctx, taiyuanAdmin)
	if err != nil || len(cityList) != 1 || cityList[0].ID != own.ID {
		t.Errorf("city admin's list: %v %v", cityList, err)
	}
	if err := p.DisableClient(ctx, taiyuanAdmin, list[0].ID); !errors.Is(err, i18n.ErrNotFound) {
		t.Errorf("city admin disabled a provincial client: %v", err)
	}
}

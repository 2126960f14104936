package portal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// FederationConfig names the upstream OpenID provider the portal federates to — the
// national government service platform's identity (国家政务服务平台) — and this node as its
// client.
type FederationConfig struct {
	Issuer       string // the upstream's issuer URL (discovery at Issuer/.well-known/openid-configuration)
	ClientID     string
	ClientSecret string
	RedirectURL  string   // this node's public URL + /login/federated/callback, registered upstream
	DisplayName  string   // shown on the buttons, e.g. 国家政务服务平台
	Scopes       []string // default: openid profile

	// Claim names of the upstream's ID token. A real-name identity (name and ID number)
	// counts only when the level claim says 2 or more.
	NameClaim     string // default "name"
	IDNumberClaim string // default "id_number"
	LevelClaim    string // default "acr"
	// ACRLevels maps the upstream's own acr values to levels 0..3. Without an entry, a value
	// is read as a number: 2, "2", "L2" and "urn:dgov:loa:2" are all level 2; anything else 0.
	ACRLevels map[string]int
}

// Enabled tells whether federation is configured.
func (c FederationConfig) Enabled() bool { return c.Issuer != "" && c.ClientID != "" }

func (c FederationConfig) claim(name, def string) string {
	if name != "" {
		return name
	}
	return def
}

// level reads the upstream-asserted assurance level from a claim value.
func (c FederationConfig) level(v any) int {
	switch x := v.(type) {
	case string:
		if n, ok := c.ACRLevels[x]; ok {
			return max(0, min(n, identity.LevelStrong))
		}
		s := strings.TrimPrefix(x, "urn:dgov:loa:")
		s = strings.TrimPrefix(strings.TrimPrefix(s, "L"), "l")
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= identity.LevelStrong {
			return n
		}
	case float64:
		if x >= 0 && x <= identity.LevelStrong && x == math.Trunc(x) {
			return int(x)
		}
	}
	return 0
}

// Federation signs citizens in through the upstream provider (issue A1 item 6): GET
// /login/federated starts, GET /login/federated/callback finishes — an authorization-code
// flow with state, nonce and PKCE, the ID token verified with go-oidc — and then continues
// exactly as a local login does (Accounts.finish: back to the registered application with
// its code, or to next). /account/federated shows the person's links, links this account to
// their upstream identity (POST, CSRF-protected: a link is never made by a mere visit),
// unlinks, and lets an account created by federation set its first password. Who may be
// linked how is identity's policy (identity.LoginFederated).
//
// A pending login lives in a cookie of its own (name from its state, so two tabs do not
// clash), sealed with the node's field key under the state, for ten minutes, sent only to the
// callback; the callback deletes it and spends the state server-side
// (identity.SpendFederationState), so a callback is accepted once.
type Federation struct {
	// Accounts are the login pages this completes: identity, OpenID provider (Provider),
	// rendering, cookies and client addresses are theirs.
	Accounts *Accounts
	Upstream FederationConfig
	// Fields seals the pending-login cookie (the keyring's field cipher).
	Fields *crypto.FieldCipher
	// HTTPClient talks to the upstream; default: 10 s timeout.
	HTTPClient *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

// FederationTTL bounds a federated login from start to callback.
const FederationTTL = 10 * time.Minute

const (
	flowLogin = "login"
	flowLink  = "link"
	// federationCookie + the first 16 characters of the state names a pending login's cookie.
	federationCookie     = "dgov_fed_"
	federationCookiePath = "/login/federated/callback"
)

// Errors of the federated login pages.
var (
	ErrFederationState = &i18n.Error{Code: "federation.state", Status: http.StatusBadRequest,
		Msg: i18n.T("登录请求无效、已使用或已过期，请重新登录", "this sign-in is invalid, already used or expired; please sign in again")}
	ErrFederationUpstream = &i18n.Error{Code: "federation.upstream", Status: http.StatusBadGateway,
		Msg: i18n.T("外部身份平台暂时无法完成登录，请稍后再试或使用本站账号登录", "the external identity platform could not complete the sign-in; try again later or sign in with your account here")}
	ErrFederationCancelled = &i18n.Error{Code: "federation.cancelled", Status: http.StatusUnauthorized,
		Msg: i18n.T("外部身份平台未完成登录", "the external identity platform did not sign you in")}
)

// Routes registers the federated login and the account's federation page.
func (f *Federation) Routes(mux *http.ServeMux) {
	a := f.Accounts
	mux.HandleFunc("GET /login/federated", f.start)
	mux.HandleFunc("GET /login/federated/callback", f.callback)
	mux.HandleFunc("GET /account/federated", a.signedIn(f.accountPage))
	mux.HandleFunc("POST /account/federated/link", a.signedIn(f.startLink))
	mux.HandleFunc("POST /account/federated/unlink", a.signedIn(f.unlink))
	mux.HandleFunc("POST /account/federated/password", a.signedIn(f.setPassword))
}

func (f *Federation) now() time.Time {
	if f.Accounts.Now != nil {
		return f.Accounts.Now()
	}
	return time.Now()
}

func (f *Federation) client() *http.Client {
	if f.HTTPClient != nil {
		return f.HTTPClient
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// discover fetches the upstream's metadata once; a failure is retried on the next login.
func (f *Federation) discover(ctx context.Context) (*oidc.Provider, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.provider != nil {
		return f.provider, nil
	}
	// The provider keeps the client (not the cancellation) for fetching keys later.
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, f.client()), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, f.Upstream.Issuer)
	if err != nil {
		return nil, fmt.Errorf("federation: discovery of %s: %w", f.Upstream.Issuer, err)
	}
	f.provider = p
	return p, nil
}

func (f *Federation) oauth(p *oidc.Provider) *oauth2.Config {
	scopes := f.Upstream.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile"}
	}
	return &oauth2.Config{ClientID: f.Upstream.ClientID, ClientSecret: f.Upstream.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: f.Upstream.RedirectURL, Scopes: scopes}
}

// flow is a pending federated login, sealed in its cookie.
type flow struct {
	State         string `json:"s"`
	Nonce         string `json:"n"`
	Verifier      string `json:"v"`           // PKCE code verifier
	Mode          string `json:"m"`           // flowLogin or flowLink
	AccountID     string `json:"u,omitempty"` // flowLink: the account that asked to link
	AuthRequestID string `json:"a,omitempty"`
	Next          string `json:"x,omitempty"`
	Expires       int64  `json:"e"` // unix seconds
}

func randomString() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func flowAAD(state string) string { return "portal.federation:" + state }

func flowCookieName(state string) string {
	if len(state) > 16 {
		state = state[:16]
	}
	return federationCookie + state
}

// begin sends the browser upstream for fl (State, Nonce and Verifier are filled in here).
func (f *Federation) begin(w http.ResponseWriter, r *http.Request, fl flow) {
	p, err := f.discover(r.Context())
	if err != nil {
		httpx.Logger(r.Context()).Error("federation", "err", err)
		httpx.WriteError(w, r, ErrFederationUpstream)
		return
	}
	fl.State, fl.Nonce, fl.Verifier = randomString(), randomString(), oauth2.GenerateVerifier()
	fl.Expires = f.now().Add(FederationTTL).Unix()
	plain, _ := json.Marshal(fl)
	sealed, err := f.Fields.Seal(string(plain), flowAAD(fl.State))
	if err != nil {
		httpx.WriteError(w, r, fmt.Errorf("federation: seal state: %w", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookieName(fl.State), Value: base64.RawURLEncoding.EncodeToString(sealed),
		Path: federationCookiePath, MaxAge: int(FederationTTL / time.Second), HttpOnly: true, Secure: f.Accounts.Secure(r),
		// Lax: the callback is a top-level navigation from the upstream's site.
		SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, f.oauth(p).AuthCodeURL(fl.State, oidc.Nonce(fl.Nonce), oauth2.S256ChallengeOption(fl.Verifier)), http.StatusFound)
}

// takeFlow reads the pending login of state from its cookie and deletes the cookie. A
// missing, tampered (its seal binds the state) or expired one is false.
func (f *Federation) takeFlow(w http.ResponseWriter, r *http.Request, state string) (flow, bool) {
	var fl flow
	if state == "" || len(state) > 100 {
		return fl, false
	}
	ck, err := r.Cookie(flowCookieName(state))
	if err != nil {
		return fl, false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return fl, false
	}
	plain, err := f.Fields.Open(sealed, flowAAD(state))
	if err != nil || json.Unmarshal([]byte(plain), &fl) != nil {
		return fl, false
	}
	if subtle.ConstantTimeCompare([]byte(fl.State), []byte(state)) != 1 || f.now().Unix() > fl.Expires {
		return fl, false
	}
	http.SetCookie(w, &http.Cookie{Name: ck.Name, Value: "", Path: federationCookiePath, MaxAge: -1, HttpOnly: true,
		Secure: f.Accounts.Secure(r), SameSite: http.SameSiteLaxMode})
	return fl, true
}

// start begins a federated login (the login page's button links here with the pending
// authorization's id and next).
func (f *Federation) start(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fl := flow{Mode: flowLogin, AuthRequestID: q.Get("authRequestID"), Next: httpx.LocalPath(q.Get("next"), "")}
	if fl.AuthRequestID != "" && f.Accounts.Provider != nil {
		// Fail here, not after a round trip upstream, when the application's request is gone.
		if _, err := f.Accounts.Provider.LoginRequest(r.Context(), fl.AuthRequestID); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	f.begin(w, r, fl)
}

// startLink begins linking the signed-in account to the person's upstream identity.
func (f *Federation) startLink(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	f.begin(w, r, flow{Mode: flowLink, AccountID: ses.AccountID, AuthRequestID: r.PostFormValue("authRequestID"),
		Next: httpx.LocalPath(r.PostFormValue("next"), "")})
}

// callback finishes a federated login: the code is exchanged (with the PKCE verifier), the ID
// token verified (issuer, audience, expiry, signature, nonce), and the person signed in or
// the identity linked.
func (f *Federation) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	fl, ok := f.takeFlow(w, r, state)
	if !ok {
		httpx.WriteError(w, r, ErrFederationState)
		return
	}
	if err := f.Accounts.Identity.SpendFederationState(ctx, state, time.Unix(fl.Expires, 0)); err != nil {
		if errors.Is(err, identity.ErrFederationReplay) {
			err = ErrFederationState
		}
		httpx.WriteError(w, r, err)
		return
	}
	if e := q.Get("error"); e != "" {
		httpx.Logger(ctx).Info("federation: upstream refused", "error", e, "description", q.Get("error_description"))
		httpx.WriteError(w, r, ErrFederationCancelled)
		return
	}
	fi, err := f.exchange(ctx, q.Get("code"), fl)
	if err != nil {
		httpx.Logger(ctx).Warn("federation", "err", err)
		httpx.WriteError(w, r, ErrFederationUpstream)
		return
	}
	if fl.Mode == flowLink {
		f.finishLink(w, r, fl, fi)
		return
	}
	f.finishLogin(w, r, fl, fi)
}

// exchange redeems the code and verifies the ID token; the identity is what it asserts.
func (f *Federation) exchange(ctx context.Context, code string, fl flow) (identity.FederatedIdentity, error) {
	var fi identity.FederatedIdentity
	if code == "" {
		return fi, errors.New("callback without a code")
	}
	p, err := f.discover(ctx)
	if err != nil {
		return fi, err
	}
	cctx := oidc.ClientContext(ctx, f.client())
	tok, err := f.oauth(p).Exchange(cctx, code, oauth2.VerifierOption(fl.Verifier))
	if err != nil {
		return fi, fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return fi, errors.New("token response without an ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: f.Upstream.ClientID}).Verify(cctx, raw)
	if err != nil {
		return fi, fmt.Errorf("ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(fl.Nonce)) != 1 {
		return fi, errors.New("ID token: nonce does not match")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return fi, fmt.Errorf("ID token claims: %w", err)
	}
	str := func(name string) string { s, _ := claims[name].(string); return strings.TrimSpace(s) }
	fi = identity.FederatedIdentity{Issuer: idt.Issuer, Subject: idt.Subject,
		Level: f.Upstream.level(claims[f.Upstream.claim(f.Upstream.LevelClaim, "acr")]),
		Name:  str(f.Upstream.claim(f.Upstream.NameClaim, "name")), IDNumber: str(f.Upstream.claim(f.Upstream.IDNumberClaim, "id_number"))}
	return fi, nil
}

// finishLogin signs the person in as the linked account and continues the login.
func (f *Federation) finishLogin(w http.ResponseWriter, r *http.Request, fl flow, fi identity.FederatedIdentity) {
	a := f.Accounts
	res, err := a.Identity.LoginFederated(r.Context(), fi, a.ClientIP(r), r.UserAgent())
	if errors.Is(err, identity.ErrFederationNotLinked) {
		// Not linked, and the policy links nothing silently: sign in here once, then link.
		back := "/account/federated"
		if v := linkQuery(fl.AuthRequestID, fl.Next); v != "" {
			back += "?" + v
		}
		p := a.page(r, federationTitle, federationData{DisplayName: f.displayName(), Unlinked: true, UpstreamName: fi.Name,
			LoginURL: "/login?next=" + url.QueryEscape(back), RegisterURL: "/register?next=" + url.QueryEscape(back)})
		p.Error = identity.ErrFederationNotLinked
		a.render(w, r, http.StatusOK, "portal/federation", p)
		return
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	a.setCookie(w, r, res.Token)
	f.proceed(w, r, fl, res.Session)
}

// finishLink links the upstream identity to the account that asked, still signed in here.
func (f *Federation) finishLink(w http.ResponseWriter, r *http.Request, fl flow, fi identity.FederatedIdentity) {
	a := f.Accounts
	ses, _, ok := a.session(r)
	if !ok || ses.AccountID != fl.AccountID {
		httpx.WriteError(w, r, identity.ErrSessionInvalid)
		return
	}
	if _, err := a.Identity.LinkFederatedIdentity(r.Context(), ses.AccountID, fi); err != nil {
		f.renderAccount(w, r, ses, fl.AuthRequestID, fl.Next, err)
		return
	}
	if fl.AuthRequestID == "" && fl.Next == "" {
		http.Redirect(w, r, "/account/federated?ok=1", http.StatusSeeOther)
		return
	}
	f.proceed(w, r, fl, ses)
}

// proceed continues a login as Accounts.login does: back to the application (after a
// real-name step-up if the session is too weak for it), or to next.
func (f *Federation) proceed(w http.ResponseWriter, r *http.Request, fl flow, ses identity.Session) {
	a := f.Accounts
	d := loginData{AuthRequestID: fl.AuthRequestID, Next: httpx.LocalPath(fl.Next, "/account")}
	if d.AuthRequestID != "" && a.Provider != nil {
		lr, err := a.Provider.LoginRequest(r.Context(), d.AuthRequestID)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if ses.Level < lr.RequiredLevel {
			http.Redirect(w, r, "/account/realname?next="+url.QueryEscape("/login?authRequestID="+url.QueryEscape(d.AuthRequestID)), http.StatusSeeOther)
			return
		}
	}
	a.finish(w, r, d, ses)
}

func (f *Federation) displayName() string {
	if f.Upstream.DisplayName != "" {
		return f.Upstream.DisplayName
	}
	return "国家政务服务平台"
}

func linkQuery(authRequestID, next string) string {
	v := url.Values{}
	if authRequestID != "" {
		v.Set("authRequestID", authRequestID)
	}
	if next != "" {
		v.Set("next", next)
	}
	return v.Encode()
}

// ---- the account's federation page ----

var federationTitle = i18n.T("外部账号关联", "Linked accounts")

type federationData struct {
	DisplayName    string
	UpstreamIssuer string
	// The callback of an identity that is not linked: who the upstream said signed in, and
	// where to sign in (or register) here to link it.
	Unlinked              bool
	UpstreamName          string
	LoginURL, RegisterURL string
	// The account page.
	Links         []identity.FederatedLink
	Linked        bool // to this upstream
	HasPassword   bool
	AuthRequestID string
	Next          string
	ContinueURL   string // back to the application's login once linked
}

func (f *Federation) accountPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	q := r.URL.Query()
	f.renderAccount(w, r, ses, q.Get("authRequestID"), httpx.LocalPath(q.Get("next"), ""), nil)
}

// renderAccount shows the federation page, with failure (a user error) on it.
func (f *Federation) renderAccount(w http.ResponseWriter, r *http.Request, ses identity.Session, authRequestID, next string, failure error) {
	a := f.Accounts
	ctx := r.Context()
	d := federationData{DisplayName: f.displayName(), UpstreamIssuer: f.Upstream.Issuer, AuthRequestID: authRequestID, Next: next}
	var err error
	if d.Links, err = a.Identity.ListFederated(ctx, ses.AccountID); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if d.HasPassword, err = a.Identity.HasPassword(ctx, ses.AccountID); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	for _, l := range d.Links {
		d.Linked = d.Linked || l.Issuer == f.Upstream.Issuer
	}
	if authRequestID != "" {
		d.ContinueURL = "/login?authRequestID=" + url.QueryEscape(authRequestID)
	} else if next != "" {
		d.ContinueURL = next
	}
	p := a.page(r, federationTitle, d)
	if q := r.URL.Query(); q.Get("ok") != "" && r.Method == http.MethodGet {
		t := i18n.T("已保存", "Saved")
		p.Flash = &t
	}
	if failure != nil {
		a.fail(w, r, failure, "portal/federation", p)
		return
	}
	a.render(w, r, http.StatusOK, "portal/federation", p)
}

func (f *Federation) unlink(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	err := f.Accounts.Identity.UnlinkFederated(r.Context(), ses.AccountID, r.PostFormValue("issuer"), r.PostFormValue("subject"))
	if err != nil {
		f.renderAccount(w, r, ses, "", "", err)
		return
	}
	http.Redirect(w, r, "/account/federated?ok=1", http.StatusSeeOther)
}

func (f *Federation) setPassword(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	if err := f.Accounts.Identity.SetInitialPassword(r.Context(), ses.AccountID, r.PostFormValue("password")); err != nil {
		f.renderAccount(w, r, ses, "", "", err)
		return
	}
	http.Redirect(w, r, "/account/federated?ok=1", http.StatusSeeOther)
}

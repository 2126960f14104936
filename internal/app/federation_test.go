package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/config"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/portal"
	"github.com/dgov/dgov/web"
)

// Federation (issue A1 item 6) on both databases: a second dgov node stands for the national
// government service platform (国家政务服务平台) as the upstream OpenID provider.
//
// The downstream node is served here with portal.Federation mounted next to its own
// handler, because the app does not wire federation yet (see mountFederation): its routes run
// behind the same kernel stack (request ids, error pages, CSRF with the node's key), and
// everything else is the node's own Handler. The downstream answers as http://localhost:port
// and the upstream as http://127.0.0.1:port, so a cookie jar keeps their dgov_sso cookies
// apart, as a browser would two sites.
func TestFederatedLogin(t *testing.T) {
	eachDB(t, func(t *testing.T, up *node) {
		ctx := context.Background()
		const password = "Fenhe#River2026"
		// The citizen, registered and real-name verified at the upstream (the national platform)…
		idNumber := addResident(t, up, "李晋阳")
		citizenAccount(t, up, "13812340011", password, "李晋阳", idNumber)

		// …and the downstream, registered with the upstream as an application.
		down, _ := startFederatedNode(t, up.DB.Dialect == db.Postgres, func(downURL string) portal.FederationConfig {
			client, secret, err := up.IdP.RegisterClient(ctx, staffSubject(t, up), idp.ClientInput{Name: "山西政务服务网",
				Type: idp.ClientWeb, RedirectURIs: []string{downURL + "/login/federated/callback"}, MinLevel: 1})
			if err != nil {
				t.Fatalf("register the downstream upstream: %v", err)
			}
			return portal.FederationConfig{Issuer: up.URL + "/oidc", ClientID: client.ID, ClientSecret: secret,
				RedirectURL: downURL + "/login/federated/callback", DisplayName: "国家政务服务平台"}
		})
		// The same person has a local account downstream, verified too.
		addResident(t, down, "李晋阳")
		local := citizenAccount(t, down, "13812340012", password, "李晋阳", idNumber)
		rp := newRelyingParty(t, down, "太原市不动产登记网上服务") // requires L2

		// 1. First federated login, from an application: not linked yet, so the person signs in
		// locally once, links, and arrives at the application.
		c := client(t)
		res, _, at := walk(t, c, rp.srv.URL+"/", func(u *url.URL) bool { return u.Path == "/login" })
		authRequestID := at.Query().Get("authRequestID")
		if authRequestID == "" || !strings.HasPrefix(at.String(), down.URL) {
			t.Fatalf("the application's login should land on the downstream's login page, got %s (%d)", at, res.StatusCode)
		}
		res, page, at := walk(t, c, down.URL+"/login/federated?authRequestID="+url.QueryEscape(authRequestID), nil)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(at.String(), up.URL+"/login") || !strings.Contains(page, `name="password"`) {
			t.Fatalf("federated login should show the upstream's login page, got %s (%d)\n%.800s", at, res.StatusCode, page)
		}
		upstreamAuth := at.Query().Get("authRequestID")
		res, _ = postForm(t, c, up.URL, "/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "method": {"password"},
			"login": {"13812340011"}, "password": {password}, "authRequestID": {upstreamAuth}})
		res, page, at = walk(t, c, location(t, up.URL, res), nil)
		if res.StatusCode != http.StatusOK || at.Path != "/login/federated/callback" || !strings.Contains(page, `id="federation-unlinked"`) {
			t.Fatalf("an unlinked identity should be asked to sign in locally: %s (%d)\n%.1500s", at, res.StatusCode, page)
		}
		loginURL := attr(t, page, "federation-login", "href")
		_, page = get(t, c, down.URL+loginURL)
		next := mustQuery(t, loginURL).Get("next")
		res, body := postForm(t, c, down.URL, "/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "method": {"password"},
			"login": {"13812340012"}, "password": {password}, "next": {next}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != next {
			t.Fatalf("local sign-in: %d %s\n%.800s", res.StatusCode, res.Header.Get("Location"), body)
		}
		_, page = get(t, c, down.URL+next)
		if !strings.Contains(page, `id="federation-link"`) {
			t.Fatalf("the federation page should offer linking:\n%.1500s", page)
		}
		// Linking is a form post (CSRF-checked), never a mere visit.
		res, _ = postForm(t, c, down.URL, "/account/federated/link", url.Values{"authRequestID": {authRequestID}})
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("link without a CSRF token: %d", res.StatusCode)
		}
		res, _ = postForm(t, c, down.URL, "/account/federated/link", url.Values{"csrf_token": {csrfFrom(t, page)}, "authRequestID": {authRequestID}})
		// The upstream still has its session: straight back, linked, and on to the application.
		res, page, at = walk(t, c, location(t, down.URL, res), nil)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(at.String(), rp.srv.URL) || !strings.Contains(page, "欢迎，李晋阳") {
			t.Fatalf("after linking the application should be signed in: %s (%d)\n%.800s", at, res.StatusCode, page)
		}
		links, err := down.Identity.ListFederated(ctx, local.ID)
		if err != nil || len(links) != 1 || links[0].Issuer != up.URL+"/oidc" || links[0].Method != identity.LinkExplicit {
			t.Fatalf("links: %+v %v", links, err)
		}

		// 2. A second login, in a fresh browser, reuses the link: upstream sign-in, then signed in
		// downstream as the linked account, level min(L2, L2), amr fed.
		c2 := client(t)
		res, page, at = walk(t, c2, down.URL+"/login/federated", nil)
		if !strings.HasPrefix(at.String(), up.URL+"/login") {
			t.Fatalf("second login should start at the upstream: %s (%d)", at, res.StatusCode)
		}
		res, _ = postForm(t, c2, up.URL, "/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "method": {"password"},
			"login": {"13812340011"}, "password": {password}, "authRequestID": {at.Query().Get("authRequestID")}})
		res, page, at = walk(t, c2, location(t, up.URL, res), nil)
		if res.StatusCode != http.StatusOK || at.String() != down.URL+"/account" || !strings.Contains(page, "李晋阳") || !strings.Contains(page, "L2") {
			t.Fatalf("second federated login should end on the account page: %s (%d)\n%.1500s", at, res.StatusCode, page)
		}
		var amr string
		var level int
		if err := down.DB.QueryRow(ctx, `SELECT amr, level FROM sso_sessions WHERE account_id = ? ORDER BY created_at DESC LIMIT 1`, local.ID).
			Scan(&amr, &level); err != nil || amr != `["fed"]` || level != 2 {
			t.Fatalf("federated session: %s L%d %v", amr, level, err)
		}
		_, page = get(t, c2, down.URL+"/account/federated")
		if !strings.Contains(page, "国家政务服务平台") || !strings.Contains(page, "解除关联") {
			t.Fatalf("federation page:\n%.1500s", page)
		}

		// 3. A tampered state is refused; the real callback works once; replaying it — with the
		// cookie gone, or with the cookie put back — is refused.
		c3 := client(t)
		_, page, at = walk(t, c3, down.URL+"/login/federated", nil)
		res, _ = postForm(t, c3, up.URL, "/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "method": {"password"},
			"login": {"13812340011"}, "password": {password}, "authRequestID": {at.Query().Get("authRequestID")}})
		_, _, cb := walk(t, c3, location(t, up.URL, res), func(u *url.URL) bool { return u.Path == "/login/federated/callback" })
		var saved []*http.Cookie
		saved = append(saved, c3.Jar.Cookies(cb)...)
		tampered := *cb
		q := cb.Query()
		st := q.Get("state")
		q.Set("state", st[:len(st)-1]+flip(st[len(st)-1]))
		tampered.RawQuery = q.Encode()
		if res, _ := get(t, c3, tampered.String()); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("tampered state: %d", res.StatusCode)
		}
		q = cb.Query()
		q.Set("state", randomHex())
		tampered.RawQuery = q.Encode()
		if res, _ := get(t, c3, tampered.String()); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("unknown state: %d", res.StatusCode)
		}
		if res, _ := get(t, c3, cb.String()); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
			t.Fatalf("the real callback after a tampered one: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if res, _ := get(t, c3, cb.String()); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("replayed callback: %d", res.StatusCode)
		}
		c4 := client(t)
		c4.Jar.SetCookies(cb, saved)
		if res, body := get(t, c4, cb.String()); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "federation.state") && !strings.Contains(body, "已使用") {
			t.Fatalf("replayed callback with its cookie: %d\n%.500s", res.StatusCode, body)
		}

		// Every link and federated login is in the downstream's audit log.
		joined := strings.Join(auditActions(t, down), " ")
		for _, want := range []string{"identity.federation_linked", "auth.login", "identity.session_created"} {
			if !strings.Contains(joined, want) {
				t.Errorf("audit lacks %s: %s", want, joined)
			}
		}
		var fedLogins int
		if err := down.DB.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login' AND detail LIKE '%"fed"%'`).Scan(&fedLogins); err != nil || fedLogins < 2 {
			t.Errorf("federated logins audited: %d %v", fedLogins, err)
		}
	})
}

// An upstream that asserts a real-name identity — a name, an ID number and level 2 under its
// own claim names — links automatically to the one local account verified with that ID
// number, or creates an L2 account for a person of the population library; a weaker
// assertion links nothing. dgov's own provider does not release ID numbers, so a minimal
// OpenID provider (nationalStub) stands in for the national platform here.
func TestFederatedRealNameLink(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			if pg && testing.Short() {
				t.Skip("PostgreSQL tests are skipped with -short")
			}
			ctx := context.Background()
			stub := newNationalStub(t)
			down, _ := startFederatedNode(t, pg, func(downURL string) portal.FederationConfig {
				stub.redirect = downURL + "/login/federated/callback"
				return portal.FederationConfig{Issuer: stub.srv.URL, ClientID: stub.clientID, ClientSecret: stub.secret,
					RedirectURL: stub.redirect, DisplayName: "国家政务服务平台",
					IDNumberClaim: "cert_no", ACRLevels: map[string]int{"urn:gjzwfw:loa:realname": 2}}
			})
			zhang := resident(t, down, "张晋", 401)
			local := citizenAccount(t, down, "13812340021", "Fenhe#River2026", "张晋", zhang)
			wang := resident(t, down, "王汾", 402)

			login := func(claims map[string]any) (*http.Response, string, *url.URL) {
				stub.next(claims)
				return walk(t, client(t), down.URL+"/login/federated", nil)
			}
			// Too weak: the same person, but the upstream vouches only for level 1.
			res, page, _ := login(map[string]any{"sub": "nat-1", "name": "张晋", "cert_no": zhang, "acr": "urn:gjzwfw:loa:basic"})
			if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="federation-unlinked"`) {
				t.Fatalf("a level-1 assertion should link nothing: %d\n%.1000s", res.StatusCode, page)
			}
			// Real-name verified upstream, one local account with that ID number and name: linked.
			res, page, at := login(map[string]any{"sub": "nat-1", "name": "张晋", "cert_no": zhang, "acr": "urn:gjzwfw:loa:realname"})
			if res.StatusCode != http.StatusOK || at.Path != "/account" || !strings.Contains(page, "张晋") {
				t.Fatalf("automatic link: %s (%d)\n%.1000s", at, res.StatusCode, page)
			}
			if l, err := down.Identity.ListFederated(ctx, local.ID); err != nil || len(l) != 1 || l[0].Method != identity.LinkIDNumber || l[0].Subject != "nat-1" {
				t.Fatalf("links: %+v %v", l, err)
			}
			// No account yet, but a person of the population library: a new L2 account.
			res, page, at = login(map[string]any{"sub": "nat-2", "name": "王汾", "cert_no": wang, "acr": "urn:gjzwfw:loa:realname"})
			if res.StatusCode != http.StatusOK || at.Path != "/account" || !strings.Contains(page, "王汾") || !strings.Contains(page, "L2") {
				t.Fatalf("account creation: %s (%d)\n%.1000s", at, res.StatusCode, page)
			}
			acc, err := down.Identity.AccountByFederated(ctx, stub.srv.URL, "nat-2")
			if err != nil || acc.Level != 2 || acc.Name != "王汾" || acc.Mobile != "" {
				t.Fatalf("created account: %+v %v", acc, err)
			}
			// Someone the population library does not know: nothing is created.
			unknown := ids.MakeResident("140105", time.Date(1991, 3, 9, 0, 0, 0, 0, time.UTC), 403, true)
			res, page, _ = login(map[string]any{"sub": "nat-3", "name": "赵无名", "cert_no": unknown, "acr": "urn:gjzwfw:loa:realname"})
			if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="federation-unlinked"`) {
				t.Fatalf("an unknown person should link nothing: %d\n%.1000s", res.StatusCode, page)
			}
			joined := strings.Join(auditActions(t, down), " ")
			for _, want := range []string{"identity.federation_linked", "identity.register", "auth.login_failed"} {
				if !strings.Contains(joined, want) {
					t.Errorf("audit lacks %s: %s", want, joined)
				}
			}
		})
	}
}

// ---- the downstream node ----

// startFederatedNode opens a node at http://localhost:port with portal.Federation mounted,
// configured by upstream (called with the node's URL, so it can register the callback).
//
// When the app wires federation itself (Handler: fed.Routes(mux) when configured), this
// becomes startNode with the DGOV_FEDERATION_* settings.
func startFederatedNode(t *testing.T, postgres bool, upstream func(downURL string) portal.FederationConfig) (*node, *portal.Federation) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = freeAddr(t)
	_, port, _ := net.SplitHostPort(cfg.HTTPAddr)
	cfg.BaseURL = "http://localhost:" + port
	cfg.RateLimit, cfg.RateBurst = 1000, 1000
	if postgres {
		cfg.DatabaseURL, _ = dbtest.NewSchema(t)
	}
	ctx := context.Background()
	a, err := Open(ctx, cfg, slog.New(slog.DiscardHandler), Options{Argon: cheapArgon})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := a.Org.BootstrapAdmin(ctx, "admin", "系统管理员", testAdminPassword); err != nil {
		t.Fatalf("bootstrap admin: %v", err)
	}
	n := &node{App: a, URL: cfg.BaseURL}
	fed, h := mountFederation(t, a, upstream(n.URL))
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	hs := httpx.Server(cfg.HTTPAddr, h)
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return n, fed
}

// mountFederation builds the Federation the way the app will (see the wiring in the reply of
// this change) and serves its routes through the kernel stack, next to the node's Handler.
func mountFederation(t *testing.T, a *App, up portal.FederationConfig) (*portal.Federation, http.Handler) {
	t.Helper()
	srv, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	render, err := web.NewRenderer(a.Cfg.ThemeDir)
	if err != nil {
		t.Fatal(err)
	}
	csrf, err := httpx.NewCSRF(httpx.CSRFConfig{Key: a.csrfKey()})
	if err != nil {
		t.Fatal(err)
	}
	secure := func(r *http.Request) bool { return httpx.IsHTTPS(r, nil) }
	accounts := &portal.Accounts{Identity: a.Identity, Provider: loginProvider{a.IdP}, Render: render, Secure: secure,
		ClientIP: func(r *http.Request) string { return httpx.ClientIPFrom(r.Context()) }, Now: a.Now}
	fed := &portal.Federation{Accounts: accounts, Upstream: up, Fields: a.Keys.FieldCipher()}
	mux := http.NewServeMux()
	fed.Routes(mux)
	pt := &portal.Portal{Render: render, Org: a.Org, Secure: secure}
	fedH := httpx.Chain(mux, httpx.Stack(httpx.Config{Logger: a.Log, CSRF: csrf, HTMLErrorRenderer: pt.ErrorPage})...)
	return fed, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; strings.HasPrefix(p, "/login/federated") || strings.HasPrefix(p, "/account/federated") {
			fedH.ServeHTTP(w, r)
			return
		}
		srv.Handler.ServeHTTP(w, r)
	})
}

// ---- a minimal national platform ----

// nationalStub is an OpenID provider reduced to what federation uses — discovery, keys, an
// authorization endpoint that signs in whoever next names (the person has just logged in
// there), and a token endpoint with client authentication, single-use codes and PKCE — that
// asserts real-name claims as the national platform does.
type nationalStub struct {
	srv                        *httptest.Server
	key                        *rsa.PrivateKey
	clientID, secret, redirect string

	mu     sync.Mutex
	claims map[string]any
	codes  map[string]stubGrant
}

type stubGrant struct {
	nonce, challenge string
	claims           map[string]any
}

func newNationalStub(t *testing.T) *nationalStub {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &nationalStub{key: key, clientID: "sx-dgov", secret: randomHex(), codes: map[string]stubGrant{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *nationalStub) next(claims map[string]any) {
	s.mu.Lock()
	s.claims = claims
	s.mu.Unlock()
}

func (s *nationalStub) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		writeJSON(w, map[string]any{"issuer": s.srv.URL, "authorization_endpoint": s.srv.URL + "/authorize",
			"token_endpoint": s.srv.URL + "/token", "jwks_uri": s.srv.URL + "/keys", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"}})
	case "/keys":
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	case "/authorize":
		if q.Get("client_id") != s.clientID || q.Get("redirect_uri") != s.redirect || q.Get("response_type") != "code" ||
			q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := randomHex()
		s.mu.Lock()
		s.codes[code] = stubGrant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), claims: s.claims}
		s.mu.Unlock()
		http.Redirect(w, r, s.redirect+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	case "/token":
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		if id != s.clientID || secret != s.secret {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		g, ok := s.codes[r.PostFormValue("code")]
		delete(s.codes, r.PostFormValue("code"))
		s.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !ok || r.PostFormValue("redirect_uri") != s.redirect || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		now := time.Now()
		claims := map[string]any{"iss": s.srv.URL, "aud": s.clientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": g.nonce}
		for k, v := range g.claims {
			claims[k] = v
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: s.key, KeyID: "k1"}}, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		idToken, err := jwt.Signed(signer).Claims(claims).Serialize()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"access_token": randomHex(), "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ---- helpers ----

// walk follows redirects from u (across hosts, as a browser does) until a response that is
// not a redirect, or until stop says the next URL is far enough (it is then not requested).
// It returns the last response, its body, and the URL it came from (or the URL stop chose).
func walk(t *testing.T, c *http.Client, u string, stop func(*url.URL) bool) (*http.Response, string, *url.URL) {
	t.Helper()
	cur, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if stop != nil && stop(cur) {
			return nil, "", cur
		}
		res, body := get(t, c, cur.String())
		if res.StatusCode < 300 || res.StatusCode >= 400 {
			return res, body, cur
		}
		next, err := cur.Parse(res.Header.Get("Location"))
		if err != nil {
			t.Fatalf("redirect from %s: %v", cur, err)
		}
		cur = next
	}
	t.Fatalf("too many redirects from %s", u)
	return nil, "", nil
}

// location is a redirect's target, absolute.
func location(t *testing.T, base string, res *http.Response) string {
	t.Helper()
	if res.StatusCode < 300 || res.StatusCode >= 400 {
		t.Fatalf("want a redirect, got %d", res.StatusCode)
	}
	b, _ := url.Parse(base)
	u, err := b.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// attr reads an attribute of the element with id in page.
func attr(t *testing.T, page, id, name string) string {
	t.Helper()
	m := regexp.MustCompile(`<[^>]*id="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindString(page)
	if m == "" {
		m = regexp.MustCompile(`<[^>]*` + name + `="[^"]*"[^>]*id="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindString(page)
	}
	v := regexp.MustCompile(name + `="([^"]*)"`).FindStringSubmatch(m)
	if v == nil {
		t.Fatalf("no %s of #%s in page:\n%.1500s", name, id, page)
	}
	return html.UnescapeString(v[1])
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query()
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

// resident adds a person to a node's population library with a distinct sequence number.
func resident(t *testing.T, n *node, name string, seq int) string {
	t.Helper()
	number := ids.MakeResident("140105", time.Date(1988, 8, 8, 0, 0, 0, 0, time.UTC), seq, seq%2 == 1)
	if _, err := n.Base.AddPersons(context.Background(), []baselib.PersonInput{{Name: name, IDNumber: number,
		DivisionCode: "140105", Address: "山西省太原市小店区坞城路1号"}}); err != nil {
		t.Fatalf("add resident: %v", err)
	}
	return number
}

// citizenAccount registers and real-name verifies an account through the identity engine.
func citizenAccount(t *testing.T, n *node, mobile, password, name, idNumber string) identity.Account {
	t.Helper()
	ctx := context.Background()
	if err := n.Identity.SendCode(ctx, mobile, identity.PurposeRegister, ""); err != nil {
		t.Fatalf("send code: %v", err)
	}
	msgs, err := n.SMS.(*identity.SinkGateway).ListSink(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	var code string
	for _, m := range msgs {
		if mm := codeRE.FindStringSubmatch(m.Text); m.Mobile == mobile && mm != nil {
			code = mm[1]
			break
		}
	}
	acc, err := n.Identity.Register(ctx, identity.RegisterInput{Mobile: mobile, Code: code, Password: password})
	if err != nil {
		t.Fatalf("register %s: %v", mobile, err)
	}
	if acc, err = n.Identity.VerifyRealName(ctx, acc.ID, name, idNumber); err != nil {
		t.Fatalf("verify %s: %v", name, err)
	}
	return acc
}

// staffSubject is the node's administrator, who registers applications.
func staffSubject(t *testing.T, n *node) authz.Subject {
	t.Helper()
	s, err := n.Org.Subject(context.Background(), adminID(t, n))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func auditActions(t *testing.T, n *node) []string {
	t.Helper()
	rows, err := n.DB.Query(context.Background(), `SELECT action FROM audit_log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

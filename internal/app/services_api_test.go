package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/idp"
)

// phoneAppRedirect is the phone app's private-use redirect (RFC 8252 §7.1).
const phoneAppRedirect = "cn.gov.sx.app:/oauth/callback"

// phoneAppToken signs the person browsing with c in to a native app registered with the
// node, by single sign-on through the provider (authorization code with PKCE, no secret),
// and returns the access token the app receives and the app's client id.
func phoneAppToken(t *testing.T, n *node, c *http.Client) (token, clientID string) {
	t.Helper()
	ctx := context.Background()
	admin, err := n.Org.Subject(ctx, adminID(t, n))
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := n.IdP.RegisterClient(ctx, admin, idp.ClientInput{Name: "三晋通（山西政务服务 App）", Type: idp.ClientNative,
		RedirectURIs: []string{phoneAppRedirect}, MinLevel: 2})
	if err != nil {
		t.Fatalf("register the app: %v", err)
	}
	cfg := oauth2.Config{ClientID: app.ID, RedirectURL: phoneAppRedirect, Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: n.URL + "/oidc/authorize", TokenURL: n.URL + "/oidc/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	next := cfg.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier))
	// The system browser follows the provider's redirects; the person is signed in already.
	for range 10 {
		res, body := get(t, c, next)
		loc := res.Header.Get("Location")
		if res.StatusCode/100 != 3 || loc == "" {
			t.Fatalf("sign-in stopped at %s: %d\n%.1500s", next, res.StatusCode, body)
		}
		if strings.HasPrefix(loc, phoneAppRedirect) {
			u, _ := url.Parse(loc)
			if u.Query().Get("state") != "state-1" || u.Query().Get("code") == "" {
				t.Fatalf("callback %s", loc)
			}
			tok, err := cfg.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange the code: %v", err)
			}
			return tok.AccessToken, app.ID
		}
		base, _ := url.Parse(next)
		ref, _ := url.Parse(loc)
		next = base.ResolveReference(ref).String()
	}
	t.Fatal("too many redirects")
	return "", ""
}

// callAPI calls the node's API with a bearer token ("" for none) and, for a body, JSON.
func callAPI(t *testing.T, c *http.Client, method, u, token, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// getiBody is a 个体工商户设立登记 application as the phone app sends it.
func getiBody(name, number, mobile, phone string) string {
	v, _ := json.Marshal(map[string]any{"operator_name": name, "operator_id_number": number, "phone": phone, "org_form": "individual",
		"shop_name": "晋阳小吃（掌上办）", "address": "太原市小店区亲贤北街 9 号", "division": "140105", "business_scope": "小吃、饮品零售",
		"employees": 2, "capital": "50000"})
	return `{"division": "140105", "values": ` + string(v) + `}`
}

// The phone app's journey, on both databases: a verified citizen signs in to the app by
// single sign-on, reads the form, applies through the API — a refused value answered 422
// with the form's field errors, as the web form refuses it — and finds the application, with
// the same values, on the portal's page. Without a token the API answers 401; with a system
// client's token, 403; once the app is disabled, its tokens stop at once (401).
func TestServicesAPIPhoneApp(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		ctx := context.Background()
		serviceDepartment(t, n, "scjg", "太原市市场监督管理局", "市场监督管理局")
		c := client(t)
		number := registerVerified(t, n, c, "13811119001", "郭汾阳", 401)
		token, appID := phoneAppToken(t, n, c)
		api := &http.Client{Timeout: c.Timeout}
		apply := n.URL + "/api/v1/services/" + itemGeti + "/applications"

		// The form the app renders is the declaration the web page renders.
		st, body := callAPI(t, api, "GET", n.URL+"/api/v1/services/"+itemGeti+"/form", "", "")
		var fm struct {
			FormVersionID string `json:"form_version_id"`
		}
		if err := json.Unmarshal([]byte(body), &fm); st != http.StatusOK || err != nil || fm.FormVersionID == "" {
			t.Fatalf("form: %d %v\n%.1000s", st, err, body)
		}

		// A refused value: 422 with the field, its code and both texts.
		st, body = callAPI(t, api, "POST", apply, token, getiBody("郭汾阳", number, "13811119001", "123"))
		if st != http.StatusUnprocessableEntity || !strings.Contains(body, `"field":"phone","code":"`) || !strings.Contains(body, `"message":{"zh":"`) {
			t.Fatalf("refused phone: %d\n%.2000s", st, body)
		}

		// Submitted.
		st, body = callAPI(t, api, "POST", apply, token, getiBody("郭汾阳", number, "13811119001", "13811119001"))
		var app govservice.Application
		if err := json.Unmarshal([]byte(body), &app); st != http.StatusCreated || err != nil || app.ID == "" {
			t.Fatalf("submit: %d %v\n%.2000s", st, err, body)
		}
		if app.FormVersionID != fm.FormVersionID || app.Applicant.Kind != "citizen" || app.Applicant.Name != "郭汾阳" {
			t.Errorf("application: %+v (form %s)", app, fm.FormVersionID)
		}
		st, body = callAPI(t, api, "GET", n.URL+"/api/v1/applications", token, "")
		if st != http.StatusOK || !strings.Contains(body, `"id":"`+app.ID+`"`) {
			t.Fatalf("mine: %d\n%.2000s", st, body)
		}
		st, body = callAPI(t, api, "GET", n.URL+"/api/v1/applications/"+app.ID, token, "")
		if st != http.StatusOK || !strings.Contains(body, `"shop_name":"晋阳小吃（掌上办）"`) {
			t.Fatalf("one: %d\n%.2000s", st, body)
		}

		// The same application, with the same values, on the portal's page.
		_, page := get(t, c, n.URL+"/account/applications/"+app.ID)
		mustContain(t, "the web page", page, "个体工商户设立登记", app.Number, "晋阳小吃（掌上办）", "太原市小店区亲贤北街 9 号", "小吃、饮品零售", `data-status="submitted"`)

		// Without a token: 401, even with the person's cookies; a forged token: 401.
		req, _ := http.NewRequest("POST", apply, strings.NewReader(getiBody("郭汾阳", number, "13811119001", "13811119001")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", n.URL)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("cookies instead of a token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
		if st, _ := callAPI(t, api, "GET", n.URL+"/api/v1/applications", "", ""); st != http.StatusUnauthorized {
			t.Fatalf("no token: %d", st)
		}
		if st, _ := callAPI(t, api, "GET", n.URL+"/api/v1/applications", token+"x", ""); st != http.StatusUnauthorized {
			t.Fatalf("forged token: %d", st)
		}

		// A system client's own token is valid at the provider, but it is nobody's.
		admin, err := n.Org.Subject(ctx, adminID(t, n))
		if err != nil {
			t.Fatal(err)
		}
		sys, secret, err := n.IdP.RegisterClient(ctx, admin, idp.ClientInput{Name: "太原市市场监管业务系统", Type: idp.ClientService,
			AllowedScopes: []string{exchange.ScopeExchange}})
		if err != nil {
			t.Fatal(err)
		}
		cc := clientcredentials.Config{ClientID: sys.ID, ClientSecret: secret, TokenURL: n.URL + "/oidc/oauth/token", Scopes: []string{exchange.ScopeExchange}}
		systok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		st, body = callAPI(t, api, "POST", apply, systok.AccessToken, getiBody("郭汾阳", number, "13811119001", "13811119001"))
		if st != http.StatusForbidden || !strings.Contains(body, `"code":"api.person_token_required"`) {
			t.Fatalf("system token: %d\n%.1000s", st, body)
		}
		if st, _ := callAPI(t, api, "GET", n.URL+"/api/v1/applications", systok.AccessToken, ""); st != http.StatusForbidden {
			t.Fatalf("system token reads: %d", st)
		}

		// The app disabled after the token was issued: the token is worthless at once, not at expiry.
		if err := n.IdP.DisableClient(ctx, admin, appID); err != nil {
			t.Fatal(err)
		}
		if st, body := callAPI(t, api, "GET", n.URL+"/api/v1/applications", token, ""); st != http.StatusUnauthorized {
			t.Fatalf("token of a disabled app: %d\n%.1000s", st, body)
		}
	})
}

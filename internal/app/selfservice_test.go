package app

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/platform/ids"
)

// registerVerified registers a citizen through the portal's pages and verifies the real name;
// c is left signed in.
func registerVerified(t *testing.T, n *node, c *http.Client, mobile, name string, seq int) string {
	t.Helper()
	number := ids.MakeResident("140105", time.Date(1985, 3, 8, 0, 0, 0, 0, time.UTC), seq, true)
	if _, err := n.Base.AddPersons(context.Background(), []baselib.PersonInput{{Name: name, IDNumber: number, DivisionCode: "140105",
		Address: "山西省太原市小店区", Mobile: mobile}}); err != nil {
		t.Fatal(err)
	}
	_, page := get(t, c, n.URL+"/register")
	_, page = postForm(t, c, n.URL, "/register/code", url.Values{"csrf_token": {csrfFrom(t, page)}, "mobile": {mobile}})
	res, body := postForm(t, c, n.URL, "/register", url.Values{"csrf_token": {csrfFrom(t, page)}, "mobile": {mobile},
		"code": {lastCode(t, n, c, mobile)}, "password": {"Fenhe#River2026"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("register %s: %d\n%.800s", mobile, res.StatusCode, body)
	}
	_, page = get(t, c, n.URL+"/account/realname")
	if res, body := postForm(t, c, n.URL, "/account/realname", url.Values{"csrf_token": {csrfFrom(t, page)}, "name": {name}, "id_number": {number}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("verify %s: %d\n%.800s", name, res.StatusCode, body)
	}
	return number
}

// follow is c's cookie jar with redirects followed, as a browser would.
func follow(c *http.Client) *http.Client { return &http.Client{Jar: c.Jar, Timeout: c.Timeout} }

// Self-service on the account page: an authenticator app becomes a second factor; the apps a
// person signed in to are listed and can be cut off; an enterprise's legal representative adds
// an operator, who may act for it until removed.
func TestCitizenSelfService(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		rp := newRelyingParty(t, n, "晋中市公积金网上服务")
		c := client(t)
		registerVerified(t, n, c, "13812340011", "赵汾河", 201)

		// Sign in to the app through SSO, then see it on the account page and revoke it.
		res, body := get(t, follow(c), rp.srv.URL+"/")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "欢迎，赵汾河") {
			t.Fatalf("SSO to the app: %d %.500s", res.StatusCode, body)
		}
		var grants int
		if err := n.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM audit_log WHERE action = 'oidc.token.grant' AND object = ?`,
			"oidc_client:"+rp.cfg.ClientID).Scan(&grants); err != nil || grants != 1 {
			t.Fatalf("token grants audited: %d %v", grants, err)
		}
		_, page := get(t, c, n.URL+"/account")
		if !strings.Contains(page, "晋中市公积金网上服务") {
			t.Fatalf("the app is not listed:\n%.3000s", page)
		}
		if res, _ := postForm(t, c, n.URL, "/account/apps/revoke", url.Values{"csrf_token": {csrfFrom(t, page)}, "client_id": {rp.cfg.ClientID}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke app: %d", res.StatusCode)
		}
		_, page = get(t, c, n.URL+"/account")
		if strings.Contains(page, "晋中市公积金网上服务") {
			t.Fatal("a revoked app is still listed")
		}

		// Authenticator app: set up, confirm, then required at the next password login.
		res, page = postForm(t, c, n.URL, "/account/totp/enroll", url.Values{"csrf_token": {csrfFrom(t, page)}})
		m := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(page)
		if res.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("enroll: %d\n%.2000s", res.StatusCode, page)
		}
		code, _ := totp.GenerateCode(m[1], time.Now())
		if res, body := postForm(t, c, n.URL, "/account/totp/confirm", url.Values{"csrf_token": {csrfFrom(t, page)}, "code": {code}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("confirm: %d\n%.1500s", res.StatusCode, body)
		}
		_, page = get(t, c, n.URL+"/account")
		postForm(t, c, n.URL, "/logout", url.Values{"csrf_token": {csrfFrom(t, page)}})
		_, page = get(t, c, n.URL+"/login")
		res, page = postForm(t, c, n.URL, "/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "method": {"password"}, "login": {"13812340011"}, "password": {"Fenhe#River2026"}})
		if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="otp"`) {
			t.Fatalf("password alone signed in despite TOTP: %d", res.StatusCode)
		}
		// The code just used to confirm is refused (no reuse); the next one works.
		res, _ = postForm(t, c, n.URL, "/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "method": {"password"}, "login": {"13812340011"}, "password": {"Fenhe#River2026"}, "otp": {code}})
		if res.StatusCode == http.StatusSeeOther {
			t.Fatal("a TOTP code was accepted twice")
		}
		next, _ := totp.GenerateCode(m[1], time.Now().Add(30*time.Second))
		_, page = get(t, c, n.URL+"/login")
		res, body = postForm(t, c, n.URL, "/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "method": {"password"}, "login": {"13812340011"}, "password": {"Fenhe#River2026"}, "otp": {next}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("login with password + TOTP: %d\n%.1500s", res.StatusCode, body)
		}
		// An SMS code alone does not get past the authenticator app either.
		sms := client(t)
		_, page = get(t, sms, n.URL+"/login?method=sms")
		_, page = postForm(t, sms, n.URL, "/login/code", url.Values{"csrf_token": {csrfFrom(t, page)}, "mobile": {"13812340011"}})
		res, body = postForm(t, sms, n.URL, "/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "method": {"sms"},
			"login": {"13812340011"}, "code": {lastCode(t, n, sms, "13812340011")}})
		if res.StatusCode == http.StatusSeeOther || !strings.Contains(body, "动态口令") {
			t.Fatalf("SMS login skipped TOTP: %d", res.StatusCode)
		}

		// Enterprise: the legal representative binds it and adds an operator.
		ctx := context.Background()
		rep := client(t)
		repID := registerVerified(t, n, rep, "13812340012", "钱晋商", 202)
		code18, err := ids.MakeCreditCode('9', '1', "140105", "MA0XY1A2")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Base.AddEntities(ctx, []baselib.EntityInput{{CreditCode: code18, Name: "太原市晋商数字科技有限公司",
			EntityType: baselib.TypeLLC, LegalRepName: "钱晋商", LegalRepID: repID, DivisionCode: "140105", Address: "太原市小店区",
			RegisteredCapitalFen: 100000000, Established: "2020-01-02", Status: baselib.StatusActive}}); err != nil {
			t.Fatalf("add entity: %v", err)
		}
		_, page = get(t, rep, n.URL+"/account")
		if res, body := postForm(t, rep, n.URL, "/account/enterprises", url.Values{"csrf_token": {csrfFrom(t, page)}, "credit_code": {code18}, "name": {"太原市晋商数字科技有限公司"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("bind enterprise: %d\n%.1500s", res.StatusCode, body)
		}
		_, page = get(t, rep, n.URL+"/account")
		entID := regexp.MustCompile(`/account/enterprises/([^"/]+)"`).FindStringSubmatch(page)[1]
		_, page = get(t, rep, n.URL+"/account/enterprises/"+entID)
		if res, body := postForm(t, rep, n.URL, "/account/enterprises/"+entID+"/members", url.Values{"csrf_token": {csrfFrom(t, page)}, "mobile": {"13812340011"}, "role": {"operator"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("add operator: %d\n%.1500s", res.StatusCode, body)
		}
		// The operator acts for the enterprise…
		_, page = get(t, c, n.URL+"/account")
		if res, body := postForm(t, c, n.URL, "/account/act", url.Values{"csrf_token": {csrfFrom(t, page)}, "enterprise_id": {entID}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("act as: %d\n%.1000s", res.StatusCode, body)
		}
		_, page = get(t, c, n.URL+"/account")
		if !strings.Contains(page, `id="acting"`) {
			t.Fatalf("not acting for the enterprise:\n%.2000s", page)
		}
		// …until removed: from then on the same session no longer acts for it.
		_, page = get(t, rep, n.URL+"/account/enterprises/"+entID)
		opID := regexp.MustCompile(`/members/([^"/]+)/remove`).FindStringSubmatch(page)[1]
		if res, _ := postForm(t, rep, n.URL, "/account/enterprises/"+entID+"/members/"+opID+"/remove", url.Values{"csrf_token": {csrfFrom(t, page)}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("remove operator: %d", res.StatusCode)
		}
		_, page = get(t, c, n.URL+"/account")
		if strings.Contains(page, `id="acting"`) {
			t.Fatal("a removed operator still acts for the enterprise")
		}
		if res, _ := postForm(t, c, n.URL, "/account/act", url.Values{"csrf_token": {csrfFrom(t, page)}, "enterprise_id": {entID}}); res.StatusCode < 400 {
			t.Fatalf("a removed operator could act again: %d", res.StatusCode)
		}
	})
}

// A third-party application asks the person's consent once; a refusal sends the application
// access_denied; consent and refusal are audited; revoking the app asks again next time.
func TestThirdPartyConsent(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		rp := newRelyingParty(t, n, "某商业银行开户助手", func(in *idp.ClientInput) { in.ThirdParty = true })
		c := client(t)
		registerVerified(t, n, c, "13812340021", "孙太行", 301)

		// First visit: the consent page, naming the app; refusing returns access_denied to it.
		res, body := get(t, follow(c), rp.srv.URL+"/")
		if !strings.Contains(body, `id="consent-app"`) || !strings.Contains(body, "某商业银行开户助手") {
			t.Fatalf("no consent page: %d\n%.1500s", res.StatusCode, body)
		}
		res, body = postFormFollow(t, c, n.URL, "/login/consent", url.Values{"csrf_token": {csrfFrom(t, body)},
			"authRequestID": {authRequestFrom(t, body)}, "decision": {"deny"}})
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "access_denied") {
			t.Fatalf("refusal: %d %s", res.StatusCode, body)
		}
		// Second visit: allow; the third needs no consent.
		_, body = get(t, follow(c), rp.srv.URL+"/")
		res, body = postFormFollow(t, c, n.URL, "/login/consent", url.Values{"csrf_token": {csrfFrom(t, body)},
			"authRequestID": {authRequestFrom(t, body)}, "decision": {"allow"}})
		if !strings.Contains(body, "欢迎，孙太行") {
			t.Fatalf("after consent: %d %.800s", res.StatusCode, body)
		}
		rp.mu.Lock()
		rp.sessions = map[string]rpSession{}
		rp.mu.Unlock()
		if _, body = get(t, follow(c), rp.srv.URL+"/"); !strings.Contains(body, "欢迎，孙太行") {
			t.Fatalf("consent asked twice:\n%.800s", body)
		}
		var n1, n2 int
		n.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM audit_log WHERE action = 'oidc.consent'`).Scan(&n1)
		n.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM audit_log WHERE action = 'oidc.consent_denied'`).Scan(&n2)
		if n1 != 1 || n2 != 1 {
			t.Fatalf("audited consents %d, refusals %d", n1, n2)
		}
	})
}

var authRequestRE = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

func authRequestFrom(t *testing.T, page string) string {
	t.Helper()
	m := authRequestRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no authRequestID in page:\n%.1000s", page)
	}
	return m[1]
}

// postFormFollow posts a form and follows the redirects, as a browser would.
func postFormFollow(t *testing.T, c *http.Client, base, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	res, err := follow(c).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// Civil servants' single sign-on: an application registered for staff signs in whoever is
// signed in to the console, without another prompt; console logout ends its session too; a
// citizen's portal session never answers it.
func TestStaffSSO(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		rp := newRelyingParty(t, n, "山西省协同办公系统", func(in *idp.ClientInput) { in.Audience = idp.AudienceStaff })
		// A citizen signed in at the portal is sent to the console login, not let in.
		citizen := client(t)
		registerVerified(t, n, citizen, "13812340031", "周晋祠", 401)
		if _, body := get(t, follow(citizen), rp.srv.URL+"/"); !strings.Contains(body, `id="username"`) || strings.Contains(body, "欢迎") {
			t.Fatalf("a citizen session answered a staff app:\n%.800s", body)
		}
		staff := client(t)
		login(t, n, staff, "admin", testAdminPassword)
		res, body := get(t, follow(staff), rp.srv.URL+"/")
		if res.StatusCode != 200 || !strings.Contains(body, "欢迎，系统管理员") {
			t.Fatalf("staff SSO: %d %.800s", res.StatusCode, body)
		}
		_, page := get(t, staff, n.URL+"/console")
		postForm(t, staff, n.URL, "/console/logout", url.Values{"csrf_token": {csrfFrom(t, page)}})
		deadline := time.Now().Add(5 * time.Second)
		for rp.sessionCount() != 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if rp.sessionCount() != 0 {
			t.Fatal("console logout did not end the staff app's session")
		}
	})
}

package app

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/dgov/dgov/internal/baselib"
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

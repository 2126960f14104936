package app

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/platform/ids"
)

// addResident puts one person into the population library, as the demo does for 10,000.
func addResident(t *testing.T, n *node, name string) string {
	t.Helper()
	number := ids.MakeResident("140105", time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC), 123, true)
	if _, err := n.Base.AddPersons(context.Background(), []baselib.PersonInput{{Name: name, IDNumber: number,
		DivisionCode: "140105", Address: "山西省太原市小店区亲贤北街1号", Mobile: "13912345678"}}); err != nil {
		t.Fatalf("add resident: %v", err)
	}
	return number
}

var codeRE = regexp.MustCompile(`验证码是(\d{6})`)

// lastCode reads the newest SMS code for mobile from the development sink page.
func lastCode(t *testing.T, n *node, c *http.Client, mobile string) string {
	t.Helper()
	_, page := get(t, c, n.URL+"/dev/sms")
	i := strings.Index(page, mobile)
	if i < 0 {
		t.Fatalf("no SMS to %s in the sink:\n%.1500s", mobile, page)
	}
	m := codeRE.FindStringSubmatch(page[i:])
	if m == nil {
		t.Fatalf("no code in the sink for %s", mobile)
	}
	return m[1]
}

// A citizen registers with an SMS code, verifies the real name against the population library
// (level L2), sees the account page, and signs out — on both databases.
func TestCitizenRegistersAndVerifies(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		idNumber := addResident(t, n, "李晋阳")
		c := client(t)
		const mobile = "13812340001"
		_, page := get(t, c, n.URL+"/register")
		res, body := postForm(t, c, n.URL, "/register/code", url.Values{"csrf_token": {csrfFrom(t, page)}, "mobile": {mobile}})
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "验证码已发送") {
			t.Fatalf("send code: %d\n%.1000s", res.StatusCode, body)
		}
		code := lastCode(t, n, c, mobile)
		// A wrong code is refused with a clear message and nothing is created.
		res, body = postForm(t, c, n.URL, "/register", url.Values{"csrf_token": {csrfFrom(t, body)}, "mobile": {mobile}, "code": {"000000"}, "password": {"Fenhe#River2026"}})
		if res.StatusCode < 400 || !strings.Contains(body, "验证码") {
			t.Fatalf("wrong code accepted: %d\n%.1000s", res.StatusCode, body)
		}
		res, body = postForm(t, c, n.URL, "/register", url.Values{"csrf_token": {csrfFrom(t, body)}, "mobile": {mobile}, "code": {code}, "password": {"Fenhe#River2026"}})
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/account/realname") {
			t.Fatalf("register: %d %s\n%.1000s", res.StatusCode, res.Header.Get("Location"), body)
		}
		_, page = get(t, c, n.URL+"/account")
		if !strings.Contains(page, "L1") {
			t.Fatalf("new account should be L1:\n%.1500s", page)
		}
		// Real-name verification: a wrong name fails, the right one raises the account to L2.
		_, page = get(t, c, n.URL+"/account/realname")
		res, body = postForm(t, c, n.URL, "/account/realname", url.Values{"csrf_token": {csrfFrom(t, page)}, "name": {"王晋阳"}, "id_number": {idNumber}})
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "不匹配") {
			t.Fatalf("wrong name: %d\n%.1000s", res.StatusCode, body)
		}
		res, _ = postForm(t, c, n.URL, "/account/realname", url.Values{"csrf_token": {csrfFrom(t, body)}, "name": {"李晋阳"}, "id_number": {idNumber}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("verify: %d", res.StatusCode)
		}
		_, page = get(t, c, n.URL+"/account")
		if !strings.Contains(page, "L2") || !strings.Contains(page, "李晋阳") || !strings.Contains(page, "小店区") {
			t.Fatalf("account page after verification:\n%.2000s", page)
		}
		// Sign out, then sign in again by ID number and password.
		postForm(t, c, n.URL, "/logout", url.Values{"csrf_token": {csrfFrom(t, page)}})
		res, _ = get(t, c, n.URL+"/account")
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("account page after logout: %d", res.StatusCode)
		}
		_, page = get(t, c, n.URL+"/login")
		res, _ = postForm(t, c, n.URL, "/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "method": {"password"}, "login": {idNumber}, "password": {"Fenhe#River2026"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
			t.Fatalf("login by ID number: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		// Every step is in the audit log.
		var actions []string
		rows, err := n.DB.Query(context.Background(), `SELECT action FROM audit_log WHERE action LIKE 'identity.%' OR action LIKE 'auth.%' ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a string
			rows.Scan(&a)
			actions = append(actions, a)
		}
		rows.Close()
		joined := strings.Join(actions, " ")
		for _, want := range []string{"identity.register", "identity.realname_failed", "identity.realname_verified", "auth.logout", "auth.login"} {
			if !strings.Contains(joined, want) {
				t.Errorf("audit lacks %s: %v", want, actions)
			}
		}
	})
}

package app

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Scenario table in the PocketBase style: each row is a request and what its answer must and
// must not contain, run against a real node on both databases.
func TestHTTPScenarios(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		anon := client(t)
		staff := client(t)
		login(t, n, staff, "admin", testAdminPassword)
		cases := []struct {
			name    string
			c       *http.Client
			method  string
			path    string
			body    string
			hdr     []string
			status  int
			want    []string
			notWant []string
		}{
			{"health", anon, "GET", "/healthz", "", nil, 200, []string{"ok"}, nil},
			{"ready", anon, "GET", "/readyz", "", nil, 200, []string{`"database"`, `"nats"`}, nil},
			{"metrics", anon, "GET", "/metrics", "", nil, 200, []string{"go_goroutines", "http_"}, nil},
			{"openapi", anon, "GET", "/api/openapi.json", "", nil, 200, []string{`"openapi": "3.1.0"`, "/api/v1/validate/{kind}"}, nil},
			{"portal in Chinese", anon, "GET", "/", "", nil, 200, []string{"山西省数字政府", `lang="zh-CN"`}, nil},
			{"portal in English", anon, "GET", "/?lang=en", "", nil, 200, []string{"Shanxi Digital Government", `lang="en"`}, []string{"一网通办 ·"}},
			{"static CSS", anon, "GET", "/static/css/dgov.css", "", nil, 200, []string{"--red"}, nil},
			{"security headers on pages", anon, "GET", "/", "", nil, 200, nil, nil},
			{"unknown page for a browser", anon, "GET", "/no/such/page", "", []string{"Accept", "text/html"}, 404, []string{"未找到", "<html"}, nil},
			{"unknown path for an API client", anon, "GET", "/api/v1/nothing", "", []string{"Accept", "application/json"}, 404, []string{`"code":"not_found"`, `"title_en":"not found"`}, nil},
			{"console needs login", anon, "GET", "/console/staff", "", nil, 303, nil, nil},
			{"API needs login", anon, "GET", "/api/v1/staff", "", []string{"Accept", "application/json"}, 401, []string{`"code":"unauthorized"`}, nil},
			{"validate a good ID", anon, "POST", "/api/v1/validate/resident-id", `{"value":"11010519491231002x"}`, []string{"Content-Type", "application/json"}, 200, []string{`"normalized":"11010519491231002X"`, `"birth_date":"1949-12-31"`}, nil},
			{"validate a bad ID in Chinese", anon, "POST", "/api/v1/validate/resident-id", `{"value":"110105194912310021"}`, []string{"Content-Type", "application/json"}, 400, []string{`"code":"ids.resident.checksum"`, `"field":"value"`, "校验位"}, nil},
			{"validate a bad ID in English", anon, "POST", "/api/v1/validate/resident-id", `{"value":"110105194912310021"}`, []string{"Content-Type", "application/json", "Accept-Language", "en"}, 400, []string{`"title":"the ID number's check digit`}, nil},
			{"validate a credit code", anon, "POST", "/api/v1/validate/credit-code", `{"value":"91350100M000100Y43"}`, []string{"Content-Type", "application/json"}, 200, []string{`"valid":true`}, nil},
			{"unknown JSON field", anon, "POST", "/api/v1/validate/mobile", `{"value":"13800138000","x":1}`, []string{"Content-Type", "application/json"}, 400, []string{`"code":"request.unknown_field"`}, nil},
			{"public divisions", anon, "GET", "/api/v1/divisions?parent=140100", "", nil, 200, []string{"小店区", "140105"}, nil},
			{"public keys", anon, "GET", "/api/v1/keys", "", nil, 200, []string{"BEGIN PUBLIC KEY", `"active"`}, nil},
			{"staff list over API", staff, "GET", "/api/v1/staff", "", nil, 200, []string{`"username":"admin"`}, []string{"argon2id", "password_hash"}},
			{"audit over API", staff, "GET", "/api/v1/audit?action=auth.*", "", nil, 200, []string{`"action":"auth.login"`}, nil},
			{"administrator may not verify the audit log (separation of duties)", staff, "GET", "/api/v1/audit/verify", "", nil, 403, []string{`"code":"forbidden"`}, nil},
			{"bad division code", anon, "GET", "/api/v1/divisions?parent=abc", "", nil, 400, []string{`"code":"ids.division.`}, nil},
			{"unknown division", anon, "GET", "/api/v1/divisions/149999", "", nil, 404, []string{`"code":"not_found"`}, nil},
			{"console: unknown division", staff, "GET", "/console/divisions?code=149999", "", nil, 404, []string{"未找到"}, nil},
			{"console: malformed division", staff, "GET", "/console/divisions?code=abc", "", nil, 400, []string{"行政区划代码"}, nil},
			{"open redirect refused", anon, "GET", "/lang?to=en&back=/%09/evil.example", "", nil, 303, nil, nil},
			{"console divisions", staff, "GET", "/console/divisions?code=140100", "", nil, 200, []string{"太原市", "小店区"}, nil},
			{"console audit page", staff, "GET", "/console/audit", "", nil, 200, []string{"哈希链校验通过", "auth.login"}, nil},
			{"metrics label logged-in routes", anon, "GET", "/metrics", "", nil, 200, []string{`route="GET /api/v1/staff"`, `route="GET /console/audit"`}, nil},
			{"form post without CSRF token", staff, "POST", "/console/departments", "code=x&name=y&division=140000", []string{"Content-Type", "application/x-www-form-urlencoded"}, 403, nil, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(tc.method, n.URL+tc.path, strings.NewReader(tc.body))
				for i := 0; i+1 < len(tc.hdr); i += 2 {
					req.Header.Set(tc.hdr[i], tc.hdr[i+1])
				}
				res, err := tc.c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				buf := new(strings.Builder)
				_, _ = bufCopy(buf, res)
				body := buf.String()
				if res.StatusCode != tc.status {
					t.Fatalf("status %d, want %d\n%.600s", res.StatusCode, tc.status, body)
				}
				for _, w := range tc.want {
					if !strings.Contains(body, w) {
						t.Errorf("missing %q in\n%.800s", w, body)
					}
				}
				for _, w := range tc.notWant {
					if strings.Contains(body, w) {
						t.Errorf("unexpected %q", w)
					}
				}
				if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
					if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
						t.Errorf("CSP missing on a page: %q", csp)
					}
				}
				if res.Header.Get("X-Request-ID") == "" {
					t.Error("no request id")
				}
			})
		}
	})
}

func bufCopy(b *strings.Builder, res *http.Response) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := res.Body.Read(buf)
		b.Write(buf[:k])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}

// A city administrator sees and edits only their city; the console shows bilingual errors
// and keeps what was typed.
func TestConsoleScopeAndErrors(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		admin := client(t)
		login(t, n, admin, "admin", testAdminPassword)
		// Create a 太原 department and a 太原 org admin through the console forms.
		_, page := get(t, admin, n.URL+"/console/departments")
		res, body := postForm(t, admin, n.URL, "/console/departments", url.Values{"csrf_token": {csrfFrom(t, page)},
			"division": {"140100"}, "code": {"zwfw"}, "name": {"太原市政务服务管理局"}, "kind": {"政务服务管理局"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("create department: %d\n%.800s", res.StatusCode, body)
		}
		// The same code again: a conflict, shown on the page in Chinese, with the input kept.
		_, page = get(t, admin, n.URL+"/console/departments")
		res, body = postForm(t, admin, n.URL, "/console/departments", url.Values{"csrf_token": {csrfFrom(t, page)},
			"division": {"140100"}, "code": {"zwfw"}, "name": {"重复的部门"}})
		if res.StatusCode != http.StatusConflict || !strings.Contains(body, "部门编码已被使用") || !strings.Contains(body, "重复的部门") {
			t.Fatalf("duplicate department: %d\n%.1500s", res.StatusCode, body)
		}
		var deps struct {
			Items []struct{ ID, DivisionCode string }
		}
		_, js := get(t, admin, n.URL+"/api/v1/departments?division=140100")
		if err := json.Unmarshal([]byte(js), &deps); err != nil || len(deps.Items) != 1 {
			t.Fatalf("departments: %v %s", err, js)
		}
		_, page = get(t, admin, n.URL+"/console/staff")
		res, body = postForm(t, admin, n.URL, "/console/staff", url.Values{"csrf_token": {csrfFrom(t, page)},
			"username": {"ty-admin"}, "name": {"王晋"}, "department": {deps.Items[0].ID}, "password": {"Taiyuan@2026!x"}, "roles": {"orgadmin"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("create staff: %d\n%.1500s", res.StatusCode, body)
		}
		// A weak password is refused with the rule named, in English when asked.
		_, page = get(t, admin, n.URL+"/console/staff")
		req, _ := http.NewRequest("POST", n.URL+"/console/staff?lang=en", strings.NewReader(url.Values{"csrf_token": {csrfFrom(t, page)},
			"username": {"weak"}, "name": {"弱密码"}, "department": {deps.Items[0].ID}, "password": {"short"}, "roles": {"officer"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", n.URL)
		res2, err := admin.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := new(strings.Builder)
		bufCopy(b, res2)
		res2.Body.Close()
		if res2.StatusCode != http.StatusBadRequest || !strings.Contains(b.String(), "at least 10") {
			t.Fatalf("weak password: %d\n%.1500s", res2.StatusCode, b.String())
		}

		// The 太原 admin must change the initial password, then sees only 太原.
		city := client(t)
		_, page = get(t, city, n.URL+"/console/login")
		res, _ = postForm(t, city, n.URL, "/console/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "username": {"ty-admin"}, "password": {"Taiyuan@2026!x"}})
		if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/console/password") {
			t.Fatalf("first login should ask for a new password, went to %q", loc)
		}
		_, page = get(t, city, n.URL+"/console/password")
		res, body = postForm(t, city, n.URL, "/console/password", url.Values{"csrf_token": {csrfFrom(t, page)}, "old": {"Taiyuan@2026!x"}, "new": {"Jinyang#Lake2026"}, "confirm": {"Jinyang#Lake2026"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("change password: %d\n%.1000s", res.StatusCode, body)
		}
		_, js = get(t, city, n.URL+"/api/v1/departments")
		if !strings.Contains(js, "太原市政务服务管理局") || strings.Contains(js, "山西省政务服务管理局") {
			t.Fatalf("city admin's departments out of scope:\n%s", js)
		}
		res, _ = get(t, city, n.URL+"/console/divisions?code=140200") // 大同市
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("city admin opened another city: %d", res.StatusCode)
		}
		res, _ = get(t, city, n.URL+"/api/v1/audit")
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("org admin read the audit log: %d", res.StatusCode)
		}
		// Logging out ends the session.
		_, page = get(t, city, n.URL+"/console")
		postForm(t, city, n.URL, "/console/logout", url.Values{"csrf_token": {csrfFrom(t, page)}})
		res, _ = get(t, city, n.URL+"/api/v1/staff", "Accept", "application/json")
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after logout: %d", res.StatusCode)
		}
	})
}

// An administrator registers an application in the console: the secret is shown once, bad
// redirect URIs are refused with the field named, and disabling works.
func TestConsoleClients(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		c := client(t)
		login(t, n, c, "admin", testAdminPassword)
		_, page := get(t, c, n.URL+"/console/clients")
		res, body := postForm(t, c, n.URL, "/console/clients", url.Values{"csrf_token": {csrfFrom(t, page)}, "name": {"坏地址应用"},
			"type": {"web"}, "redirect_uris": {"https://app.example/cb#frag"}, "min_level": {"2"}})
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "redirect_uris") || !strings.Contains(body, "坏地址应用") {
			t.Fatalf("bad redirect URI: %d\n%.1500s", res.StatusCode, body)
		}
		res, body = postForm(t, c, n.URL, "/console/clients", url.Values{"csrf_token": {csrfFrom(t, body)}, "name": {"晋中市公积金网上服务"},
			"type": {"web"}, "redirect_uris": {"https://gjj.jz.example/callback"}, "min_level": {"2"}})
		if res.StatusCode != http.StatusCreated || !strings.Contains(body, `id="new-secret"`) {
			t.Fatalf("register: %d\n%.1500s", res.StatusCode, body)
		}
		id := regexp.MustCompile(`id="new-client-id">([^<]+)<`).FindStringSubmatch(body)[1]
		res, _ = postForm(t, c, n.URL, "/console/clients/"+id+"/disable", url.Values{"csrf_token": {csrfFrom(t, body)}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("disable: %d", res.StatusCode)
		}
		_, page = get(t, c, n.URL+"/console/clients")
		if !strings.Contains(page, "晋中市公积金网上服务") || !strings.Contains(page, "已停用") {
			t.Fatalf("list after disable:\n%.2000s", page)
		}
	})
}

package app

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
)

// A department registers a resource in the console, submits it, an administrator approves it,
// it appears in the province's catalogue and, being open, in the DCAT feed; Excel export works.
func TestConsoleCatalog(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		admin, _ := n.Org.Subject(t.Context(), adminID(t, n))
		dep, err := n.Org.CreateDepartment(t.Context(), admin, org.DepartmentInput{DivisionCode: "140100", Code: "ga", Name: "太原市公安局", Kind: "公安"})
		if err != nil {
			t.Fatal(err)
		}
		c := staffClient(t, n, admin, "ty-ga-01", dep.ID, authz.RoleOfficer)
		_, page := get(t, c, n.URL+"/console/catalog")
		form := url.Values{"csrf_token": {csrfFrom(t, page)}, "name": {"太原市户籍人口基本信息"}, "dept": {dep.ID}, "prefix": {"101001"},
			"theme": {"人口"}, "format": {"database"}, "cycle": {"daily"}, "share_type": {"2"}, "share_condition": {""},
			"open_type": {"3"}, "contact_name": {"王警官"}, "contact_phone": {"0351-1234567"}, "summary": {"全市户籍人口的基本信息"},
			"items": {"姓名|C|50|是\n性别|C|1|否"}}
		// Conditional sharing without its conditions is refused, keeping what was typed.
		res, body := postForm(t, c, n.URL, "/console/catalog", form)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "share_condition") || !strings.Contains(body, "全市户籍人口的基本信息") {
			t.Fatalf("missing condition: %d\n%.1500s", res.StatusCode, body)
		}
		form.Set("csrf_token", csrfFrom(t, body))
		form.Set("share_condition", "用于人社、民政等部门核验身份")
		res, body = postForm(t, c, n.URL, "/console/catalog", form)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("create draft: %d\n%.2000s", res.StatusCode, body)
		}
		loc := res.Header.Get("Location")
		_, page = get(t, c, n.URL+loc)
		if res, _ = postForm(t, c, n.URL, loc+"/submit", url.Values{"csrf_token": {csrfFrom(t, page)}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("submit: %d", res.StatusCode)
		}
		// An officer cannot publish; the city's administrator reviews.
		if res, _ := postForm(t, c, n.URL, loc+"/approve", url.Values{"csrf_token": {csrfFrom(t, page)}}); res.StatusCode != http.StatusForbidden {
			t.Fatalf("an officer approved: %d", res.StatusCode)
		}
		rev := staffClient(t, n, admin, "ty-admin", dep.ID, authz.RoleOrgAdmin)
		_, page = get(t, rev, n.URL+loc)
		if res, body := postForm(t, rev, n.URL, loc+"/approve", url.Values{"csrf_token": {csrfFrom(t, page)}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("approve: %d\n%.1500s", res.StatusCode, body)
		}
		_, page = get(t, c, n.URL+"/console/catalog")
		if !regexp.MustCompile(`101001/140100\d+`).MatchString(page) || !strings.Contains(page, "太原市户籍人口基本信息") {
			t.Fatalf("published resource not in the catalogue:\n%.3000s", page)
		}
		res, body = get(t, c, n.URL+"/console/catalog/export/xlsx")
		if res.StatusCode != 200 || !strings.HasPrefix(body, "PK") {
			t.Fatalf("excel export: %d", res.StatusCode)
		}
		// Not open: the DCAT feed has no dataset for it.
		res, body = get(t, client(t), n.URL+"/open/catalog.jsonld")
		if res.StatusCode != 200 || !strings.Contains(body, "dcat:Catalog") || strings.Contains(body, "太原市户籍人口基本信息") {
			t.Fatalf("DCAT: %d %.800s", res.StatusCode, body)
		}
	})
}

// staffClient creates a staff account and returns a browser signed in to the console with it,
// past the first-login password change.
func staffClient(t *testing.T, n *node, admin authz.Subject, username, deptID string, role authz.Role) *http.Client {
	t.Helper()
	if _, err := n.Org.CreateStaff(t.Context(), admin, org.StaffInput{Username: username, Name: "测试" + username, DepartmentID: deptID,
		Roles: []authz.Role{role}, Password: "Initial#Pass2026"}); err != nil {
		t.Fatalf("create %s: %v", username, err)
	}
	c := client(t)
	_, page := get(t, c, n.URL+"/console/login")
	postForm(t, c, n.URL, "/console/login", url.Values{"csrf_token": {csrfFrom(t, page)}, "username": {username}, "password": {"Initial#Pass2026"}})
	_, page = get(t, c, n.URL+"/console/password")
	if res, body := postForm(t, c, n.URL, "/console/password", url.Values{"csrf_token": {csrfFrom(t, page)}, "old": {"Initial#Pass2026"},
		"new": {"Changed#Pass2026x"}, "confirm": {"Changed#Pass2026x"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("password change for %s: %d %.800s", username, res.StatusCode, body)
	}
	return c
}

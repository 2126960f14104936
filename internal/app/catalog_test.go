package app

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/dataset"
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
		// Chinese full-text search finds it by a word inside its name, once the published event
		// has reached the index.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, page = get(t, c, n.URL+"/console/catalog?q="+url.QueryEscape("户籍人口"))
			if strings.Contains(page, "太原市户籍人口基本信息") || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(page, "太原市户籍人口基本信息") {
			t.Fatalf("search did not find the resource:\n%.2000s", page)
		}
		if _, page = get(t, c, n.URL+"/console/catalog?q="+url.QueryEscape("不动产登记")); strings.Contains(page, "太原市户籍人口基本信息") {
			t.Fatal("search matched an unrelated query")
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

// The datasets page lists the base libraries; a provincial reviewer loads a new version from
// an upload in the background and the status endpoint reports it; a bad row is shown with its
// line; an officer may not load.
func TestConsoleDatasets(t *testing.T) {
	n := startNode(t, "sqlite")
	ctx := t.Context()
	if _, err := n.Datasets.Load(ctx, "test.people", dataset.Schema{Key: "身份证号", Columns: []dataset.Column{
		{Name: "姓名", Type: dataset.String, Required: true}, {Name: "身份证号", Type: dataset.ResidentID, Required: true, Unique: true}}},
		dataset.Source{Name: "v1.csv", Format: dataset.CSV, Reader: strings.NewReader("姓名,身份证号\n张三,11010519491231002X\n")}, dataset.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	admin, _ := n.Org.Subject(ctx, adminID(t, n))
	deps, _ := n.Org.ListDepartments(ctx, admin, org.DepartmentFilter{Division: "140000"})
	rev := staffClient(t, n, admin, "sx-reviewer", deps[0].ID, authz.RoleOrgAdmin)
	_, page := get(t, rev, n.URL+"/console/datasets")
	if !strings.Contains(page, "test.people") {
		t.Fatalf("dataset not listed:\n%.1500s", page)
	}
	_, page = get(t, rev, n.URL+"/console/datasets/test.people")
	body, ctype := multipartForm(t, [][2]string{{"csrf_token", csrfFrom(t, page)}}, map[string][2]string{"file": {"v2.csv", "姓名,身份证号\n李四,11010519491231002X\n王五,110105194912310021\n"}})
	req, _ := http.NewRequest("POST", n.URL+"/console/datasets/test.people/load", body)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Origin", n.URL)
	res, err := rev.Do(req)
	if err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	var status string
	for time.Now().Before(deadline) {
		_, status = get(t, rev, n.URL+"/console/datasets/test.people/status")
		if !strings.Contains(status, `"status":"loading"`) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(status, `"version":2`) || !strings.Contains(status, `"rows_ok":1`) || !strings.Contains(status, `"rows_rejected":1`) {
		t.Fatalf("status after load: %s", status)
	}
	_, page = get(t, rev, n.URL+"/console/datasets/test.people")
	if !strings.Contains(page, `id="rejects"`) || !strings.Contains(page, "<td>3</td>") {
		t.Fatalf("rejected line 3 not shown:\n%.3000s", page)
	}
	officer := staffClient(t, n, admin, "sx-officer", deps[0].ID, authz.RoleOfficer)
	_, page = get(t, officer, n.URL+"/console/datasets/test.people")
	if strings.Contains(page, `action="/console/datasets/test.people/load"`) {
		t.Fatal("an officer is offered the load form")
	}
}

package app

import (
	"net/http"
	"net/url"
	pathpkg "path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/ids"
)

// caseDepartment creates a department of a standard kind in a division.
func caseDepartment(t *testing.T, n *node, admin authz.Subject, division, code, name, kind string) org.Department {
	t.Helper()
	dep, err := n.Org.CreateDepartment(t.Context(), admin, org.DepartmentInput{DivisionCode: division, Code: code, Name: name, Kind: kind})
	if err != nil {
		t.Fatalf("department %s: %v", name, err)
	}
	return dep
}

// getiItem is 个体工商户设立登记 of the Shanxi pack: 受理 then 核准登记, a working day each,
// handled by the county's 市场监督管理局.
const getiItem = "010020100100"

// testPDF is the smallest file the material check takes for a PDF.
const testPDF = "%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"

// submitGeti applies for 个体工商户设立登记 in 小店区 as a citizen, with the operator's ID card
// as the one material (the others are accepted with deficiencies, 容缺受理).
func submitGeti(t *testing.T, n *node, citizenID, name string) (govservice.Applicant, govservice.Application) {
	t.Helper()
	idno := ids.MakeResident("140105", time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC), 23, true)
	ap := govservice.Applicant{Subject: authz.Subject{Kind: authz.Citizen, ID: citizenID, Name: name}, Name: name, IDNumber: idno, Phone: "13912345678"}
	app, err := n.Applications.Submit(t.Context(), ap, govservice.SubmitInput{ItemCode: getiItem, Division: "140105",
		Values: map[string]string{"operator_name": name, "operator_id_number": idno, "phone": "13912345678", "org_form": "individual",
			"shop_name": name + "烧饼店", "address": "太原市小店区亲贤北街 8 号", "division": "140105", "business_scope": "小吃服务",
			"employees": "2", "capital": "50000"},
		Materials: []govservice.MaterialInput{{Key: "operator_id", Source: govservice.SourceUpload, FileName: "身份证.pdf", Content: strings.NewReader(testPDF)}}})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return ap, app
}

// caseLink finds the link to a case in a queue page.
var caseLink = regexp.MustCompile(`href="/console/cases/([0-9a-f-]{36})" class="case-link"`)

// The officer's side of a service application in the console: the routed department's
// officer sees it in the queue, opens it (number, masked ID, form, material download), claims
// it, asks for a correction, and after the applicant's answer approves it through both
// steps; the colour turns red when the clock passes the step deadline; officers of another
// department or county see nothing of it.
func TestConsoleCases(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			if dialect == "postgres" && testing.Short() {
				t.Skip("PostgreSQL tests are skipped with -short")
			}
			clk := newTestClock()
			n := startNode(t, dialect, withClock(clk))
			testConsoleCases(t, n, clk)
		})
	}
}

func testConsoleCases(t *testing.T, n *node, clk *testClock) {
	ctx := t.Context()
	admin, err := n.Org.Subject(ctx, adminID(t, n))
	if err != nil {
		t.Fatal(err)
	}
	xdSCJG := caseDepartment(t, n, admin, "140105", "scjg", "太原市小店区市场监督管理局", "市场监督管理局")
	xdGA := caseDepartment(t, n, admin, "140105", "ga", "太原市公安局小店分局", "公安")
	yzSCJG := caseDepartment(t, n, admin, "140106", "scjg", "太原市迎泽区市场监督管理局", "市场监督管理局")
	officer := staffClient(t, n, admin, "xd-scjg-01", xdSCJG.ID, authz.RoleOfficer)
	otherDept := staffClient(t, n, admin, "xd-ga-01", xdGA.ID, authz.RoleOfficer)
	otherCounty := staffClient(t, n, admin, "yz-scjg-01", yzSCJG.ID, authz.RoleOfficer)

	ap, app := submitGeti(t, n, "citizen-cases-1", "张晋生")
	if app.DeptID != xdSCJG.ID {
		t.Fatalf("routed to %s (%s), want 小店区市场监督管理局", app.DeptID, app.DeptName)
	}
	expect := func(c *http.Client, path string, status int, want, unwanted []string) string {
		t.Helper()
		res, body := get(t, c, n.URL+path)
		if res.StatusCode != status {
			t.Fatalf("GET %s: %d, want %d\n%.2000s", path, res.StatusCode, status, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: %q missing\n%.4000s", path, w, body)
			}
		}
		for _, w := range unwanted {
			if strings.Contains(body, w) {
				t.Errorf("GET %s: %q present", path, w)
			}
		}
		return body
	}
	post := func(c *http.Client, path string, form url.Values, status int, want ...string) string {
		t.Helper()
		_, page := get(t, c, n.URL+pathpkg.Dir(path)) // the case page, for its CSRF token
		if form == nil {
			form = url.Values{}
		}
		form.Set("csrf_token", csrfFrom(t, page))
		res, body := postForm(t, c, n.URL, path, form)
		if res.StatusCode != status {
			t.Fatalf("POST %s: %d, want %d\n%.3000s", path, res.StatusCode, status, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("POST %s: %q missing\n%.3000s", path, w, body)
			}
		}
		return body
	}

	// The queue of the routed department: a working day left, which is within the reminder
	// window already (yellow), unclaimed.
	queue := expect(officer, "/console/cases", 200, []string{"个体工商户设立登记", app.Number, `data-status="yellow"`, "临期 · 剩余 1 个工作日", "未认领"}, nil)
	m := caseLink.FindStringSubmatch(queue)
	if m == nil || m[1] != app.CaseID {
		t.Fatalf("case %s not linked from the queue", app.CaseID)
	}
	casePath := "/console/cases/" + app.CaseID
	// Other departments and counties: not in their queues, and the case is not found.
	otherQueue := expect(otherDept, "/console/cases", 200, []string{`id="queue-empty"`}, []string{app.Number})
	expect(otherCounty, "/console/cases", 200, []string{`id="queue-empty"`}, []string{app.Number})
	expect(otherDept, casePath, 404, nil, []string{"张晋生"})
	expect(otherCounty, casePath, 404, nil, []string{"张晋生"})
	if res, _ := postForm(t, otherDept, n.URL, casePath+"/claim", url.Values{"csrf_token": {csrfFrom(t, otherQueue)}}); res.StatusCode != 404 {
		t.Errorf("another department's claim: %d, want 404", res.StatusCode)
	}

	// The case page: the number, the applicant with the ID number masked, the form, the
	// material with its download link.
	page := expect(officer, casePath, 200, []string{app.Number, "张晋生", "140105********", "张晋生烧饼店", "小吃服务", "身份证.pdf", `id="claim"`},
		[]string{`id="approve"`})
	fm := regexp.MustCompile(`href="(/console/cases/[^"]+/files/[^"]+)"`).FindStringSubmatch(page)
	if fm == nil {
		t.Fatalf("no material link:\n%.3000s", page)
	}
	res, body := get(t, officer, n.URL+fm[1])
	if res.StatusCode != 200 || body != testPDF || res.Header.Get("Content-Type") != "application/pdf" ||
		!strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("material download: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"))
	}
	if res, _ := get(t, otherDept, n.URL+fm[1]); res.StatusCode != 404 {
		t.Errorf("another department downloaded the material: %d", res.StatusCode)
	}

	// Claim, then ask for the premises certificate (补正): the clock stops.
	post(officer, casePath+"/claim", nil, http.StatusSeeOther)
	expect(officer, "/console/cases?claimed=mine", 200, []string{app.Number, "我已认领"}, nil)
	body = post(officer, casePath+"/correct", url.Values{"comment": {""}, "items": {"经营场所使用证明"}}, http.StatusBadRequest, "请填写意见或理由")
	if !strings.Contains(body, `value="经营场所使用证明" checked`) {
		t.Errorf("the ticked item was not kept:\n%.3000s", body)
	}
	post(officer, casePath+"/correct", url.Values{"comment": {"请上传经营场所的不动产权证书或租赁合同"}, "items": {"经营场所使用证明"}}, http.StatusSeeOther)
	expect(officer, casePath, 200, []string{"等待申请人补正", "请上传经营场所的不动产权证书或租赁合同", "暂停计时"}, []string{`id="approve"`})
	expect(officer, "/console/cases?state=suspended", 200, []string{app.Number}, nil)
	det, err := n.Applications.Get(ctx, ap.Subject, app.ID)
	if err != nil || det.Status != govservice.StatusCorrection {
		t.Fatalf("applicant's status: %v %v", det.Status, err)
	}
	if _, err := n.Applications.AnswerCorrection(ctx, ap, app.ID, nil, []govservice.MaterialInput{{Key: "premises", Source: govservice.SourceUpload,
		FileName: "租赁合同.pdf", Content: strings.NewReader(testPDF)}}, "已上传租赁合同"); err != nil {
		t.Fatalf("answer: %v", err)
	}

	// Approve the acceptance step; the case moves to 核准登记.
	page = expect(officer, casePath, 200, []string{"租赁合同.pdf", "申请人已补正", `id="approve"`}, nil)
	version := regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(page)
	post(officer, casePath+"/approve", url.Values{"version": {version[1]}, "comment": {"材料齐全，予以受理"}}, http.StatusSeeOther)
	expect(officer, casePath, 200, []string{"核准登记", "材料齐全，予以受理", `id="claim"`}, nil)

	// Two working days later the step deadline has passed: red in the queue and on the page.
	// (The console session has expired on the moved clock: log in again.)
	clk.add(2 * 24 * time.Hour)
	login(t, n, officer, "xd-scjg-01", "Changed#Pass2026x")
	expect(officer, "/console/cases?status=red", 200, []string{app.Number, `data-status="red"`, "超期"}, nil)
	expect(officer, "/console/cases?status=yellow", 200, []string{`id="queue-empty"`}, []string{app.Number})
	expect(officer, "/console/cases/stats", 200, []string{`id="stat-open">1<`, `data-key="red"`}, nil)

	post(officer, casePath+"/claim", nil, http.StatusSeeOther)
	page = expect(officer, casePath, 200, []string{"通过并办结"}, nil)
	version = regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(page)
	post(officer, casePath+"/approve", url.Values{"version": {version[1]}, "comment": {"准予登记"}}, http.StatusSeeOther)
	expect(officer, casePath, 200, []string{"已办结", "准予"}, []string{`id="approve"`, `id="claim"`})
	det, err = n.Applications.Get(ctx, ap.Subject, app.ID)
	if err != nil || det.Status != govservice.StatusApproved {
		t.Fatalf("applicant's status after approval: %v %v", det.Status, err)
	}
	expect(officer, "/console/cases/stats", 200, []string{`id="stat-closed">1<`}, nil)
	// The service catalogue with its versions and the pack's last sync.
	expect(officer, "/console/services", 200, []string{"个体工商户设立登记", getiItem, "v1", `id="pack-sync"`}, []string{"尚未加载事项包"})
}

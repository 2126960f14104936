package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/portal"
	"github.com/dgov/dgov/internal/rating"
	"github.com/dgov/dgov/internal/workflow"
)

// pensionItem is 养老金领取资格认证 of the Shanxi pack: one step, handled by the county's
// 人力资源和社会保障局, no materials required.
const pensionItem = "110012000000"

// ratingStaff makes an officer of a department, signed in to the console, and returns the
// client and the officer as the services see them.
func ratingStaff(t *testing.T, n *node, admin authz.Subject, username, deptID string) (*http.Client, authz.Subject) {
	t.Helper()
	c := staffClient(t, n, admin, username, deptID, authz.RoleOfficer)
	var id string
	if err := n.DB.QueryRow(t.Context(), `SELECT id FROM staff WHERE username = ?`, username).Scan(&id); err != nil {
		t.Fatal(err)
	}
	sub, err := n.Org.Subject(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c, sub
}

// sessionSubject is who a signed-in browser acts as.
func sessionSubject(t *testing.T, n *node, c *http.Client) authz.Subject {
	t.Helper()
	u, _ := url.Parse(n.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == portal.SSOCookie {
			ses, err := n.Identity.GetSession(t.Context(), ck.Value)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := n.Identity.Subject(t.Context(), ses.AccountID, ses.ActingEnterpriseID)
			if err != nil {
				t.Fatal(err)
			}
			return sub
		}
	}
	t.Fatal("not signed in")
	return authz.Subject{}
}

// A citizen rates a completed application one star on the portal: a rectification case
// appears in the handling department's queue due in 5 working days; the department's officer
// sees the 差评 in the console, claims it and records the rectification; the public page
// shows the counts and nothing personal; the rating can be changed once.
func TestRatings(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			if dialect == "postgres" && testing.Short() {
				t.Skip("PostgreSQL tests are skipped with -short")
			}
			testRatings(t, startNode(t, dialect, withClock(newTestClock()))) // 5 working days end on 9 March
		})
	}
}

func testRatings(t *testing.T, n *node) {
	ctx := t.Context()
	admin, err := n.Org.Subject(ctx, adminID(t, n))
	if err != nil {
		t.Fatal(err)
	}
	newDept := func(division, name string) org.Department {
		d, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: division, Code: "rs", Name: name, Kind: "人力资源和社会保障局"})
		if err != nil {
			t.Fatalf("department %s: %v", name, err)
		}
		return d
	}
	xd := newDept("140105", "太原市小店区人力资源和社会保障局")
	yz := newDept("140106", "太原市迎泽区人力资源和社会保障局")
	officerC, officer := ratingStaff(t, n, admin, "xd-rs-01", xd.ID)
	_, otherCounty := ratingStaff(t, n, admin, "yz-rs-01", yz.ID)

	// The citizen applies and the department approves.
	const mobile, name = "13812346601", "王晋华"
	citizenC := client(t)
	idNumber := registerVerified(t, n, citizenC, mobile, name, 61)
	citizen := sessionSubject(t, n, citizenC)
	app, err := n.Applications.Submit(ctx, govservice.Applicant{Subject: citizen, Name: name, IDNumber: idNumber, Phone: mobile},
		govservice.SubmitInput{ItemCode: pensionItem, Division: "140105", Values: map[string]string{"applicant_name": name,
			"applicant_id_number": idNumber, "phone": mobile, "pension_type": "enterprise", "method": "face"}})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if app.DeptID != xd.ID {
		t.Fatalf("routed to %s, want %s", app.DeptName, xd.Name)
	}
	ratePath := "/account/applications/" + app.ID + "/rating"
	res, body := get(t, citizenC, n.URL+ratePath)
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("rating page of an open application: %d\n%.600s", res.StatusCode, body)
	}
	if _, err := n.Workflow.Claim(ctx, officer, app.CaseID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Workflow.Decide(ctx, officer, app.CaseID, workflow.Decision{Outcome: workflow.Approve, Comment: "认证通过"}); err != nil {
		t.Fatal(err)
	}

	// The rating page: five levels, the reasons of both kinds, the token.
	res, page := get(t, citizenC, n.URL+ratePath)
	for _, want := range []string{`id="rating-level-5"`, `id="rating-level-1"`, "非常不满意", `id="rating-tag-slow"`, `id="rating-tag-fast"`,
		`data-when-in="[&#34;1&#34;,&#34;2&#34;,&#34;3&#34;]"`, "/static/js/form.js"} {
		if !strings.Contains(page, want) {
			t.Errorf("rating page: %q missing", want)
		}
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("rating page: %d\n%.800s", res.StatusCode, page)
	}
	// A poor rating without a reason comes back with the message and the choice kept.
	res, body = postForm(t, citizenC, n.URL, ratePath, url.Values{"csrf_token": {csrfFrom(t, page)}, "level": {"1"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "差评请至少选择一个原因") || !strings.Contains(body, `value="1" required checked`) {
		t.Fatalf("poor rating without a reason: %d\n%.3000s", res.StatusCode, body)
	}
	const comment = "认证页面反复加载失败，跑了两趟"
	res, body = postForm(t, citizenC, n.URL, ratePath, url.Values{"csrf_token": {csrfFrom(t, page)}, "level": {"1"},
		"tags": {"slow", "unstable"}, "comment": {comment}, "channel": {"web"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account/applications/"+app.ID+"?rated=1#rating" {
		t.Fatalf("rate: %d %s\n%.800s", res.StatusCode, res.Header.Get("Location"), body)
	}

	// The rectification case is in the department's queue, due in 5 working days.
	mine, err := n.Ratings.Mine(ctx, citizen, app.ID)
	if err != nil || mine == nil || mine.Level != 1 || mine.Rectification == nil {
		t.Fatalf("rating = %+v, %v", mine, err)
	}
	q, err := n.Workflow.Queue(ctx, officer, workflow.QueueFilter{Definition: rating.RectifyDefinitionKey})
	if err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 3, 9, 10, 0, 0, 0, calendar.Beijing)
	if len(q.Cases) != 1 || q.Cases[0].ID != mine.Rectification.CaseID || q.Cases[0].Step != rating.StepRectify ||
		q.Cases[0].StepDueAt == nil || !q.Cases[0].StepDueAt.Equal(due) || q.Cases[0].DeptID != xd.ID {
		t.Fatalf("department queue = %+v, want the rectification due %v", q.Cases, due)
	}
	if q, err := n.Workflow.Queue(ctx, otherCounty, workflow.QueueFilter{}); err != nil || len(q.Cases) != 0 {
		t.Errorf("another county's queue = %+v, %v", q.Cases, err)
	}

	// Another citizen can neither see nor rate the application.
	otherC := client(t)
	registerVerified(t, n, otherC, "13812346602", "赵晋北", 62)
	if res, _ := get(t, otherC, n.URL+ratePath); res.StatusCode != http.StatusNotFound {
		t.Errorf("another citizen's rating page: %d", res.StatusCode)
	}

	// The public summary: counts, the department, no text anyone wrote.
	anon := client(t)
	for _, path := range []string{"/ratings", "/ratings?division=140105", "/ratings?division=140100&year=2026"} {
		res, body := get(t, anon, n.URL+path)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%.800s", path, res.StatusCode, body)
		}
		for _, want := range []string{`id="ratings-total">1<`, `id="ratings-poor">1<`, `id="ratings-satisfaction">0.0%<`, `id="ratings-open">1<`,
			xd.Name, "养老金领取资格认证", "<svg"} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: %q missing", path, want)
			}
		}
		if strings.Contains(body, comment) || strings.Contains(body, name) {
			t.Errorf("GET %s shows personal text", path)
		}
	}
	if res, _ := get(t, anon, n.URL+"/ratings?division=110000"); res.StatusCode != http.StatusNotFound {
		t.Errorf("a division outside the node: %d", res.StatusCode)
	}

	// The console: the officer sees the 差评, claims it and records the rectification.
	list := expectPage(t, officerC, n.URL+"/console/ratings", http.StatusOK, "养老金领取资格认证", comment, "整改中", `id="stat-poor">1<`)
	if !strings.Contains(list, "/console/ratings/"+mine.ID) {
		t.Fatalf("the 差评 is not linked from the list")
	}
	detail := "/console/ratings/" + mine.ID
	page = expectPage(t, officerC, n.URL+detail, http.StatusOK, `id="rating-claim"`, "2026-03-09 10:00")
	res, _ = postForm(t, officerC, n.URL, detail+"/claim", url.Values{"csrf_token": {csrfFrom(t, page)}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("claim: %d", res.StatusCode)
	}
	page = expectPage(t, officerC, n.URL+detail, http.StatusOK, `id="rectify-form"`)
	res, _ = postForm(t, officerC, n.URL, detail+"/rectify", url.Values{"csrf_token": {csrfFrom(t, page)}, "result": {"已修复认证页面，并电话指导"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("rectify: %d", res.StatusCode)
	}
	expectPage(t, officerC, n.URL+detail, http.StatusOK, "待回访", "已修复认证页面", "按期")
	// A console page of another department's officer does not show it.
	otherOfficerC, _ := ratingStaff(t, n, admin, "yz-rs-02", yz.ID)
	if res, _ := get(t, otherOfficerC, n.URL+detail); res.StatusCode != http.StatusNotFound {
		t.Errorf("another county's officer reads the rating: %d", res.StatusCode)
	}

	// The applicant sees the rectification, and may change the rating once.
	page = expectPage(t, citizenC, n.URL+ratePath, http.StatusOK, "待回访", "已修复认证页面", `id="rating-revise"`)
	res, _ = postForm(t, citizenC, n.URL, ratePath, url.Values{"csrf_token": {csrfFrom(t, page)}, "level": {"4"}, "tags": {"fast"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revise: %d", res.StatusCode)
	}
	res, body = postForm(t, citizenC, n.URL, ratePath, url.Values{"csrf_token": {csrfFrom(t, page)}, "level": {"5"}})
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, "评价已修改过一次") {
		t.Errorf("second change: %d\n%.600s", res.StatusCode, body)
	}
}

// expectPage gets a page and checks its status and content.
func expectPage(t *testing.T, c *http.Client, u string, status int, want ...string) string {
	t.Helper()
	res, body := get(t, c, u)
	if res.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d\n%.2000s", u, res.StatusCode, status, body)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("GET %s: %q missing\n%.4000s", u, w, body)
		}
	}
	return body
}

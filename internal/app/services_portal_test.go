package app

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/workflow"
)

// Items and bundles of the Shanxi pack the portal tests apply for.
const (
	itemGeti    = "010020100100" // 个体工商户设立登记: scjg, county level; accept → decide
	bundleBirth = "birth"        // 出生一件事: wj, ga, rs, yb
)

// pdfBytes is a small file the applications accept as a PDF (by its first bytes).
func pdfBytes(label string) string { return "%PDF-1.4\n% " + label + "\n%%EOF\n" }

// serviceDepartment creates a department of kind code in Taiyuan (140100) and an officer in
// it; applications from 小店区 (140105) walk up to it.
func serviceDepartment(t *testing.T, n *node, code, name, kind string) (authz.Subject, *http.Client) {
	t.Helper()
	ctx := t.Context()
	admin, err := n.Org.Subject(ctx, adminID(t, n))
	if err != nil {
		t.Fatal(err)
	}
	dep, err := n.Org.CreateDepartment(ctx, admin, org.DepartmentInput{DivisionCode: "140100", Code: code, Name: name, Kind: kind})
	if err != nil {
		t.Fatalf("department %s: %v", code, err)
	}
	return staffUser(t, n, admin, "ty-"+code, dep.ID, authz.RoleOfficer)
}

// multipartForm builds a multipart form of fields (in order, repeated keys allowed) and files
// by input name ({file name, content}); it returns the body and its content type.
func multipartForm(t *testing.T, fields [][2]string, files map[string][2]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		_ = w.WriteField(f[0], f[1])
	}
	for input, file := range files {
		fw, err := w.CreateFormFile(input, file[0])
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(fw, file[1])
	}
	_ = w.Close()
	return &buf, w.FormDataContentType()
}

// formFields are the fields of a map as multipartForm takes them.
func formFields(m map[string]string) [][2]string {
	fs := make([][2]string, 0, len(m))
	for k, v := range m {
		fs = append(fs, [2]string{k, v})
	}
	return fs
}

// postApplication posts a multipart form as the page would: fields (in order, repeated keys
// allowed) and files by input name ({file name, content}).
func postApplication(t *testing.T, c *http.Client, base, path string, fields [][2]string, files map[string][2]string) (*http.Response, string) {
	t.Helper()
	body, ctype := multipartForm(t, fields, files)
	return postBody(t, c, base, path, ctype, body)
}

// getetiValues are a valid 个体工商户设立登记 form; the person's own fields come from them.
func getiValues(name, number, mobile string, change ...string) [][2]string {
	v := [][2]string{{"operator_name", name}, {"operator_id_number", number}, {"phone", mobile}, {"org_form", "individual"},
		{"shop_name", "晋阳小吃"}, {"address", "太原市小店区亲贤北街 9 号"}, {"division", "140105"}, {"business_scope", "小吃、饮品零售"},
		{"employees", "2"}, {"capital", "50000"}}
	for i := 0; i+1 < len(change); i += 2 {
		for j := range v {
			if v[j][0] == change[i] {
				v[j][1] = change[i+1]
			}
		}
	}
	return v
}

// applicationIDFrom is the id in a Location /account/applications/<id>?… (or bundles).
var applicationIDRE = regexp.MustCompile(`^/account/(?:applications|bundles)/([0-9a-f-]+)`)

func applicationIDFrom(t *testing.T, res *http.Response, body string) string {
	t.Helper()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("submit: status %d\n%.3000s", res.StatusCode, body)
	}
	m := applicationIDRE.FindStringSubmatch(res.Header.Get("Location"))
	if m == nil {
		t.Fatalf("submit went to %q", res.Header.Get("Location"))
	}
	return m[1]
}

// waitFor polls cond until it holds (events reach their consumers asynchronously).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// officerActs claims the case and decides it; at the last step, approval closes it.
func officerActs(t *testing.T, n *node, officer authz.Subject, caseID string, d workflow.Decision) workflow.Case {
	t.Helper()
	ctx := context.Background()
	c, err := n.Workflow.Get(ctx, officer, caseID)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClaimedBy == "" {
		if _, err := n.Workflow.Claim(ctx, officer, caseID); err != nil {
			t.Fatalf("claim: %v", err)
		}
	}
	c, err = n.Workflow.Decide(ctx, officer, caseID, d)
	if err != nil {
		t.Fatalf("decide: %v", err)
	}
	return c
}

func mustContain(t *testing.T, what, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Fatalf("%s: missing %q in\n%.4000s", what, w, page)
		}
	}
}

// The citizen's journey on the portal's pages, on both databases: find the guide, be sent to
// sign in, apply with a prefilled form and an upload, see a refused value kept with its
// message, track the application, answer a request for correction with a new file, follow
// the officers' decisions to the result, and find the messages and the personal space.
func TestServicesPortalJourney(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		ctx := context.Background()
		officer, _ := serviceDepartment(t, n, "scjg", "太原市市场监督管理局", "市场监督管理局")

		// Anyone reads and searches the guides; applying needs a signed-in person.
		anon := client(t)
		_, page := get(t, anon, n.URL+"/services")
		mustContain(t, "services", page, "出生一件事", "个体工商户设立登记", `href="/bundles/birth"`)
		_, page = get(t, anon, n.URL+"/services?q="+url.QueryEscape("个体户"))
		mustContain(t, "search", page, "个体工商户设立登记", "<mark>")
		_, page = get(t, anon, n.URL+"/services/"+itemGeti)
		mustContain(t, "guide", page, "《促进个体工商户发展条例》", "经营者身份证明", "居民身份证", `href="/services/`+itemGeti+`/apply"`)
		res, _ := get(t, anon, n.URL+"/services/"+itemGeti+"/apply")
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/login?next="+url.QueryEscape("/services/"+itemGeti+"/apply") {
			t.Fatalf("anonymous apply: %d %q", res.StatusCode, loc)
		}

		// A registered but unverified person is sent to verify their real name first.
		fresh := client(t)
		_, page = get(t, fresh, n.URL+"/register")
		_, page = postForm(t, fresh, n.URL, "/register/code", url.Values{"csrf_token": {csrfFrom(t, page)}, "mobile": {"13811110009"}})
		postForm(t, fresh, n.URL, "/register", url.Values{"csrf_token": {csrfFrom(t, page)}, "mobile": {"13811110009"},
			"code": {lastCode(t, n, fresh, "13811110009")}, "password": {"Fenhe#River2026"}})
		res, _ = get(t, fresh, n.URL+"/services/"+itemGeti+"/apply")
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/account/realname?next=") {
			t.Fatalf("unverified apply: %d %q", res.StatusCode, loc)
		}

		c := client(t)
		number := registerVerified(t, n, c, "13811110001", "刘晋阳", 301)
		_, page = get(t, c, n.URL+"/services/"+itemGeti+"/apply")
		mustContain(t, "apply page", page, `value="刘晋阳"`, `value="13811110001"`, `<option value="140105" selected>小店区</option>`,
			`name="material.operator_id"`, `enctype="multipart/form-data"`, "form-fields")
		token := csrfFrom(t, page)

		// A refused value comes back with its message; what was typed is kept.
		fields := append([][2]string{{"csrf_token", token}, {"apply.division", "140105"}}, getiValues("刘晋阳", number, "123")...)
		res, page = postApplication(t, c, n.URL, "/services/"+itemGeti+"/apply", fields, map[string][2]string{"material.operator_id": {"身份证.pdf", pdfBytes("id")}})
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad phone: status %d", res.StatusCode)
		}
		mustContain(t, "refused", page, `id="f-phone-error"`, `value="太原市小店区亲贤北街 9 号"`, `id="reupload"`, `aria-invalid="true"`)

		// Submitted with two uploads.
		fields = append([][2]string{{"csrf_token", token}, {"apply.division", "140105"}}, getiValues("刘晋阳", number, "13811110001")...)
		res, page = postApplication(t, c, n.URL, "/services/"+itemGeti+"/apply", fields, map[string][2]string{
			"material.operator_id": {"身份证.pdf", pdfBytes("id")}, "material.premises": {"租赁合同.pdf", pdfBytes("lease v1")}})
		appID := applicationIDFrom(t, res, page)
		_, page = get(t, c, n.URL+"/account/applications/"+appID+"?submitted=1")
		mustContain(t, "submitted", page, "个体工商户设立登记", `data-status="submitted"`, "身份证.pdf", "租赁合同.pdf", "受理编号", "提交申请")
		_, page = get(t, c, n.URL+"/account/applications")
		mustContain(t, "my applications", page, `href="/account/applications/`+appID+`"`, "已提交")

		// The officer asks for a correction; the page says what to fix and offers the form.
		det, err := n.Applications.Get(ctx, officer, appID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Workflow.Claim(ctx, officer, det.CaseID); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Workflow.RequestCorrection(ctx, officer, det.CaseID, "租赁合同缺少出租方签字页，请重新上传。", []string{"经营场所使用证明"}); err != nil {
			t.Fatal(err)
		}
		_, page = get(t, c, n.URL+"/account/applications/"+appID)
		mustContain(t, "correction asked", page, `data-status="correction"`, "租赁合同缺少出租方签字页", "经营场所使用证明", `id="correction-form"`,
			`name="material.premises"`, "当前：租赁合同.pdf")
		waitFor(t, "the correction message", func() bool {
			_, p := get(t, c, n.URL+"/account/messages")
			return strings.Contains(p, "补正")
		})
		_, page = get(t, c, n.URL+"/account/applications")
		mustContain(t, "unread count", page, `id="unread-count"`)

		// The citizen answers with a new file picked… and a file from the personal space.
		_, page = get(t, c, n.URL+"/account/applications/"+appID)
		fields = append([][2]string{{"csrf_token", csrfFrom(t, page)}, {"comment", "已补充签字页"}}, getiValues("刘晋阳", number, "13811110001")...)
		res, page = postApplication(t, c, n.URL, "/account/applications/"+appID+"/correction", fields,
			map[string][2]string{"material.premises": {"租赁合同（含签字页）.pdf", pdfBytes("lease v2")}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("answer: %d %.3000s", res.StatusCode, page)
		}
		_, page = get(t, c, n.URL+"/account/applications/"+appID+"?answered=1")
		mustContain(t, "answered", page, `data-status="in_review"`, "已提交补正", "租赁合同（含签字页）.pdf", "补正材料已提交")

		// Accepted, then decided: the result is on the page.
		officerActs(t, n, officer, det.CaseID, workflow.Decision{Outcome: workflow.Approve, Comment: "材料齐全，予以受理"})
		cs := officerActs(t, n, officer, det.CaseID, workflow.Decision{Outcome: workflow.Approve, Comment: "准予登记"})
		if cs.State != workflow.StateClosed || cs.Outcome != workflow.OutcomeApproved {
			t.Fatalf("case after the last step: %s %s", cs.State, cs.Outcome)
		}
		_, page = get(t, c, n.URL+"/account/applications/"+appID)
		mustContain(t, "approved", page, `data-status="approved"`, `id="result"`, "准予办理", "个体工商户营业执照", "准予登记")
		if strings.Contains(page, `id="withdraw"`) {
			t.Error("a closed application offers to withdraw")
		}

		// English throughout.
		_, page = get(t, c, n.URL+"/account/applications/"+appID+"?lang=en")
		mustContain(t, "English", page, `lang="en"`, "Registration of an individual business", "completed", "Progress", "Business licence")
		_, page = get(t, c, n.URL+"/services/"+itemGeti+"/apply?lang=en")
		mustContain(t, "English form", page, "Where to apply", "Operator&#39;s name", "Upload a file", "Submit")

		// The personal space keeps the three uploads; each downloads as it was.
		_, page = get(t, c, n.URL+"/account/files")
		mustContain(t, "files", page, "身份证.pdf", "租赁合同.pdf", "租赁合同（含签字页）.pdf")
		fileID := regexp.MustCompile(`href="/account/files/([0-9a-f-]+)">身份证\.pdf`).FindStringSubmatch(page)
		if fileID == nil {
			t.Fatal("no link to the file")
		}
		res, body := get(t, c, n.URL+"/account/files/"+fileID[1])
		if res.StatusCode != 200 || body != pdfBytes("id") || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") ||
			res.Header.Get("Content-Type") != "application/pdf" {
			t.Fatalf("download: %d %q %q", res.StatusCode, res.Header.Get("Content-Disposition"), body)
		}

		// Messages for every state change; opening one marks it read and goes to the application.
		var msgs string
		waitFor(t, "the result message", func() bool {
			_, msgs = get(t, c, n.URL+"/account/messages")
			return strings.Count(msgs, `class="card unread"`) >= 3 && strings.Contains(msgs, "办结")
		})
		link := regexp.MustCompile(`href="(/account/messages/[^"?]+\?to=[^"]+)"`).FindStringSubmatch(msgs)
		if link == nil {
			t.Fatalf("no message link:\n%.3000s", msgs)
		}
		res, _ = get(t, c, n.URL+strings.ReplaceAll(link[1], "&amp;", "&"))
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/account/applications/"+appID) {
			t.Fatalf("open message: %d %q", res.StatusCode, res.Header.Get("Location"))
		}
		_, after := get(t, c, n.URL+"/account/messages")
		if strings.Count(after, `class="card unread"`) != strings.Count(msgs, `class="card unread"`)-1 {
			t.Error("opening a message did not mark it read")
		}
		_, page = postForm(t, c, n.URL, "/account/messages/read", url.Values{"csrf_token": {csrfFrom(t, after)}})
		_, after = get(t, c, n.URL+"/account/messages")
		if strings.Contains(after, `class="card unread"`) || strings.Contains(after, `id="unread-count"`) {
			t.Error("mark all read left unread messages")
		}

		// A second application reuses a file of the personal space, then is withdrawn.
		_, page = get(t, c, n.URL+"/services/"+itemGeti+"/apply")
		mustContain(t, "personal space offered", page, `name="material.operator_id.file"`, `<option value="`+fileID[1]+`">身份证.pdf`)
		fields = append([][2]string{{"csrf_token", csrfFrom(t, page)}, {"apply.division", "140105"}, {"material.operator_id.file", fileID[1]}},
			getiValues("刘晋阳", number, "13811110001", "shop_name", "晋阳面馆")...)
		res, page = postApplication(t, c, n.URL, "/services/"+itemGeti+"/apply", fields, nil)
		second := applicationIDFrom(t, res, page)
		_, page = get(t, c, n.URL+"/account/applications/"+second)
		mustContain(t, "reused file", page, "身份证.pdf", `id="withdraw"`)
		res, page = postForm(t, c, n.URL, "/account/applications/"+second+"/withdraw", url.Values{"csrf_token": {csrfFrom(t, page)}, "reason": {"店名要改"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("withdraw: %d %.2000s", res.StatusCode, page)
		}
		_, page = get(t, c, n.URL+"/account/applications/"+second)
		mustContain(t, "withdrawn", page, `data-status="withdrawn"`, "店名要改")

		// Someone else sees neither the application nor the files.
		other := client(t)
		registerVerified(t, n, other, "13811110002", "赵汾河", 302)
		if res, _ := get(t, other, n.URL+"/account/applications/"+appID, "Accept", "text/html"); res.StatusCode != http.StatusNotFound {
			t.Errorf("another person's application: %d", res.StatusCode)
		}
		if res, _ := get(t, other, n.URL+"/account/files/"+fileID[1], "Accept", "text/html"); res.StatusCode != http.StatusNotFound {
			t.Errorf("another person's file: %d", res.StatusCode)
		}
		_, page = get(t, other, n.URL+"/account/applications")
		mustContain(t, "nothing of others", page, `id="no-applications"`)
	})
}

// A 一件事 application from the portal: one combined form fans out to four departments; the
// overview shows each member's status and one overall status, which turns 已办结 when the
// last member is approved.
func TestServicesPortalBundle(t *testing.T) {
	n := startNode(t, "sqlite")
	var officers []authz.Subject
	for _, d := range [][3]string{{"wj", "太原市卫生健康委员会", "卫生健康委员会"}, {"ga", "太原市公安局", "公安"},
		{"rs", "太原市人力资源和社会保障局", "人力资源和社会保障"}, {"yb", "太原市医疗保障局", "医疗保障局"}} {
		o, _ := serviceDepartment(t, n, d[0], d[1], d[2])
		officers = append(officers, o)
	}
	c := client(t)
	mother := registerVerified(t, n, c, "13811110003", "孙晋华", 303)
	_, page := get(t, c, n.URL+"/bundles/"+bundleBirth+"/apply")
	mustContain(t, "bundle form", page, "出生一件事", `value="13811110003"`, `name="material.birth_record"`, "用于")
	born := time.Now().In(time.FixedZone("CST", 8*3600)).AddDate(0, 0, -10).Format("2006-01-02")
	father := ids.MakeResident("140105", time.Date(1986, 7, 1, 0, 0, 0, 0, time.UTC), 311, true)
	fields := [][2]string{{"csrf_token", csrfFrom(t, page)}, {"apply.division", "140105"},
		{"person_name", "孙小满"}, {"person_gender", "female"}, {"birth_date", born}, {"birth_time", "08:30"}, {"gestation_weeks", "39"},
		{"birth_weight", "3300"}, {"birth_division", "140105"}, {"hospital", "山西省妇幼保健院"}, {"mother_name", "孙晋华"},
		{"mother_id_number", mother}, {"father_name", "李汾"}, {"father_id_number", father}, {"phone", "13811110003"},
		{"follow_parent", "mother"}, {"household_division", "140105"}, {"household_address", "太原市小店区长风街 1 号"}, {"relation", "mother"},
		{"bank", "icbc"}, {"collect_method", "branch"}, {"insured_division", "140105"}}
	res, page := postApplication(t, c, n.URL, "/bundles/"+bundleBirth+"/apply", fields, map[string][2]string{
		"material.mother_id": {"母亲身份证.pdf", pdfBytes("mother")}, "material.birth_record": {"分娩记录.pdf", pdfBytes("birth")}})
	bundleID := applicationIDFrom(t, res, page)
	_, page = get(t, c, n.URL+"/account/bundles/"+bundleID+"?submitted=1")
	mustContain(t, "bundle overview", page, `data-status="in_progress"`, "出生医学证明首次签发", "户口登记（新生儿入户）", "社会保障卡申领",
		"城乡居民基本医疗保险参保登记", "“一件事”申请已提交")
	members := regexp.MustCompile(`href="/account/applications/([0-9a-f-]+)"`).FindAllStringSubmatch(page, -1)
	if len(members) != 4 {
		t.Fatalf("members linked: %d", len(members))
	}
	ctx := context.Background()
	for i, m := range members {
		det, err := n.Applications.Get(ctx, officers[i], m[1])
		if err != nil {
			t.Fatalf("member %d for its department: %v", i, err)
		}
		for {
			cs := officerActs(t, n, officers[i], det.CaseID, workflow.Decision{Outcome: workflow.Approve, Comment: "同意"})
			if cs.State == workflow.StateClosed {
				break
			}
		}
		_, page = get(t, c, n.URL+"/account/bundles/"+bundleID)
		want := `data-status="in_progress"`
		if i == len(members)-1 {
			want = `data-status="completed"`
		}
		mustContain(t, "overall status", page, want, `id="count-approved">`+string(rune('1'+i)))
	}
	_, page = get(t, c, n.URL+"/account/applications/"+members[0][1])
	mustContain(t, "member page", page, `id="bundle-link"`, `data-status="approved"`)
}

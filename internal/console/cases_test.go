package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
	"github.com/dgov/dgov/web"
)

// bj is a Beijing wall-clock time.
func bj(y, m, d, h, min int) time.Time {
	return time.Date(y, time.Month(m), d, h, min, 0, 0, calendar.Beijing)
}

func TestDeadlineOf(t *testing.T) {
	cal := calendar.Default()
	mon := bj(2026, 3, 2, 10, 0) // a Monday without holidays around it
	at := func(t time.Time) *time.Time { return &t }
	left := func(d time.Duration) *time.Duration { return &d }
	for _, tc := range []struct {
		name       string
		now        time.Time
		c          workflow.Case
		class      string
		label, txt string
	}{
		{"one day left", mon, workflow.Case{State: workflow.StateOpen, Status: workflow.Green, StepDueAt: at(bj(2026, 3, 3, 10, 0))},
			"ok", "正常", "剩余 1 个工作日"},
		{"weekend not counted", bj(2026, 3, 6, 9, 0), workflow.Case{State: workflow.StateOpen, Status: workflow.Yellow, StepDueAt: at(bj(2026, 3, 9, 10, 0))},
			"warn", "临期", "剩余 1 个工作日"},
		{"due today", mon, workflow.Case{State: workflow.StateOpen, Status: workflow.Yellow, StepDueAt: at(bj(2026, 3, 2, 17, 30))},
			"warn", "临期", "今日 17:30 到期"},
		{"overdue within the day", bj(2026, 3, 2, 11, 0), workflow.Case{State: workflow.StateOpen, Status: workflow.Red, StepDueAt: at(mon)},
			"bad", "超期", "今日 10:00 已到期"},
		{"overdue by working days", bj(2026, 3, 4, 11, 0), workflow.Case{State: workflow.StateOpen, Status: workflow.Red, StepDueAt: at(mon)},
			"bad", "超期", "超期 2 个工作日"},
		{"overdue over a weekend", bj(2026, 3, 9, 9, 0), workflow.Case{State: workflow.StateOpen, Status: workflow.Red, StepDueAt: at(bj(2026, 3, 6, 10, 0))},
			"bad", "超期", "超期 1 个工作日"},
		{"no limit", mon, workflow.Case{State: workflow.StateOpen, Status: workflow.Green}, "ok", "正常", "无时限"},
		{"suspended keeps what was left", mon, workflow.Case{State: workflow.StateSuspended, Status: workflow.Yellow, StepTimeLeft: left(36 * time.Hour)},
			"warn", "临期", "暂停计时，剩余 1.5 个工作日"},
		{"closed approved", mon, workflow.Case{State: workflow.StateClosed, Outcome: workflow.OutcomeApproved}, "", "已办结", "准予"},
		{"closed rejected", mon, workflow.Case{State: workflow.StateClosed, Outcome: workflow.OutcomeRejected}, "", "已办结", "不予"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deadlineOf(cal, tc.now, tc.c)
			if d.Class != tc.class || d.Label.ZH != tc.label || d.Left.ZH != tc.txt {
				t.Errorf("got %q %q %q, want %q %q %q", d.Class, d.Label.ZH, d.Left.ZH, tc.class, tc.label, tc.txt)
			}
			if d.Left.EN == "" || (d.Label.ZH != "" && d.Label.EN == "") {
				t.Errorf("not bilingual: %+v", d)
			}
		})
	}
}

func TestStepOrder(t *testing.T) {
	got := stepOrder([]string{"callback", "deliver", "accept", "rectify", "decide", "pre_review", "review"})
	want := "pre_review accept review decide deliver callback rectify"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// The queue's filters survive the trip through a link; bad values reach the engine, which
// refuses them (tested below), rather than being silently dropped.
func TestQueueHref(t *testing.T) {
	for _, q := range []string{"", "step=review", "status=red&claimed=mine", "state=suspended&status=yellow", "step=accept&after=abc"} {
		v, _ := url.ParseQuery(q)
		f := queueFilter(v)
		href := queueHref(f)
		u, _ := url.Parse(href)
		if g := queueFilter(u.Query()); g != f {
			t.Errorf("%q: %+v → %s → %+v", q, f, href, g)
		}
	}
}

func FuzzQueueFilter(f *testing.F) {
	for _, s := range []string{"", "step=review&status=red", "state=suspended", "after=MTc3.abc", "step=%00&claimed=x", strings.Repeat("step=a&", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		fl := queueFilter(v)
		if len(fl.Step) > 64 || fl.Limit != 20 || (fl.State != "" && fl.State != workflow.StateSuspended) {
			t.Fatalf("filter %+v from %q", fl, raw)
		}
		u, err := url.Parse(queueHref(fl))
		if err != nil {
			t.Fatal(err)
		}
		if g := queueFilter(u.Query()); g != fl {
			t.Fatalf("round trip of %q: %+v → %+v", raw, fl, g)
		}
	})
}

// ---- pages over a real engine ----

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const (
	deptA = "dept-xd-scjg" // 小店区市场监督管理局, where the cases are
	deptB = "dept-xd-ga"   // 小店区公安分局
)

var testDef = workflow.Definition{Key: "service:010020100100", Version: 1, Name: "个体工商户设立登记", NameEn: "Individual business registration",
	Steps: []workflow.Step{{Key: "accept", Name: "受理", NameEn: "Acceptance", Days: 1}, {Key: "decide", Name: "核准登记", NameEn: "Registration", Days: 2}}}

type pages struct {
	t     testing.TB
	con   *Console
	mux   *http.ServeMux
	clock *testClock
	cases *workflow.Service
}

func newPages(t testing.TB, d *db.DB) *pages {
	t.Helper()
	render, err := web.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	policy := authz.NewPolicy(divisions.Contains)
	workflow.RegisterPermissions(policy)
	clk := &testClock{t: bj(2026, 3, 2, 10, 0)}
	cases := workflow.New(d, policy, workflow.Options{Now: clk.Now})
	if err := cases.Define(t.Context(), testDef); err != nil {
		t.Fatal(err)
	}
	con := &Console{Render: render, Policy: policy, Now: clk.Now, Cases: cases}
	mux := http.NewServeMux()
	con.caseRoutes(mux)
	return &pages{t: t, con: con, mux: mux, clock: clk, cases: cases}
}

func officer(id, division, dept string, roles ...authz.Role) authz.Subject {
	if len(roles) == 0 {
		roles = []authz.Role{authz.RoleOfficer}
	}
	return authz.Subject{Kind: authz.Staff, ID: id, Name: "办事员" + id, Division: division, Dept: dept, Roles: roles}
}

func (p *pages) open(i int) workflow.Case {
	p.t.Helper()
	c, err := p.cases.Open(p.t.Context(), workflow.OpenCase{Definition: testDef.Key, Title: fmt.Sprintf("个体工商户设立登记（申请 %d）", i),
		Ref: fmt.Sprintf("application:%d", i), Applicant: authz.Subject{Kind: authz.Citizen, ID: fmt.Sprintf("c%d", i)}, DeptID: deptA, Division: "140105"})
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// do serves one request as sub and returns the status and body (or redirect target).
func (p *pages) do(sub authz.Subject, method, target string, form url.Values) (int, string) {
	p.t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	req = req.WithContext(authz.WithSubject(req.Context(), sub))
	w := httptest.NewRecorder()
	p.mux.ServeHTTP(w, req)
	if loc := w.Header().Get("Location"); loc != "" {
		return w.Code, loc
	}
	return w.Code, w.Body.String()
}

// The officer's journey on the pages: the queue per step and colour, the case, claim,
// correction, approval through the steps; the colour changes when the clock passes the step
// deadline; other departments and counties see nothing; refusals are shown on the page.
func TestCasePages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		p := newPages(t, d)
		me := officer("o1", "140105", deptA)
		other := officer("o2", "140105", deptB)
		elsewhere := officer("o3", "140106", deptA) // the same department id, but another county's officer
		auditor := officer("a1", "140105", deptA, authz.RoleAuditor)
		c1 := p.open(1)
		c2 := p.open(2)

		type check struct {
			name     string
			sub      authz.Subject
			method   string
			target   string
			form     url.Values
			status   int
			want     []string
			unwanted []string
		}
		run := func(checks []check) {
			t.Helper()
			for _, ck := range checks {
				code, body := p.do(ck.sub, ck.method, ck.target, ck.form)
				if code != ck.status {
					t.Errorf("%s: status %d, want %d\n%.1500s", ck.name, code, ck.status, body)
					continue
				}
				for _, w := range ck.want {
					if !strings.Contains(body, w) {
						t.Errorf("%s: %q missing\n%.3000s", ck.name, w, body)
					}
				}
				for _, w := range ck.unwanted {
					if strings.Contains(body, w) {
						t.Errorf("%s: %q present", ck.name, w)
					}
				}
			}
		}
		caseURL := "/console/cases/" + c1.ID
		run([]check{
			{"queue", me, "GET", "/console/cases", nil, 200, []string{"个体工商户设立登记（申请 1）", "个体工商户设立登记（申请 2）", `data-step="accept"`, "剩余 1 个工作日", "未认领"}, nil},
			{"queue, red only", me, "GET", "/console/cases?status=red", nil, 200, []string{`id="queue-empty"`}, []string{"申请 1"}},
			{"queue, another step", me, "GET", "/console/cases?step=decide", nil, 200, []string{`id="queue-empty"`}, nil},
			{"queue, bad colour", me, "GET", "/console/cases?status=purple", nil, 400, []string{"期限状态只能是"}, nil},
			{"queue, bad cursor", me, "GET", "/console/cases?after=not-a-cursor!", nil, 400, []string{"分页游标无效"}, nil},
			{"queue of another department", other, "GET", "/console/cases", nil, 200, []string{`id="queue-empty"`}, []string{"申请 1"}},
			{"queue of an auditor", auditor, "GET", "/console/cases", nil, 403, []string{"无权"}, nil},
			{"case", me, "GET", caseURL, nil, 200, []string{"个体工商户设立登记（申请 1）", `id="claim"`, "受理", "核准登记", "提交申请"}, []string{`id="approve"`}},
			{"case, another department", other, "GET", caseURL, nil, 404, nil, nil},
			{"case, another county", elsewhere, "GET", caseURL, nil, 404, nil, nil},
			{"claim, another department", other, "POST", caseURL + "/claim", url.Values{}, 404, nil, nil},
			{"approve before claiming", me, "POST", caseURL + "/approve", url.Values{"version": {"1"}}, 409, []string{"请先认领案件", `id="claim"`}, nil},
			{"claim", me, "POST", caseURL + "/claim", url.Values{}, 303, []string{caseURL + "?ok=1"}, nil},
			{"claimed", me, "GET", caseURL, nil, 200, []string{"我已认领", `id="approve"`, `id="correct"`, `id="release"`}, []string{`id="claim"`}},
			{"queue: mine", me, "GET", "/console/cases?claimed=mine", nil, 200, []string{"申请 1", "我已认领"}, []string{"申请 2"}},
			{"queue: unclaimed", me, "GET", "/console/cases?claimed=unclaimed", nil, 200, []string{"申请 2"}, []string{"申请 1"}},
			{"correction without items", me, "POST", caseURL + "/correct", url.Values{"comment": {"请补充经营场所证明"}}, 400,
				[]string{"请选择或填写需要补正的材料或事项", "请补充经营场所证明"}, nil},
			{"reject without reasons", me, "POST", caseURL + "/reject", url.Values{"version": {"3"}}, 400, []string{"请填写意见或理由"}, nil},
			{"correction", me, "POST", caseURL + "/correct", url.Values{"comment": {"请补充经营场所证明"}, "items_other": {"经营场所使用证明\n\n"}}, 303, nil, nil},
			{"suspended", me, "GET", caseURL, nil, 200, []string{"等待申请人补正", "经营场所使用证明", "暂停计时"}, []string{`id="approve"`}},
			{"queue: awaiting correction", me, "GET", "/console/cases?state=suspended", nil, 200, []string{"申请 1"}, []string{"申请 2"}},
		})
		if _, err := p.cases.Resume(t.Context(), authz.Subject{Kind: authz.Citizen, ID: "c1"}, c1.ID, "已补充"); err != nil {
			t.Fatal(err)
		}
		cur, _ := p.cases.Get(t.Context(), me, c1.ID)
		run([]check{
			{"still claimed after the correction", me, "POST", caseURL + "/claim", url.Values{}, 303, nil, nil},
			{"stale approval", me, "POST", caseURL + "/approve", url.Values{"version": {fmt.Sprint(cur.Version - 1)}}, 409, []string{"请刷新后重试"}, nil},
			{"approve", me, "POST", caseURL + "/approve", url.Values{"version": {fmt.Sprint(cur.Version)}, "comment": {"材料齐全，予以受理"}}, 303, nil, nil},
			{"next step", me, "GET", caseURL, nil, 200, []string{"核准登记", `id="claim"`, "审核通过，转下一环节", "材料齐全，予以受理", "申请人已补正"}, nil},
		})
		// The step deadline passes: the case turns red in the queue and on its page.
		p.clock.add(3 * 24 * time.Hour)
		run([]check{
			{"red", me, "GET", "/console/cases?status=red", nil, 200, []string{"申请 1", "申请 2", `class="badge bad" data-status="red"`, "超期"}, nil},
			{"green is empty", me, "GET", "/console/cases?status=green", nil, 200, []string{`id="queue-empty"`}, nil},
			{"claim at the last step", me, "POST", caseURL + "/claim", url.Values{}, 303, nil, nil},
		})
		cur, _ = p.cases.Get(t.Context(), me, c1.ID)
		run([]check{
			{"approve and close", me, "POST", caseURL + "/approve", url.Values{"version": {fmt.Sprint(cur.Version)}}, 303, nil, nil},
			{"closed", me, "GET", caseURL, nil, 200, []string{"已办结", "准予"}, []string{`id="approve"`, `id="claim"`}},
			{"stats", me, "GET", "/console/cases/stats", nil, 200, []string{`id="stat-open">1<`, `id="stat-closed">1<`, "<svg", `data-key="red"`}, nil},
			{"unknown action", me, "POST", caseURL + "/delete", url.Values{}, 404, nil, nil},
		})
		// Case 2: release, return to the previous step, transfer to another department.
		c2URL := "/console/cases/" + c2.ID
		leader := officer("l1", "140105", deptA, workflow.RoleLeader)
		run([]check{
			{"claim 2", me, "POST", c2URL + "/claim", url.Values{}, 303, nil, nil},
			{"release 2", me, "POST", c2URL + "/release", url.Values{}, 303, nil, nil},
			{"return at the first step", me, "POST", c2URL + "/return", url.Values{"comment": {"退回"}}, 409, []string{"请先认领案件"}, nil},
			{"claim 2 again", me, "POST", c2URL + "/claim", url.Values{}, 303, nil, nil},
			{"a leader may release a colleague's claim", leader, "GET", c2URL, nil, 200, []string{`id="release"`, "认领人"}, []string{`id="claim"`}},
			{"leader releases", leader, "POST", c2URL + "/release", url.Values{}, 303, nil, nil},
			{"claim 2 once more", me, "POST", c2URL + "/claim", url.Values{}, 303, nil, nil},
			{"approve 2", me, "POST", c2URL + "/approve", url.Values{}, 303, nil, nil},
			{"claim at step 2", me, "POST", c2URL + "/claim", url.Values{}, 303, nil, nil},
			{"return form offered", me, "GET", c2URL, nil, 200, []string{`id="return"`}, nil},
			{"return without reasons", me, "POST", c2URL + "/return", url.Values{}, 400, []string{"请填写意见或理由"}, nil},
			{"return", me, "POST", c2URL + "/return", url.Values{"comment": {"需重新受理审查"}}, 303, nil, nil},
			{"returned", me, "GET", c2URL, nil, 200, []string{"退回上一环节", "需重新受理审查", `data-step="accept"`}, nil},
			{"claim for the transfer", me, "POST", c2URL + "/claim", url.Values{}, 303, nil, nil},
			{"transfer to itself", me, "POST", c2URL + "/transfer", url.Values{"to_dept_id": {deptA}, "comment": {"转办"}}, 400, []string{"不能转办给本部门"}, nil},
			{"transfer", me, "POST", c2URL + "/transfer", url.Values{"to_dept_id": {deptB}, "comment": {"属公安部门职责"}}, 303, []string{"/console/cases?ok=1"}, nil},
			{"gone from the first department", me, "GET", c2URL, nil, 404, nil, nil},
			{"with the second", other, "GET", "/console/cases", nil, 200, []string{"申请 2"}, nil},
		})

		// English pages.
		code, body := p.do(me, "GET", "/console/cases?lang=en", nil)
		if code != 200 || !strings.Contains(body, "overdue") || !strings.Contains(body, "Case handling") {
			t.Errorf("English queue: %d\n%.1500s", code, body)
		}
		_ = i18n.EN
	}, bus.Migrations, workflow.Migrations)
}

package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/demo"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/notify"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/workflow"
	"github.com/dgov/dgov/packs"
)

// A new node loads the embedded Shanxi pack at its first Open, with a case definition per
// item, and does not load it again.
func TestServicesPackAtOpen(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := cliEnvFor(t, dialect)
			ctx := context.Background()
			a, err := Open(ctx, mustConfig(t, env), discardLogger(), Options{Argon: cheapArgon})
			if err != nil {
				t.Fatal(err)
			}
			p, err := govservice.LoadPack(packs.Shanxi())
			if err != nil {
				t.Fatal(err)
			}
			items, err := a.Services.List(ctx, govservice.Filter{Limit: 500})
			if err != nil || len(items) != len(p.Items) {
				t.Fatalf("%d items %v", len(items), err)
			}
			if bundles, _ := a.Services.Bundles(ctx); len(bundles) != len(p.Bundles) {
				t.Errorf("%d bundles", len(bundles))
			}
			for _, it := range items {
				def, err := a.Workflow.GetDefinition(ctx, govservice.CaseKey(it.Code), 0)
				if err != nil || def.Version != 1 || len(def.Steps) != len(it.Steps) || def.TotalDays != it.PromisedDays {
					t.Errorf("case definition of %s: %+v %v", it.Code, def, err)
				}
			}
			_, synced, _ := a.Services.LastSync(ctx)
			a.Close()
			b, err := Open(ctx, mustConfig(t, env), discardLogger(), Options{Argon: cheapArgon})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, again, _ := b.Services.LastSync(ctx); synced == nil || again == nil || !again.Equal(*synced) {
				t.Errorf("synced at %v, then %v: loaded twice", synced, again)
			}
		})
	}
}

// `dgov pack load` loads the embedded pack or a directory, reports what changed, refreshes
// the case definitions, and refuses a bad pack naming every problem.
func TestCLIPackLoad(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := cliEnvFor(t, dialect)
			code, out, errOut := runCLI(t, env, "", "pack", "load")
			if code != 0 || !strings.Contains(out, "unchanged 34") || !strings.Contains(out, "case definitions in force: 34") {
				t.Fatalf("load embedded: exit %d\n%s%s", code, out, errOut)
			}
			dir := filepath.Join(t.TempDir(), "pack")
			if err := os.CopyFS(dir, packs.Shanxi()); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "services", "geti-register.json")
			b, _ := os.ReadFile(file)
			os.WriteFile(file, []byte(strings.Replace(string(b), `"promised_days": 2`, `"promised_days": 3`, 1)), 0o644)
			code, out, errOut = runCLI(t, env, "", "pack", "load", "--dir", dir)
			if code != 0 || !strings.Contains(out, "changed 1") {
				t.Fatalf("load changed dir: exit %d\n%s%s", code, out, errOut)
			}
			a, err := Open(context.Background(), mustConfig(t, env), discardLogger(), Options{Argon: cheapArgon})
			if err != nil {
				t.Fatal(err)
			}
			def, err := a.Workflow.GetDefinition(context.Background(), "service:010020100100", 0)
			a.Close()
			if err != nil || def.Version != 2 || def.TotalDays != 3 {
				t.Errorf("refreshed definition: %+v %v", def, err)
			}
			os.WriteFile(filepath.Join(dir, "services", "broken.json"), []byte(`{"code": "01"`), 0o644)
			code, _, errOut = runCLI(t, env, "", "pack", "load", "--dir", dir)
			if code != 1 || !strings.Contains(errOut, "✗ services/broken.json") || !strings.Contains(errOut, "nothing changed") {
				t.Errorf("bad pack: exit %d\n%s", code, errOut)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"pack"}, 2, "load"},
		{[]string{"pack", "--help"}, 0, "embedded Shanxi pack"},
		{[]string{"pack", "load", "--help"}, 0, "-dir"},
		{[]string{"pack", "load", "--dir", "/nonexistent/pack"}, 1, "no such file"},
		{[]string{"help"}, 0, "pack load"},
	} {
		code, out, errOut := runCLI(t, cliEnvFor(t, "sqlite"), "", tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.out) {
			t.Errorf("%v: exit %d\n%s%s", tc.args, code, out, errOut)
		}
	}
}

// Every item of the pack, applied for in 太原市小店区 (140105), reaches a department that has a
// demo officer able to act on its steps.
func TestServicesDemoOfficers(t *testing.T) {
	env := cliEnvFor(t, "sqlite")
	ctx := context.Background()
	a, err := Open(ctx, mustConfig(t, env), discardLogger(), Options{Argon: cheapArgon})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := demo.Load(ctx, demo.Deps{DB: a.DB, Org: a.Org, Base: a.Base, Now: a.Now}, demo.Options{Residents: -1, Enterprises: -1}); err != nil {
		t.Fatal(err)
	}
	reader := authz.Subject{Kind: authz.System, ID: "test", Division: "140000", Roles: []authz.Role{authz.RoleOfficer}}
	staff, err := a.Org.ListStaff(ctx, reader, org.StaffFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	officers := map[string][]string{}
	for _, s := range staff {
		for _, r := range s.Roles {
			if r == authz.RoleOfficer {
				officers[s.DepartmentID] = append(officers[s.DepartmentID], s.Username)
			}
		}
	}
	items, err := a.Services.List(ctx, govservice.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		r, err := a.Applications.Route(ctx, it.Code, "140105")
		if err != nil {
			t.Errorf("%s %s: %v", it.Code, it.Name, err)
			continue
		}
		for _, st := range it.Steps {
			if st.Role != "" && st.Role != string(authz.RoleOfficer) {
				t.Errorf("%s %s: step %s needs role %s, which no demo account has", it.Code, it.Name, st.Key, st.Role)
			}
		}
		if len(officers[r.DeptID]) == 0 {
			t.Errorf("%s %s (%s, %s): routed to %s, which has no demo officer", it.Code, it.Name, it.Department, it.Level, r.DeptName)
		}
	}
}

// The journey on a serving node: an application is submitted, an officer asks for a
// correction, the applicant answers, the officer approves; the applicant gets a message (and
// an SMS) at every step, and the guide search finds the item.
func TestServicesNotifications(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		ctx := context.Background()
		admin, err := n.Org.Subject(ctx, adminID(t, n))
		if err != nil {
			t.Fatal(err)
		}
		// 政务服务帮办代办 is a county item of zwfw; 小店区 has no departments on this node, so it
		// goes up to the province's 政务服务管理局, the administrator's.
		st, err := n.Org.CreateStaff(ctx, admin, org.StaffInput{Username: "zw-officer", Name: "王办", DepartmentID: admin.Dept,
			Roles: []authz.Role{authz.RoleOfficer}, Password: testAdminPassword})
		if err != nil {
			t.Fatal(err)
		}
		officer, err := n.Org.Subject(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		ap := govservice.Applicant{Subject: authz.Subject{Kind: authz.Citizen, ID: "acc-1", Name: "张三"}, Name: "张三", Phone: "13800000001"}
		dr, err := n.Applications.Draft(ctx, ap, "110061000000")
		if err != nil {
			t.Fatal(err)
		}
		v := dr.Values
		v["matter"], v["mode"], v["division"] = "办理个体工商户营业执照", "assist", "140105"
		app, err := n.Applications.Submit(ctx, ap, govservice.SubmitInput{ItemCode: "110061000000", Division: "140105", Values: v})
		if err != nil {
			t.Fatal(err)
		}
		if app.DeptID != admin.Dept {
			t.Fatalf("routed to %s", app.DeptID)
		}
		waitMessages(t, n, ap.Subject, 1)
		if _, err := n.Workflow.Claim(ctx, officer, app.CaseID); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Workflow.RequestCorrection(ctx, officer, app.CaseID, "请说明需要帮办的具体事项", nil); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, n, ap.Subject, 2)
		v["matter"] = "个体工商户设立登记（小店区）"
		if _, err := n.Applications.AnswerCorrection(ctx, ap, app.ID, v, nil, "已补充"); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, n, ap.Subject, 3)
		for range 2 {
			if _, err := n.Workflow.Claim(ctx, officer, app.CaseID); err != nil {
				t.Fatal(err)
			}
			if _, err := n.Workflow.Decide(ctx, officer, app.CaseID, workflow.Decision{Outcome: workflow.Approve}); err != nil {
				t.Fatal(err)
			}
		}
		inbox := waitMessages(t, n, ap.Subject, 5)
		var titles []string
		for _, m := range inbox.Messages {
			titles = append(titles, m.Title.ZH)
		}
		want := "申请已办结：政务服务帮办代办申请|办理进度：政务服务帮办代办申请|已收到补正：政务服务帮办代办申请|请补正材料：政务服务帮办代办申请|申请已提交：政务服务帮办代办申请"
		if strings.Join(titles, "|") != want {
			t.Errorf("messages:\n%s", strings.Join(titles, "\n"))
		}
		if inbox.Messages[0].Link != "/account/applications/"+app.ID {
			t.Errorf("link %s", inbox.Messages[0].Link)
		}
		sink := n.SMS.(*identity.SinkGateway)
		deadline := time.Now().Add(10 * time.Second)
		for {
			sms, err := sink.ListSink(ctx, 50)
			if err == nil && len(sms) == 5 && strings.Contains(sms[0].Text, "已办结") && sms[0].Mobile == "13800000001" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sms: %+v %v", sms, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The guide search index is built at start.
		deadline = time.Now().Add(20 * time.Second)
		for {
			res, err := n.ServicesIndex.Search(ctx, "个体户", govservice.Page{})
			if err == nil && res.Total > 0 && res.Hits[0].Item != nil && res.Hits[0].Item.Code == "010020100100" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("search: %+v %v", res, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// waitMessages waits until the recipient has n messages (the consumer runs on its own).
func waitMessages(t *testing.T, n *node, to authz.Subject, want int) notify.Inbox {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		inbox, err := n.Notify.Inbox(context.Background(), to, notify.Page{})
		if err == nil && len(inbox.Messages) >= want {
			return inbox
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages (%v)", len(inbox.Messages), want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServicesSummary(t *testing.T) {
	a, err := Open(context.Background(), mustConfig(t, cliEnvFor(t, "sqlite")), discardLogger(), Options{Argon: cheapArgon})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s, err := a.servicesSummary(context.Background())
	if err != nil || !strings.Contains(s, "34 个事项 items, 3 个“一件事” bundles") {
		t.Errorf("summary %q %v", s, err)
	}
}

package catalog_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

var t0 = time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)

// fixture: departments in the province, 太原 (and its 小店区) and 大同, and staff subjects.
type fixture struct {
	t    *testing.T
	d    *db.DB
	ctx  context.Context
	org  *org.Service
	svc  *catalog.Service
	now  time.Time
	dept map[string]org.Department // "division/code"

	provAdmin, tyOfficer, tyOfficer2, tyAdmin, xdOfficer, dtOfficer, auditor authz.Subject
}

func staff(id, division, dept string, roles ...authz.Role) authz.Subject {
	return authz.Subject{Kind: authz.Staff, ID: id, Name: id, Division: division, Dept: dept, Roles: roles}
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	f := &fixture{t: t, d: d, ctx: context.Background(), now: t0, dept: map[string]org.Department{}}
	policy := authz.NewPolicy(divisions.Contains)
	catalog.RegisterPermissions(policy)
	f.org = org.New(d, policy, org.Options{Argon: org.ArgonParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if _, err := f.org.SyncDivisions(f.ctx); err != nil {
		t.Fatal(err)
	}
	sys := staff("sys", "140000", "", authz.RoleSysAdmin)
	for _, dc := range [][2]string{{"140000", "zwfw"}, {"140100", "scjg"}, {"140100", "ga"}, {"140105", "scjg"}, {"140200", "scjg"}} {
		div, _ := divisions.Lookup(dc[0])
		name := div.Name + dc[1]
		for _, k := range org.DepartmentKinds {
			if k.Code == dc[1] {
				name = k.NameIn(div)
			}
		}
		dep, err := f.org.CreateDepartment(f.ctx, sys, org.DepartmentInput{DivisionCode: dc[0], Code: dc[1], Name: name})
		if err != nil {
			t.Fatalf("create department %v: %v", dc, err)
		}
		f.dept[dc[0]+"/"+dc[1]] = dep
	}
	f.svc = catalog.New(d, policy, f.org, catalog.Options{
		Now:   func() time.Time { return f.now },
		Audit: dbtest.RecordAudit,
	})
	f.provAdmin = staff("prov_admin", "140000", f.dept["140000/zwfw"].ID, authz.RoleOrgAdmin)
	f.tyOfficer = staff("ty_officer", "140100", f.dept["140100/scjg"].ID, authz.RoleOfficer)
	f.tyOfficer2 = staff("ty_officer2", "140100", f.dept["140100/ga"].ID, authz.RoleOfficer)
	f.tyAdmin = staff("ty_admin", "140100", f.dept["140100/scjg"].ID, authz.RoleOrgAdmin)
	f.xdOfficer = staff("xd_officer", "140105", f.dept["140105/scjg"].ID, authz.RoleOfficer)
	f.dtOfficer = staff("dt_officer", "140200", f.dept["140200/scjg"].ID, authz.RoleOfficer)
	f.auditor = staff("auditor", "140000", f.dept["140000/zwfw"].ID, authz.RoleAuditor)
	return f
}

func each(t *testing.T, fn func(t *testing.T, f *fixture)) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) { fn(t, newFixture(t, d)) },
		org.Migrations, bus.Migrations, catalog.Migrations, dbtest.AuditTable)
}

func sample(name, deptID string) catalog.Draft {
	return catalog.Draft{
		Name: name, ProviderDeptID: deptID, Summary: name + "，包括登记、变更和注销信息。",
		Classification: catalog.Classification{Class: catalog.ClassBase, Item: "02", Entry: "001"},
		Format:         catalog.FormatDatabase, FormatDetail: "PostgreSQL",
		Items: []catalog.DataItem{
			{Name: "统一社会信用代码", EnglishName: "uscc", Type: catalog.TypeChar, Length: 18},
			{Name: "成立日期", Type: catalog.TypeDate},
			{Name: "法定代表人身份证号", Type: catalog.TypeChar, Length: 18, Sensitive: true, Description: "公民身份号码"},
		},
		ShareType: catalog.ShareConditional, ShareCondition: "用于市场监管和政务服务",
		OpenType: catalog.OpenNone, UpdateCycle: catalog.CycleDaily,
		Contact: catalog.Contact{Name: "王科长", Phone: "0351-4567890"},
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
	if _, ok := i18n.As(err); !ok {
		t.Fatalf("%s: %v is not an *i18n.Error", what, err)
	}
}

func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	e, ok := i18n.As(err)
	if !ok || e.Field != field || e.HTTPStatus() != 400 || e.Msg.ZH == "" || e.Msg.EN == "" {
		t.Fatalf("%s: got %v, want a bilingual bad-request error on %q", what, err, field)
	}
}

// publish takes a draft through submit and approval.
func (f *fixture) publish(editor, reviewer authz.Subject, d catalog.Draft) catalog.Resource {
	f.t.Helper()
	r := must[catalog.Resource](f.t, "create")(f.svc.CreateDraft(f.ctx, editor, d))
	must[catalog.Resource](f.t, "submit")(f.svc.Submit(f.ctx, editor, r.ID))
	return must[catalog.Resource](f.t, "approve")(f.svc.Review(f.ctx, reviewer, r.ID, true, ""))
}

func (f *fixture) actions() []string {
	return dbtest.Strings(f.t, f.d, `SELECT action FROM test_audit ORDER BY seq`)
}

func (f *fixture) events() []string {
	return dbtest.Strings(f.t, f.d, `SELECT subject FROM outbox ORDER BY seq`)
}

func codes(rs []catalog.Resource) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func TestLifecycle(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		d := sample("太原市市场主体登记信息", "") // provider: the officer's own department
		r := must[catalog.Resource](t, "create")(f.svc.CreateDraft(f.ctx, f.tyOfficer, d))
		if r.Code != "102001/1401000001" || r.Status != catalog.StatusDraft || r.Version != 0 || r.DivisionCode != "140100" ||
			r.ProviderDeptID != f.dept["140100/scjg"].ID || r.Provider != "太原市市场监督管理局" || r.Classification.Theme != "法人单位" {
			t.Fatalf("draft: %+v", r)
		}
		second := must[catalog.Resource](t, "create second")(f.svc.CreateDraft(f.ctx, f.tyOfficer, sample("太原市个体工商户信息", "")))
		if second.Code != "102001/1401000002" {
			t.Fatalf("second code %s", second.Code)
		}
		// Not yet in the catalog.
		if rs := must[[]catalog.Resource](t, "list")(f.svc.List(f.ctx, f.provAdmin, catalog.Filter{})); len(rs) != 0 {
			t.Fatalf("published before review: %s", codes(rs))
		}
		_, err := f.svc.Review(f.ctx, f.tyAdmin, r.ID, true, "")
		wantErr(t, "review a draft", err, catalog.ErrState)

		must[catalog.Resource](t, "submit")(f.svc.Submit(f.ctx, f.tyOfficer, r.ID))
		_, err = f.svc.UpdateDraft(f.ctx, f.tyOfficer, r.ID, d)
		wantErr(t, "edit under review", err, catalog.ErrState)
		_, err = f.svc.Review(f.ctx, f.tyOfficer2, r.ID, true, "")
		wantErr(t, "officer reviews", err, i18n.ErrForbidden)

		f.now = t0.Add(time.Hour)
		v1 := must[catalog.Resource](t, "approve")(f.svc.Review(f.ctx, f.tyAdmin, r.ID, true, "同意"))
		if v1.Status != catalog.StatusPublished || v1.Version != 1 || v1.LiveVersion != 1 || v1.PublishedAt == nil || !v1.PublishedAt.Equal(f.now) {
			t.Fatalf("approved: %+v", v1)
		}

		// A revision: the published version stays in force until the revision is approved.
		d2 := d
		d2.Name = "太原市市场主体登记信息（含个体工商户）"
		d2.Items = append(append([]catalog.DataItem{}, d.Items...), catalog.DataItem{Name: "经营范围", Type: catalog.TypeChar, Length: 2000})
		rev := must[catalog.Resource](t, "revise")(f.svc.UpdateDraft(f.ctx, f.tyOfficer, r.ID, d2))
		if rev.Status != catalog.StatusDraft || rev.Version != 1 || rev.LiveVersion != 1 || rev.Code != r.Code {
			t.Fatalf("revision: %+v", rev)
		}
		seen := must[catalog.Resource](t, "get from 大同")(f.svc.Get(f.ctx, f.dtOfficer, r.ID))
		if seen.Name != d.Name || seen.Version != 1 || seen.Status != catalog.StatusPublished {
			t.Fatalf("a reader elsewhere should see version 1: %+v", seen)
		}
		if got := must[catalog.Resource](t, "get by editor")(f.svc.Get(f.ctx, f.tyOfficer, r.ID)); got.Name != d2.Name {
			t.Fatalf("the editor sees the working copy: %+v", got)
		}
		bad := d2
		bad.Classification.Entry = "002"
		_, err = f.svc.UpdateDraft(f.ctx, f.tyOfficer, r.ID, bad)
		wantErr(t, "reclassify a published resource", err, catalog.ErrCodeFrozen)

		must[catalog.Resource](t, "resubmit")(f.svc.Submit(f.ctx, f.tyOfficer, r.ID))
		_, err = f.svc.Review(f.ctx, f.tyOfficer, r.ID, true, "")
		wantErr(t, "officer approves own", err, i18n.ErrForbidden)
		f.now = t0.Add(48 * time.Hour)
		v2 := must[catalog.Resource](t, "approve v2")(f.svc.Review(f.ctx, f.provAdmin, r.ID, true, ""))
		if v2.Version != 2 || v2.LiveVersion != 2 {
			t.Fatalf("v2: %+v", v2)
		}

		old := must[catalog.Resource](t, "get v1")(f.svc.GetVersion(f.ctx, f.dtOfficer, r.ID, 1))
		if old.Name != d.Name || len(old.Items) != 3 || old.Version != 1 || !old.PublishedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("version 1 changed: %+v", old)
		}
		vs := must[[]catalog.Resource](t, "versions")(f.svc.ListVersions(f.ctx, f.auditor, r.ID))
		if len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 || vs[1].Name != d2.Name || len(vs[1].Items) != 4 {
			t.Fatalf("versions: %+v", vs)
		}
		_, err = f.svc.GetVersion(f.ctx, f.dtOfficer, r.ID, 3)
		wantErr(t, "missing version", err, i18n.ErrNotFound)
		live := must[[]catalog.Resource](t, "list")(f.svc.List(f.ctx, f.dtOfficer, catalog.Filter{}))
		if len(live) != 1 || live[0].Name != d2.Name || live[0].Version != 2 {
			t.Fatalf("catalog: %+v", live)
		}

		// Withdrawal takes it out of the catalog and keeps the versions.
		_, err = f.svc.Withdraw(f.ctx, f.tyAdmin, r.ID, "")
		wantField(t, "withdraw without reason", err, "reason")
		w := must[catalog.Resource](t, "withdraw")(f.svc.Withdraw(f.ctx, f.tyAdmin, r.ID, "数据源停用"))
		if w.Status != catalog.StatusWithdrawn || w.LiveVersion != 0 || w.Version != 2 {
			t.Fatalf("withdrawn: %+v", w)
		}
		if rs := must[[]catalog.Resource](t, "list")(f.svc.List(f.ctx, f.provAdmin, catalog.Filter{})); len(rs) != 0 {
			t.Fatalf("withdrawn still listed: %s", codes(rs))
		}
		_, err = f.svc.Get(f.ctx, f.dtOfficer, r.ID)
		wantErr(t, "withdrawn, outside the division", err, i18n.ErrNotFound)
		if vs := must[[]catalog.Resource](t, "versions")(f.svc.ListVersions(f.ctx, f.tyOfficer, r.ID)); len(vs) != 2 {
			t.Fatalf("versions after withdrawal: %d", len(vs))
		}

		want := []string{catalog.ActionCreate, catalog.ActionCreate, catalog.ActionSubmit, catalog.ActionApprove, catalog.ActionUpdate,
			catalog.ActionSubmit, catalog.ActionApprove, catalog.ActionWithdraw}
		if got := f.actions(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("audit:\n got %v\nwant %v", got, want)
		}
		wantEv := []string{catalog.EventPublished, catalog.EventPublished, catalog.EventWithdrawn}
		if got := f.events(); strings.Join(got, ",") != strings.Join(wantEv, ",") {
			t.Fatalf("events: got %v want %v", got, wantEv)
		}
	})
}

func TestReject(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		r := must[catalog.Resource](t, "create")(f.svc.CreateDraft(f.ctx, f.tyAdmin, sample("太原市食品经营许可信息", f.dept["140100/scjg"].ID)))
		must[catalog.Resource](t, "submit")(f.svc.Submit(f.ctx, f.tyAdmin, r.ID))
		_, err := f.svc.Review(f.ctx, f.tyAdmin, r.ID, true, "")
		wantErr(t, "review own submission", err, catalog.ErrSelfReview)
		_, err = f.svc.Review(f.ctx, f.provAdmin, r.ID, false, "  ")
		wantField(t, "reject without reason", err, "reason")
		rej := must[catalog.Resource](t, "reject")(f.svc.Review(f.ctx, f.provAdmin, r.ID, false, "信息项缺少许可证编号"))
		if rej.Status != catalog.StatusDraft || rej.RejectReason != "信息项缺少许可证编号" || rej.Version != 0 {
			t.Fatalf("rejected: %+v", rej)
		}
		got := must[catalog.Resource](t, "get")(f.svc.Get(f.ctx, f.tyOfficer, r.ID))
		if got.RejectReason != rej.RejectReason {
			t.Fatalf("reason not kept: %+v", got)
		}
		if vs := must[[]catalog.Resource](t, "versions")(f.svc.ListVersions(f.ctx, f.tyOfficer, r.ID)); len(vs) != 0 {
			t.Fatalf("a rejection made a version: %+v", vs)
		}
		sub := must[catalog.Resource](t, "resubmit")(f.svc.Submit(f.ctx, f.tyOfficer, r.ID))
		if sub.RejectReason != "" || sub.SubmittedBy != f.tyOfficer.ID {
			t.Fatalf("resubmitted: %+v", sub)
		}
		// Now the admin did not submit it and may approve.
		must[catalog.Resource](t, "approve")(f.svc.Review(f.ctx, f.tyAdmin, r.ID, true, ""))
	})
}

func TestScope(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		_, err := f.svc.CreateDraft(f.ctx, f.tyOfficer, sample("大同市市场主体登记信息", f.dept["140200/scjg"].ID))
		wantErr(t, "太原 officer for 大同's department", err, i18n.ErrForbidden)
		_, err = f.svc.CreateDraft(f.ctx, authz.Subject{}, sample("x", f.dept["140100/scjg"].ID))
		wantErr(t, "anonymous", err, i18n.ErrUnauthorized)
		_, err = f.svc.CreateDraft(f.ctx, f.auditor, sample("x", f.dept["140000/zwfw"].ID))
		wantErr(t, "auditor", err, i18n.ErrForbidden)

		city := f.publish(f.tyOfficer, f.tyAdmin, sample("太原市市场主体登记信息", ""))
		// A city officer registers for a county department in the city.
		county := f.publish(f.tyOfficer, f.tyAdmin, sample("小店区市场主体登记信息", f.dept["140105/scjg"].ID))
		datong := f.publish(f.dtOfficer, f.provAdmin, sample("大同市市场主体登记信息", ""))
		prov := f.publish(staff("prov_officer", "140000", f.dept["140000/zwfw"].ID, authz.RoleOfficer), f.provAdmin,
			sample("山西省政务服务事项信息", ""))
		if county.DivisionCode != "140105" || county.Code != "102001/1401050001" || datong.Code != "102001/1402000001" {
			t.Fatalf("codes: %s %s", county.Code, datong.Code)
		}
		draft := must[catalog.Resource](t, "draft")(f.svc.CreateDraft(f.ctx, f.xdOfficer, sample("小店区个体户信息", "")))

		_, err = f.svc.UpdateDraft(f.ctx, f.xdOfficer, city.ID, sample("改名", ""))
		wantErr(t, "county officer edits a city resource", err, i18n.ErrForbidden)
		_, err = f.svc.Withdraw(f.ctx, f.tyAdmin, datong.ID, "x")
		wantErr(t, "太原 admin withdraws 大同's", err, i18n.ErrForbidden)
		_, err = f.svc.Get(f.ctx, f.dtOfficer, draft.ID)
		wantErr(t, "another city's draft", err, i18n.ErrNotFound)

		all := codes([]catalog.Resource{city, county, datong, prov})
		for _, c := range []struct {
			name  string
			actor authz.Subject
			f     catalog.Filter
			want  []catalog.Resource
		}{
			{"province rolls up every city and county", f.provAdmin, catalog.Filter{Division: "140000"}, []catalog.Resource{city, county, datong, prov}},
			{"whole catalog", f.dtOfficer, catalog.Filter{}, []catalog.Resource{city, county, datong, prov}},
			{"太原 rolls up 小店区", f.dtOfficer, catalog.Filter{Division: "140100"}, []catalog.Resource{city, county}},
			{"太原 alone", f.provAdmin, catalog.Filter{Division: "140100", Exact: true}, []catalog.Resource{city}},
			{"province alone", f.provAdmin, catalog.Filter{Division: "140000", Exact: true}, []catalog.Resource{prov}},
			{"by department", f.provAdmin, catalog.Filter{DepartmentID: f.dept["140200/scjg"].ID}, []catalog.Resource{datong}},
			{"by text", f.provAdmin, catalog.Filter{Query: "小店"}, []catalog.Resource{county}},
			{"by share type", f.provAdmin, catalog.Filter{ShareType: catalog.ShareUnconditional}, nil},
			{"drafts in 太原's scope", f.tyOfficer, catalog.Filter{Status: catalog.StatusDraft}, []catalog.Resource{draft}},
			{"drafts in 大同's scope", f.dtOfficer, catalog.Filter{Status: catalog.StatusDraft}, nil},
		} {
			got := must[[]catalog.Resource](t, c.name)(f.svc.List(f.ctx, c.actor, c.f))
			if codes(got) != codes(c.want) {
				t.Errorf("%s: got %q, want %q (all %q)", c.name, codes(got), codes(c.want), all)
			}
		}
		_, err = f.svc.List(f.ctx, f.auditor, catalog.Filter{Status: catalog.StatusDraft})
		wantErr(t, "auditor lists drafts", err, i18n.ErrForbidden)
		_, err = f.svc.List(f.ctx, authz.Subject{Kind: authz.Citizen, ID: "c", Division: "140105"}, catalog.Filter{})
		wantErr(t, "citizen lists", err, i18n.ErrForbidden)
	})
}

func TestValidation(t *testing.T) {
	ok := sample("太原市市场主体登记信息", "d")
	if err := catalog.Validate(ok); err != nil {
		t.Fatalf("sample: %v", err)
	}
	for _, c := range []struct {
		name  string
		edit  func(d *catalog.Draft)
		field string
	}{
		{"name required", func(d *catalog.Draft) { d.Name = " " }, "name"},
		{"summary required", func(d *catalog.Draft) { d.Summary = "" }, "summary"},
		{"conditional sharing needs conditions", func(d *catalog.Draft) { d.ShareCondition = "" }, "share_condition"},
		{"not shared needs a basis", func(d *catalog.Draft) { d.ShareType, d.ShareCondition = catalog.ShareNone, "" }, "share_condition"},
		{"unconditional takes no condition", func(d *catalog.Draft) { d.ShareType = catalog.ShareUnconditional }, "share_condition"},
		{"share type unknown", func(d *catalog.Draft) { d.ShareType = 4 }, "share_type"},
		{"not shared cannot be open", func(d *catalog.Draft) {
			d.ShareType, d.ShareCondition, d.OpenType = catalog.ShareNone, "《某法》第十条", catalog.OpenConditional
		}, "open_type"},
		{"sensitive items cannot be open", func(d *catalog.Draft) { d.OpenType = catalog.OpenUnconditional }, "items[2].sensitive"},
		{"class unknown", func(d *catalog.Draft) { d.Classification.Class = 4 }, "classification.class"},
		{"basic item beyond the list", func(d *catalog.Draft) { d.Classification.Item = "09" }, "classification.item"},
		{"entry not 3 digits", func(d *catalog.Draft) { d.Classification.Entry = "01" }, "classification.entry"},
		{"code malformed", func(d *catalog.Draft) { d.Code = "102001-1401000001" }, "code"},
		{"code of another classification", func(d *catalog.Draft) { d.Code = "101001/1401000001" }, "code"},
		{"format unknown", func(d *catalog.Draft) { d.Format = "paper" }, "format"},
		{"cycle unknown", func(d *catalog.Draft) { d.UpdateCycle = "hourly" }, "update_cycle"},
		{"no items", func(d *catalog.Draft) { d.Items = nil }, "items"},
		{"item type unknown", func(d *catalog.Draft) { d.Items[1].Type = "X" }, "items[1].type"},
		{"character item needs a length", func(d *catalog.Draft) { d.Items[0].Length = 0 }, "items[0].length"},
		{"item names unique", func(d *catalog.Draft) { d.Items[1].Name = d.Items[0].Name }, "items[1].name"},
		{"contact required", func(d *catalog.Draft) { d.Contact.Name = "" }, "contact.name"},
		{"contact phone", func(d *catalog.Draft) { d.Contact.Phone = "call me" }, "contact.phone"},
		{"control characters", func(d *catalog.Draft) { d.Name = "a\x00b" }, "name"},
	} {
		d := sample("太原市市场主体登记信息", "d")
		c.edit(&d)
		wantField(t, c.name, catalog.Validate(d), c.field)
	}
}

func TestParseCode(t *testing.T) {
	for _, c := range []struct {
		code, prefix, seq string
		ok                bool
	}{
		{"101001/1401000001", "101001", "1401000001", true},
		{"3070010012/140100000123", "3070010012", "140100000123", true},
		{"201001/1", "201001", "1", true},
		{"101001", "", "", false},
		{"101001/", "", "", false},
		{"401001/1", "", "", false},
		{"100001/1", "", "", false},
		{"10100/1", "", "", false},
		{"1010010123456789/1", "", "", false},
		{"101001/12a", "", "", false},
		{"106001/1", "", "", false}, // basic resources have items 01–05
	} {
		cls, seq, err := catalog.ParseCode(c.code)
		if (err == nil) != c.ok || (c.ok && (cls.Prefix() != c.prefix || seq != c.seq)) {
			t.Errorf("ParseCode(%q) = %v %q %v", c.code, cls.Prefix(), seq, err)
		}
		if err != nil {
			wantField(t, c.code, err, "code")
		}
	}
}

// Two reviewers approving one submission at once make one version, not two.
func TestConcurrentApproval(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		r := must[catalog.Resource](t, "create")(f.svc.CreateDraft(f.ctx, f.tyOfficer, sample("太原市市场主体登记信息", "")))
		must[catalog.Resource](t, "submit")(f.svc.Submit(f.ctx, f.tyOfficer, r.ID))
		errs := make(chan error, 2)
		for _, reviewer := range []authz.Subject{f.tyAdmin, f.provAdmin} {
			go func() { _, err := f.svc.Review(f.ctx, reviewer, r.ID, true, ""); errs <- err }()
		}
		var ok, state int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				ok++
			case errors.Is(err, catalog.ErrState):
				state++
			default:
				t.Fatalf("review: %v", err)
			}
		}
		vs := must[[]catalog.Resource](t, "versions")(f.svc.ListVersions(f.ctx, f.tyOfficer, r.ID))
		if ok != 1 || state != 1 || len(vs) != 1 {
			t.Fatalf("ok %d, state %d, versions %d", ok, state, len(vs))
		}
	})
}

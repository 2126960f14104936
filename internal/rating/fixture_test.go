package rating_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/rating"
	"github.com/dgov/dgov/internal/workflow"
)

var sources = []db.Source{bus.Migrations, workflow.Migrations, rating.Migrations, dbtest.AuditTable}

// bj is a Beijing wall-clock time.
func bj(y, m, d, h, min int) time.Time {
	return time.Date(y, time.Month(m), d, h, min, 0, 0, calendar.Beijing)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// applications is the applications service as the engine sees it: every application is
// visible to its applicant only, like govservice's.
type applications struct {
	mu   sync.Mutex
	apps map[string]appEntry
}

type appEntry struct {
	app       rating.Application
	applicant authz.Subject
}

func (a *applications) RatedApplication(_ context.Context, actor authz.Subject, id string) (rating.Application, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.apps[id]
	if !ok || e.applicant.Kind != actor.Kind || e.applicant.ID != actor.ID {
		return rating.Application{}, i18n.ErrNotFound
	}
	return e.app, nil
}

// Departments and divisions: 太原市 (140100) and its 小店区 (140105); 大同市 (140200).
const (
	deptTY  = "dept-ty-scjg" // 太原市市场监督管理局
	deptTYR = "dept-ty-rs"   // 太原市人力资源和社会保障局
	deptDT  = "dept-dt-scjg" // 大同市市场监督管理局
)

var deptNames = map[string]string{deptTY: "太原市市场监督管理局", deptTYR: "太原市人力资源和社会保障局", deptDT: "大同市市场监督管理局"}

type fixture struct {
	t     testing.TB
	d     *db.DB
	ctx   context.Context
	clock *clock
	cases *workflow.Service
	svc   *rating.Service
	apps  *applications

	officer, officer2, rsOfficer, dtOfficer, supervisor, dtSupervisor, auditor authz.Subject
	citizen, citizen2, enterprise                                              authz.Subject
}

func staff(id, division, dept string, roles ...authz.Role) authz.Subject {
	return authz.Subject{Kind: authz.Staff, ID: id, Name: id, Division: division, Dept: dept, Roles: roles}
}

func newFixture(t testing.TB, d *db.DB, opts rating.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, d: d, ctx: context.Background(), clock: &clock{t: bj(2026, 3, 2, 10, 0)}, // a Monday
		apps: &applications{apps: map[string]appEntry{}}}
	policy := authz.NewPolicy(divisions.Contains)
	workflow.RegisterPermissions(policy)
	rating.RegisterPermissions(policy)
	audit := dbtest.RecordAudit
	f.cases = workflow.New(d, policy, workflow.Options{Now: f.clock.Now, Audit: audit})
	opts.Now, opts.Audit = f.clock.Now, audit
	f.svc = rating.New(d, policy, f.cases, f.apps, opts)
	f.officer = staff("o1", "140100", deptTY, authz.RoleOfficer)
	f.officer2 = staff("o2", "140100", deptTY, authz.RoleOfficer)
	f.rsOfficer = staff("r1", "140100", deptTYR, authz.RoleOfficer)
	f.dtOfficer = staff("d1", "140200", deptDT, authz.RoleOfficer)
	f.supervisor = staff("s1", "140100", "", workflow.RoleSupervisor)
	f.dtSupervisor = staff("s2", "140200", "", workflow.RoleSupervisor)
	f.auditor = staff("a1", "140100", deptTY, authz.RoleAuditor)
	f.citizen = authz.Subject{Kind: authz.Citizen, ID: "c1", Name: "张三"}
	f.citizen2 = authz.Subject{Kind: authz.Citizen, ID: "c2", Name: "李四"}
	f.enterprise = authz.Subject{Kind: authz.Enterprise, ID: "e1", Name: "太原市晋味餐饮有限公司"}
	if err := f.cases.Define(f.ctx, serviceDef); err != nil {
		t.Fatalf("define: %v", err)
	}
	return f
}

// serviceDef: 受理 1 and 决定 2 working days.
var serviceDef = workflow.Definition{Key: "service:test-item", Version: 1, Name: "个体工商户设立登记", NameEn: "Sole proprietorship registration",
	Steps: []workflow.Step{
		{Key: workflow.StepAccept, Name: "受理", NameEn: "Acceptance", Days: 1},
		{Key: workflow.StepDecide, Name: "决定", NameEn: "Decision", Days: 2},
	}}

var seq atomic.Int64

// appSpec describes an application to make.
type appSpec struct {
	applicant authz.Subject
	dept      string
	division  string
	item      string
	outcome   workflow.Outcome // approved (default), rejected, withdrawn, or "" to leave it open
}

// application makes an application with its case, driven to the spec's outcome by the
// department's officer, and registers it with the fake applications service.
func (f *fixture) application(s appSpec) rating.Application {
	f.t.Helper()
	if s.applicant.Kind == "" {
		s.applicant = f.citizen
	}
	if s.dept == "" {
		s.dept = deptTY
	}
	if s.division == "" {
		s.division = "140105"
	}
	if s.item == "" {
		s.item = "test-item"
	}
	n := seq.Add(1)
	app := rating.Application{ID: fmt.Sprintf("app-%d", n), Number: fmt.Sprintf("20260302-140105-%06d", n), ItemCode: s.item,
		ItemName: "个体工商户设立登记（" + s.item + "）", ItemNameEn: "Registration " + s.item, DeptID: s.dept, DeptName: deptNames[s.dept],
		Division: s.division}
	c, err := f.cases.Open(f.ctx, workflow.OpenCase{Definition: serviceDef.Key, Title: app.ItemName, Ref: "application:" + app.ID,
		Applicant: s.applicant, DeptID: s.dept, Division: s.division})
	if err != nil {
		f.t.Fatalf("open case: %v", err)
	}
	app.CaseID = c.ID
	handler := staff("h-"+s.dept, "140000", s.dept, authz.RoleOfficer)
	switch s.outcome {
	case "", workflow.OutcomeApproved:
		for range serviceDef.Steps {
			must[workflow.Case](f.t, "claim")(f.cases.Claim(f.ctx, handler, c.ID))
			must[workflow.Case](f.t, "approve")(f.cases.Decide(f.ctx, handler, c.ID, workflow.Decision{Outcome: workflow.Approve}))
		}
	case workflow.OutcomeRejected:
		must[workflow.Case](f.t, "claim")(f.cases.Claim(f.ctx, handler, c.ID))
		must[workflow.Case](f.t, "reject")(f.cases.Decide(f.ctx, handler, c.ID, workflow.Decision{Outcome: workflow.Reject, Comment: "材料不符合法定形式"}))
	case workflow.OutcomeWithdrawn:
		must[workflow.Case](f.t, "withdraw")(f.cases.Withdraw(f.ctx, s.applicant, c.ID, "不办了"))
	case "open":
	}
	f.apps.mu.Lock()
	f.apps.apps[app.ID] = appEntry{app: app, applicant: s.applicant}
	f.apps.mu.Unlock()
	return app
}

// rate rates an application, failing the test on an error.
func (f *fixture) rate(actor authz.Subject, in rating.Input) rating.Rating {
	f.t.Helper()
	return must[rating.Rating](f.t, "rate")(f.svc.Rate(f.ctx, actor, in))
}

// must fails the test on an error.
func must[T any](t testing.TB, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// wantErr checks that err is the i18n error want (by code) with want's status, bilingual.
func wantErr(t testing.TB, what string, err error, want *i18n.Error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %s", what, want.Code)
		return
	}
	e, ok := i18n.As(err)
	if !ok {
		t.Errorf("%s: %v is not a user-facing error (want %s)", what, err, want.Code)
		return
	}
	if !errors.Is(err, want) || e.HTTPStatus() != want.HTTPStatus() {
		t.Errorf("%s: got %s (%d), want %s (%d)", what, e.Code, e.HTTPStatus(), want.Code, want.HTTPStatus())
	}
	if e.Msg.ZH == "" || e.Msg.EN == "" {
		t.Errorf("%s: %s is not bilingual: %+v", what, e.Code, e.Msg)
	}
}

// subjects lists the outbox subjects starting with prefix, in order.
func (f *fixture) subjects(prefix string) []string {
	f.t.Helper()
	rows, err := f.d.Query(f.ctx, `SELECT subject FROM outbox ORDER BY seq`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			f.t.Fatal(err)
		}
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			out = append(out, s)
		}
	}
	return out
}

// outboxEvents returns the outbox rows with subject as bus events, in order.
func (f *fixture) outboxEvents(subjectPrefix string) []bus.Event {
	f.t.Helper()
	rows, err := f.d.Query(f.ctx, `SELECT id, subject, payload FROM outbox ORDER BY seq`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []bus.Event
	for rows.Next() {
		var ev bus.Event
		var payload []byte
		if err := rows.Scan(&ev.ID, &ev.Subject, &payload); err != nil {
			f.t.Fatal(err)
		}
		ev.Data = payload
		if len(ev.Subject) >= len(subjectPrefix) && ev.Subject[:len(subjectPrefix)] == subjectPrefix {
			out = append(out, ev)
		}
	}
	return out
}

// audits lists the audit actions recorded on object, in order.
func (f *fixture) audits(object string) []string {
	return dbtest.Strings(f.t, f.d, `SELECT action FROM test_audit WHERE object = ? ORDER BY seq`, object)
}

package workflow_test

import (
	"context"
	"encoding/json"
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
	"github.com/dgov/dgov/internal/workflow"
)

var sources = []db.Source{bus.Migrations, workflow.Migrations, dbtest.AuditTable}

// bj is a Beijing wall-clock time.
func bj(y, m, d, h, min int) time.Time {
	return time.Date(y, time.Month(m), d, h, min, 0, 0, calendar.Beijing)
}

// clock is the injected, controllable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// departments is the org engine as Transfer sees it: id → division.
type departments map[string]string

func (d departments) DepartmentDivision(_ context.Context, id string) (string, error) {
	if div, ok := d[id]; ok {
		return div, nil
	}
	return "", i18n.ErrNotFound
}

// Departments and divisions of the fixture: 太原市 (140100) with its 小店区 (140105), and 大同市 (140200).
const (
	deptTY = "dept-ty-scjg" // 太原市市场监督管理局
	deptXD = "dept-xd-scjg" // 小店区市场监督管理局
	deptDT = "dept-dt-scjg" // 大同市市场监督管理局
)

type fixture struct {
	t     testing.TB
	d     *db.DB
	ctx   context.Context
	clock *clock
	svc   *workflow.Service

	officer, officer2, leader, auditor, xdOfficer, dtOfficer, supervisor, dtSupervisor authz.Subject
	citizen, citizen2                                                                  authz.Subject
}

func staff(id, division, dept string, roles ...authz.Role) authz.Subject {
	return authz.Subject{Kind: authz.Staff, ID: id, Name: id, Division: division, Dept: dept, Roles: roles}
}

func newFixture(t testing.TB, d *db.DB, opts workflow.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, d: d, ctx: context.Background(), clock: &clock{t: bj(2026, 3, 2, 10, 0)}} // a Monday
	policy := authz.NewPolicy(divisions.Contains)
	workflow.RegisterPermissions(policy)
	opts.Now = f.clock.Now
	if opts.Departments == nil {
		opts.Departments = departments{deptTY: "140100", deptXD: "140105", deptDT: "140200"}
	}
	opts.Audit = dbtest.RecordAudit
	f.svc = workflow.New(d, policy, opts)
	f.officer = staff("o1", "140100", deptTY, authz.RoleOfficer)
	f.officer2 = staff("o2", "140100", deptTY, authz.RoleOfficer)
	f.leader = staff("l1", "140100", deptTY, workflow.RoleLeader)
	f.auditor = staff("a1", "140100", deptTY, authz.RoleAuditor)
	f.xdOfficer = staff("x1", "140105", deptXD, authz.RoleOfficer)
	f.dtOfficer = staff("d1", "140200", deptDT, authz.RoleOfficer)
	f.supervisor = staff("s1", "140100", "", workflow.RoleSupervisor)
	f.dtSupervisor = staff("s2", "140200", "", workflow.RoleSupervisor)
	f.citizen = authz.Subject{Kind: authz.Citizen, ID: "c1", Name: "张三"}
	f.citizen2 = authz.Subject{Kind: authz.Citizen, ID: "c2", Name: "李四"}
	if err := f.svc.Define(f.ctx, serviceDef); err != nil {
		t.Fatalf("define: %v", err)
	}
	return f
}

// serviceDef: 受理 1, 审查 3, 决定 2 (by a leader), 送达 1 working days; 7 in all.
var serviceDef = workflow.Definition{Key: "service:test-item", Version: 1, Name: "个体工商户设立登记", NameEn: "Sole proprietorship registration",
	Steps: []workflow.Step{
		{Key: workflow.StepAccept, Name: "受理", NameEn: "Acceptance", Days: 1},
		{Key: workflow.StepReview, Name: "审查", NameEn: "Review", Days: 3},
		{Key: workflow.StepDecide, Name: "决定", NameEn: "Decision", Role: string(workflow.RoleLeader), Days: 2},
		{Key: workflow.StepDeliver, Name: "送达", NameEn: "Delivery", Days: 1},
	}}

var refs atomic.Int64

// open opens a case of def for the citizen at 太原市市场监管局, division 小店区.
func (f *fixture) open(def string) workflow.Case {
	f.t.Helper()
	c, err := f.svc.Open(f.ctx, workflow.OpenCase{Definition: def, Title: "个体工商户设立登记（张三烧饼店）",
		Ref: fmt.Sprintf("application:%d", refs.Add(1)), Applicant: f.citizen, DeptID: deptTY, Division: "140105", Data: map[string]string{"item": "test-item"}})
	if err != nil {
		f.t.Fatalf("open: %v", err)
	}
	return c
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

// wantErr checks that err is the i18n error want (by code) with want's status.
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

// outbox lists the subjects published for a case, in order.
func (f *fixture) outbox(caseID string) []string {
	f.t.Helper()
	rows, err := f.d.Query(f.ctx, `SELECT subject, payload FROM outbox ORDER BY seq`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var subject string
		var payload []byte
		if err := rows.Scan(&subject, &payload); err != nil {
			f.t.Fatal(err)
		}
		var p workflow.EventPayload
		if err := json.Unmarshal(payload, &p); err != nil {
			f.t.Fatal(err)
		}
		if p.CaseID == caseID {
			out = append(out, subject)
		}
	}
	return out
}

// payloads decodes the events published for a case.
func (f *fixture) payloads(caseID string) []workflow.EventPayload {
	f.t.Helper()
	rows, err := f.d.Query(f.ctx, `SELECT payload FROM outbox ORDER BY seq`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []workflow.EventPayload
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&payload); err != nil {
			f.t.Fatal(err)
		}
		var p workflow.EventPayload
		if err := json.Unmarshal(payload, &p); err != nil {
			f.t.Fatal(err)
		}
		if p.CaseID == caseID {
			out = append(out, p)
		}
	}
	return out
}

// audits lists the audit actions recorded for a case, in order.
func (f *fixture) audits(caseID string) []string {
	return dbtest.Strings(f.t, f.d, `SELECT action FROM test_audit WHERE object = ? ORDER BY seq`, "workflow_case:"+caseID)
}

// actions lists the history of a case as actions.
func (f *fixture) actions(actor authz.Subject, caseID string) []workflow.Action {
	f.t.Helper()
	evs := must[[]workflow.Event](f.t, "history")(f.svc.History(f.ctx, actor, caseID))
	out := make([]workflow.Action, len(evs))
	for i, e := range evs {
		out[i] = e.Action
	}
	return out
}

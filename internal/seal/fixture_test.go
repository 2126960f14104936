package seal_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/seal"
)

var sources = []db.Source{crypto.Migrations, org.Migrations, bus.Migrations, seal.Migrations, dbtest.AuditTable}

var t0 = time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)

// fixture: departments in the province, 太原 and 大同; staff subjects; the seal service.
type fixture struct {
	t    testing.TB
	d    *db.DB
	ctx  context.Context
	org  *org.Service
	svc  *seal.Service
	now  time.Time
	dept map[string]org.Department // "division/code"

	provAdmin, tyAdmin, tyOfficer, tyGAOfficer, dtAdmin, auditor authz.Subject
}

func staff(id, division, dept string, roles ...authz.Role) authz.Subject {
	return authz.Subject{Kind: authz.Staff, ID: id, Name: id, Division: division, Dept: dept, Roles: roles}
}

func newFixture(t testing.TB, d *db.DB) *fixture {
	t.Helper()
	f := &fixture{t: t, d: d, ctx: context.Background(), now: t0, dept: map[string]org.Department{}}
	clock := func() time.Time { return f.now }
	keys, err := crypto.Open(f.ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), clock)
	if err != nil {
		t.Fatal(err)
	}
	policy := authz.NewPolicy(divisions.Contains)
	seal.RegisterPermissions(policy)
	f.org = org.New(d, policy, org.Options{Argon: org.ArgonParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if _, err := f.org.SyncDivisions(f.ctx); err != nil {
		t.Fatal(err)
	}
	sys := staff("sys", "140000", "", authz.RoleSysAdmin)
	for _, dc := range [][2]string{{"140000", "zwfw"}, {"140100", "scjg"}, {"140100", "ga"}, {"140200", "scjg"}} {
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
	f.svc = seal.New(d, policy, f.org, keys.FieldCipher(), seal.Options{
		Now:   clock,
		Audit: dbtest.RecordAudit,
	})
	f.provAdmin = staff("prov_admin", "140000", f.dept["140000/zwfw"].ID, authz.RoleOrgAdmin)
	f.tyAdmin = staff("ty_admin", "140100", f.dept["140100/scjg"].ID, authz.RoleOrgAdmin)
	f.tyOfficer = staff("ty_officer", "140100", f.dept["140100/scjg"].ID, authz.RoleOfficer)
	f.tyGAOfficer = staff("ty_ga_officer", "140100", f.dept["140100/ga"].ID, authz.RoleOfficer)
	f.dtAdmin = staff("dt_admin", "140200", f.dept["140200/scjg"].ID, authz.RoleOrgAdmin)
	f.auditor = staff("auditor", "140000", f.dept["140000/zwfw"].ID, authz.RoleAuditor)
	return f
}

func each(t *testing.T, fn func(t *testing.T, f *fixture)) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) { fn(t, newFixture(t, d)) }, sources...)
}

func must[T any](t testing.TB, what string) func(T, error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
	if _, ok := i18n.As(err); !ok {
		t.Fatalf("%s: %v is not an i18n error", what, err)
	}
}

// audits returns the audit actions recorded, in order.
func (f *fixture) audits() []string {
	return dbtest.Strings(f.t, f.d, `SELECT action FROM test_audit ORDER BY seq`)
}

// events returns the subjects published to the outbox, in order.
func (f *fixture) events() []string {
	return dbtest.Strings(f.t, f.d, `SELECT subject FROM outbox ORDER BY created_at, id`)
}

// official creates the official seal of 太原市市场监督管理局.
func (f *fixture) official() seal.Seal {
	f.t.Helper()
	return must[seal.Seal](f.t, "create seal")(f.svc.Create(f.ctx, f.tyAdmin, seal.CreateInput{DeptID: f.dept["140100/scjg"].ID}))
}

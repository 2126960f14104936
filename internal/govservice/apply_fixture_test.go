package govservice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/blob"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/workflow"
	"github.com/dgov/dgov/packs"
)

// applyAudit stands in for the audit log.
var applyAudit = db.Source{Name: "applytest", FS: fstest.MapFS{
	"0001_audit.sql": {Data: []byte(`CREATE TABLE apply_audit (seq {{SERIAL}}, actor TEXT NOT NULL, action TEXT NOT NULL,
		object TEXT NOT NULL, detail TEXT NOT NULL)`)},
}}

var applySources = []db.Source{crypto.Migrations, bus.Migrations, workflow.Migrations, form.Migrations, govservice.Migrations,
	baselib.Migrations, applyAudit}

// Items of the Shanxi pack the tests apply for.
const (
	itemGeti      = "010020100100" // 个体工商户设立登记: scjg, county, citizens; accept → decide
	itemCompany   = "010020200100" // 企业设立登记: xzsp, city
	itemSeal      = "100011000000" // 公章刻制备案: ga, county, enterprises only
	itemVocation  = "070071000000" // 职业资格证书核发: rs, province
	itemBirthCert = "110031000100" // 出生医学证明: wj, county
)

// clock is the injected, controllable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// departments is the organisation: departments by "division/kind", as org's demo has them —
// every kind at the province and in 太原市, and in 小店区 only zwfw, scjg and ga.
type departments map[string]org.Department

func (d departments) DepartmentIn(_ context.Context, division, code string) (org.Department, error) {
	if dep, ok := d[division+"/"+code]; ok {
		return dep, nil
	}
	return org.Department{}, i18n.ErrNotFound
}

func (d departments) Department(_ context.Context, id string) (org.Department, error) {
	for _, dep := range d {
		if dep.ID == id {
			return dep, nil
		}
	}
	return org.Department{}, i18n.ErrNotFound
}

func newDepartments() departments {
	d := departments{}
	add := func(division, code string) {
		dv, _ := divisions.Lookup(division)
		d[division+"/"+code] = org.Department{ID: "dept-" + division + "-" + code, DivisionCode: division, Code: code,
			Name: dv.Name + code, Active: true}
	}
	for _, k := range org.DepartmentKinds {
		add("140000", k.Code)
		add("140100", k.Code)
	}
	for _, code := range []string{"zwfw", "scjg", "ga"} {
		add("140105", code)
	}
	return d
}

type applyFixture struct {
	t     testing.TB
	ctx   context.Context
	d     *db.DB
	clock *clock
	depts departments
	items *govservice.Service
	cases *workflow.Service
	forms *form.Versions
	base  *baselib.Service
	blobs blob.Store
	fc    *crypto.FieldCipher
	apps  *govservice.Applications

	// failResume makes the workflow refuse to resume cases (its audit fails).
	failResume atomic.Bool

	zhang, li govservice.Applicant // citizens
	firm      govservice.Applicant // an enterprise
}

// The applicants' ID numbers: 张三 is in the population library, 李四 is not.
var (
	zhangID = ids.MakeResident("140105", time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC), 123, true)
	liID    = ids.MakeResident("140106", time.Date(1985, 2, 3, 0, 0, 0, 0, time.UTC), 456, false)
	firmCC  = mustCredit("140105", "MA0K3L7B")
)

func mustCredit(division, body string) string {
	c, err := ids.MakeCreditCode('9', '1', division, body)
	if err != nil {
		panic(err)
	}
	return c
}

func newApplyFixture(t testing.TB, d *db.DB, opts ...func(*govservice.ApplicationOptions)) *applyFixture {
	t.Helper()
	f := &applyFixture{t: t, ctx: context.Background(), d: d, clock: &clock{t: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)}, depts: newDepartments()}
	keys, err := crypto.Open(f.ctx, d, bytes.Repeat([]byte{7}, crypto.MasterKeySize), f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.fc = keys.FieldCipher()
	audit := func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO apply_audit (actor, action, object, detail) VALUES (?, ?, ?, ?)`, actor.String(), action, object, string(b))
		return err
	}
	f.items = govservice.New(d, govservice.Options{Now: f.clock.Now, Audit: audit})
	p, err := govservice.LoadPack(packs.Shanxi())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.items.Sync(f.ctx, p); err != nil {
		t.Fatal(err)
	}
	policy := authz.NewPolicy(divisions.Contains)
	workflow.RegisterPermissions(policy)
	f.cases = workflow.New(d, policy, workflow.Options{Now: f.clock.Now,
		Audit: func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
			if action == workflow.ActionResumed.AuditAction() && f.failResume.Load() {
				return errors.New("resume refused")
			}
			return audit(ctx, tx, actor, action, object, detail)
		}})
	if n, err := f.items.DefineCases(f.ctx, f.cases); err != nil || n != len(p.Items) {
		t.Fatalf("define cases: %d %v", n, err)
	}
	f.forms = form.NewVersions(d, f.clock.Now)
	f.base = baselib.New(d, f.fc, baselib.Options{Now: f.clock.Now})
	if _, err := f.base.AddPersons(f.ctx, []baselib.PersonInput{{Name: "张三", IDNumber: zhangID, DivisionCode: "140105",
		Address: "太原市小店区长风街 1 号", Mobile: "13800000001"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.base.AddEntities(f.ctx, []baselib.EntityInput{{CreditCode: firmCC, Name: "山西晋味餐饮有限公司",
		EntityType: "有限责任公司", LegalRepName: "张三", LegalRepID: zhangID, DivisionCode: "140105", Address: "太原市小店区亲贤街 8 号",
		RegisteredCapitalFen: 100_000_00, Established: "2020-01-01"}}); err != nil {
		t.Fatal(err)
	}
	if f.blobs, err = blob.NewLocal(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	o := govservice.ApplicationOptions{Now: f.clock.Now, Audit: audit, Calendar: calendar.Default()}
	for _, fn := range opts {
		fn(&o)
	}
	f.apps = govservice.NewApplications(d, f.items, f.forms, f.cases, f.depts, f.base, f.blobs, f.fc, o)
	f.zhang = govservice.Applicant{Subject: authz.Subject{Kind: authz.Citizen, ID: "acc-zhang", Name: "张三"}, Name: "张三",
		IDNumber: zhangID, Phone: "13800000001"}
	f.li = govservice.Applicant{Subject: authz.Subject{Kind: authz.Citizen, ID: "acc-li", Name: "李四"}, Name: "李四", IDNumber: liID}
	f.firm = govservice.Applicant{Subject: authz.Subject{Kind: authz.Enterprise, ID: "ent-1", Name: "山西晋味餐饮有限公司"}, Name: "张三",
		IDNumber: zhangID, Phone: "13800000001", Enterprise: &govservice.EnterpriseRef{Name: "山西晋味餐饮有限公司", CreditCode: firmCC}}
	return f
}

// officer is a staff member of the department of kind code in division.
func (f *applyFixture) officer(division, code string, roles ...authz.Role) authz.Subject {
	if len(roles) == 0 {
		roles = []authz.Role{authz.RoleOfficer}
	}
	dep := f.depts[division+"/"+code]
	return authz.Subject{Kind: authz.Staff, ID: "staff-" + division + "-" + code, Division: division, Dept: dep.ID, Roles: roles}
}

func (f *applyFixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.d.QueryRow(f.ctx, q, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *applyFixture) draft(ap govservice.Applicant, code string) govservice.FormDraft {
	f.t.Helper()
	d, err := f.apps.Draft(f.ctx, ap, code)
	if err != nil {
		f.t.Fatalf("draft %s: %v", code, err)
	}
	return d
}

// values fills every field of a form with a valid value, then lets over override some.
func values(fm *form.Form, over form.Values) form.Values {
	v := form.Values{}
	for _, k := range fm.Keys() {
		fd, _ := fm.Field(k)
		v[k] = sample(fd)
	}
	for k, x := range over {
		v[k] = x
	}
	return v
}

// patternSamples are values for the patterns the Shanxi pack declares.
var patternSamples = map[string]string{
	`^([01][0-9]|2[0-3]):[0-5][0-9]$`:                "08:30",
	`^[0-9]{16,19}$`:                                 "6222021234567890123",
	`^[0-9]{4}-[0-9]{6}-[0-9]{2}-[0-9]{2}-[0-9]{6}$`: "2024-140105-44-01-000001",
	`^[A-Z][0-9]{9}$`:                                "A123456789",
}

func sample(fd form.Field) string {
	// Fields bound to the applicant carry 张三's (and his firm's) verified identity.
	switch fd.Prefill {
	case form.SourceApplicantName:
		return "张三"
	case form.SourceEntityName:
		return "山西晋味餐饮有限公司"
	}
	switch fd.Type {
	case form.Number, form.Money:
		if fd.Min != nil {
			return strconv.FormatFloat(*fd.Min, 'f', -1, 64)
		}
		if fd.Max != nil && *fd.Max < 1 {
			return strconv.FormatFloat(*fd.Max, 'f', -1, 64)
		}
		return "1"
	case form.Date:
		return "2025-06-01"
	case form.Select, form.Radio:
		return fd.Options[0].Value
	case form.Checkbox:
		return "true"
	case form.IDNumber:
		return zhangID
	case form.CreditCode:
		return firmCC
	case form.Phone:
		return "13800000001"
	case form.Email:
		return "zhang@example.com"
	case form.Division:
		return "140105"
	}
	if s, ok := patternSamples[fd.Pattern]; ok {
		return s
	}
	s := "测试内容"
	if fd.MaxLength > 0 && fd.MaxLength < 4 {
		s = s[:3*fd.MaxLength]
	}
	return s
}

// Minimal files of the accepted types.
var (
	pdfFile = []byte("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	pngFile = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'}
)

func upload(key, name string, content []byte) govservice.MaterialInput {
	return govservice.MaterialInput{Key: key, Source: govservice.SourceUpload, FileName: name, Content: bytes.NewReader(content)}
}

// submitGeti submits 个体工商户设立登记 for ap in 小店区 with an uploaded ID scan.
func (f *applyFixture) submitGeti(ap govservice.Applicant) govservice.Application {
	f.t.Helper()
	d := f.draft(ap, itemGeti)
	app, err := f.apps.Submit(f.ctx, ap, govservice.SubmitInput{ItemCode: itemGeti, Division: "140105",
		Values: values(d.Form, d.Values), Materials: []govservice.MaterialInput{upload("operator_id", "身份证.pdf", pdfFile)}})
	if err != nil {
		f.t.Fatalf("submit: %v", err)
	}
	return app
}

// approveAll takes the case through every remaining step as officer.
func (f *applyFixture) approveAll(officer authz.Subject, caseID string) workflow.Case {
	f.t.Helper()
	for range 10 {
		c, err := f.cases.Claim(f.ctx, officer, caseID)
		if err != nil {
			f.t.Fatalf("claim %s: %v", caseID, err)
		}
		if c, err = f.cases.Decide(f.ctx, officer, caseID, workflow.Decision{Outcome: workflow.Approve, Comment: "符合条件"}); err != nil {
			f.t.Fatalf("decide %s: %v", caseID, err)
		}
		if c.State == workflow.StateClosed {
			return c
		}
	}
	f.t.Fatal("case did not close")
	return workflow.Case{}
}

func wantCode(t testing.TB, err error, target *i18n.Error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %s", err, target.Code)
	}
}

func parseForm(raw []byte) (*form.Form, error) { return form.Parse(raw) }

package demo

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// cheap Argon2 parameters keep the 65 accounts quick; production uses org.DefaultArgon.
var cheap = org.ArgonParams{Memory: 64, Time: 1, Threads: 1}

var t0 = time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

var sources = []db.Source{crypto.Migrations, org.Migrations, baselib.Migrations}

// small is the size the tests load: enough for every city, quick on both databases.
var small = Options{Seed: 42, Residents: 300, Enterprises: 60}

func newDeps(t testing.TB, d *db.DB) Deps {
	t.Helper()
	k, err := crypto.Open(context.Background(), d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), clock)
	if err != nil {
		t.Fatal(err)
	}
	return Deps{DB: d, Now: clock,
		Org:  org.New(d, authz.NewPolicy(divisions.Contains), org.Options{Argon: cheap, Now: clock, Fields: k.FieldCipher()}),
		Base: baselib.New(d, k.FieldCipher(), baselib.Options{Now: clock})}
}

// Expected sizes of the organisation: 10 standard departments at the province and in each of
// 11 cities, 3 in each of 太原's 10 districts and counties; 70 accounts besides admin.
const (
	wantDepartments = 10*12 + 3*10
	wantStaff       = 1 + 4 + 11*4 + 3 + 10 + 3 + 6
)

func TestLoad(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		deps := newDeps(t, d)
		progress := map[string][2]int{}
		opts := small
		opts.Progress = func(done, total int, what string) {
			if last := progress[what]; done <= last[0] || (last[1] != 0 && total != last[1]) {
				t.Errorf("%s: progress %d/%d after %d/%d", what, done, total, last[0], last[1])
			}
			progress[what] = [2]int{done, total}
		}
		sum, err := Load(ctx, deps, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := Summary{Divisions: len(divisions.Shanxi()), Departments: wantDepartments, Staff: wantStaff,
			Residents: 300, Enterprises: 60, AdminUser: "admin"}
		if sum != want {
			t.Errorf("summary:\n got %+v\nwant %+v", sum, want)
		}
		for what, n := range map[string]int{"departments": wantDepartments, "staff": wantStaff - 1, "residents": 300, "enterprises": 60} {
			if p := progress[what]; p != [2]int{n, n} {
				t.Errorf("progress of %s ended at %v, want %d/%d", what, p, n, n)
			}
		}

		// The administrator logs in with the documented password and sees the whole province.
		admin, err := deps.Org.Authenticate(ctx, "admin", DemoPassword, t0)
		if err != nil || !admin.Has(authz.RoleSysAdmin) || admin.Division != "140000" || admin.Name != "系统管理员" {
			t.Fatalf("admin login: %+v %v", admin, err)
		}
		staff, err := deps.Org.ListStaff(ctx, admin, org.StaffFilter{Limit: 1000})
		if err != nil || len(staff) != wantStaff {
			t.Errorf("staff: %d %v", len(staff), err)
		}
		depts, err := deps.Org.ListDepartments(ctx, admin, org.DepartmentFilter{Limit: 1000})
		if err != nil || len(depts) != wantDepartments {
			t.Errorf("departments: %d %v", len(depts), err)
		}
		byName := map[string]org.Department{}
		for _, dp := range depts {
			byName[dp.Name] = dp
		}
		for _, name := range []string{"山西省政务服务管理局", "山西省公安厅", "太原市市场监督管理局", "吕梁市行政审批服务管理局",
			"小店区政务服务管理局", "小店区市场监督管理局", "太原市公安局小店分局", "清徐县公安局"} {
			if _, ok := byName[name]; !ok {
				t.Errorf("no department %s", name)
			}
		}
		if b, c := byName["太原市公安局小店分局"], byName["太原市公安局"]; b.ParentID == "" || b.ParentID != c.ID || b.DivisionCode != "140105" {
			t.Errorf("district police branch: %+v (city bureau %s)", b, c.ID)
		}

		// City administrators are scoped to their city.
		for _, c := range []struct{ user, division string }{{"ty-admin", "140100"}, {"dt-admin", "140200"}, {"ll-admin", "141100"}, {"xd-admin", "140105"}} {
			s, err := deps.Org.Authenticate(ctx, c.user, DemoPassword, t0)
			if err != nil || s.Division != c.division || !s.Has(authz.RoleOrgAdmin) || s.Has(authz.RoleSysAdmin) {
				t.Fatalf("%s: %+v %v", c.user, s, err)
			}
			seen, err := deps.Org.ListStaff(ctx, s, org.StaffFilter{Limit: 1000})
			if err != nil || len(seen) == 0 || len(seen) >= wantStaff {
				t.Errorf("%s sees %d accounts (%v)", c.user, len(seen), err)
			}
			for _, st := range seen {
				if !divisions.Contains(c.division, st.DivisionCode) {
					t.Errorf("%s sees %s of %s", c.user, st.Username, st.DivisionCode)
				}
			}
			ds, err := deps.Org.ListDepartments(ctx, s, org.DepartmentFilter{Limit: 1000})
			if err != nil || len(ds) == 0 {
				t.Errorf("%s sees %d departments (%v)", c.user, len(ds), err)
			}
			for _, dp := range ds {
				if !divisions.Contains(c.division, dp.DivisionCode) {
					t.Errorf("%s sees %s", c.user, dp.Name)
				}
			}
			_, err = deps.Org.CreateDepartment(ctx, s, org.DepartmentInput{DivisionCode: "140300", Code: "test", Name: "阳泉市测试局"})
			if !errors.Is(err, i18n.ErrForbidden) {
				t.Errorf("%s creates a department in 阳泉: %v", c.user, err)
			}
		}
		dt, _ := deps.Org.Authenticate(ctx, "dt-admin", DemoPassword, t0)
		if seen, _ := deps.Org.ListStaff(ctx, dt, org.StaffFilter{Limit: 1000}); len(seen) != 4 { // dt-admin and 3 officers
			t.Errorf("dt-admin sees %d accounts, want 4", len(seen))
		}
		if _, err := deps.Org.ListStaff(ctx, dt, org.StaffFilter{Division: "140100"}); !errors.Is(err, i18n.ErrForbidden) {
			t.Errorf("dt-admin lists 太原's staff: %v", err)
		}
		if a, err := deps.Org.Authenticate(ctx, "auditor", DemoPassword, t0); err != nil || !a.Has(authz.RoleAuditor) {
			t.Errorf("auditor: %+v %v", a, err)
		}

		// The libraries hold exactly the generated people and entities.
		checkLibraries(t, deps, small)

		// A second load changes nothing and says so.
		again, err := Load(ctx, deps, opts)
		want.AlreadyLoaded = true
		if err != nil || again != want {
			t.Errorf("second load:\n got %+v %v\nwant %+v", again, err, want)
		}
		if n, _ := deps.Base.CountPersons(ctx, baselib.PersonFilter{}); n != 300 {
			t.Errorf("%d persons after the second load", n)
		}
		if staff, _ := deps.Org.ListStaff(ctx, admin, org.StaffFilter{Limit: 1000}); len(staff) != wantStaff {
			t.Errorf("%d accounts after the second load", len(staff))
		}
	}, sources...)
}

// stored is a person as read back, without what differs between loads (id, timestamps).
func stored(p baselib.Person) baselib.Person {
	p.ID, p.CreatedAt, p.UpdatedAt = "", time.Time{}, time.Time{}
	return p
}

func storedEntity(e baselib.Entity) baselib.Entity {
	e.ID, e.CreatedAt, e.UpdatedAt = "", time.Time{}, time.Time{}
	return e
}

// checkLibraries reads back every generated resident and enterprise and checks the counts,
// so the libraries hold exactly the generated set.
func checkLibraries(t *testing.T, deps Deps, o Options) {
	t.Helper()
	ctx := context.Background()
	g := newGeography()
	residents := generateResidents(o.Seed, o.Residents, g)
	enterprises, err := generateEnterprises(o.Seed, o.Enterprises, residents, g)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := deps.Base.CountPersons(ctx, baselib.PersonFilter{}); err != nil || n != len(residents) {
		t.Fatalf("persons: %d %v", n, err)
	}
	if n, err := deps.Base.CountEntities(ctx, baselib.EntityFilter{}); err != nil || n != len(enterprises) {
		t.Fatalf("entities: %d %v", n, err)
	}
	for _, in := range residents {
		p, err := deps.Base.FindPersonByIDNumber(ctx, in.IDNumber)
		if err != nil {
			t.Fatalf("find %s: %v", in.IDNumber, err)
		}
		r, err := ids.ValidateResidentAt(p.IDNumber, t0)
		if err != nil || p.Name != in.Name || p.DivisionCode != in.DivisionCode || p.Address != in.Address ||
			p.Mobile != in.Mobile || p.Sex != r.Sex || p.BirthDate != r.Birth.Format(time.DateOnly) {
			t.Fatalf("stored %+v from %+v (%v)", p, in, err)
		}
	}
	for _, in := range enterprises {
		e, err := deps.Base.FindEntityByCreditCode(ctx, in.CreditCode)
		if err != nil {
			t.Fatalf("find %s: %v", in.CreditCode, err)
		}
		if _, err := ids.ValidateCreditCode(e.CreditCode); err != nil || e.Name != in.Name || e.LegalRepID != in.LegalRepID {
			t.Fatalf("stored %+v from %+v (%v)", e, in, err)
		}
		rep, err := deps.Base.FindPersonByIDNumber(ctx, e.LegalRepID)
		if err != nil || rep.Name != e.LegalRepName {
			t.Fatalf("legal representative of %s: %+v %v", e.Name, rep, err)
		}
	}
}

// TestSameSeedSameData loads two databases — this one and a fresh SQLite — with the same
// seed and compares what they hold, field by field.
func TestSameSeedSameData(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		a, b := newDeps(t, d), newDeps(t, dbtest.SQLite(t, sources...))
		for _, deps := range []Deps{a, b} {
			if _, err := Load(ctx, deps, small); err != nil {
				t.Fatal(err)
			}
		}
		g := newGeography()
		residents := generateResidents(small.Seed, small.Residents, g)
		enterprises, err := generateEnterprises(small.Seed, small.Enterprises, residents, g)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range residents {
			pa, err1 := a.Base.FindPersonByIDNumber(ctx, in.IDNumber)
			pb, err2 := b.Base.FindPersonByIDNumber(ctx, in.IDNumber)
			if err1 != nil || err2 != nil || stored(pa) != stored(pb) {
				t.Fatalf("person %s differs:\n%+v %v\n%+v %v", in.IDNumber, pa, err1, pb, err2)
			}
		}
		for _, in := range enterprises {
			ea, err1 := a.Base.FindEntityByCreditCode(ctx, in.CreditCode)
			eb, err2 := b.Base.FindEntityByCreditCode(ctx, in.CreditCode)
			if err1 != nil || err2 != nil || storedEntity(ea) != storedEntity(eb) {
				t.Fatalf("entity %s differs:\n%+v %v\n%+v %v", in.CreditCode, ea, err1, eb, err2)
			}
		}
		for _, deps := range []Deps{a, b} {
			np, _ := deps.Base.CountPersons(ctx, baselib.PersonFilter{})
			ne, _ := deps.Base.CountEntities(ctx, baselib.EntityFilter{})
			if np != len(residents) || ne != len(enterprises) {
				t.Errorf("counts %d %d", np, ne)
			}
		}
	}, sources...)
}

// TestNotDemoDatabase: a node with its own administrator is left alone.
func TestNotDemoDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		deps := newDeps(t, d)
		if _, err := deps.Org.BootstrapAdmin(ctx, "root", "管理员", "Fenhe2River7"); err != nil {
			t.Fatal(err)
		}
		_, err := Load(ctx, deps, small)
		if !errors.Is(err, ErrNotDemoDatabase) {
			t.Fatalf("load into a real node: %v", err)
		}
		if n, _ := deps.Base.CountPersons(ctx, baselib.PersonFilter{}); n != 0 {
			t.Errorf("%d persons loaded into a real node", n)
		}
	}, sources...)
}

// TestGenerate checks the generator without a database, at the default size: deterministic,
// every identifier valid and unique, the data consistent.
func TestGenerate(t *testing.T) {
	g := newGeography()
	residents := generateResidents(DefaultSeed, DefaultResidents, g)
	enterprises, err := generateEnterprises(DefaultSeed, DefaultEnterprises, residents, g)
	if err != nil {
		t.Fatal(err)
	}
	r2 := generateResidents(DefaultSeed, DefaultResidents, newGeography())
	e2, _ := generateEnterprises(DefaultSeed, DefaultEnterprises, r2, newGeography())
	if !reflect.DeepEqual(residents, r2) || !reflect.DeepEqual(enterprises, e2) {
		t.Fatal("same seed, different data")
	}
	if other := generateResidents(DefaultSeed+1, 10, g); reflect.DeepEqual(other, residents[:10]) {
		t.Error("another seed gives the same residents")
	}
	// A prefix of a bigger load is the smaller load: the count does not reshuffle.
	if small := generateResidents(DefaultSeed, 100, g); !reflect.DeepEqual(small, residents[:100]) {
		t.Error("100 residents are not the first 100 of 10,000")
	}
	if a, b := staffPlan(DefaultSeed), staffPlan(DefaultSeed); !reflect.DeepEqual(a, b) || len(a) != wantStaff-1 {
		t.Errorf("staff plan: %d accounts, deterministic %v", len(a), reflect.DeepEqual(a, b))
	}

	seen := map[string]bool{}
	byCity := map[string]int{}
	males := 0
	for i, p := range residents {
		r, err := ids.ValidateResidentAt(p.IDNumber, t0)
		if err != nil || seen[r.Number] {
			t.Fatalf("resident %d: %s: %v (duplicate %v)", i, p.IDNumber, err, seen[r.Number])
		}
		seen[r.Number] = true
		if r.Birth.Before(birthFirst) || r.Birth.After(birthLast) {
			t.Errorf("resident %d born %s", i, r.Birth.Format(time.DateOnly))
		}
		if d, ok := divisions.Lookup(p.DivisionCode); !ok || d.Level != divisions.County || !strings.HasPrefix(p.Address, "山西省") {
			t.Errorf("resident %d: division %s, address %s", i, p.DivisionCode, p.Address)
		}
		if p.Mobile != "" {
			if _, err := ids.ValidateMobile(p.Mobile); err != nil {
				t.Errorf("resident %d: mobile %s: %v", i, p.Mobile, err)
			}
		} else if r.Birth.Year() < 2012 {
			t.Errorf("resident %d, born %d, has no mobile", i, r.Birth.Year())
		}
		if n := len([]rune(p.Name)); n < 2 || n > 4 {
			t.Errorf("resident %d: name %q", i, p.Name)
		}
		if r.Sex == ids.Male {
			males++
		}
		byCity[p.DivisionCode[:4]]++
	}
	if males < 4500 || males > 5500 || len(byCity) != 11 || byCity["1401"] < byCity["1403"] {
		t.Errorf("%d men; by city %v", males, byCity)
	}

	codes, names := map[string]bool{}, map[string]bool{}
	kinds := map[string]int{}
	for i, e := range enterprises {
		c, err := ids.ValidateCreditCode(e.CreditCode)
		if err != nil || codes[c.Code] || names[e.Name] {
			t.Fatalf("enterprise %d: %s %s: %v (duplicate %v %v)", i, e.CreditCode, e.Name, err, codes[c.Code], names[e.Name])
		}
		codes[c.Code], names[e.Name] = true, true
		kinds[e.EntityType]++
		est, err := time.Parse(time.DateOnly, e.Established)
		if err != nil || est.After(establishedLast) || !adultOn(e.LegalRepID, est) || e.RegisteredCapitalFen <= 0 ||
			e.RegisteredCapitalFen%1_000_000 != 0 || e.BusinessScope == "" {
			t.Errorf("enterprise %d: %+v", i, e)
		}
		wantType := byte('1')
		switch e.EntityType {
		case baselib.TypeIndividual:
			wantType = '2'
		case baselib.TypeCooperative:
			wantType = '3'
		}
		if c.Authority != '9' || c.Type != wantType {
			t.Errorf("enterprise %d: type %s with code %s", i, e.EntityType, e.CreditCode)
		}
		if !seen[e.LegalRepID] {
			t.Errorf("enterprise %d: legal representative %s is not a resident", i, e.LegalRepID)
		}
	}
	if len(kinds) != 6 || kinds[baselib.TypeLLC] < kinds[baselib.TypeIndividual] {
		t.Errorf("entity types: %v", kinds)
	}
	t.Logf("e.g. %s %s %s %s; %s %s %s", residents[0].Name, ids.MaskResident(residents[0].IDNumber), residents[0].Address,
		ids.MaskMobile(residents[0].Mobile), enterprises[0].CreditCode, enterprises[0].Name, enterprises[0].EntityType)
}

// BenchmarkLoad measures loading 10,000 residents: the whole Load (divisions, admin, 138
// departments, 64 accounts with cheap Argon2, residents; no enterprises) and the residents
// alone (ten AddPersons batches of 1,000: validation, SM4 sealing, blind indexes, inserts).
func BenchmarkLoad(b *testing.B) {
	const n = 10000
	residents := generateResidents(DefaultSeed, n, newGeography())
	for _, dbName := range []string{"sqlite", "postgres"} {
		open := func(b *testing.B) *db.DB {
			if dbName == "sqlite" {
				return dbtest.SQLite(b, sources...)
			}
			return dbtest.Postgres(b, sources...)
		}
		b.Run(dbName+"/load", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				deps := newDeps(b, open(b))
				b.StartTimer()
				if _, err := Load(context.Background(), deps, Options{Residents: n, Enterprises: -1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "residents/s")
		})
		b.Run(dbName+"/residents", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				deps := newDeps(b, open(b))
				b.StartTimer()
				for start := 0; start < n; start += BatchSize {
					if _, err := deps.Base.AddPersons(context.Background(), residents[start:start+BatchSize]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "residents/s")
		})
	}
}

// Package demo loads the data of `dgov demo`: Shanxi's divisions, the first system
// administrator, departments and staff of the province, its 11 cities and 太原's districts,
// and synthetic population and legal-entity libraries (10,000 residents and 2,000
// enterprises by default), so that a new node has something to show; LoadBaseLibraries then
// publishes the six base libraries as catalogue resources with datasets, and a department's
// roll with deliberately bad rows for the data-quality report (quality.go).
//
// The data are a pure function of the seed — the same seed gives the same names, ID
// numbers, credit codes, addresses and amounts, byte for byte, on SQLite and PostgreSQL and
// on every machine; only the generated row ids and timestamps differ. Every ID number and
// credit code is valid (GB 11643, GB 32100) and none belongs to a real person or entity
// except by coincidence — but for the quality demo's seeded faults, which are invalid on
// purpose.
//
// Loading is idempotent: the account "admin" marks a loaded database, and Load does
// nothing when it exists. Loading writes only through the services (org, baselib), so the
// rules, audit entries and encryption are the real ones.
package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// DemoPassword is the password of every demo account, documented so that anyone trying the
// demo can log in. The demo is for evaluation: never load it into a production database.
const DemoPassword = "Dgov@Shanxi2026"

// Defaults of Options.
const (
	DefaultSeed        int64 = 20200101
	DefaultResidents         = 10000
	DefaultEnterprises       = 2000
)

// The demo's first system administrator, whose existence marks a loaded database.
const (
	AdminUsername = "admin"
	AdminName     = "系统管理员"
)

// BatchSize is how many residents or enterprises go into one transaction.
const BatchSize = 1000

// Deps are the services Load writes through.
type Deps struct {
	DB   *db.DB // the node's database (Load itself writes only through Org and Base)
	Org  *org.Service
	Base *baselib.Service
	Now  func() time.Time // default time.Now; measures Summary.Duration
}

// Options choose what Load creates.
type Options struct {
	Seed        int64 // 0 means DefaultSeed
	Residents   int   // 0 means DefaultResidents; negative means none
	Enterprises int   // 0 means DefaultEnterprises; negative means none
	// AdminPassword is the password of "admin"; "" means DemoPassword. Every other demo
	// account gets DemoPassword.
	AdminPassword string
	// Progress, when set, is called as each step advances: what is "departments", "staff",
	// "residents" or "enterprises"; done counts up to total.
	Progress func(done, total int, what string)
}

func (o Options) withDefaults() Options {
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	switch {
	case o.Residents == 0:
		o.Residents = DefaultResidents
	case o.Residents < 0:
		o.Residents = 0
	}
	switch {
	case o.Enterprises == 0:
		o.Enterprises = DefaultEnterprises
	case o.Enterprises < 0:
		o.Enterprises = 0
	}
	if o.AdminPassword == "" {
		o.AdminPassword = DemoPassword
	}
	if o.Progress == nil {
		o.Progress = func(int, int, string) {}
	}
	return o
}

// Summary reports what Load created, or — with AlreadyLoaded — what an earlier load left.
type Summary struct {
	Divisions     int
	Departments   int
	Staff         int // accounts, the administrator included
	Residents     int
	Enterprises   int
	AdminUser     string
	AlreadyLoaded bool
	Duration      time.Duration
}

// ErrNotDemoDatabase: the database has a system administrator that is not the demo's, so it
// is someone's real node; the demo refuses to mix its accounts and people into it.
var ErrNotDemoDatabase = &i18n.Error{Code: "demo.not_demo_database", Status: http.StatusConflict,
	Msg: i18n.T("数据库中已有系统管理员，不是演示数据库；演示数据只能装入新的数据库",
		"the database already has a system administrator and is not a demo database; demo data can only be loaded into a new database")}

// reader is the subject of Load's one read of the organisation (does "admin" exist?): a
// system client that may read the organisation of the province and nothing else.
var reader = authz.Subject{Kind: authz.System, ID: "demo", Name: "dgov demo", Division: "140000",
	Roles: []authz.Role{authz.RoleOfficer}}

// Load loads the demo data unless "admin" exists, in which case it changes nothing and
// returns AlreadyLoaded with the counts found. Should a load fail half-way (the services
// commit step by step), the database holds a partial demo that the next Load reports as
// loaded: start again from an empty database.
func Load(ctx context.Context, deps Deps, opts Options) (Summary, error) {
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	o := opts.withDefaults()
	sum := Summary{AdminUser: AdminUsername}
	done := func() (Summary, error) { sum.Duration = now().Sub(start); return sum, nil }

	loaded, err := adminExists(ctx, deps.Org)
	if err != nil {
		return sum, err
	}
	if loaded {
		sum.AlreadyLoaded = true
		if err := count(ctx, deps, &sum); err != nil {
			return sum, err
		}
		return done()
	}

	// Generate first: a bad option fails before anything is written.
	g := newGeography()
	residents := generateResidents(o.Seed, o.Residents, g)
	var enterprises []baselib.EntityInput
	if o.Enterprises > 0 {
		if enterprises, err = generateEnterprises(o.Seed, o.Enterprises, residents, g); err != nil {
			return sum, err
		}
	}

	if _, err := deps.Org.SyncDivisions(ctx); err != nil {
		return sum, fmt.Errorf("demo: %w", err)
	}
	sum.Divisions = len(divisions.Shanxi())
	admin, err := deps.Org.BootstrapAdmin(ctx, AdminUsername, AdminName, o.AdminPassword)
	if errors.Is(err, org.ErrAdminExists) {
		return sum, ErrNotDemoDatabase.Wrap(err)
	}
	if err != nil {
		return sum, fmt.Errorf("demo: create %s: %w", AdminUsername, err)
	}
	sum.Staff = 1
	actor, err := deps.Org.Subject(ctx, admin.ID)
	if err != nil {
		return sum, fmt.Errorf("demo: subject of %s: %w", AdminUsername, err)
	}

	depts := map[string]string{org.BootstrapDepartment.DivisionCode + "/" + org.BootstrapDepartment.Code: admin.DepartmentID}
	plan := departmentPlan(g)
	for i, p := range plan {
		if _, ok := depts[p.key]; !ok {
			in := p.in
			if p.parent != "" {
				in.ParentID = depts[p.parent]
			}
			d, err := deps.Org.CreateDepartment(ctx, actor, in)
			if err != nil {
				return sum, fmt.Errorf("demo: department %s (%s): %w", p.key, in.Name, err)
			}
			depts[p.key] = d.ID
		}
		o.Progress(i+1, len(plan), "departments")
	}
	sum.Departments = len(plan)

	n, err := createStaff(ctx, deps.Org, actor, staffPlan(o.Seed), depts, o.Progress)
	sum.Staff += n
	if err != nil {
		return sum, err
	}

	for start := 0; start < len(residents); start += BatchSize {
		batch := residents[start:min(start+BatchSize, len(residents))]
		if _, err := deps.Base.AddPersons(ctx, batch); err != nil {
			return sum, fmt.Errorf("demo: residents %d–%d: %w", start+1, start+len(batch), err)
		}
		sum.Residents += len(batch)
		o.Progress(sum.Residents, len(residents), "residents")
	}
	for start := 0; start < len(enterprises); start += BatchSize {
		batch := enterprises[start:min(start+BatchSize, len(enterprises))]
		if _, err := deps.Base.AddEntities(ctx, batch); err != nil {
			return sum, fmt.Errorf("demo: enterprises %d–%d: %w", start+1, start+len(batch), err)
		}
		sum.Enterprises += len(batch)
		o.Progress(sum.Enterprises, len(enterprises), "enterprises")
	}
	return done()
}

// adminExists reports whether the account "admin" exists (active or not).
func adminExists(ctx context.Context, o *org.Service) (bool, error) {
	list, err := o.ListStaff(ctx, reader, org.StaffFilter{Query: AdminUsername, Limit: 1000})
	if err != nil {
		return false, fmt.Errorf("demo: look for %s: %w", AdminUsername, err)
	}
	for _, s := range list {
		if s.Username == AdminUsername {
			return true, nil
		}
	}
	return false, nil
}

// count fills sum with what the database holds.
func count(ctx context.Context, deps Deps, sum *Summary) error {
	divs, err := deps.Org.ListDivisions(ctx, "")
	if err != nil {
		return fmt.Errorf("demo: count divisions: %w", err)
	}
	if len(divs) > 0 {
		sum.Divisions = len(divisions.Shanxi())
	}
	deptList, err := deps.Org.ListDepartments(ctx, reader, org.DepartmentFilter{Limit: 1000})
	if err != nil {
		return fmt.Errorf("demo: count departments: %w", err)
	}
	staffList, err := deps.Org.ListStaff(ctx, reader, org.StaffFilter{Limit: 1000})
	if err != nil {
		return fmt.Errorf("demo: count staff: %w", err)
	}
	sum.Departments, sum.Staff = len(deptList), len(staffList)
	if sum.Residents, err = deps.Base.CountPersons(ctx, baselib.PersonFilter{}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if sum.Enterprises, err = deps.Base.CountEntities(ctx, baselib.EntityFilter{}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// ---- organisation ----

type deptPlanEntry struct {
	key    string // division/code
	in     org.DepartmentInput
	parent string // key of the parent department, or ""
}

// departmentPlan: every standard department (org.DepartmentKinds) at the province and in
// each city; in 太原's districts and counties also the government-services and market-
// regulation bureaus and the police — a district's is a branch (分局) of the city bureau.
func departmentPlan(g *geography) []deptPlanEntry {
	var out []deptPlanEntry
	add := func(d divisions.Division, k org.DepartmentKind, name, short, parent string) {
		out = append(out, deptPlanEntry{key: d.Code + "/" + k.Code, parent: parent, in: org.DepartmentInput{
			DivisionCode: d.Code, Code: k.Code, Name: name, ShortName: short, Kind: k.Kind}})
	}
	prov := g.byCode["140000"]
	for _, k := range org.DepartmentKinds {
		add(prov, k, k.NameIn(prov), "省"+k.Province, "")
	}
	for _, c := range cities {
		city := g.byCode[c.code]
		for _, k := range org.DepartmentKinds {
			add(city, k, k.NameIn(city), "市"+k.City, "")
		}
	}
	taiyuan := g.byCode["140100"]
	for _, tc := range taiyuanCounties {
		county := g.byCode[tc.code]
		tier := string([]rune(county.Name)[len([]rune(county.Name))-1:]) // 区, 县 or 市
		for _, k := range org.DepartmentKinds {
			switch k.Code {
			case "zwfw", "scjg":
				add(county, k, k.NameIn(county), tier+k.City, "")
			case "ga":
				if tier == "区" {
					branch := strings.TrimSuffix(county.Name, "区") + "分局"
					add(county, k, taiyuan.Name+k.City+branch, branch, taiyuan.Code+"/ga")
				} else {
					add(county, k, k.NameIn(county), tier+k.City, "")
				}
			}
		}
	}
	return out
}

type staffPlanEntry struct {
	in   org.StaffInput
	dept string // key of the department
}

// staffPlan lists the demo's accounts besides admin: a provincial organisation admin,
// auditor and officers; in every city an organisation admin ("ty-admin" …) and officers of
// the government-services, approval and market-regulation bureaus; in 太原 a few more
// officers (one in every bureau that handles the Shanxi pack's items applied for in 小店区),
// and in each of its districts and counties a government-services officer, with an
// organisation admin and more officers in 小店区.
func staffPlan(seed int64) []staffPlanEntry {
	r := newRand(seed, streamStaff)
	var out []staffPlanEntry
	add := func(username, dept string, roles ...authz.Role) {
		male := r.IntN(2) == 0
		out = append(out, staffPlanEntry{dept: dept, in: org.StaffInput{Username: username, Name: fullName(r, male),
			Phone: mobile(r), Roles: roles, Password: DemoPassword}})
	}
	officer, orgAdmin := authz.RoleOfficer, authz.RoleOrgAdmin
	add("sx-admin", "140000/zwfw", orgAdmin)
	add("auditor", "140000/zwfw", authz.RoleAuditor)
	add("sx-zwfw-01", "140000/zwfw", officer)
	add("sx-scjg-01", "140000/scjg", officer)
	for _, c := range cities {
		add(c.initials+"-admin", c.code+"/zwfw", orgAdmin)
		for _, code := range []string{"zwfw", "xzsp", "scjg"} {
			add(c.initials+"-"+code+"-01", c.code+"/"+code, officer)
		}
	}
	add("ty-scjg-02", "140100/scjg", officer)
	add("ty-ga-01", "140100/ga", officer)
	add("ty-rs-01", "140100/rs", officer)
	// Online services: 太原's bureaus that take 小店区's applications where the district has no
	// bureau of that kind (county items walk up to the city), and the province's for its items.
	for _, code := range []string{"zr", "wj", "mz", "jy", "yb"} {
		add("ty-"+code+"-01", "140100/"+code, officer)
	}
	add("sx-rs-01", "140000/rs", officer)
	for _, tc := range taiyuanCounties {
		add(tc.initials+"-zwfw-01", tc.code+"/zwfw", officer)
	}
	add("xd-admin", "140105/zwfw", orgAdmin)
	add("xd-scjg-01", "140105/scjg", officer)
	add("xd-ga-01", "140105/ga", officer)
	return out
}

// createStaff creates the accounts, a few at a time: each costs an Argon2 hash, which runs
// outside the database transaction, so hashing in parallel shortens the load.
func createStaff(ctx context.Context, o *org.Service, actor authz.Subject, plan []staffPlanEntry, depts map[string]string,
	progress func(done, total int, what string)) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		created  int
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan staffPlanEntry)
	for range min(runtime.GOMAXPROCS(0), 8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				in := p.in
				in.DepartmentID = depts[p.dept]
				_, err := o.CreateStaff(ctx, actor, in)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("demo: staff %s: %w", in.Username, err)
					cancel()
				}
				if err == nil {
					created++
					progress(created, len(plan), "staff")
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range plan {
		select {
		case work <- p:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return created, firstErr
}

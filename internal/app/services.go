package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/notify"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/platform/search"
	"github.com/dgov/dgov/internal/workflow"
	"github.com/dgov/dgov/packs"
)

// openServices builds online government services (P5): the case engine, the form versions,
// the service catalogue with its applications, and the notifications. A database that has
// never loaded a pack gets the embedded Shanxi pack, with a case definition per item, so a
// new node has services to offer; later packs come with `dgov pack load`.
//
// The working-day calendar is the embedded one (the State Council's holiday notices); there
// is no configuration key yet for an operator's file of later years (calendar.LoadFile).
func (a *App) openServices(ctx context.Context) error {
	workflow.RegisterPermissions(a.Policy)
	depts := serviceDepartments{org: a.Org, node: a.Cfg.NodeDivision}
	cal := calendar.Default()
	a.Workflow = workflow.New(a.DB, a.Policy, workflow.Options{Now: a.Now, Calendar: cal, Audit: a.auditOrg, Departments: depts})
	a.Forms = form.NewVersions(a.DB, a.Now)
	a.Services = govservice.New(a.DB, govservice.Options{Now: a.Now, Audit: a.auditOrg})
	a.Applications = govservice.NewApplications(a.DB, a.Services, a.Forms, a.Workflow, depts, a.Base, a.Blobs, a.Keys.FieldCipher(),
		govservice.ApplicationOptions{Now: a.Now, Audit: a.auditOrg, Calendar: cal, Trust: serviceTrust{a}})
	a.Notify = notify.New(a.DB, a.SMS, notify.Options{Now: a.Now, Fields: a.Keys.FieldCipher(), Application: a.applicationNotice,
		Definitions: a.Workflow, Log: a.Log})
	hash, _, err := a.Services.LastSync(ctx)
	if err != nil {
		return err
	}
	if hash != "" {
		return nil
	}
	res, defined, err := a.loadPack(ctx, packs.Shanxi())
	if err != nil {
		return fmt.Errorf("load the embedded Shanxi pack: %w", err)
	}
	a.Log.Info("service pack loaded", "pack", "shanxi (embedded)", "items", res.Items.Added, "bundles", res.Bundles.Added, "case_definitions", defined)
	return nil
}

// servicesSummary says what the node offers online, for `dgov demo` and operators: active
// items and bundles of the pack last loaded, and when it was loaded.
func (a *App) servicesSummary(ctx context.Context) (string, error) {
	_, at, err := a.Services.LastSync(ctx)
	if err != nil {
		return "", err
	}
	if at == nil {
		return "事项包 / service pack: 未载入 / not loaded (dgov pack load)", nil
	}
	items, err := a.Services.List(ctx, govservice.Filter{Limit: 500})
	if err != nil {
		return "", err
	}
	bundles, err := a.Services.Bundles(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("事项包 / service pack: %d 个事项 items, %d 个“一件事” bundles（载入于 / loaded %s）",
		len(items), len(bundles), at.In(calendar.Beijing).Format("2006-01-02 15:04")), nil
}

// loadPack validates and stores a pack and defines its items' cases.
func (a *App) loadPack(ctx context.Context, fsys fs.FS) (govservice.SyncResult, int, error) {
	p, err := govservice.LoadPack(fsys)
	if err != nil {
		return govservice.SyncResult{}, 0, err
	}
	res, err := a.Services.Sync(ctx, p)
	if err != nil {
		return govservice.SyncResult{}, 0, err
	}
	n, err := a.Services.DefineCases(ctx, a.Workflow)
	return res, n, err
}

// applicationNotice tells the notifier about an application (notify.Options.Application).
func (a *App) applicationNotice(ctx context.Context, id string) (notify.Application, error) {
	n, err := a.Applications.Notice(ctx, id)
	if err != nil {
		return notify.Application{}, err
	}
	return notify.Application{ID: n.ApplicationID, Number: n.Number, ItemName: n.ItemName, ItemNameEn: n.ItemNameEn,
		Applicant: n.Applicant, Phone: n.Phone}, nil
}

// serviceDepartments is the organisation as the case engine (transfer targets) and applications
// (routing, department names) need it. Departments are public facts; it reads them as a
// system reader of the division it asks about.
type serviceDepartments struct {
	org  *org.Service
	node string // the node's division: departments by id are read within it
}

func serviceOrgReader(division string) authz.Subject {
	return authz.Subject{Kind: authz.System, ID: "govservice", Name: "online services", Division: division,
		Roles: []authz.Role{authz.RoleOfficer}}
}

// DepartmentIn implements govservice.Departments.
func (o serviceDepartments) DepartmentIn(ctx context.Context, division, code string) (org.Department, error) {
	list, err := o.org.ListDepartments(ctx, serviceOrgReader(division), org.DepartmentFilter{Division: division, Query: code, ActiveOnly: true, Limit: 1000})
	if errors.Is(err, i18n.ErrForbidden) {
		return org.Department{}, i18n.ErrNotFound // not a division the organisation knows
	}
	if err != nil {
		return org.Department{}, err
	}
	for _, d := range list {
		if d.Code == code {
			return d, nil
		}
	}
	return org.Department{}, i18n.ErrNotFound
}

// Department implements govservice.Departments.
func (o serviceDepartments) Department(ctx context.Context, id string) (org.Department, error) {
	d, err := o.org.GetDepartment(ctx, serviceOrgReader(o.node), id)
	if errors.Is(err, i18n.ErrForbidden) {
		return org.Department{}, i18n.ErrNotFound
	}
	return d, err
}

// DepartmentDivision implements workflow.Departments: an active department's division.
func (o serviceDepartments) DepartmentDivision(ctx context.Context, id string) (string, error) {
	d, err := o.Department(ctx, id)
	if err != nil {
		return "", err
	}
	if !d.Active {
		return "", i18n.ErrNotFound
	}
	return d.DivisionCode, nil
}

// serveServices starts what a serving node adds to online services: the guide search index
// (its own Bleve directory, rebuilt at start and kept current by the catalogue's events
// through a durable consumer per node) and the notifications consumer (one durable for the
// cluster: its effect is in the shared database, made once per event by bus.HandleOnce). The
// returned function stops them and closes the index.
func (a *App) serveServices(ctx context.Context) (func(), error) {
	idx, err := search.OpenBleve(filepath.Join(a.Cfg.DataDir, "search", "services"))
	if err != nil {
		return nil, err
	}
	a.ServicesIndex = &govservice.Indexer{Index: idx, Service: a.Services}
	reindexed := make(chan struct{})
	go func() {
		defer close(reindexed)
		if _, err := a.ServicesIndex.Reindex(ctx); err != nil && ctx.Err() == nil {
			a.Log.Error("service guide search reindex", "err", err)
		}
	}()
	var subs []*bus.Subscription
	stop := func() {
		for _, s := range subs {
			s.Stop()
		}
		<-reindexed
		if err := idx.Close(); err != nil {
			a.Log.Warn("close service guide index", "err", err)
		}
	}
	consumers := []struct {
		durable, subjects string
		handler           bus.Handler
	}{
		{govservice.SearchConsumer + "-" + nodeName(), govservice.SearchSubjects, a.ServicesIndex.OnEvent},
		{notify.CaseConsumer, notify.CaseSubjects, a.Notify.OnCaseEvent},
	}
	// Fees, licences on approval (trust_services.go).
	for _, c := range append(consumers, a.trustServiceConsumers()...) {
		sub, err := bus.Subscribe(ctx, a.js, c.durable, c.subjects, c.handler)
		if err != nil {
			stop()
			return nil, err
		}
		subs = append(subs, sub)
	}
	return stop, nil
}

// servicesJobs registers the case engine's sweep (reminders and escalations of step
// deadlines) and the retries of SMS notices, and returns their periodic jobs.
func (a *App) servicesJobs(workers *jobs.Workers) []*jobs.PeriodicJob {
	return append(a.Workflow.Jobs(workers), a.Notify.Jobs(workers)...)
}

// cmdPack: `dgov pack load [--dir DIR]`.
func cmdPack(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "load" {
		return errors.New("usage: dgov pack load [--dir DIR] [flags]")
	}
	var dir string
	cfg, fset, err := load(env, "pack load", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&dir, "dir", "", "pack directory holding services/*.json and bundles/*.json (default: the embedded Shanxi pack)")
	})
	if err != nil {
		return err
	}
	if fset.NArg() != 0 {
		return errors.New("usage: dgov pack load [--dir DIR] [flags]")
	}
	fsys, name := packs.Shanxi(), "shanxi (内置 / embedded)"
	if dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		fsys, name = os.DirFS(dir), dir
	}
	a, err := open(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	res, defined, err := a.loadPack(ctx, fsys)
	if err != nil {
		var ps govservice.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintf(env.stderr, "  ✗ %s\n", p)
			}
			return fmt.Errorf("事项包有 %d 处问题，未做改动 / the pack has %d problems; nothing changed", len(ps), len(ps))
		}
		return err
	}
	line := func(what string, c govservice.SyncCounts) {
		fmt.Fprintf(env.stdout, "  %-8s 新增 added %d, 更新 changed %d, 恢复 reactivated %d, 停用 deactivated %d, 未变 unchanged %d\n",
			what, c.Added, c.Changed, c.Reactivated, c.Deactivated, c.Unchanged)
	}
	fmt.Fprintf(env.stdout, "✓ 事项包已载入 / pack loaded: %s\n", name)
	line("items", res.Items)
	line("bundles", res.Bundles)
	fmt.Fprintf(env.stdout, "  办件流程 / case definitions in force: %d\n", defined)
	return nil
}

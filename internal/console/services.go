package console

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// The service item catalogue (服务事项) as the pack last synced it: each item with its
// version, department, level and time limits. The catalogue is public, so any staff member
// may read it; changing it is loading a pack (dgov pack load), not a page.

var servicesTitle = i18n.T("服务事项", "Service items")

// serviceFilterLimit bounds one page of the list (the Shanxi pack has a few dozen items).
const serviceFilterLimit = 500

type servicesData struct {
	Items           []govservice.Item
	Filter          govservice.Filter
	Departments     []org.DepartmentKind
	Types           []string
	TypeNames       map[string]i18n.Text
	Levels          []string
	LevelNames      map[string]i18n.Text
	DepartmentNames map[string]i18n.Text
	PackHash        string
	SyncedAt        *time.Time
	Inactive        int
}

func (c *Console) servicesPage(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	q := r.URL.Query()
	f := govservice.Filter{Department: q.Get("department"), Type: q.Get("type"), Level: q.Get("level"),
		Keyword: strings.TrimSpace(q.Get("q")), ZeroVisit: q.Get("zero_visit") != "", IncludeInactive: q.Get("inactive") != "",
		Limit: serviceFilterLimit}
	d := &servicesData{Filter: f, Departments: org.DepartmentKinds, TypeNames: govservice.Types, LevelNames: govservice.Levels,
		Levels:          []string{govservice.LevelProvince, govservice.LevelCity, govservice.LevelCounty},
		DepartmentNames: map[string]i18n.Text{}}
	for t := range govservice.Types {
		d.Types = append(d.Types, t)
	}
	slices.Sort(d.Types)
	for _, k := range org.DepartmentKinds {
		d.DepartmentNames[k.Code] = i18n.T(k.Kind, k.EN)
	}
	p := c.page(r, "services", servicesTitle, d)
	items, err := c.Items.List(r.Context(), f)
	if err != nil {
		c.fail(w, r, err, "console/services", p)
		return
	}
	d.Items = items
	for _, it := range items {
		if !it.Active {
			d.Inactive++
		}
	}
	if d.PackHash, d.SyncedAt, err = c.Items.LastSync(r.Context()); err != nil {
		c.fail(w, r, err, "console/services", p)
		return
	}
	c.render(w, r, http.StatusOK, "console/services", p)
}

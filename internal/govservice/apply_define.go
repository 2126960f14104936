package govservice

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/workflow"
)

// CaseDefinition is the workflow definition of an item's cases: the item's steps, with the
// promised limit (承诺时限) as the whole case's limit.
func CaseDefinition(it Item) workflow.Definition {
	def := workflow.Definition{Key: CaseKey(it.Code), Version: 1, Name: it.Name, NameEn: it.NameEn, TotalDays: it.PromisedDays}
	for _, st := range it.Steps {
		def.Steps = append(def.Steps, workflow.Step{Key: st.Key, Name: st.Name, NameEn: st.NameEn, Role: st.Role, Days: st.Days})
	}
	return def
}

// DefineCases defines (or refreshes) the case definition of every active item in wf, as a
// new version of "service:<code>" where the item's steps or limits changed; run it after
// Sync. It returns how many items it went through. Cases already open keep their version.
func (s *Service) DefineCases(ctx context.Context, wf *workflow.Service) (int, error) {
	n := 0
	for f := (Filter{Limit: 500}); ; f.Offset += f.Limit {
		page, err := s.List(ctx, f)
		if err != nil {
			return n, fmt.Errorf("define cases: %w", err)
		}
		for _, it := range page {
			if _, err := wf.DefineLatest(ctx, CaseDefinition(it)); err != nil {
				return n, fmt.Errorf("define cases of item %s: %w", it.Code, err)
			}
			n++
		}
		if len(page) < f.Limit {
			return n, nil
		}
	}
}

func versionKey(code string, version int) string { return code + "@" + strconv.Itoa(version) }

// ensureDefinition makes sure the item version's case definition is in force before a
// submission opens a case (a node may run before anyone called DefineCases for a new pack).
// It runs outside the submission's transaction: on SQLite that transaction holds the only
// writer, which Define would wait for.
func (a *Applications) ensureDefinition(ctx context.Context, it Item) error {
	k := versionKey(it.Code, it.Version)
	if _, ok := a.defined.Load(k); ok {
		return nil
	}
	if _, err := a.cases.DefineLatest(ctx, CaseDefinition(it)); err != nil {
		return fmt.Errorf("case definition of item %s: %w", it.Code, err)
	}
	a.defined.Store(k, struct{}{})
	return nil
}

// parseForm parses a pack form declaration, once per item or bundle version.
func (a *Applications) parseForm(key string, raw []byte) (*form.Form, error) {
	if f, ok := a.parsed.Load(key); ok {
		return f.(*form.Form), nil
	}
	f, err := form.Parse(raw)
	if err != nil {
		// The pack loader checked the declaration; the form engine refusing it is a pack bug.
		return nil, fmt.Errorf("form of %s: %w", key, err)
	}
	a.parsed.Store(key, f)
	return f, nil
}

func (a *Applications) itemForm(it Item) (*form.Form, error) {
	return a.parseForm("item:"+versionKey(it.Code, it.Version), it.Form)
}

func (a *Applications) bundleForm(b Bundle) (*form.Form, error) {
	return a.parseForm("bundle:"+versionKey(b.Code, b.Version), b.Form)
}

// formVersionID returns the id under which f is stored, storing it first if needed.
func (a *Applications) formVersionID(ctx context.Context, f *form.Form) (string, error) {
	if id, ok := a.formIDs.Load(f.Hash()); ok {
		return id.(string), nil
	}
	id, latest, err := a.forms.Latest(ctx, f.Key)
	if err != nil && !errors.Is(err, i18n.ErrNotFound) {
		return "", err
	}
	if err != nil || latest.Hash() != f.Hash() {
		err = a.d.InTx(ctx, func(tx *db.Tx) error {
			var err error
			id, err = a.forms.SaveTx(ctx, tx, f)
			return err
		})
		if err != nil {
			return "", err
		}
	}
	a.formIDs.Store(f.Hash(), id)
	return id, nil
}

// levelOf maps an item's level to the division level its department sits at.
func levelOf(level string) divisions.Level {
	switch level {
	case LevelProvince:
		return divisions.Province
	case LevelCity:
		return divisions.City
	default:
		return divisions.County
	}
}

// route finds the department that handles an item for an application in division: the
// department of the item's kind in the division at the item's level that contains the
// chosen one (the chosen division itself when it is higher), else in the nearest division
// above that has one (县级事项 in a county without that bureau go to the city's).
func (a *Applications) route(ctx context.Context, it Item, division string) (string, deptRef, error) {
	d, ok := divisions.Lookup(division)
	if !ok || (len(division) != 6 && len(division) != 9) {
		return "", deptRef{}, ErrDivision
	}
	chain := append([]string{d.Code}, divisions.Ancestors(d.Code)...)
	want := levelOf(it.Level)
	start := len(chain)
	for i, code := range chain {
		if dv, ok := divisions.Lookup(code); ok && dv.Level <= want {
			start = i
			break
		}
	}
	for _, code := range chain[start:] {
		dep, err := a.org.DepartmentIn(ctx, code, it.Department)
		if errors.Is(err, i18n.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", deptRef{}, fmt.Errorf("route item %s in %s: %w", it.Code, division, err)
		}
		return d.Code, deptRef{id: dep.ID, name: dep.Name}, nil
	}
	return "", deptRef{}, ErrNoDepartment
}

type deptRef struct{ id, name string }

// deptNames resolves department names for views, one lookup per department.
type deptNames struct {
	a     *Applications
	names map[string]string
}

func (n *deptNames) name(ctx context.Context, id string) string {
	if v, ok := n.names[id]; ok {
		return v
	}
	if n.names == nil {
		n.names = map[string]string{}
	}
	dep, err := n.a.org.Department(ctx, id)
	if err != nil {
		n.names[id] = "" // a name is for display; a department gone is shown without one
		return ""
	}
	n.names[id] = dep.Name
	return dep.Name
}

// Routing is where an application for an item would go.
type Routing struct {
	Division string `json:"division"` // the division applied in (the case's)
	DeptID   string `json:"dept_id"`
	DeptName string `json:"dept_name"`
}

// Route says which department would handle an application for the item in the division
// (for a guide page, "受理部门", and to check a node's organisation covers its items).
func (a *Applications) Route(ctx context.Context, itemCode, division string) (Routing, error) {
	it, err := a.items.Get(ctx, itemCode)
	if err != nil {
		return Routing{}, err
	}
	div, dep, err := a.route(ctx, it, division)
	if err != nil {
		return Routing{}, err
	}
	return Routing{Division: div, DeptID: dep.id, DeptName: dep.name}, nil
}

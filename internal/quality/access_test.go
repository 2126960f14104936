package quality_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/quality"
)

// auditLog collects what the service audits.
type auditLog struct {
	mu      sync.Mutex
	entries []string
}

func (l *auditLog) record(_ context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
	if tx == nil {
		return errors.New("audited outside a transaction")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, actor.String()+" "+action+" "+object)
	return nil
}

func (l *auditLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.entries
	l.entries = nil
	return out
}

// SetRules replaces the explicit rules at once, or not at all.
func TestSetRules(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		log := &auditLog{}
		q := quality.New(f.d, f.data, f.base, quality.Options{Now: f.clock.now, Audit: log.record})
		d := seed(t, f)
		f.load(t, "roll", d.csv)
		f.rules(t, []quality.Rule{{DatasetID: "roll", Kind: quality.Completeness, Column: "姓名"}})
		rules := explicit("roll")
		for i := range rules {
			rules[i].DatasetID = "" // taken from the argument
		}
		got, err := q.SetRules(f.ctx, staff, "roll", rules)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
			if !r.Default && (r.DatasetID != "roll" || r.CreatedBy != "staff:staff-1") {
				t.Errorf("rule %+v", r)
			}
		}
		if len(got) != 2+6 || got[0].ID != "default:completeness:区划" || got[2].Column != "身份证号" || got[7].Column != "单位信用代码" {
			t.Fatalf("rules after set: %v", ids)
		}
		if a := log.take(); !reflect.DeepEqual(a, []string{"staff:staff-1 quality.rules.set dataset:roll"}) {
			t.Fatalf("audit %v", a)
		}
		if rep, err := q.Run(f.ctx, "roll"); err != nil || !reflect.DeepEqual(rep.BadRowNumbers(), []int64{4, 8, 12, 18, 21, 26}) {
			t.Fatalf("run: %v %v", rep.BadRowNumbers(), err)
		}
		if a := log.take(); len(a) != 0 {
			t.Fatalf("a system run is audited: %v", a)
		}

		// A bad rule anywhere changes nothing and is named.
		for _, c := range []struct {
			rules []quality.Rule
			field string
		}{
			{[]quality.Rule{{Kind: quality.Completeness, Column: "姓名"}, {Kind: quality.Format, Column: "无此列", Format: quality.FormatDate}}, "rules[1].column"},
			{[]quality.Rule{{Kind: quality.Format, Column: "姓名", Format: quality.FormatRegex, Pattern: strings.Repeat("a", quality.MaxPatternLength+1)}}, "rules[0].pattern"},
			{[]quality.Rule{{Kind: quality.Timeliness, GraceHours: quality.MaxGraceHours + 1}}, "rules[0].grace_hours"},
			{[]quality.Rule{{Kind: quality.Uniqueness, Column: "姓名"}, {Kind: quality.Uniqueness, Column: " 姓名 "}}, "rules[1]"},
			{make([]quality.Rule, quality.MaxRulesPerDataset+1), "rules"},
		} {
			_, err := q.SetRules(f.ctx, staff, "roll", c.rules)
			var ie *i18n.Error
			if !errors.As(err, &ie) || ie.Code != quality.ErrRule.Code || ie.Field != c.field || ie.HTTPStatus() != 400 {
				t.Errorf("%s: %v (%+v)", c.field, err, ie)
			}
		}
		after, err := q.Rules(f.ctx, "roll")
		if err != nil || len(after) != len(got) || after[7].ID != got[7].ID {
			t.Fatalf("rules changed by a refused set: %d %v", len(after), err)
		}
		if a := log.take(); len(a) != 0 {
			t.Fatalf("refused sets audited: %v", a)
		}

		// Setting none removes every explicit rule: the defaults remain.
		if got, err = q.SetRules(f.ctx, staff, "roll", nil); err != nil || len(got) != 2 || !got[0].Default {
			t.Fatalf("set none: %+v %v", got, err)
		}
	})
}

// Access authorizes by the division of the resource a dataset is attached to, as the console
// and the API need, and audits what staff change.
func TestAccess(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		log := &auditLog{}
		policy := authz.NewPolicy(divisions.Contains)
		catalog.RegisterPermissions(policy)
		a := quality.Access{Service: quality.New(f.d, f.data, f.base, quality.Options{Now: f.clock.now, Audit: log.record}), Policy: policy}
		d := seed(t, f)
		f.load(t, "roll", d.csv)
		f.load(t, "loose", d.csv) // never attached
		res := catalog.Resource{ID: "res-1", Draft: catalog.Draft{Name: "低保名册", ProviderDeptID: "dept-mz", UpdateCycle: catalog.CycleMonthly},
			DivisionCode: "140105"}
		taiyuan := authz.Subject{Kind: authz.Staff, ID: "ty", Division: "140100", Roles: []authz.Role{authz.RoleOfficer}}
		datong := authz.Subject{Kind: authz.Staff, ID: "dt", Division: "140200", Roles: []authz.Role{authz.RoleOfficer}}
		auditor := authz.Subject{Kind: authz.Staff, ID: "au", Division: "140000", Roles: []authz.Role{authz.RoleAuditor}}
		citizen := authz.Subject{Kind: authz.Citizen, ID: "c1", Division: "140000"}
		ctx := f.ctx

		if _, err := a.Attach(ctx, datong, "roll", res); !errors.Is(err, i18n.ErrForbidden) {
			t.Fatalf("Datong attaches Taiyuan's dataset: %v", err)
		}
		if _, err := a.Attach(ctx, taiyuan, "roll", res); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SetRules(ctx, taiyuan, "roll", explicit("")); err != nil {
			t.Fatal(err)
		}
		r, err := a.AddRule(ctx, taiyuan, quality.Rule{DatasetID: "roll", Kind: quality.Format, Column: "区划", Format: quality.FormatDivision})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.DeleteRule(ctx, taiyuan, "roll", r.ID); err != nil {
			t.Fatal(err)
		}
		rep, err := a.Run(ctx, taiyuan, "roll")
		if err != nil || rep.BadRows != 6 {
			t.Fatalf("run: %+v %v", rep, err)
		}
		want := []string{"staff:ty quality.attach dataset:roll", "staff:ty quality.rules.set dataset:roll", "staff:ty quality.rule.add dataset:roll",
			"staff:ty quality.rule.delete dataset:roll", "staff:ty quality.run dataset:roll"}
		if got := log.take(); !reflect.DeepEqual(got, want) {
			t.Fatalf("audit:\n got %v\nwant %v", got, want)
		}

		type call struct {
			name string
			fn   func(authz.Subject) error
		}
		calls := []call{
			{"rules", func(s authz.Subject) error { _, err := a.Rules(ctx, s, "roll"); return err }},
			{"report", func(s authz.Subject) error { _, err := a.Report(ctx, s, "roll", 0); return err }},
			{"target", func(s authz.Subject) error { _, err := a.Target(ctx, s, "roll", quality.PermRead); return err }},
			{"run", func(s authz.Subject) error { _, err := a.Run(ctx, s, "roll"); return err }},
			{"set rules", func(s authz.Subject) error { _, err := a.SetRules(ctx, s, "roll", nil); return err }},
			{"add rule", func(s authz.Subject) error {
				_, err := a.AddRule(ctx, s, quality.Rule{DatasetID: "roll", Kind: quality.Completeness, Column: "姓名"})
				return err
			}},
			{"delete rule", func(s authz.Subject) error { return a.DeleteRule(ctx, s, "roll", "none") }},
			{"Taiyuan summary", func(s authz.Subject) error {
				_, err := a.Summary(ctx, s, quality.Scope{Division: "140100"})
				return err
			}},
		}
		for _, c := range []struct {
			who     string
			sub     authz.Subject
			allowed map[string]bool // the rest must be refused
			refusal error
		}{
			{"Datong officer", datong, nil, i18n.ErrForbidden},
			{"provincial auditor", auditor, map[string]bool{"rules": true, "report": true, "target": true, "Taiyuan summary": true}, i18n.ErrForbidden},
			{"citizen", citizen, nil, i18n.ErrForbidden},
			{"anonymous", authz.Subject{}, nil, i18n.ErrUnauthorized},
		} {
			for _, k := range calls {
				err := k.fn(c.sub)
				if c.allowed[k.name] {
					if err != nil {
						t.Errorf("%s: %s: %v", c.who, k.name, err)
					}
				} else if !errors.Is(err, c.refusal) {
					t.Errorf("%s: %s: %v, want %v", c.who, k.name, err, c.refusal)
				}
			}
		}
		if got := log.take(); len(got) != 0 {
			t.Fatalf("refused calls audited: %v", got)
		}
		// The report was not changed by the refused calls.
		if got, err := a.Report(ctx, taiyuan, "roll", 0); err != nil || got.ID != rep.ID {
			t.Fatalf("report after refusals: %+v %v", got, err)
		}

		// Summaries: the subject's own division by default; others' refused.
		if s, err := a.Summary(ctx, taiyuan, quality.Scope{}); err != nil || len(s.Reports) != 1 || s.BadRows != 6 {
			t.Fatalf("Taiyuan's summary: %+v %v", s, err)
		}
		if s, err := a.Summary(ctx, datong, quality.Scope{}); err != nil || len(s.Reports) != 0 {
			t.Fatalf("Datong's summary: %+v %v", s, err)
		}
		if s, err := a.Summary(ctx, taiyuan, quality.Scope{DeptID: "dept-mz", Division: "140105"}); err != nil || len(s.Reports) != 1 {
			t.Fatalf("department summary: %+v %v", s, err)
		}
		if s, err := a.Summary(ctx, taiyuan, quality.Scope{DeptID: "dept-other", Division: "140105"}); err != nil || len(s.Reports) != 0 {
			t.Fatalf("another department's summary: %+v %v", s, err)
		}

		// Targets: what the subject may read; a dataset not attached is nobody's here.
		if ts, err := a.Targets(ctx, taiyuan); err != nil || len(ts) != 1 || ts[0].DatasetID != "roll" {
			t.Fatalf("Taiyuan's targets: %+v %v", ts, err)
		}
		if ts, err := a.Targets(ctx, datong); err != nil || len(ts) != 0 {
			t.Fatalf("Datong's targets: %+v %v", ts, err)
		}
		if _, err := a.Rules(ctx, taiyuan, "loose"); !errors.Is(err, quality.ErrNoTarget) {
			t.Fatalf("unattached dataset: %v", err)
		}
	})
}

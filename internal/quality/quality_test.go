package quality_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/quality"
)

var residentRE = regexp.MustCompile(`\d{17}[\dX]`)

var t0 = time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)

// staff is who changes rules in the tests.
var staff = authz.Subject{Kind: authz.Staff, ID: "staff-1", Division: "140100", Roles: []authz.Role{authz.RoleOfficer}}

// clock is a controllable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	ctx   context.Context
	d     *db.DB
	clock *clock
	data  *dataset.Service
	base  *baselib.Service
	q     *quality.Service
}

func each(t *testing.T, fn func(t *testing.T, f *fixture)) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := &clock{t: t0}
		k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), c.now)
		if err != nil {
			t.Fatal(err)
		}
		f := &fixture{ctx: ctx, d: d, clock: c, data: dataset.New(d, k.FieldCipher(), dataset.Options{Now: c.now}),
			base: baselib.New(d, k.FieldCipher(), baselib.Options{Now: c.now})}
		f.q = quality.New(d, f.data, f.base, quality.Options{Now: c.now})
		fn(t, f)
	}, crypto.Migrations, dataset.Migrations, baselib.Migrations, quality.Migrations)
}

// The demo roll: 20 good rows, each person in the population library, and five bad rows
// seeded among them, one fault each.
var schema = dataset.Schema{Columns: []dataset.Column{
	// Loaded as plain text, as departments' files often are: the quality rules check them.
	{Name: "身份证号", Type: dataset.String, Sensitive: true},
	{Name: "姓名", Type: dataset.String},
	{Name: "单位信用代码", Type: dataset.String},
	{Name: "区划", Type: dataset.Division, Required: true},
}}

type demo struct {
	csv string
	bad []int64 // row numbers of the seeded bad rows
}

// seed adds 22 persons to the population library and returns a roll of the first 20 (the
// good rows) with six bad rows seeded among them, one fault each.
func seed(t *testing.T, f *fixture) demo {
	t.Helper()
	var persons []baselib.PersonInput
	for i := 0; i < 22; i++ {
		id := ids.MakeResident("140105", time.Date(1960+i, time.Month(1+i%12), 1+i, 0, 0, 0, 0, time.UTC), 100+i, i%2 == 0)
		persons = append(persons, baselib.PersonInput{Name: fmt.Sprintf("居民%d", i), IDNumber: id, DivisionCode: "140105"})
	}
	if _, err := f.base.AddPersons(f.ctx, persons); err != nil {
		t.Fatal(err)
	}
	cc := func(i int) string {
		c, err := ids.MakeCreditCode('9', '1', "140105", fmt.Sprintf("MA0K%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	line := func(id, name, code string) string { return id + "," + name + "," + code + ",140105" }
	stranger := ids.MakeResident("140106", time.Date(1990, 5, 5, 0, 0, 0, 0, time.UTC), 77, true) // valid, not in the library
	p5 := persons[5].IDNumber
	badCC := cc(99)[:17] + flip(cc(99)[17])
	seeded := []struct {
		after int // good rows before it
		line  string
	}{
		{3, line("", "缺身份证", cc(90))},                   // missing ID number
		{6, line(persons[20].IDNumber, "", cc(91))},     // missing name
		{9, line(p5[:17]+flip(p5[17]), "校验位错", cc(92))}, // bad ID check digit
		{14, line(persons[2].IDNumber, "重复", cc(93))},   // duplicate of the third good row
		{16, line(stranger, "不在库中", cc(94))},            // valid ID, not in the population library
		{20, line(persons[21].IDNumber, "坏代码", badCC)},  // bad credit code
	}
	var out []string
	var bad []int64
	next := 0
	for g := 0; g <= 20; g++ {
		for next < len(seeded) && seeded[next].after == g {
			out = append(out, seeded[next].line)
			bad = append(bad, int64(len(out)))
			next++
		}
		if g < 20 {
			out = append(out, line(persons[g].IDNumber, persons[g].Name, cc(g)))
		}
	}
	return demo{csv: "身份证号,姓名,单位信用代码,区划\n" + strings.Join(out, "\n") + "\n", bad: bad}
}

func flip(c byte) string {
	const digits = "0123456789X"
	return string(digits[(strings.IndexByte(digits, c)+1)%len(digits)])
}

// explicit are the staff's rules for the roll.
func explicit(id string) []quality.Rule {
	return []quality.Rule{
		{DatasetID: id, Kind: quality.Completeness, Column: "身份证号"},
		{DatasetID: id, Kind: quality.Completeness, Column: "姓名"},
		{DatasetID: id, Kind: quality.Format, Column: "身份证号", Format: quality.FormatResidentID},
		{DatasetID: id, Kind: quality.Uniqueness, Column: "身份证号"},
		{DatasetID: id, Kind: quality.Reference, Column: "身份证号", Library: quality.LibraryPopulation},
		{DatasetID: id, Kind: quality.Format, Column: "单位信用代码", Format: quality.FormatCreditCode},
	}
}

func (f *fixture) load(t *testing.T, id, csv string) {
	t.Helper()
	if _, err := f.data.Load(f.ctx, id, schema, dataset.Source{Name: id + ".csv", Reader: strings.NewReader(csv)}, dataset.LoadOptions{}); err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
}

func (f *fixture) rules(t *testing.T, rules []quality.Rule) {
	t.Helper()
	for _, r := range rules {
		if _, err := f.q.AddRule(f.ctx, staff, r); err != nil {
			t.Fatalf("add %+v: %v", r, err)
		}
	}
}

// The report flags every seeded bad row, and no good row; the reasons name the fault.
func TestReportFlagsExactlyTheBadRows(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		d := seed(t, f)
		f.load(t, "roll", d.csv)
		f.rules(t, explicit("roll"))
		rep, err := f.q.Run(f.ctx, "roll")
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{4, 8, 12, 18, 21, 26}
		if !reflect.DeepEqual(d.bad, want) {
			t.Fatalf("seeded rows %v, want %v", d.bad, want)
		}
		if got := rep.BadRowNumbers(); !reflect.DeepEqual(got, want) {
			for _, fd := range rep.Findings {
				t.Logf("finding: %+v", fd)
			}
			t.Fatalf("flagged rows %v, want %v", got, want)
		}
		if rep.TotalRows != 26 || rep.BadRows != 6 || rep.FindingsTotal != 6 || len(rep.Findings) != 6 || rep.Stale {
			t.Fatalf("report: %+v", rep)
		}
		wantCodes := []struct {
			row          int64
			column, code string
			zh           string
		}{
			{4, "身份证号", "quality.missing", "缺少值"},
			{8, "姓名", "quality.missing", "缺少值"},
			{12, "身份证号", ids.ErrResidentChecksum.Code, "校验位"},
			{18, "身份证号", "quality.duplicate", "第3行"},
			{21, "身份证号", "quality.not_in_library", "人口库"},
			{26, "单位信用代码", ids.ErrCreditChecksum.Code, ""},
		}
		for i, w := range wantCodes {
			g := rep.Findings[i]
			if g.RowNo != w.row || g.Column != w.column || g.Code != w.code || !strings.Contains(g.Reason.ZH, w.zh) || g.Reason.EN == "" || g.Line != w.row+1 {
				t.Errorf("finding %d: %+v, want %+v", i, g, w)
			}
		}
		// Counts per rule; the defaults of the schema (区划 required and typed) pass.
		byID := map[string]quality.RuleResult{}
		for _, rr := range rep.Rules {
			byID[rr.Rule.Describe().EN] = rr
			if rr.Checked != 26 {
				t.Errorf("rule %s checked %d rows", rr.Rule.ID, rr.Checked)
			}
		}
		for desc, failed := range map[string]int64{"区划 has a value": 0, "区划 is a valid division code": 0, "身份证号 has a value": 1,
			"姓名 has a value": 1, "身份证号 is a valid resident ID number": 1, "身份证号 is unique": 1,
			"身份证号 exists in population (by ID number)": 1, "单位信用代码 is a valid unified social credit code": 1} {
			if rr, ok := byID[desc]; !ok || rr.Failed != failed {
				t.Errorf("rule %q: %+v (present %v), want %d failed", desc, rr, ok, failed)
			}
		}
		// Stored: the latest report reads back the same.
		got, err := f.q.ReportFor(f.ctx, "roll", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != rep.ID || !reflect.DeepEqual(got.BadRowNumbers(), want) || len(got.Rules) != len(rep.Rules) || !got.RanAt.Equal(rep.RanAt) {
			t.Fatalf("stored report: %+v", got)
		}
		if got.Findings[3].Reason != rep.Findings[3].Reason {
			t.Fatalf("reason: %+v", got.Findings[3])
		}
		// No values are quoted: no ID number appears in any reason.
		for _, fd := range got.Findings {
			if residentRE.MatchString(fd.Reason.ZH + fd.Reason.EN) {
				t.Errorf("reason quotes a value: %+v", fd.Reason)
			}
		}
	})
}

// Stored findings are capped; the counts stay exact.
func TestFindingsCapped(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		d := seed(t, f)
		f.load(t, "roll", d.csv)
		f.rules(t, explicit("roll"))
		q := quality.New(f.d, f.data, f.base, quality.Options{Now: f.clock.now, MaxFindings: 2})
		rep, err := q.Run(f.ctx, "roll")
		if err != nil {
			t.Fatal(err)
		}
		if rep.FindingsTotal != 6 || rep.BadRows != 6 || len(rep.Findings) != 2 {
			t.Fatalf("capped report: total %d bad %d stored %d", rep.FindingsTotal, rep.BadRows, len(rep.Findings))
		}
		got, err := q.ReportFor(f.ctx, "roll", 0)
		if err != nil || len(got.Findings) != 2 || got.FindingsTotal != 6 {
			t.Fatalf("stored: %+v %v", got, err)
		}
	})
}

// A daily dataset is stale once it is older than a day plus the grace period.
func TestTimeliness(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		d := seed(t, f)
		f.load(t, "roll", d.csv)
		if _, err := f.q.Attach(f.ctx, staff, "roll", catalog.Resource{ID: "res-1", Draft: catalog.Draft{Name: "低保名册", Provider: "民政局",
			ProviderDeptID: "dept-mz", UpdateCycle: catalog.CycleDaily}, DivisionCode: "140105"}); err != nil {
			t.Fatal(err)
		}
		f.clock.advance(47 * time.Hour)
		rep, err := f.q.Run(f.ctx, "roll")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Stale || rep.FindingsTotal != 0 || rep.DeptID != "dept-mz" || rep.DivisionCode != "140105" {
			t.Fatalf("fresh: %+v", rep)
		}
		f.clock.advance(2 * time.Hour)
		if rep, err = f.q.Run(f.ctx, "roll"); err != nil {
			t.Fatal(err)
		}
		if !rep.Stale || rep.FindingsTotal != 1 || rep.Findings[0].Kind != quality.Timeliness || rep.Findings[0].RowNo != 0 ||
			!strings.Contains(rep.Findings[0].Reason.ZH, "每日") || rep.BadRows != 0 {
			t.Fatalf("stale: %+v", rep)
		}
		// An explicit rule with a longer grace replaces the default.
		f.rules(t, []quality.Rule{{DatasetID: "roll", Kind: quality.Timeliness, GraceHours: 72}})
		if rep, err = f.q.Run(f.ctx, "roll"); err != nil || rep.Stale {
			t.Fatalf("with grace: %+v %v", rep, err)
		}
		// A new load is fresh again.
		f.clock.advance(100 * time.Hour)
		f.load(t, "roll", d.csv)
		if rep, err = f.q.Run(f.ctx, "roll"); err != nil || rep.Stale || rep.Version != 2 {
			t.Fatalf("reloaded: %+v %v", rep, err)
		}
	})
}

// The department report takes the latest report of each dataset in scope.
func TestDepartmentReport(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		d := seed(t, f)
		f.load(t, "roll", d.csv)
		f.load(t, "clean", d.csv)
		f.rules(t, explicit("roll"))
		attach := func(id, dept, division string) {
			if _, err := f.q.Attach(f.ctx, staff, id, catalog.Resource{ID: "res-" + id, Draft: catalog.Draft{Name: id, ProviderDeptID: dept,
				UpdateCycle: catalog.CycleMonthly}, DivisionCode: division}); err != nil {
				t.Fatal(err)
			}
		}
		attach("roll", "dept-a", "140105")
		attach("clean", "dept-b", "140202")
		for _, id := range []string{"roll", "clean", "roll"} {
			f.clock.advance(time.Minute)
			if _, err := f.q.Run(f.ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		all, err := f.q.DepartmentReport(f.ctx, quality.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Reports) != 2 || all.TotalRows != 52 || all.BadRows != 6 {
			t.Fatalf("all: %+v", all)
		}
		a, err := f.q.DepartmentReport(f.ctx, quality.Scope{DeptID: "dept-a"})
		if err != nil || len(a.Reports) != 1 || a.Reports[0].DatasetID != "roll" || a.BadRows != 6 {
			t.Fatalf("dept-a: %+v %v", a, err)
		}
		if s := a.Score(); s < 76.9 || s > 77 { // 20 of 26
			t.Fatalf("score %v", s)
		}
		var kinds []quality.Kind
		for _, k := range a.Kinds {
			kinds = append(kinds, k.Kind)
		}
		if !reflect.DeepEqual(kinds, quality.KindOrder) {
			t.Fatalf("kinds %v", kinds)
		}
		taiyuan, err := f.q.DepartmentReport(f.ctx, quality.Scope{Division: "140100"})
		if err != nil || len(taiyuan.Reports) != 1 || taiyuan.Reports[0].DatasetID != "roll" {
			t.Fatalf("Taiyuan roll-up: %+v %v", taiyuan, err)
		}
		shanxi, err := f.q.DepartmentReport(f.ctx, quality.Scope{Division: "140000"})
		if err != nil || len(shanxi.Reports) != 2 {
			t.Fatalf("Shanxi roll-up: %+v %v", shanxi, err)
		}
	})
}

// Explicit rules are checked against the schema; defaults follow it.
func TestRules(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		d := seed(t, f)
		f.load(t, "roll", d.csv)
		for _, r := range []quality.Rule{
			{DatasetID: "roll", Kind: quality.Completeness, Column: "无此列"},
			{DatasetID: "roll", Kind: quality.Format, Column: "姓名", Format: "phone"},
			{DatasetID: "roll", Kind: quality.Format, Column: "姓名", Format: quality.FormatRegex, Pattern: "("},
			{DatasetID: "roll", Kind: quality.Reference, Column: "姓名", Library: "cars"},
			{DatasetID: "roll", Kind: "beauty", Column: "姓名"},
			{DatasetID: "roll", Kind: quality.Uniqueness},
		} {
			if _, err := f.q.AddRule(f.ctx, staff, r); !errors.Is(err, quality.ErrRule) {
				t.Errorf("%+v: %v", r, err)
			}
		}
		rules, err := f.q.Rules(f.ctx, "roll")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rules {
			got = append(got, r.ID)
		}
		if want := []string{"default:completeness:区划", "default:format:区划"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("defaults %v, want %v", got, want)
		}
		r, err := f.q.AddRule(f.ctx, staff, quality.Rule{DatasetID: "roll", Kind: quality.Format, Column: "姓名", Format: quality.FormatRegex, Pattern: `居民\d+`})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := f.q.Run(f.ctx, "roll")
		if err != nil {
			t.Fatal(err)
		}
		if rep.BadRows != 5 { // every seeded row's name but the empty one
			t.Fatalf("regex: %d bad rows: %v", rep.BadRows, rep.BadRowNumbers())
		}
		if err := f.q.DeleteRule(f.ctx, staff, "roll", r.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.q.DeleteRule(f.ctx, staff, "roll", r.ID); !errors.Is(err, i18n.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		// Without a format rule on the column, a reference rule flags a malformed ID itself.
		f.rules(t, []quality.Rule{{DatasetID: "roll", Kind: quality.Reference, Column: "身份证号", Library: quality.LibraryPopulation}})
		if rep, err = f.q.Run(f.ctx, "roll"); err != nil || !reflect.DeepEqual(rep.BadRowNumbers(), []int64{12, 21}) {
			t.Fatalf("reference alone: %v %v", rep.BadRowNumbers(), err)
		}
		if _, err := f.q.ReportFor(f.ctx, "none", 0); !errors.Is(err, quality.ErrNoReport) {
			t.Fatalf("no report: %v", err)
		}
		if _, err := f.q.Run(f.ctx, "none"); !errors.Is(err, dataset.ErrNoActive) {
			t.Fatalf("run without data: %v", err)
		}
	})
}

package demo

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/baselib"
	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/quality"
)

// The done-when of D5: the quality report flags every bad row seeded into the demo dataset,
// and no good row. The demo's own list of faults is not trusted: every row is judged again
// here, independently of the quality engine, and the bad ones must be exactly the seeded ones.
func TestQualityDemo(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Migrate(ctx, crypto.Migrations, bus.Migrations, audit.Migrations, org.Migrations, baselib.Migrations,
			catalog.Migrations, dataset.Migrations, exchange.Migrations, quality.Migrations); err != nil {
			t.Fatal(err)
		}
		k, err := crypto.Open(ctx, d, bytes.Repeat([]byte{9}, crypto.MasterKeySize), clock)
		if err != nil {
			t.Fatal(err)
		}
		policy := authz.NewPolicy(divisions.Contains)
		catalog.RegisterPermissions(policy)
		exchange.RegisterPermissions(policy)
		deps := Deps{DB: d, Now: clock,
			Org:  org.New(d, policy, org.Options{Argon: cheap, Now: clock, Fields: k.FieldCipher()}),
			Base: baselib.New(d, k.FieldCipher(), baselib.Options{Now: clock})}
		opts := Options{Seed: 42, Residents: 500, Enterprises: 20}
		if _, err := Load(ctx, deps, opts); err != nil {
			t.Fatal(err)
		}
		cat := catalog.New(d, policy, deps.Org, catalog.Options{Now: clock})
		ds := dataset.New(d, k.FieldCipher(), dataset.Options{Now: clock})
		ex := exchange.New(d, policy, cat, deps.Org, ds, k.FieldCipher(), audit.New(d, k, clock, audit.Options{}), exchange.Options{Now: clock})
		q := quality.New(d, ds, deps.Base, quality.Options{Now: clock})
		bdeps := BaseLibDeps{Org: deps.Org, Catalog: cat, Datasets: ds, Exchange: ex, Quality: q}
		bopts := BaseLibOptions{Seed: 42, Residents: 500, Enterprises: 20, Licenses: 50}
		sum, err := LoadBaseLibraries(ctx, bdeps, bopts)
		if err != nil {
			t.Fatal(err)
		}
		qd := sum.Quality
		if qd == nil {
			t.Fatal("no quality demo")
		}

		// Nine faults, one of each kind promised, each on its own row, spread through the roll.
		var whats []string
		var seeded []int64
		for _, f := range qd.Faults {
			whats = append(whats, string(f.Kind)+":"+f.Column+":"+f.Code)
			seeded = append(seeded, f.Row)
		}
		wantFaults := []string{"format:身份证号:" + ids.ErrResidentChecksum.Code, "format:身份证号:" + ids.ErrResidentBirth.Code,
			"completeness:身份证号:quality.missing", "completeness:姓名:quality.missing", "uniqueness:身份证号:quality.duplicate",
			"reference:身份证号:quality.not_in_library", "format:联系电话:" + ids.ErrMobileLength.Code,
			"format:保障类别:quality.pattern", "format:认定日期:quality.date"}
		if !reflect.DeepEqual(whats, wantFaults) {
			t.Fatalf("faults:\n got %v\nwant %v", whats, wantFaults)
		}
		rows := map[int64]dataset.Row{}
		v, err := ds.Active(ctx, DatasetDibao)
		if err != nil || v.RowsRejected != 0 {
			t.Fatalf("active: %+v %v", v, err)
		}
		if err := ds.Each(ctx, DatasetDibao, v.Version, func(r dataset.Row) error { rows[r.No] = r; return nil }); err != nil {
			t.Fatal(err)
		}
		if int64(len(rows)) != v.RowsOK || len(rows) != 40+9 || sum.Loaded[DatasetDibao] != int64(len(rows)) {
			t.Fatalf("%d rows, %d loaded, summary %d", len(rows), v.RowsOK, sum.Loaded[DatasetDibao])
		}
		if seeded[0] < 3 || seeded[8] > int64(len(rows))-3 {
			t.Errorf("faults not spread: rows %v of %d", seeded, len(rows))
		}

		// The independent judgement of every row.
		var judged []int64
		seenID := map[string]bool{}
		for no := int64(1); no <= int64(len(rows)); no++ {
			r := rows[no]
			val := r.Values
			bad := val[colName] == "" || val[colIDNumber] == "" || seenID[val[colIDNumber]]
			if val[colIDNumber] != "" {
				seenID[val[colIDNumber]] = true
				if _, err := ids.ValidateResidentAt(val[colIDNumber], t0); err != nil {
					bad = true
				} else if _, err := deps.Base.FindPersonByIDNumber(ctx, val[colIDNumber]); errors.Is(err, i18n.ErrNotFound) {
					bad = true
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ids.ValidateMobile(val[colPhone]); err != nil {
				bad = true
			}
			if c := val[colCategory]; c != "城市低保" && c != "农村低保" {
				bad = true
			}
			if _, err := time.Parse(time.DateOnly, val[colDecided]); err != nil {
				bad = true
			}
			if bad {
				judged = append(judged, no)
			}
		}
		if !reflect.DeepEqual(judged, seeded) {
			t.Fatalf("bad rows judged independently %v, seeded %v", judged, seeded)
		}

		// The report — as stored, as the console shows it — flags exactly those rows, by row,
		// line, key and fault, and counts them exactly.
		rep, err := q.ReportFor(ctx, DatasetDibao, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rep.ID != qd.Report.ID || rep.TotalRows != int64(len(rows)) || rep.BadRows != 9 || rep.FindingsTotal != 9 || rep.Stale {
			t.Fatalf("report: %+v", rep)
		}
		if got := rep.BadRowNumbers(); !reflect.DeepEqual(got, seeded) {
			t.Fatalf("flagged rows %v, seeded %v", got, seeded)
		}
		for i, f := range rep.Findings {
			want := qd.Faults[i]
			if f.RowNo != want.Row || f.Line != want.Line || f.Column != want.Column || f.Kind != want.Kind || f.Code != want.Code ||
				rows[f.RowNo].Line != want.Line || rows[f.RowNo].Values[colRollNo] != want.Key {
				t.Errorf("finding %d: %+v (row line %d, key %s), want %+v", i, f, rows[f.RowNo].Line, rows[f.RowNo].Values[colRollNo], want)
			}
		}
		for _, rr := range rep.Rules {
			if rr.Rule.Kind != quality.Timeliness && rr.Checked != int64(len(rows)) {
				t.Errorf("rule %s checked %d rows", rr.Rule.ID, rr.Checked)
			}
		}

		// The roll is in the catalogue, provided by 太原市民政局, attached for quality; the base
		// libraries are attached too, for the department reports.
		targets, err := q.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var attached []string
		for _, tg := range targets {
			attached = append(attached, tg.DatasetID)
			if tg.DatasetID == DatasetDibao && (tg.DeptName != "太原市民政局" || tg.DivisionCode != "140100" || tg.UpdateCycle != string(catalog.CycleMonthly)) {
				t.Errorf("roll's target: %+v", tg)
			}
		}
		wantAttached := []string{DatasetLicenses, DatasetEntities, DatasetMacro, DatasetPopulation, DatasetCredit, DatasetSpatial, DatasetDibao}
		if !reflect.DeepEqual(attached, wantAttached) {
			t.Errorf("attached %v, want %v", attached, wantAttached)
		}
		ty, err := q.DepartmentReport(ctx, quality.Scope{Division: "140100"})
		if err != nil || len(ty.Reports) != 1 || ty.BadRows != 9 {
			t.Errorf("Taiyuan's summary: %+v %v", ty, err)
		}
		// The base libraries are due for the job queue's first sweep; the roll is checked.
		due, err := q.Due(ctx)
		if err != nil || len(due) != 6 {
			t.Errorf("due: %v %v", due, err)
		}

		// Again: nothing changes.
		again, err := LoadBaseLibraries(ctx, bdeps, bopts)
		if err != nil || again.Quality != nil || len(again.Loaded) != 0 {
			t.Fatalf("second load: %+v %v", again, err)
		}
		if v2, _ := ds.Active(ctx, DatasetDibao); v2.Version != 1 {
			t.Errorf("roll reloaded: version %d", v2.Version)
		}
	})
}

// The roll is a pure function of the seed and fits small libraries too.
func TestGenerateDibao(t *testing.T) {
	g := newGeography()
	residents := generateResidents(DefaultSeed, DefaultResidents, g)
	a, err := generateDibao(DefaultSeed, residents, g)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := generateDibao(DefaultSeed, residents, newGeography())
	if !reflect.DeepEqual(a, b) || len(a.rows) != dibaoGoodRows+9 || len(a.faults) != 9 {
		t.Fatalf("roll: %d rows, %d faults, deterministic %v", len(a.rows), len(a.faults), reflect.DeepEqual(a, b))
	}
	for _, f := range a.faults {
		if a.rows[f.Row-1][0] != f.Key || f.Line != f.Row+1 {
			t.Errorf("fault %+v on row %v", f, a.rows[f.Row-1])
		}
	}
	for _, n := range []int{30, 60, 120} {
		small, err := generateDibao(DefaultSeed, residents[:n], g)
		switch {
		case errors.Is(err, errFewResidents):
			t.Logf("%d residents: too few for the roll", n)
		case err != nil:
			t.Fatalf("%d residents: %v", n, err)
		case len(small.faults) != 9 || len(small.rows) < dibaoMinGood+9:
			t.Errorf("%d residents: %d rows, %d faults", n, len(small.rows), len(small.faults))
		}
	}
	if _, err := generateDibao(DefaultSeed, nil, g); !errors.Is(err, errFewResidents) {
		t.Errorf("no residents: %v", err)
	}
}

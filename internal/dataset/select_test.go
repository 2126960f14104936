package dataset_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// people is a population-like schema: a sealed ID number as key, an optional division.
var people = dataset.Schema{Key: "身份证号", Columns: []dataset.Column{
	{Name: "身份证号", Type: dataset.ResidentID, Sensitive: true},
	{Name: "姓名", Type: dataset.String, Required: true},
	{Name: "性别", Type: dataset.String},
	{Name: "区划", Type: dataset.Division},
}}

// peopleDivisions cycle over the rows: two counties and a township of 太原, 太原 itself,
// 大同, and no division at all.
var peopleDivisions = []string{"140105", "140106", "140202", "140105001", "", "140100"}

type person struct {
	no       int64
	id, div  string
	name, sx string
}

func peopleCSV(n int) (string, []person) {
	var b strings.Builder
	b.WriteString("身份证号,姓名,性别,区划\n")
	var ps []person
	for i := range n {
		p := person{no: int64(i + 1), id: ids.MakeResident("140105", date(1940+i%60, 1+i%12, 1+i%28), i%1000, i%2 == 0),
			div: peopleDivisions[i%len(peopleDivisions)], name: fmt.Sprintf("居民%d", i), sx: []string{"男", "女"}[i%2]}
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", p.id, p.name, p.sx, p.div)
		ps = append(ps, p)
	}
	return b.String(), ps
}

// expect is what a selection must return: the people within scope (and of sex, if given),
// in (division, row) order when scoped.
func expect(ps []person, within, sx string) []person {
	var out []person
	for _, p := range ps {
		if within != "" && (p.div == "" || !divisions.Contains(within, p.div)) {
			continue
		}
		if sx != "" && p.sx != sx {
			continue
		}
		out = append(out, p)
	}
	if within != "" {
		slices.SortStableFunc(out, func(a, b person) int { return cmp.Or(cmp.Compare(a.div, b.div), cmp.Compare(a.no, b.no)) })
	}
	return out
}

func subjectOf(id string) string { return "subject:" + id }

func checkRows(t *testing.T, what string, got []dataset.Row, want []person) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.No != w.no || g.Values["姓名"] != w.name || g.Values["区划"] != w.div || g.Subject != subjectOf(w.id) {
			t.Fatalf("%s: row %d is %+v, want %+v", what, i, g, w)
		}
		if id := g.Values["身份证号"]; id == w.id || !strings.Contains(id, "*") {
			t.Fatalf("%s: the ID number %q is not masked", what, id)
		}
	}
}

// Row scopes select through the division index, in (division, row) order; Select pages,
// Scan walks by key across pages, Count agrees, and every row carries its resident's subject.
func TestSelectWithin(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		const n = dataset.ScanPage*2 + 37
		csv, ps := peopleCSV(n)
		if _, err := f.svc.Load(f.ctx, "people", people, dataset.Source{Name: "p.csv", Reader: strings.NewReader(csv)}, dataset.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ within, sx string }{
			{"", ""}, {"140100", ""}, {"140105", ""}, {"140202", ""}, {"140000", ""}, {"140105001", ""}, {"140100", "女"}, {"140300", ""},
		} {
			want := expect(ps, tc.within, tc.sx)
			q := dataset.QueryOptions{Within: tc.within, Subject: subjectOf}
			if tc.sx != "" {
				q.Filter = map[string]string{"性别": tc.sx}
			}
			var scanned []dataset.Row
			if _, err := f.svc.Scan(f.ctx, "people", q, func(r dataset.Row) error { scanned = append(scanned, r); return nil }); err != nil {
				t.Fatalf("scan %+v: %v", tc, err)
			}
			checkRows(t, fmt.Sprintf("scan within %q %q", tc.within, tc.sx), scanned, want)
			var paged []dataset.Row
			for off := 0; ; off += dataset.MaxQueryLimit {
				q.Limit, q.Offset = dataset.MaxQueryLimit, off
				page, err := f.svc.Select(f.ctx, "people", q)
				if err != nil {
					t.Fatalf("select %+v: %v", tc, err)
				}
				paged = append(paged, page...)
				if len(page) < dataset.MaxQueryLimit {
					break
				}
			}
			checkRows(t, fmt.Sprintf("select within %q %q", tc.within, tc.sx), paged, want)
			if c, err := f.svc.Count(f.ctx, "people", q); err != nil || c != int64(len(want)) {
				t.Errorf("count within %q: %d %v, want %d", tc.within, c, err, len(want))
			}
		}
		// Scan stops when asked.
		seen := 0
		if _, err := f.svc.Scan(f.ctx, "people", dataset.QueryOptions{}, func(dataset.Row) error {
			if seen++; seen == 5 {
				return dataset.ErrStop
			}
			return nil
		}); err != nil || seen != 5 {
			t.Errorf("stop: %d %v", seen, err)
		}
		// Bad scopes.
		_, err := f.svc.Select(f.ctx, "people", dataset.QueryOptions{Within: "14010"})
		if e, ok := i18n.As(err); !ok || e.Field != "within" || e.Msg.EN == "" {
			t.Errorf("a malformed scope: %v", err)
		}
		if _, err := f.svc.Select(f.ctx, "people", dataset.QueryOptions{Within: "140100", WithinColumn: "姓名"}); !errors.Is(err, dataset.ErrNotDivisional) {
			t.Errorf("a scope on a text column: %v", err)
		}
		if err := f.svc.CheckQuery(f.ctx, "people", dataset.QueryOptions{Filter: map[string]string{"身份证号": zhang}}); err == nil {
			t.Error("a filter on a sealed column passed")
		}

		// The county's query reads the index, not the province.
		q := `SELECT row_no, line, data, COALESCE(division, '') FROM dataset_rows WHERE dataset_id = ? AND version = ? AND division >= ? AND division < ? ORDER BY division, row_no LIMIT 50`
		plan := explain(t, f.d, q, "people", 1, "140105", "140106")
		if !strings.Contains(plan, "dataset_rows_division") {
			t.Errorf("the scoped query does not use the division index:\n%s", plan)
		}
	})
}

// explain returns the query plan of q on d.
func explain(t *testing.T, d *db.DB, q string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	prefix := "EXPLAIN QUERY PLAN "
	if d.Dialect == db.Postgres {
		prefix = "EXPLAIN "
		if _, err := d.Exec(ctx, `ANALYZE dataset_rows`); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := d.Query(ctx, prefix+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	return b.String()
}

// The prefix ranges of row scopes agree with the division tables' containment for every
// pair of Shanxi divisions.
func TestDivisionRangeMatchesContains(t *testing.T) {
	all := divisions.Shanxi()
	codes := []string{"140105001", "140202100", "140000", "110101"}
	for _, d := range all {
		codes = append(codes, d.Code)
	}
	for _, a := range all {
		for _, c := range codes {
			got := dataset.InScope(a.Code, c)
			if want := divisions.Contains(a.Code, c); got != want {
				t.Fatalf("%s within %s: range says %v, the tables %v", c, a.Code, got, want)
			}
		}
	}
}

// 0002 adds and fills the division column of rows stored before it, on both databases:
// the first non-sensitive division column of each version's schema, NULL where there is none.
func TestDivisionMigrationWithData(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		first, err := fs.ReadFile(dataset.Migrations.FS, "0001_dataset.sql")
		if err != nil {
			t.Fatal(err)
		}
		old := db.Source{Name: dataset.Migrations.Name, FS: fstest.MapFS{"0001_dataset.sql": {Data: first}}}
		if _, err := d.Migrate(ctx, crypto.Migrations, old); err != nil {
			t.Fatal(err)
		}
		divided := `{"columns":[{"name":"编号","type":"string"},{"name":"户籍地","type":"division","sensitive":true},` +
			`{"name":"区划","type":"division"},{"name":"现居地","type":"division"}],"key":"编号"}`
		plain := `{"columns":[{"name":"编号","type":"string"},{"name":"名称","type":"string"}],"key":"编号"}`
		for _, v := range []struct {
			id, schema string
			rows       []string
		}{
			{"divided", divided, []string{`{"编号":"a","区划":"140105","现居地":"140202"}`, `{"编号":"b","区划":"140202"}`, `{"编号":"c"}`}},
			{"plain", plain, []string{`{"编号":"x","名称":"140105"}`}},
		} {
			if _, err := d.Exec(ctx, `INSERT INTO dataset_versions (dataset_id, version, status, schema_json, format, rows_ok, started_at, heartbeat_at)
				VALUES (?, 1, 'active', ?, 'csv', ?, ?, ?)`, v.id, v.schema, len(v.rows), t0, t0); err != nil {
				t.Fatal(err)
			}
			for i, data := range v.rows {
				if _, err := d.Exec(ctx, `INSERT INTO dataset_rows (dataset_id, version, row_no, line, key_idx, data) VALUES (?, 1, ?, ?, ?, ?)`,
					v.id, i+1, i+2, fmt.Sprint("k", i), data); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := d.Migrate(ctx, crypto.Migrations, dataset.Migrations); err != nil {
			t.Fatalf("migrate with data: %v", err)
		}
		rows, err := d.Query(ctx, `SELECT dataset_id, row_no, COALESCE(division, '-') FROM dataset_rows ORDER BY dataset_id, row_no`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var id, div string
			var no int
			if err := rows.Scan(&id, &no, &div); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s/%d=%s", id, no, div))
		}
		rows.Close()
		if want := []string{"divided/1=140105", "divided/2=140202", "divided/3=-", "plain/1=-"}; !slices.Equal(got, want) {
			t.Fatalf("divisions after the migration: %v, want %v", got, want)
		}
		f := newFixture(t, d)
		sel, err := f.svc.Select(ctx, "divided", dataset.QueryOptions{Within: "140100"})
		if err != nil || len(sel) != 1 || sel[0].Values["编号"] != "a" {
			t.Errorf("a scoped query over migrated rows: %+v %v", sel, err)
		}
	})
}
